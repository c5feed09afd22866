//! The planner: where each element left at `exec=auto` runs, from its hints (seed 000's
//! "Automatic Execution Strategy") and `--scheduling`.
//!
//! | hints                                   | domain                          |
//! |-----------------------------------------|---------------------------------|
//! | untrusted, or native code               | isolated (always, every mode)   |
//! | RT-safe and latency low or ultra-low    | rt thread                       |
//! | I/O through the async traits            | async (tokio)                   |
//! | anything else                           | fused into its neighbour's loop |
//!
//! An element the user placed with `exec=` keeps that place, except that untrusted code never
//! runs in the parent process: `trust=untrusted exec=rt` is refused.

use crate::graph::{Graph, Node};
use crate::parse::Diagnostic;
use crate::registry::{Exec, Latency, Scheduling, Trust};

/// What the hints and the mode ask for `node`, and why; `None` leaves it where it is.
fn choose(node: &Node, scheduling: Scheduling) -> Option<(Exec, &'static str)> {
    let factory = node.factory;
    let hints = factory.hints;
    if node.trust == Trust::Untrusted {
        return Some((
            Exec::Isolated,
            "untrusted code runs in a sandboxed worker process",
        ));
    }
    if hints.native_code && node.trust != Trust::Trusted {
        return Some((Exec::Isolated, "native code runs in a worker process"));
    }
    match scheduling {
        Scheduling::Isolated if factory.isolatable() => {
            Some((Exec::Isolated, "--scheduling=isolated"))
        }
        Scheduling::Rt if factory.rt_capable() => Some((Exec::Rt, "--scheduling=rt")),
        Scheduling::Auto
            if hints.rt_safe && node.latency <= Latency::Low && factory.rt_capable() =>
        {
            Some((Exec::Rt, "RT-safe with low latency runs on an rt thread"))
        }
        _ => None,
    }
}

/// Resolves every `exec=auto` element of `graph` to where it runs, recording why in
/// [`Node::planned`]. Fails, naming the element, when untrusted code cannot be isolated.
pub fn place(graph: &mut Graph, scheduling: Scheduling) -> Result<(), Diagnostic> {
    let nodes: Vec<_> = graph.dag.graph().node_indices().collect();
    for n in nodes {
        let node = &graph.dag[n];
        // exec=fused is the user vouching for the element: it runs in this process.
        let untrusted = node.exec != Exec::Fused
            && (node.trust == Trust::Untrusted
                || node.factory.hints.native_code && node.trust != Trust::Trusted);
        if untrusted && !node.factory.isolatable() {
            return Err(Diagnostic::new(
                format!(
                    "{} is untrusted, but a {} cannot run in a worker process",
                    node.name, node.factory.name
                ),
                node.span.clone(),
            )
            .with_help(
                "only sources, sinks and one-in-one-out elements can be isolated; \
                 drop trust=untrusted",
            ));
        }
        if untrusted && !matches!(node.exec, Exec::Auto | Exec::Isolated) {
            return Err(Diagnostic::new(
                format!(
                    "{} is untrusted and must run isolated, not exec={}",
                    node.name,
                    node.exec.as_str()
                ),
                node.span.clone(),
            )
            .with_help("use exec=isolated or exec=auto, or drop trust=untrusted"));
        }
        // The head a pipe lent to typefinding is passed by the source built in this process.
        let lends = node
            .props
            .attached::<crate::element::LentHead>()
            .is_some_and(|l| l.replays());
        if lends && node.exec == Exec::Isolated {
            return Err(Diagnostic::new(
                format!(
                    "{} cannot run isolated: its first bytes were read when the description \
                     was validated, to find their type, and this process passes them on",
                    node.name
                ),
                node.span.clone(),
            )
            .with_help("drop exec=isolated from it (the elements after it may run isolated)"));
        }
        if node.exec != Exec::Auto || lends {
            continue;
        }
        if let Some((exec, why)) = choose(node, scheduling) {
            let node = &mut graph.dag[n];
            node.exec = exec;
            node.planned = Some(why);
        }
    }
    check_peers(graph)
}

/// Refuses a line whose buffers could be lent to more worker processes than an arena has
/// peer columns ([`crate::memory::MAX_PEERS`]). A source's buffers may travel through every
/// isolated element below it (each passes the same memory on), so that is what is counted;
/// the first element over the limit is named. At run time the lend would fail instead.
fn check_peers(graph: &Graph) -> Result<(), Diagnostic> {
    let max = crate::memory::MAX_PEERS;
    let order = graph.topo_order();
    for &source in order.iter().filter(|&&n| graph.parent_count(n) == 0) {
        let mut below = std::collections::HashSet::new();
        let mut work = vec![source];
        while let Some(n) = work.pop() {
            for (_, c) in graph.children(n) {
                if below.insert(c) {
                    work.push(c);
                }
            }
        }
        let over = order
            .iter()
            .filter(|n| below.contains(n) && graph.dag[**n].exec == Exec::Isolated)
            .nth(max);
        if let Some(&n) = over {
            let node = &graph.dag[n];
            return Err(Diagnostic::new(
                format!(
                    "{} is the {}th isolated element below {}: one buffer pool can be lent to \
                     at most {max} worker processes",
                    node.name,
                    max + 1,
                    graph.dag[source].name
                ),
                node.span.clone(),
            )
            .with_help(format!(
                "isolate at most {max} elements below each source (exec=auto runs the others \
                 fused)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(text: &str, scheduling: Scheduling) -> Vec<(String, Exec)> {
        let mut graph = Graph::from_description(text).unwrap();
        place(&mut graph, scheduling).unwrap();
        graph
            .topo_order()
            .into_iter()
            .map(|n| (graph.dag[n].name.clone(), graph.dag[n].exec))
            .collect()
    }

    fn refused(text: &str) -> String {
        let mut graph = Graph::from_description(text).unwrap();
        place(&mut graph, Scheduling::Auto).unwrap_err().message
    }

    #[test]
    fn auto_follows_the_hints_table() {
        let got = placed(
            "fakesrc ! identity trust=untrusted ! identity latency=low ! queue ! fakesink",
            Scheduling::Auto,
        );
        let exec: Vec<Exec> = got.iter().map(|(_, e)| *e).collect();
        assert_eq!(
            exec,
            [Exec::Auto, Exec::Isolated, Exec::Rt, Exec::Auto, Exec::Auto]
        );
    }

    #[test]
    fn a_semi_trusted_or_normal_element_stays_fused() {
        let got = placed(
            "fakesrc ! identity trust=semi-trusted latency=relaxed ! fakesink",
            Scheduling::Auto,
        );
        assert!(got.iter().all(|(_, e)| *e == Exec::Auto), "{got:?}");
    }

    #[test]
    fn fused_mode_ignores_latency_but_never_trust() {
        let got = placed(
            "fakesrc ! identity latency=ultra-low ! identity trust=untrusted ! fakesink",
            Scheduling::Fused,
        );
        let exec: Vec<Exec> = got.iter().map(|(_, e)| *e).collect();
        assert_eq!(exec, [Exec::Auto, Exec::Auto, Exec::Isolated, Exec::Auto]);
    }

    #[test]
    fn isolated_and_rt_modes_move_what_can_move() {
        let iso = placed(
            "fakesrc ! tee name=t ! queue ! fakesink t. ! identity exec=rt ! fakesink",
            Scheduling::Isolated,
        );
        let of = |name: &str| iso.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(of("fakesrc0"), Exec::Isolated);
        assert_eq!(of("t"), Exec::Auto);
        assert_eq!(of("queue0"), Exec::Auto);
        assert_eq!(of("fakesink0"), Exec::Isolated);
        assert_eq!(of("identity0"), Exec::Rt, "exec= as written wins");
        let rt = placed("fakesrc ! identity ! fakesink", Scheduling::Rt);
        let exec: Vec<Exec> = rt.iter().map(|(_, e)| *e).collect();
        assert_eq!(
            exec,
            [Exec::Rt, Exec::Rt, Exec::Auto],
            "a sink has no rt thread"
        );
    }

    #[test]
    fn untrusted_code_that_cannot_be_isolated_is_refused() {
        assert_eq!(
            refused("fakesrc ! tee trust=untrusted ! fakesink"),
            "tee0 is untrusted, but a tee cannot run in a worker process"
        );
        assert_eq!(
            refused("fakesrc ! identity trust=untrusted exec=rt ! fakesink"),
            "identity0 is untrusted and must run isolated, not exec=rt"
        );
    }
}
