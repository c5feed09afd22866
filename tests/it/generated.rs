//! Man pages and shell completions are generated from the clap definitions and the registry,
//! and checked in. This test regenerates them and fails when the checked-in files are stale;
//! `PARALLAX_BLESS=1 cargo test --test it generated` rewrites them.

use std::path::{Path, PathBuf};

use clap::CommandFactory as _;
use clap_complete::Shell;
use parallax::cli::{InspectArgs, LaunchArgs};
use parallax::registry;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The launch command with element names offered for pipeline words.
fn launch_command() -> clap::Command {
    let names: Vec<&'static str> = registry::element_names().collect();
    LaunchArgs::command().mut_arg("pipeline", |a| {
        a.value_parser(clap::builder::PossibleValuesParser::new(names))
    })
}

fn man_page(cmd: clap::Command, extra: &str) -> String {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf).unwrap();
    let mut text = String::from_utf8(buf).unwrap();
    text.push_str(extra);
    text
}

fn elements_section() -> String {
    let mut s = String::from(".SH ELEMENTS\n");
    for f in registry::all() {
        s.push_str(&format!(".TP\n\\fB{}\\fR", f.name));
        if !f.aliases.is_empty() {
            s.push_str(&format!(" (alias: {})", f.aliases.join(", ")));
        }
        s.push_str(&format!("\n{}\n", escape(f.summary)));
    }
    s
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('-', "\\-")
}

const LAUNCH_EXTRA: &str = r#".SH GRAMMAR
.nf
description := chain*
chain       := item ( '!' item )*
item        := element | name.pad | caps | uri | bin
element     := factory key=value ...
.fi
.PP
Items not joined by \fB!\fR start a new chain. Values may be quoted with double or single
quotes. Integers take size suffixes (64KiB, 4M = 4 MiB, 4MB = 4000000); times take units
(10ms, 2s, 1.5s).
.SH EXIT STATUS
.TP
0
end of stream, or a completed drain after Ctrl\-C with \fB\-e\fR
.TP
1
runtime error; the message names the element
.TP
2
usage or pipeline\-description error; nothing ran
.TP
130
interrupted without \fB\-e\fR
.SH SIGNALS
The first SIGINT or SIGTERM ends the stream at the sources; everything already read is
written and flushed. The second exits at once.
.SH ENVIRONMENT
None is read yet.
.SH EXAMPLES
.nf
parallax\-launch filesrc location=in.bin ! filesink location=out.bin
parallax\-launch fdsrc ! tee name=t ! queue ! fdsink t. ! queue ! filesink location=copy.bin
parallax\-launch \-\-stats=json fakesrc num\-buffers=1000 ! fakesink
.fi
"#;

const INSPECT_EXTRA: &str = r#".SH EXIT STATUS
.TP
0
success
.TP
1
no such element (also with \fB\-\-exists\fR)
.TP
2
usage error
.SH EXAMPLES
.nf
parallax\-inspect
parallax\-inspect filesrc
parallax\-inspect \-\-exists tee && echo yes
.fi
"#;

fn completions(cmd: clap::Command, bin: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (shell, file) in [
        (Shell::Bash, format!("{bin}.bash")),
        (Shell::Zsh, format!("_{bin}")),
        (Shell::Fish, format!("{bin}.fish")),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), bin, &mut buf);
        out.push((file, String::from_utf8(buf).unwrap()));
    }
    out
}

fn check(path: &Path, want: &str, stale: &mut Vec<String>) {
    if std::env::var_os("PARALLAX_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, want).unwrap();
        return;
    }
    match std::fs::read_to_string(path) {
        Ok(have) if have == want => {}
        _ => stale.push(path.display().to_string()),
    }
}

#[test]
fn man_pages_and_completions_are_up_to_date() {
    let mut stale = Vec::new();
    let launch_extra = format!("{}{LAUNCH_EXTRA}", elements_section());
    check(
        &root().join("man/parallax-launch.1"),
        &man_page(launch_command(), &launch_extra),
        &mut stale,
    );
    check(
        &root().join("man/parallax-inspect.1"),
        &man_page(InspectArgs::command(), INSPECT_EXTRA),
        &mut stale,
    );
    for (file, text) in completions(launch_command(), "parallax-launch") {
        check(&root().join("completions").join(file), &text, &mut stale);
    }
    let names: Vec<&'static str> = registry::element_names().collect();
    let inspect = InspectArgs::command().mut_arg("element", |a| {
        a.value_parser(clap::builder::PossibleValuesParser::new(names))
    });
    for (file, text) in completions(inspect, "parallax-inspect") {
        check(&root().join("completions").join(file), &text, &mut stale);
    }
    assert!(
        stale.is_empty(),
        "stale generated files: {stale:?}\nrun PARALLAX_BLESS=1 cargo test --test it generated"
    );
}
