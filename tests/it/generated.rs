//! Man pages and shell completions are generated from the clap definitions and the registry,
//! and checked in. This test regenerates them and fails when the checked-in files are stale;
//! `PARALLAX_BLESS=1 cargo test --test it generated` rewrites them.

use std::path::{Path, PathBuf};

use clap::CommandFactory as _;
use clap_complete::Shell;
use parallax::cli::{InspectArgs, LaunchArgs, TopArgs};
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
.SH WATCHING A RUN
Everything below goes to stderr; stdout carries only what the pipeline writes there.
.TP
Progress
When stderr is a terminal, a line shows the bytes and buffers into the sinks, the rate and
the elapsed time; when every source knows its size (filesrc), a bar over the bytes read with
an ETA. Off with \fB\-q\fR, \fB\-\-no\-position\fR, or when stderr is not a terminal.
.TP
\fB\-v\fR
Each property set in the description, as gst\-launch \-v prints it
(\fB/pipeline0/filesrc0: location = "in.bin"\fR), the links, and the thread each element
runs in. A property changed on the control socket (\fB\-\-control\fR) is printed when it
changes, with \fB(control socket)\fR after it.
.TP
\fB\-\-control\fR PATH
A Unix socket taking one JSON command per line: get and set of the properties
parallax\-inspect marks mutable while running (valve drop, selectors' active\-pad, volume),
pause, resume, eos, stats, graph and subscribe. \fBparallax\-top\fR shows it live.
.TP
\fB\-\-metrics\fR ADDR:PORT
Prometheus text exposition at \fB/metrics\fR, from the same live counts.
.TP
\fB\-\-tap\fR ELEMENT[.PAD]
Every buffer passing that point: size, sequence, offset, timestamps, flags, and its first
32 bytes as a hex dump; \fB\-\-tap\-format=json\fR prints one JSON object per buffer and
one at end of stream. The data flow is unchanged. An unknown element or pad exits 2.
.TP
\fB\-d\fR FILTER, PARALLAX_LOG
Log lines, each inside a span naming its element (\fBelement{name=filesrc0 factory=filesrc}\fR).
.SH ENVIRONMENT
.TP
PARALLAX_LOG
Log filter used when \fB\-d\fR is not given, like GST_DEBUG. Directives are separated by
commas: a level alone (\fBinfo\fR, or gst's numbers \fB0\fR\-\fB9\fR), or
TARGET=LEVEL (or gst's TARGET:LEVEL), where TARGET is an element factory (\fBfilesrc\fR: every
filesrc), an element's name (\fBfilesrc0\fR, a \fBname=\fR), a pattern with \fB*\fR
(\fB*src\fR), \fB*\fR for everything, or a module path (\fBparallax::exec\fR). Levels:
off, error, warn, info, debug, trace. Unset or empty: no logs, at no cost.
.SH EXAMPLES
.nf
parallax\-launch filesrc location=in.bin ! filesink location=out.bin
parallax\-launch fdsrc ! tee name=t ! queue ! fdsink t. ! queue ! filesink location=copy.bin
parallax\-launch \-\-stats=json fakesrc num\-buffers=1000 ! fakesink
parallax\-launch \-q \-\-tap identity0 fakesrc num\-buffers=3 sizetype=fixed ! identity ! fakesink
parallax\-launch \-d info,filesrc=trace filesrc location=in.bin ! fakesink
PARALLAX_LOG=*:5 parallax\-launch fdsrc ! queue ! fdsink < in.bin > out.bin
.fi
"#;

const TOP_EXTRA: &str = r#".SH EXIT STATUS
.TP
0
the pipeline ended (or, with \fB\-\-once\fR, one sample was printed)
.TP
1
the control socket cannot be reached
.TP
2
usage error
.SH COLUMNS
.TP
BUF/S, BYTES/S
buffers and bytes into the element (out of a source) per second over the last interval
.TP
BUSY%
share of the interval spent inside the element's calls (sampled)
.TP
QUEUE
buffers waiting now in the channel in front of the element (queues, funnels)
.TP
DROPPED
buffers the element dropped so far (valve, selectors, leaky queues)
.SH EXAMPLES
.nf
parallax\-launch \-\-control=/tmp/px.sock fakesrc ! queue ! fakesink &
parallax\-top \-\-control=/tmp/px.sock
parallax\-top \-\-control=/tmp/px.sock \-\-once \-\-format=json
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

/// Every element and alias with its one-line summary, in listing order.
fn elements_with_summaries() -> Vec<(&'static str, &'static str)> {
    registry::all()
        .flat_map(|f| {
            std::iter::once(f.name)
                .chain(f.aliases.iter().copied())
                .map(move |n| (n, f.summary))
        })
        .collect()
}

fn single_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// clap_complete offers element names for every pipeline word (bash, zsh) or none (fish).
/// This adds what clap cannot express: an element name is wanted as the first pipeline word
/// and after `!`; elsewhere in a pipeline come properties and file names.
fn element_completion(shell: Shell, generated: String) -> String {
    let elements = elements_with_summaries();
    match shell {
        Shell::Bash => {
            let names: Vec<&str> = elements.iter().map(|(n, _)| *n).collect();
            format!(
                r#"{generated}
# Element names where a pipeline expects one: after `!` (and, through the function above, as
# its first word). Elsewhere in a pipeline, files (for location=...).
_parallax_launch_elements="{names}"
_parallax_launch_pipeline() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="" i in_pipeline=0
    if [[ ${{COMP_CWORD}} -gt 0 ]]; then
        prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    fi
    if [[ "${{prev}}" == "!" && "${{cur}}" != -* ]]; then
        COMPREPLY=( $(compgen -W "${{_parallax_launch_elements}}" -- "${{cur}}") )
        return 0
    fi
    for (( i = 1; i < COMP_CWORD; i++ )); do
        if [[ " ${{_parallax_launch_elements}} " == *" ${{COMP_WORDS[i]}} "* ]]; then
            in_pipeline=1
        fi
    done
    if [[ ${{in_pipeline}} -eq 1 && "${{cur}}" != -* ]]; then
        COMPREPLY=()
        return 0
    fi
    _parallax__launch "$@"
}}

if [[ "${{BASH_VERSINFO[0]}}" -eq 4 && "${{BASH_VERSINFO[1]}}" -ge 4 || "${{BASH_VERSINFO[0]}}" -gt 4 ]]; then
    complete -F _parallax_launch_pipeline -o nosort -o bashdefault -o default parallax-launch
else
    complete -F _parallax_launch_pipeline -o bashdefault -o default parallax-launch
fi
"#,
                names = names.join(" ")
            )
        }
        Shell::Zsh => {
            let listed: Vec<String> = elements
                .iter()
                .map(|(n, summary)| format!("        {}", single_quoted(&format!("{n}:{summary}"))))
                .collect();
            let helper = format!(
                r#"
# Element names where a pipeline expects one: its first word and after `!`; files elsewhere.
(( $+functions[_parallax_launch_pipeline] )) ||
_parallax_launch_pipeline() {{
    local -a elements
    elements=(
{}
    )
    if (( CURRENT == 1 )) || [[ ${{words[CURRENT-1]}} == '!' ]]; then
        _describe -t elements 'element' elements
    else
        _files
    fi
}}
"#,
                listed.join("\n")
            );
            let names: Vec<&str> = elements.iter().map(|(n, _)| *n).collect();
            let clap_values = format!(
                "'*::pipeline -- The pipeline description:({})'",
                names.join(" ")
            );
            assert!(
                generated.contains(&clap_values),
                "clap_complete changed its zsh output: update element_completion"
            );
            generated
                .replace(
                    &clap_values,
                    "'*::pipeline -- The pipeline description:_parallax_launch_pipeline'",
                )
                .replacen(
                    "autoload -U is-at-least\n",
                    &format!("autoload -U is-at-least\n{helper}"),
                    1,
                )
        }
        Shell::Fish => {
            let mut out = generated;
            out.push_str(
                r#"
# Element names where a pipeline expects one: its first word and after `!`.
function __parallax_launch_wants_element
    set -l tokens (commandline -opc)
    test "$tokens[-1]" = '!'; and return 0
    for t in $tokens[2..-1]
        string match -q -- '-*' $t; or return 1
    end
    return 0
end
"#,
            );
            for (n, summary) in &elements {
                out.push_str(&format!(
                    "complete -c parallax-launch -n __parallax_launch_wants_element -f -a {n} -d {}\n",
                    single_quoted(summary)
                ));
            }
            out
        }
        _ => generated,
    }
}

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
    // The checked-in files describe the default build; opt-in features add elements.
    if cfg!(any(feature = "av1-decode", feature = "h264")) {
        return;
    }
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
    for ((file, text), shell) in completions(launch_command(), "parallax-launch")
        .into_iter()
        .zip([Shell::Bash, Shell::Zsh, Shell::Fish])
    {
        let text = element_completion(shell, text);
        check(&root().join("completions").join(file), &text, &mut stale);
    }
    let names: Vec<&'static str> = registry::element_names().collect();
    let inspect = InspectArgs::command().mut_arg("element", |a| {
        a.value_parser(clap::builder::PossibleValuesParser::new(names))
    });
    for (file, text) in completions(inspect, "parallax-inspect") {
        check(&root().join("completions").join(file), &text, &mut stale);
    }
    check(
        &root().join("man/parallax-top.1"),
        &man_page(TopArgs::command(), TOP_EXTRA),
        &mut stale,
    );
    for (file, text) in completions(TopArgs::command(), "parallax-top") {
        check(&root().join("completions").join(file), &text, &mut stale);
    }
    assert!(
        stale.is_empty(),
        "stale generated files: {stale:?}\nrun PARALLAX_BLESS=1 cargo test --test it generated"
    );
}
