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

#[test]
fn json_listing_and_card_follow_schema_1() {
    let out = inspect(&["--json"]);
    assert_eq!(code(&out), 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], 1);
    let names: Vec<&str> = v["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"tee") && names.windows(2).all(|w| w[0] < w[1]),
        "{names:?}"
    );
    let out = inspect(&["--json", "queue"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "queue");
    let leaky = v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "leaky")
        .unwrap();
    assert_eq!(leaky["type"], "enum");
    assert_eq!(leaky["values"][2]["nick"], "downstream");
    let time = v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "max-size-time")
        .unwrap();
    assert_eq!(time["effect"], "ignored");
    assert!(time["ignored_because"].as_str().is_some());
    assert_eq!(v["pads"][0]["presence"], "always");
}

#[test]
fn types_filter_lists_one_class() {
    let out = inspect(&["-t", "source"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("filesrc") && !text.contains("filesink"),
        "{text}"
    );
    let out = inspect(&["--types=routing,flow", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = parallax::registry::all()
        .filter(|f| {
            matches!(
                f.klass,
                parallax::registry::Klass::Routing | parallax::registry::Klass::Flow
            )
        })
        .count();
    assert_eq!(v["elements"].as_array().unwrap().len(), want);
    assert!(want >= 4, "queue, valve, tee and funnel at least");
}
