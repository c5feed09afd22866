#!/usr/bin/env python3
"""Loopback throughput of 1 MiB buffers between two processes: zenohsink -> zenohsrc with Zenoh's
shared memory (shm=auto, the default) and without (shm=off at both ends), against the
tcpclientsink -> tcpserversrc pair, against Zenoh's own throughput test in Rust (examples/zenoh_thr.rs,
what z_pub_thr/z_sub_thr and z_pub_shm_thr do, with and without shared memory: the ceiling) and
against a plain publisher and subscriber written with Zenoh's Python API (eclipse-zenoh), in one
run, interleaved. Then the latency of a 64-byte and of a 1 MiB buffer, p50 and p99.

    cargo build --release --bins --example zenoh_thr
    python3 benches/zenoh_throughput.py [COUNT] [ROUNDS]     (defaults: 1024 buffers, 5 rounds)

Wall time runs from starting the sender to both processes exiting; the receiver is started first
and is known to listen (it prints its port) before the clock starts. Every pair moves COUNT
buffers of 1 MiB; the receivers count what they got, and a short count fails the run.
"""

import os
import re
import socket
import statistics
import subprocess
import sys
import time

COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
PX = os.environ.get("PARALLAX_LAUNCH", "target/release/parallax-launch")
THR = os.environ.get("ZENOH_THR", "target/release/examples/zenoh_thr")
MIB = 1 << 20

PY_SUB = r"""
import sys, zenoh
ep, n = sys.argv[1], int(sys.argv[2])
c = zenoh.Config()
c.insert_json5('mode', '"peer"')
c.insert_json5('scouting/multicast/enabled', 'false')
c.insert_json5('listen/endpoints', '["%s"]' % ep)
s = zenoh.open(c)
sub = s.declare_subscriber('bench/py')
print('listening = ' + ep, file=sys.stderr, flush=True)
got = 0
for sample in sub:
    got += len(sample.payload)
    n -= 1
    if n == 0:
        break
print(got)
"""

PY_PUB = r"""
import sys, time, zenoh
ep, n = sys.argv[1], int(sys.argv[2])
c = zenoh.Config()
c.insert_json5('mode', '"peer"')
c.insert_json5('scouting/multicast/enabled', 'false')
c.insert_json5('connect/endpoints', '["%s"]' % ep)
s = zenoh.open(c)
p = s.declare_publisher('bench/py', congestion_control=zenoh.CongestionControl.BLOCK)
while not p.matching_status.matching:
    time.sleep(0.001)
payload = zenoh.ZBytes(bytes(1 << 20))
for _ in range(n):
    p.put(payload)
s.close()
"""


def wait_line(proc, pattern):
    for line in proc.stderr:
        m = re.search(pattern, line)
        if m:
            return m.group(1)
    raise SystemExit(f"receiver ended without printing {pattern}")


def free_endpoint():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    free = f"tcp/127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    return free


def pair(name):
    """Starts the receiver, waits until it listens; returns (receiver, sender command)."""
    if name in ("zenoh-shm", "zenoh"):
        shm = "shm=auto" if name == "zenoh-shm" else "shm=off"
        rx = subprocess.Popen([PX, "--stats=json", "-q", "-m", "zenohsrc key-expr=bench/px "
                               f"listen=tcp/127.0.0.1:0 multicast-scouting=false {shm} ! fakesink"],
                              stderr=subprocess.PIPE, text=True)
        ep = wait_line(rx, r"(tcp/127\.0\.0\.1:\d+)")
        tx = [PX, "-q", f"fakesrc num-buffers={COUNT} sizetype=fixed sizemax={MIB} ! zenohsink "
              f"key-expr=bench/px connect={ep} multicast-scouting=false wait-subscribers=1 {shm}"]
    elif name in ("thr-shm", "thr"):
        shm = "shm" if name == "thr-shm" else "noshm"
        rx = subprocess.Popen([THR, "sub", free_endpoint(), str(COUNT), shm],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ep = wait_line(rx, r"(tcp/127\.0\.0\.1:\d+)")
        tx = [THR, "pub", ep, str(COUNT), str(MIB), shm]
    elif name == "tcp":
        rx = subprocess.Popen([PX, "--stats=json", "-q",
                               "tcpserversrc host=127.0.0.1 port=0 ! fakesink"],
                              stderr=subprocess.PIPE, text=True)
        port = wait_line(rx, r"port = (\d+)")
        tx = [PX, "-q", f"fakesrc num-buffers={COUNT} sizetype=fixed sizemax={MIB} ! "
              f"tcpclientsink host=127.0.0.1 port={port}"]
    else:
        rx = subprocess.Popen([sys.executable, "-c", PY_SUB, free_endpoint(), str(COUNT)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ep = wait_line(rx, r"(tcp/127\.0\.0\.1:\d+)")
        tx = [sys.executable, "-c", PY_PUB, ep, str(COUNT)]
    return rx, tx


def once(name):
    rx, tx = pair(name)
    t = time.monotonic()
    subprocess.run(tx, check=True)
    out, err = rx.communicate()
    wall = time.monotonic() - t
    if rx.returncode != 0:
        raise SystemExit(f"{name}: receiver exit {rx.returncode}: {err}")
    if name == "python":
        got = int(out.strip())
    elif name.startswith("thr"):
        got = int(out.split()[0])
    else:
        stats = next(l for l in err.splitlines() if l.startswith("{"))
        got = int(re.search(r'"sink_bytes":(\d+)', stats).group(1))
    if got != COUNT * MIB:
        raise SystemExit(f"{name}: {got} bytes arrived, {COUNT * MIB} were sent")
    if name in ("thr-shm", "zenoh-shm"):
        # A shared-memory row that measured the network path (a pool refused by `ulimit -l`)
        # would be mislabelled.
        said = re.search(r"(\d+) in shared memory", out if name == "thr-shm" else err)
        in_shm = int(said.group(1)) if said else 0
        if in_shm == 0:
            raise SystemExit(f"{name}: no buffer went through shared memory")
        if in_shm < COUNT:
            print(f"  {name}: {in_shm} of {COUNT} buffers in shared memory", file=sys.stderr)
    return wall


def latency(name, size=64, n=2000):
    """p50 and p99 of one buffer's trip, sender's wall clock to receiver's (one host): each side
    stamps a field with timestamper clock=realtime. Buffers leave 1 ms apart."""
    meta = f"/tmp/zenoh-latency-{os.getpid()}.jsonl"
    stamp = "timestamper clock=realtime mode=field field="
    src = (f"fakesrc num-buffers={n} sizetype=fixed sizemax={size} ! identity sleep-time=1000 "
           f"! {stamp}sent")
    if name.startswith("zenoh"):
        shm = "shm=auto" if name == "zenoh-shm" else "shm=off"
        rx = subprocess.Popen([PX, "-q", f"zenohsrc key-expr=bench/lat listen=tcp/127.0.0.1:0 "
                               f"multicast-scouting=false {shm} ! {stamp}got ! metadataextract "
                               f"location={meta} ! fakesink"], stderr=subprocess.PIPE, text=True)
        ep = wait_line(rx, r"(tcp/127\.0\.0\.1:\d+)")
        tx = [PX, "-q", f"{src} ! zenohsink key-expr=bench/lat connect={ep} express=true "
              f"multicast-scouting=false wait-subscribers=1 {shm}"]
    else:
        rx = subprocess.Popen([PX, "-q", f"tcpserversrc host=127.0.0.1 port=0 ! streamdepay ! "
                               f"{stamp}got ! metadataextract location={meta} ! fakesink"],
                              stderr=subprocess.PIPE, text=True)
        port = wait_line(rx, r"port = (\d+)")
        tx = [PX, "-q", f"{src} ! streampay ! tcpclientsink host=127.0.0.1 port={port}"]
    subprocess.run(tx, check=True)
    rx.communicate()
    import json
    lat = sorted((r["fields"]["got"] - r["fields"]["sent"]) / 1000
                 for r in map(json.loads, open(meta)))
    os.remove(meta)
    if len(lat) != n:
        raise SystemExit(f"{name}: {len(lat)} of {n} buffers arrived")
    return lat[len(lat) // 2], lat[len(lat) * 99 // 100]


def main():
    names = ["zenoh-shm", "zenoh", "tcp", "thr-shm", "thr", "python"]
    times = {n: [] for n in names}
    for n in names:
        once(n)  # warm-up
    for r in range(ROUNDS):
        for n in (names if r % 2 == 0 else list(reversed(names))):
            times[n].append(once(n))
    print(f"# {COUNT} x 1 MiB, medians of {ROUNDS} interleaved runs; "
          f"load average {os.getloadavg()[0]:.2f}")
    base = statistics.median(times["tcp"])
    for n, label in (("zenoh-shm", "zenohsink -> zenohsrc, shm=auto"),
                     ("zenoh", "zenohsink -> zenohsrc, shm=off"),
                     ("tcp", "tcpclientsink -> tcpserversrc"),
                     ("thr-shm", "zenoh_thr (Rust), shared memory"),
                     ("thr", "zenoh_thr (Rust), no shared memory"),
                     ("python", "Zenoh's Python API, put -> subscriber")):
        m = statistics.median(times[n])
        print(f"{label:40} {m:7.3f} s {COUNT / m:8.0f} MiB/s  {m / base:5.2f}x the tcp pair's time")
    for size, n in ((64, 2000), (MIB, 500)):
        for name, label in (("zenoh-shm", "zenohsink express=true -> zenohsrc, shm=auto"),
                            ("zenoh", "zenohsink express=true -> zenohsrc, shm=off"),
                            ("tcp", "streampay ! tcpclientsink -> tcpserversrc ! streamdepay")):
            p50, p99 = latency(name, size, n)
            print(f"latency of a {size}-byte buffer, {label}: p50 {p50:.0f} us, p99 {p99:.0f} us")


if __name__ == "__main__":
    main()
