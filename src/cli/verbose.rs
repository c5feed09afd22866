//! `-v`: what gst-launch -v shows, in gst's path form, plus what gst cannot show before running.
//!
//! ```text
//! /pipeline0/filesrc0: location = "in.bin"
//! /pipeline0/fakesink0: sync = true (accepted, no effect: parallax has no pipeline clock ...)
//! /pipeline0/filesrc0.src -> /pipeline0/fakesink0.sink
//! /pipeline0/audiotestsrc0.src: caps = audio/x-raw, format=(string)S16LE, ...
//! ```
//!
//! Caps are printed for every pad whose link carries typed caps (not ANY): negotiation ran when
//! the description was validated, so they are known before the run, unlike gst's.
//!
//! The threads follow, from the executor's own plan (`Pipeline::plan_text`).
//!
//! Every property set in the description is printed as it is set on the element, in
//! topological order, with the value as the element sees it (sizes and times normalised).
//! Elements change none of their properties themselves while running (gst's `last-message`
//! notifications have `--tap` as their counterpart); a change made on the control socket
//! (`--control`) is printed when it is made, in the same form.

use crate::graph::Graph;
use crate::registry::Effect;

/// The `-v` text for `graph`, leaving out the properties named in `exclude` (`-X`).
pub fn properties_and_links(graph: &Graph, exclude: &[String]) -> String {
    let mut out = String::new();
    let order = graph.topo_order();
    for &n in &order {
        let node = &graph.dag[n];
        if node.exec != crate::registry::Exec::Auto {
            let why = node
                .planned
                .map_or(String::new(), |why| format!(" (planner: {why})"));
            out.push_str(&format!(
                "/pipeline0/{}: exec = {}{why}\n",
                node.name,
                node.exec.as_str()
            ));
        }
        if node.exec != crate::registry::Exec::Isolated
            && crate::plugin::library_of(node.factory).is_some()
        {
            out.push_str(&format!(
                "note: {} runs a plugin in this process (exec={}): processing-deadline cannot \
                 stop it and SIGHUP cannot reload it; a call that never returns holds the run \
                 until a second Ctrl-C\n",
                node.name,
                node.exec.as_str()
            ));
        }
        if let Some(note) = &node.note {
            out.push_str(&format!("/pipeline0/{}: {note}\n", node.name));
        }
        for (spec, value) in node.props.explicit() {
            if exclude.iter().any(|x| x == spec.name) {
                continue;
            }
            let note = match spec.effect {
                Effect::Applied => String::new(),
                Effect::Ignored(why) => format!(" (accepted, no effect: {why})"),
                Effect::ReadOnly => " (read-only)".to_owned(),
            };
            out.push_str(&format!(
                "/pipeline0/{}: {} = {value}{note}\n",
                node.name, spec.name
            ));
        }
    }
    for &n in &order {
        for (link, child) in graph.children(n) {
            out.push_str(&format!(
                "/pipeline0/{}.{} -> /pipeline0/{}.{}\n",
                graph.dag[n].name, link.src_pad, graph.dag[child].name, link.sink_pad
            ));
        }
    }
    // gst prints a pad's caps when they are set on it: the src pad, then the peer's sink pad.
    for &n in &order {
        for (link, child) in graph.children(n) {
            if link.caps.is_any() {
                continue;
            }
            for (node, pad) in [(n, &link.src_pad), (child, &link.sink_pad)] {
                out.push_str(&format!(
                    "/pipeline0/{}.{pad}: caps = {}\n",
                    graph.dag[node].name, link.caps
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_and_links_in_gst_form() {
        let g = Graph::from_description(
            "filesrc location=a blocksize=4KiB ! queue ! fakesink sync=true async=false",
        )
        .unwrap();
        let text = properties_and_links(&g, &["blocksize".into()]);
        assert!(
            text.contains("/pipeline0/filesrc0: location = \"a\"\n"),
            "{text}"
        );
        assert!(!text.contains("blocksize"), "{text}");
        assert!(
            text.contains("/pipeline0/fakesink0: async = false (accepted, no effect: "),
            "{text}"
        );
        assert!(
            text.contains("/pipeline0/filesrc0.src -> /pipeline0/queue0.sink\n"),
            "{text}"
        );
    }
}
