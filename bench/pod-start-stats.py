#!/usr/bin/python3
# The pod start timings of bench/pod-start.sh from its rows: pod-start-stats.py ROWS N
import datetime, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
N = int(sys.argv[2])
def ts(s):  # containerd's RFC 3339 with nanoseconds, UTC
    base, frac = s.rstrip("Z").split(".")
    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp()) * 10**9 + int(frac.ljust(9, "0")[:9])
modes = ("kata", "runc", "kata-gp")
res = {m: [] for m in modes}
for r in rows:
    m = r[0]
    rp_s, rp_e, rp_ms = int(r[2]), int(r[3]), int(r[4])
    pl_ms, cr_ms, st_ms = int(r[7]), int(r[10]), int(r[13])
    d = {"runp": rp_ms, "pull": pl_ms, "create": cr_ms, "start": st_ms,
         "wall": (int(r[12]) - rp_s) / 1e6, "total": rp_ms + pl_ms + cr_ms + st_ms}
    if m != "runc":
        up_s, now_ns, tc, gp = float(r[14]), int(r[15]), float(r[16]), float(r[17])
        line_ts, agent_ms = ts(r[18]), int(r[19])
        kernel0 = now_ns - int(up_s * 1e9)
        vm0 = line_ts - agent_ms * 10**6
        d.update(before_vm=(vm0 - rp_s) / 1e6, vm_boot=(kernel0 - vm0) / 1e6,
                 agent_ready=(line_ts - kernel0) / 1e6, sandbox=(rp_e - line_ts) / 1e6,
                 guest_pull=gp, task_create=tc - gp, task_start=st_ms - tc)
    res[m].append(d)
med = lambda m, k: statistics.median(x[k] for x in res[m])
print("pods: %d per mode (after one warm-up pod each); kata and runc alternating on one containerd" % N)
print("%-30s %9s %9s %8s %9s" % ("median (ms)", "kata", "runc", "kata/runc", "kata-gp"))
for k, label in (("runp", "RunPodSandbox"), ("pull", "PullImage (CRI, host)"),
                 ("create", "CreateContainer"), ("start", "StartContainer"),
                 ("total", "pod start (sum of 4 RPCs)"), ("wall", "wall, with the client's gaps")):
    print("%-30s %9.0f %9.0f %7.2fx %9.0f" % (label, med("kata", k), med("runc", k),
                                              med("kata", k) / max(med("runc", k), 1), med("kata-gp", k)))
print("kata breakdown (median ms)                          kata  kata-gp")
for k, label in (("before_vm", "before VM (containerd, CNI, shim start)"),
                 ("vm_boot", "VM boot (QEMU start -> guest kernel clock)"),
                 ("agent_ready", "guest kernel -> agent ready"),
                 ("sandbox", "agent ready -> RunPodSandbox returns"),
                 ("pull", "CRI PullImage on the host"),
                 ("guest_pull", "pull in the guest (inside StartContainer)"),
                 ("create", "CreateContainer (containerd metadata)"),
                 ("task_create", "container create in the shim (w/o pull)"),
                 ("task_start", "container start (rest of StartContainer)")):
    print("  %-46s %8.0f %8.0f" % (label, med("kata", k), med("kata-gp", k)))
print("per pod (ms): mode runp pull create start sum wall")
for m in modes:
    for x in res[m]:
        print("  %s %d %d %d %d %d %.0f" % (m, x["runp"], x["pull"], x["create"], x["start"], x["total"], x["wall"]))
