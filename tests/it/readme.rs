//! The README's examples run: every fenced block whose info string is `sh runnable` is run by
//! bash (`-euo pipefail`) in a fresh directory, with the binaries under test first on `PATH`.
//! A README that drifts from the binaries fails here (issue 20).

use std::path::Path;
use std::process::Command;

use crate::support::*;

/// The `sh runnable` blocks of `text`, each with the line its fence opens on.
fn runnable_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let fence = line.trim_start();
        match &mut current {
            None if fence.starts_with("```") => {
                let info: Vec<&str> = fence[3..].split_whitespace().collect();
                if info.first() == Some(&"sh") && info.contains(&"runnable") {
                    current = Some((n + 1, String::new()));
                }
            }
            Some(_) if fence.starts_with("```") => {
                blocks.push(current.take().expect("inside a block"));
            }
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "an `sh runnable` block is not closed");
    blocks
}

#[test]
fn readme_runnable_examples_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = runnable_blocks(&readme);
    assert!(blocks.len() >= 4, "the README lost its runnable examples");
    let bin_dir = Path::new(launch_bin()).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (line, body) in blocks {
        let dir = tmp();
        let mut c = Command::new("bash");
        c.args(["-euo", "pipefail", "-c", &body])
            .current_dir(dir.path())
            .env("PATH", &path)
            .env_remove("PARALLAX_LOG")
            .env_remove("GST_DEBUG");
        let out = run(c);
        assert!(
            out.status.success(),
            "README.md line {line}: the block failed ({:?}):\n{body}\nstderr:\n{}",
            out.status,
            stderr(&out)
        );
    }
}

#[test]
fn runnable_blocks_are_found_and_others_are_not() {
    let text = "```sh runnable\necho a\n```\n```sh\necho b\n```\n```text\nx\n```\n";
    assert_eq!(runnable_blocks(text), vec![(1, "echo a\n".to_owned())]);
}
