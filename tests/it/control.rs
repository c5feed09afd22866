//! The control socket (`--control`), the live view (`parallax-top`), the metrics endpoint
//! (`--metrics`) and the JSON graph (`--graph=json`). Every step that depends on the pipeline
//! having done something waits for it through the socket's own `stats` (a handshake), never
//! on a sleep.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::support::*;

/// A connection to a control socket.
pub(crate) struct Client {
    out: UnixStream,
    input: BufReader<UnixStream>,
}

impl Client {
    /// Connects once the socket appears (the pipeline is being built meanwhile).
    pub(crate) fn connect(path: &Path) -> Client {
        let deadline = Instant::now() + WATCHDOG;
        loop {
            if let Ok(out) = UnixStream::connect(path) {
                out.set_read_timeout(Some(WATCHDOG)).unwrap();
                let input = BufReader::new(out.try_clone().unwrap());
                return Client { out, input };
            }
            assert!(Instant::now() < deadline, "no control socket at {path:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.out.write_all(bytes).unwrap();
    }

    fn line(&mut self) -> Value {
        let mut line = String::new();
        self.input.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    pub(crate) fn ask(&mut self, request: Value) -> Value {
        self.send_raw(format!("{request}\n").as_bytes());
        self.line()
    }

    pub(crate) fn ok(&mut self, request: Value) -> Value {
        let answer = self.ask(request.clone());
        assert_eq!(answer["ok"], true, "{request} -> {answer}");
        answer
    }

    /// Live stats of `element`.
    pub(crate) fn element(&mut self, name: &str) -> Value {
        let stats = self.ok(json!({"cmd": "stats"}));
        element(&stats["stats"], name).clone()
    }

    /// Waits until `element` took in `n` buffers (passed or dropped).
    /// Waits until `name` has had `n` buffers, passed or dropped. A selector counts what it
    /// lets through and what it drops apart.
    pub(crate) fn wait_taken(&mut self, name: &str, n: u64) {
        self.wait_counted(name, n, true)
    }

    /// Waits until transform `name` has been handed `n` buffers: its `buffers` count includes
    /// the ones it then dropped (a valve's, an identity's), so adding `dropped` would count
    /// those twice and return a buffer early.
    pub(crate) fn wait_entered(&mut self, name: &str, n: u64) {
        self.wait_counted(name, n, false)
    }

    fn wait_counted(&mut self, name: &str, n: u64, plus_dropped: bool) {
        let deadline = Instant::now() + WATCHDOG;
        loop {
            let stats = self.ask(json!({"cmd": "stats"}));
            if stats["ok"] != true {
                // Still being built.
                assert!(Instant::now() < deadline, "{stats}");
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            let e = element(&stats["stats"], name).clone();
            let dropped = if plus_dropped {
                e["dropped"].as_u64().unwrap()
            } else {
                0
            };
            let seen = e["buffers"].as_u64().unwrap() + dropped;
            if seen >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never took {n} buffers: {e}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

pub(crate) fn socket_in(dir: &Path) -> PathBuf {
    dir.join("control.sock")
}

fn spawn(args: &[&str]) -> Child {
    launch(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
}

/// A valve switched through the socket in mid-stream: what came through is exactly what was
/// sent while it was open. The source is a pipe the test fills one record at a time, each
/// only once the valve has taken the previous one.
#[test]
fn valve_switched_mid_stream() {
    let dir = tmp();
    let sock = socket_in(dir.path());
    let control = format!("--control={}", sock.display());
    let mut child = spawn(&[
        "-q",
        "-v",
        "--stats=json",
        &control,
        "fdsrc ! valve name=v ! fdsink",
    ]);
    let mut stdin = child.stdin.take().unwrap();
    let mut c = Client::connect(&sock);
    assert_eq!(
        c.ok(json!({"cmd": "get", "element": "v", "property": "drop"}))["value"],
        false
    );
    let mut sent = 0;
    let mut feed = |c: &mut Client, stdin: &mut std::process::ChildStdin, text: &str| {
        stdin.write_all(text.as_bytes()).unwrap();
        sent += 1;
        c.wait_entered("v", sent);
    };
    feed(&mut c, &mut stdin, "one ");
    let set = c.ok(json!({"cmd": "set", "element": "v", "property": "drop", "value": true}));
    assert_eq!(set["value"], true);
    feed(&mut c, &mut stdin, "two ");
    feed(&mut c, &mut stdin, "three ");
    c.ok(json!({"cmd": "set", "element": "v", "property": "drop", "value": false}));
    feed(&mut c, &mut stdin, "four");
    assert_eq!(
        c.ok(json!({"cmd": "get", "element": "v", "property": "drop"}))["value"],
        false
    );
    drop(stdin);
    let o = wait(child);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "one four");
    let s = stats(&o);
    assert_eq!(element(&s, "v")["dropped"], 2);
    // -v shows the changes like any other property setting.
    let err = stderr(&o);
    assert!(err.contains("/pipeline0/v: drop = true"), "{err}");
    assert!(err.contains("/pipeline0/v: drop = false"), "{err}");
    assert!(!sock.exists(), "the socket is removed at exit");
}

/// An input-selector switched through the socket: only the active input's records leave.
#[test]
fn input_selector_switched_mid_stream() {
    let dir = tmp();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    mkfifo(&a);
    mkfifo(&b);
    let sock = socket_in(dir.path());
    let control = format!("--control={}", sock.display());
    let pipeline = format!(
        "filesrc {} ! s.sink_0 filesrc {} ! s.sink_1 input-selector name=s ! fdsink",
        prop("location", &a),
        prop("location", &b)
    );
    let child = spawn(&["-q", &control, &pipeline]);
    let mut fa = std::fs::OpenOptions::new().write(true).open(&a).unwrap();
    let mut fb = std::fs::OpenOptions::new().write(true).open(&b).unwrap();
    let mut c = Client::connect(&sock);
    let steps: [(&mut std::fs::File, &str); 2] = [(&mut fa, "A1 "), (&mut fb, "B1 ")];
    let mut n = 0;
    for (f, text) in steps {
        f.write_all(text.as_bytes()).unwrap();
        n += 1;
        c.wait_taken("s", n);
    }
    // Only linked pads are accepted.
    let bad =
        c.ask(json!({"cmd": "set", "element": "s", "property": "active-pad", "value": "sink_7"}));
    assert_eq!(bad["ok"], false);
    assert!(
        bad["error"].as_str().unwrap().contains("sink_0, sink_1"),
        "{bad}"
    );
    let set =
        c.ok(json!({"cmd": "set", "element": "s", "property": "active-pad", "value": "sink_1"}));
    assert_eq!(set["value"], "sink_1");
    let steps: [(&mut std::fs::File, &str); 2] = [(&mut fa, "A2 "), (&mut fb, "B2")];
    for (f, text) in steps {
        f.write_all(text.as_bytes()).unwrap();
        n += 1;
        c.wait_taken("s", n);
    }
    drop((fa, fb));
    let o = wait(child);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "A1 B2");
}

/// Paused for a while, then resumed: counts stand still meanwhile, and the output is the
/// input, nothing lost or doubled.
#[test]
fn pause_and_resume_lose_nothing() {
    let dir = tmp();
    let sock = socket_in(dir.path());
    let control = format!("--control={}", sock.display());
    let mut child = spawn(&["-q", &control, "fdsrc ! queue ! fdsink"]);
    let data = random_bytes(4 << 20, 7);
    let mut stdin = child.stdin.take().unwrap();
    // The first half goes in at once, the second only after the pause was checked: the input
    // is still open while paused, so the run cannot have ended before the pause.
    let (go_on, may_go_on) = std::sync::mpsc::channel::<()>();
    let writer = {
        let data = data.clone();
        std::thread::spawn(move || {
            let (first, second) = data.split_at(data.len() / 2);
            for chunk in first.chunks(4096) {
                stdin.write_all(chunk).unwrap();
            }
            may_go_on.recv().unwrap();
            for chunk in second.chunks(4096) {
                stdin.write_all(chunk).unwrap();
            }
        })
    };
    // Nobody reads the output until after the pause either: the pipeline backs up to a
    // source waiting on a full queue, which is where a pause parks it.
    let (read_on, may_read) = std::sync::mpsc::channel::<()>();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        may_read.recv().unwrap();
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    let mut c = Client::connect(&sock);
    c.wait_taken("fdsrc0", 1);
    let paused = c.ok(json!({"cmd": "pause"}));
    assert_eq!(paused["state"], "paused");
    assert_eq!(paused["sources_parked"], true, "{paused}");
    let before = c.element("fdsrc0")["bytes"].clone();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            c.element("fdsrc0")["bytes"],
            before,
            "a paused source moved"
        );
    }
    c.ok(json!({"cmd": "resume"}));
    go_on.send(()).unwrap();
    read_on.send(()).unwrap();
    writer.join().unwrap();
    let o = wait(child);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let got = reader.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the output differs from the input");
}

/// `eos` drains like the first Ctrl-C, and the run ends with status 0.
#[test]
fn eos_drains_and_exits_zero() {
    let dir = tmp();
    let sock = socket_in(dir.path());
    let control = format!("--control={}", sock.display());
    let child = spawn(&[
        "--stats=json",
        &control,
        "fakesrc num-buffers=-1 sizetype=fixed sizemax=64 ! queue ! fakesink",
    ]);
    let mut c = Client::connect(&sock);
    let mut events = Client::connect(&sock);
    assert_eq!(events.ok(json!({"cmd": "subscribe"}))["subscribed"], true);
    c.wait_taken("fakesink0", 10);
    assert_eq!(c.ok(json!({"cmd": "eos"}))["state"], "draining");
    let o = wait(child);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let s = stats(&o);
    // Drained: everything the source made reached the sink.
    assert_eq!(
        element(&s, "fakesrc0")["buffers"],
        element(&s, "fakesink0")["buffers"]
    );
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        if events.input.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let e: Value = serde_json::from_str(&line).unwrap();
        seen.push(
            e["event"].as_str().unwrap_or("").to_owned() + ":" + e["state"].as_str().unwrap_or(""),
        );
    }
    assert!(seen.contains(&"state:draining".to_owned()), "{seen:?}");
    assert!(seen.contains(&"eos:".to_owned()), "{seen:?}");
}

/// Hostile clients: each gets an error line (or is dropped), the pipeline runs on undisturbed
/// and other clients are served.
#[test]
fn bad_input_is_answered_and_harmless() {
    let dir = tmp();
    let sock = socket_in(dir.path());
    let control = format!("--control={}", sock.display());
    let mut child = spawn(&[
        "-q",
        "--stats=json",
        &control,
        "fdsrc ! valve name=v ! fdsink",
    ]);
    let mut stdin = child.stdin.take().unwrap();
    let mut c = Client::connect(&sock);
    // A client that never reads: its answers pile up until writes time out.
    let mut silent = Client::connect(&sock);
    let mut many = String::new();
    for _ in 0..2000 {
        many.push_str("{\"cmd\": \"graph\"}\n");
    }
    let writer = std::thread::spawn(move || {
        let _ = silent.out.write_all(many.as_bytes());
        silent
    });
    // A subscriber that never reads.
    let mut deaf = Client::connect(&sock);
    deaf.send_raw(b"{\"cmd\": \"subscribe\"}\n");
    let cases: [(&str, &str); 9] = [
        ("not json", "not a JSON object"),
        ("[1, 2]", "a request is a JSON object"),
        ("{\"cmd\": 3}", "no \"cmd\" string"),
        ("{\"cmd\": \"fly\"}", "unknown command `fly`"),
        (
            "{\"cmd\": \"get\", \"element\": \"nope\", \"property\": \"drop\"}",
            "no element `nope`",
        ),
        (
            "{\"cmd\": \"get\", \"element\": \"v\", \"property\": \"nope\"}",
            "has no property `nope`",
        ),
        (
            "{\"cmd\": \"set\", \"element\": \"v\", \"property\": \"drop\", \"value\": \"maybe\"}",
            "expected true or false",
        ),
        (
            "{\"cmd\": \"set\", \"element\": \"v\", \"property\": \"drop\", \"value\": [true]}",
            "takes a",
        ),
        (
            "{\"cmd\": \"set\", \"element\": \"fdsink0\", \"property\": \"fd\", \"value\": 2}",
            "fixed while the pipeline runs",
        ),
    ];
    for (request, want) in cases {
        c.send_raw(format!("{request}\n").as_bytes());
        let answer = c.line();
        assert_eq!(answer["ok"], false, "{request}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(want), "{request}: {error}");
    }
    // A line of a megabyte: an error, then the connection is closed.
    let mut big = Client::connect(&sock);
    let line = vec![b'x'; 1 << 20];
    let _ = big.out.write_all(&line);
    let answer = big.line();
    assert!(
        answer["error"].as_str().unwrap().contains("longer than"),
        "{answer}"
    );
    // The pipeline was not disturbed, and the first client is still served.
    stdin.write_all(b"still flowing").unwrap();
    c.wait_entered("v", 1);
    drop(stdin);
    let o = wait(child);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "still flowing");
    drop(writer);
    drop(deaf);
}

/// A path that is not a socket, or a live socket, is refused; a stale socket is replaced.
#[test]
fn socket_path_is_checked() {
    let dir = tmp();
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    let o = run_expecting(
        launch(&[
            &format!("--control={}", file.display()),
            "fakesrc num-buffers=1 ! fakesink",
        ]),
        2,
    );
    assert!(stderr(&o).contains("not a socket"), "{}", stderr(&o));
    // A socket nobody listens at any more.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    run_expecting(
        launch(&[
            &format!("--control={}", stale.display()),
            "fakesrc num-buffers=1 ! fakesink",
        ]),
        0,
    );
    // A live one.
    let live = dir.path().join("live.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&live).unwrap();
    let o = run_expecting(
        launch(&[
            &format!("--control={}", live.display()),
            "fakesrc num-buffers=1 ! fakesink",
        ]),
        2,
    );
    assert!(
        stderr(&o).contains("another process listens"),
        "{}",
        stderr(&o)
    );
}

/// The socket is private to its user.
#[test]
fn socket_mode_is_0600() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tmp();
    let sock = socket_in(dir.path());
    let control = format!("--control={}", sock.display());
    let mut child = spawn(&[&control, "fdsrc ! fakesink"]);
    let _c = Client::connect(&sock);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    drop(child.stdin.take());
    let o = wait(child);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// The graph validates against its versioned JSON Schema (`schemas/graph-1.schema.json`,
/// draft 2020-12), and holds together beyond what a schema can say: counts match, every
/// pad's peer names a pad that points back.
fn graph_is_well_formed(g: &Value) {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schemas/graph-1.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("the schema itself is valid");
    let errors: Vec<String> = validator
        .iter_errors(g)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{g}");
    assert_eq!(g["schema"], 1);
    let elements = g["elements"].as_array().unwrap();
    let links = g["links"].as_array().unwrap();
    assert_eq!(g["counts"]["elements"], elements.len());
    assert_eq!(g["counts"]["links"], links.len());
    assert!(g["counts"]["threads"].as_u64().unwrap() >= 1);
    for e in elements {
        for key in ["name", "factory", "class", "domain", "exec"] {
            assert!(e[key].is_string(), "{key} in {e}");
        }
        assert!(e["thread"].is_u64() || e["thread"].is_null(), "{e}");
        for p in e["properties"].as_array().unwrap() {
            assert!(p["name"].is_string() && p["set"].is_boolean() && p["mutable"].is_boolean());
            assert!(p.get("value").is_some(), "{p}");
        }
        for p in e["pads"].as_array().unwrap() {
            assert!(p["name"].is_string() && p["peer"].is_string());
            assert!(p["direction"] == "sink" || p["direction"] == "src", "{p}");
        }
    }
    for l in links {
        for key in ["from", "to", "caps"] {
            assert!(l[key].is_string(), "{key} in {l}");
        }
    }
    // Every pad's peer points back at it.
    let pads: Vec<(String, String)> = elements
        .iter()
        .flat_map(|e| {
            e["pads"].as_array().unwrap().iter().map(move |p| {
                (
                    format!(
                        "{}.{}",
                        e["name"].as_str().unwrap(),
                        p["name"].as_str().unwrap()
                    ),
                    p["peer"].as_str().unwrap().to_owned(),
                )
            })
        })
        .collect();
    for (pad, peer) in &pads {
        assert!(
            pads.iter().any(|(p, back)| p == peer && back == pad),
            "{pad} -> {peer}"
        );
    }
}

/// The schema rejects what breaks it: a wrong version, a missing field, an unknown class.
#[test]
fn graph_schema_is_strict() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schemas/graph-1.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let o = run_expecting(
        launch(&[
            "--validate",
            "--graph=json",
            "audiotestsrc ! tee name=t ! queue ! identity exec=rt ! fakesink \
             t. ! identity exec=isolated ! udpsink host=127.0.0.1 port=9",
        ]),
        0,
    );
    let good: Value = serde_json::from_slice(&o.stdout).unwrap();
    graph_is_well_formed(&good);
    let domains: Vec<&str> = good["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["domain"].as_str().unwrap())
        .collect();
    assert!(
        domains.contains(&"async") && domains.contains(&"thread"),
        "{domains:?}"
    );
    let mut bad = good.clone();
    bad["schema"] = json!(2);
    assert!(!validator.is_valid(&bad));
    let mut bad = good.clone();
    bad["elements"][0].as_object_mut().unwrap().remove("pads");
    assert!(!validator.is_valid(&bad));
    let mut bad = good.clone();
    bad["elements"][0]["class"] = json!("gadget");
    assert!(!validator.is_valid(&bad));
    let mut bad = good;
    bad["links"][0]["from"] = json!("nopad");
    assert!(!validator.is_valid(&bad));
}

/// `--graph=json`: before a run with --validate, after it with counts, and on the socket.
#[test]
fn graph_json() {
    let o = run_expecting(
        launch(&[
            "--validate",
            "--graph=json",
            "audiotestsrc num-buffers=2 ! volume name=vol volume=0.5 ! fakesink",
        ]),
        0,
    );
    let g: Value = serde_json::from_slice(&o.stdout).unwrap();
    graph_is_well_formed(&g);
    let vol = g["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "vol")
        .unwrap();
    let volume = vol["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "volume")
        .unwrap();
    assert_eq!(volume["value"], 0.5);
    assert_eq!(volume["set"], true);
    assert_eq!(volume["mutable"], true);
    assert!(
        g["links"][0]["caps"]
            .as_str()
            .unwrap()
            .starts_with("audio/x-raw"),
        "{g}"
    );

    let o = run_expecting(
        launch(&["-q", "--graph=json", "fakesrc num-buffers=7 ! fakesink"]),
        0,
    );
    let g: Value = serde_json::from_slice(&o.stdout).unwrap();
    graph_is_well_formed(&g);
    assert_eq!(g["elements"][1]["buffers"], 7);

    // Refused where a sink writes the data to stdout.
    let o = run_expecting(
        launch(&["--graph=json", "fakesrc num-buffers=1 ! fdsink"]),
        2,
    );
    assert!(stderr(&o).contains("--graph=json"), "{}", stderr(&o));

    let dir = tmp();
    let sock = socket_in(dir.path());
    let control = format!("--control={}", sock.display());
    let mut child = spawn(&["-q", &control, "fdsrc ! valve name=v ! fakesink"]);
    let mut c = Client::connect(&sock);
    c.ok(json!({"cmd": "set", "element": "v", "property": "drop", "value": true}));
    let g = c.ok(json!({"cmd": "graph"}))["graph"].clone();
    graph_is_well_formed(&g);
    let v = g["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "v")
        .unwrap();
    assert_eq!(v["properties"][0]["value"], true, "{v}");
    drop(child.stdin.take());
    assert_eq!(code(&wait(child)), 0);
}

/// A Prometheus scrape in mid-run parses with a strict text-format parser, and once the
/// stream has passed, its counters and histogram counts are those of `--stats=json`.
#[test]
fn metrics_scraped_during_a_run() {
    let dir = tmp();
    let sock = socket_in(dir.path());
    let control = format!("--control={}", sock.display());
    let mut child = spawn(&[
        "-v",
        "--stats=json",
        &control,
        "--metrics=127.0.0.1:0",
        "fdsrc ! queue ! identity name=rt exec=rt ! valve name=v ! identity name=w exec=isolated ! fakesink",
    ]);
    // The address is printed under -v.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "no metrics line");
        if let Some(url) = line.trim().strip_prefix("metrics: http://") {
            break url.to_owned();
        }
    };
    let addr = url.trim_end_matches("/metrics").to_owned();
    let mut stdin = child.stdin.take().unwrap();
    let mut c = Client::connect(&sock);
    let chunks: [&[u8]; 4] = [b"abc", b"defgh", b"ij", b"klmnop"];
    for (i, chunk) in chunks.iter().enumerate() {
        if i == 2 {
            c.ok(json!({"cmd": "set", "element": "v", "property": "drop", "value": true}));
        }
        stdin.write_all(chunk).unwrap();
        c.wait_entered("v", i as u64 + 1);
    }
    // Everything has passed, and every thread has published its counts since: the source's
    // and the queue's (their threads publish before waiting for the next buffer), the last
    // buffer the valve let through at the sink.
    c.wait_taken("fdsrc0", 4);
    c.wait_taken("queue0", 4);
    c.wait_taken("fakesink0", 2);
    let text = scrape(&addr, "/metrics");
    assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
    assert!(
        text.contains("Content-Type: text/plain; version=0.0.4"),
        "{text}"
    );
    let body = text.split("\r\n\r\n").nth(1).unwrap().to_owned();
    let samples = parse_strictly(&body);
    assert!(scrape(&addr, "/other").starts_with("HTTP/1.0 404"));
    drop(stdin);
    // The rest of stderr: the stats line.
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let o = wait(child);
    assert_eq!(code(&o), 0, "{rest}");
    let line = rest.lines().find(|l| l.starts_with('{')).unwrap();
    let s: Value = serde_json::from_str(line).unwrap();
    let sample = |metric: &str, labels: &[String]| -> f64 {
        samples
            .iter()
            .find(|(n, l, _)| n == metric && labels.iter().all(|want| l.contains(want)))
            .unwrap_or_else(|| panic!("no {metric} {labels:?}: {samples:?}"))
            .2
    };
    let mut histograms = 0;
    for e in s["elements"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        let labels = [
            format!("element={name}"),
            format!("factory={}", e["factory"].as_str().unwrap()),
        ];
        for (metric, field) in [
            ("parallax_element_buffers_total", "buffers"),
            ("parallax_element_bytes_total", "bytes"),
            ("parallax_element_dropped_total", "dropped"),
            ("parallax_element_late_total", "late"),
        ] {
            assert_eq!(
                sample(metric, &labels),
                e[field].as_f64().unwrap(),
                "{metric} {name}"
            );
        }
        // Histograms: the count, the +Inf bucket and the sum of every element agree.
        let times = &e["processing_time"];
        let count = times["count"].as_f64().unwrap();
        assert_eq!(
            sample("parallax_element_processing_seconds_count", &labels),
            count,
            "{name}"
        );
        let mut inf = labels.to_vec();
        inf.push("le=+Inf".into());
        assert_eq!(
            sample("parallax_element_processing_seconds_bucket", &inf),
            count,
            "{name}"
        );
        let sum = sample("parallax_element_processing_seconds_sum", &labels);
        assert!(
            (sum - times["sum_ns"].as_f64().unwrap() / 1e9).abs() < 1e-9,
            "{name}"
        );
        histograms += u64::from(count > 0.0);
    }
    assert_eq!(element(&s, "v")["dropped"], 2);
    // The first buffer of every thread is timed: the source's and the sink's at least.
    assert!(histograms >= 2, "{s}");
    // The rt element's cycles: one per buffer, all of them in the histogram.
    let rt = &s["rt"][0];
    assert_eq!(rt["element"], "rt");
    assert_eq!(rt["cycles"], 4);
    assert_eq!(rt["cycle_time"]["count"], 4);
    let rt_labels = ["element=rt".to_owned()];
    assert_eq!(sample("parallax_rt_cycle_seconds_count", &rt_labels), 4.0);
    // One worker process for the isolated element, never replaced.
    let w = ["element=w".to_owned()];
    assert_eq!(sample("parallax_isolated_worker_starts_total", &w), 1.0);
    assert_eq!(sample("parallax_isolated_worker_restarts_total", &w), 0.0);
    // The source's pool high-water mark, as --stats has it.
    let pool = &s["pools"][0];
    let p = [format!("element={}", pool["element"].as_str().unwrap())];
    assert_eq!(
        sample("parallax_pool_high_water_slots", &p),
        pool["high_water"].as_f64().unwrap()
    );
}

/// A real Prometheus server (the `prometheus` binary, 2.x) scrapes the endpoint once a second
/// while a pipeline fed from a pipe the test holds open waits for more input: its series carry
/// Prometheus's names and labels, it took every scrape (`up` is 1), and its counters are the
/// pipeline's state, which is also what `--stats=json` says at the end.
#[test]
fn prometheus_scrapes_a_running_pipeline() {
    let Some(prometheus) = find_in_path("prometheus") else {
        eprintln!("skipped: no `prometheus` binary in PATH (.ci/run installs it)");
        return;
    };
    let dir = tmp();
    let sock = socket_in(dir.path());
    let control = format!("--control={}", sock.display());
    let mut child = spawn(&[
        "-v",
        "--stats=json",
        &control,
        "--metrics=127.0.0.1:0",
        "fdsrc ! queue ! identity name=id ! fakesink",
    ]);
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let target = loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "no metrics line");
        if let Some(url) = line.trim().strip_prefix("metrics: http://") {
            break url.trim_end_matches("/metrics").to_owned();
        }
    };
    // The rest of stderr is read meanwhile, so that -v lines never fill the pipe.
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        err.read_to_string(&mut rest).unwrap();
        rest
    });
    // The pipeline's state: three reads, each through to the sink before the next is written.
    let mut stdin = child.stdin.take().unwrap();
    let mut c = Client::connect(&sock);
    let chunks: [&[u8]; 3] = [b"abc", b"defgh", b"ij"];
    for (i, chunk) in chunks.iter().enumerate() {
        stdin.write_all(chunk).unwrap();
        c.wait_taken("fakesink0", i as u64 + 1);
    }
    let server = Prometheus::start(&prometheus, dir.path(), &target);
    // Scrapes before the last buffer passed, or before Prometheus was up, show less: wait
    // (generously: start-up and the first scrape take a few seconds) for the state to show.
    let deadline = Instant::now() + WATCHDOG;
    let buffers = loop {
        let got = server.query("parallax_element_buffers_total");
        if got.len() == 4 && got.iter().all(|(_, v)| *v == 3.0) {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never showed 3 buffers per element: {got:?}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Labels: the exporter's `element` and `factory`, and the `job` and `instance` Prometheus
    // attaches; nothing else, and no name of ours that Prometheus reserves (`__`).
    let mut elements: Vec<String> = Vec::new();
    for (labels, _) in &buffers {
        let mut keys: Vec<&str> = labels.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["__name__", "element", "factory", "instance", "job"],
            "{labels:?}"
        );
        assert_eq!(labels["job"], "parallax");
        assert_eq!(labels["instance"], target);
        elements.push(format!(
            "{}/{}",
            labels["element"].as_str().unwrap(),
            labels["factory"].as_str().unwrap()
        ));
    }
    elements.sort();
    assert_eq!(
        elements,
        [
            "fakesink0/fakesink",
            "fdsrc0/fdsrc",
            "id/identity",
            "queue0/queue"
        ]
    );
    let bytes = server.query("parallax_element_bytes_total");
    assert_eq!(bytes.len(), 4, "{bytes:?}");
    assert!(bytes.iter().all(|(_, v)| *v == 10.0), "{bytes:?}");
    assert_eq!(
        server.value("up{job=\"parallax\"}"),
        1.0,
        "{}",
        server.log()
    );
    assert_eq!(server.value("parallax_up"), 1.0);
    assert_eq!(server.value("parallax_paused"), 0.0);
    // Every histogram came through whole: as many in its +Inf bucket as its count.
    let counts = server.query("parallax_element_processing_seconds_count");
    let inf = server.query("parallax_element_processing_seconds_bucket{le=\"+Inf\"}");
    assert_eq!(counts.len(), 4, "{counts:?}");
    for (labels, count) in &counts {
        let same = inf
            .iter()
            .find(|(l, _)| l["element"] == labels["element"])
            .unwrap_or_else(|| panic!("no +Inf bucket for {labels:?}: {inf:?}"));
        assert_eq!(same.1, *count, "{labels:?}");
    }
    // Names as Prometheus wants them: lower snake case with our prefix, counters in `_total`,
    // units spelt out in base units; and the types it recorded.
    let metadata = server.get("/api/v1/metadata");
    let metadata = metadata["data"].as_object().unwrap();
    let names = server.get("/api/v1/label/__name__/values");
    let ours: Vec<&str> = names["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|n| n.starts_with("parallax_"))
        .collect();
    assert!(ours.len() > 10, "{ours:?}");
    for name in &ours {
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{name}"
        );
        assert!(!name.contains("__") && !name.ends_with('_'), "{name}");
        assert!(
            !name.contains("_ns") && !name.contains("_ms"),
            "{name}: base units"
        );
    }
    for (family, about) in metadata.iter().filter(|(n, _)| n.starts_with("parallax_")) {
        let kind = about[0]["type"].as_str().unwrap();
        let help = about[0]["help"].as_str().unwrap();
        assert!(!help.is_empty(), "{family} has no help");
        match kind {
            // Declared with its samples' name, or without the suffix (OpenMetrics' way).
            "counter" => assert!(
                family.ends_with("_total") || ours.contains(&format!("{family}_total").as_str()),
                "counter {family} is not named `_total`: {ours:?}"
            ),
            "histogram" => assert!(family.ends_with("_seconds"), "{family}"),
            "gauge" => {}
            other => panic!("{family}: type {other}"),
        }
    }
    for want in [
        ("parallax_element_buffers", "counter"),
        ("parallax_element_busy_seconds", "counter"),
        ("parallax_element_processing_seconds", "histogram"),
        ("parallax_queue_buffers", "gauge"),
    ] {
        let got = metadata
            .get(want.0)
            .or_else(|| metadata.get(&format!("{}_total", want.0)))
            .unwrap_or_else(|| panic!("no metadata for {}: {metadata:?}", want.0));
        assert_eq!(got[0]["type"], want.1, "{}", want.0);
    }
    // The end of the stream: what Prometheus had is the run's total.
    drop(stdin);
    let o = wait(child);
    let rest = rest.join().unwrap();
    assert_eq!(code(&o), 0, "{rest}");
    let s: Value =
        serde_json::from_str(rest.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    for (labels, v) in &buffers {
        let name = labels["element"].as_str().unwrap();
        assert_eq!(element(&s, name)["buffers"].as_f64(), Some(*v));
    }
    drop(server);
}

/// `name` in one of the PATH's directories.
fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A Prometheus server of a test's own: its config, its storage and its log in the test's
/// directory, on a free port, scraping one target every second. Killed when dropped.
struct Prometheus {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Prometheus {
    fn start(binary: &Path, dir: &Path, target: &str) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: parallax\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        // A port nobody listens on now; Prometheus binds it a moment later.
        let port = crate::net::closed_port();
        let addr = format!("127.0.0.1:{port}");
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start prometheus");
        Prometheus { child, addr, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET `path` from Prometheus's HTTP API: its JSON, or Null while it is not up yet.
    fn get(&self, path: &str) -> Value {
        let Ok(mut s) = std::net::TcpStream::connect(&self.addr) else {
            return Value::Null;
        };
        s.set_read_timeout(Some(WATCHDOG)).unwrap();
        if write!(s, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr).is_err() {
            return Value::Null;
        }
        let mut text = String::new();
        if s.read_to_string(&mut text).is_err() {
            return Value::Null;
        }
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        serde_json::from_str(body).unwrap_or(Value::Null)
    }

    /// An instant query: each series' labels and value (none while Prometheus starts).
    fn query(&self, promql: &str) -> Vec<(serde_json::Map<String, Value>, f64)> {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let answer = self.get(&format!("/api/v1/query?query={encoded}"));
        let Some(result) = answer["data"]["result"].as_array() else {
            return Vec::new();
        };
        result
            .iter()
            .map(|r| {
                let value = r["value"][1].as_str().unwrap().parse().unwrap();
                (r["metric"].as_object().unwrap().clone(), value)
            })
            .collect()
    }

    /// The one value of `promql`.
    fn value(&self, promql: &str) -> f64 {
        let got = self.query(promql);
        assert_eq!(got.len(), 1, "{promql}: {got:?}");
        got[0].1
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scrape(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WATCHDOG)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

/// Parses exposition text with Python's prometheus_client (strict: a malformed line, a bad
/// label escape, a sample of an undeclared type or a histogram without its `+Inf` bucket,
/// `_count` and `_sum` fails), giving (name, sorted labels, value).
fn parse_strictly(body: &str) -> Vec<(String, Vec<String>, f64)> {
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    assert family.type in ("counter", "gauge", "histogram"), family.type
    if family.type == "histogram":
        series = {}
        for s in family.samples:
            key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            series.setdefault(key, {})[s.name[len(family.name):] + ("/" + s.labels["le"] if "le" in s.labels else "")] = s.value
        for key, parts in series.items():
            assert parts["_bucket/+Inf"] == parts["_count"], (family.name, key)
            assert "_sum" in parts, (family.name, key)
            buckets = [v for k, v in parts.items() if k.startswith("_bucket/")]
            assert buckets == sorted(buckets), ("buckets are cumulative", family.name, key)
    for s in family.samples:
        labels = ",".join(sorted(f"{k}={v}" for k, v in s.labels.items()))
        print(f"{s.name}\t{labels}\t{s.value}")
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (with prometheus_client, installed by .ci/run)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let o = wait(child);
    assert_eq!(
        code(&o),
        0,
        "the exposition does not parse: {}\n{body}",
        stderr(&o)
    );
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.split('\t');
            let name = f.next().unwrap().to_owned();
            let labels = f.next().unwrap().split(',').map(str::to_owned).collect();
            (name, labels, f.next().unwrap().parse().unwrap())
        })
        .collect()
}

/// `parallax-top --once --format=json` prints one sample of the running pipeline.
#[test]
fn top_prints_one_sample() {
    let dir = tmp();
    let sock = socket_in(dir.path());
    let control = format!("--control={}", sock.display());
    let mut child = spawn(&["-q", &control, "fdsrc ! queue ! fakesink"]);
    let mut c = Client::connect(&sock);
    child.stdin.as_mut().unwrap().write_all(b"x").unwrap();
    c.wait_taken("fakesink0", 1);
    let mut top = Command::new(env!("CARGO_BIN_EXE_parallax-top"));
    top.args([&control, "--once", "--format=json", "--interval=0.05"]);
    let o = run_expecting(top, 0);
    let sample: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(sample["schema"], 1);
    assert_eq!(sample["state"], "running");
    let names: Vec<&str> = sample["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fdsrc0", "queue0", "fakesink0"]);
    for e in sample["elements"].as_array().unwrap() {
        for key in ["buffers_per_s", "bytes_per_s", "busy_percent"] {
            assert!(e[key].as_f64().is_some_and(|x| x >= 0.0), "{key} in {e}");
        }
    }
    let mut table = Command::new(env!("CARGO_BIN_EXE_parallax-top"));
    table.args([&control, "--once", "--interval=0.05"]);
    let o = run_expecting(table, 0);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("ELEMENT"));
    drop(child.stdin.take());
    assert_eq!(code(&wait(child)), 0);
    // No pipeline there: exit 1 with the reason.
    let mut gone = Command::new(env!("CARGO_BIN_EXE_parallax-top"));
    gone.args([&control, "--once"]);
    let o = run_expecting(gone, 1);
    assert!(stderr(&o).contains("cannot connect"), "{}", stderr(&o));
}

/// An async sink counts live: each datagram shows in the socket's `stats` as it is sent (not
/// only at the end), and in `parallax-top --once`, with its `late` column; its processing times
/// are sampled as a fused element's.
#[test]
fn async_elements_count_live() {
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(WATCHDOG)).unwrap();
    let port = peer.local_addr().unwrap().port();
    let dir = tmp();
    let sock = socket_in(dir.path());
    let control = format!("--control={}", sock.display());
    let pipeline = format!("fdsrc ! udpsink host=127.0.0.1 port={port}");
    let mut child = spawn(&["-q", "--stats=json", &control, &pipeline]);
    let mut stdin = child.stdin.take().unwrap();
    let mut c = Client::connect(&sock);
    let mut got = [0u8; 64];
    for (i, chunk) in [&b"one"[..], b"two!"].iter().enumerate() {
        stdin.write_all(chunk).unwrap();
        let n = peer.recv(&mut got).unwrap();
        assert_eq!(&got[..n], *chunk);
        c.wait_taken("udpsink0", i as u64 + 1);
    }
    let live = c.element("udpsink0");
    assert_eq!(live["buffers"], 2, "{live}");
    assert_eq!(live["bytes"], 7, "{live}");
    let mut top = Command::new(env!("CARGO_BIN_EXE_parallax-top"));
    top.args([&control, "--once", "--format=json", "--interval=0.05"]);
    let o = run_expecting(top, 0);
    let sample: Value = serde_json::from_slice(&o.stdout).unwrap();
    let row = sample["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "udpsink0")
        .unwrap()
        .clone();
    assert_eq!(row["buffers"], 2, "{row}");
    assert_eq!(row["late"], 0, "{row}");
    let mut table = Command::new(env!("CARGO_BIN_EXE_parallax-top"));
    table.args([&control, "--once", "--interval=0.05"]);
    let o = run_expecting(table, 0);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.lines().next().unwrap().ends_with("LATE"), "{text}");
    drop(stdin);
    let o = wait(child);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let udp = element(&stats(&o), "udpsink0").clone();
    assert_eq!(udp["buffers"], 2);
    // Async elements have processing times too, sampled as the fused ones: the first buffer
    // always.
    let times = &udp["processing_time"];
    assert!((1..=2).contains(&times["count"].as_u64().unwrap()), "{udp}");
}

/// Late buffers show live: a sink synced to the clock behind a source that stamps buffers in
/// the past counts every one of them late, in `stats` while it runs.
#[test]
fn late_buffers_count_live() {
    let dir = tmp();
    let sock = socket_in(dir.path());
    let control = format!("--control={}", sock.display());
    // identity's datarate stamps buffer k at k/rate s; sleep-time makes each take 50 ms
    // longer than its duration, so from the second on every buffer comes late.
    let mut child = spawn(&[
        "-q",
        &control,
        "fakesrc num-buffers=-1 sizetype=fixed sizemax=100 ! identity datarate=100000 \
         sleep-time=50000 ! fakesink sync=true",
    ]);
    let mut c = Client::connect(&sock);
    c.wait_taken("fakesink0", 1);
    let deadline = Instant::now() + WATCHDOG;
    loop {
        let e = c.element("fakesink0");
        if e["late"].as_u64().unwrap_or(0) >= 2 {
            assert!(e["synced"].as_u64().unwrap() >= 2, "{e}");
            break;
        }
        assert!(Instant::now() < deadline, "never late: {e}");
        std::thread::sleep(Duration::from_millis(20));
    }
    c.ok(json!({"cmd": "eos"}));
    drop(child.stdin.take());
    assert_eq!(code(&wait(child)), 0);
}

/// identity's drop-probability switched through the socket in mid-stream: 1 drops every
/// buffer, 0 none.
#[test]
fn identity_drop_probability_switched_mid_stream() {
    let dir = tmp();
    let sock = socket_in(dir.path());
    let control = format!("--control={}", sock.display());
    let mut child = spawn(&[
        "-q",
        "--stats=json",
        &control,
        "fdsrc ! identity name=i ! fdsink",
    ]);
    let mut stdin = child.stdin.take().unwrap();
    let mut c = Client::connect(&sock);
    let mut sent = 0;
    let mut feed = |c: &mut Client, text: &str| {
        stdin.write_all(text.as_bytes()).unwrap();
        sent += 1;
        c.wait_entered("i", sent);
    };
    feed(&mut c, "one ");
    let set =
        c.ok(json!({"cmd": "set", "element": "i", "property": "drop-probability", "value": 1.0}));
    assert_eq!(set["value"], 1.0);
    feed(&mut c, "two ");
    feed(&mut c, "three ");
    c.ok(json!({"cmd": "set", "element": "i", "property": "drop-probability", "value": 0}));
    feed(&mut c, "four");
    let bad =
        c.ask(json!({"cmd": "set", "element": "i", "property": "drop-probability", "value": 1.5}));
    assert_eq!(bad["ok"], false, "{bad}");
    drop(stdin);
    let o = wait(child);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "one four");
    assert_eq!(element(&stats(&o), "i")["dropped"], 2);
}

/// throttle's rate lowered through the socket: a full bucket lets one more buffer through,
/// then everything is dropped until the limit is lifted again.
#[test]
fn throttle_rate_changed_mid_stream() {
    let dir = tmp();
    let sock = socket_in(dir.path());
    let control = format!("--control={}", sock.display());
    let mut child = spawn(&[
        "-q",
        "--stats=json",
        &control,
        "fdsrc ! throttle name=t ! fdsink",
    ]);
    let mut stdin = child.stdin.take().unwrap();
    let mut c = Client::connect(&sock);
    let mut sent = 0;
    let mut feed = |c: &mut Client, text: &str| {
        stdin.write_all(text.as_bytes()).unwrap();
        sent += 1;
        c.wait_entered("t", sent);
    };
    feed(&mut c, "a ");
    // One buffer in 1000 s.
    c.ok(json!({"cmd": "set", "element": "t", "property": "buffers-per-second", "value": 0.001}));
    feed(&mut c, "b ");
    feed(&mut c, "c ");
    feed(&mut c, "d ");
    c.ok(json!({"cmd": "set", "element": "t", "property": "buffers-per-second", "value": 0}));
    feed(&mut c, "e");
    drop(stdin);
    let o = wait(child);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "a b e");
    assert_eq!(element(&stats(&o), "t")["dropped"], 2);
}

/// ratelimiter's rate raised through the socket while a buffer waits: the waiting buffer
/// goes at once instead of after 1000 s.
#[test]
fn ratelimiter_rate_changed_while_waiting() {
    let dir = tmp();
    let sock = socket_in(dir.path());
    let control = format!("--control={}", sock.display());
    let mut child = spawn(&[
        "-q",
        &control,
        "fdsrc ! queue ! ratelimiter name=r buffers-per-second=0.001 ! fdsink",
    ]);
    let mut stdin = child.stdin.take().unwrap();
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<u8>();
    let reader = std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        while out.read_exact(&mut byte).is_ok() {
            if tx.send(byte[0]).is_err() {
                break;
            }
        }
    });
    let mut c = Client::connect(&sock);
    stdin.write_all(b"a").unwrap();
    // The first buffer passes at once.
    assert_eq!(rx.recv_timeout(WATCHDOG).unwrap(), b'a');
    stdin.write_all(b"b").unwrap();
    // The second buffer left the source and the queue: the limiter holds it.
    c.wait_taken("fdsrc0", 2);
    let deadline = Instant::now() + WATCHDOG;
    loop {
        let stats = c.ok(json!({"cmd": "stats"}));
        let waiting = stats["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["element"] == "queue0")
            .map_or(0, |q| q["buffers"].as_u64().unwrap());
        if waiting == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{stats}");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(rx.try_recv().is_err(), "the second buffer did not wait");
    assert_eq!(
        c.ok(json!({"cmd": "get", "element": "r", "property": "buffers-per-second"}))["value"],
        0.001
    );
    c.ok(json!({"cmd": "set", "element": "r", "property": "buffers-per-second", "value": 0}));
    assert_eq!(rx.recv_timeout(WATCHDOG).unwrap(), b'b');
    drop(stdin);
    let o = wait(child);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    reader.join().unwrap();
}

/// audiotestsrc's freq and volume, and volume's volume, are mutable; their ranges hold.
#[test]
fn audio_properties_set_while_running() {
    let dir = tmp();
    let sock = socket_in(dir.path());
    let control = format!("--control={}", sock.display());
    let child = spawn(&[
        "-q",
        &control,
        "audiotestsrc name=a is-live=true ! volume name=v ! fakesink",
    ]);
    let mut c = Client::connect(&sock);
    c.wait_taken("fakesink0", 1);
    for (el, prop, value) in [
        ("a", "freq", 880.0),
        ("a", "volume", 0.25),
        ("v", "volume", 2.0),
    ] {
        let set = c.ok(json!({"cmd": "set", "element": el, "property": prop, "value": value}));
        assert_eq!(set["value"], value);
        let got = c.ok(json!({"cmd": "get", "element": el, "property": prop}));
        assert_eq!(got["value"], value);
    }
    let bad = c.ask(json!({"cmd": "set", "element": "a", "property": "volume", "value": 3}));
    assert_eq!(bad["ok"], false, "{bad}");
    let fixed = c.ask(json!({"cmd": "set", "element": "a", "property": "wave", "value": "saw"}));
    assert!(
        fixed["error"].as_str().unwrap().contains("fixed while"),
        "{fixed}"
    );
    c.ok(json!({"cmd": "eos"}));
    assert_eq!(code(&wait(child)), 0);
}

/// parallax-inspect marks the properties that may change while running, in its card and its
/// JSON; a fixed one carries no mark.
#[test]
fn inspect_marks_mutable_properties() {
    for (element, property) in [
        ("identity", "drop-probability"),
        ("identity", "sleep-time"),
        ("throttle", "bytes-per-second"),
        ("ratelimiter", "buffers-per-second"),
        ("audiotestsrc", "freq"),
        ("volume", "volume"),
        ("valve", "drop"),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_parallax-inspect"));
        cmd.args(["--json", element]);
        let card: Value = serde_json::from_slice(&run_expecting(cmd, 0).stdout).unwrap();
        let p = card["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == property)
            .unwrap();
        assert_eq!(p["mutable_while_running"], true, "{element} {property}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_parallax-inspect"));
        cmd.arg(element);
        let text = String::from_utf8(run_expecting(cmd, 0).stdout).unwrap();
        let at = text.find(&format!("  {property}  ")).unwrap();
        let block: String = text[at..]
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("      "))
            .collect();
        assert!(
            block.contains("mutable while running"),
            "{element} {property}: {block}"
        );
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_parallax-inspect"));
    cmd.arg("identity");
    let text = String::from_utf8(run_expecting(cmd, 0).stdout).unwrap();
    let at = text.find("  error-after  ").unwrap();
    let block: String = text[at..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("      "))
        .collect();
    assert!(!block.contains("mutable"), "{block}");
}
