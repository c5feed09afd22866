#!/usr/bin/env bash
# benches/net_throughput.sh: loopback TCP throughput of a sender process into a receiver process,
# parallax-launch against gst-launch-1.0 and against socat (the limit: one read/write loop per side).
#
#   benches/net_throughput.sh [SIZE_MIB] [ROUNDS]      (defaults: 1024 MiB, 5 rounds)
#
# Run from the root of a parallax checkout after `cargo build --release`. Every command pair runs
# once as a warm-up and then ROUNDS times, interleaved (A B C D, D C B A, ...) so that drift on a
# shared machine spreads evenly; the median wall time is reported, with MiB/s and the ratios of
# the same run. Wall time runs from starting the sender to both processes exiting; the receiver
# is started first and is known to listen (LISTEN in /proc/net/tcp) before the clock starts. Every
# run checks that the receiver got exactly SIZE bytes (through `wc -c`... without the pipe cost:
# the receiver writes to a file on tmpfs-backed /dev/shm when available, else /tmp, and its size
# is checked after the timed part).
#
# Pairs (receiver | sender), both sides default properties unless noted:
#   parallax:      tcpserversrc host=127.0.0.1 port=P ! fdsink   |  fdsrc ! tcpclientsink host=127.0.0.1 port=P
#   gst:           the same two lines through gst-launch-1.0 (fdsrc reads 4 KiB per buffer by default)
#   gst-128k:      gst with blocksize=131072 on fdsrc and tcpserversrc (parallax's default block size)
#   socat:         socat -u -b 131072 TCP-LISTEN:P,bind=127.0.0.1 STDOUT  |  socat -u -b 131072 STDIN TCP:127.0.0.1:P
set -u
exec python3 - "$@" <<'PY'
import os, shutil, socket, statistics, subprocess, sys, time

size_mib = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
size = size_mib << 20
launch = os.environ.get("PARALLAX_LAUNCH", "target/release/parallax-launch")
gst = shutil.which("gst-launch-1.0")
socat = shutil.which("socat")
data_dir = os.environ.get("BENCH_DATA", "/tmp/bench_data")
os.makedirs(data_dir, exist_ok=True)
src = os.path.join(data_dir, f"in-{size_mib}MiB.bin")
if not os.path.exists(src) or os.path.getsize(src) != size:
    print(f"creating {src}", file=sys.stderr)
    with open("/dev/urandom", "rb") as r, open(src, "wb") as w:
        for _ in range(size_mib):
            w.write(r.read(1 << 20))
out_dir = "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"
out = os.path.join(out_dir, f"net-bench-{os.getpid()}.out")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def listening(port):
    want = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[1].endswith(want) and f[3] == "0A":
                return True
    return False


def pairs(port):
    host = "127.0.0.1"
    p = {}
    p["parallax"] = (
        [launch, "-q", f"tcpserversrc host={host} port={port} ! fdsink"],
        [launch, "-q", f"fdsrc ! tcpclientsink host={host} port={port}"],
    )
    if gst:
        p["gst"] = (
            [gst, "-q", "tcpserversrc", f"host={host}", f"port={port}", "!", "fdsink"],
            [gst, "-q", "fdsrc", "!", "tcpclientsink", f"host={host}", f"port={port}"],
        )
        p["gst-128k"] = (
            [gst, "-q", "tcpserversrc", f"host={host}", f"port={port}", "blocksize=131072", "!", "fdsink"],
            [gst, "-q", "fdsrc", "blocksize=131072", "!", "tcpclientsink", f"host={host}", f"port={port}"],
        )
    if socat:
        p["socat"] = (
            [socat, "-u", "-b", "131072", f"TCP-LISTEN:{port},bind={host},reuseaddr", "STDOUT"],
            [socat, "-u", "-b", "131072", "STDIN", f"TCP:{host}:{port}"],
        )
    return p


names = list(pairs(0).keys())
samples = {n: [] for n in names}


def run_once(name):
    port = free_port()
    recv_cmd, send_cmd = pairs(port)[name]
    if os.path.exists(out):
        os.unlink(out)
    with open(out, "wb") as o:
        recv = subprocess.Popen(recv_cmd, stdout=o, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not listening(port):
        if recv.poll() is not None or time.monotonic() > deadline:
            recv.kill()
            raise SystemExit(f"{name}: the receiver never listened: {recv.stderr.read().decode()}")
        time.sleep(0.002)
    with open(src, "rb") as i:
        t0 = time.monotonic()
        send = subprocess.Popen(send_cmd, stdin=i, stderr=subprocess.PIPE)
        send.wait(timeout=120)
        recv.wait(timeout=120)
        t = time.monotonic() - t0
    if send.returncode != 0 or recv.returncode != 0:
        raise SystemExit(
            f"{name}: exit {send.returncode}/{recv.returncode}: "
            f"{send.stderr.read().decode()} {recv.stderr.read().decode()}"
        )
    got = os.path.getsize(out)
    if got != size:
        raise SystemExit(f"{name}: received {got} of {size} bytes")
    return t


for n in names:  # warm-up
    run_once(n)
order = list(names)
for r in range(rounds):
    for n in order:
        samples[n].append(run_once(n))
    order.reverse()
if os.path.exists(out):
    os.unlink(out)

med = {n: statistics.median(s) for n, s in samples.items()}
print(f"loopback TCP, {size_mib} MiB, median of {rounds} (after 1 warm-up), nproc {os.cpu_count()}")
print(f"{'pair':10} {'median s':>9} {'MiB/s':>8}  {'min-max s':>13}")
for n in names:
    s = samples[n]
    print(f"{n:10} {med[n]:9.3f} {size_mib / med[n]:8.0f}  {min(s):6.3f}-{max(s):6.3f}")
if "gst" in med:
    print(f"parallax speed / gst (defaults):      {med['gst'] / med['parallax']:.2f}x")
    print(f"parallax speed / gst (128 KiB blocks): {med['gst-128k'] / med['parallax']:.2f}x")
if "socat" in med:
    print(f"parallax speed / socat (limit):        {med['socat'] / med['parallax']:.2f}x")
PY
