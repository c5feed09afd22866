//! The first bytes of a source's stream, read when the description is validated: how
//! `typefind`, `decodebin` and a demuxer learn the input's type (and a container's streams)
//! before anything runs, so caps stay fixed at validation.
//!
//! A regular file (`filesrc`, `fdsrc < file`) is read here and again at run time. A stream
//! that cannot be read twice (stdin from a pipe, a FIFO, a terminal) is *lent*: validation
//! reads its head through a [`LentHead`] attached to the source, which keeps those bytes, and
//! the source passes exactly them first at run time, then reads on. `httpsrc` can fetch its
//! URL twice: validation reads the head with a request of its own, closed once validation is
//! done, and the run requests the URL again from its start.
//!
//! Only a source whose bytes reach a `typefind`, `decodebin` or demuxer lends its head: a
//! plain `fdsrc ! filesink` is never read before the run. A stream with nothing to read yet
//! holds validation until data or its end arrive, as gst's typefind waits for data.

use std::path::PathBuf;
use std::sync::Arc;

use daggy::NodeIndex;

use super::negotiate::byte_source;
use super::{Graph, Node};
use crate::element::{Lender, LentHead};
use crate::registry::{Role, Value};

/// Where validation reads a source's stream from.
pub(crate) enum Input {
    /// A regular file, read again at run time.
    File(PathBuf),
    /// A stream whose head the source lent (see the module's doc).
    Lent(Arc<LentHead>),
}

impl Input {
    /// The stream's type, from as much of its head as typefinding needs to decide (at most
    /// 64 KiB: see `elements::typefind`): the head it read, and the caps found.
    pub(crate) fn typefind(&self) -> std::io::Result<(Vec<u8>, Option<crate::caps::Caps>)> {
        use std::io::Read as _;
        match self {
            // Opened once; each step reads on from where the last stopped.
            Input::File(path) => {
                let mut file = std::fs::File::open(path)?;
                let mut head = Vec::new();
                crate::elements::typefind(|len| {
                    let more = len.saturating_sub(head.len()) as u64;
                    (&mut file).take(more).read_to_end(&mut head)?;
                    Ok(head[..len.min(head.len())].to_vec())
                })
            }
            Input::Lent(lent) => crate::elements::typefind(|len| lent.head(len)),
        }
    }
}

/// The regular file a source reads: its `location` (or any property that names a file it
/// reads), or the file an `fdsrc`'s descriptor is open on (`< song.flac`, read through
/// `/proc/self/fd` so that the descriptor's own position does not move).
fn regular_file(node: &Node) -> Option<PathBuf> {
    let path = read_path(node).or_else(|| {
        (node.factory.name == "fdsrc")
            .then(|| node.props.int("fd").ok())
            .flatten()
            .map(|fd| format!("/proc/self/fd/{fd}").into())
    })?;
    std::fs::metadata(&path).ok()?.is_file().then_some(path)
}

fn read_path(node: &Node) -> Option<PathBuf> {
    node.props.explicit().find_map(|(spec, value)| match value {
        Value::Str(Some(path)) if spec.role == Role::ReadsPath => Some(PathBuf::from(path)),
        _ => None,
    })
}

/// What validation may read of the stream `source` gives: a regular file, or the head it
/// lent; `None` for anything else (a socket source, a generator).
pub(crate) fn input(source: &Node) -> Option<Input> {
    if let Some(path) = regular_file(source) {
        return Some(Input::File(path));
    }
    source.props.attached::<LentHead>().map(Input::Lent)
}

/// How a source is named in an error about its stream: `fd 0`, its file or its URL.
pub(crate) fn describe(source: &Node) -> String {
    match source.factory.name {
        "fdsrc" => format!("fd {}", source.props.int("fd").unwrap_or(0)),
        "httpsrc" => source
            .props
            .string("location")
            .ok()
            .flatten()
            .unwrap_or("the URL")
            .to_owned(),
        _ => read_path(source).map_or(source.name.clone(), |p| p.display().to_string()),
    }
}

/// Lends the head of every source whose bytes reach a `typefind`, `decodebin` or demuxer
/// (through elements that pass bytes unchanged) and that is no regular file.
pub(super) fn lend_to_typefinders(graph: &mut Graph) {
    let wanting: Vec<NodeIndex<u32>> = graph
        .dag
        .graph()
        .node_indices()
        .filter(|&n| {
            let f = graph.dag[n].factory;
            matches!(f.name, "typefind" | "decodebin") || super::autoplug::demuxer_of(f).is_some()
        })
        .collect();
    for n in wanting {
        if let Some(source) = byte_source(graph, n) {
            lend(graph, source);
        }
    }
}

/// Attaches a [`LentHead`] to `source` when it can lend one and has none yet.
pub(super) fn lend(graph: &mut Graph, source: NodeIndex<u32>) {
    let node = &graph.dag[source];
    if node.props.attached::<LentHead>().is_some() || regular_file(node).is_some() {
        return;
    }
    let head = match node.factory.name {
        "fdsrc" => {
            let n = node.props.int("fd").unwrap_or(0) as i32;
            // A duplicate: validation reads through it, the source reads on from its own.
            let Ok(fd) = crate::ipc::inherited(n) else {
                return; // the build says the descriptor is not open
            };
            LentHead::new(Box::new(move || {
                Ok(Lender::File(fd.try_clone_to_owned()?.into()))
            }))
        }
        "filesrc" => {
            let Some(path) = read_path(node) else { return };
            if !std::fs::metadata(&path).is_ok_and(|m| !m.is_dir()) {
                return; // the build names what is wrong with it
            }
            // A FIFO's open waits for a writer: validation waits for its data anyway.
            LentHead::new(Box::new(move || {
                Ok(Lender::File(std::fs::File::open(path)?))
            }))
        }
        "httpsrc" => {
            let (factory, props) = (node.factory, node.props.clone());
            let name = node.name.clone();
            // A throwaway download for validation; the run fetches the stream itself.
            LentHead::rereading(Box::new(move || fetch_again(factory, &props, name)))
        }
        _ => return,
    };
    graph.dag[source].props.attach(Arc::new(head));
}

/// Closes what validation opened for a source that reads its stream again at run time.
pub(super) fn release(graph: &Graph) {
    for node in graph.dag.graph().node_weights() {
        if let Some(lent) = node.props.attached::<LentHead>().filter(|l| l.rereads()) {
            lent.close();
        }
    }
}

/// A throwaway instance of an async source (httpsrc) run on a runtime of its own, read as a
/// byte stream: its head is the head of what the run will fetch again.
fn fetch_again(
    factory: &'static crate::registry::Factory,
    props: &crate::registry::Props,
    name: String,
) -> std::io::Result<Lender> {
    use crate::element::{AsyncCtx, DetachedRun, ElementImpl};
    let other = |e: String| std::io::Error::other(e);
    let ElementImpl::AsyncSource(src) = factory
        .instantiate(props)
        .map_err(|e| other(e.to_string()))?
    else {
        return Err(other(format!("{} is not an async source", factory.name)));
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cx = AsyncCtx::new(
        Arc::new(DetachedRun::new()),
        None,
        name,
        Arc::new(crate::exec::Console::default()),
    );
    Ok(Lender::Reader(Box::new(AsyncRead {
        rt,
        src,
        cx,
        started: false,
        ended: false,
        data: None,
        at: 0,
    })))
}

/// Reads an async source's buffers as bytes, on its own runtime.
struct AsyncRead {
    rt: tokio::runtime::Runtime,
    src: Box<dyn crate::element::DynAsyncSource>,
    cx: crate::element::AsyncCtx,
    started: bool,
    ended: bool,
    /// The last buffer (held, not copied), and how many of its bytes are read.
    data: Option<crate::memory::Buffer>,
    at: usize,
}

impl AsyncRead {
    /// The last buffer's bytes.
    fn held(&self) -> &[u8] {
        self.data.as_ref().map_or(&[], |b| b.data())
    }
}

impl std::io::Read for AsyncRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let other = |e: crate::element::ElementError| std::io::Error::other(e.to_string());
        while self.at == self.held().len() && !self.ended {
            let (src, cx) = (&mut self.src, &mut self.cx);
            if !self.started {
                self.rt.block_on(src.start_dyn(cx)).map_err(other)?;
                self.started = true;
            }
            match self.rt.block_on(src.produce_dyn(cx)).map_err(other)? {
                Some(b) => {
                    self.data = Some(b);
                    self.at = 0;
                }
                None => self.ended = true,
            }
        }
        let unread = &self.held()[self.at..];
        let n = unread.len().min(buf.len());
        buf[..n].copy_from_slice(&unread[..n]);
        self.at += n;
        Ok(n)
    }
}
