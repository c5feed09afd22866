//! --dot and --validate on the real binary; the DOT is parsed back with graphviz-rust.

use graphviz_rust::dot_structures::{Graph, Stmt};

use super::support::*;

fn parse(text: &[u8]) -> Graph {
    graphviz_rust::parse(std::str::from_utf8(text).unwrap()).unwrap()
}

fn count(g: &Graph, pred: fn(&Stmt) -> bool) -> usize {
    let Graph::DiGraph { stmts, .. } = g else {
        panic!("not a digraph")
    };
    stmts.iter().filter(|s| pred(s)).count()
}

#[test]
fn validate_runs_nothing_and_writes_the_graph() {
    let dir = tmp();
    let output = dir.path().join("never.bin");
    let desc = format!(
        "fakesrc num-buffers=3 ! tee name=t ! queue ! filesink location={} t. ! fakesink",
        output.display()
    );
    let out = run(launch(&["--validate", "--dot", &desc]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!output.exists(), "--validate ran the pipeline");
    let g = parse(&out.stdout);
    assert_eq!(count(&g, |s| matches!(s, Stmt::Subgraph(_))), 2);
    assert_eq!(count(&g, |s| matches!(s, Stmt::Edge(_))), 4);
    let out = run(launch(&["--validate", "fakesrc ! tee name=t"]));
    assert_eq!(code(&out), 2);
}

#[test]
fn dot_after_a_run_carries_counts() {
    let dir = tmp();
    let file = dir.path().join("g.dot");
    let target = format!("--dot={}", file.display());
    let out = run(launch(&[
        "-q",
        &target,
        "fakesrc num-buffers=7 sizetype=fixed sizemax=10 ! identity ! fakesink",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = std::fs::read(&file).unwrap();
    let g = parse(&text);
    assert_eq!(count(&g, |s| matches!(s, Stmt::Edge(_))), 2);
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("7 buffers, 70 bytes"), "{text}");
    assert!(text.contains("busy "), "{text}");
}

#[test]
fn isolated_and_rt_elements_get_clusters_of_their_own_that_say_so() {
    let out = run(launch(&[
        "--validate",
        "--dot",
        "fakesrc ! identity exec=isolated ! identity exec=rt ! fakesink",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let g = parse(&out.stdout);
    assert_eq!(count(&g, |s| matches!(s, Stmt::Subgraph(_))), 3);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("its worker process's output"), "{text}");
    assert!(text.contains("rt thread 2 (from identity1)"), "{text}");
    assert!(
        text.contains("exec=isolated") && text.contains("exec=rt"),
        "{text}"
    );
}
