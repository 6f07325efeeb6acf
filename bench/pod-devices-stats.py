#!/usr/bin/python3
# The medians of bench/pod-devices.sh's timings: pod-devices-stats.py TIMES SLOTS
import statistics, sys

rows = [l.split() for l in open(sys.argv[1])]
med = lambda k, idx: statistics.median(float(r[idx]) for r in rows if r[0] == k)
tot = lambda k: statistics.median(sum(float(x) for x in r[1:]) for r in rows if r[0] == k)
print("median (ms), %d pods each                   plain  trusted   ratio" % (len(rows) // 2))
for idx, label in ((1, "RunPodSandbox"), (2, "sidecar CreateContainer"),
                   (3, "sidecar StartContainer"), (4, "app CreateContainer"),
                   (5, "app StartContainer (guest pull)")):
    print("%-42s %7.0f %8.0f %7.2fx" % (label, med("plain", idx), med("ts", idx),
                                         med("ts", idx) / med("plain", idx)))
print("%-42s %7.0f %8.0f %7.2fx" % ("pod start (sum)", tot("plain"), tot("ts"),
                                     tot("ts") / tot("plain")))
slots = [l.split() for l in open(sys.argv[2])]
print("RunPodSandbox median (ms), %d pods each: %s" % (len(slots) // 3, ", ".join(
    "%s %.0f" % (h, statistics.median(float(r[1]) for r in slots if r[0] == h))
    for h in ("kata-s0", "kata", "kata-s8"))))
