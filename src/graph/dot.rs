//! Graphviz export (graphviz-rust): a node per element with its name, factory and the
//! properties set in the description; an edge per link labelled with its pads (and the caps
//! negotiated for it, unless it carries untyped bytes); a cluster per thread, and one for the async domain (the tokio
//! runtime's tasks). After a run, edges carry buffer and byte counts and nodes their busy time.

use graphviz_rust::dot_structures::{
    Attribute, Edge, EdgeTy, Graph as DotGraph, GraphAttributes, Id, Node, NodeId, Stmt, Subgraph,
    Vertex,
};
use graphviz_rust::printer::{DotPrinter, PrinterContext};

use super::Graph;

/// What a run measured for one element (inputs for sinks and filters, outputs for sources).
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeCounts {
    /// Buffers.
    pub buffers: u64,
    /// Bytes.
    pub bytes: u64,
    /// Nanoseconds inside the element.
    pub busy_ns: u64,
}

/// What a run measured on one link.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkCounts {
    /// Buffers that crossed it.
    pub buffers: u64,
    /// Bytes of those buffers.
    pub bytes: u64,
}

/// What a run measured: by node index, and by edge index.
#[derive(Debug, Clone, Default)]
pub struct RunCounts {
    /// Per element.
    pub nodes: Vec<NodeCounts>,
    /// Per link: a funnel's inputs each count their own buffers.
    pub links: Vec<LinkCounts>,
}

fn quoted(s: &str) -> Id {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    Id::Escaped(format!("\"{escaped}\""))
}

fn attr(key: &str, value: &str) -> Attribute {
    Attribute(Id::Plain(key.to_owned()), quoted(value))
}

/// The graph as DOT text; `counts` adds what a run measured.
pub fn to_dot(graph: &Graph, counts: Option<&RunCounts>) -> String {
    let dag = &graph.dag;
    let (roots, segment_of) = graph.segments();
    // The last cluster is the async domain, numbered after the fused threads.
    let mut clusters: Vec<Vec<Stmt>> = vec![Vec::new(); roots.len() + 1];
    for n in dag.graph().node_indices() {
        let node = &dag[n];
        let mut label = format!("{}\n{}", node.name, node.factory.name);
        if node.exec != crate::registry::Exec::Auto {
            label.push_str(&format!("\nexec={}", node.exec.as_str()));
        }
        for (spec, value) in node.props.explicit() {
            label.push_str(&format!(
                "\n{}={}",
                spec.name,
                value.to_string().trim_matches('"')
            ));
        }
        if let Some(c) = counts.and_then(|c| c.nodes.get(n.index())) {
            label.push_str(&format!("\nbusy {:.3} ms", c.busy_ns as f64 / 1e6));
        }
        let stmt = Stmt::Node(Node::new(
            NodeId(quoted(&node.name), None),
            vec![attr("label", &label)],
        ));
        let seg = segment_of[n.index()];
        if seg < clusters.len() {
            clusters[seg].push(stmt);
        }
    }
    let mut stmts = vec![
        Stmt::Attribute(Attribute(
            Id::Plain("rankdir".into()),
            Id::Plain("LR".into()),
        )),
        Stmt::GAttribute(GraphAttributes::Node(vec![
            attr("shape", "box"),
            attr("fontname", "monospace"),
        ])),
    ];
    for (i, mut members) in clusters.into_iter().enumerate() {
        let label = match roots.get(i) {
            Some(root) if graph.domain(*root) == crate::registry::Domain::Async => {
                format!("thread {i} (output of {})", dag[*root].name)
            }
            Some(root) if dag[*root].exec == crate::registry::Exec::Isolated => format!(
                "thread {i} (from {}: its worker process's output)",
                dag[*root].name
            ),
            Some(root) if dag[*root].exec == crate::registry::Exec::Async => format!(
                "thread {i} (from {}: its async task's output)",
                dag[*root].name
            ),
            Some(root) if dag[*root].exec == crate::registry::Exec::Rt => {
                format!("rt thread {i} (from {})", dag[*root].name)
            }
            Some(root) => format!("thread {i} (from {})", dag[*root].name),
            None if members.is_empty() => continue,
            None => "async domain (tokio runtime, thread px-async)".to_owned(),
        };
        members.insert(0, Stmt::Attribute(attr("label", &label)));
        stmts.push(Stmt::Subgraph(Subgraph {
            id: Id::Plain(format!("cluster_{i}")),
            stmts: members,
        }));
    }
    for e in dag.graph().edge_indices() {
        let (a, b) = dag.edge_endpoints(e).expect("edge exists");
        let link = &dag[e];
        let mut label = format!("{} -> {}", link.src_pad, link.sink_pad);
        if !link.caps.is_any() {
            label.push_str(&format!("\n{}", link.caps));
        }
        if let Some(c) = counts.and_then(|c| c.links.get(e.index())) {
            let buffers = crate::exec::counted(c.buffers, "buffer");
            let bytes = crate::exec::counted(c.bytes, "byte");
            label.push_str(&format!("\n{buffers}, {bytes}"));
        }
        stmts.push(Stmt::Edge(Edge {
            ty: EdgeTy::Pair(
                Vertex::N(NodeId(quoted(&dag[a].name), None)),
                Vertex::N(NodeId(quoted(&dag[b].name), None)),
            ),
            attributes: vec![attr("label", &label)],
        }));
    }
    let g = DotGraph::DiGraph {
        id: Id::Plain("pipeline".into()),
        strict: false,
        stmts,
    };
    g.print(&mut PrinterContext::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clusters(g: &DotGraph) -> Vec<(String, Vec<String>)> {
        let DotGraph::DiGraph { stmts, .. } = g else {
            panic!("not a digraph")
        };
        stmts
            .iter()
            .filter_map(|s| match s {
                Stmt::Subgraph(sg) => Some((
                    match &sg.id {
                        Id::Plain(p) => p.clone(),
                        other => format!("{other:?}"),
                    },
                    sg.stmts
                        .iter()
                        .filter_map(|s| match s {
                            Stmt::Node(n) => match &n.id.0 {
                                Id::Escaped(e) => Some(e.trim_matches('"').to_owned()),
                                _ => None,
                            },
                            _ => None,
                        })
                        .collect(),
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn dot_parses_back_with_a_cluster_per_thread() {
        let g = Graph::from_description(
            "fakesrc num-buffers=3 ! tee name=t ! queue ! fakesink t. ! video/x-raw,width=3 ! fakesink",
        )
        .unwrap();
        let text = to_dot(&g, None);
        let parsed = graphviz_rust::parse(&text).unwrap();
        let cl = clusters(&parsed);
        assert_eq!(cl.len(), 2, "{text}");
        assert_eq!(cl[0].1, ["fakesrc0", "t", "capsfilter0", "fakesink1"]);
        assert_eq!(cl[1].1, ["queue0", "fakesink0"]);
        assert!(text.contains("num-buffers=3"), "{text}");
        assert!(text.contains("video/x-raw,width=3"), "{text}");
        let DotGraph::DiGraph { stmts, .. } = &parsed else {
            panic!()
        };
        assert_eq!(
            stmts.iter().filter(|s| matches!(s, Stmt::Edge(_))).count(),
            5
        );
    }

    #[test]
    fn async_elements_get_a_cluster_of_their_own() {
        let g = Graph::from_description(
            "tcpserversrc port=0 ! identity ! tee name=t ! fdsink t. ! queue ! tcpclientsink",
        )
        .unwrap();
        let text = to_dot(&g, None);
        let parsed = graphviz_rust::parse(&text).unwrap();
        let cl = clusters(&parsed);
        assert_eq!(cl.len(), 3, "{text}");
        assert_eq!(cl[0].1, ["identity0", "t", "fdsink0"]);
        assert_eq!(cl[1].1, ["queue0"]);
        assert_eq!(cl[2].1, ["tcpserversrc0", "tcpclientsink0"]);
        assert!(
            text.contains("thread 0 (output of tcpserversrc0)"),
            "{text}"
        );
        assert!(text.contains("async domain (tokio runtime"), "{text}");
    }

    #[test]
    fn an_async_source_feeding_an_async_sink_needs_no_thread() {
        let g = Graph::from_description("udpsrc port=0 ! udpsink port=9").unwrap();
        let (roots, of) = g.segments();
        assert!(roots.is_empty());
        assert_eq!(of, [0, 0]);
        let text = to_dot(&g, None);
        let cl = clusters(&graphviz_rust::parse(&text).unwrap());
        assert_eq!(cl.len(), 1, "{text}");
        assert_eq!(cl[0].1, ["udpsrc0", "udpsink0"]);
    }
}
