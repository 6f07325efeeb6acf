#!/usr/bin/python3
# The medians of bench/trusted-storage.sh's timings: trusted-storage-stats.py TIMES
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def med(h, k):
    return statistics.median(float(r[k]) for r in rows if r[0] == h)
print("median (ms), %d pods each     kata   kata-ts   ratio" % (len(rows) // 2))
for k, label in ((1, "RunPodSandbox"), (2, "CreateContainer"), (3, "StartContainer")):
    print("%-28s %7.0f %9.0f %7.2fx" % (label, med("kata", k), med("kata-ts", k), med("kata-ts", k) / med("kata", k)))
tot = lambda h: statistics.median(sum(float(x) for x in r[1:]) for r in rows if r[0] == h)
print("%-28s %7.0f %9.0f %7.2fx" % ("pod start (sum)", tot("kata"), tot("kata-ts"), tot("kata-ts") / tot("kata")))
