#!/usr/bin/python3
# The client of bench/net-pod.sh, run in the node's network namespace against the pod's echo
# server: net-pod-client.py POD_IP MODE [ARGS]
import socket, statistics, sys, time
host, mode = sys.argv[1], sys.argv[2]
if mode == "wait":  # until the echo server answers
    for _ in range(600):
        try:
            s = socket.create_connection((host, 7777), timeout=2)
            s.sendall(b"x"); s.settimeout(5)
            if s.recv(1) == b"x":
                sys.exit(0)
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(1)
if mode == "rtt":
    count = int(sys.argv[3])
    s = socket.create_connection((host, 7777))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg = b"m" * 64
    samples = []
    for i in range(count + 50):
        t0 = time.perf_counter_ns()
        s.sendall(msg)
        got = 0
        while got < len(msg):
            got += len(s.recv(4096))
        if i >= 50:  # warm-up
            samples.append((time.perf_counter_ns() - t0) / 1000)
    samples.sort()
    print("rtt_us median=%.1f p90=%.1f n=%d" % (statistics.median(samples), samples[int(len(samples) * 0.9)], count))
if mode == "bulk":
    mib = int(sys.argv[3])
    best = 0.0
    buf = b"\0" * (1 << 16)
    for _ in range(3):
        s = socket.create_connection((host, 7778))
        t0 = time.perf_counter()
        for _ in range(mib * 16):
            s.sendall(buf)
        s.shutdown(socket.SHUT_WR)
        while s.recv(4096):
            pass
        dt = time.perf_counter() - t0
        s.close()
        best = max(best, mib / dt)
    print("bulk_mib_s best=%.2f mib=%d" % (best, mib))
