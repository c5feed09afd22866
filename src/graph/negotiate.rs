//! Caps negotiation, run once when the description is validated: every link gets the one
//! format (or ANY, for byte streams) its stream carries, or the description is refused with a
//! caret under the link that cannot agree, naming both sides' caps. gst finds the same failure
//! only at run time, as `not-negotiated`.
//!
//! Two walks over the DAG, as gst's caps queries and caps events do:
//! 1. Upstream (sinks first): what each element accepts, given what everything below it
//!    accepts (its sink template, and its [`CapsRule`] run backwards). A tee's branches must
//!    all accept.
//! 2. Downstream (sources first): what each element offers, given the caps that came in (its
//!    src template, and its rule run forwards), narrowed by what downstream accepts when they
//!    meet, then fixed to one format (the element's fixation, else gst's). Each link then checks
//!    that the element below takes it; fan-ins check that every input carries the same caps.
//!
//! Untyped bytes (ANY) stay ANY: only an element whose sink template is ANY or names an encoded
//! or container type (a parser: `wavparse` takes `audio/x-wav`) takes them, so
//! `filesrc ! audioconvert` is refused while `filesrc ! audio/x-raw,... ! audioconvert` and
//! `filesrc ! wavparse` are not.

use daggy::petgraph::visit::EdgeRef;
use daggy::NodeIndex;

use super::Graph;
use crate::caps::Caps;
use crate::parse::Diagnostic;
use crate::registry::{CapsRule, PadPresence};

/// What one element takes and gives, as far as its templates and rule say.
struct Side {
    sink_t: Caps,
    src_t: Caps,
    /// What it takes, whatever is below it.
    local: Caps,
    /// What it takes, given what is below it.
    accept: Caps,
    /// What the elements below it take, with its src template.
    down: Caps,
}

/// Negotiates every link of `graph`, storing the caps on the links and on each node's props.
pub(crate) fn negotiate(graph: &mut Graph) -> Result<(), Diagnostic> {
    let order = graph.topo_order();
    let count = graph.dag.node_count();
    let mut sides: Vec<Option<Side>> = (0..count).map(|_| None).collect();
    for &n in order.iter().rev() {
        let node = &graph.dag[n];
        let pads = &node.factory.pads;
        let (sink_t, src_t) = (pads.sink_template(), pads.src_template());
        let mut down = src_t.clone();
        for (_, c) in graph.children(n) {
            let below = &sides[c.index()]
                .as_ref()
                .expect("children come first")
                .accept;
            down = down.intersect(below);
        }
        let accept = sink_t.intersect(&backward(graph, n, &down));
        let local = sink_t.intersect(&backward(graph, n, &src_t));
        sides[n.index()] = Some(Side {
            sink_t,
            src_t,
            local,
            accept,
            down,
        });
    }
    let side = |n: NodeIndex<u32>| sides[n.index()].as_ref().expect("every node has a side");
    for &n in &order {
        let input = input_caps(graph, n)?;
        let s = side(n);
        let node = &graph.dag[n];
        let mut offer = forward(graph, n, &input);
        if node.factory.pads.src != PadPresence::None {
            offer = offer.intersect(&s.src_t);
        }
        let out = if node.factory.pads.src == PadPresence::None || offer.is_any() {
            Caps::Any
        } else {
            if offer.is_empty() {
                let link = graph
                    .dag
                    .graph()
                    .edges_directed(n, daggy::petgraph::Direction::Incoming)
                    .next();
                let span = link.map_or(node.span.clone(), |e| e.weight().span.clone());
                return Err(
                    Diagnostic::new(format!("`{}` cannot take {input}", node.name), span)
                        .with_help(format!(
                            "`parallax-inspect {}` shows the caps its pads take",
                            node.factory.name
                        )),
                );
            }
            let guided = offer.intersect(&s.down);
            fixate(graph, n, if guided.is_empty() { offer } else { guided })
        };
        let edges: Vec<_> = graph
            .dag
            .graph()
            .edges_directed(n, daggy::petgraph::Direction::Outgoing)
            .map(|e| (e.id(), e.target()))
            .collect();
        let all_out = out.clone();
        for (e, c) in edges {
            // A demuxer's pads each carry their own stream's caps.
            let pad = &graph.dag[e].src_pad;
            let out = graph.dag[n]
                .pad_caps
                .iter()
                .find(|(p, _)| p == pad)
                .map_or_else(|| all_out.clone(), |(_, c)| c.clone());
            let child = side(c);
            let up = &graph.dag[n];
            let below = &graph.dag[c];
            // Untyped bytes from a regular file: its head may say what they are.
            let sniffed =
                if out.is_any() && (!child.sink_t.is_any() || below.factory.name == "typefind") {
                    sniff_input(graph, c).filter(|found| found.is_subset(&child.local))
                } else {
                    None
                };
            if let Some(found) = sniffed {
                graph.dag[e].caps = found;
                continue;
            }
            let refused = if out.is_any() {
                !takes_bytes(&child.sink_t)
            } else {
                !out.is_subset(&child.local)
            };
            if refused {
                let takes = if out.is_any() {
                    &child.sink_t
                } else {
                    &child.local
                };
                let mut d = Diagnostic::new(
                    format!(
                        "`{}` and `{}` cannot agree on caps: {} gives {out}; {} takes {takes}",
                        up.name, below.name, up.name, below.name
                    ),
                    graph.dag[e].span.clone(),
                );
                d = d.with_help(if out.is_any() {
                    format!(
                        "{} gives untyped bytes: say what they are with caps (`! {} !`) or a \
                         parser between them",
                        up.name,
                        takes
                            .first()
                            .map_or("type/subtype".into(), |s| s.name.clone())
                    )
                } else {
                    format!(
                        "`parallax-inspect {}` shows the caps its pads take; a converter \
                         between them may help",
                        below.factory.name
                    )
                });
                return Err(d);
            }
            graph.dag[e].caps = out.clone();
        }
        graph.dag[n].props.set_caps(input, out);
    }
    Ok(())
}

/// Whether a sink template takes untyped bytes: ANY, or a stream type that is not raw media
/// (`audio/x-wav`): a parser checks its bytes itself, as gst's typefinding does.
fn takes_bytes(sink: &Caps) -> bool {
    sink.is_any()
        || sink
            .structures()
            .iter()
            .any(|s| !s.name.ends_with("/x-raw"))
}

/// The caps on `n`'s inputs: ANY for a source; every input must carry the same.
fn input_caps(graph: &Graph, n: NodeIndex<u32>) -> Result<Caps, Diagnostic> {
    let mut links: Vec<_> = graph
        .dag
        .graph()
        .edges_directed(n, daggy::petgraph::Direction::Incoming)
        .map(|e| e.weight())
        .collect();
    links.sort_by_key(|l| super::pad_order(&l.sink_pad));
    let Some(first) = links.first() else {
        return Ok(Caps::Any);
    };
    // One input at a time: concat and input-selector may switch between formats. Downstream
    // negotiates for the first input's; a switch announces the next input's caps in the
    // stream, and every element below re-reads its format or ends the run, naming both caps.
    if matches!(graph.dag[n].factory.name, "concat" | "input-selector") {
        return Ok(first.caps.clone());
    }
    for other in &links[1..] {
        if !other.caps.is_equivalent(&first.caps) {
            let name = &graph.dag[n].name;
            return Err(Diagnostic::new(
                format!(
                    "`{name}` gets {} on {} but {} on {}: its inputs must carry the same caps",
                    first.caps, first.sink_pad, other.caps, other.sink_pad
                ),
                other.span.clone(),
            )
            .with_help("convert the inputs to one format before they meet"));
        }
    }
    Ok(first.caps.clone())
}

/// The caps of the stream that feeds `n` through elements that pass bytes unchanged (queue,
/// identity), found from its first bytes; `None` when validation cannot read it or its bytes
/// are of no known type. This is how `filesrc location=a.png ! pngdec` learns the image's size
/// before anything runs: a regular file is read; any other stream (a pipe, a device, a URL)
/// only when its source lent its head to a typefinder, which the run then replays (see
/// [`super::head`]); never a socket source or a generator.
fn sniff_input(graph: &Graph, n: NodeIndex<u32>) -> Option<Caps> {
    let source = byte_source(graph, n)?;
    let source = &graph.dag[source];
    match super::head::input(source)?.typefind() {
        Ok((_, caps)) => caps,
        // The run reads the stream again and reports what fails then.
        Err(e) => {
            tracing::debug!(source = %source.name, error = %e, "Could not read the stream's head to type it");
            None
        }
    }
}

/// The source that feeds `n` through elements that pass bytes unchanged (queue, identity),
/// when there is exactly one.
pub(super) fn byte_source(graph: &Graph, n: NodeIndex<u32>) -> Option<NodeIndex<u32>> {
    let mut at = n;
    loop {
        let mut parents = graph
            .dag
            .graph()
            .neighbors_directed(at, daggy::petgraph::Direction::Incoming);
        let parent = parents.next()?;
        if parents.next().is_some() {
            return None;
        }
        let node = &graph.dag[parent];
        if node.factory.pads.sink == PadPresence::None {
            return Some(parent);
        }
        if !matches!(node.factory.pads.rule, CapsRule::Passthrough) {
            return None;
        }
        at = parent;
    }
}

fn forward(graph: &Graph, n: NodeIndex<u32>, input: &Caps) -> Caps {
    let node = &graph.dag[n];
    match node.factory.pads.rule {
        CapsRule::Passthrough => input.clone(),
        CapsRule::Fixed => node.factory.pads.src_template(),
        CapsRule::Derived(f) => (f.forward)(input, &node.props),
    }
}

fn backward(graph: &Graph, n: NodeIndex<u32>, down: &Caps) -> Caps {
    let node = &graph.dag[n];
    match node.factory.pads.rule {
        CapsRule::Passthrough => down.clone(),
        CapsRule::Fixed => Caps::Any,
        CapsRule::Derived(f) => (f.backward)(down, &node.props),
    }
}

fn fixate(graph: &Graph, n: NodeIndex<u32>, caps: Caps) -> Caps {
    let node = &graph.dag[n];
    match node.factory.pads.rule {
        CapsRule::Derived(f) => (f.fixate)(caps, &node.props),
        _ => caps.fixate(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Graph;

    fn caps_of_links(text: &str) -> Vec<String> {
        let g = Graph::from_description(text).unwrap();
        let mut out = Vec::new();
        for n in g.topo_order() {
            for (l, _) in g.children(n) {
                out.push(l.caps.to_string());
            }
        }
        out
    }

    #[test]
    fn byte_streams_stay_any_and_caps_become_fixed() {
        assert_eq!(
            caps_of_links("fakesrc ! identity ! fakesink"),
            ["ANY", "ANY"]
        );
        assert_eq!(
            caps_of_links("fakesrc ! video/x-raw,width=[16,64],format={I420,NV12} ! tee name=t ! fakesink t. ! queue ! fakesink"),
            [
                "ANY",
                "video/x-raw, width=(int)16, format=(string)I420",
                "video/x-raw, width=(int)16, format=(string)I420",
                "video/x-raw, width=(int)16, format=(string)I420",
                "video/x-raw, width=(int)16, format=(string)I420",
            ]
        );
    }

    #[test]
    fn downstream_caps_guide_fixation_upstream() {
        // The first filter allows a range; the second narrows it, and the first fixes to it.
        let links = caps_of_links(
            "fakesrc ! audio/x-raw,rate=[8000,48000] ! identity ! audio/x-raw,rate=16000 ! fakesink",
        );
        assert_eq!(links[1], "audio/x-raw, rate=(int)16000");
        assert_eq!(links[3], "audio/x-raw, rate=(int)16000");
    }

    #[test]
    fn a_link_that_cannot_agree_is_refused_under_its_bang() {
        let text = "fakesrc ! audio/x-raw,rate=8000 ! identity ! video/x-raw ! fakesink";
        let d = Graph::from_description(text).unwrap_err();
        assert_eq!(
            d.message,
            "`identity0` and `capsfilter1` cannot agree on caps: identity0 gives audio/x-raw, \
             rate=(int)8000; capsfilter1 takes video/x-raw"
        );
        assert_eq!(&text[d.span.clone()], "!");
        assert_eq!(d.span.start, 43);
        // A tee's branches must agree with each other too.
        let d = Graph::from_description(
            "fakesrc ! audio/x-raw ! tee name=t ! audio/x-raw,rate=1 ! fakesink t. ! audio/x-raw,rate=2 ! fakesink",
        )
        .unwrap_err();
        assert!(d.message.contains("cannot agree"), "{}", d.message);
    }

    #[test]
    fn fan_ins_need_one_format() {
        let d = Graph::from_description(
            "fakesrc ! a/b,x=1 ! funnel name=f ! fakesink fakesrc ! a/b,x=2 ! f.",
        )
        .unwrap_err();
        assert_eq!(
            d.message,
            "`f` gets a/b, x=(int)1 on sink_0 but a/b, x=(int)2 on sink_1: its inputs must \
             carry the same caps"
        );
        Graph::from_description(
            "fakesrc ! a/b,x=1 ! concat name=c ! fakesink fakesrc ! a/b,x=1 ! c.",
        )
        .unwrap();
    }

    #[test]
    fn caps_errors_point_at_the_character() {
        let text = "fakesrc ! video/x-raw, width=(int)abc ! fakesink";
        let d = Graph::from_description(text).unwrap_err();
        assert_eq!(d.message, "caps: `abc` is not an int");
        assert_eq!(d.span.start, text.find("abc").unwrap());
        let text = "fakesrc ! capsfilter caps=\"video/x-raw,width=[ 1, x ]\" ! fakesink";
        let d = Graph::from_description(text).unwrap_err();
        assert_eq!(
            d.message,
            "capsfilter: property `caps`: `x` is not an int like the range's start"
        );
        assert_eq!(&text[d.span.clone()], "x");
    }

    #[test]
    fn features_lists_and_quoted_caps_are_one_item() {
        let links = caps_of_links(
            "fakesrc ! video/x-raw(memory:SystemMemory),format={I420,NV12} ! 'video/x-raw, format=NV12' ! fakesink",
        );
        assert_eq!(links[1], "video/x-raw, format=(string)NV12");
    }
}
