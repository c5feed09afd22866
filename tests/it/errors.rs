//! Every error class: its message, its caret, its exit code, and that nothing was written.

use super::support::*;

/// Runs `desc` (one word) and checks exit code and stderr fragments.
fn fails(desc: &str, exit: i32, fragments: &[&str]) -> String {
    let out = run(launch(&[desc]));
    let err = stderr(&out);
    assert_eq!(code(&out), exit, "`{desc}`\n{err}");
    for f in fragments {
        assert!(err.contains(f), "`{desc}`: stderr lacks {f:?}:\n{err}");
    }
    assert!(out.stdout.is_empty(), "`{desc}` wrote to stdout");
    assert!(!err.contains("panicked at"), "`{desc}` panicked:\n{err}");
    err
}

#[test]
fn parse_errors_show_a_caret_under_the_word() {
    let err = fails(
        "fakesrc ! ! fakesink",
        2,
        &["expected an element", "after `!`"],
    );
    assert!(
        err.contains("  fakesrc ! ! fakesink\n            ^\n"),
        "{err}"
    );
    fails("fakesrc !", 2, &["found end of description"]);
    fails(
        "filesrc location=\"unterminated ! fakesink",
        2,
        &["closing `\"`"],
    );
    fails(
        "fakesrc ! ( identity ! fakesink",
        2,
        &["`)` to close the bin"],
    );
    fails("fakesrc num-buffers= ! fakesink", 2, &["a value after `=`"]);
}

#[test]
fn unknown_element_and_property_suggest_names() {
    let err = fails(
        "fakesrc ! filesnk location=x",
        2,
        &["no element `filesnk`", "did you mean `filesink`?"],
    );
    assert!(err.contains("          ^^^^^^^\n"), "{err}");
    fails(
        "filesrc locaton=/x ! fakesink",
        2,
        &["filesrc: no property `locaton`", "did you mean `location`?"],
    );
    fails(
        "filesrc location in.bin ! fakesink",
        2,
        &["property `location` must be set", "write `location=VALUE`"],
    );
    fails(
        "fakesrc num-buffers ten ! fakesink",
        2,
        &["no element `num-buffers`", "is a property of fakesrc"],
    );
    fails(
        "fakesrc ! nonsenseelement",
        2,
        &["no element `nonsenseelement`", "parallax-inspect"],
    );
}

#[test]
fn bad_values_name_element_property_value_and_type() {
    fails(
        "fakesrc ! valve drop=maybe ! fakesink",
        2,
        &["valve: property `drop`: expected true or false, got `maybe`"],
    );
    fails(
        "fakesrc num-buffers=lots ! fakesink",
        2,
        &[
            "fakesrc: property `num-buffers`: expected an integer",
            "got `lots`",
        ],
    );
    fails(
        "fakesrc sizetype=huge ! fakesink",
        2,
        &["property `sizetype`: expected one of empty, fixed, random, got `huge`"],
    );
    fails(
        "filesrc location=/x blocksize=-5 ! fakesink",
        2,
        &["property `blocksize`"],
    );
    fails(
        "fakesrc ! queue max-size-time=soon ! fakesink",
        2,
        &["expected a time"],
    );
    fails(
        "fakesrc ! identity drop-probability=2 ! fakesink",
        2,
        &["value 2 is out of range 0..=1"],
    );
    fails(
        "fakesrc ! queue current-level-buffers=3 ! fakesink",
        2,
        &["is read-only"],
    );
}

#[test]
fn structural_errors() {
    fails("fakesrc ! x.", 2, &["no element named `x`"]);
    fails(
        "fakesrc name=src ! fakesink srd. ! fakesink",
        2,
        &["no element named `srd`", "did you mean `src.`?"],
    );
    fails("fakesrc", 2, &["the src pad of `fakesrc0` is not linked"]);
    fails(
        "fakesrc ! identity",
        2,
        &["the src pad of `identity0` is not linked"],
    );
    fails(
        "fakesink",
        2,
        &["the sink pad of `fakesink0` is not linked"],
    );
    fails(
        "fakesrc ! funnel name=f ! identity ! f.",
        2,
        &["would make a cycle"],
    );
    fails(
        "fakesrc name=a ! fakesink a. ! fakesink",
        2,
        &["pad `a.src` is linked twice", "tee"],
    );
    fails("fakesrc ! tee name=t", 2, &["`t` has no src pad linked"]);
    fails(
        "fakesrc ! tee name=t t.sink ! fakesink",
        2,
        &["no src pad `sink`"],
    );
    fails("fakesink ! fakesrc", 2, &["has no src pad"]);
    fails(
        "fakesrc name=a ! fakesink name=a",
        2,
        &["two elements are named `a`"],
    );
    fails(
        "filesink",
        2,
        &["filesink: property `location` must be set"],
    );
    fails(
        "fakesrc ! http://example.com/x",
        2,
        &["no element handles `http://` URIs"],
    );
    fails("  ", 2, &["the pipeline description is empty"]);
}

#[test]
fn description_errors_create_no_files() {
    let dir = tmp();
    let output = dir.path().join("never.bin");
    let desc = format!(
        "fakesrc num-buffers=1 ! valve drop=maybe ! filesink location={}",
        output.display()
    );
    fails(&desc, 2, &["drop"]);
    assert!(
        !output.exists(),
        "a description error created the output file"
    );
}

#[test]
fn a_missing_input_fails_before_the_output_is_created() {
    let dir = tmp();
    let output = dir.path().join("out.bin");
    let desc = format!(
        "filesrc location={}/missing.bin ! filesink location={}",
        dir.path().display(),
        output.display()
    );
    fails(
        &desc,
        1,
        &[
            "filesrc0: cannot open",
            "missing.bin for reading",
            "No such file or directory",
        ],
    );
    assert!(
        !output.exists(),
        "the output was created although the input is missing"
    );
}

#[test]
fn runtime_errors_name_the_element() {
    fails(
        "fakesrc ! identity error-after=3 ! fakesink",
        1,
        &["identity0: error-after=3 reached"],
    );
    fails(
        "fakesrc ! identity name=boom panic-after=2 ! fakesink",
        1,
        &["boom: element panicked: panic-after=2 reached"],
    );
    fails(
        "fakesrc ! tee name=t ! queue ! identity name=q panic-after=5 ! fakesink t. ! queue ! fakesink",
        1,
        &["q: element panicked"],
    );
    fails("filesrc location=/ ! fakesink", 1, &["is a directory"]);
    fails("fdsrc fd=999 ! fakesink", 1, &["fd 999 is not open"]);
}

#[test]
fn a_full_disk_is_an_error_that_says_so() {
    fails(
        "fakesrc num-buffers=10 sizetype=fixed sizemax=100000 ! filesink location=/dev/full",
        1,
        &["filesink0: writing /dev/full", "No space left on device"],
    );
    // Small buffers sit in the gathering buffer until end of stream: still an error.
    fails(
        "fakesrc num-buffers=3 sizetype=fixed sizemax=10 ! filesink location=/dev/full",
        1,
        &["No space left on device"],
    );
    // A mapped file's buffers, small and large: /dev/full is no regular file, so they are
    // written (not copied by the kernel), and fail the same way.
    let dir = tmp();
    let input = file(dir.path(), "in.bin", &random_bytes(300_000, 1));
    for bs in ["blocksize=100", "blocksize=131072"] {
        fails(
            &format!(
                "filesrc location={} {bs} ! filesink location=/dev/full",
                input.display()
            ),
            1,
            &["filesink0: writing /dev/full", "No space left on device"],
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let out = run(launch(&[]));
    assert_eq!(code(&out), 2);
    let out = run(launch(&["--no-such-flag", "fakesrc ! fakesink"]));
    assert_eq!(code(&out), 2);
    let out = run(launch(&["--version"]));
    assert_eq!(code(&out), 0);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("parallax-launch "));
}

#[test]
fn deep_nesting_is_refused_cleanly() {
    let deep = format!(
        "{}fakesrc ! fakesink{}",
        "( ".repeat(5000),
        " )".repeat(5000)
    );
    fails(&deep, 2, &["at most 32 nested bins"]);
    let ok = format!(
        "{}fakesrc num-buffers=1 ! fakesink{}",
        "( ".repeat(30),
        " )".repeat(30)
    );
    let out = run(launch(&["-q", &ok]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// Runs `desc` (reading `in.bin` of `len` random bytes), truncates the file to `keep` bytes once
/// the first output arrived, and returns the run's output.
fn truncate_under(desc: &str, len: usize, keep: u64) -> std::process::Output {
    use std::io::Read;
    let dir = tmp();
    let f = file(dir.path(), "in.bin", &random_bytes(len, 3));
    let mut child = spawn_piped(&[&desc.replace("IN", &f.display().to_string())]);
    let mut stdout = child.stdout.take().unwrap();
    let mut first = vec![0u8; 4096];
    stdout.read_exact(&mut first).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(keep)
        .unwrap();
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    wait(child)
}

#[test]
fn a_file_truncated_while_filesrc_maps_it_is_an_error_not_a_crash() {
    // The sink is blocked writing its dump into the full pipe, in the middle of a buffer that
    // points into the file's mapping, when the file is truncated.
    let out = truncate_under(
        "filesrc location=IN blocksize=65536 ! fakesink dump=true",
        8 << 20,
        0,
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("in.bin was truncated while being read"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_file_truncated_between_windows_is_an_error_too() {
    // fdsink writes straight from the mapping; the first window's buffers are all written
    // before the pipe blocks the second window's.
    let out = truncate_under("filesrc location=IN ! fdsink fd=1", 16 << 20, 4096);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("in.bin was truncated while being read")
            || err.contains("its source file was truncated while being read"),
        "{err}"
    );
}

#[test]
fn a_file_truncated_while_filesink_copies_it_in_the_kernel_is_an_error_too() {
    // The tee renders filesink's branch (src_0) first, then fdsink's, which blocks on the full pipe
    // until the test reads: the file is truncated while the kernel copies are under way, and
    // the copy that reaches the new end (in the middle of a buffer) comes up short.
    for keep in [2 << 20, (2 << 20) + 1000] {
        let out = truncate_under(
            "filesrc location=IN blocksize=65536 ! tee name=t t. ! filesink location=IN.out \
             t. ! fdsink fd=1",
            16 << 20,
            keep,
        );
        let err = stderr(&out);
        assert_eq!(code(&out), 1, "{err}");
        assert!(
            err.contains("filesink0: writing ")
                && err.contains("in.bin was truncated while being read"),
            "{err}"
        );
    }
}
