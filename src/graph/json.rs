//! The pipeline graph as one JSON object (`--graph=json`, the control socket's `graph`):
//! elements with their properties, pads, domain and thread, links with their negotiated caps,
//! and counts. Schema 1; a field is only ever added, and a change of meaning bumps `schema`.
//! `schemas/graph-1.schema.json` is its JSON Schema; the tests validate real output against it.
//!
//! ```json
//! {"schema": 1,
//!  "elements": [{"name": "valve0", "factory": "valve", "class": "flow", "domain": "thread",
//!                "exec": "auto", "thread": 0,
//!                "properties": [{"name": "drop", "value": false, "set": false, "mutable": true}],
//!                "pads": [{"name": "sink", "direction": "sink", "peer": "src0.src"}, ...]}],
//!  "links": [{"from": "src0.src", "to": "valve0.sink", "caps": "ANY"}],
//!  "counts": {"elements": 3, "links": 2, "threads": 1}}
//! ```
//!
//! After a run (or live, on the control socket) each element also has `buffers` and `bytes`.

use daggy::NodeIndex;
use serde_json::{json, Value as Json};

use super::{Graph, Node};
use crate::registry::{LiveValue, PadPresence, PropKind, PropSpec, Value};

/// The schema version of [`to_json`].
pub const SCHEMA: u64 = 1;

/// A property value as JSON: booleans, numbers, strings, enum nicks; NULL is null.
pub fn value_json(value: &Value) -> Json {
    match value {
        Value::Bool(b) => json!(b),
        Value::Int(i) | Value::Time(i) => json!(i),
        Value::UInt(u) => json!(u),
        Value::Float(x) => json!(x),
        Value::Str(Some(s)) => json!(s),
        Value::Str(None) => Json::Null,
        Value::Enum(nick) => json!(nick),
    }
}

/// The prefix of a selector's request pads (`sink_`, `src_`): what its `active-pad` names.
pub fn pad_prefix(node: &Node) -> &'static str {
    match node.factory.pads.sink {
        PadPresence::Request(t) => t.strip_suffix("%u").unwrap_or(t),
        _ => match node.factory.pads.src {
            PadPresence::Request(t) => t.strip_suffix("%u").unwrap_or(t),
            _ => "",
        },
    }
}

/// The value of `spec` on `node` now: for a property mutable while running, what the element
/// reads at this moment (set by the control socket or not), else the configured one.
pub fn current_value(node: &Node, spec: &PropSpec) -> Value {
    let configured = node
        .props
        .all()
        .find(|(s, _, _)| s.name == spec.name)
        .map(|(_, v, _)| v.clone())
        .unwrap_or_else(|| spec.kind.default_value());
    let Some(live) = node.props.live(spec.name) else {
        return configured;
    };
    match spec.kind {
        PropKind::Str { .. } => Value::Str(Some(format!("{}{}", pad_prefix(node), live.bits()))),
        _ => LiveValue::decode(&spec.kind, live.bits()).unwrap_or(configured),
    }
}

/// Per element counts to show, in node order: (buffers, bytes).
pub type Counts<'a> = &'a [(u64, u64)];

/// The graph as JSON (schema [`SCHEMA`]); `counts` adds each element's buffers and bytes.
pub fn to_json(graph: &Graph, counts: Option<Counts<'_>>) -> Json {
    let dag = &graph.dag;
    let (_, thread_of) = graph.segments();
    let mut elements = Vec::new();
    let mut links = Vec::new();
    for n in dag.graph().node_indices() {
        let node = &dag[n];
        let properties: Vec<Json> = node
            .factory
            .props
            .iter()
            .map(|spec| {
                json!({
                    "name": spec.name,
                    "value": value_json(&current_value(node, spec)),
                    "set": node.props.is_set(spec.name),
                    "mutable": spec.mutable_while_running,
                })
            })
            .collect();
        let mut pads = Vec::new();
        for (p, child) in dag.parents(n).iter(dag) {
            let link = &dag[p];
            pads.push(json!({
                "name": link.sink_pad,
                "direction": "sink",
                "peer": format!("{}.{}", dag[child].name, link.src_pad),
            }));
        }
        for (link, child) in graph.children(n) {
            pads.push(json!({
                "name": link.src_pad,
                "direction": "src",
                "peer": format!("{}.{}", dag[child].name, link.sink_pad),
            }));
            links.push(json!({
                "from": format!("{}.{}", node.name, link.src_pad),
                "to": format!("{}.{}", dag[child].name, link.sink_pad),
                "caps": link.caps.to_string(),
            }));
        }
        let mut e = json!({
            "name": node.name,
            "factory": node.factory.name,
            "class": node.factory.klass.as_str(),
            "domain": graph.domain(n),
            "exec": node.exec.as_str(),
            "thread": thread_of.get(n.index()).copied().filter(|&t| t != usize::MAX),
            "properties": properties,
            "pads": pads,
        });
        if let Some((buffers, bytes)) = counts.and_then(|c| c.get(n.index())) {
            e["buffers"] = json!(buffers);
            e["bytes"] = json!(bytes);
        }
        elements.push(e);
    }
    let threads = thread_of
        .iter()
        .filter(|&&t| t != usize::MAX)
        .collect::<std::collections::HashSet<_>>()
        .len();
    json!({
        "schema": SCHEMA,
        "elements": elements,
        "links": links,
        "counts": {
            "elements": dag.node_count(),
            "links": dag.edge_count(),
            "threads": threads,
        },
    })
}

/// The element named `name`.
pub fn find(graph: &Graph, name: &str) -> Option<NodeIndex<u32>> {
    graph
        .dag
        .graph()
        .node_indices()
        .find(|&n| graph.dag[n].name == name)
}

use daggy::Walker as _;
