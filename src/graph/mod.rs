//! From a parsed description to a validated DAG of element instances (daggy).
//!
//! Every check that can fail before running lives here, so that a bad description exits 2
//! before any element has opened a file: unknown elements and properties (with "did you mean"),
//! bad values, unknown `name.` references, pads that do not exist, pads linked twice, cycles,
//! and always-pads left unlinked.

use std::collections::HashMap;
use std::ops::Range;

use daggy::{Dag, NodeIndex, Walker};

use crate::caps::Caps;
use crate::parse::ast::{self, Chain, Item};
use crate::parse::Diagnostic;
use crate::registry::{self, Domain, Effect, Exec, Factory, Latency, PadPresence, Props, Trust};

mod autoplug;
pub mod dot;
mod head;
pub mod json;
mod negotiate;
pub mod preflight;

/// One element instance.
#[derive(Debug)]
pub struct Node {
    /// Unique name: `name=` or factory name plus a counter (`filesrc0`).
    pub name: String,
    /// Whether the name was given with `name=`.
    pub named: bool,
    /// The factory.
    pub factory: &'static Factory,
    /// Validated properties.
    pub props: Props,
    /// The properties as written (`key`, `value`), for a worker process to rebuild them.
    pub written: Vec<(String, String)>,
    /// Where it runs: `exec=` as written, until the planner (`exec::planner::place`) resolves `auto`.
    pub exec: registry::Exec,
    /// How far its code is trusted: the factory's hint, or `trust=`.
    pub trust: Trust,
    /// How quickly it must answer: the factory's hint, or `latency=`.
    pub latency: Latency,
    /// Why the planner moved it out of its neighbour's thread, when it did (for `-v`).
    pub planned: Option<&'static str>,
    /// What validation decided for it, for `-v` (`chose flacparse ! flacdec` for a decodebin).
    pub note: Option<String>,
    /// The caps of each of its src pads, for an element whose pads carry different streams
    /// (a demuxer's `video_0` and `audio_0`), found when the description is validated.
    pub pad_caps: Vec<(String, Caps)>,
    /// Where the element was written.
    pub span: Range<usize>,
}

/// Parses the value of a placement property (`exec=`, `trust=`, `latency=`).
fn placement<T>(
    shown: &str,
    p: &ast::Property,
    not: &str,
    parse: fn(&str) -> Option<T>,
    names: &[&str],
) -> Result<T, Diagnostic> {
    parse(&p.value.value).ok_or_else(|| {
        Diagnostic::new(
            format!("{shown}: `{}={}` {not}", p.key.value, p.value.value),
            p.value.span.clone(),
        )
        .with_help(format!(
            "{} takes one of: {}",
            p.key.value,
            names.join(", ")
        ))
    })
}

/// One link between pads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Upstream pad (`src`, `src_0`).
    pub src_pad: String,
    /// Downstream pad (`sink`, `sink_1`).
    pub sink_pad: String,
    /// Where the link was written: its `!`, for a caret under a link that cannot agree.
    pub span: Range<usize>,
    /// The caps negotiated for the stream on this link: fixed, or ANY for bytes.
    pub caps: Caps,
}

/// A validated pipeline graph.
#[derive(Debug)]
pub struct Graph {
    /// Nodes are elements, edges are links; acyclic by construction.
    pub dag: Dag<Node, Link, u32>,
}

impl Graph {
    /// Parses and validates a description.
    pub fn from_description(text: &str) -> Result<Graph, Diagnostic> {
        let ast = crate::parse::parse(text)?;
        Builder {
            text,
            ..Builder::default()
        }
        .build(&ast)
    }

    /// Node indices in topological order (sources first).
    pub fn topo_order(&self) -> Vec<NodeIndex<u32>> {
        daggy::petgraph::algo::toposort(self.dag.graph(), None)
            .expect("the graph is a DAG: daggy refused every cycle")
    }

    /// Downstream links of `n`: (link, child), in pad order.
    pub fn children(&self, n: NodeIndex<u32>) -> Vec<(&Link, NodeIndex<u32>)> {
        let mut out: Vec<_> = self
            .dag
            .children(n)
            .iter(&self.dag)
            .map(|(e, c)| (&self.dag[e], c))
            .collect();
        out.sort_by_key(|(l, _)| pad_order(&l.src_pad));
        out
    }

    /// Number of upstream links of `n`.
    pub fn parent_count(&self, n: NodeIndex<u32>) -> usize {
        self.dag.parents(n).iter(&self.dag).count()
    }

    /// Whether a segment starts at `n`: sources, thread boundaries (queue), fan-ins (funnel) and
    /// elements of another domain than the fused threads (async).
    pub fn starts_segment(&self, n: NodeIndex<u32>) -> bool {
        self.dag[n].factory.starts_segment() || crate::exec::isolated_splits(&self.dag[n])
    }

    /// The domain `n` runs in.
    pub fn domain(&self, n: NodeIndex<u32>) -> Domain {
        self.dag[n].factory.domain()
    }

    /// The fused threads in start order, and the thread of every node (by node index).
    ///
    /// A thread starts at a source, a queue, a funnel, or at the output of an async element
    /// (its root is then the async element, whose buffers reach the thread through a bounded
    /// channel) unless that output goes straight into another async element. Everything else
    /// runs in its single upstream's thread. Async elements are
    /// numbered `threads.len()`: the one thread of the pipeline's tokio runtime.
    pub fn segments(&self) -> (Vec<NodeIndex<u32>>, Vec<usize>) {
        let mut roots = Vec::new();
        let mut of = vec![usize::MAX; self.dag.node_count()];
        // The thread that runs what `n` outputs: its own, or for an async element its bridge.
        let mut output_thread = vec![usize::MAX; self.dag.node_count()];
        let mut async_nodes = Vec::new();
        for n in self.topo_order() {
            let factory = self.dag[n].factory;
            if factory.domain() == Domain::Async {
                async_nodes.push(n);
                // Its output needs a thread unless it goes straight into another async element.
                let feeds_async = self
                    .dag
                    .children(n)
                    .iter(&self.dag)
                    .all(|(_, c)| self.domain(c) == Domain::Async);
                if factory.pads.src != PadPresence::None && !feeds_async {
                    output_thread[n.index()] = roots.len();
                    roots.push(n);
                }
            } else if self.starts_segment(n) {
                of[n.index()] = roots.len();
                output_thread[n.index()] = roots.len();
                roots.push(n);
            } else if let Some((_, parent)) = self.dag.parents(n).iter(&self.dag).next() {
                of[n.index()] = output_thread[parent.index()];
                output_thread[n.index()] = of[n.index()];
            }
        }
        for n in async_nodes {
            of[n.index()] = roots.len();
        }
        (roots, of)
    }

    /// The first element that writes to stdout: `fdsink` on fd 1, `filesink` on
    /// `/dev/stdout` (or `/dev/fd/1`, `/proc/self/fd/1`), or an element with `dump=true`.
    /// Stdout then carries the pipeline's data, so nothing else may be written there.
    pub fn stdout_writer(&self) -> Option<&Node> {
        self.dag.graph().node_weights().find(|node| {
            let props = &node.props;
            (node.factory.name == "fdsink" && props.int("fd").is_ok_and(|fd| fd == 1))
                || props.bool("dump").unwrap_or(false)
                || (node.factory.name == "filesink"
                    && props.string("location").is_ok_and(|l| {
                        matches!(l, Some("/dev/stdout" | "/dev/fd/1" | "/proc/self/fd/1"))
                    }))
        })
    }

    /// Whether any element runs in the async domain (then the run creates a tokio runtime).
    pub fn has_async(&self) -> bool {
        self.dag
            .graph()
            .node_indices()
            .any(|n| self.domain(n) == Domain::Async)
    }
}

/// `src_10` sorts after `src_2`.
fn pad_order(pad: &str) -> (usize, String) {
    let n = pad
        .rsplit('_')
        .next()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0);
    (n, pad.to_owned())
}

/// An endpoint of a link in a chain: a node and maybe an explicit pad.
#[derive(Clone)]
struct End {
    node: NodeIndex<u32>,
    pad: Option<(String, Range<usize>)>,
    span: Range<usize>,
}

/// What one chain item resolves to: where links come in and where they go out.
struct Resolved {
    input: Option<End>,
    output: Option<End>,
}

#[derive(Default)]
struct Builder<'t> {
    /// The description, for hints that look at neighbouring words.
    text: &'t str,
    /// The factory of the element added last, for "`x` is a property of it" hints.
    last_factory: Option<&'static Factory>,
    dag: Dag<Node, Link, u32>,
    names: HashMap<String, NodeIndex<u32>>,
    counters: HashMap<&'static str, usize>,
    /// Pads already linked, per node.
    used: HashMap<(NodeIndex<u32>, String), Range<usize>>,
    /// Next request pad number, per node and direction.
    next_request: HashMap<(NodeIndex<u32>, bool), usize>,
}

impl Builder<'_> {
    fn build(mut self, ast: &ast::Description) -> Result<Graph, Diagnostic> {
        if ast.chains.is_empty() {
            return Err(Diagnostic::new("the pipeline description is empty", 0..0)
                .with_help("try `parallax-launch fakesrc num-buffers=10 ! fakesink`"));
        }
        // Pass 1: every element, so that references may point forward.
        let mut resolved = Vec::new();
        for chain in &ast.chains {
            resolved.push(self.add_chain_nodes(chain)?);
        }
        // Pass 2: links, chain by chain, in order.
        for (chain, items) in ast.chains.iter().zip(resolved) {
            self.link_chain(chain, items)?;
        }
        self.check_unlinked()?;
        let mut graph = Graph { dag: self.dag };
        head::lend_to_typefinders(&mut graph);
        let negotiated =
            autoplug::expand(&mut graph).and_then(|()| negotiate::negotiate(&mut graph));
        head::release(&graph);
        negotiated?;
        Ok(graph)
    }

    /// Creates the nodes of a chain's elements; references stay unresolved (`None`).
    fn add_chain_nodes(&mut self, chain: &Chain) -> Result<Vec<Option<Resolved>>, Diagnostic> {
        let mut out = Vec::with_capacity(chain.items.len());
        for (n, item) in chain.items.iter().enumerate() {
            let r = match item {
                Item::Element(e) => {
                    // A word that starts a chain right after an element may be a property
                    // of it written without `=`; after a `!` it is meant as an element.
                    let previous = if n == 0 { self.last_factory } else { None };
                    let node = self.add_element(e, previous)?;
                    Some(self.whole(node, e.span.clone()))
                }
                Item::Caps(c) => {
                    let node = self.add_caps(c)?;
                    Some(self.whole(node, c.span.clone()))
                }
                Item::Uri(u) => {
                    let node = self.add_uri(u, n == 0)?;
                    Some(self.whole(node, u.span.clone()))
                }
                Item::Bin(b) => Some(self.add_bin(b)?),
                Item::Ref(_) => None,
            };
            out.push(r);
        }
        Ok(out)
    }

    fn whole(&self, node: NodeIndex<u32>, span: Range<usize>) -> Resolved {
        let end = End {
            node,
            pad: None,
            span,
        };
        Resolved {
            input: Some(end.clone()),
            output: Some(end),
        }
    }

    /// A bin links as its first element (in) and its last element (out).
    fn add_bin(&mut self, bin: &ast::Bin) -> Result<Resolved, Diagnostic> {
        for p in &bin.props {
            if p.key.value != "name" {
                return Err(Diagnostic::new(
                    format!("a bin has no property `{}`", p.key.value),
                    p.key.span.clone(),
                )
                .with_help("bins group elements; only `name=` is accepted"));
            }
        }
        if let Some(f) = &bin.factory {
            if f.value != "bin" && f.value != "pipeline" {
                return Err(Diagnostic::new(
                    format!("`{}` is not a bin element", f.value),
                    f.span.clone(),
                )
                .with_help("write `bin.( ... )` or `( ... )`"));
            }
        }
        if bin.chains.is_empty() {
            return Err(Diagnostic::new("the bin is empty", bin.span.clone()));
        }
        let mut first = None;
        let mut last = None;
        let mut inner = Vec::new();
        for chain in &bin.chains {
            inner.push(self.add_chain_nodes(chain)?);
        }
        for (chain, items) in bin.chains.iter().zip(inner) {
            let (head, tail) = self.link_chain(chain, items)?;
            first.get_or_insert(head);
            last = Some(tail);
        }
        let with_span = |e: Option<End>| {
            e.map(|mut e| {
                e.span = bin.span.clone();
                e
            })
        };
        Ok(Resolved {
            input: with_span(first.flatten()),
            output: with_span(last.flatten()),
        })
    }

    fn add_node(
        &mut self,
        factory: &'static Factory,
        props_in: &[ast::Property],
        span: Range<usize>,
    ) -> Result<NodeIndex<u32>, Diagnostic> {
        let explicit = props_in.iter().rev().find(|p| p.key.value == "name");
        let (name, named) = match explicit {
            Some(p) => (p.value.value.clone(), true),
            None => {
                let counter = self.counters.entry(factory.name).or_default();
                let name = format!("{}{}", factory.name, counter);
                *counter += 1;
                (name, false)
            }
        };
        if let Some(&other) = self.names.get(&name) {
            let span = explicit.map_or(span.clone(), |p| p.value.span.clone());
            return Err(
                Diagnostic::new(format!("two elements are named `{name}`"), span).with_help(
                    format!(
                        "the other one is written at byte {}",
                        self.dag[other].span.start
                    ),
                ),
            );
        }
        let shown = if named {
            name.clone()
        } else {
            factory.name.to_owned()
        };
        let mut props = Props::defaults(&shown, factory.props).with_instance(&name);
        let mut written = Vec::new();
        let mut exec = registry::Exec::Auto;
        let mut trust = factory.hints.trust;
        let mut latency = factory.hints.latency;
        for p in props_in {
            // Placement properties every element takes: where to run, and how far to trust it
            // and how quickly it must answer (hints the planner reads, like the factory's own).
            match p.key.value.as_str() {
                "name" => continue,
                "exec" => {
                    exec = placement(&shown, p, "is not a domain", Exec::parse, Exec::NAMES)?;
                    // Refused here, so that --validate says what running would.
                    if let Some(why) = factory.refusal(exec) {
                        return Err(Diagnostic::new(
                            format!("{shown}: {why}"),
                            p.value.span.clone(),
                        )
                        .with_help(format!(
                            "`parallax-inspect {}` lists the exec= values it takes",
                            factory.name
                        )));
                    }
                    continue;
                }
                "trust" => {
                    trust = placement(
                        &shown,
                        p,
                        "is not a trust level",
                        Trust::parse,
                        Trust::NAMES,
                    )?;
                    continue;
                }
                "latency" => {
                    latency = placement(
                        &shown,
                        p,
                        "is not a latency class",
                        Latency::parse,
                        Latency::NAMES,
                    )?;
                    continue;
                }
                _ => {}
            }
            let key = &p.key.value;
            if key.contains("::") {
                return Err(Diagnostic::new(
                    format!(
                        "{shown}: `{key}` sets a child property, but {} has no children",
                        factory.name
                    ),
                    p.key.span.clone(),
                ));
            }
            let Some(spec) = factory.prop(key) else {
                let mut d =
                    Diagnostic::new(format!("{shown}: no property `{key}`"), p.key.span.clone());
                let names = registry::suggest(key, factory.props.iter().map(|s| s.name));
                d = match names.first() {
                    Some(best) => d.with_help(format!(
                        "did you mean `{best}`? see `parallax-inspect {}`",
                        factory.name
                    )),
                    None => d.with_help(format!(
                        "`parallax-inspect {}` lists its properties",
                        factory.name
                    )),
                };
                return Err(d);
            };
            if spec.effect == Effect::ReadOnly {
                return Err(Diagnostic::new(
                    format!("{shown}: property `{key}` is read-only"),
                    p.key.span.clone(),
                ));
            }
            let value = spec.parse(&p.value.value).map_err(|e| {
                // A check that knows where in the value it failed gets its caret there.
                let span = match &e {
                    registry::ValueError::Invalid { at: Some(at), .. } => {
                        let raw = self.text.get(p.value.span.clone()).unwrap_or("");
                        let (from, to) = crate::parse::value_char_span(raw, *at);
                        p.value.span.start + from..p.value.span.start + to
                    }
                    _ => p.value.span.clone(),
                };
                Diagnostic::new(format!("{shown}: property `{key}`: {e}"), span)
            })?;
            props.set(key, value);
            written.push((key.clone(), p.value.value.clone()));
        }
        if let Some(missing) = factory
            .props
            .iter()
            .find(|s| s.required && !props.is_set(s.name))
        {
            let next_word = self.text.get(span.end..).unwrap_or("").trim_start();
            let help = if next_word.starts_with(missing.name) {
                format!("write `{}=VALUE`", missing.name)
            } else {
                format!("{}: {}", missing.name, missing.doc)
            };
            return Err(Diagnostic::new(
                format!("{shown}: property `{}` must be set", missing.name),
                span,
            )
            .with_help(help));
        }
        self.last_factory = Some(factory);
        let node = self.dag.add_node(Node {
            name: name.clone(),
            named,
            factory,
            props,
            written,
            exec,
            trust,
            latency,
            planned: None,
            note: None,
            pad_caps: Vec::new(),
            span,
        });
        self.names.insert(name, node);
        Ok(node)
    }

    fn add_element(
        &mut self,
        e: &ast::Element,
        previous: Option<&'static Factory>,
    ) -> Result<NodeIndex<u32>, Diagnostic> {
        let wanted = &e.factory.value;
        let Some(factory) = registry::find(wanted) else {
            let mut d = Diagnostic::new(format!("no element `{wanted}`"), e.factory.span.clone());
            if let Some(prev) = previous.filter(|p| p.prop(wanted).is_some()) {
                d = d.with_help(format!(
                    "`{wanted}` is a property of {}: write `{wanted}=VALUE`",
                    prev.name
                ));
            } else {
                d = d.with_help(registry::unknown_element_help(wanted));
            }
            return Err(d);
        };
        self.add_node(factory, &e.props, e.span.clone())
    }

    fn add_caps(&mut self, caps: &ast::Spanned<String>) -> Result<NodeIndex<u32>, Diagnostic> {
        let factory = registry::find("capsfilter").expect("capsfilter is built in");
        if let Err(e) = Caps::parse(&caps.value) {
            // The value lost its spaces and quotes; the text as written gives the column.
            let raw = self.text.get(caps.span.clone()).unwrap_or("");
            let (skip, raw) = match raw.chars().next() {
                Some(q @ ('"' | '\'')) => (1, raw.trim_start_matches(q).trim_end_matches(q)),
                _ => (0, raw),
            };
            let at = match Caps::parse(raw) {
                Err(raw_e) => caps.span.start + skip + raw_e.at,
                Ok(_) => caps.span.start,
            };
            let end = (at + 1).min(caps.span.end.max(at));
            return Err(Diagnostic::new(format!("caps: {e}"), at..end)
                .with_help("caps are `type/subtype,field=value,...`: `video/x-raw,width=320`"));
        }
        let prop = ast::Property {
            key: ast::Spanned {
                value: "caps".into(),
                span: caps.span.clone(),
            },
            value: caps.clone(),
        };
        self.add_node(factory, &[prop], caps.span.clone())
    }

    fn add_uri(
        &mut self,
        uri: &ast::Spanned<String>,
        first_in_chain: bool,
    ) -> Result<NodeIndex<u32>, Diagnostic> {
        let (scheme, rest) = uri.value.split_once("://").unwrap_or(("", ""));
        if !scheme.eq_ignore_ascii_case("file") {
            return Err(Diagnostic::new(
                format!("no element handles `{scheme}://` URIs"),
                uri.span.clone(),
            )
            .with_help("file:// URIs are supported"));
        }
        let path = rest.strip_prefix("localhost").unwrap_or(rest);
        if !path.starts_with('/') {
            return Err(Diagnostic::new(
                "a file:// URI needs an absolute path (file:///tmp/x)",
                uri.span.clone(),
            ));
        }
        let factory = registry::find(if first_in_chain {
            "filesrc"
        } else {
            "filesink"
        })
        .expect("filesrc and filesink are built in");
        let prop = ast::Property {
            key: ast::Spanned {
                value: "location".into(),
                span: uri.span.clone(),
            },
            value: ast::Spanned {
                value: percent_decode(path),
                span: uri.span.clone(),
            },
        };
        self.add_node(factory, &[prop], uri.span.clone())
    }

    fn resolve_ref(&self, r: &ast::Reference) -> Result<End, Diagnostic> {
        let Some(&node) = self.names.get(&r.name.value) else {
            let mut d = Diagnostic::new(
                format!("no element named `{}`", r.name.value),
                r.name.span.clone(),
            );
            let names: Vec<&str> = self.names.keys().map(String::as_str).collect();
            d = match registry::suggest(&r.name.value, names).first() {
                Some(best) => d.with_help(format!("did you mean `{best}.`?")),
                None => d.with_help(format!("name an element with `name={}`", r.name.value)),
            };
            return Err(d);
        };
        Ok(End {
            node,
            pad: r.pad.as_ref().map(|p| (p.value.clone(), p.span.clone())),
            span: r.span.clone(),
        })
    }

    /// Links the items of a chain in order; returns its first input and last output.
    fn link_chain(
        &mut self,
        chain: &Chain,
        items: Vec<Option<Resolved>>,
    ) -> Result<(Option<End>, Option<End>), Diagnostic> {
        let mut ends = Vec::with_capacity(items.len());
        for (item, r) in chain.items.iter().zip(items) {
            ends.push(match (item, r) {
                (_, Some(r)) => r,
                (Item::Ref(reference), None) => {
                    let e = self.resolve_ref(reference)?;
                    Resolved {
                        input: Some(e.clone()),
                        output: Some(e),
                    }
                }
                (_, None) => unreachable!("only references are resolved late"),
            });
        }
        for pair in ends.windows(2) {
            let (Some(from), Some(to)) = (&pair[0].output, &pair[1].input) else {
                continue;
            };
            self.link(from, to)?;
        }
        let head = ends.first().and_then(|r| r.input.clone());
        let tail = ends.last().and_then(|r| r.output.clone());
        Ok((head, tail))
    }

    fn pick_pad(&mut self, end: &End, src: bool) -> Result<String, Diagnostic> {
        let node = &self.dag[end.node];
        let template = if src {
            node.factory.pads.src
        } else {
            node.factory.pads.sink
        };
        let dir = if src { "src" } else { "sink" };
        let (pad, span) = match (&end.pad, template) {
            (_, PadPresence::None) => {
                let role = if src { "link from it" } else { "link into it" };
                return Err(Diagnostic::new(
                    format!(
                        "`{}` ({}) has no {dir} pad, so nothing can {role}",
                        node.name, node.factory.name
                    ),
                    end.span.clone(),
                ));
            }
            (Some((pad, span)), t) => {
                if !t.matches(pad) {
                    return Err(Diagnostic::new(
                        format!("`{}` has no {dir} pad `{pad}`", node.name),
                        span.clone(),
                    )
                    .with_help(format!(
                        "its {dir} pads are named `{}`",
                        t.template().unwrap_or("")
                    )));
                }
                (pad.clone(), span.clone())
            }
            (None, PadPresence::Always(name)) => (name.to_owned(), end.span.clone()),
            // Several templates (a demuxer's `video_%u audio_%u`): which pad the link takes is
            // decided once the file's streams are known (see `autoplug`).
            (None, PadPresence::Request(t)) if t.contains(' ') => {
                let counter = self.next_request.entry((end.node, src)).or_default();
                let name = format!("?_{counter}");
                *counter += 1;
                (name, end.span.clone())
            }
            (None, PadPresence::Request(t)) => {
                let prefix = t.trim_end_matches("%u");
                let counter = self.next_request.entry((end.node, src)).or_default();
                let name = loop {
                    let candidate = format!("{prefix}{counter}");
                    *counter += 1;
                    if !self.used.contains_key(&(end.node, candidate.clone())) {
                        break candidate;
                    }
                };
                (name, end.span.clone())
            }
        };
        if let Some(first) = self.used.get(&(end.node, pad.clone())) {
            let node = &self.dag[end.node];
            return Err(Diagnostic::new(
                format!("pad `{}.{pad}` is linked twice", node.name),
                span,
            )
            .with_help(format!(
                "it is already linked at byte {}; use a tee to send one stream to several places",
                first.start
            )));
        }
        self.used.insert((end.node, pad.clone()), span);
        Ok(pad)
    }

    fn link(&mut self, from: &End, to: &End) -> Result<(), Diagnostic> {
        let src_pad = self.pick_pad(from, true)?;
        let sink_pad = self.pick_pad(to, false)?;
        if from.node == to.node {
            return Err(Diagnostic::new(
                format!("`{}` cannot be linked to itself", self.dag[from.node].name),
                to.span.clone(),
            ));
        }
        // The caret of a link that cannot agree goes under its `!`.
        let bang = (from.span.end <= to.span.start)
            .then(|| self.text.get(from.span.end..to.span.start))
            .flatten()
            .and_then(|between| between.find('!'))
            .map(|at| from.span.end + at);
        let span = bang.map_or(to.span.clone(), |at| at..at + 1);
        let link = Link {
            src_pad,
            sink_pad,
            span,
            caps: Caps::Any,
        };
        self.dag.add_edge(from.node, to.node, link).map_err(|_| {
            Diagnostic::new(
                format!(
                    "linking `{}` to `{}` would make a cycle",
                    self.dag[from.node].name, self.dag[to.node].name
                ),
                to.span.clone(),
            )
            .with_help("a pipeline is a DAG: data cannot flow back upstream")
        })?;
        Ok(())
    }

    fn check_unlinked(&self) -> Result<(), Diagnostic> {
        for n in self.dag.graph().node_indices() {
            let node = &self.dag[n];
            let outs = self.dag.children(n).iter(&self.dag).count();
            let ins = self.dag.parents(n).iter(&self.dag).count();
            match node.factory.pads.src {
                PadPresence::Always(p) if outs == 0 => {
                    return Err(Diagnostic::new(
                        format!("the {p} pad of `{}` is not linked", node.name),
                        node.span.clone(),
                    )
                    .with_help(format!("link it, e.g. `{} ! fakesink`", node.name)));
                }
                PadPresence::Request(_) if outs == 0 => {
                    return Err(Diagnostic::new(
                        format!("`{}` has no src pad linked", node.name),
                        node.span.clone(),
                    )
                    .with_help(format!("link a branch with `{}. ! fakesink`", node.name)));
                }
                _ => {}
            }
            match node.factory.pads.sink {
                PadPresence::Always(p) if ins == 0 => {
                    return Err(Diagnostic::new(
                        format!("the {p} pad of `{}` is not linked", node.name),
                        node.span.clone(),
                    )
                    .with_help(format!(
                        "give it an input, e.g. `fakesrc ! {}`",
                        node.factory.name
                    )));
                }
                PadPresence::Request(_) if ins == 0 => {
                    return Err(Diagnostic::new(
                        format!("`{}` has no sink pad linked", node.name),
                        node.span.clone(),
                    )
                    .with_help(format!("link an input with `fakesrc ! {}.`", node.name)));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> Diagnostic {
        Graph::from_description(text).unwrap_err()
    }

    #[test]
    fn names_links_and_pads() {
        let g = Graph::from_description("fakesrc ! tee name=t ! fakesink t. ! fakesink").unwrap();
        assert_eq!(g.dag.node_count(), 4);
        let names: Vec<_> = g
            .topo_order()
            .iter()
            .map(|&n| g.dag[n].name.clone())
            .collect();
        assert_eq!(names[0], "fakesrc0");
        let t = g
            .dag
            .graph()
            .node_indices()
            .find(|&n| g.dag[n].name == "t")
            .unwrap();
        let pads: Vec<_> = g
            .children(t)
            .iter()
            .map(|(l, _)| l.src_pad.clone())
            .collect();
        assert_eq!(pads, ["src_0", "src_1"]);
    }

    #[test]
    fn funnel_sink_pads_and_forward_references() {
        let g = Graph::from_description("fakesrc ! f. fakesrc ! f.sink_5 funnel name=f ! fakesink")
            .unwrap();
        let f = g
            .dag
            .graph()
            .node_indices()
            .find(|&n| g.dag[n].name == "f")
            .unwrap();
        let mut pads: Vec<_> = g
            .dag
            .parents(f)
            .iter(&g.dag)
            .map(|(e, _)| g.dag[e].sink_pad.clone())
            .collect();
        pads.sort();
        assert_eq!(pads, ["sink_0", "sink_5"]);
    }

    #[test]
    fn unknown_element_suggests() {
        let d = err("fakesrc ! filesnk location=x");
        assert_eq!(d.message, "no element `filesnk`");
        assert_eq!(d.help.as_deref(), Some("did you mean `filesink`?"));
        assert_eq!(d.span, 10..17);
        // Spaces around `=` are gst's syntax too (issue 20).
        let g = Graph::from_description("filesrc location = a ! fakesink").unwrap();
        let src = g.topo_order()[0];
        assert_eq!(g.dag[src].props.string("location").unwrap(), Some("a"));
    }

    #[test]
    fn unknown_and_bad_properties() {
        let d = err("filesrc locaton=a ! fakesink");
        assert_eq!(d.message, "filesrc: no property `locaton`");
        assert!(d.help.unwrap().starts_with("did you mean `location`?"));
        let d = err("fakesrc ! valve drop=maybe ! fakesink");
        assert_eq!(
            d.message,
            "valve: property `drop`: expected true or false, got `maybe`"
        );
        assert_eq!(d.span, 21..26);
        let d = err("fakesrc ! valve name=v drop=maybe ! fakesink");
        assert!(d.message.starts_with("v: property `drop`"));
    }

    #[test]
    fn structural_errors() {
        assert_eq!(err("fakesrc ! x. ").message, "no element named `x`");
        assert_eq!(
            err("fakesrc").message,
            "the src pad of `fakesrc0` is not linked"
        );
        assert_eq!(
            err("fakesink").message,
            "the sink pad of `fakesink0` is not linked"
        );
        assert_eq!(
            err("fakesrc name=a ! fakesink a. ! fakesink").message,
            "pad `a.src` is linked twice"
        );
        assert!(err("fakesrc ! identity name=i ! tee name=t ! i.")
            .message
            .contains("linked twice"));
        assert!(err("fakesrc ! funnel name=f ! identity ! f.")
            .message
            .contains("cycle"));
        assert!(err("fakesink ! fakesrc").message.contains("has no src pad"));
        assert!(err("fakesrc ! tee name=t t.foo ! fakesink")
            .message
            .contains("no src pad `foo`"));
        assert_eq!(
            err("fakesrc name=a ! fakesink name=a").message,
            "two elements are named `a`"
        );
        assert_eq!(err("").message, "the pipeline description is empty");
        assert!(err("fakesrc ! tee name=t")
            .message
            .contains("no src pad linked"));
    }

    #[test]
    fn caps_uris_and_bins_become_nodes() {
        let g = Graph::from_description(
            "file:///tmp/in%20x ! video/x-raw,width=3 ! ( identity ! identity ) ! file:///tmp/out",
        )
        .unwrap();
        let order: Vec<_> = g
            .topo_order()
            .iter()
            .map(|&n| g.dag[n].factory.name)
            .collect();
        assert_eq!(
            order,
            ["filesrc", "capsfilter", "identity", "identity", "filesink"]
        );
        let src = g.topo_order()[0];
        assert_eq!(
            g.dag[src].props.string("location").unwrap(),
            Some("/tmp/in x")
        );
        assert!(err("http://x ! fakesink").message.contains("http://"));
    }

    #[test]
    fn ten_thousand_element_chain_builds() {
        let long = format!("fakesrc{} ! fakesink", " ! identity".repeat(10_000));
        let g = Graph::from_description(&long).unwrap();
        assert_eq!(g.dag.node_count(), 10_002);
    }
}
