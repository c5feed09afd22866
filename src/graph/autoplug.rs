//! `decodebin` and `uridecodebin`, expanded when the description is validated.
//!
//! gst's decodebin typefinds the stream at run time and plugs a demuxer, parsers and decoders
//! as pads appear. Parallax plans a static graph before anything runs, and the input's type
//! is known then (a file's head is read, as negotiation reads it for a decoder after
//! `filesrc`, and a pipe's is lent), so the chain is chosen here, once, and becomes ordinary
//! nodes of the graph: `decodebin0` stays as the bin's entry (it passes bytes unchanged) and the elements it chose
//! follow it, named `decodebin0/flacparse0` like gst's element paths. The planner then places
//! them by their own hints, so a decoder written in C runs isolated inside decodebin too.
//!
//! Elements are chosen from the registry by caps and rank, as gst's autoplugger does: every
//! one-in element whose sink template takes encoded or container caps and whose src template
//! says what it gives is a candidate; a parser (same media type in and out) comes first while
//! the stream is not yet framed, then the highest rank. Rank is gst's `PRIMARY` for Rust code
//! and `SECONDARY` for native code, so a Rust decoder wins where both exist. A codec that
//! joins the registry joins decodebin with no change here.
//!
//! A container with several streams (MP4) gets its demuxer, and each stream its own chain;
//! each `d.` link takes the next stream whose raw caps its downstream accepts, as gst-launch
//! links pads as they appear. A pipe, FIFO or URL lends its head to validation (see
//! [`super::head`]); input that cannot (a socket) is refused with what to write instead.

use daggy::petgraph::visit::EdgeRef;
use daggy::NodeIndex;

use super::head::{self, Input};
use super::negotiate::byte_source;
use super::{Graph, Link, Node};
use crate::caps::Caps;
use crate::parse::Diagnostic;
use crate::registry::{self, CapsRule, Factory, Klass, PadPresence, Props};

/// gst's ranks.
const PRIMARY: u32 = 256;
const SECONDARY: u32 = 128;

/// One stream of the input, as its demuxer (if any) gives it.
#[derive(Debug, Clone)]
pub(crate) struct Stream {
    /// The demuxer's src pad (`video_0`); `None` when there is no demuxer.
    pub(crate) pad: Option<String>,
    /// Its caps, encoded.
    pub(crate) caps: Caps,
}

/// What a container file holds: one `(src pad, caps)` per stream, or what is wrong with it.
/// The demuxer's properties may choose among them (tsdemux's `program-number`).
pub(crate) type StreamsOf = fn(&std::path::Path, &Props) -> Result<Vec<(String, Caps)>, String>;
/// The same for a stream read from its start.
pub(crate) type StreamsOfStream =
    fn(&mut dyn std::io::Read, &Props) -> Result<Vec<(String, Caps)>, String>;

/// What reads the streams a demuxer's input holds: from a file, or from a lent stream.
pub(super) type Lister = (StreamsOf, StreamsOfStream);

/// The streams `input` holds, as the demuxer's `list` reads them.
fn streams_in(list: Lister, input: &Input, props: &Props) -> Result<Vec<(String, Caps)>, String> {
    match input {
        Input::File(path) => list.0(path, props),
        Input::Lent(lent) => list.1(&mut lent.reader(), props),
    }
}

/// Expands every decodebin and uridecodebin of `graph`.
pub(super) fn expand(graph: &mut Graph) -> Result<(), Diagnostic> {
    let bins: Vec<NodeIndex<u32>> = graph
        .topo_order()
        .into_iter()
        .filter(|&n| is_decodebin(graph.dag[n].factory))
        .collect();
    for d in bins {
        expand_one(graph, d)?;
    }
    let demuxers: Vec<NodeIndex<u32>> = graph
        .dag
        .graph()
        .node_indices()
        .filter(|&n| graph.dag[n].pad_caps.is_empty() && demuxer_of(graph.dag[n].factory).is_some())
        .collect();
    for n in demuxers {
        plan_demuxer(graph, n)?;
    }
    Ok(())
}

/// What reads the streams of the input demuxer `f` takes, when `f` is a demuxer.
pub(super) fn demuxer_of(f: &Factory) -> Option<Lister> {
    crate::elements::demuxers()
        .into_iter()
        .find(|(d, _, _)| std::ptr::eq(*d, f))
        .map(|(_, file, stream)| (file, stream))
}

/// A demuxer written in the description: its file's streams give its pads their caps, and
/// each link written without a pad name (`demux.`) the next stream its downstream takes.
fn plan_demuxer(graph: &mut Graph, n: NodeIndex<u32>) -> Result<(), Diagnostic> {
    let list = demuxer_of(graph.dag[n].factory).expect("chosen as a demuxer");
    let name = graph.dag[n].name.clone();
    let span = graph.dag[n].span.clone();
    let source = byte_source(graph, n);
    let input = source.and_then(|s| head::input(&graph.dag[s]));
    let (Some(source), Some(input)) = (source, input) else {
        return Err(Diagnostic::new(
            format!(
                "{name}: its tracks must be known before the run, and its input can be read \
                 neither again nor ahead"
            ),
            span,
        )
        .with_help(
            "read a file (`filesrc location=...`, `fdsrc < file`) or a pipe (`fdsrc`) into it",
        ));
    };
    let what = head::describe(&graph.dag[source]);
    let streams = streams_in(list, &input, &graph.dag[n].props)
        .map_err(|why| Diagnostic::new(format!("{name}: {what}: {why}"), span.clone()))?;
    let listed: Vec<String> = streams
        .iter()
        .map(|(p, c)| format!("{p} ({})", c.first().map_or("?", |s| s.name.as_str())))
        .collect();
    let mut edges: Vec<(daggy::EdgeIndex<u32>, String, NodeIndex<u32>)> = graph
        .dag
        .graph()
        .edges_directed(n, daggy::petgraph::Direction::Outgoing)
        .map(|e| (e.id(), e.weight().src_pad.clone(), e.target()))
        .collect();
    edges.sort_by_key(|(_, p, _)| super::pad_order(p));
    let mut used: Vec<bool> = streams
        .iter()
        .map(|(p, _)| edges.iter().any(|(_, q, _)| q == p))
        .collect();
    for (e, pad, child) in &edges {
        if pad.starts_with("?_") {
            let found =
                (0..streams.len()).find(|&i| !used[i] && accepts(graph, *child, &streams[i].1));
            let Some(i) = found else {
                return Err(Diagnostic::new(
                    format!(
                        "{name}: no track is left that `{}` takes (the file has {})",
                        graph.dag[*child].name,
                        listed.join(", ")
                    ),
                    graph.dag[*e].span.clone(),
                )
                .with_help(format!("name the pad: `{name}.audio_0`")));
            };
            used[i] = true;
            graph.dag[*e].src_pad = streams[i].0.clone();
        } else if !streams.iter().any(|(p, _)| p == pad) {
            return Err(Diagnostic::new(
                format!(
                    "{name} has no pad `{pad}`: the file's tracks are {}",
                    listed.join(", ")
                ),
                graph.dag[*e].span.clone(),
            ));
        }
    }
    graph.dag[n].pad_caps = streams;
    Ok(())
}

fn is_decodebin(f: &Factory) -> bool {
    matches!(f.name, "decodebin" | "uridecodebin")
}

/// A chain chosen for one stream.
struct Chain {
    stream: Stream,
    factories: Vec<&'static Factory>,
    raw: Caps,
}

fn expand_one(graph: &mut Graph, d: NodeIndex<u32>) -> Result<(), Diagnostic> {
    let span = graph.dag[d].span.clone();
    let name = graph.dag[d].name.clone();
    let force_sw = graph.dag[d]
        .props
        .bool("force-sw-decoders")
        .unwrap_or(false);
    let err = |msg: String, help: String| {
        let d = Diagnostic::new(msg, span.clone());
        if help.is_empty() {
            d
        } else {
            d.with_help(help)
        }
    };
    let (input, source) = if graph.dag[d].factory.name == "uridecodebin" {
        become_source(graph, d).map_err(|(m, h)| err(m, h))?;
        head::lend(graph, d);
        let node = &graph.dag[d];
        let (caps, source) = read_type(&name, node)
            .ok_or_else(|| {
                err(
                    format!("{name}: cannot read {}", head::describe(node)),
                    "uri= must name a file that exists (file:///...) or an http:// URL".into(),
                )
            })?
            .map_err(|(m, h)| err(m, h))?;
        (caps, Some(source))
    } else {
        input_type(graph, d, &name).map_err(|(m, h)| err(m, h))?
    };
    // A container: its demuxer and its streams.
    let (demuxer, streams) = match demuxer_for(&input) {
        Some((factory, list)) => {
            let Some((source, what)) = &source else {
                return Err(err(
                    format!(
                        "{name}: a {} stream needs its whole file to be known before the run",
                        input
                            .first()
                            .map_or("container".to_owned(), |s| s.name.clone())
                    ),
                    format!("read it from a file (`filesrc location=...`), or name the demuxer: `{} name=demux demux.video_0 ! ...`", factory.name),
                ));
            };
            let defaults = Props::defaults(factory.name, factory.props);
            let streams = streams_in(list, source, &defaults)
                .map_err(|why| {
                    let help = match source {
                        Input::Lent(_) => "read it from a file (`filesrc location=...`)".into(),
                        Input::File(_) => format!("`{}` reads this format", factory.name),
                    };
                    err(format!("{name}: {what}: {why}"), help)
                })?
                .into_iter()
                .map(|(pad, caps)| Stream {
                    pad: Some(pad),
                    caps,
                })
                .collect();
            (Some(factory), streams)
        }
        None => (
            None,
            vec![Stream {
                pad: None,
                caps: input.clone(),
            }],
        ),
    };
    // A stream no element of this build decodes is left out (gst's missing-plugin warning),
    // unless none can be decoded.
    let mut chains = Vec::new();
    let mut undecodable = Vec::new();
    let mut first_err = None;
    for stream in streams {
        match pick_chain(&stream.caps, force_sw) {
            Ok((factories, raw)) => chains.push(Chain {
                stream,
                factories,
                raw,
            }),
            Err((m, h)) => {
                let what = stream
                    .caps
                    .first()
                    .map_or("?", |s| s.name.as_str())
                    .to_owned();
                undecodable.push(format!(
                    "{}: no decoder for {what}",
                    stream.pad.as_deref().unwrap_or("stream")
                ));
                first_err.get_or_insert((m, h));
            }
        }
    }
    if chains.is_empty() {
        let (m, h) = first_err.unwrap_or_else(|| ("the file has no streams".into(), String::new()));
        return Err(err(format!("{name}: {m}"), h));
    }
    // The user's links from the bin, in pad order, each given the next stream it takes.
    let mut links: Vec<(Link, NodeIndex<u32>)> = graph
        .children(d)
        .into_iter()
        .map(|(l, c)| (l.clone(), c))
        .collect();
    links.sort_by_key(|(l, _)| super::pad_order(&l.src_pad));
    let mut taken: Vec<Option<usize>> = vec![None; links.len()];
    for (i, chain) in chains.iter().enumerate() {
        let target = (0..links.len())
            .find(|&k| taken[k].is_none() && accepts(graph, links[k].1, &chain.raw));
        if let Some(k) = target {
            taken[k] = Some(i);
        }
    }
    if let Some(k) = taken.iter().position(Option::is_none) {
        let (link, child) = &links[k];
        let what: Vec<String> = chains.iter().map(|c| c.raw.to_string()).collect();
        return Err(Diagnostic::new(
            format!(
                "{name}.{} gets no stream: `{}` takes none of what {name} decodes ({})",
                link.src_pad,
                graph.dag[*child].name,
                what.join("; ")
            ),
            link.span.clone(),
        )
        .with_help("link each stream to an element that takes its raw caps (a converter such as audioconvert or videoconvert)"));
    }
    // Rewire: the bin's entry, the demuxer, each stream's chain, the user's links.
    let edges: Vec<_> = graph
        .dag
        .graph()
        .edges_directed(d, daggy::petgraph::Direction::Outgoing)
        .map(|e| e.id())
        .collect();
    let mut edges = edges;
    edges.sort_by(|a, b| b.cmp(a));
    for e in edges {
        graph.dag.remove_edge(e);
    }
    // A decodebin's chain hangs off its src_0; a uridecodebin became its source, with a src.
    let from_pad = if is_decodebin(graph.dag[d].factory) {
        "src_0"
    } else {
        "src"
    };
    let entry_span = links.first().map_or(span.clone(), |(l, _)| l.span.clone());
    let mut counters = std::collections::HashMap::new();
    let head = match demuxer {
        Some(f) => {
            let n = add_inner(graph, d, f, &mut counters);
            link(graph, d, from_pad, n, "sink", &entry_span)?;
            graph.dag[n].pad_caps = chains
                .iter()
                .filter_map(|c| Some((c.stream.pad.clone()?, c.stream.caps.clone())))
                .collect();
            Some(n)
        }
        None => None,
    };
    let mut notes = Vec::new();
    if let Some(f) = demuxer {
        notes.push(f.name.to_owned());
    }
    for (i, chain) in chains.iter().enumerate() {
        let Some(k) = taken.iter().position(|t| *t == Some(i)) else {
            // No link wants this stream: the demuxer drops its buffers, as gst's not-linked.
            if let Some(pad) = &chain.stream.pad {
                notes.push(format!("{pad}: not linked"));
            }
            continue;
        };
        let (mut prev, mut prev_pad) = match (head, &chain.stream.pad) {
            (Some(h), Some(pad)) => (h, pad.clone()),
            _ => (d, from_pad.to_owned()),
        };
        let (user, child) = &links[k];
        for f in &chain.factories {
            let n = add_inner(graph, d, f, &mut counters);
            link(graph, prev, &prev_pad, n, "sink", &user.span)?;
            prev = n;
            prev_pad = "src".to_owned();
        }
        link(graph, prev, &prev_pad, *child, &user.sink_pad, &user.span)?;
        let names: Vec<&str> = chain.factories.iter().map(|f| f.name).collect();
        let text = if names.is_empty() {
            "nothing (already raw)".to_owned()
        } else {
            names.join(" ! ")
        };
        notes.push(match &chain.stream.pad {
            Some(pad) => format!("{pad}: {text}"),
            None => text,
        });
    }
    notes.extend(undecodable);
    graph.dag[d].note = Some(format!("chose {}", notes.join("; ")));
    Ok(())
}

/// Adds element `f` inside bin `d`, named `d/f0`.
fn add_inner(
    graph: &mut Graph,
    d: NodeIndex<u32>,
    f: &'static Factory,
    counters: &mut std::collections::HashMap<&'static str, usize>,
) -> NodeIndex<u32> {
    let bin = &graph.dag[d];
    let k = counters.entry(f.name).or_default();
    let name = format!("{}/{}{k}", bin.name, f.name);
    *k += 1;
    let span = bin.span.clone();
    let props = Props::defaults(f.name, f.props).with_instance(&name);
    graph.dag.add_node(Node {
        name,
        named: false,
        factory: f,
        props,
        written: Vec::new(),
        exec: registry::Exec::Auto,
        trust: f.hints.trust,
        latency: f.hints.latency,
        planned: None,
        note: None,
        pad_caps: Vec::new(),
        span,
    })
}

fn link(
    graph: &mut Graph,
    from: NodeIndex<u32>,
    src_pad: &str,
    to: NodeIndex<u32>,
    sink_pad: &str,
    span: &std::ops::Range<usize>,
) -> Result<(), Diagnostic> {
    graph
        .dag
        .add_edge(
            from,
            to,
            Link {
                src_pad: src_pad.to_owned(),
                sink_pad: sink_pad.to_owned(),
                span: span.clone(),
                caps: Caps::Any,
            },
        )
        .map(|_| ())
        .map_err(|_| Diagnostic::new("decodebin's chain would make a cycle", span.clone()))
}

/// Turns a uridecodebin into the source that reads its URI: `filesrc` for `file://`,
/// `httpsrc` for `http://` and `https://`.
fn become_source(graph: &mut Graph, d: NodeIndex<u32>) -> Result<(), (String, String)> {
    let node = &graph.dag[d];
    let name = node.name.clone();
    let uri = node
        .props
        .string("uri")
        .ok()
        .flatten()
        .unwrap_or("")
        .to_owned();
    let (scheme, rest) = uri.split_once("://").unwrap_or(("", ""));
    let help = "uri= takes file:///absolute/path or http://host/path";
    let (factory, prop, value) =
        if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
            ("httpsrc", "location", uri.clone())
        } else if scheme.eq_ignore_ascii_case("file") {
            let path = rest.strip_prefix("localhost").unwrap_or(rest);
            if !path.starts_with('/') {
                return Err((
                    format!("{name}: a file:// URI needs an absolute path (file:///tmp/x)"),
                    help.into(),
                ));
            }
            ("filesrc", "location", super::percent_decode(path))
        } else {
            return Err((
                format!("{name}: no element handles `{scheme}://` URIs"),
                help.into(),
            ));
        };
    // filesrc is always built in; httpsrc only with the http feature.
    let source = registry::find(factory).ok_or_else(|| {
        (
            format!("{name}: this build has no {factory}, which reads `{scheme}://` URIs"),
            "build parallax with the http feature (on by default)".to_owned(),
        )
    })?;
    let mut props = Props::defaults(&name, source.props).with_instance(&name);
    let parsed = source
        .prop(prop)
        .expect("both sources have a location")
        .parse(&value)
        .map_err(|e| (format!("{name}: uri: {e}"), String::new()))?;
    props.set(prop, parsed);
    let node = &mut graph.dag[d];
    node.factory = source;
    node.props = props;
    node.written = vec![(prop.to_owned(), value)];
    Ok(())
}

/// The caps of the stream `input` reads (named `what` in errors), from its head.
fn typed(name: &str, input: &Input, what: &str) -> Result<Caps, (String, String)> {
    let (head, found) = input
        .typefind()
        .map_err(|e| (format!("{name}: reading {what}: {e}"), String::new()))?;
    if head.is_empty() {
        return Err((
            format!("{name}: the input ended before its type could be found (0 bytes)"),
            format!("{what} is empty"),
        ));
    }
    found.ok_or_else(|| {
        let shown: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
        (
            format!(
                "{name}: {what} is of no type this build knows (its first {} bytes start {})",
                head.len(),
                shown.join(" ")
            ),
            "`parallax-inspect typefind` lists the types found; `parallax-inspect --features` \
             the codecs built"
                .into(),
        )
    })
}

/// The type of the stream `src` gives, read from its head, with that input and how errors name
/// it; `None` when validation cannot read the stream.
#[allow(clippy::type_complexity)]
fn read_type(
    name: &str,
    src: &super::Node,
) -> Option<Result<(Caps, (Input, String)), (String, String)>> {
    let input = head::input(src)?;
    let what = head::describe(src);
    Some(typed(name, &input, &what).map(|caps| (caps, (input, what))))
}

/// What comes into decodebin `d`, and the stream it comes from (named for errors) when
/// validation can read it.
#[allow(clippy::type_complexity)]
fn input_type(
    graph: &Graph,
    d: NodeIndex<u32>,
    name: &str,
) -> Result<(Caps, Option<(Input, String)>), (String, String)> {
    if let Some(found) = byte_source(graph, d).and_then(|s| read_type(name, &graph.dag[s])) {
        return found.map(|(caps, source)| (caps, Some(source)));
    }
    // Caps said upstream: a capsfilter, or an element that gives typed output.
    let mut at = d;
    loop {
        let mut parents = graph
            .dag
            .graph()
            .neighbors_directed(at, daggy::petgraph::Direction::Incoming);
        let Some(parent) = parents.next() else { break };
        let node = &graph.dag[parent];
        if node.factory.name == "capsfilter" {
            if let Ok(Some(text)) = node.props.string("caps") {
                if let Ok(caps) = Caps::parse(text) {
                    if !caps.is_any() {
                        return Ok((caps, None));
                    }
                }
            }
        }
        match node.factory.pads.rule {
            CapsRule::Passthrough if node.factory.pads.sink != PadPresence::None => at = parent,
            _ => {
                let t = node.factory.pads.src_template();
                if !t.is_any() {
                    return Ok((t, None));
                }
                break;
            }
        }
    }
    let source = byte_source(graph, d).map_or("its input".to_owned(), |s| {
        format!("`{}`", graph.dag[s].name)
    });
    Err((
        format!(
            "{name}: the format of its input cannot be known before the run: {source} can be \
             read neither again nor ahead"
        ),
        "say what the bytes are with caps (`fdsrc ! audio/x-flac ! decodebin`), name the \
         parser and decoder (`... ! flacparse ! flacdec ! ...`), or read a file \
         (`filesrc location=...`, `fdsrc < file`)"
            .into(),
    ))
}

/// The demuxer for a container's caps, with what reads its streams.
fn demuxer_for(caps: &Caps) -> Option<(&'static Factory, Lister)> {
    crate::elements::demuxers()
        .into_iter()
        .find(|(f, _, _)| !f.pads.sink_template().intersect(caps).is_empty())
        .map(|(f, file, stream)| (f, (file, stream)))
}

/// Whether `caps` are raw media: the end of a chain.
fn is_raw(caps: &Caps) -> bool {
    !caps.is_any() && caps.structures().iter().all(|s| s.name.ends_with("/x-raw"))
}

/// Whether `f` may be plugged: one input of encoded or container caps, typed output.
fn pluggable(f: &Factory) -> bool {
    let sink = f.pads.sink_template();
    f.klass == Klass::Filter
        && matches!(f.pads.sink, PadPresence::Always(_))
        && matches!(f.pads.src, PadPresence::Always(_))
        && !sink.is_any()
        // Converters (videorate takes raw video and images alike) are not decoders.
        && !sink.structures().iter().any(|s| s.name.ends_with("/x-raw"))
        && !f.pads.src_template().is_any()
        && !is_decodebin(f)
}

/// A parser gives the media type it takes (framed).
fn is_parser(f: &Factory) -> bool {
    let names = |c: Caps| {
        let mut v: Vec<String> = c.structures().iter().map(|s| s.name.clone()).collect();
        v.sort();
        v
    };
    names(f.pads.sink_template()) == names(f.pads.src_template())
}

/// gst's rank of `f`: native code ranks below Rust.
pub(crate) fn rank(f: &Factory) -> u32 {
    if f.hints.native_code {
        SECONDARY
    } else {
        PRIMARY
    }
}

/// Whether a stream's caps say it is framed already (`framed=true`, `parsed=true`).
fn framed(caps: &Caps) -> bool {
    caps.first().is_some_and(|s| {
        ["framed", "parsed"]
            .iter()
            .any(|f| matches!(s.get(f), Some(crate::caps::Value::Bool(true))))
    })
}

/// The elements that take `input` to raw media, and the raw caps.
#[allow(clippy::type_complexity)]
fn pick_chain(
    input: &Caps,
    force_sw: bool,
) -> Result<(Vec<&'static Factory>, Caps), (String, String)> {
    let mut caps = input.clone();
    let mut chain: Vec<&'static Factory> = Vec::new();
    while !is_raw(&caps) && chain.len() < 8 {
        let mut found: Vec<&'static Factory> = registry::all()
            .filter(|f| pluggable(f) && !chain.iter().any(|c| std::ptr::eq(*c, *f)))
            .filter(|f| !(force_sw && f.hints.native_code))
            .filter(|f| !f.pads.sink_template().intersect(&caps).is_empty())
            .collect();
        let parsed = framed(&caps);
        found.sort_by_key(|f| (parsed || !is_parser(f), std::cmp::Reverse(rank(f)), f.name));
        let Some(&f) = found.first() else {
            return Err(missing(&caps));
        };
        let props = Props::defaults(f.name, f.props);
        let next = match f.pads.rule {
            CapsRule::Passthrough => caps.clone(),
            CapsRule::Fixed => f.pads.src_template(),
            CapsRule::Derived(fns) => (fns.forward)(&caps, &props),
        };
        let next = next.intersect(&f.pads.src_template());
        caps = if next.is_empty() || next.is_any() {
            f.pads.src_template()
        } else {
            next
        };
        chain.push(f);
    }
    if !is_raw(&caps) {
        return Err(missing(&caps));
    }
    Ok((chain, caps))
}

/// No element of this build takes `caps`: which feature would.
fn missing(caps: &Caps) -> (String, String) {
    let s = caps.first();
    let kind = s.map_or("", |s| s.name.as_str());
    let version = s.and_then(|s| s.int("mpegversion"));
    let element = match (kind, version) {
        ("audio/mpeg", Some(1)) => "mpegaudioparse",
        ("audio/mpeg", _) => "aacparse",
        ("application/ogg", _) => "oggdemux",
        ("video/x-h264", _) => "openh264dec",
        ("video/x-av1", _) => "dav1ddec",
        ("audio/x-flac", _) => "flacdec",
        ("image/png", _) => "pngdec",
        ("image/jpeg", _) => "jpegdec",
        ("video/mpegts", _) => "tsdemux",
        _ => "",
    };
    let help = match registry::features::bringing(element) {
        Some(f) if !f.built => format!(
            "the `{}` feature brings `{element}`: build with `--features {}`",
            f.name, f.name
        ),
        _ => "`parallax-inspect --features` lists the codecs this build has".to_owned(),
    };
    (format!("this build has no decoder for {caps}"), help)
}

/// Whether the element at `n` (or, through elements that pass caps unchanged, the first one
/// after it) takes raw `caps`: how gst-launch decides which pending link a new pad takes.
fn accepts(graph: &Graph, n: NodeIndex<u32>, caps: &Caps) -> bool {
    let node = &graph.dag[n];
    let sink = node.factory.pads.sink_template();
    if !sink.is_any() && sink.intersect(caps).is_empty() {
        return false;
    }
    if node.factory.name == "capsfilter" {
        if let Ok(Some(text)) = node.props.string("caps") {
            if let Ok(filter) = Caps::parse(text) {
                if filter.intersect(caps).is_empty() {
                    return false;
                }
            }
        }
    }
    let passes = node.factory.name == "capsfilter"
        || matches!(node.factory.pads.rule, CapsRule::Passthrough);
    !passes
        || graph
            .children(n)
            .first()
            .is_none_or(|&(_, c)| accepts(graph, c, caps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers_come_first_then_rank() {
        let caps = Caps::parse(
            "audio/x-flac, framed=(boolean)false, rate=(int)44100, channels=(int)2, bits=(int)16",
        )
        .unwrap();
        if registry::find("flacdec").is_none() {
            return;
        }
        let (chain, raw) = pick_chain(&caps, false).unwrap();
        let names: Vec<_> = chain.iter().map(|f| f.name).collect();
        assert_eq!(names, ["flacparse", "flacdec"]);
        assert!(is_raw(&raw), "{raw}");
    }

    #[test]
    fn a_format_without_a_decoder_names_what_is_missing() {
        let caps = Caps::parse("video/x-matroska").unwrap();
        let (msg, _) = pick_chain(&caps, false).unwrap_err();
        assert_eq!(msg, "this build has no decoder for video/x-matroska");
    }

    #[test]
    fn input_of_unknown_type_is_refused_with_what_to_write() {
        let d = Graph::from_description("fdsrc fd=100 ! decodebin ! fakesink").unwrap_err();
        assert!(
            d.message
                .contains("the format of its input cannot be known before the run"),
            "{}",
            d.message
        );
        assert!(d.help.unwrap().contains("audio/x-flac ! decodebin"));
    }

    #[test]
    fn uris_without_a_source_say_what_to_write() {
        let d = Graph::from_description("uridecodebin uri=ftp://example.com/a.flac ! fakesink")
            .unwrap_err();
        assert_eq!(d.message, "uridecodebin0: no element handles `ftp://` URIs");
        assert!(d.help.unwrap().contains("http://"));
    }

    #[test]
    #[cfg(feature = "http")]
    fn an_http_uri_that_cannot_be_read_names_it() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let text = format!("uridecodebin uri=http://127.0.0.1:{port}/a.flac ! fakesink");
        let d = Graph::from_description(&text).unwrap_err();
        assert!(
            d.message.starts_with(&format!(
                "uridecodebin0: reading http://127.0.0.1:{port}/a.flac: cannot connect"
            )),
            "{}",
            d.message
        );
    }
}
