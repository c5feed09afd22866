//! parallax-inspect: listing, cards, unknown names.

use std::process::Command;

use super::support::*;

fn inspect(args: &[&str]) -> std::process::Output {
    let mut c = Command::new(inspect_bin());
    c.args(args);
    run(c)
}

#[test]
fn lists_every_element_with_aliases() {
    let out = inspect(&[]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8(out.stdout).unwrap();
    for name in [
        "filesrc",
        "filesink",
        "fdsrc",
        "fdsink",
        "fakesrc",
        "fakesink",
        "identity",
        "queue",
        "tee",
        "funnel",
        "valve",
        "capsfilter",
        "testsrc",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{text}"
        );
    }
    assert!(text.contains("alias: nullsink"));
}

#[test]
fn a_card_shows_properties_and_ignored_ones_say_why() {
    let out = inspect(&["nullsink"]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("fakesink: "), "{text}");
    assert!(text.contains("num-buffers  int  default -1"), "{text}");
    assert!(
        text.contains("accepted and ignored: parallax has no pipeline clock"),
        "{text}"
    );
}

#[test]
fn unknown_elements_exit_1_with_a_suggestion() {
    let out = inspect(&["filesnk"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("did you mean `filesink`?"));
    assert_eq!(code(&inspect(&["--exists", "filesink"])), 0);
    assert_eq!(code(&inspect(&["--exists", "nope"])), 1);
}
