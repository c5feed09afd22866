//! The stream-processing elements of issue 12 run by the real binary: datasrc and consolesink,
//! the filters, the buffer operations and rate control, with their edge cases (empty buffers,
//! an empty stream, range boundaries, seeds) and their description errors.

use std::io::Read as _;
use std::process::Output;
use std::time::{Duration, Instant};

use super::support::*;

/// Runs `desc` quietly, expecting exit 0; returns stdout.
#[track_caller]
fn stdout_of(desc: &str) -> Vec<u8> {
    let out = run_expecting(launch(&["-q", desc]), 0);
    out.stdout
}

/// Runs `desc` with `--stats=json`, expecting exit 0.
#[track_caller]
fn with_stats(desc: &str) -> serde_json::Value {
    stats(&run_expecting(launch(&["--stats=json", desc]), 0))
}

fn count(s: &serde_json::Value, name: &str, what: &str) -> u64 {
    element(s, name)[what].as_u64().unwrap()
}

/// A description error: exit 2, and the caret line's `^` under `expected` in the echoed line.
#[track_caller]
fn refused_at(desc: &str, expected: &str) -> String {
    let out: Output = run_expecting(launch(&["-q", desc]), 2);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    let caret = lines
        .iter()
        .position(|l| l.trim_start().starts_with('^'))
        .unwrap_or_else(|| panic!("no caret in:\n{err}"));
    let col = lines[caret].find('^').unwrap();
    assert_eq!(
        lines[caret - 1].get(col..col + expected.len()),
        Some(expected),
        "caret not under `{expected}`:\n{err}"
    );
    err
}

// --- datasrc and consolesink ---------------------------------------------------------------

#[test]
fn datasrc_repeats_and_cuts_and_consolesink_writes_lines() {
    let out = stdout_of(r#"datasrc data="ab\tc" num-buffers=2 blocksize=2 ! consolesink"#);
    assert_eq!(out, b"ab\n\tc\nab\n\tc\n");
    // As separate argv words too: the shell passes `data=x\ny` and the escape reaches datasrc.
    let out = run_expecting(
        launch(&["-q", "datasrc", r"data=x\ny", "!", "consolesink"]),
        0,
    );
    assert_eq!(out.stdout, b"x\ny\n");
}

#[test]
fn datasrc_hex_and_base64_give_the_same_bytes() {
    let hex = stdout_of("datasrc data-hex='68 69 0a' ! fdsink");
    let b64 = stdout_of("datasrc data-base64=aGkK ! fdsink");
    let text = stdout_of(r#"datasrc data="hi\n" ! fdsink"#);
    assert_eq!(
        (hex.as_slice(), b64.as_slice()),
        (&b"hi\n"[..], &b"hi\n"[..])
    );
    assert_eq!(text, b"hi\n");
}

#[test]
fn datasrc_empty_data_and_an_empty_stream() {
    // Empty data: one empty buffer per repeat.
    let s = with_stats("datasrc data=\"\" num-buffers=3 ! fakesink");
    assert_eq!(count(&s, "fakesink0", "buffers"), 3);
    assert_eq!(count(&s, "fakesink0", "bytes"), 0);
    // num-buffers=0: end of stream at once.
    assert_eq!(
        stdout_of("datasrc data=abc num-buffers=0 ! consolesink"),
        b""
    );
    assert_eq!(stdout_of("datasrc data=\"\" ! consolesink"), b"\n");
}

#[test]
fn datasrc_errors_point_into_the_value_or_name_the_properties() {
    refused_at(r#"datasrc data="ok\q" ! fakesink"#, r"\q");
    refused_at("datasrc data-hex='00 0g' ! fakesink", "g");
    refused_at("datasrc data-base64=aG*K ! fakesink", "*");
    let out = run_expecting(launch(&["-q", "datasrc data=a data-hex=00 ! fakesink"]), 2);
    let err = stderr(&out);
    assert!(
        err.contains("datasrc0") && err.contains("`data-hex`"),
        "{err}"
    );
}

#[test]
fn consolesink_json_has_metadata_and_hex_dumps() {
    let out = stdout_of("datasrc data=abcdef blocksize=4 ! consolesink format=json max-bytes=3");
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["data"], "abc");
    assert_eq!(lines[0]["truncated"], true);
    assert_eq!(
        (lines[1]["sequence"].as_u64(), lines[1]["offset"].as_u64()),
        (Some(1), Some(4))
    );
    assert_eq!(
        (lines[1]["data"].as_str(), lines[1]["size"].as_u64()),
        (Some("ef"), Some(2))
    );
    let out = stdout_of("datasrc data-hex=00ff41 ! consolesink format=hex");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("00000000: 00 ff 41 {} ..A\n", "   ".repeat(13))
    );
}

// --- filter --------------------------------------------------------------------------------

#[test]
fn filter_expr_passes_what_matches() {
    let s = with_stats(
        "testsrc num-buffers=100 blocksize=8 ! filter expr='seq % 10 == 0 && size == 8' ! fakesink",
    );
    assert_eq!(count(&s, "fakesink0", "buffers"), 10);
    assert_eq!(count(&s, "filter0", "dropped"), 90);
    // The issue's example, before user fields exist: meta.kind is missing, so nothing passes.
    let s = with_stats(
        r#"testsrc num-buffers=20 blocksize=200 ! filter expr='size > 100 && seq % 10 == 0 && meta.kind == "audio"' ! fakesink"#,
    );
    assert_eq!(count(&s, "fakesink0", "buffers"), 0);
}

#[test]
fn filter_on_error_fail_stops_naming_the_element() {
    let out = run_expecting(
        launch(&[
            "-q",
            "testsrc num-buffers=3 ! filter expr='pts > 0' on-error=fail ! fakesink",
        ]),
        1,
    );
    let err = stderr(&out);
    assert!(
        err.contains("filter0") && err.contains("expr on buffer 0"),
        "{err}"
    );
}

#[test]
fn filter_typos_are_a_caret_under_the_mistake() {
    refused_at(
        "fakesrc ! filter expr='size > 1 && && seq' ! fakesink",
        "&&",
    );
    let err = refused_at(
        "fakesrc ! filter expr='size > 1 || sqe == 2' ! fakesink",
        "sqe",
    );
    assert!(err.contains("did you mean `seq`"), "{err}");
    // Separate argv words: the caret still lands inside the value.
    let out = run_expecting(
        launch(&[
            "-q",
            "fakesrc",
            "!",
            "filter",
            "expr=seq >",
            "!",
            "fakesink",
        ]),
        2,
    );
    assert!(
        stderr(&out).contains("filter: property `expr`"),
        "{}",
        stderr(&out)
    );
    // A missing expr is a description error too.
    run_expecting(launch(&["-q", "fakesrc ! filter ! fakesink"]), 2);
}

// --- regexfilter ---------------------------------------------------------------------------

/// Fixed-size records: filesrc with blocksize=4 reads one per buffer.
const RECORDS: &[u8] = b"ok1\nERR\nok2\nerr\n";

#[test]
fn regexfilter_passes_matches_and_invert_the_rest() {
    let dir = tmp();
    let f = file(dir.path(), "log", RECORDS);
    let src = format!("filesrc {} blocksize=4", prop("location", &f));
    assert_eq!(
        stdout_of(&format!("{src} ! regexfilter pattern=ERR ! fdsink")),
        b"ERR\n"
    );
    assert_eq!(
        stdout_of(&format!("{src} ! regexfilter pattern=(?i)^err ! fdsink")),
        b"ERR\nerr\n"
    );
    assert_eq!(
        stdout_of(&format!(
            "{src} ! regexfilter pattern=ERR invert=true ! fdsink"
        )),
        b"ok1\nok2\nerr\n"
    );
    // A user field the buffers do not have never matches.
    assert_eq!(
        stdout_of(&format!(
            "{src} ! regexfilter pattern=. field=kind ! fdsink"
        )),
        b""
    );
}

#[test]
fn regexfilter_bad_pattern_is_a_caret_where_it_fails() {
    let err = refused_at("fakesrc ! regexfilter pattern='ok(x' ! fakesink", "(");
    assert!(err.contains("unclosed group"), "{err}");
    refused_at("fakesrc ! regexfilter pattern='a[z-a]' ! fakesink", "z-a");
}

// --- samplefilter, duplicatefilter, rangefilter --------------------------------------------

#[test]
fn samplefilter_every_first_and_seeded_probability() {
    let s = with_stats("testsrc num-buffers=100 ! samplefilter every=7 ! fakesink");
    assert_eq!(count(&s, "fakesink0", "buffers"), 15);
    let s = with_stats("testsrc num-buffers=100 ! samplefilter every=2 first=5 ! fakesink");
    assert_eq!(count(&s, "fakesink0", "buffers"), 5);
    let s = with_stats("testsrc num-buffers=100 ! samplefilter first=0 ! fakesink");
    assert_eq!(count(&s, "fakesink0", "buffers"), 0);
    let sampled = |seed: u32| {
        stdout_of(&format!(
            "testsrc num-buffers=300 blocksize=1 ! samplefilter probability=0.5 seed={seed} ! consolesink format=json"
        ))
    };
    let a = sampled(7);
    assert_eq!(a, sampled(7), "the same seed passes the same buffers");
    assert_ne!(a, sampled(8));
    let n = a.iter().filter(|&&b| b == b'\n').count();
    assert!((100..200).contains(&n), "{n} of 300 passed at 0.5");
}

#[test]
fn duplicatefilter_drops_repeats_within_its_window() {
    let dir = tmp();
    let f = file(dir.path(), "in", b"aaaabbaaccaa");
    let src = format!("filesrc {} blocksize=2", prop("location", &f));
    assert_eq!(
        stdout_of(&format!("{src} ! duplicatefilter ! fdsink")),
        b"aabbaaccaa"
    );
    assert_eq!(
        stdout_of(&format!("{src} ! duplicatefilter window=3 ! fdsink")),
        b"aabbcc"
    );
    // Empty buffers are all the same content.
    let s = with_stats("fakesrc num-buffers=10 ! duplicatefilter ! fakesink");
    assert_eq!(count(&s, "fakesink0", "buffers"), 1);
}

#[test]
fn rangefilter_bounds_are_inclusive() {
    let s =
        with_stats("testsrc num-buffers=10 ! rangefilter sequence-min=3 sequence-max=5 ! fakesink");
    assert_eq!(count(&s, "fakesink0", "buffers"), 3);
    let out = stdout_of(
        "fakesrc num-buffers=300 sizetype=random sizemin=0 sizemax=6 filltype=zero ! rangefilter min-size=2 max-size=4 ! consolesink format=json",
    );
    let sizes: Vec<u64> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["size"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(sizes.iter().all(|s| (2..=4).contains(s)), "{sizes:?}");
    assert!(
        sizes.contains(&2) && sizes.contains(&4),
        "both bounds pass: {sizes:?}"
    );
    let out = run_expecting(
        launch(&[
            "-q",
            "fakesrc ! rangefilter min-size=5 max-size=4 ! fakesink",
        ]),
        2,
    );
    assert!(
        stderr(&out).contains("rangefilter0: property `min-size`"),
        "{}",
        stderr(&out)
    );
}

// --- buffer operations ---------------------------------------------------------------------

#[test]
fn trim_slice_and_pad_each_buffer() {
    let dir = tmp();
    let f = file(dir.path(), "in", b"abcdefgh");
    let src = format!("filesrc {} blocksize=4", prop("location", &f));
    assert_eq!(
        stdout_of(&format!("{src} ! buffertrim max-size=3 ! fdsink")),
        b"abcefg"
    );
    assert_eq!(
        stdout_of(&format!("{src} ! bufferslice offset=1 length=2 ! fdsink")),
        b"bcfg"
    );
    assert_eq!(
        stdout_of(&format!("{src} ! bufferslice offset=9 ! fdsink")),
        b""
    );
    assert_eq!(
        stdout_of(&format!(
            "{src} ! buffertrim max-size=2 ! bufferpad min-size=3 fill=46 ! fdsink"
        )),
        b"ab.ef."
    );
    // The slice's offset metadata names the first byte kept.
    let out = stdout_of(&format!(
        "{src} ! bufferslice offset=1 ! consolesink format=json"
    ));
    let offsets: Vec<u64> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["offset"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(offsets, [1, 5]);
}

#[test]
fn buffer_operations_run_isolated_with_the_same_output() {
    let dir = tmp();
    let f = file(dir.path(), "in", &random_bytes(10_000, 3));
    let src = format!("filesrc {} blocksize=1000", prop("location", &f));
    for op in [
        "bufferslice offset=10 length=500",
        "bufferpad min-size=1500 fill=7",
        "regexfilter pattern=(?-u)\\xff",
    ] {
        let here = stdout_of(&format!("{src} ! {op} ! fdsink"));
        let apart = stdout_of(&format!("{src} ! {op} exec=isolated ! fdsink"));
        assert!(!here.is_empty(), "{op}");
        assert!(
            here == apart,
            "{op}: {} vs {} bytes",
            here.len(),
            apart.len()
        );
    }
}

// --- every element of this family on edge-case streams -------------------------------------

const ELEMENTS: &[&str] = &[
    "filter expr='size >= 0'",
    "regexfilter pattern=x invert=true",
    "samplefilter",
    "duplicatefilter",
    "rangefilter",
    "buffertrim max-size=1",
    "bufferslice offset=1",
    "bufferpad",
    "ratelimiter bytes-per-second=1M",
    "throttle",
];

#[test]
fn each_element_passes_empty_buffers_and_an_empty_stream() {
    for el in ELEMENTS {
        let s = with_stats(&format!("fakesrc num-buffers=5 ! {el} ! fakesink"));
        let passed = count(&s, "fakesink0", "buffers");
        // duplicatefilter keeps one of five identical (empty) buffers.
        let want = if el.starts_with("duplicatefilter") {
            1
        } else {
            5
        };
        assert_eq!(passed, want, "{el}");
        let s = with_stats(&format!("datasrc num-buffers=0 ! {el} ! consolesink"));
        assert_eq!(count(&s, "consolesink0", "buffers"), 0, "{el}");
    }
}

#[test]
fn bad_values_are_exit_2_naming_element_and_property() {
    for (desc, prop) in [
        ("samplefilter every=0", "every"),
        ("samplefilter probability=1.5", "probability"),
        ("bufferpad fill=256", "fill"),
        ("bufferslice length=-2", "length"),
        ("throttle buffers-per-second=-1", "buffers-per-second"),
        ("ratelimiter bytes-per-second=fast", "bytes-per-second"),
        ("duplicatefilter window=0", "window"),
        ("regexfilter pattern=a invert=maybe", "invert"),
    ] {
        let out = run_expecting(launch(&["-q", &format!("fakesrc ! {desc} ! fakesink")]), 2);
        let err = stderr(&out);
        let element = desc.split(' ').next().unwrap();
        assert!(
            err.contains(&format!("{element}: property `{prop}`")),
            "{desc}: {err}"
        );
    }
    let out = run_expecting(launch(&["-q", "fakesrc ! consolesink format=xml"]), 2);
    assert!(
        stderr(&out).contains("property `format`"),
        "{}",
        stderr(&out)
    );
}

// --- rate control --------------------------------------------------------------------------

#[test]
fn throttle_drops_the_excess_and_counts_it() {
    let s = with_stats("fakesrc num-buffers=1000 ! throttle buffers-per-second=10 ! fakesink");
    let passed = count(&s, "fakesink0", "buffers");
    let dropped = count(&s, "throttle0", "dropped");
    assert_eq!(passed + dropped, 1000);
    assert!(passed >= 10, "a second's worth passes at once: {passed}");
    assert!(dropped > 0);
}

#[test]
fn ratelimiter_delivers_everything_and_waits_for_it() {
    let started = Instant::now();
    let s =
        with_stats("datasrc data=abc num-buffers=6 ! ratelimiter buffers-per-second=20 ! fakesink");
    assert_eq!(count(&s, "fakesink0", "buffers"), 6);
    assert_eq!(count(&s, "fakesink0", "bytes"), 18);
    // Five gaps of 50 ms at least; no upper bound (the machine may be slow).
    assert!(started.elapsed() >= Duration::from_millis(200));
    let s = with_stats(
        "testsrc num-buffers=4 blocksize=100 ! ratelimiter bytes-per-second=2000 ! fakesink",
    );
    assert_eq!(count(&s, "fakesink0", "bytes"), 400);
}

#[test]
fn ratelimiter_ends_promptly_at_ctrl_c() {
    let mut child = spawn_piped(&[
        "-q",
        "datasrc data=x num-buffers=-1 ! ratelimiter buffers-per-second=0.5 ! consolesink",
    ]);
    // The first buffer passes at once: once it is out, the run is under way.
    let mut first = [0u8; 2];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    assert_eq!(&first, b"x\n");
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::INT,
    )
    .unwrap();
    // The watchdog fails the test if the 2 s waits are not cut short.
    let out = wait(child);
    assert_eq!(code(&out), 130, "{}", stderr(&out));
}

#[test]
fn inspect_documents_the_filter_language() {
    let mut cmd = std::process::Command::new(inspect_bin());
    cmd.arg("filter");
    let out = run_expecting(cmd, 0);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("expr") && text.contains("CEL"), "{text}");
    assert!(text.contains("on-error"), "{text}");
}
