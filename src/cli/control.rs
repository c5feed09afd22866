//! `--control=PATH`: a Unix socket that steers a running pipeline. One JSON object per line
//! in, one JSON line out:
//!
//! ```text
//! {"cmd": "set", "element": "v", "property": "drop", "value": true}
//! {"ok": true, "element": "v", "property": "drop", "value": true}
//! ```
//!
//! Commands: `get`, `set` (properties marked mutable while running), `pause`, `resume`, `eos`,
//! `stats`, `graph`, `reload` (replaced plugin libraries, as SIGHUP does), `subscribe` (the
//! connection then carries events, one JSON line each).
//!
//! The socket runs on threads of its own: an accepting thread and one per client (at most
//! [`MAX_CLIENTS`]). A running element never waits for it: properties are atomic words the
//! element reads between buffers, events go to subscribers through bounded queues that drop
//! when full, and a client that stops reading is dropped once a write times out.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value as Json};

use crate::exec::{Console, Pipeline, Progress, RunControl};
use crate::graph::json::{self as graph_json, current_value, pad_prefix, value_json};
use crate::registry::{Exec, LiveValue, PropKind};

/// The longest request line: a longer one is answered with an error and the connection closed.
pub const MAX_LINE: usize = 64 * 1024;
/// Clients served at once; more are answered with an error and closed.
pub const MAX_CLIENTS: usize = 32;
/// Events queued for a subscriber that does not read; more are dropped (counted).
const EVENT_QUEUE: usize = 1024;
/// How long a write to a client may block before the client is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `pause` waits for every source to hold still.
const PAUSE_WAIT: Duration = Duration::from_secs(5);

/// What the socket's threads share with the binary.
pub struct Shared {
    /// The pipeline: its graph holds the properties' shared words.
    pub pipeline: Arc<Pipeline>,
    /// The run's flags: pause, drain.
    pub control: Arc<RunControl>,
    /// Live counts, for `stats`.
    pub progress: Arc<Progress>,
    /// Where `-v` lines go.
    pub console: Console,
    /// Whether `-v` was given: property changes are printed as gst-launch -v prints them.
    pub verbose: bool,
    subscribers: Mutex<Vec<SyncSender<String>>>,
    state: Mutex<&'static str>,
    clients: AtomicUsize,
    eos_asked: std::sync::atomic::AtomicBool,
    /// Subscribers still writing events, and answers being written.
    streaming: AtomicUsize,
}

impl Shared {
    /// State for a socket steering `pipeline`.
    pub fn new(
        pipeline: Arc<Pipeline>,
        control: Arc<RunControl>,
        progress: Arc<Progress>,
        console: Console,
        verbose: bool,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            pipeline,
            control,
            progress,
            console,
            verbose,
            subscribers: Mutex::new(Vec::new()),
            state: Mutex::new("running"),
            clients: AtomicUsize::new(0),
            eos_asked: std::sync::atomic::AtomicBool::new(false),
            streaming: AtomicUsize::new(0),
        })
    }

    /// Sends an event to every subscriber: `{"event": KIND, ...fields}`. Never blocks: a
    /// subscriber whose queue is full misses it; one that is gone is forgotten.
    pub fn event(&self, kind: &str, mut fields: Json) {
        if !fields.is_object() {
            fields = json!({});
        }
        fields["event"] = json!(kind);
        let line = fields.to_string();
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        subs.retain(|tx| {
            !matches!(
                tx.try_send(line.clone()),
                Err(TrySendError::Disconnected(_))
            )
        });
    }

    /// Turns a line the engine printed (`-m` messages, warnings) into an event.
    pub fn console_line(&self, text: &str) {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("parallax: warning: ") {
                self.event("warning", json!({ "text": rest }));
            } else if let Some(rest) = line.strip_prefix("message: ") {
                self.event("message", json!({ "text": rest }));
            }
        }
    }

    /// Records a state and tells subscribers.
    pub fn set_state(&self, state: &'static str) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
        self.event("state", json!({ "state": state }));
    }

    /// Ends every event stream once its queued events are written, and lets answers in flight
    /// finish (waiting a second at most, for a client that does not read): called as the run
    /// ends.
    pub fn close(&self) {
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while self.streaming.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Whether a client asked for end of stream: the drain it caused is the run's normal end.
    pub fn eos_asked(&self) -> bool {
        self.eos_asked.load(Ordering::SeqCst)
    }

    fn state(&self) -> &'static str {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A listening control socket; removes its path when dropped.
pub struct ControlSocket {
    path: PathBuf,
}

impl ControlSocket {
    /// Binds `path` (mode 0600) and starts serving. A path that exists is refused unless it is
    /// a socket nobody listens at any more (a stale one is replaced).
    pub fn bind(path: &Path, shared: Arc<Shared>) -> Result<ControlSocket, String> {
        let shown = path.display();
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt as _;
            if !meta.file_type().is_socket() {
                return Err(format!(
                    "--control {shown}: the path exists and is not a socket; remove it or \
                     choose another"
                ));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(format!(
                    "--control {shown}: another process listens at this socket"
                ));
            }
            std::fs::remove_file(path)
                .map_err(|e| format!("--control {shown}: cannot remove the stale socket: {e}"))?;
        }
        // Created with no permission for others from the start: no window where they connect.
        let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
        let bound = UnixListener::bind(path);
        rustix::process::umask(old);
        let listener = bound.map_err(|e| format!("--control {shown}: {e}"))?;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        std::thread::Builder::new()
            .name("px-control".into())
            .spawn(move || accept(listener, shared))
            .map_err(|e| format!("--control {shown}: cannot start its thread: {e}"))?;
        Ok(ControlSocket {
            path: path.to_owned(),
        })
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept(listener: UnixListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        if shared.clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            shared.clients.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
            let _ = writeln!(
                stream,
                "{}",
                error(format!("too many clients (at most {MAX_CLIENTS})"))
            );
            continue;
        }
        let shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("px-control-cl".into())
            .spawn(move || {
                serve(stream, &shared);
                shared.clients.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            tracing::warn!("control socket: cannot start a thread for a client");
        }
    }
}

fn error(message: impl Into<String>) -> Json {
    json!({ "ok": false, "error": message.into() })
}

/// One client: a request line, an answer line, until it hangs up (or subscribes).
fn serve(stream: UnixStream, shared: &Shared) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut out = write_half;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line);
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.len() > MAX_LINE && line.last() != Some(&b'\n') {
            let _ = writeln!(
                out,
                "{}",
                error(format!(
                    "request line longer than {MAX_LINE} bytes; closing the connection"
                ))
            );
            return;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let request: Json = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                if writeln!(out, "{}", error(format!("not a JSON object: {e}"))).is_err() {
                    return;
                }
                continue;
            }
        };
        if request.get("cmd").and_then(Json::as_str) == Some("subscribe") {
            stream_events(out, shared);
            return;
        }
        // Counted while in flight, so that the run's end waits for the answer ([`Shared::close`]);
        // written with one call, so that a reader never sees half a line.
        shared.streaming.fetch_add(1, Ordering::SeqCst);
        let mut answer = handle(&request, shared).to_string();
        answer.push('\n');
        let written = out.write_all(answer.as_bytes());
        shared.streaming.fetch_sub(1, Ordering::SeqCst);
        if written.is_err() {
            return;
        }
    }
}

/// Forwards events to a subscriber until it hangs up or the run ends ([`Shared::close`]).
fn stream_events(mut out: UnixStream, shared: &Shared) {
    let (tx, rx): (SyncSender<String>, Receiver<String>) = sync_channel(EVENT_QUEUE);
    shared.streaming.fetch_add(1, Ordering::SeqCst);
    shared
        .subscribers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(tx);
    let hello = json!({"ok": true, "subscribed": true, "state": shared.state()});
    if out.write_all(format!("{hello}\n").as_bytes()).is_ok() {
        while let Ok(mut line) = rx.recv() {
            line.push('\n');
            if out.write_all(line.as_bytes()).is_err() {
                break;
            }
        }
    }
    shared.streaming.fetch_sub(1, Ordering::SeqCst);
}

/// Answers one request.
pub fn handle(request: &Json, shared: &Shared) -> Json {
    let Some(obj) = request.as_object() else {
        return error("a request is a JSON object, as {\"cmd\": \"stats\"}");
    };
    let Some(cmd) = obj.get("cmd").and_then(Json::as_str) else {
        return error("the request has no \"cmd\" string");
    };
    match cmd {
        "get" | "set" => property(obj, cmd == "set", shared),
        "pause" => {
            let all = shared.control.pause(PAUSE_WAIT);
            shared.set_state("paused");
            json!({"ok": true, "state": "paused", "sources_parked": all})
        }
        "resume" => {
            shared.control.resume();
            shared.set_state("running");
            json!({"ok": true, "state": "running"})
        }
        "eos" => {
            shared.eos_asked.store(true, Ordering::SeqCst);
            shared.control.request_drain();
            shared.control.resume();
            shared.set_state("draining");
            json!({"ok": true, "state": "draining"})
        }
        "stats" => match shared.progress.report(shared.pipeline.graph()) {
            Some(report) => {
                let graph = shared.pipeline.graph();
                let queues: Vec<Json> = shared
                    .progress
                    .queue_levels()
                    .into_iter()
                    .map(|(el, buffers, _)| {
                        json!({"element": graph.dag[daggy::NodeIndex::new(el)].name, "buffers": buffers})
                    })
                    .collect();
                json!({"ok": true, "state": shared.state(), "stats": report, "queues": queues})
            }
            None => error("the pipeline is not running yet"),
        },
        "graph" => {
            let counts: Option<Vec<(u64, u64)>> = shared
                .progress
                .report(shared.pipeline.graph())
                .map(|r| r.elements.iter().map(|e| (e.buffers, e.bytes)).collect());
            json!({"ok": true, "graph": graph_json::to_json(shared.pipeline.graph(), counts.as_deref())})
        }
        "reload" => reload(&shared.console, false),
        other => error(format!(
            "unknown command `{other}`: one of get, set, pause, resume, eos, stats, graph, \
             reload, subscribe"
        )),
    }
}

/// Reloads the plugin elements whose library was replaced (SIGHUP, or the `reload` command) and
/// says what happened on `console`: warnings always, the rest unless `quiet`. Returns the
/// answer: one entry per element, and `ok: false` with the warnings when one was not reloaded.
pub fn reload(console: &Console, quiet: bool) -> Json {
    let reloads = crate::exec::reload_plugins();
    if reloads.is_empty() && !quiet {
        console.write(
            "parallax: reload: nothing to reload (no plugin element runs isolated, and no \
             plugin library running in this process changed)\n",
        );
    }
    for r in &reloads {
        if r.is_warning() {
            console.write(&format!("parallax: warning: {r}\n"));
        } else if !quiet {
            console.write(&format!("parallax: {r}\n"));
        }
    }
    let list: Vec<Json> = reloads
        .iter()
        .map(|r| {
            json!({
                "element": r.element,
                "file": r.file.display().to_string(),
                "outcome": r.kind(),
                "detail": r.to_string(),
            })
        })
        .collect();
    let warnings: Vec<String> = reloads
        .iter()
        .filter(|r| r.is_warning())
        .map(ToString::to_string)
        .collect();
    if warnings.is_empty() {
        json!({"ok": true, "reloads": list})
    } else {
        json!({"ok": false, "error": warnings.join("; "), "reloads": list})
    }
}

fn property(obj: &serde_json::Map<String, Json>, set: bool, shared: &Shared) -> Json {
    let graph = shared.pipeline.graph();
    let Some(element) = obj.get("element").and_then(Json::as_str) else {
        return error("the request has no \"element\" string");
    };
    let Some(name) = obj.get("property").and_then(Json::as_str) else {
        return error("the request has no \"property\" string");
    };
    let Some(n) = graph_json::find(graph, element) else {
        let names: Vec<&str> = graph
            .dag
            .graph()
            .node_indices()
            .map(|n| graph.dag[n].name.as_str())
            .collect();
        return error(format!(
            "no element `{element}` in the pipeline (elements: {})",
            names.join(", ")
        ));
    };
    let node = &graph.dag[n];
    let Some(spec) = node.factory.props.iter().find(|s| s.name == name) else {
        return error(format!(
            "{element} ({}) has no property `{name}`",
            node.factory.name
        ));
    };
    if !set {
        let value = current_value(node, spec);
        return json!({"ok": true, "element": element, "property": name, "value": value_json(&value)});
    }
    let Some(live) = node.props.live(name).filter(|_| spec.mutable_while_running) else {
        return error(format!(
            "{element}: property `{name}` is fixed while the pipeline runs (parallax-inspect {} \
             lists which ones are mutable)",
            node.factory.name
        ));
    };
    if node.exec == Exec::Isolated {
        return error(format!(
            "{element} runs in a worker process (exec=isolated): its properties cannot change \
             while it runs"
        ));
    }
    let Some(given) = obj.get("value") else {
        return error("the request has no \"value\"");
    };
    let text = match given {
        Json::Bool(b) => b.to_string(),
        Json::Number(x) => x.to_string(),
        Json::String(s) => s.clone(),
        _ => {
            return error(format!(
                "{element}: `{name}` takes a {}, not {given}",
                spec.kind.type_name()
            ))
        }
    };
    let bits = if let PropKind::Str { .. } = spec.kind {
        // A selector's active-pad: a pad the element has.
        let prefix = pad_prefix(node);
        let pad = text
            .parse::<u32>()
            .ok()
            .or_else(|| text.strip_prefix(prefix)?.parse().ok());
        let mut linked: Vec<String> = if prefix.starts_with("sink") {
            graph
                .dag
                .parents(n)
                .iter(&graph.dag)
                .map(|(e, _)| graph.dag[e].sink_pad.clone())
                .collect()
        } else {
            graph
                .children(n)
                .into_iter()
                .map(|(l, _)| l.src_pad.clone())
                .collect()
        };
        linked.sort_by_key(|p| ActivePadNumber::of(p));
        match pad {
            Some(p) if linked.contains(&format!("{prefix}{p}")) => u64::from(p),
            _ => {
                return error(format!(
                    "{element}: `{name}` must name one of its linked pads ({}), not `{text}`",
                    linked.join(", ")
                ))
            }
        }
    } else {
        match spec
            .parse(&text)
            .map_err(|e| e.to_string())
            .and_then(|v| LiveValue::encode(&spec.kind, &v).ok_or_else(|| "no value".into()))
        {
            Ok(bits) => bits,
            Err(e) => return error(format!("{element}: `{name}`: {e}")),
        }
    };
    live.store_bits(bits);
    let value = current_value(node, spec);
    if shared.verbose {
        shared.console.write(&format!(
            "/pipeline0/{element}: {name} = {value} (control socket)\n"
        ));
    }
    shared.event(
        "property",
        json!({"element": element, "property": name, "value": value_json(&value)}),
    );
    json!({"ok": true, "element": element, "property": name, "value": value_json(&value)})
}

use daggy::Walker as _;

/// Sorts pads by their number (`sink_2` before `sink_10`).
struct ActivePadNumber;

impl ActivePadNumber {
    fn of(pad: &str) -> u32 {
        crate::element::ActivePad::parse(pad).unwrap_or(u32::MAX)
    }
}
