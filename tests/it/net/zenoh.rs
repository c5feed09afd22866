//! zenohsink / zenohsrc / zenohqueryable / zenohquerier, end to end on 127.0.0.1 with multicast
//! scouting off: between two Parallax processes, with a Python `eclipse-zenoh` program on
//! either side, and through a Zenoh router in client mode.
//!
//! No test depends on timing: listeners take port 0 and the endpoint is read from the
//! `listening = ...` line they print; publishers hold their first buffer until the subscribers
//! they need match (`wait-subscribers`).

use std::process::{Command, Stdio};

use super::*;

/// The session properties every test element gets: loopback only, no multicast.
const LOCAL: &str = "multicast-scouting=false";

/// The `--tap` JSON lines of `stderr`, without the tap's own name and running index.
fn tapped(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter(|l| l.starts_with("{\"tap\""))
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("tap");
            o.remove("index");
            v
        })
        .collect()
}

/// Waits for the `listening = tcp/...` line of a `listen=tcp/127.0.0.1:0` element.
fn endpoint(p: &mut Proc) -> String {
    let line = p.wait_for("listening = ");
    let all = line.rsplit(" = ").next().unwrap();
    all.split(',')
        .find(|e| e.starts_with("tcp/127.0.0.1:"))
        .unwrap_or_else(|| panic!("no tcp endpoint in {line}"))
        .to_owned()
}

/// A subscriber listening on a free port, writing what it gets to stdout.
fn subscriber(extra: &str) -> (Proc, String) {
    subscriber_with("--stats=json", extra)
}

/// A subscriber like [`subscriber`], with `-m` messages.
fn subscriber_m(extra: &str) -> (Proc, String) {
    subscriber_with("-m", extra)
}

/// A subscriber listening on a free port, with `flag` (`--stats=json` or `-m`), tapping what it
/// gets as JSON and writing it to stdout.
fn subscriber_with(flag: &str, extra: &str) -> (Proc, String) {
    let mut p = Proc::spawn(
        &[
            "-q",
            flag,
            "--tap-format=json",
            "--tap",
            "z",
            &format!(
                "zenohsrc name=z key-expr=test/a listen=tcp/127.0.0.1:0 {LOCAL} {extra} ! fdsink"
            ),
        ],
        None,
    );
    let at = endpoint(&mut p);
    (p, at)
}

#[test]
fn a_file_crosses_zenoh_byte_identical_with_its_metadata_and_both_ends_exit_0() {
    let dir = tmp();
    let data = random_bytes(1_000_003, 91);
    let input = file(dir.path(), "in.bin", &data);
    let (sub, at) = subscriber("");
    let publisher = run_args(&[
        "-q",
        "--tap-format=json",
        "--tap",
        "m",
        &format!(
            "filesrc {} blocksize=65521 ! metadatainject name=m set=\"who=tester,n=(int)-3\" \
             ! zenohsink key-expr=test/a connect={at} {LOCAL} wait-subscribers=1",
            prop("location", &input)
        ),
    ])
    .ok();
    let sub = sub.finish().ok();
    sub.assert_stdout(&data);
    let sent = tapped(&publisher.stderr);
    let got = tapped(&sub.stderr);
    assert!(sent.len() >= data.len().div_ceil(65521));
    assert_eq!(got, sent, "metadata arrives as sent");
    assert_eq!(got[1]["fields"]["n"], -3);
}

#[test]
fn ten_thousand_buffers_arrive_complete_and_three_subscribers_each_get_all() {
    let dir = tmp();
    let data = random_bytes(10_000 * 100, 92);
    let input = file(dir.path(), "in.bin", &data);
    // The publisher listens; the three subscribers connect to it.
    let mut publisher = Proc::spawn(
        &[
            "-q",
            &format!(
                "filesrc {} blocksize=100 ! zenohsink key-expr=test/many \
                 listen=tcp/127.0.0.1:0 {LOCAL} wait-subscribers=3 reliability=reliable",
                prop("location", &input)
            ),
        ],
        None,
    );
    let at = endpoint(&mut publisher);
    let subs: Vec<Proc> = (0..3)
        .map(|_| {
            Proc::spawn(
                &[
                    "-q",
                    "--stats=json",
                    &format!("zenohsrc key-expr=test/* connect={at} {LOCAL} ! fdsink"),
                ],
                None,
            )
        })
        .collect();
    publisher.finish().ok();
    for s in subs {
        let s = s.finish().ok();
        s.assert_stdout(&data);
        assert_eq!(element(&s.stats(), "zenohsrc0")["buffers"], 10_000);
    }
}

#[test]
fn a_publisher_killed_mid_stream_is_an_error_for_the_subscriber() {
    let (sub, at) = subscriber("");
    let publisher = Proc::spawn(
        &[
            "-q",
            "-m",
            &format!(
                "fakesrc sizetype=fixed sizemax=1000 filltype=zero ! identity sleep-time=1000 \
                 ! zenohsink key-expr=test/a connect={at} {LOCAL} wait-subscribers=1"
            ),
        ],
        None,
    );
    // Some buffers came through: the subscriber tapped them.
    let mut sub = sub;
    sub.wait_for("\"index\":5,");
    publisher.signal(Signal::KILL);
    drop(publisher);
    let done = sub.finish();
    done.fails_with(1, "went away without end of stream");
}

#[test]
fn large_buffers_cross_in_shared_memory_unless_either_end_says_shm_off() {
    let dir = tmp();
    let data = random_bytes(40 * 65536 + 1000, 94);
    let input = file(dir.path(), "in.bin", &data);
    let buffers = data.len().div_ceil(65536);
    // All but the last, of 1000 bytes: a buffer under 4 KiB is not worth a chunk.
    for (publisher_shm, subscriber_shm, in_shm) in [
        ("", "", buffers - 1),
        ("shm=off", "", 0),
        ("", "shm=off", 0),
    ] {
        let (sub, at) = subscriber_m(subscriber_shm);
        let publisher = run_args(&[
            "-q",
            "-m",
            &format!(
                "filesrc {} blocksize=65536 ! zenohsink key-expr=test/a connect={at} {LOCAL} \
                 wait-subscribers=1 {publisher_shm}",
                prop("location", &input)
            ),
        ])
        .ok();
        let sub = sub.finish().ok();
        sub.assert_stdout(&data);
        let said = format!("end of stream after {buffers} buffers ({in_shm} in shared memory)");
        assert!(
            sub.stderr.contains(&said),
            "{publisher_shm} {subscriber_shm}: {}",
            sub.stderr
        );
        // The sink publishes from its pool whatever the subscriber can take; with shm=off it
        // makes no pool and says nothing of one.
        if publisher_shm.is_empty() {
            let said = format!(
                "{} buffers went out through shared memory; 0 of",
                buffers - 1
            );
            assert!(publisher.stderr.contains(&said), "{}", publisher.stderr);
        } else {
            assert!(
                !publisher.stderr.contains("through shared memory"),
                "{}",
                publisher.stderr
            );
        }
    }
}

#[test]
fn buffers_larger_than_a_fixed_pool_go_the_ordinary_way_without_waiting() {
    let dir = tmp();
    let data = random_bytes(20 * 100_000, 95);
    let input = file(dir.path(), "in.bin", &data);
    let (sub, at) = subscriber("");
    let publisher = run_args(&[
        "-q",
        "-m",
        &format!(
            "filesrc {} blocksize=100000 ! zenohsink key-expr=test/a connect={at} {LOCAL} \
             wait-subscribers=1 shm=on shm-size=64KiB",
            prop("location", &input)
        ),
    ])
    .ok();
    sub.finish().ok().assert_stdout(&data);
    assert!(
        publisher
            .stderr
            .contains("0 buffers went out through shared memory; 20 of 4096 bytes or more did not"),
        "{}",
        publisher.stderr
    );
}

#[test]
fn a_publisher_killed_while_the_subscriber_holds_its_shared_memory_is_an_error_not_a_crash() {
    // The subscriber holds what it received in a long queue that a slow identity drains, so
    // buffers in the publisher's shared memory outlive the publisher; each is still read whole.
    let mut sub = Proc::spawn(
        &[
            "-q",
            "--tap-format=json",
            "--tap",
            "z",
            &format!(
                "zenohsrc name=z key-expr=test/a listen=tcp/127.0.0.1:0 {LOCAL} \
                 ! queue max-size-buffers=1000 max-size-bytes=0 max-size-time=0 \
                 ! identity sleep-time=20000 ! fdsink"
            ),
        ],
        None,
    );
    let at = endpoint(&mut sub);
    let publisher = Proc::spawn(
        &[
            "-q",
            &format!(
                "fakesrc sizetype=fixed sizemax=65536 filltype=pattern-span \
                 ! zenohsink key-expr=test/a connect={at} {LOCAL} wait-subscribers=1 shm=on"
            ),
        ],
        None,
    );
    sub.wait_for("\"index\":20,");
    publisher.signal(Signal::KILL);
    drop(publisher);
    let done = sub.finish();
    done.fails_with(1, "went away without end of stream");
    assert!(!done.stdout.is_empty() && done.stdout.len() % 65536 == 0);
    let wrong = done
        .stdout
        .iter()
        .enumerate()
        .position(|(i, &b)| b != i as u8);
    assert_eq!(wrong, None, "every byte as the publisher wrote it");
    let count = |what: &str| -> usize {
        let at = done
            .stderr
            .find(what)
            .unwrap_or_else(|| panic!("{}", done.stderr));
        let tail = &done.stderr[at + what.len()..];
        tail[..tail.find(|c: char| !c.is_ascii_digit()).unwrap()]
            .parse()
            .unwrap()
    };
    // The error may end the run before the queue drained: what came out is a prefix.
    let buffers = count("end of stream after ");
    assert!(done.stdout.len() <= buffers * 65536);
    assert!(
        count("buffers (") > 0,
        "some came in shared memory: {}",
        done.stderr
    );
}

#[test]
fn keep_listening_outlives_the_end_of_a_publisher() {
    let dir = tmp();
    let input = file(dir.path(), "in.bin", b"first");
    let (mut sub, at) = subscriber("keep-listening=true num-buffers=2");
    for _ in 0..2 {
        send_file(
            &input,
            &format!("! zenohsink key-expr=test/a connect={at} {LOCAL} wait-subscribers=1"),
        );
    }
    sub.wait_for("{");
    let done = sub.finish().ok();
    done.assert_stdout(b"firstfirst");
}

#[test]
fn bad_properties_and_unreachable_peers_are_clear_errors() {
    let out = run_args(&["zenohsrc key-expr=a//b ! fakesink"]);
    out.fails_with(2, "not a Zenoh key expression");
    let out = run_args(&["fakesrc ! zenohsink key-expr=a connect=nonsense"]);
    out.fails_with(2, "connect: `nonsense` is not a Zenoh endpoint");
    let out = run_args(&["fakesrc ! zenohqueryable key-expr=a/*"]);
    out.fails_with(2, "has wildcards");
    let out = run_args(&["zenohsrc key-expr=a config=/nonexistent.json5 ! fakesink"]);
    out.fails_with(2, "/nonexistent.json5");
    // A client with no router to reach.
    let port = closed_port();
    let out = run_args(&[&format!(
        "fakesrc num-buffers=1 ! zenohsink key-expr=a mode=client connect=tcp/127.0.0.1:{port} {LOCAL}"
    )]);
    out.fails_with(1, "cannot open a Zenoh session");
}

#[test]
fn a_queryable_answers_with_its_latest_buffers() {
    let dir = tmp();
    let input = file(dir.path(), "in.bin", b"0123456789");
    // The queryable keeps the last 3 of 10 one-byte buffers and, after end of stream, goes on
    // answering until Ctrl-C.
    let mut q = Proc::spawn(
        &[
            "-m",
            "-e",
            &format!(
                "filesrc {} blocksize=1 ! zenohqueryable key-expr=test/q history=3 \
                 keep-serving=true listen=tcp/127.0.0.1:0 {LOCAL}",
                prop("location", &input),
            ),
        ],
        None,
    );
    let at = endpoint(&mut q);
    q.wait_for("answering queries until Ctrl-C");
    let out = run_args(&[
        "-q",
        "--tap-format=json",
        "--tap",
        "z",
        &format!("zenohquerier name=z key-expr=test/q connect={at} {LOCAL} ! fdsink"),
    ])
    .ok();
    assert_eq!(out.stdout, b"789");
    let seqs: Vec<u64> = tapped(&out.stderr)
        .iter()
        .filter_map(|t| t["sequence"].as_u64())
        .collect();
    assert_eq!(seqs, [7, 8, 9], "the replies keep their metadata");
    let out = run_args(&[
        "-q",
        &format!("zenohquerier key-expr=test/q?last=1 connect={at} {LOCAL} ! fdsink"),
    ])
    .ok();
    assert_eq!(out.stdout, b"9");
    q.signal(Signal::INT);
    q.finish().ok();
}

// --- other Zenoh programs ---------------------------------------------------------------------

/// Whether Python's `zenoh` (the eclipse-zenoh package) is there; CI installs it.
fn python_zenoh() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import zenoh"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok && std::env::var_os("CI").is_some() {
        panic!("CI must install Python's eclipse-zenoh (.ci/run does)");
    }
    ok
}

/// A Python Zenoh program: `script` runs with `conf` a zenoh.Config for `endpoint` (connect,
/// or listen with `listen=True`), multicast scouting off.
fn python(script: &str, mode: &str, connect: &[&str], listen: &[&str]) -> std::process::Child {
    let conf = format!(
        "import json, sys, zenoh\n\
         conf = zenoh.Config()\n\
         conf.insert_json5('mode', json.dumps({mode:?}))\n\
         conf.insert_json5('scouting/multicast/enabled', 'false')\n\
         conf.insert_json5('connect/endpoints', json.dumps({connect:?}))\n\
         conf.insert_json5('listen/endpoints', json.dumps({listen:?}))\n"
    );
    Command::new("python3")
        .args(["-c", &format!("{conf}{script}")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3")
}

/// Reads a child's stdout lines until one starts with `prefix`; returns the rest of it.
fn python_line(child: &mut std::process::Child, prefix: &str) -> String {
    let out = child.stdout.as_mut().unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8];
    loop {
        let n = out.read(&mut byte).unwrap();
        assert!(n == 1, "python ended before printing {prefix}");
        if byte[0] == b'\n' {
            let text = String::from_utf8_lossy(&line).into_owned();
            if let Some(rest) = text.strip_prefix(prefix) {
                return rest.to_owned();
            }
            line.clear();
        } else {
            line.push(byte[0]);
        }
    }
}

/// An endpoint on a port nothing listens on, for a Python peer to listen on.
fn free_endpoint() -> String {
    format!("tcp/127.0.0.1:{}", closed_port())
}

#[test]
fn python_publishes_into_zenohsrc_and_reads_zenohsink() {
    if !python_zenoh() {
        return;
    }
    // Python publishes 50 samples once zenohsrc's subscriber matches.
    let (sub, at) = subscriber("num-buffers=50");
    let mut py = python(
        "s = zenoh.open(conf)\n\
         p = s.declare_publisher('test/a')\n\
         while not p.matching_status.matching:\n    import time; time.sleep(0.01)\n\
         for i in range(50):\n    p.put(b'sample %03d;' % i)\n\
         print('sent', flush=True)\n\
         import time; time.sleep(60)\n",
        "peer",
        &[&at],
        &[],
    );
    let sub = sub.finish().ok();
    let want: Vec<u8> = (0..50)
        .flat_map(|i| format!("sample {i:03};").into_bytes())
        .collect();
    sub.assert_stdout(&want);
    let _ = py.kill();
    let _ = py.wait();

    // zenohsink into a Python subscriber, which prints the payloads' length and the data's
    // encoding (the end of stream's names the sink instead).
    let ep = free_endpoint();
    let mut py = python(
        "s = zenoh.open(conf)\n\
         sub = s.declare_subscriber('test/b')\n\
         print('ready', flush=True)\n\
         total = bytearray()\n\
         for sample in sub:\n\
         \x20   if sample.attachment is not None and len(sample.payload) == 0:\n\
         \x20       break\n\
         \x20   total += sample.payload.to_bytes()\n\
         \x20   enc = sample.encoding\n\
         print('encoding', enc, flush=True)\n\
         import hashlib\n\
         print('got', len(total), hashlib.sha256(total).hexdigest(), flush=True)\n",
        "peer",
        &[],
        &[&ep],
    );
    python_line(&mut py, "ready");
    let dir = tmp();
    let data = random_bytes(300_007, 93);
    let input = file(dir.path(), "in.bin", &data);
    send_file(
        &input,
        &format!(
            "blocksize=4096 ! text/plain ! zenohsink key-expr=test/b connect={ep} {LOCAL} \
             wait-subscribers=1"
        ),
    );
    let encoding = python_line(&mut py, "encoding ");
    assert!(encoding.starts_with("text/plain"), "{encoding}");
    let got = python_line(&mut py, "got ");
    let digest = sha256_hex(&data);
    assert_eq!(got, format!("{} {digest}", data.len()));
    assert!(py.wait().unwrap().success());
}

/// The SHA-256 of `data` in hex, by Python (the tests have no hashing crate).
fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sys, hashlib; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn two_clients_talk_through_a_router() {
    if !python_zenoh() {
        return;
    }
    // A Zenoh router (the eclipse-zenoh package's own runtime in router mode: what zenohd runs,
    // without its plugins).
    let ep = free_endpoint();
    let mut router = python(
        "s = zenoh.open(conf)\n\
         print('router', s.zid(), flush=True)\n\
         import time\n\
         while True: time.sleep(1)\n",
        "router",
        &[],
        &[&ep],
    );
    python_line(&mut router, "router ");
    let dir = tmp();
    let data = random_bytes(500_009, 94);
    let input = file(dir.path(), "in.bin", &data);
    let mut sub = Proc::spawn(
        &[
            "-q",
            "-m",
            &format!("zenohsrc key-expr=test/r mode=client connect={ep} {LOCAL} ! fdsink"),
        ],
        None,
    );
    sub.wait_for("subscribed");
    send_file(
        &input,
        &format!(
            "blocksize=65536 ! zenohsink key-expr=test/r mode=client connect={ep} {LOCAL} \
             wait-subscribers=1"
        ),
    );
    let done = sub.finish().ok();
    done.assert_stdout(&data);
    let _ = router.kill();
    let _ = router.wait();
}

/// Two network namespaces joined by a veth pair (10.77.0.1 and 10.77.0.2), removed on drop;
/// `None` where the sandbox does not allow them (not root, no `ip`).
struct TwoHosts {
    a: String,
    b: String,
}

impl TwoHosts {
    fn new() -> Option<TwoHosts> {
        let id = std::process::id();
        let hosts = TwoHosts {
            a: format!("pxa{id}"),
            b: format!("pxb{id}"),
        };
        let (va, vb) = (format!("pxva{id}"), format!("pxvb{id}"));
        let ip = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let ok = ip(&["netns", "add", &hosts.a])
            && ip(&["netns", "add", &hosts.b])
            && ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])
            && ip(&["link", "set", &va, "netns", &hosts.a])
            && ip(&["link", "set", &vb, "netns", &hosts.b])
            && ip(&["-n", &hosts.a, "addr", "add", "10.77.0.1/24", "dev", &va])
            && ip(&["-n", &hosts.b, "addr", "add", "10.77.0.2/24", "dev", &vb])
            && ip(&["-n", &hosts.a, "link", "set", &va, "up"])
            && ip(&["-n", &hosts.b, "link", "set", &vb, "up"]);
        ok.then_some(hosts)
    }

    /// `parallax-launch ARGS` inside namespace `ns`.
    fn launch(&self, ns: &str, args: &[&str]) -> Proc {
        let mut all = vec!["netns", "exec", ns, launch_bin()];
        all.extend_from_slice(args);
        Proc::spawn_program("ip", &all)
    }
}

impl Drop for TwoHosts {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[test]
fn two_hosts_in_network_namespaces_peer_to_peer() {
    let Some(hosts) = TwoHosts::new() else {
        eprintln!("skipped: network namespaces are not available here");
        return;
    };
    let dir = tmp();
    let data = random_bytes(700_001, 95);
    let input = file(dir.path(), "in.bin", &data);
    // Host B listens on its own address, host A connects to it.
    let mut b = hosts.launch(
        &hosts.b,
        &[
            "-q",
            &format!("zenohsrc key-expr=cams/front listen=tcp/10.77.0.2:0 {LOCAL} ! fdsink"),
        ],
    );
    let line = b.wait_for("listening = ");
    let at = line
        .rsplit(" = ")
        .next()
        .unwrap()
        .split(',')
        .find(|e| e.starts_with("tcp/10.77.0.2:"))
        .unwrap()
        .to_owned();
    hosts
        .launch(
            &hosts.a,
            &[
                "-q",
                &format!(
                    "filesrc {} ! zenohsink key-expr=cams/front connect={at} {LOCAL} \
                     wait-subscribers=1",
                    prop("location", &input)
                ),
            ],
        )
        .finish()
        .ok();
    b.finish().ok().assert_stdout(&data);
}
