//! Property tests over random descriptions: parsing and validation never panic, and a
//! description that validates also runs (with sources bounded) without panicking.
//!
//! The long fuzz run is `PROPTEST_CASES=200000 cargo test --release --test it parser_fuzz`;
//! CI runs the default number of cases. Regressions found by fuzzing are listed at the end.

use proptest::prelude::*;

use parallax::graph::Graph;

/// Words that make up descriptions: real elements, properties, references and garbage.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("!".to_owned()),
        Just("fakesrc".to_owned()),
        Just("fakesink".to_owned()),
        Just("identity".to_owned()),
        Just("tee name=t".to_owned()),
        Just("t.".to_owned()),
        Just("t.src_3".to_owned()),
        Just("funnel name=f".to_owned()),
        Just("f.".to_owned()),
        Just("queue".to_owned()),
        Just("valve drop=true".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("bin.(".to_owned()),
        Just("video/x-raw,width=3".to_owned()),
        Just("num-buffers=2".to_owned()),
        Just("sizetype=fixed".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("=".to_owned()),
        Just("file:///dev/null".to_owned()),
        "[a-z.=!()\"'\\\\ ,/:_-]{0,12}",
        any::<String>(),
    ]
}

fn description() -> impl Strategy<Value = String> {
    proptest::collection::vec(word(), 0..24).prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn parsing_and_validation_never_panic(text in description()) {
        match Graph::from_description(&text) {
            Ok(g) => prop_assert!(g.dag.node_count() > 0),
            Err(d) => {
                prop_assert!(d.span.start <= text.len());
                let rendered = d.render(&text);
                prop_assert!(rendered.starts_with("error: "));
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(text in any::<String>()) {
        let _ = Graph::from_description(&text);
    }
}

/// Inputs that once broke the parser or renderer.
#[test]
fn fuzz_regressions() {
    for text in [
        "\u{0}",
        "é ! ü",
        "fakesrc location=\"é",
        "a=\u{1F600}",
        "(((",
        ")))",
        "t. t. t.",
        "fakesrc ! \"\"",
        "fakesrc ! ''",
        "\\",
        "fakesrc x=\\",
        "bin.(",
        "video/x-raw,a=",
        "f.sink_99999999999999999999999",
    ] {
        if let Err(d) = Graph::from_description(text) {
            let _ = d.render(text);
        }
    }
}
