//! Plugins: elements from shared libraries through the C ABI of `plugin/parallax_plugin.h`.
//!
//! Discovery: `--plugin-path`, then `PARALLAX_PLUGIN_PATH` (colon-separated), then
//! `$XDG_DATA_HOME/parallax/plugins` (`~/.local/share/parallax/plugins`); each entry a library
//! or a directory of `*.so` files. The parent never runs plugin code itself to list it: one
//! child process (this binary, re-executed with [`PROBE_ARG`]) loads every file and sends back
//! its descriptor as JSON, so a library whose constructor or descriptor crashes or hangs costs
//! a warning naming the file, and the rest loads; each library gets a time limit
//! (`PARALLAX_PLUGIN_PROBE_TIMEOUT`, 10 s by default). What the child found is kept in the
//! descriptor [`cache`], keyed by file identity, so a start whose plugins did not change starts
//! no child at all. Each plugin element becomes a [`Factory`]
//! like a built-in one, marked native and untrusted: the planner runs it `exec=isolated`, in a
//! sandboxed worker that loads just that library; `exec=fused` or `trust=trusted` runs it in
//! the pipeline's process.

#[path = "../../plugin/parallax_plugin.rs"]
#[macro_use]
pub mod abi;
pub mod cache;
#[allow(unsafe_code)]
mod ffi;
pub mod info;

use std::collections::HashMap;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::element::{
    Ctx, ElementError, ElementImpl, Flow, PoolRequest, Sink, SinkFlow, Source, Transform,
};
use crate::memory::{Buffer, LoanedSlot, MemoryPool, Metadata, PoolConfig};
use crate::registry::{
    CapsRule, EnumValue, Factory, Hints, Klass, Latency, Pads, Processing, PropKind, PropSpec,
    Props, Trust, Value,
};

pub use ffi::Library;
pub use info::{ElementInfo, PluginInfo, PropInfo, PropInfoKind};

/// The hidden first argument that makes a Parallax binary the descriptor-reading child.
pub const PROBE_ARG: &str = "--parallax-plugin-probe";
/// The worker argument naming the one plugin library a worker loads.
pub const WORKER_PLUGIN_ARG: &str = "--plugin-file";
/// The property every plugin element gets from the host: how long one call into the plugin may
/// take in a worker before the worker is killed (0: no limit). Named after gst's basesink
/// property of that name; the plugin never sees it.
pub const PROCESSING_DEADLINE: &str = "processing-deadline";
/// Its default, in nanoseconds: far beyond any sane per-buffer cost, short enough that a stuck
/// plugin ends the run instead of hanging it.
pub const DEFAULT_PROCESSING_DEADLINE: i64 = 5_000_000_000;
/// How long the probe child may take over one library, unless `PARALLAX_PLUGIN_PROBE_TIMEOUT`
/// says otherwise.
const PROBE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// How long the probe child may take over one library: `PARALLAX_PLUGIN_PROBE_TIMEOUT` (a
/// time: `500ms`, `3s`, a bare number is seconds), else [`PROBE_PATIENCE`].
fn probe_patience() -> std::time::Duration {
    let Some(text) = std::env::var_os("PARALLAX_PLUGIN_PROBE_TIMEOUT") else {
        return PROBE_PATIENCE;
    };
    let text = text.to_string_lossy();
    match parse_patience(&text) {
        Some(d) => d,
        None => {
            eprintln!(
                "warning: PARALLAX_PLUGIN_PROBE_TIMEOUT=`{text}` is not a time such as 500ms or \
                 3s; using {} s",
                PROBE_PATIENCE.as_secs()
            );
            PROBE_PATIENCE
        }
    }
}

fn parse_patience(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: f64 = number.parse().ok()?;
    let scale = match unit.trim() {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        _ => return None,
    };
    std::time::Duration::try_from_secs_f64(n * scale)
        .ok()
        .filter(|d| !d.is_zero())
}

/// One loaded plugin file.
#[derive(Debug)]
pub struct Plugin {
    /// The library's path.
    pub file: PathBuf,
    /// Its descriptor.
    pub info: PluginInfo,
    /// Its elements as factories, in descriptor order (those that were accepted).
    pub factories: Vec<(&'static Factory, usize)>,
}

/// Where a plugin element comes from, for `parallax-inspect`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Origin {
    /// The library.
    pub file: PathBuf,
    /// The plugin's name.
    pub plugin: String,
    /// Its version.
    pub version: String,
}

#[derive(Default)]
struct Catalog {
    plugins: Vec<Plugin>,
}

static EXTRA_PATHS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static CATALOG: OnceLock<Catalog> = OnceLock::new();
/// Libraries loaded into this process, by path (fused instances, a worker's one plugin).
static LOADED: Mutex<Option<HashMap<PathBuf, Arc<Library>>>> = Mutex::new(None);

/// Adds `--plugin-path` entries (colon-separated), searched before `PARALLAX_PLUGIN_PATH`.
/// Takes effect when called before anything reads the registry.
pub fn add_search_path(text: &str) {
    let mut paths = EXTRA_PATHS.lock().unwrap_or_else(|e| e.into_inner());
    paths.extend(text.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
}

/// The places searched, in order.
pub fn search_path() -> Vec<PathBuf> {
    let mut out = EXTRA_PATHS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(env) = std::env::var_os("PARALLAX_PLUGIN_PATH") {
        out.extend(std::env::split_paths(&env).filter(|p| !p.as_os_str().is_empty()));
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")));
    if let Some(data) = data {
        out.push(data.join("parallax/plugins"));
    }
    out
}

/// Library files on the search path: entries that are files, and the `*.so` files of entries
/// that are directories (sorted), each once.
fn library_files() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for entry in search_path() {
        if entry.is_dir() {
            let Ok(dir) = std::fs::read_dir(&entry) else {
                continue;
            };
            let mut files: Vec<PathBuf> = dir
                .filter_map(|d| d.ok().map(|d| d.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "so") && p.is_file())
                .collect();
            files.sort();
            out.extend(files);
        } else if entry.is_file() {
            out.push(entry);
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    out
}

fn catalog() -> &'static Catalog {
    CATALOG.get_or_init(|| {
        let files = library_files();
        if files.is_empty() {
            return Catalog::default();
        }
        let mut catalog = Catalog::default();
        for (file, said) in descriptors(files) {
            match said
                .into_result()
                .and_then(|info| info.check().map(|()| info))
            {
                Ok(info) => catalog.admit(file, info),
                Err(why) => warn(&file, &why),
            }
        }
        catalog
    })
}

/// What each of `files` declares: from the descriptor cache for the files it knows with the
/// same identity, from the probe child for the others (whose answers the cache then keeps).
fn descriptors(files: Vec<PathBuf>) -> Vec<(PathBuf, Said)> {
    let dir = cache::dir();
    let mut cached = dir.as_deref().map(cache::load).unwrap_or_default();
    let mut found: Vec<(PathBuf, Option<FileId>, Option<Said>)> = files
        .into_iter()
        .map(|file| {
            let id = FileId::of(&file).ok();
            let hit = match cached.remove(&file) {
                Some((was, said)) if Some(was) == id => Some(said),
                _ => None,
            };
            (file, id, hit)
        })
        .collect();
    let missing: Vec<PathBuf> = found
        .iter()
        .filter(|(_, _, said)| said.is_none())
        .map(|(file, _, _)| file.clone())
        .collect();
    if !missing.is_empty() {
        let mut read: HashMap<PathBuf, Probed> = probe(&missing).into_iter().collect();
        let mut fresh = Vec::new();
        for (file, id, said) in &mut found {
            if said.is_none() {
                let Some(probed) = read.remove(file) else {
                    continue;
                };
                if !probed.keep {
                    *said = Some(probed.said);
                    continue;
                }
                *said = Some(probed.said);
            }
            if let (Some(id), Some(said)) = (id, said) {
                fresh.push((file.clone(), *id, said.clone()));
            }
        }
        if let Some(dir) = &dir {
            cache::store(dir, fresh, cached);
        }
    }
    found
        .into_iter()
        .map(|(file, _, said)| {
            let said = said.unwrap_or_else(|| {
                Said::Err("no answer from the process that reads plugins".into())
            });
            (file, said)
        })
        .collect()
}

fn warn(file: &Path, why: &str) {
    eprintln!("warning: plugin {}: {why}; not loaded", file.display());
}

impl Catalog {
    /// Turns `info`'s elements into factories, refusing names taken by a built-in element
    /// (an error: a plugin never replaces one) or by a plugin loaded before.
    fn admit(&mut self, file: PathBuf, info: PluginInfo) {
        let mut factories = Vec::new();
        for (index, e) in info.elements.iter().enumerate() {
            if crate::elements::all().any(|f| f.answers_to(&e.name)) {
                eprintln!(
                    "error: plugin {}: element `{}` has the name of a built-in element; a plugin \
                     cannot replace one, so it is not loaded",
                    file.display(),
                    e.name
                );
                continue;
            }
            let taken = self
                .plugins
                .iter()
                .find(|p| p.factories.iter().any(|(f, _)| f.name == e.name));
            if let Some(other) = taken {
                warn(
                    &file,
                    &format!(
                        "element `{}` is already provided by {}",
                        e.name,
                        other.file.display()
                    ),
                );
                continue;
            }
            factories.push((factory(e), index));
        }
        self.plugins.push(Plugin {
            file,
            info,
            factories,
        });
    }
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// The factory of a plugin element (its strings live as long as the process, as a built-in's).
fn factory(e: &ElementInfo) -> &'static Factory {
    let mut props: Vec<PropSpec> = e.props.iter().map(prop_spec).collect();
    props.push(PropSpec::time(
        PROCESSING_DEADLINE,
        DEFAULT_PROCESSING_DEADLINE,
        0,
        i64::MAX,
        "Longest time one buffer may spend in the plugin when it runs in a worker \
         (exec=isolated, the default): past it the worker is killed and the run ends with an \
         error naming the buffer (0 = no limit). In-process (exec=fused) nothing can stop a \
         call that never returns, so it does not apply there",
    ));
    let rule = if e.caps_rule == abi::PX_CAPS_FIXED {
        CapsRule::Fixed
    } else {
        CapsRule::Passthrough
    };
    let (klass, pads) = match e.klass.as_str() {
        "source" => (
            Klass::Source,
            Pads::SOURCE.with_caps("ANY", leak(&e.src_caps)),
        ),
        "sink" => (Klass::Sink, Pads::SINK.with_caps(leak(&e.sink_caps), "ANY")),
        _ => (
            Klass::Filter,
            Pads::ONE_TO_ONE
                .with_caps(leak(&e.sink_caps), leak(&e.src_caps))
                .with_rule(rule),
        ),
    };
    Box::leak(Box::new(Factory {
        name: leak(&e.name),
        aliases: &[],
        klass,
        summary: leak(&e.summary),
        doc: leak(&e.doc),
        pads,
        props: Box::leak(props.into_boxed_slice()),
        hints: Hints {
            trust: Trust::Untrusted,
            processing: if e.hints & abi::PX_HINT_CPU != 0 {
                Processing::Cpu
            } else {
                Processing::Memory
            },
            latency: Latency::Normal,
            native_code: true,
            rt_safe: e.hints & abi::PX_HINT_RT_SAFE != 0,
            thread_boundary: false,
            async_io: false,
            timed: false,
        },
        build: |_| {
            Err(ElementError::Failed(
                "a plugin element is built through its library".into(),
            ))
        },
    }))
}

fn prop_spec(p: &PropInfo) -> PropSpec {
    let (name, doc) = (leak(&p.name), leak(&p.doc));
    match &p.kind {
        PropInfoKind::Bool { default } => PropSpec::bool(name, *default, doc),
        PropInfoKind::Int { default, min, max } => PropSpec::int(name, *default, *min, *max, doc),
        PropInfoKind::Float { default, min, max } => {
            PropSpec::float(name, *default, *min, *max, doc)
        }
        PropInfoKind::Str { default } => PropSpec::string(name, default.as_deref().map(leak), doc),
        PropInfoKind::Enum { default, values } => {
            let values: Vec<EnumValue> = values
                .iter()
                .enumerate()
                .map(|(i, v)| EnumValue {
                    nick: leak(v),
                    value: i as i64,
                    doc: "",
                })
                .collect();
            let values: &'static [EnumValue] = Box::leak(values.into_boxed_slice());
            PropSpec::enumeration(name, values[*default as usize].nick, values, doc)
        }
    }
}

/// Every plugin element's factory, in discovery order.
pub fn factories() -> impl Iterator<Item = &'static Factory> {
    catalog()
        .plugins
        .iter()
        .flat_map(|p| p.factories.iter().map(|(f, _)| *f))
}

/// The loaded plugins.
pub fn plugins() -> &'static [Plugin] {
    &catalog().plugins
}

fn owner(f: &Factory) -> Option<(&'static Plugin, usize)> {
    catalog().plugins.iter().find_map(|p| {
        p.factories
            .iter()
            .find(|(g, _)| std::ptr::eq(*g, f))
            .map(|(_, i)| (p, *i))
    })
}

/// Where `f` comes from, when it is a plugin element.
pub fn origin(f: &Factory) -> Option<Origin> {
    owner(f).map(|(p, _)| Origin {
        file: p.file.clone(),
        plugin: p.info.name.clone(),
        version: p.info.version.clone(),
    })
}

/// The watchdog's deadline of a plugin element's instance (`processing-deadline`), `None` when
/// `f` is built in or the limit is off.
pub fn processing_deadline(f: &Factory, props: &Props) -> Option<std::time::Duration> {
    owner(f)?;
    let spec = f.prop(PROCESSING_DEADLINE)?;
    match props_value(props, spec) {
        Value::Time(ns) if ns > 0 => Some(std::time::Duration::from_nanos(ns as u64)),
        _ => None,
    }
}

/// What identifies a library file's contents well enough to see it replaced or rewritten:
/// device, inode, size, and modification and change times to the nanosecond (the change time
/// moves on any write or rename and cannot be set back by a user).
#[derive(Debug, Clone, Copy, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileId {
    /// The identity of the file at `path` now.
    pub fn of(path: &Path) -> std::io::Result<FileId> {
        use std::os::unix::fs::MetadataExt as _;
        let m = std::fs::metadata(path)?;
        Ok(FileId {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// A plugin element built in this process (fused), as a reload sees it.
struct InProcess {
    alive: std::sync::Weak<()>,
    element: String,
    file: PathBuf,
    loaded: Option<FileId>,
}

static IN_PROCESS: Mutex<Vec<InProcess>> = Mutex::new(Vec::new());

/// Plugin elements running in this process whose library file changed since they were built:
/// (element, file). A reload cannot swap them (see [`crate::exec::reload_plugins`]).
pub fn in_process_changed() -> Vec<(String, PathBuf)> {
    let mut all = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|p| p.alive.strong_count() > 0);
    all.iter()
        .filter(|p| FileId::of(&p.file).ok() != p.loaded)
        .map(|p| (p.element.clone(), p.file.clone()))
        .collect()
}

/// Reads and checks the descriptor of the library `path` in a child process, as discovery
/// does: a library that crashes or hangs as it loads costs that child only.
pub fn read_descriptor(path: &Path) -> Result<PluginInfo, String> {
    let (_, probed) = probe(&[path.to_owned()])
        .pop()
        .ok_or("no answer from the process that reads plugins")?;
    let info = probed.said.into_result()?;
    info.check()?;
    Ok(info)
}

/// The plugin name and version a plugin element was listed with.
pub fn version_of(f: &Factory) -> Option<(String, String)> {
    owner(f).map(|(p, _)| (p.info.name.clone(), p.info.version.clone()))
}

/// The library file of a plugin element, for its worker.
pub fn library_of(f: &Factory) -> Option<PathBuf> {
    owner(f).map(|(p, _)| p.file.clone())
}

/// Builds an instance of a plugin element in this process, or `None` when `f` is built in.
pub fn instantiate(f: &Factory, props: &Props) -> Option<Result<ElementImpl, ElementError>> {
    let (plugin, index) = owner(f)?;
    Some(build(plugin, index, f, props))
}

fn build(
    plugin: &Plugin,
    index: usize,
    f: &Factory,
    props: &Props,
) -> Result<ElementImpl, ElementError> {
    let failed = |why: String| {
        ElementError::Failed(format!(
            "{}: plugin {}: {why}",
            props.instance(),
            plugin.file.display()
        ))
    };
    let lib = load(&plugin.file).map_err(&failed)?;
    // The file may have changed since it was probed (or the cache lied): what runs must be
    // what was listed, properties and all.
    let now = lib.info().map_err(&failed)?;
    match now.elements.get(index) {
        Some(e) if *e == plugin.info.elements[index] => {}
        Some(e) if e.name == f.name => {
            return Err(failed(format!(
                "element `{}` is not the one listed (the library changed since it was read); \
                 run again",
                f.name
            )))
        }
        _ => {
            return Err(failed(format!(
                "the library no longer has element `{}`",
                f.name
            )))
        }
    }
    let args: Vec<(String, ffi::ArgValue)> = f
        .props
        .iter()
        // The host's own property: the plugin never sees it.
        .filter(|spec| spec.name != PROCESSING_DEADLINE)
        .map(|spec| {
            let v = match props_value(props, spec) {
                Value::Bool(b) => ffi::ArgValue::Bool(b),
                Value::Int(i) | Value::Time(i) => ffi::ArgValue::Int(i),
                Value::UInt(u) => ffi::ArgValue::Int(u as i64),
                Value::Float(x) => ffi::ArgValue::Float(x),
                Value::Str(s) => ffi::ArgValue::Str(s),
                Value::Enum(nick) => ffi::ArgValue::Enum(match spec.kind {
                    PropKind::Enum { values, .. } => {
                        values.iter().position(|v| v.nick == nick).unwrap_or(0) as u32
                    }
                    _ => 0,
                }),
            };
            (spec.name.to_owned(), v)
        })
        .collect();
    let instance = ffi::Instance::create(&lib, index, &args, &props.sink_caps().to_string())
        .map_err(ElementError::Config)?;
    let alive = Arc::new(());
    IN_PROCESS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(InProcess {
            alive: Arc::downgrade(&alive),
            element: props.instance().to_owned(),
            file: plugin.file.clone(),
            loaded: FileId::of(&plugin.file).ok(),
        });
    let name = props.instance().to_owned();
    Ok(match f.klass {
        Klass::Source => ElementImpl::Source(Box::new(PluginSource {
            instance,
            name,
            held: std::collections::VecDeque::new(),
            ended: false,
            sequence: 0,
            offset: 0,
            _alive: alive,
        })),
        Klass::Sink => ElementImpl::Sink(Box::new(PluginSink {
            instance,
            _alive: alive,
        })),
        _ => ElementImpl::Transform(Box::new(PluginElement {
            instance,
            name,
            pool: None,
            _alive: alive,
        })),
    })
}

fn props_value(props: &Props, spec: &PropSpec) -> Value {
    props
        .explicit()
        .find(|(s, _)| s.name == spec.name)
        .map_or_else(|| spec.kind.default_value(), |(_, v)| v.clone())
}

/// The library at `path`, loaded into this process once.
fn load(path: &Path) -> Result<Arc<Library>, String> {
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    let map = loaded.get_or_insert_with(HashMap::new);
    if let Some(lib) = map.get(path) {
        return Ok(Arc::clone(lib));
    }
    let lib = Arc::new(Library::open(path)?);
    map.insert(path.to_owned(), Arc::clone(&lib));
    Ok(lib)
}

/// In a worker: loads the one library `path` and makes its elements the registry's plugin
/// elements (nothing is searched, nothing else is loaded).
pub fn worker_load(path: &Path) -> Result<(), String> {
    let lib = load(path)?;
    let info = lib.info()?;
    info.check()?;
    let mut catalog = Catalog::default();
    catalog.admit(path.to_owned(), info);
    CATALOG
        .set(catalog)
        .map_err(|_| "the registry was read before the plugin was loaded".to_owned())
}

/// In a worker without a plugin: no search either.
pub fn disable_discovery() {
    let _ = CATALOG.set(Catalog::default());
}

// --- the probe ------------------------------------------------------------------------------

/// What the probe child says about one file (and what the descriptor cache keeps).
#[derive(
    Clone, serde::Serialize, serde::Deserialize, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub enum Said {
    /// Its descriptor.
    Ok(PluginInfo),
    /// Why it has none.
    Err(String),
}

impl Said {
    fn into_result(self) -> Result<PluginInfo, String> {
        match self {
            Said::Ok(info) => Ok(info),
            Said::Err(why) => Err(why),
        }
    }
}

/// What [`probe`] found about one file.
struct Probed {
    said: Said,
    /// Whether the cache may keep it: an answer, a crash or a hang of the library, not a
    /// failure to start the child.
    keep: bool,
}

/// The probe child: loads each file named in `args` and writes one JSON line per file to
/// stdout. What the plugins themselves print to stdout goes to stderr instead.
pub fn probe_main(files: &[std::ffi::OsString]) -> i32 {
    let answers = match std::io::stdout()
        .lock()
        .flush()
        .and_then(|()| rustix::io::dup(std::io::stdout()).map_err(Into::into))
    {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("parallax plugin probe: {e}");
            return 2;
        }
    };
    if let Err(e) = rustix::stdio::dup2_stdout(std::io::stderr()) {
        eprintln!("parallax plugin probe: {e}");
        return 2;
    }
    let mut answers = std::fs::File::from(answers);
    for file in files {
        let said = match Library::open(Path::new(file)).and_then(|lib| lib.info()) {
            Ok(info) => Said::Ok(info),
            Err(e) => Said::Err(e),
        };
        let line = serde_json::to_string(&said).unwrap_or_default();
        if writeln!(answers, "{line}").is_err() {
            return 1;
        }
        // Kept loaded: unloading runs destructors, more code of theirs for nothing.
    }
    0
}

/// Reads the descriptors of `files` in child processes: one child for all of them, another
/// for what is left after one that crashed or hung. Each library gets [`probe_patience`]: a
/// constructor or descriptor that takes longer costs a warning naming the file, and the child
/// is killed.
fn probe(files: &[PathBuf]) -> Vec<(PathBuf, Probed)> {
    let mut out = Vec::new();
    let mut pending: std::collections::VecDeque<PathBuf> = files.iter().cloned().collect();
    let not_started = |e: std::io::Error| Probed {
        said: Said::Err(format!("cannot start the process that reads plugins: {e}")),
        keep: false,
    };
    let exe = match std::env::var_os("PARALLAX_WORKER_EXE") {
        Some(path) => PathBuf::from(path),
        None => match std::env::current_exe() {
            Ok(exe) => exe,
            Err(e) => {
                let why = not_started(e).said;
                return files
                    .iter()
                    .map(|f| {
                        let said = why.clone();
                        (f.clone(), Probed { said, keep: false })
                    })
                    .collect();
            }
        },
    };
    let patience = probe_patience();
    while !pending.is_empty() {
        let child = std::process::Command::new(&exe)
            .arg(PROBE_ARG)
            .args(&pending)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                let why = not_started(e).said;
                out.extend(pending.drain(..).map(|f| {
                    let said = why.clone();
                    (f, Probed { said, keep: false })
                }));
                break;
            }
        };
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout).lines() {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut hung = false;
        while !pending.is_empty() {
            match rx.recv_timeout(patience) {
                Ok(Ok(line)) => {
                    let file = pending.pop_front().unwrap_or_default();
                    let said = serde_json::from_str(&line).unwrap_or_else(|e| {
                        Said::Err(format!("its descriptor came back garbled ({e})"))
                    });
                    out.push((file, Probed { said, keep: true }));
                }
                Ok(Err(_)) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    hung = true;
                    break;
                }
            }
        }
        if pending.is_empty() {
            let _ = child.wait();
            break;
        }
        if hung {
            let _ = child.kill();
        }
        let status = child.wait();
        let file = pending.pop_front().unwrap_or_default();
        let why = if hung {
            format!(
                "loading it or reading its descriptor did not end within {:?} \
                 (PARALLAX_PLUGIN_PROBE_TIMEOUT)",
                patience
            )
        } else {
            use std::os::unix::process::ExitStatusExt as _;
            match status.ok().and_then(|s| s.signal()) {
                Some(sig) => format!(
                    "loading it or reading its descriptor crashed (signal {sig}: {})",
                    signal_name(sig)
                ),
                None => "loading it or reading its descriptor ended the process".into(),
            }
        };
        let said = Said::Err(why);
        out.push((file, Probed { said, keep: true }));
    }
    out
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        _ => "a signal",
    }
}

// --- the element ----------------------------------------------------------------------------

/// Smallest slot a plugin element's pool lends.
const MIN_SLOT: usize = 64 * 1024;
/// Slots of a plugin element's pool.
const SLOTS: usize = 16;

/// A plugin element's instance: its outputs are slots of its own pool (memfd, so that in a
/// worker they reach the parent without a copy).
struct PluginElement {
    instance: ffi::Instance,
    name: String,
    pool: Option<MemoryPool>,
    /// Tells a reload that this instance still runs (see [`in_process_changed`]).
    _alive: Arc<()>,
}

impl PluginElement {
    fn pool_for(&mut self, len: usize) -> Result<MemoryPool, ElementError> {
        match &self.pool {
            Some(pool) if pool.slot_size() >= len => Ok(pool.clone()),
            _ => {
                let size = len.max(MIN_SLOT).next_power_of_two();
                let pool = MemoryPool::new(&PoolConfig::new(self.name.clone(), SLOTS, size))
                    .map_err(|e| ElementError::Failed(format!("{}: {e}", self.name)))?;
                self.pool = Some(pool.clone());
                Ok(pool)
            }
        }
    }

    fn run(
        &mut self,
        len: usize,
        meta: Metadata,
        cx: &mut Ctx<'_>,
        call: impl FnOnce(&mut ffi::Instance, &mut dyn ffi::Output) -> Result<(), String>,
    ) -> Result<Vec<Buffer>, ElementError> {
        let pool = self.pool_for(len)?;
        let mut out = Outputs {
            pool: Some(&pool),
            cx,
            meta,
            lent: None,
            done: Vec::new(),
            refused: None,
        };
        let result = call(&mut self.instance, &mut out);
        if let Some(why) = out.refused {
            return Err(ElementError::Failed(why));
        }
        result.map_err(ElementError::Failed)?;
        Ok(out.done)
    }
}

impl Transform for PluginElement {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let meta = ffi::InputMeta {
            pts: buf.meta.pts(),
            duration: buf.meta.duration(),
            offset: buf.meta.offset(),
            sequence: buf.meta.sequence,
        };
        let mut outs = self.run(buf.len(), buf.meta.clone(), cx, |inst, out| {
            inst.process(buf.data(), meta, out)
        })?;
        let last = outs.pop();
        for b in outs {
            cx.push(b);
        }
        Ok(last.map_or(Flow::Drop, Flow::Push))
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        let outs = self.run(0, Metadata::default(), cx, |inst, out| {
            inst.end_of_stream(out)
        })?;
        for b in outs {
            cx.push(b);
        }
        Ok(())
    }
}

/// A plugin source's instance: its outputs are slots of the pool the run sets up for it.
struct PluginSource {
    instance: ffi::Instance,
    name: String,
    /// Buffers one `produce` call pushed beyond the first, handed out one per call.
    held: std::collections::VecDeque<Buffer>,
    ended: bool,
    sequence: u64,
    offset: u64,
    _alive: Arc<()>,
}

impl Source for PluginSource {
    fn pool_request(&self) -> Option<PoolRequest> {
        Some(PoolRequest {
            slot_size: MIN_SLOT,
            slots: 0,
        })
    }

    fn produce(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Buffer>, ElementError> {
        while self.held.is_empty() && !self.ended {
            let mut out = Outputs {
                pool: None,
                cx,
                meta: Metadata::default(),
                lent: None,
                done: Vec::new(),
                refused: None,
            };
            let result = self.instance.produce(&mut out);
            if let Some(why) = out.refused {
                return Err(ElementError::Failed(format!("{}: {why}", self.name)));
            }
            let done = out.done;
            self.ended =
                result.map_err(|why| ElementError::Failed(format!("{}: {why}", self.name)))?;
            self.held.extend(done);
            if self.held.is_empty() && !self.ended && cx.is_stopping() {
                return Ok(None);
            }
        }
        let Some(mut buf) = self.held.pop_front() else {
            return Ok(None);
        };
        let len = buf.len() as u64;
        buf.meta.sequence = self.sequence;
        buf.meta.set_offset(Some(self.offset));
        buf.meta.set_offset_end(Some(self.offset + len));
        self.sequence += 1;
        self.offset += len;
        Ok(Some(buf))
    }
}

/// A plugin sink's instance.
struct PluginSink {
    instance: ffi::Instance,
    _alive: Arc<()>,
}

impl Sink for PluginSink {
    fn render(&mut self, buf: &Buffer, _cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        let meta = ffi::InputMeta {
            pts: buf.meta.pts(),
            duration: buf.meta.duration(),
            offset: buf.meta.offset(),
            sequence: buf.meta.sequence,
        };
        self.instance
            .render(buf.data(), meta)
            .map_err(ElementError::Failed)?;
        Ok(SinkFlow::Continue)
    }

    fn finish(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        self.instance
            .sink_end_of_stream()
            .map_err(ElementError::Failed)
    }
}

/// The host side of one call's `px_output`.
struct Outputs<'p, 'c, 'r> {
    /// The element's own pool, or `None` for the one the run set up for it (a source's).
    pool: Option<&'p MemoryPool>,
    cx: &'c mut Ctx<'r>,
    meta: Metadata,
    lent: Option<LoanedSlot>,
    done: Vec<Buffer>,
    refused: Option<String>,
}

impl ffi::Output for Outputs<'_, '_, '_> {
    fn lend(&mut self) -> Option<&mut [u8]> {
        let slot = match self.pool {
            Some(pool) => {
                let cx = &*self.cx;
                pool.loan_blocking(&|| cx.is_stopping()).ok()?
            }
            None => self.cx.loan().ok()?,
        };
        Some(self.lent.insert(slot).as_mut_slice())
    }

    fn push(&mut self, len: usize) -> bool {
        let Some(slot) = self.lent.take() else {
            self.refused
                .get_or_insert_with(|| "pushed without a lent slot".into());
            return false;
        };
        if len > slot.capacity() {
            self.refused.get_or_insert_with(|| {
                format!(
                    "pushed {len} bytes from a slot of {} (wrote past its output)",
                    slot.capacity()
                )
            });
            return false;
        }
        let mut buf = slot.freeze(len);
        buf.meta = self.meta.clone();
        self.done.push(buf);
        true
    }
}

/// Reads the descriptor of the one library `path` (in a child, as discovery does), for
/// `parallax-inspect path/to/libfoo.so`: the plugin and its elements as factories.
pub fn describe_file(path: &Path) -> Result<(PluginInfo, Vec<&'static Factory>), String> {
    let info = read_descriptor(path)?;
    let factories = info.elements.iter().map(factory).collect();
    Ok((info, factories))
}

/// When this process was started as the probe child ([`PROBE_ARG`]), reads the descriptors
/// and returns the exit code; otherwise `None`. Binaries call it first thing.
pub fn probe_if_asked() -> Option<u8> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    (args.get(1).is_some_and(|a| a == PROBE_ARG)).then(|| probe_main(&args[2..]) as u8)
}
