#!/usr/bin/env python3
"""Side-by-side timings: parallax-launch against gst-launch-1.0 and against the machine's limits.

Every workload runs its variants (gst, parallax, the limit: cat, cp, grep, /bin/true...)
interleaved, round after round, in one session, and the table gives medians and ratios. On a
small shared machine absolute times wander from one minute to the next; only ratios taken in the
same run mean anything, so quote them as such.

    cargo build --release
    python3 benches/compare.py            # every workload
    python3 benches/compare.py --quick    # smaller sizes, fewer rounds: a first look
    python3 benches/compare.py W2 W4 GREP # some workloads
    python3 benches/compare.py --list     # what each workload runs

Standard library only. What is missing (gst, gcc for the memcpy limit, an element the build
lacks) shows as n/a. Binaries: $PARALLAX_LAUNCH, $PARALLAX_INSPECT (default target/release/...),
$GST_LAUNCH, $GST_INSPECT (default on PATH). Input files go to $BENCH_DATA (default
/tmp/parallax-bench) and are kept between runs.
"""

import argparse
import datetime
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("BENCH_DATA", "/tmp/parallax-bench")
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "120"))


def tool(env, default):
    path = os.environ.get(env) or default
    if os.path.sep in path:
        return path if os.access(path, os.X_OK) else None
    return shutil.which(path)


PX = tool("PARALLAX_LAUNCH", os.path.join(ROOT, "target/release/parallax-launch"))
PXI = tool("PARALLAX_INSPECT", os.path.join(ROOT, "target/release/parallax-inspect"))
GST = tool("GST_LAUNCH", "gst-launch-1.0")
GSTI = tool("GST_INSPECT", "gst-inspect-1.0")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Run:
    """One timed command: wall seconds and the peak RSS (KiB) of it and its waited children."""

    def __init__(self, wall, rss, rc):
        self.wall, self.rss, self.rc = wall, rss, rc


GNU_TIME = shutil.which("time", path="/usr/bin:/bin")


def run_once(cmd, cwd):
    # Peak RSS comes from GNU time when it is there: a child forked from this Python process
    # inherits Python's own peak, so wait4's figure would be Python's, not the command's.
    rss_file = os.path.join(cwd, ".rss")
    argv = ["sh", "-c", cmd]
    if GNU_TIME:
        argv = [GNU_TIME, "-q", "-f", "%M", "-o", rss_file] + argv
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = start + TIMEOUT
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            os.wait4(proc.pid, 0)
            return Run(None, None, "timeout")
        time.sleep(0.0005)
    wall = time.monotonic() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        log(f"  ! exit {rc}: {cmd}\n    {err.strip()[:400]}")
        return Run(None, None, rc)
    rss = None
    if GNU_TIME:
        with open(rss_file) as f:
            rss = int(f.read().split()[-1])
    return Run(wall, rss, 0)


class Variant:
    def __init__(self, name, cmd, setup=None):
        self.name, self.cmd, self.setup = name, cmd, setup
        self.runs = []

    def ok(self):
        return self.cmd is not None and all(r.wall is not None for r in self.runs) and self.runs

    def median(self):
        return statistics.median(r.wall for r in self.runs) if self.ok() else None

    def rss(self):
        if not self.ok() or any(r.rss is None for r in self.runs):
            return None
        return max(r.rss for r in self.runs)


def measure(variants, rounds, cwd):
    """Runs every variant once per round, in an order that alternates, after one warm-up."""
    live = [v for v in variants if v.cmd is not None]
    for v in live:
        if v.setup:
            v.setup()
        r = run_once(v.cmd, cwd)
        if r.wall is None:
            v.cmd = None
    live = [v for v in live if v.cmd is not None]
    for i in range(rounds):
        order = live if i % 2 == 0 else list(reversed(live))
        for v in order:
            if v.setup:
                v.setup()
            r = run_once(v.cmd, cwd)
            v.runs.append(r)
            if r.wall is None:
                v.cmd = None
        live = [v for v in live if v.cmd is not None]


def fmt_t(s):
    if s is None:
        return "n/a"
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.3f} s"


def fmt_rss(k):
    return "n/a" if k is None else f"{k / 1024:.1f} MiB"


def ratio(a, b):
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def has_element(name):
    if PXI is None:
        return False
    return subprocess.run([PXI, "--exists", name]).returncode == 0


def has_gst_element(name):
    if GSTI is None:
        return False
    return subprocess.run([GSTI, "--exists", name]).returncode == 0


def make_file(name, mib, kind="random"):
    os.makedirs(DATA, exist_ok=True)
    path = os.path.join(DATA, name)
    if os.path.exists(path) and os.path.getsize(path) >= mib << 20:
        return path
    log(f"  making {path} ({mib} MiB of {kind})")
    with open(path + ".tmp", "wb") as f:
        if kind == "random":
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
        else:  # a log: 100-byte lines, one in 20 an ERROR
            line = 0
            block = []
            while f.tell() < mib << 20:
                level = "ERROR" if line % 20 == 7 else "INFO "
                block.append(f"2026-12-07T10:00:{line % 60:02d} {level} worker-{line % 8} "
                             f"request {line:012d} handled in {line % 997:4d} us ok\n"[:99]
                             .ljust(99) + "\n")
                line += 1
                if len(block) == 4096:
                    f.write("".join(block).encode())
                    block = []
            f.write("".join(block).encode())
    os.rename(path + ".tmp", path)
    return path


def launch(tool_path, desc):
    return None if tool_path is None else f"{shlex.quote(tool_path)} -q {desc}"


class Workload:
    """A row or several of the table, from variants measured together."""

    def __init__(self, wid, title):
        self.wid, self.title = wid, title
        self.rows = []  # (label, gst variant, parallax variant, limit variant)
        self.notes = []


def w1(q, scratch):
    mib = 256 if q else 1024
    src = make_file(f"in-{mib}MiB.bin", mib)
    out = os.path.join(scratch, "out.bin")
    desc = f"filesrc location={src} ! filesink location={out}"
    big = f"filesrc location={src} blocksize=1048576 ! filesink location={out} blocksize=1048576"
    g, p = Variant("gst", launch(GST, desc)), Variant("parallax", launch(PX, desc))
    gb, pb = Variant("gst", launch(GST, big)), Variant("parallax", launch(PX, big))
    cat = Variant("cat", f"cat {src} > {out}")
    cp = Variant("cp", f"cp --reflink=never {src} {out}")
    w = Workload("W1", f"copy a {mib} MiB file in page cache")
    w.variants = [g, p, gb, pb, cat, cp]
    w.rows = [("default block size (limit cat)", g, p, cat), ("blocksize=1MiB (limit cat)", gb, pb, cat),
              ("blocksize=1MiB (limit cp)", gb, pb, cp)]
    w.gib = mib / 1024
    return w


def per_buffer(wid, title, desc_n, n, q):
    one = desc_n(1)
    many = desc_n(n)
    g, p = Variant("gst", launch(GST, many)), Variant("parallax", launch(PX, many))
    g1, p1 = Variant("gst", launch(GST, one)), Variant("parallax", launch(PX, one))
    w = Workload(wid, title.format(n=f"{n:,}"))
    w.variants = [g, p, g1, p1]
    w.rows = [(title.format(n=f"{n:,}"), g, p, None)]

    def note():
        def ns(a, b):
            if a.median() is None or b.median() is None:
                return "n/a"
            return f"{(a.median() - b.median()) / (n - 1) * 1e9:.1f} ns"
        pg, pp = ns(g, g1), ns(p, p1)
        r = "—"
        if pg != "n/a" and pp != "n/a":
            r = f"{float(pp.split()[0]) / float(pg.split()[0]):.3f}"
        return f"{wid} per buffer, net of start-up: gst {pg}, parallax {pp} (parallax/gst {r})"
    w.derive = note
    return w


def w2(q, scratch):
    n = 200_000 if q else 2_000_000
    return per_buffer("W2", "W2 fakesrc ! fakesink, {n} buffers",
                      lambda k: f"fakesrc num-buffers={k} ! fakesink", n, q)


def w3(q, scratch):
    n = 100_000 if q else 1_000_000
    return per_buffer("W3", "W3 fakesrc ! queue ! fakesink, {n} buffers",
                      lambda k: f"fakesrc num-buffers={k} ! queue ! fakesink", n, q)


def w4(q, scratch):
    n = 20_000 if q else 200_000
    head = f"fakesrc num-buffers={n} sizetype=fixed sizemax=65536 ! tee name=t"
    # async=false: gst's sinks otherwise wait for each other's preroll behind a tee without
    # queues and never start.
    sink = " ! fakesink async=false"
    x4 = head + sink + (" t." + sink) * 3
    x1 = head + sink
    g4, p4 = Variant("gst", launch(GST, x4)), Variant("parallax", launch(PX, x4))
    g1, p1 = Variant("gst", launch(GST, x1)), Variant("parallax", launch(PX, x1))
    w = Workload("W4", "tee")
    w.variants = [g4, p4, g1, p1]
    w.rows = [(f"W4 tee x4, {n:,} x 64 KiB", g4, p4, None), (f"W4 tee x1, {n:,} x 64 KiB", g1, p1, None)]
    w.derive = lambda: (f"W4 tee x4/x1 (zero-copy steady state => 1): gst {ratio(g4.median(), g1.median())}, "
                        f"parallax {ratio(p4.median(), p1.median())}")
    return w


def w5(q, scratch):
    size = "256M" if q else "2G"
    pipe = f"head -c {size} /dev/zero | {{}} > /dev/null"
    desc = "fdsrc ! fdsink"
    g = Variant("gst", GST and pipe.format(launch(GST, desc)))
    p = Variant("parallax", PX and pipe.format(launch(PX, desc)))
    c = Variant("cat", pipe.format("cat"))
    w = Workload("W5", "stdin to stdout")
    w.variants = [g, p, c]
    w.rows = [(f"W5 stdin -> stdout {size} (limit cat)", g, p, c)]
    return w


def w6(q, scratch):
    desc = "fakesrc num-buffers=1 ! fakesink"
    g, p = Variant("gst", launch(GST, desc)), Variant("parallax", launch(PX, desc))
    t = Variant("true", "/bin/true")
    w = Workload("W6", "start-up")
    w.variants = [g, p, t]
    w.rows = [("W6 start-up, 1 buffer (limit /bin/true)", g, p, t)]
    w.rounds = 7 if q else 21

    def note():
        over = lambda v: "n/a" if v.median() is None or t.median() is None else \
            f"+{(v.median() - t.median()) * 1000:.2f} ms"
        return f"W6 start-up over /bin/true: gst {over(g)}, parallax {over(p)}"
    w.derive = note
    return w


def w7(q, scratch):
    g = Variant("gst", GSTI and shlex.quote(GSTI))
    p = Variant("parallax", PXI and shlex.quote(PXI))
    t = Variant("true", "/bin/true")
    w = Workload("W7", "inspect")
    w.variants = [g, p, t]
    w.rows = [("W7 inspect, list every element (limit /bin/true)", g, p, t)]
    w.rounds = 7 if q else 21

    # Each timed run carries the harness's own fork and exec (GNU time, a shell), a constant
    # of about a millisecond and a half here that dwarfs a listing of one: the ratio net of
    # /bin/true, measured in the same rounds, is the listing's own.
    def note():
        def net(v):
            # Within noise of /bin/true there is nothing left to compare: no ratio.
            if v.median() is None or t.median() is None or v.median() <= t.median():
                return None
            return v.median() - t.median()
        return (f"W7 gst-inspect/parallax-inspect: {ratio(g.median(), p.median())}x as timed, "
                f"{ratio(net(g), net(p))}x net of /bin/true")
    w.derive = note
    return w


def w8(q, scratch):
    n = 512 if q else 4096
    sock = os.path.join(scratch, "w8.sock")
    gst = None
    if GST:
        gst = (f"{GST} -q fakesrc num-buffers={n} sizetype=fixed sizemax=1048576 ! "
               f"shmsink socket-path={sock} shm-size=67108864 wait-for-connection=true sync=false & "
               f"until [ -S {sock} ]; do sleep 0.001; done; "
               f"{GST} -q shmsrc socket-path={sock} num-buffers={n} ! fakesink; wait")
    px = None
    if PX:
        px = (f"{PX} -q fakesrc num-buffers={n} sizetype=fixed sizemax=1048576 ! "
              f"shmsink socket-path={sock} wait-for-connection=true & "
              f"until [ -S {sock} ]; do sleep 0.001; done; "
              f"{PX} -q shmsrc socket-path={sock} ! fakesink; wait")
    rm = lambda: os.path.exists(sock) and os.unlink(sock)
    g, p = Variant("gst", gst, rm), Variant("parallax", px, rm)
    w = Workload("W8", "two processes")
    w.variants = [g, p]
    w.rows = [(f"W8 two processes over shm, {n} x 1 MiB", g, p, None)]
    w.derive = lambda: "W8 throughput: " + ", ".join(
        f"{v.name} {n / 1024 / v.median():.2f} GiB/s" for v in (g, p) if v.median())
    return w


def w9(q, scratch):
    small = make_file("in-64MiB.bin", 64)
    mib = 256 if q else 1024
    big = make_file(f"in-{mib}MiB.bin", mib)
    out = os.path.join(scratch, "out.bin")
    vs = []
    rows = []
    for path, label in ((small, "64 MiB"), (big, f"{mib} MiB")):
        desc = f"filesrc location={path} ! filesink location={out}"
        g, p = Variant("gst", launch(GST, desc)), Variant("parallax", launch(PX, desc))
        c = Variant("cat", f"cat {path} > {out}")
        vs += [g, p, c]
        rows.append((f"W9 peak RSS, copy {label}", g, p, c))
    w = Workload("W9", "bounded memory")
    w.variants = vs
    w.rows = rows
    w.derive = lambda: "W9 peak RSS small -> big: " + ", ".join(
        f"{name} {fmt_rss(rows[0][i].rss())} -> {fmt_rss(rows[1][i].rss())}"
        for i, name in ((1, "gst"), (2, "parallax"), (3, "cat")))
    return w


def grep(q, scratch):
    mib = 128 if q else 1024
    src = make_file(f"log-{mib}MiB.txt", mib, kind="log")
    out = os.path.join(scratch, "grep.out")
    desc = (f"filesrc location={src} ! buffersplit delimiter='\\n' ! regexfilter pattern=ERROR "
            f"! bufferjoin delimiter='\\n' ! filesink location={out}")
    ok = has_element("regexfilter")
    p = Variant("parallax", launch(PX, desc) if ok else None)
    gr = Variant("grep", f"LC_ALL=C grep ERROR {src} > {out}")
    awk = Variant("awk", f"LC_ALL=C awk '/ERROR/' {src} > {out}" if shutil.which("awk") else None)
    w = Workload("GREP", "grep-like")
    w.variants = [p, gr, awk]
    w.rows = [(f"GREP lines with ERROR in {mib} MiB (limit grep)", None, p, gr),
              (f"GREP lines with ERROR in {mib} MiB (limit awk)", None, p, awk)]
    return w


def media(wid, title, desc, elements, gst_elements, q):
    ok = all(has_element(e) for e in elements)
    gok = all(has_gst_element(e) for e in gst_elements)
    g = Variant("gst", launch(GST, desc) if gok else None)
    p = Variant("parallax", launch(PX, desc) if ok else None)
    w = Workload(wid, title)
    w.variants = [g, p]
    w.rows = [(title, g, p, None)]
    return w


def vconv(q, scratch):
    n = 60 if q else 300
    desc = (f"videotestsrc num-buffers={n} ! video/x-raw,format=I420,width=1920,height=1080 "
            f"! videoconvert ! video/x-raw,format=BGRx ! fakesink")
    return media("VCONV", f"VCONV videoconvert 1080p I420 -> BGRx, {n} frames", desc,
                 ["videotestsrc", "videoconvert"], ["videotestsrc", "videoconvert"], q)


def ares(q, scratch):
    n = 400 if q else 4000
    desc = (f"audiotestsrc num-buffers={n} ! audio/x-raw,format=F32LE,rate=48000,channels=2 "
            f"! audioresample ! audio/x-raw,rate=44100 ! fakesink")
    return media("ARES", f"ARES audioresample 48 -> 44.1 kHz F32 stereo, {n} buffers", desc,
                 ["audiotestsrc", "audioresample"], ["audiotestsrc", "audioresample"], q)


def zenoh(q, scratch):
    """The receiver listens on a port of its choosing and prints it; the sender connects and
    holds its first buffer until the subscriber matches (no sleeps, no fixed ports)."""
    n = 256 if q else 2048
    key = f"bench/{os.getpid()}"
    log_file = os.path.join(scratch, "zenoh-sub.log")
    ep = f"$(until grep -o 'tcp/127.0.0.1:[0-9]*' {log_file}; do sleep 0.01; done)"
    zen = None
    if has_element("zenohsink"):
        zen = (f"{PX} -q zenohsrc key-expr={key} listen=tcp/127.0.0.1:0 multicast-scouting=false "
               f"! fakesink 2> {log_file} & "
               f"{PX} -q fakesrc num-buffers={n} sizetype=fixed sizemax=1048576 ! zenohsink "
               f"key-expr={key} connect={ep} multicast-scouting=false wait-subscribers=1; wait")
    tcp = None
    if PX:
        port_file = os.path.join(scratch, "tcp-sub.log")
        tcp = (f"{PX} -q tcpserversrc host=127.0.0.1 port=0 ! fakesink 2> {port_file} & "
               f"{PX} -q fakesrc num-buffers={n} sizetype=fixed sizemax=1048576 ! tcpclientsink "
               f"host=127.0.0.1 port=$(until grep -o '[0-9][0-9]*$' {port_file}; do sleep 0.01; done); wait")
    z, t = Variant("zenoh", zen), Variant("tcp", tcp)
    for v, f in ((z, log_file), (t, os.path.join(scratch, "tcp-sub.log"))):
        v.setup = (lambda f=f: os.path.exists(f) and os.remove(f))
    w = Workload("ZENOH", "zenoh")
    w.variants = [z, t]
    w.rows = [(f"ZENOH {n} x 1 MiB, zenoh pair (limit: tcp pair)", None, z, t)]
    return w


def mem(q, scratch):
    cc = shutil.which("cc") or shutil.which("gcc")
    w = Workload("MEM", "memcpy")
    w.variants = []
    w.rows = []
    if not cc:
        w.derive = lambda: "MEM memcpy: n/a (no C compiler)"
        return w
    src = os.path.join(scratch, "memcpy.c")
    exe = os.path.join(scratch, "memcpy")
    with open(src, "w") as f:
        f.write(r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(void) {
    size_t chunk = 1 << 20, total = (size_t)1 << 30;
    char *a = malloc(total), *b = malloc(total);
    memset(a, 1, total); memset(b, 2, total);
    double t = now();
    for (size_t off = 0; off < total; off += chunk) memcpy(b, a, chunk);
    double hot = now() - t;
    t = now();
    for (size_t off = 0; off < total; off += chunk) memcpy(b + off, a + off, chunk);
    double cold = now() - t;
    printf("%.2f %.2f %d\n", total / hot / 1e9, total / cold / 1e9, b[12345]);
    return 0;
}
""")
    if subprocess.run([cc, "-O2", "-o", exe, src]).returncode != 0:
        w.derive = lambda: "MEM memcpy: n/a (compile failed)"
        return w
    hot, cold = [], []
    for _ in range(3 if q else 5):
        h, c, _ = subprocess.run([exe], capture_output=True, text=True).stdout.split()
        hot.append(float(h))
        cold.append(float(c))
    w.derive = lambda: (f"MEM memcpy of 1 GiB in 1 MiB chunks on one core: cache-hot "
                        f"{statistics.median(hot):.1f} GB/s, DRAM to DRAM {statistics.median(cold):.1f} GB/s")
    return w


WORKLOADS = {
    "MEM": (mem, "memcpy bandwidth of one core (the ceiling for anything that copies)"),
    "W1": (w1, "filesrc ! filesink of a file in page cache, against cat and cp"),
    "W2": (w2, "fakesrc ! fakesink: the per-buffer cost"),
    "W3": (w3, "fakesrc ! queue ! fakesink: one thread hop per buffer"),
    "W4": (w4, "tee to four fakesinks against one: the cost of a branch"),
    "W5": (w5, "fdsrc ! fdsink from a pipe, against cat"),
    "W6": (w6, "start-up of a one-buffer pipeline, against /bin/true"),
    "W7": (w7, "listing every element: parallax-inspect against gst-inspect-1.0"),
    "W8": (w8, "1 MiB buffers between two processes through shmsink/shmsrc"),
    "W9": (w9, "peak RSS of a small and a large file copy: memory stays bounded"),
    "GREP": (grep, "lines containing ERROR: buffersplit ! regexfilter ! bufferjoin, against grep and awk"),
    "VCONV": (vconv, "videoconvert of 1080p I420 to BGRx, against gst"),
    "ARES": (ares, "audioresample 48 kHz to 44.1 kHz, against gst"),
    "ZENOH": (zenoh, "1 MiB buffers zenohsink -> zenohsrc, against the tcp pair"),
}


def header(args):
    def version(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
        except (OSError, IndexError, TypeError):
            return "n/a"
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"# benches/compare.py {' '.join(sys.argv[1:])}")
    print(f"# date {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}, "
          f"{os.cpu_count()} CPUs ({cpu}), kernel {platform.release()}")
    print(f"# gst: {version([GST, '--version']) if GST else 'n/a'}; parallax: "
          f"{version([PX, '--version']) if PX else 'n/a'}")
    print(f"# load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workloads", nargs="*", help="ids to run (default: all)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes and 3 rounds")
    ap.add_argument("--rounds", type=int, help="rounds per workload (default 5, 3 with --quick)")
    ap.add_argument("--list", action="store_true", help="print the workloads and exit")
    args = ap.parse_args()
    if args.list:
        for k, (_, d) in WORKLOADS.items():
            print(f"{k:6} {d}")
        return
    ids = [w.upper() for w in args.workloads] or list(WORKLOADS)
    for i in ids:
        if i not in WORKLOADS:
            sys.exit(f"unknown workload {i!r}; --list shows them")
    rounds = args.rounds or (3 if args.quick else 5)
    header(args)
    started = time.monotonic()
    done = []
    with tempfile.TemporaryDirectory(prefix="parallax-bench-") as scratch:
        for i in ids:
            log(f"{i}: {WORKLOADS[i][1]}")
            w = WORKLOADS[i][0](args.quick, scratch)
            measure(w.variants, getattr(w, "rounds", rounds) if not args.rounds else rounds, scratch)
            done.append(w)
    print(f"# load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"run took {time.monotonic() - started:.0f} s")
    print()
    print("Medians of wall time; ratios of times (below 1: parallax is faster). RSS: largest peak.")
    print()
    cols = ["workload", "gst", "parallax", "limit", "parallax/gst", "parallax/limit",
            "RSS gst", "RSS parallax", "RSS limit"]
    rows = []
    for w in done:
        for label, g, p, lim in w.rows:
            gm = g.median() if g else None
            pm = p.median() if p else None
            lm = lim.median() if lim else None
            rows.append([label, fmt_t(gm) if g else "—", fmt_t(pm),
                         f"{fmt_t(lm)} ({lim.name})" if lim else "—",
                         ratio(pm, gm), ratio(pm, lm),
                         fmt_rss(g.rss()) if g else "—", fmt_rss(p.rss()),
                         fmt_rss(lim.rss()) if lim else "—"])
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
    line = lambda cells: "| " + " | ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                                           for i, c in enumerate(cells)) + " |"
    print(line(cols))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    notes = [w.derive() for w in done if hasattr(w, "derive")]
    if notes:
        print()
        for n in notes:
            print(n)


if __name__ == "__main__":
    main()
