//! Zenoh: `zenohsink` publishes every buffer on a key expression, `zenohsrc` subscribes to one
//! (wildcards allowed) and makes a buffer of every sample; `zenohqueryable` answers queries with
//! the latest buffers that reached it, `zenohquerier` sends a query and emits the replies.
//!
//! On the wire a sample's payload is the buffer's bytes, unchanged, so any Zenoh program reads
//! them as they are. Parallax adds an attachment: the buffer's STRM frame head (its metadata,
//! with a CRC that also covers the payload; see `parallax-inspect streampay`), and the sample's
//! encoding is the stream's caps. End of stream is a sample of its own, whose attachment is the
//! STRM end-of-stream frame and whose payload is empty. A sample without a STRM attachment (from
//! another program) becomes a buffer without metadata.
//!
//! Between processes on one host the payload may travel in Zenoh's shared memory instead: a
//! zenohsink copies a large buffer into its pool (see `zenoh_shm`), and a zenohsrc reads the
//! mapped pages in place. Zenoh sends a peer that cannot map them the bytes themselves.
//!
//! Each zenohsink and zenohsrc also declares a liveliness token under `@parallax/`, naming its
//! key expression: that is how `wait-subscribers` counts subscribers and how a subscriber tells
//! a publisher that ended from one that vanished.
//!
//! The Zenoh session and every call into it live on a thread of the element's own: Zenoh runs
//! its own runtime and may block (a full queue with `congestion-control=block`), which must never
//! hold the pipeline's async thread. The element and its thread talk through bounded channels,
//! so memory stays bounded and a slow subscriber holds the publisher back.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zenoh::bytes::{Encoding, ZBytes};
use zenoh::key_expr::KeyExpr;
use zenoh::qos::{CongestionControl, Priority, Reliability};
use zenoh::sample::{Sample, SampleKind};
use zenoh::{Config, Session, Wait as _};

use super::zenoh_shm::{Placed, ShmMode, ShmPlan, ShmPool, SHM_MIN};
use super::{basesink_props, basesrc_props, Stamper};
use crate::element::prelude::*;

/// The prefix of the liveliness tokens Parallax's elements declare (a verbatim chunk: users'
/// wildcards never match it).
const TOKENS: &str = "@parallax";

/// How often a waiting thread looks at whether the run ends.
const POLL: Duration = Duration::from_millis(20);
/// How long a zenohsrc waits, once a zenohsink's token went away, for that sink's last samples
/// and its end of stream: a router sends the token's withdrawal at control priority, ahead of
/// the data it still queues for us, so the withdrawal can arrive first.
const STRAGGLERS: Duration = Duration::from_secs(3);
/// How long a zenohsink waits, after its end of stream, for the zenohsrcs it saw to say they
/// have it, before it closes anyway: closing drops what the session still queues for a slow
/// subscriber.
const LINGER: Duration = Duration::from_secs(10);
/// The encoding of a zenohsink's end-of-stream sample names the sink, so that each subscriber
/// can acknowledge that end (a liveliness token `@parallax/ack/<sink>/<subscriber>`).
const EOS_ENCODING: &str = "parallax/eos;";

// --- the session's properties ------------------------------------------------------------------

const MODES: &[EnumValue] = &[
    EnumValue {
        nick: "peer",
        value: 0,
        doc: "Talk to other peers directly (and to routers)",
    },
    EnumValue {
        nick: "client",
        value: 1,
        doc: "Talk through one router (connect= names it, or scouting finds one)",
    },
];

const KEY_EXPR: PropSpec = PropSpec::string(
    "key-expr",
    None,
    "The Zenoh key expression (demo/camera/front; a subscriber may use * and **)",
)
.required();
const MODE: PropSpec = PropSpec::enumeration("mode", "peer", MODES, "The Zenoh session's mode");
const CONNECT: PropSpec = PropSpec::string(
    "connect",
    None,
    "Endpoints to connect to, comma-separated (tcp/192.168.1.2:7447)",
);
const LISTEN: PropSpec = PropSpec::string(
    "listen",
    None,
    "Endpoints to listen on, comma-separated (tcp/0.0.0.0:7447; port 0 picks a free port and reports it as `listening`)",
);
const CONFIG: PropSpec = PropSpec::string(
    "config",
    None,
    "A Zenoh configuration file (JSON5); the other session properties, when set, override it",
);
const SCOUTING: PropSpec = PropSpec::bool(
    "multicast-scouting",
    true,
    "Find peers and routers by UDP multicast (false: only the endpoints given)",
);

const SHM_RX_MODES: &[EnumValue] = &[
    EnumValue {
        nick: "auto",
        value: 0,
        doc: "Read what a peer on this host puts in shared memory in place",
    },
    EnumValue {
        nick: "off",
        value: 2,
        doc: "Take everything over the network link (no shared memory)",
    },
];
const SHM_RX: PropSpec = PropSpec::enumeration(
    "shm",
    "auto",
    SHM_RX_MODES,
    "Zenoh's shared-memory transport with processes on this host",
);

/// Where and how a session connects.
#[derive(Clone)]
struct SessionSpec {
    mode: Option<&'static str>,
    connect: Vec<String>,
    listen: Vec<String>,
    config: Option<String>,
    scouting: Option<bool>,
    /// Zenoh's shared-memory transport (`transport/shared_memory/enabled`), when `shm` is set.
    shm: Option<bool>,
    /// Whether the configuration, file and properties together, leaves that transport on.
    shm_enabled: bool,
}

fn endpoints(p: &Props, name: &str) -> Result<Vec<String>, ElementError> {
    Ok(p.string(name)?
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

impl SessionSpec {
    fn from_props(p: &Props, element: &'static str) -> Result<SessionSpec, ElementError> {
        let mut spec = SessionSpec {
            mode: p.is_set("mode").then(|| p.nick("mode")).transpose()?,
            connect: endpoints(p, "connect")?,
            listen: endpoints(p, "listen")?,
            config: p.string("config")?.map(str::to_owned),
            scouting: p
                .is_set("multicast-scouting")
                .then(|| p.bool("multicast-scouting"))
                .transpose()?,
            shm: p
                .is_set("shm")
                .then(|| p.nick("shm").map(|n| n != "off"))
                .transpose()?,
            shm_enabled: true,
        };
        // Checked now, so that a typo is a description error and not a failure at start.
        let config = spec
            .config()
            .map_err(|e| ElementError::Config(format!("{element}: {e}")))?;
        spec.shm_enabled = config
            .get_json("transport/shared_memory/enabled")
            .map_or(true, |on| on != "false");
        Ok(spec)
    }

    /// The Zenoh configuration: the file's, then the properties that were set.
    fn config(&self) -> Result<Config, String> {
        let mut c = match &self.config {
            Some(path) => Config::from_file(path)
                .map_err(|e| format!("cannot read the Zenoh config file {path}: {e}"))?,
            None => Config::default(),
        };
        let mode = self.mode.or(if self.config.is_none() {
            Some("peer")
        } else {
            None
        });
        if let Some(mode) = mode {
            c.insert_json5("mode", &format!("\"{mode}\""))
                .map_err(|e| format!("mode {mode}: {e}"))?;
        }
        for (key, list, prop) in [
            ("connect/endpoints", &self.connect, "connect"),
            ("listen/endpoints", &self.listen, "listen"),
        ] {
            if list.is_empty() {
                continue;
            }
            for e in list {
                e.parse::<zenoh::config::EndPoint>()
                    .map_err(|err| format!("{prop}: `{e}` is not a Zenoh endpoint: {err}"))?;
            }
            let json = serde_json::to_string(list).expect("strings serialize");
            c.insert_json5(key, &json)
                .map_err(|e| format!("{prop} {json}: {e}"))?;
        }
        if let Some(on) = self.scouting {
            c.insert_json5(
                "scouting/multicast/enabled",
                if on { "true" } else { "false" },
            )
            .map_err(|e| format!("multicast-scouting: {e}"))?;
        }
        if let Some(on) = self.shm {
            c.insert_json5(
                "transport/shared_memory/enabled",
                if on { "true" } else { "false" },
            )
            .map_err(|e| format!("shm: {e}"))?;
        }
        Ok(c)
    }

    /// Opens the session (blocking: call on the element's thread).
    fn open(&self) -> Result<Session, String> {
        let config = self.config()?;
        zenoh::open(config).wait().map_err(|e| {
            let mut what = format!("cannot open a Zenoh session: {e}");
            if !self.connect.is_empty() {
                what += &format!(" (connect={})", self.connect.join(","));
            }
            if !self.listen.is_empty() {
                what += &format!(" (listen={})", self.listen.join(","));
            }
            what
        })
    }
}

/// The key-expr property, checked.
fn key_expr(p: &Props, element: &str) -> Result<KeyExpr<'static>, ElementError> {
    let text = p
        .string("key-expr")?
        .ok_or_else(|| ElementError::Config(format!("{element}: key-expr is required")))?;
    KeyExpr::try_from(text.to_owned()).map_err(|e| {
        ElementError::Config(format!(
            "{element}: `{text}` is not a Zenoh key expression: {e}"
        ))
    })
}

/// A process-unique id for this element's liveliness token.
fn token_id() -> String {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The key expression a token under `@parallax/KIND/ID/` names, when it intersects `ours`.
fn token_matches(token: &str, kind: &str, ours: &KeyExpr<'_>) -> Option<String> {
    let rest = token.strip_prefix(TOKENS)?.strip_prefix('/')?;
    let rest = rest.strip_prefix(kind)?.strip_prefix('/')?;
    let (id, key) = rest.split_once('/')?;
    let key = KeyExpr::try_from(key).ok()?;
    key.intersects(ours).then(|| id.to_owned())
}

/// Announces each stage of an element's thread: opened (or why not), then, for a source, what
/// it receives.
type Opened = tokio::sync::oneshot::Sender<Result<Option<String>, String>>;

/// The endpoints a session listens on, for `listening` (port 0 was asked for).
fn listening(session: &Session, spec: &SessionSpec) -> Option<String> {
    if !spec.listen.iter().any(|e| e.ends_with(":0")) {
        return None;
    }
    let found: Vec<String> = session
        .info()
        .locators()
        .wait()
        .iter()
        .map(ToString::to_string)
        .collect();
    Some(found.join(","))
}

/// Starts the element's thread; the thread's own errors come back through `opened` or the
/// channels it holds.
fn spawn(element: &str, run: impl FnOnce() + Send + 'static) -> Result<Thread, ElementError> {
    std::thread::Builder::new()
        .name(format!("{element}-zenoh"))
        .spawn(run)
        .map(|h| Thread(Some(h)))
        .map_err(|e| ElementError::Failed(format!("cannot start the Zenoh thread: {e}")))
}

/// How long dropping an element waits for its thread to end.
const JOIN: Duration = Duration::from_secs(5);

/// An element's Zenoh thread. Dropping the element (after what tells the thread to stop) waits
/// for it, up to [`JOIN`], on a blocking thread of the runtime, so that the pipeline's other
/// async elements go on meanwhile: the thread closes its session and lets go of its shared memory
/// before the process exits, since Zenoh tears its shared-memory globals down at exit and a
/// thread still using them then panics.
struct Thread(Option<std::thread::JoinHandle<()>>);

impl Drop for Thread {
    fn drop(&mut self) {
        let Some(thread) = self.0.take() else {
            return;
        };
        let deadline = std::time::Instant::now() + JOIN;
        while !thread.is_finished() {
            if std::time::Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(POLL / 4);
        }
        let _ = thread.join();
    }
}

/// Waits for the element's thread to say it opened its session; reports `listening`.
async fn wait_opened(
    opened: tokio::sync::oneshot::Receiver<Result<Option<String>, String>>,
    cx: &AsyncCtx,
) -> Result<(), ElementError> {
    match opened.await {
        Ok(Ok(listening)) => {
            if let Some(l) = listening {
                cx.report_chosen("listening", l);
            }
            Ok(())
        }
        Ok(Err(e)) => Err(ElementError::Failed(e)),
        Err(_) => Err(ElementError::Failed(
            "the Zenoh thread ended before opening its session".into(),
        )),
    }
}

// --- zenohsink ---------------------------------------------------------------------------------

const SHM_MODES: &[EnumValue] = &[
    EnumValue {
        nick: "auto",
        value: 0,
        doc: "Buffers of 4 KiB or more go through shared memory to peers on this host; \
              without a pool (none can be made, or it is full) they go as usual",
    },
    EnumValue {
        nick: "on",
        value: 1,
        doc: "As auto, but a pool that cannot be made is an error",
    },
    EnumValue {
        nick: "off",
        value: 2,
        doc: "Everything goes over the network link (no shared memory)",
    },
];

const RELIABILITY: &[EnumValue] = &[
    EnumValue {
        nick: "reliable",
        value: 0,
        doc: "Lost messages are sent again",
    },
    EnumValue {
        nick: "best-effort",
        value: 1,
        doc: "Lost messages stay lost",
    },
];

const CONGESTION: &[EnumValue] = &[
    EnumValue {
        nick: "block",
        value: 0,
        doc: "A full queue holds the pipeline back (nothing is lost)",
    },
    EnumValue {
        nick: "drop",
        value: 1,
        doc: "A full queue drops the buffer (end of stream is never dropped)",
    },
];

const PRIORITIES: &[EnumValue] = &[
    EnumValue {
        nick: "real-time",
        value: 1,
        doc: "Zenoh's highest priority",
    },
    EnumValue {
        nick: "interactive-high",
        value: 2,
        doc: "Interactive, high",
    },
    EnumValue {
        nick: "interactive-low",
        value: 3,
        doc: "Interactive, low",
    },
    EnumValue {
        nick: "data-high",
        value: 4,
        doc: "Data, high",
    },
    EnumValue {
        nick: "data",
        value: 5,
        doc: "Data (Zenoh's default)",
    },
    EnumValue {
        nick: "data-low",
        value: 6,
        doc: "Data, low",
    },
    EnumValue {
        nick: "background",
        value: 7,
        doc: "Zenoh's lowest priority",
    },
];

fn priority(nick: &str) -> Priority {
    match nick {
        "real-time" => Priority::RealTime,
        "interactive-high" => Priority::InteractiveHigh,
        "interactive-low" => Priority::InteractiveLow,
        "data-high" => Priority::DataHigh,
        "data-low" => Priority::DataLow,
        "background" => Priority::Background,
        _ => Priority::Data,
    }
}

pub(crate) static ZENOHSINK: Factory = Factory {
    name: "zenohsink",
    aliases: &[],
    klass: Klass::Sink,
    summary: "Publishes every buffer as a Zenoh sample on a key expression",
    doc: "Opens a Zenoh session (`mode`, `connect`, `listen`, `config`) and puts each buffer on \
          `key-expr`: the payload is the buffer's bytes, unchanged; the attachment is its STRM \
          frame head (metadata: sequence, timestamps, offsets, flags, fields), and the encoding \
          is the stream's caps. At end of stream it publishes an end-of-stream sample (its \
          encoding names the sink) and closes the session once every zenohsrc it saw has \
          acknowledged it or gone (10 s at most). `wait-subscribers=N` holds the \
          first buffer until N subscribers match (each zenohsrc counts; a subscriber of another \
          program counts as one while no zenohsrc matches), so the head of the stream is not \
          lost. With `congestion-control=block` (the default) a slow subscriber holds the \
          pipeline back; with `drop` buffers are dropped instead. A session that cannot open \
          is an error naming the endpoints. With `shm=auto` (the default) a buffer of 4 KiB or \
          more is copied once into a Zenoh shared-memory pool and published from there: a \
          subscriber in another process on this host maps it and reads it in place, and any \
          other (on another host, or with shared memory off) gets the bytes over its link as \
          usual. The pool is sized from the buffers (32 of the first, at least 4 MiB) and grows \
          to 256 MiB while readers hold its chunks, or is `shm-size` bytes, fixed; a buffer \
          that finds no room goes the ordinary way, so a full pool never holds the pipeline \
          up. `shm=on` makes a pool that cannot be made an error (Zenoh locks the pool in \
          memory: see `ulimit -l`); `shm=off` turns the transport off for the session. `-m` \
          says at the end how many buffers went through shared memory.",
    pads: Pads::SINK,
    props: basesink_props![
        KEY_EXPR,
        MODE,
        CONNECT,
        LISTEN,
        CONFIG,
        SCOUTING,
        PropSpec::enumeration(
            "reliability",
            "reliable",
            RELIABILITY,
            "Whether lost messages are sent again"
        ),
        PropSpec::enumeration(
            "congestion-control",
            "block",
            CONGESTION,
            "What a full queue does"
        ),
        PropSpec::enumeration(
            "priority",
            "data",
            PRIORITIES,
            "The samples' Zenoh priority"
        ),
        PropSpec::bool(
            "express",
            false,
            "Send each sample at once instead of batching small ones"
        ),
        PropSpec::uint(
            "wait-subscribers",
            0,
            0,
            u32::MAX as u64,
            "Hold the first buffer until this many subscribers match (0: do not wait)"
        ),
        PropSpec::enumeration(
            "shm",
            "auto",
            SHM_MODES,
            "Zenoh's shared-memory transport with processes on this host"
        ),
        PropSpec::uint(
            "shm-size",
            0,
            0,
            1 << 40,
            "The shared-memory pool's size in bytes, fixed (0: sized from the buffers, growing to 256 MiB)"
        ),
        PropSpec::bool("sync", false, "Sync on the clock").ignored(super::NO_CLOCK),
    ],
    hints: Hints::ASYNC_IO,
    build: |p| {
        let caps = p.sink_caps();
        let spec = SessionSpec::from_props(p, "zenohsink")?;
        let shm = ShmPlan {
            mode: match p.nick("shm")? {
                "on" => ShmMode::On,
                "off" => ShmMode::Off,
                // A config file may turn the transport off; a pool would be of no use.
                _ if !spec.shm_enabled => ShmMode::Off,
                _ => ShmMode::Auto,
            },
            size: usize::try_from(p.uint("shm-size")?).unwrap_or(usize::MAX),
        };
        Ok(ElementImpl::AsyncSink(Box::new(ZenohSink {
            spec,
            key: key_expr(p, "zenohsink")?,
            opts: PutOptions {
                reliable: p.nick("reliability")? == "reliable",
                drop: p.nick("congestion-control")? == "drop",
                priority: priority(p.nick("priority")?),
                express: p.bool("express")?,
                encoding: if caps.is_any() {
                    Encoding::APPLICATION_OCTET_STREAM
                } else {
                    Encoding::from(caps.to_string())
                },
                caps: (!caps.is_any()).then(|| caps.to_string()),
            },
            wait: p.uint("wait-subscribers")?,
            shm,
            link: None,
            thread: None,
            sent: 0,
        })))
    },
};

/// How zenohsink publishes.
#[derive(Clone)]
struct PutOptions {
    reliable: bool,
    drop: bool,
    priority: Priority,
    express: bool,
    encoding: Encoding,
    caps: Option<String>,
}

/// What a publishing element sends its thread.
enum ToPublisher {
    Buffer(Buffer),
    /// End of stream: publish it, flush, close, and answer how it went.
    Eos(tokio::sync::oneshot::Sender<Result<Ended, String>>),
}

/// What a publishing thread says at the end.
struct Ended {
    /// zenohsrcs that did not acknowledge the end of stream in time.
    unacked: usize,
    /// Buffers published from shared memory, and large ones that went the ordinary way
    /// (and why).
    shared: u64,
    copied: u64,
    why_copied: String,
}

/// A buffer's bytes as a Zenoh payload, without a copy: the payload holds the buffer.
struct Payload(Buffer);

impl AsRef<[u8]> for Payload {
    fn as_ref(&self) -> &[u8] {
        self.0.data()
    }
}

fn payload(buf: Buffer) -> ZBytes {
    ZBytes::from(bytes::Bytes::from_owner(Payload(buf)))
}

/// The channel to a publishing thread, and what the thread says when it stops.
struct Link {
    tx: kanal::AsyncSender<ToPublisher>,
    failed: Arc<Mutex<Option<String>>>,
    /// Set when the run ends while the thread still waits for subscribers.
    cancel: Arc<AtomicBool>,
}

impl Link {
    /// The thread's error, once it stopped.
    fn error(&self) -> ElementError {
        let why = self
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "the Zenoh thread stopped".into());
        ElementError::Failed(why)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// zenohsink's state.
struct ZenohSink {
    spec: SessionSpec,
    key: KeyExpr<'static>,
    opts: PutOptions,
    wait: u64,
    shm: ShmPlan,
    link: Option<Link>,
    /// After `link`: dropped once the thread was told to stop.
    thread: Option<Thread>,
    sent: u64,
}

impl AsyncSink for ZenohSink {
    async fn start(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        let (tx, rx) = kanal::bounded_async::<ToPublisher>(4);
        let (opened_tx, opened) = tokio::sync::oneshot::channel();
        let (ready_tx, ready) = tokio::sync::oneshot::channel::<()>();
        let failed = Arc::new(Mutex::new(None));
        let cancel = Arc::new(AtomicBool::new(false));
        let thread = Publisher {
            spec: self.spec.clone(),
            key: self.key.clone(),
            opts: self.opts.clone(),
            wait: self.wait,
            shm: self.shm,
            cancel: Arc::clone(&cancel),
        };
        let (f, name) = (Arc::clone(&failed), cx.name().to_owned());
        self.thread = Some(spawn(&name, move || {
            let rx = rx.to_sync();
            if let Err(e) = thread.run(opened_tx, ready_tx, &rx) {
                *f.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
            }
            // What the element still queued (its end of stream, waiting for an answer) is
            // dropped with the channel, so the element hears that the thread stopped and why.
            let _ = rx.close();
        })?);
        self.link = Some(Link { tx, failed, cancel });
        wait_opened(opened, cx).await?;
        if self.wait > 0 {
            cx.message(format_args!(
                "waiting for {} subscriber(s) on {}",
                self.wait, self.key
            ));
            tokio::select! {
                r = ready => if r.is_err() {
                    return Err(self.link.as_ref().expect("set above").error());
                },
                () = cx.drain_or_stop() => {
                    self.link.as_ref().expect("set above").cancel.store(true, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    async fn render(&mut self, buf: Buffer, _cx: &mut AsyncCtx) -> Result<SinkFlow, ElementError> {
        let link = self.link.as_ref().expect("start ran");
        if link.tx.send(ToPublisher::Buffer(buf)).await.is_err() {
            return Err(link.error());
        }
        self.sent += 1;
        Ok(SinkFlow::Continue)
    }

    async fn finish(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        let Some(link) = self.link.as_ref() else {
            return Ok(());
        };
        let (done_tx, done) = tokio::sync::oneshot::channel();
        if link.tx.send(ToPublisher::Eos(done_tx)).await.is_err() {
            return Err(link.error());
        }
        match done.await {
            Ok(Ok(Ended {
                unacked,
                shared,
                copied,
                why_copied,
            })) => {
                if unacked > 0 {
                    cx.warn(format!(
                        "{unacked} zenohsrc on {} did not acknowledge end of stream within {} s; \
                         the session closed anyway, and what it still held for them is lost",
                        self.key,
                        LINGER.as_secs()
                    ));
                }
                cx.message(format_args!(
                    "published {} buffers and end of stream on {}",
                    self.sent, self.key
                ));
                if shared + copied > 0 {
                    cx.message(format_args!(
                        "{shared} buffers went out through shared memory; {copied} of {SHM_MIN} \
                         bytes or more did not ({why_copied})"
                    ));
                }
                Ok(())
            }
            Ok(Err(e)) => Err(ElementError::Failed(e)),
            Err(_) => Err(link.error()),
        }
    }
}

/// zenohsink's thread.
struct Publisher {
    spec: SessionSpec,
    key: KeyExpr<'static>,
    opts: PutOptions,
    wait: u64,
    shm: ShmPlan,
    cancel: Arc<AtomicBool>,
}

impl Publisher {
    fn run(
        self,
        opened: Opened,
        ready: tokio::sync::oneshot::Sender<()>,
        rx: &kanal::Receiver<ToPublisher>,
    ) -> Result<(), String> {
        let session = match self.spec.open() {
            Ok(s) => s,
            Err(e) => {
                let _ = opened.send(Err(e.clone()));
                return Err(e);
            }
        };
        let result = self.publish(&session, opened, ready, rx);
        let _ = session.close().wait();
        result
    }

    fn publish(
        &self,
        session: &Session,
        opened: Opened,
        ready: tokio::sync::oneshot::Sender<()>,
        rx: &kanal::Receiver<ToPublisher>,
    ) -> Result<(), String> {
        let key = &self.key;
        let zerr = |what: &str, e: zenoh::Error| format!("{what} on {key}: {e}");
        let publisher = session
            .declare_publisher(key.clone())
            .reliability(if self.opts.reliable {
                Reliability::Reliable
            } else {
                Reliability::BestEffort
            })
            .congestion_control(if self.opts.drop {
                CongestionControl::Drop
            } else {
                CongestionControl::Block
            })
            .priority(self.opts.priority)
            .express(self.opts.express)
            .encoding(self.opts.encoding.clone())
            .wait()
            .map_err(|e| zerr("cannot declare a publisher", e))?;
        let id = token_id();
        let token = session
            .liveliness()
            .declare_token(format!("{TOKENS}/zenohsink/{id}/{key}"))
            .wait()
            .map_err(|e| zerr("cannot declare a liveliness token", e))?;
        let _ = opened.send(Ok(listening(session, &self.spec)));
        if self.wait > 0 {
            self.wait_for_subscribers(session, &publisher)?;
        }
        let _ = ready.send(());
        let mut pool = ShmPool::new(self.shm);
        let mut caps = self.opts.caps.clone();
        let mut head = Vec::with_capacity(128);
        while let Ok(msg) = rx.recv() {
            match msg {
                ToPublisher::Buffer(buf) => {
                    head.clear();
                    if let Some(c) = caps.take() {
                        stream_frame::encode_caps(&c, &mut head);
                    }
                    stream_frame::encode_buffer_head(&buf, &mut head)
                        .map_err(|e| format!("cannot frame buffer {}: {e}", buf.meta.sequence))?;
                    let payload = match pool.place(buf.data())? {
                        Placed::Shared(chunk) => ZBytes::from(chunk),
                        Placed::Ordinary => payload(buf),
                    };
                    publisher
                        .put(payload)
                        .attachment(ZBytes::from(head.as_slice()))
                        .wait()
                        .map_err(|e| zerr("cannot publish", e))?;
                }
                ToPublisher::Eos(done) => {
                    head.clear();
                    stream_frame::encode_eos(&mut head);
                    // Watched before the end goes out, so that no acknowledgement is missed.
                    let acks = self.watch_acks(session, &id);
                    // End of stream goes through whatever the congestion: a dropped one would
                    // leave subscribers waiting.
                    let sent = session
                        .put(key.clone(), ZBytes::new())
                        .attachment(ZBytes::from(head.as_slice()))
                        .encoding(Encoding::from(format!("{EOS_ENCODING}{id}")))
                        .congestion_control(CongestionControl::Block)
                        .priority(self.opts.priority)
                        .wait()
                        .map_err(|e| zerr("cannot publish end of stream", e));
                    let unacked = match (&sent, acks) {
                        (Ok(()), Ok(acks)) => self.await_acks(session, acks),
                        _ => 0,
                    };
                    // Closing drops what is still queued for a peer: hence the wait above.
                    // The token stays declared until then: undeclared first, its withdrawal
                    // (sent at control priority) could overtake the samples still queued, and
                    // a subscriber would take a finished publisher for a vanished one.
                    let closed = sent.and_then(|()| {
                        session
                            .close()
                            .wait()
                            .map(|()| Ended {
                                unacked,
                                shared: pool.shared,
                                copied: pool.copied,
                                why_copied: pool.why_copied().to_owned(),
                            })
                            .map_err(|e| format!("closing the Zenoh session: {e}"))
                    });
                    // Shared memory is let go before the element hears of the end: the process
                    // may exit as soon as it does.
                    drop((token, publisher, pool));
                    let _ = done.send(closed);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Watches the acknowledgements of this sink's end of stream (sink `id`): the ids of the
    /// zenohsrcs that have it.
    fn watch_acks(
        &self,
        session: &Session,
        id: &str,
    ) -> Result<(impl Sized, kanal::Receiver<String>), String> {
        let (tx, rx) = kanal::unbounded();
        let watch = session
            .liveliness()
            .declare_subscriber(format!("{TOKENS}/ack/{id}/*"))
            .history(true)
            .callback(move |s: Sample| {
                if s.kind() == SampleKind::Put {
                    if let Some(src) = s.key_expr().as_str().rsplit('/').next() {
                        let _ = tx.send(src.to_owned());
                    }
                }
            })
            .wait()
            .map_err(|e| format!("cannot watch for acknowledgements: {e}"))?;
        Ok((watch, rx))
    }

    /// Waits until every zenohsrc on our key that was there at the end has acknowledged it or
    /// gone, for at most [`LINGER`] (or until Ctrl-C): what the session still queues for a slow
    /// subscriber then reaches it before the session closes. Other programs' subscribers are
    /// not known and not waited for. Answers how many did neither in time.
    fn await_acks(
        &self,
        session: &Session,
        (_watch, acks): (impl Sized, kanal::Receiver<String>),
    ) -> usize {
        let deadline = std::time::Instant::now() + LINGER;
        let mut acked = HashSet::new();
        let mut waiting: Option<HashSet<String>> = None;
        loop {
            let Ok(replies) = session
                .liveliness()
                .get(format!("{TOKENS}/zenohsrc/**"))
                .timeout(POLL * 50)
                .wait()
            else {
                return waiting.map_or(0, |w| w.len());
            };
            let mut alive = HashSet::new();
            while let Ok(reply) = replies.recv() {
                if let Ok(sample) = reply.result() {
                    if let Some(src) =
                        token_matches(sample.key_expr().as_str(), "zenohsrc", &self.key)
                    {
                        alive.insert(src);
                    }
                }
            }
            while let Ok(Some(src)) = acks.try_recv() {
                acked.insert(src);
            }
            // Those there at the end; one that came later never saw it.
            let waiting = waiting.get_or_insert_with(|| alive.clone());
            waiting.retain(|src| alive.contains(src) && !acked.contains(src));
            if waiting.is_empty()
                || std::time::Instant::now() >= deadline
                || self.cancel.load(Ordering::Relaxed)
            {
                return waiting.len();
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until `wait` subscribers match, or the run ends.
    fn wait_for_subscribers(
        &self,
        session: &Session,
        publisher: &zenoh::pubsub::Publisher<'_>,
    ) -> Result<(), String> {
        let (tx, rx) = kanal::unbounded::<(SampleKind, String)>();
        let _watch = session
            .liveliness()
            .declare_subscriber(format!("{TOKENS}/zenohsrc/**"))
            .history(true)
            .callback(move |s: Sample| {
                let _ = tx.send((s.kind(), s.key_expr().as_str().to_owned()));
            })
            .wait()
            .map_err(|e| format!("cannot watch for subscribers: {e}"))?;
        let mut ours = HashSet::new();
        loop {
            while let Ok(Some((kind, token))) = rx.try_recv() {
                if let Some(id) = token_matches(&token, "zenohsrc", &self.key) {
                    match kind {
                        SampleKind::Put => ours.insert(id),
                        SampleKind::Delete => ours.remove(&id),
                    };
                }
            }
            let any = publisher
                .matching_status()
                .wait()
                .map(|m| m.matching())
                .unwrap_or(false);
            let count = (ours.len() as u64).max(u64::from(any));
            if count >= self.wait || self.cancel.load(Ordering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
    }
}

// --- zenohsrc ----------------------------------------------------------------------------------

pub(crate) static ZENOHSRC: Factory = Factory {
    name: "zenohsrc",
    aliases: &[],
    klass: Klass::Source,
    summary: "Makes a buffer of every Zenoh sample on a key expression",
    doc: "Opens a Zenoh session (`mode`, `connect`, `listen`, `config`) and subscribes to \
          `key-expr` (wildcards * and ** allowed). A sample from zenohsink comes out with the \
          buffer's metadata as it was published; one from another program as a buffer of its \
          payload, stamped here. The stream ends when every zenohsink it heard from has sent \
          end of stream (`keep-listening=true` goes on listening for the next one). A zenohsink \
          that vanishes without end of stream (killed, cut off) is an error naming how many \
          buffers came, once 3 s passed without its last samples. Samples wait in a queue of \
          `queue-size`; while it is full Zenoh holds the publishers back (with their \
          congestion-control=block). A payload a publisher on this host put in Zenoh's shared \
          memory (`shm=auto`, the default, at both ends) becomes a buffer over those pages, \
          without a copy; it stays readable after its publisher exits or is killed, and its \
          chunk returns to the publisher's pool when the buffer is dropped. `shm=off` takes \
          everything over the network link. `-m` says at the end how many came in shared \
          memory.",
    pads: Pads::SOURCE,
    props: basesrc_props![
        KEY_EXPR,
        MODE,
        CONNECT,
        LISTEN,
        CONFIG,
        SCOUTING,
        SHM_RX,
        PropSpec::bool(
            "keep-listening",
            false,
            "Go on after end of stream, for the next publisher (end with Ctrl-C or num-buffers)"
        ),
        PropSpec::uint(
            "queue-size",
            16,
            1,
            1 << 16,
            "Samples received and not yet pushed, at most"
        ),
    ],
    hints: Hints::ASYNC_IO,
    build: |p| {
        Ok(ElementImpl::AsyncSource(Box::new(ZenohSrc {
            spec: SessionSpec::from_props(p, "zenohsrc")?,
            key: key_expr(p, "zenohsrc")?,
            keep: p.bool("keep-listening")?,
            queue: usize::try_from(p.uint("queue-size")?).unwrap_or(16),
            stamper: Stamper::new(p)?,
            rx: None,
            stop: None,
            caps: None,
            publishers: 0,
            ended: 0,
            gone: 0,
            vanished: None,
            buffers: 0,
            in_shm: 0,
            got: Vec::new(),
            thread: None,
        })))
    },
};

/// What a subscribing thread passes on.
enum FromZenoh {
    Sample(Box<Sample>),
    /// A zenohsink on a matching key appeared (`true`) or went away (`false`).
    Publisher(bool),
}

/// zenohsrc's state.
struct ZenohSrc {
    spec: SessionSpec,
    key: KeyExpr<'static>,
    keep: bool,
    queue: usize,
    stamper: Stamper,
    rx: Option<kanal::AsyncReceiver<Result<FromZenoh, String>>>,
    /// Takes the zenohsinks whose end of stream came, to acknowledge it; dropping it ends the
    /// thread, which closes the session.
    stop: Option<kanal::Sender<String>>,
    caps: Option<String>,
    /// zenohsinks seen, ended (their end of stream came) and gone (their token went away).
    publishers: u64,
    ended: u64,
    gone: u64,
    /// When the first publisher that is gone and not ended went away: its samples may still be
    /// on their way (see [`STRAGGLERS`]).
    vanished: Option<tokio::time::Instant>,
    buffers: u64,
    /// Samples whose payload came in shared memory (read in place).
    in_shm: u64,
    got: Vec<Got>,
    /// Last: dropped after `stop`, which ends it.
    thread: Option<Thread>,
}

impl AsyncSource for ZenohSrc {
    fn pool_request(&self) -> Option<PoolRequest> {
        None
    }

    async fn start(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        let (tx, rx) = kanal::bounded_async(self.queue);
        let (stop_tx, stop_rx) = kanal::unbounded::<String>();
        let (opened_tx, opened) = tokio::sync::oneshot::channel();
        let (spec, key) = (self.spec.clone(), self.key.clone());
        let tx = tx.to_sync();
        self.thread = Some(spawn(cx.name(), move || {
            let session = match spec.open() {
                Ok(s) => s,
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                    return;
                }
            };
            match subscribe(&session, &key, tx.clone()) {
                Ok((held, id)) => {
                    let _ = opened_tx.send(Ok(listening(&session, &spec)));
                    // Until the element is dropped or stops: acknowledges each zenohsink's end
                    // of stream that reached the element.
                    let mut acks = Vec::new();
                    while let Ok(sink) = stop_rx.recv() {
                        acks.push(
                            session
                                .liveliness()
                                .declare_token(format!("{TOKENS}/ack/{sink}/{id}"))
                                .wait(),
                        );
                    }
                    drop((held, acks));
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                }
            }
            let _ = session.close().wait();
        })?);
        self.rx = Some(rx);
        self.stop = Some(stop_tx);
        wait_opened(opened, cx).await?;
        cx.message(format_args!("subscribed to {}", self.key));
        Ok(())
    }

    async fn produce(&mut self, cx: &mut AsyncCtx) -> Result<Option<Buffer>, ElementError> {
        loop {
            if self.stamper.done() {
                self.stop = None;
                return Ok(None);
            }
            if let Some(p) = self.got.pop() {
                match p {
                    Got::Plain(buf) => return Ok(Some(self.stamp(None, buf, cx))),
                    Got::Framed(stream_frame::Packet::Buffer(mut buf)) => {
                        let meta = std::mem::take(&mut buf.meta);
                        return Ok(Some(self.stamp(Some(meta), buf, cx)));
                    }
                    Got::Framed(stream_frame::Packet::Caps(c)) => {
                        if self.caps.as_deref() != Some(c.as_str()) {
                            cx.message(format_args!("caps: {c}"));
                            self.caps = Some(c);
                        }
                    }
                    Got::Ack(sink) => {
                        if let Some(stop) = &self.stop {
                            let _ = stop.send(sink);
                        }
                    }
                    Got::Framed(stream_frame::Packet::Eos) => {
                        self.ended += 1;
                        if self.ended >= self.publishers.max(1) {
                            cx.message(format_args!(
                                "end of stream after {} buffers ({} in shared memory)",
                                self.buffers, self.in_shm
                            ));
                            if !self.keep {
                                self.stop = None;
                                return Ok(None);
                            }
                        }
                    }
                }
                continue;
            }
            if self.gone <= self.ended {
                self.vanished = None;
            }
            let rx = self.rx.as_ref().expect("start ran");
            let received = match self.vanished {
                None => rx.recv().await,
                Some(since) => {
                    match tokio::time::timeout_at(since + STRAGGLERS, rx.recv()).await {
                        Ok(r) => r,
                        Err(_) => {
                            self.vanished = None;
                            let what = format!(
                                "a zenohsink on {} went away without end of stream after {} \
                                 buffers ({} in shared memory)",
                                self.key, self.buffers, self.in_shm
                            );
                            if !self.keep {
                                return Err(ElementError::Failed(what));
                            }
                            cx.warn(what);
                            // It counts as ended: the next publisher's end ends the stream.
                            self.ended = self.gone;
                            continue;
                        }
                    }
                }
            };
            let event = match received {
                Ok(Ok(e)) => e,
                Ok(Err(e)) => return Err(ElementError::Failed(e)),
                Err(_) => {
                    return Err(ElementError::Failed(
                        "the Zenoh session ended unexpectedly".into(),
                    ))
                }
            };
            match event {
                FromZenoh::Publisher(true) => self.publishers += 1,
                FromZenoh::Publisher(false) => {
                    self.gone += 1;
                    if self.gone > self.ended && self.vanished.is_none() {
                        self.vanished = Some(tokio::time::Instant::now());
                    }
                }
                FromZenoh::Sample(s) if s.kind() == SampleKind::Put => {
                    self.in_shm += u64::from(s.payload().as_shm().is_some());
                    unpack(&s, &mut self.got)?;
                }
                FromZenoh::Sample(_) => {}
            }
        }
    }
}

/// What a sample carried, waiting to go out.
enum Got {
    /// From zenohsink: a buffer with its metadata, caps, or end of stream.
    Framed(stream_frame::Packet),
    /// From another program: bytes, to be stamped here.
    Plain(Buffer),
    /// The zenohsink of this id sent its end of stream (before it in `got`): acknowledge it.
    Ack(String),
}

impl ZenohSrc {
    /// Counts a buffer (num-buffers) and keeps the publisher's metadata, or stamps a buffer
    /// that came without.
    fn stamp(&mut self, meta: Option<Metadata>, mut buf: Buffer, cx: &AsyncCtx) -> Buffer {
        self.stamper.stamp(&mut buf, || cx.running_time_ns());
        if let Some(m) = meta {
            buf.meta = m;
        }
        self.buffers += 1;
        buf
    }
}

/// Declares zenohsrc's subscriber, its token, and the watch on publishers' tokens; what must
/// stay alive for them to last, and the id in its token.
fn subscribe(
    session: &Session,
    key: &KeyExpr<'static>,
    tx: kanal::Sender<Result<FromZenoh, String>>,
) -> Result<(impl Send, String), String> {
    let id = token_id();
    let publishers = {
        let (tx, ours) = (tx.clone(), key.clone());
        session
            .liveliness()
            .declare_subscriber(format!("{TOKENS}/zenohsink/**"))
            .history(true)
            .callback(move |s: Sample| {
                if token_matches(s.key_expr().as_str(), "zenohsink", &ours).is_some() {
                    let _ = tx.send(Ok(FromZenoh::Publisher(s.kind() == SampleKind::Put)));
                }
            })
            .wait()
            .map_err(|e| format!("cannot watch for publishers on {key}: {e}"))?
    };
    let subscriber = session
        .declare_subscriber(key.clone())
        .callback(move |s: Sample| {
            // Blocks while the queue is full: Zenoh then holds the publishers back.
            let _ = tx.send(Ok(FromZenoh::Sample(Box::new(s))));
        })
        .wait()
        .map_err(|e| format!("cannot subscribe to {key}: {e}"))?;
    let token = session
        .liveliness()
        .declare_token(format!("{TOKENS}/zenohsrc/{id}/{key}"))
        .wait()
        .map_err(|e| format!("cannot declare a liveliness token for {key}: {e}"))?;
    Ok(((publishers, subscriber, token), id))
}

/// A payload Zenoh holds in one piece (a sample that came in one batch, or in shared memory):
/// a buffer reads it in place, and keeps it alive.
struct Contiguous(ZBytes);

impl AsRef<[u8]> for Contiguous {
    fn as_ref(&self) -> &[u8] {
        self.0.slices().next().unwrap_or_default()
    }
}

/// A sample's payload as a buffer: read in place when it is in one piece, copied only when it
/// came in fragments (a sample larger than a batch, 64 KiB, on a network link).
fn payload_buffer(z: &ZBytes) -> Buffer {
    let mut slices = z.slices();
    match (slices.next(), slices.next()) {
        (None, _) => Buffer::empty(),
        (Some(_), None) => super::received(Contiguous(z.clone())),
        _ => Buffer::from_vec(z.to_bytes().into_owned()),
    }
}

/// Queues what a sample carries into `got` (in reverse: it is popped from the end).
fn unpack(s: &Sample, got: &mut Vec<Got>) -> Result<(), ElementError> {
    let data = payload_buffer(s.payload());
    let frames = s
        .attachment()
        .map(|a| a.to_bytes())
        .filter(|a| a.starts_with(&stream_frame::MAGIC));
    match frames {
        Some(frames) => {
            let mut out = Vec::new();
            stream_frame::decode_detached(&frames, data, stream_frame::MAX_PAYLOAD, &mut out)
                .map_err(|e| ElementError::Failed(format!("a sample on {}: {e}", s.key_expr())))?;
            let ends = matches!(out.last(), Some(stream_frame::Packet::Eos));
            got.extend(out.into_iter().rev().map(Got::Framed));
            // Acknowledged as the end is taken: everything before it already was.
            if let Some(sink) = s.encoding().to_string().strip_prefix(EOS_ENCODING) {
                if ends {
                    got.push(Got::Ack(sink.to_owned()));
                }
            }
        }
        // Another program's sample: its bytes, with metadata stamped here.
        None => got.push(Got::Plain(data)),
    }
    Ok(())
}

// --- zenohqueryable ----------------------------------------------------------------------------

pub(crate) static ZENOHQUERYABLE: Factory = Factory {
    name: "zenohqueryable",
    aliases: &[],
    klass: Klass::Sink,
    summary: "Answers Zenoh queries on a key with the latest buffers that reached it",
    doc: "Opens a Zenoh session (`mode`, `connect`, `listen`, `config`) and declares a \
          queryable on `key-expr` (no wildcards: it is the key of every reply). It keeps the \
          last `history` buffers (1: the latest) and answers each query with them, oldest \
          first, each as zenohsink publishes it (bytes as the payload, the STRM head with the \
          metadata as the attachment, the caps as the encoding). A query's `last=N` parameter \
          asks for fewer. Queries are answered while the pipeline runs, and with \
          `keep-serving=true` after end of stream too, until Ctrl-C; a query that comes before \
          the first buffer gets no reply.",
    pads: Pads::SINK,
    props: basesink_props![
        KEY_EXPR,
        MODE,
        CONNECT,
        LISTEN,
        CONFIG,
        SCOUTING,
        SHM_RX,
        PropSpec::uint(
            "history",
            1,
            1,
            1 << 20,
            "How many of the latest buffers a query gets"
        ),
        PropSpec::bool(
            "keep-serving",
            false,
            "After end of stream, go on answering queries until Ctrl-C"
        ),
        PropSpec::bool("sync", false, "Sync on the clock").ignored(super::NO_CLOCK),
    ],
    hints: Hints::ASYNC_IO,
    build: |p| {
        let key = key_expr(p, "zenohqueryable")?;
        if key.is_wild() {
            return Err(ElementError::Config(format!(
                "zenohqueryable: key-expr `{key}` has wildcards; replies need one key"
            )));
        }
        let caps = p.sink_caps();
        Ok(ElementImpl::AsyncSink(Box::new(ZenohQueryable {
            spec: SessionSpec::from_props(p, "zenohqueryable")?,
            key,
            kept: Arc::new(Mutex::new(Kept {
                max: usize::try_from(p.uint("history")?).unwrap_or(1),
                samples: VecDeque::new(),
                encoding: if caps.is_any() {
                    Encoding::APPLICATION_OCTET_STREAM
                } else {
                    Encoding::from(caps.to_string())
                },
                caps: (!caps.is_any()).then(|| caps.to_string()),
            })),
            keep_serving: p.bool("keep-serving")?,
            stop: None,
            thread: None,
        })))
    },
};

/// The buffers a queryable answers with: payload and attachment, ready to send.
struct Kept {
    max: usize,
    samples: VecDeque<(ZBytes, ZBytes)>,
    encoding: Encoding,
    caps: Option<String>,
}

/// zenohqueryable's state.
struct ZenohQueryable {
    spec: SessionSpec,
    key: KeyExpr<'static>,
    kept: Arc<Mutex<Kept>>,
    keep_serving: bool,
    /// Dropping it ends the thread, which closes the session.
    stop: Option<kanal::Sender<()>>,
    /// After `stop`, which ends it.
    thread: Option<Thread>,
}

impl AsyncSink for ZenohQueryable {
    async fn finish(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        if self.keep_serving {
            cx.message(format_args!(
                "end of stream: answering queries until Ctrl-C"
            ));
            cx.drain_or_stop().await;
        }
        self.stop = None;
        Ok(())
    }

    async fn start(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        let (stop_tx, stop_rx) = kanal::bounded::<()>(0);
        let (opened_tx, opened) = tokio::sync::oneshot::channel();
        let (spec, key, kept) = (self.spec.clone(), self.key.clone(), Arc::clone(&self.kept));
        self.thread = Some(spawn(cx.name(), move || {
            let session = match spec.open() {
                Ok(s) => s,
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                    return;
                }
            };
            let reply_key = key.clone();
            let declared = session
                .declare_queryable(key.clone())
                .callback(move |q: zenoh::query::Query| answer(&q, &reply_key, &kept))
                .wait();
            match declared {
                Ok(queryable) => {
                    let _ = opened_tx.send(Ok(listening(&session, &spec)));
                    let _ = stop_rx.recv();
                    drop(queryable);
                }
                Err(e) => {
                    let _ =
                        opened_tx.send(Err(format!("cannot declare a queryable on {key}: {e}")));
                }
            }
            let _ = session.close().wait();
        })?);
        self.stop = Some(stop_tx);
        wait_opened(opened, cx).await?;
        cx.message(format_args!("answering queries on {}", self.key));
        Ok(())
    }

    async fn render(&mut self, buf: Buffer, _cx: &mut AsyncCtx) -> Result<SinkFlow, ElementError> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let mut head = Vec::with_capacity(128);
        // Every reply stands alone: each carries the caps.
        if let Some(c) = &kept.caps {
            stream_frame::encode_caps(c, &mut head);
        }
        stream_frame::encode_buffer_head(&buf, &mut head).map_err(|e| {
            ElementError::Failed(format!("cannot frame buffer {}: {e}", buf.meta.sequence))
        })?;
        if kept.samples.len() == kept.max {
            kept.samples.pop_front();
        }
        kept.samples.push_back((payload(buf), ZBytes::from(head)));
        Ok(SinkFlow::Continue)
    }
}

/// Answers one query with the kept buffers (the last `last=N` of them, when it asks).
fn answer(q: &zenoh::query::Query, key: &KeyExpr<'static>, kept: &Mutex<Kept>) {
    let (samples, encoding) = {
        let kept = kept.lock().unwrap_or_else(|e| e.into_inner());
        let last = q
            .parameters()
            .get("last")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(kept.samples.len());
        let skip = kept.samples.len().saturating_sub(last);
        let samples: Vec<_> = kept.samples.iter().skip(skip).cloned().collect();
        (samples, kept.encoding.clone())
    };
    for (payload, attachment) in samples {
        if let Err(e) = q
            .reply(key.clone(), payload)
            .attachment(attachment)
            .encoding(encoding.clone())
            .wait()
        {
            tracing::debug!("replying to a query on {key}: {e}");
            return;
        }
    }
}

// --- zenohquerier ------------------------------------------------------------------------------

pub(crate) static ZENOHQUERIER: Factory = Factory {
    name: "zenohquerier",
    aliases: &[],
    klass: Klass::Source,
    summary: "Sends one Zenoh query and makes a buffer of every reply",
    doc: "Opens a Zenoh session (`mode`, `connect`, `listen`, `config`) and sends one query to \
          the selector `key-expr` (a key expression, optionally followed by `?name=value;…`), \
          with `parameters` added. Each reply becomes a buffer: a zenohqueryable's with the \
          metadata it was kept with, another program's as its bytes, stamped here. The stream \
          ends when every queryable has answered or `timeout` has passed; a reply that is an \
          error ends the run with it.",
    pads: Pads::SOURCE,
    props: basesrc_props![
        KEY_EXPR,
        MODE,
        CONNECT,
        LISTEN,
        CONFIG,
        SCOUTING,
        SHM_RX,
        PropSpec::string(
            "parameters",
            None,
            "Parameters added to the selector's (last=3;name=value)"
        ),
        PropSpec::time(
            "timeout",
            10_000_000_000,
            1_000_000,
            i64::MAX,
            "How long to wait for the replies"
        ),
    ],
    hints: Hints::ASYNC_IO,
    build: |p| {
        let text = p
            .string("key-expr")?
            .ok_or_else(|| ElementError::Config("zenohquerier: key-expr is required".into()))?;
        let (key, mut params) = match text.split_once('?') {
            Some((k, ps)) => (k, ps.to_owned()),
            None => (text, String::new()),
        };
        KeyExpr::try_from(key).map_err(|e| {
            ElementError::Config(format!(
                "zenohquerier: `{key}` is not a Zenoh key expression: {e}"
            ))
        })?;
        if let Some(more) = p.string("parameters")? {
            if !params.is_empty() && !more.is_empty() {
                params.push(';');
            }
            params.push_str(more);
        }
        Ok(ElementImpl::AsyncSource(Box::new(ZenohQuerier {
            spec: SessionSpec::from_props(p, "zenohquerier")?,
            selector: if params.is_empty() {
                key.to_owned()
            } else {
                format!("{key}?{params}")
            },
            timeout: Duration::from_nanos(u64::try_from(p.time("timeout")?).unwrap_or(0)),
            stamper: Stamper::new(p)?,
            rx: None,
            got: Vec::new(),
            thread: None,
        })))
    },
};

/// zenohquerier's state.
struct ZenohQuerier {
    spec: SessionSpec,
    selector: String,
    timeout: Duration,
    stamper: Stamper,
    /// Replies; `None` once every reply came.
    rx: Option<kanal::AsyncReceiver<Result<Option<Sample>, String>>>,
    got: Vec<Got>,
    /// After `rx`: the thread ends once its replies are in or nobody takes them.
    thread: Option<Thread>,
}

impl AsyncSource for ZenohQuerier {
    fn pool_request(&self) -> Option<PoolRequest> {
        None
    }

    async fn start(&mut self, cx: &mut AsyncCtx) -> Result<(), ElementError> {
        let (tx, rx) = kanal::bounded_async(16);
        let (opened_tx, opened) = tokio::sync::oneshot::channel();
        let (spec, selector, timeout) = (self.spec.clone(), self.selector.clone(), self.timeout);
        let tx = tx.to_sync();
        self.thread = Some(spawn(cx.name(), move || {
            let session = match spec.open() {
                Ok(s) => s,
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                    return;
                }
            };
            let _ = opened_tx.send(Ok(listening(&session, &spec)));
            // Every reply is a buffer: none is merged with another of the same key.
            let query = session
                .get(selector.as_str())
                .consolidation(zenoh::query::ConsolidationMode::None)
                .timeout(timeout)
                .wait();
            match query {
                Ok(replies) => {
                    while let Ok(reply) = replies.recv() {
                        let sent = match reply.into_result() {
                            Ok(sample) => tx.send(Ok(Some(sample))),
                            Err(e) => tx.send(Err(format!(
                                "the query {selector} was answered with an error: {}",
                                String::from_utf8_lossy(&e.payload().to_bytes())
                            ))),
                        };
                        if sent.is_err() {
                            break;
                        }
                    }
                    let _ = tx.send(Ok(None));
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("cannot send the query {selector}: {e}")));
                }
            }
            let _ = session.close().wait();
        })?);
        self.rx = Some(rx);
        wait_opened(opened, cx).await?;
        cx.message(format_args!("querying {}", self.selector));
        Ok(())
    }

    async fn produce(&mut self, cx: &mut AsyncCtx) -> Result<Option<Buffer>, ElementError> {
        loop {
            if self.stamper.done() {
                self.rx = None;
                return Ok(None);
            }
            match self.got.pop() {
                Some(Got::Plain(mut buf)) => {
                    self.stamper.stamp(&mut buf, || cx.running_time_ns());
                    return Ok(Some(buf));
                }
                Some(Got::Framed(stream_frame::Packet::Buffer(mut buf))) => {
                    let meta = std::mem::take(&mut buf.meta);
                    self.stamper.stamp(&mut buf, || cx.running_time_ns());
                    buf.meta = meta;
                    return Ok(Some(buf));
                }
                Some(Got::Framed(_) | Got::Ack(_)) => continue,
                None => {}
            }
            let Some(rx) = self.rx.as_ref() else {
                return Ok(None);
            };
            match rx.recv().await {
                Ok(Ok(Some(sample))) => unpack(&sample, &mut self.got)?,
                Ok(Ok(None)) | Err(_) => self.rx = None,
                Ok(Err(e)) => return Err(ElementError::Failed(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_in_one_piece_is_read_in_place_and_a_fragmented_one_copied() {
        let whole = ZBytes::from((0..100_000u32).map(|i| i as u8).collect::<Vec<u8>>());
        let at = whole.slices().next().unwrap().as_ptr();
        let buf = payload_buffer(&whole);
        assert_eq!(buf.data().as_ptr(), at, "no copy");
        assert_eq!(buf.data(), &whole.to_bytes()[..]);
        drop(whole);
        assert_eq!(
            buf.data()[99_999],
            99_999u32 as u8,
            "the buffer keeps the payload"
        );

        let mut writer = ZBytes::writer();
        writer.append(ZBytes::from(vec![1u8; 70_000]));
        writer.append(ZBytes::from(vec![2u8; 70_000]));
        let fragmented = writer.finish();
        assert_eq!(fragmented.slices().count(), 2);
        let buf = payload_buffer(&fragmented);
        assert_eq!(buf.data(), &fragmented.to_bytes()[..]);
        assert!(payload_buffer(&ZBytes::new()).is_empty());
    }

    /// A session on 127.0.0.1 only, with shared memory on.
    fn local(connect: Vec<String>, listen: Vec<String>) -> Session {
        SessionSpec {
            mode: Some("peer"),
            connect,
            listen,
            config: None,
            scouting: Some(false),
            shm: Some(true),
            shm_enabled: true,
        }
        .open()
        .unwrap()
    }

    #[test]
    fn a_payload_in_shared_memory_is_read_in_place_by_the_subscriber() {
        let rx = local(Vec::new(), vec!["tcp/127.0.0.1:0".into()]);
        let at = rx.info().locators().wait()[0].to_string();
        let tx = local(vec![at], Vec::new());
        let (got_tx, got) = std::sync::mpsc::channel();
        let _sub = rx
            .declare_subscriber("test/shm")
            .callback(move |s: Sample| {
                let _ = got_tx.send(s);
            })
            .wait()
            .unwrap();
        let publisher = tx.declare_publisher("test/shm").wait().unwrap();
        // The subscription travels to the publisher's session; polled under a watchdog.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !publisher.matching_status().wait().unwrap().matching() {
            assert!(std::time::Instant::now() < deadline, "never matched");
            std::thread::sleep(POLL);
        }
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut pool = ShmPool::new(ShmPlan {
            mode: ShmMode::Auto,
            size: 0,
        });
        let Placed::Shared(chunk) = pool.place(&data).unwrap() else {
            panic!("a pool for 300 kB");
        };
        publisher.put(ZBytes::from(chunk)).wait().unwrap();
        let sample = got.recv_timeout(Duration::from_secs(60)).unwrap();
        let shm = sample.payload().as_shm().expect("it came in shared memory");
        let buf = payload_buffer(sample.payload());
        assert_eq!(buf.data().as_ptr(), shm.as_ptr(), "no copy");
        assert_eq!(buf.data(), &data[..]);
        drop(sample);
        assert_eq!(
            buf.data()[299_999],
            (299_999 % 251) as u8,
            "the buffer keeps it"
        );
    }
}
