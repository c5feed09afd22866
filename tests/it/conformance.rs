//! One suite for every element: it reads the registry through `parallax-inspect --json` and holds
//! every factory to the same checks, so a new element gets them by being registered.
//!
//! - its card is complete: a summary, a doc, every property documented, every enum value
//!   explained, every default one the property accepts;
//! - every bad value of a typed property is exit 2 naming the element and the property;
//! - with its defaults (plus a value for each required property) the description validates;
//! - a one-in-one-out element passes end of stream, survives an empty stream and zero-length
//!   buffers, and gives the same bytes and metadata run in a worker process (`exec=isolated`)
//!   as in the pipeline's own thread.
//!
//! The only tables here say what value a required property takes and which elements' output
//! depends on the clock or on chance (so two runs cannot be compared byte for byte).

use super::support::*;

fn inspect_json(args: &[&str]) -> serde_json::Value {
    let mut cmd = std::process::Command::new(inspect_bin());
    cmd.arg("--json").args(args);
    let out = run(cmd);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every element's card, read once per test binary.
fn cards() -> Vec<serde_json::Value> {
    static CARDS: std::sync::OnceLock<Vec<serde_json::Value>> = std::sync::OnceLock::new();
    CARDS
        .get_or_init(|| {
            let list = inspect_json(&[]);
            list["elements"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| inspect_json(&[e["name"].as_str().unwrap()]))
                .collect()
        })
        .clone()
}

/// A value for a required property, by property name; `dir` holds any file it names.
fn required_value(element: &str, prop: &str, dir: &std::path::Path) -> String {
    match prop {
        "location" => file(dir, "input", &random_bytes(10_000, 9))
            .display()
            .to_string(),
        "socket-path" => dir.join("sock").display().to_string(),
        "delay" => "1000".into(),
        "pattern" => "a".into(),
        "expr" => "'size >= 0'".into(),
        "key-expr" => "parallax/conformance".into(),
        // A WAV file of one second of silence: something uridecodebin decodes.
        "uri" => {
            let mut wav = b"RIFF".to_vec();
            wav.extend_from_slice(&(36u32 + 16_000).to_le_bytes());
            wav.extend_from_slice(b"WAVEfmt \x10\0\0\0\x01\0\x01\0");
            wav.extend_from_slice(&8000u32.to_le_bytes());
            wav.extend_from_slice(&16_000u32.to_le_bytes());
            wav.extend_from_slice(b"\x02\0\x10\0data");
            wav.extend_from_slice(&16_000u32.to_le_bytes());
            wav.resize(wav.len() + 16_000, 0);
            format!("file://{}", file(dir, "input.wav", &wav).display())
        }
        other => panic!(
            "{element}.{other} is required: give the conformance suite a value for it in \
             required_value()"
        ),
    }
}

/// Codecs whose input must be what their caps say, and why: other bytes are an error naming the
/// element (and an offset), never a crash. They get the empty streams only; `true` when the
/// suite's text file makes valid input too.
const CODED_INPUT: &[(&str, &str, bool)] = &[
    (
        "dav1ddec",
        "decodes AV1 only: other bytes are an error naming the byte offset",
        false,
    ),
    (
        "rav1enc",
        "a buffer shorter than one frame of its caps is an error",
        false,
    ),
    (
        "openh264enc",
        "a buffer shorter than one frame of its caps is an error",
        false,
    ),
    (
        "openh264dec",
        "decodes H.264 only: other bytes are an error naming the byte offset",
        false,
    ),
    (
        "h264parse",
        "bytes without a start code are an error naming the offset",
        false,
    ),
    (
        "streamdepay",
        "takes STRM frames only: other bytes are an error naming the byte",
        false,
    ),
    (
        "typefind",
        "bytes of no known type are an error, as gst's `Could not determine type of stream`",
        false,
    ),
];

fn takes_text(name: &str) -> bool {
    CODED_INPUT
        .iter()
        .find(|(n, ..)| *n == name)
        .is_none_or(|c| c.2)
}

/// Elements whose output depends on the clock or on chance, and why: their isolated run is
/// not compared byte for byte with the threaded one.
const NOT_REPEATABLE: &[(&str, &str)] = &[
    ("timestamper", "stamps the time of day or the running time"),
    (
        "timeout",
        "emits when the input is silent, which depends on scheduling",
    ),
    ("debounce", "what passes depends on gaps between buffers"),
    (
        "delay",
        "moves pts by its delay, but passes buffers as they come due",
    ),
    (
        "throttle",
        "what passes depends on the rate buffers arrive at",
    ),
    (
        "identity",
        "without a seed, drop-probability and datarate depend on chance and time",
    ),
    (
        "samplefilter",
        "probability without a seed depends on chance",
    ),
    (
        "batch",
        "a batch's timeout depends on timing (none by default, but its size may)",
    ),
    (
        "metadataextract",
        "writes its own lines to stdout, interleaved with fdsink's in an order two processes do \
         not fix",
    ),
];

#[test]
fn every_card_is_complete() {
    for card in cards() {
        let name = card["name"].as_str().unwrap();
        assert!(
            !card["summary"].as_str().unwrap_or("").is_empty(),
            "{name}: no summary"
        );
        assert!(
            !card["doc"].as_str().unwrap_or("").is_empty(),
            "{name}: no doc"
        );
        for p in card["properties"].as_array().unwrap() {
            let prop = p["name"].as_str().unwrap();
            assert!(
                !p["doc"].as_str().unwrap_or("").trim().is_empty(),
                "{name}.{prop}: undocumented"
            );
            if p["effect"] == "ignored" {
                assert!(
                    !p["ignored_because"].as_str().unwrap_or("").is_empty(),
                    "{name}.{prop}: ignored without a reason"
                );
            }
            if let Some(values) = p["values"].as_array() {
                assert!(!values.is_empty(), "{name}.{prop}: an enum with no values");
                for v in values {
                    assert!(
                        !v["doc"].as_str().unwrap_or("").is_empty(),
                        "{name}.{prop}={}: value not explained",
                        v["nick"]
                    );
                }
                let default = p["default"].as_str().unwrap();
                assert!(
                    values.iter().any(|v| v["nick"] == default),
                    "{name}.{prop}: default {default} is not one of its values"
                );
            }
            if let (Some(min), Some(max), Some(default)) = (
                p["min"].as_f64(),
                p["max"].as_f64(),
                p["default"].as_str().and_then(|d| d.parse::<f64>().ok()),
            ) {
                assert!(
                    (min..=max).contains(&default),
                    "{name}.{prop}: default {default} outside {min}..={max}"
                );
            }
        }
    }
}

/// A description that uses `name` once, with `props`, linked as its pads need.
/// Caps to put before an element whose sink pad takes typed streams only (raw audio, video):
/// its template fixed, as a quoted caps item and a `!`; nothing for a byte-stream element.
/// Elements that read a format of their own, and the element in front of them that makes it
/// out of any bytes (so that the suite's inputs reach them as that format).
const INPUT_MADE_BY: &[(&str, &str)] = &[
    ("streamdepay", "streampay"),
    ("wavparse", "'audio/x-raw, format=(string)U8, layout=(string)interleaved, rate=(int)8000, channels=(int)1' ! wavenc"),
    // The type of what it decodes must be known before the run: caps say it.
    ("decodebin", "audio/x-wav"),
];

/// What goes in front of the element: the maker of its input format, or a capsfilter with its
/// sink caps fixed, or nothing for an element that takes any bytes.
fn typed(card: &serde_json::Value) -> String {
    let name = card["name"].as_str().unwrap();
    if let Some((_, maker)) = INPUT_MADE_BY.iter().find(|(n, _)| *n == name) {
        return format!("{maker} ! ");
    }
    let pads = card["pads"].as_array().unwrap();
    let Some(sink) = pads.iter().find(|p| p["direction"] == "sink") else {
        return String::new();
    };
    let caps = parallax::caps::Caps::parse(sink["caps"].as_str().unwrap()).unwrap();
    if caps.is_any() {
        String::new()
    } else {
        format!("'{}' ! ", caps.fixate())
    }
}

fn around(card: &serde_json::Value, props: &str) -> Option<String> {
    let name = card["name"].as_str().unwrap();
    let pads = card["pads"].as_array().unwrap();
    let has = |dir: &str| pads.iter().find(|p| p["direction"] == dir);
    let el = format!("{name} name=x {props}");
    let caps = typed(card);
    Some(match (has("sink"), has("src")) {
        (None, Some(_)) => format!("{el} ! fakesink"),
        (Some(_), None) => format!("fakesrc num-buffers=0 ! {caps}{el}"),
        (Some(sink), Some(src)) if sink["presence"] == "always" && src["presence"] == "always" => {
            format!("fakesrc num-buffers=0 ! {caps}{el} ! fakesink")
        }
        (Some(sink), Some(src)) => {
            let into = if sink["presence"] == "request" {
                "x.sink_0"
            } else {
                "x."
            };
            let from = if src["presence"] == "request" {
                "x.src_0"
            } else {
                "x."
            };
            format!("fakesrc num-buffers=0 ! {caps}{into} {el} {from} ! fakesink")
        }
        (None, None) => return None,
    })
}

fn required_props(card: &serde_json::Value, dir: &std::path::Path) -> String {
    let name = card["name"].as_str().unwrap();
    card["properties"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["required"] == true)
        .map(|p| {
            let prop = p["name"].as_str().unwrap();
            format!("{prop}={}", required_value(name, prop, dir))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Elements that validate only with a real file of their format in front of them, and why
/// (`tests/it/containers.rs` covers them on real files).
const NEEDS_A_FILE: &[(&str, &str)] = &[
    (
        "qtdemux",
        "its pads are the file's tracks, read when the description is validated",
    ),
    (
        "tsdemux",
        "its pads are the program's streams, read when the description is validated",
    ),
];

#[test]
fn every_element_validates_with_its_defaults_and_says_what_it_needs() {
    let dir = tmp();
    for card in cards() {
        let name = card["name"].as_str().unwrap();
        if NEEDS_A_FILE.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let needs = required_props(&card, dir.path());
        let Some(desc) = around(&card, &needs) else {
            continue;
        };
        let out = run(launch(&["--validate", &desc]));
        assert_eq!(code(&out), 0, "{name}: `{desc}`: {}", stderr(&out));
        if !needs.is_empty() {
            // Without them: exit 2 naming the property.
            let desc = around(&card, "").unwrap();
            let out = run(launch(&["--validate", &desc]));
            let first = needs.split('=').next().unwrap();
            assert_eq!(code(&out), 2, "{name} without {first}: {}", stderr(&out));
            assert!(stderr(&out).contains(first), "{name}: {}", stderr(&out));
        }
    }
}

#[test]
fn every_bad_property_value_is_a_description_error_naming_both() {
    let dir = tmp();
    for card in cards() {
        let name = card["name"].as_str().unwrap();
        let needs = required_props(&card, dir.path());
        for p in card["properties"].as_array().unwrap() {
            let prop = p["name"].as_str().unwrap();
            let bad = match p["type"].as_str().unwrap() {
                "int" | "uint" | "float" | "time" => "not-a-number",
                "bool" => "maybe",
                "enum" => "no-such-value",
                _ => continue,
            };
            if p["effect"] == "read-only" {
                continue;
            }
            let Some(desc) = around(&card, &format!("{needs} {prop}={bad}")) else {
                continue;
            };
            let out = run(launch(&["--validate", &desc]));
            assert_eq!(code(&out), 2, "{name}.{prop}={bad}: {}", stderr(&out));
            // The instance is named x: the message names it and the property.
            let err = stderr(&out);
            assert!(
                err.contains(&format!("x: property `{prop}`")),
                "{name}.{prop}={bad}: {err}"
            );
        }
    }
}

/// The one-in-one-out elements that run on threads (what `exec=isolated` can take).
fn filters() -> Vec<serde_json::Value> {
    cards()
        .into_iter()
        .filter(|c| {
            let pads = c["pads"].as_array().unwrap();
            pads.len() == 2
                && pads.iter().all(|p| p["presence"] == "always")
                && c["exec"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|v| v == "isolated"))
        })
        .collect()
}

#[test]
fn the_suite_sees_every_kind_of_element() {
    let names: Vec<String> = filters()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    for expected in ["identity", "valve", "buffersplit", "chunk"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
    assert!(cards().len() >= 39, "{}", cards().len());
}

/// Whether the element decodes bytes from outside (its hints say semi-trusted): text lines are
/// not an image or a sound to it.
fn decodes(card: &serde_json::Value) -> bool {
    card["hints"]["trust"] == "semi-trusted"
}

/// A run of `card` on bytes (`bytes`) or on nothing: exit 0, except that a decoder refuses
/// bytes that are not of its format with exit 1 and an error naming itself and the byte.
fn expect_decoded(card: &serde_json::Value, bytes: bool, desc: &str, out: &std::process::Output) {
    if decodes(card) && bytes {
        assert_eq!(code(out), 1, "`{desc}`: {}", stderr(out));
        assert!(
            stderr(out).contains("(at byte "),
            "`{desc}`: {}",
            stderr(out)
        );
    } else {
        assert_eq!(code(out), 0, "`{desc}`: {}", stderr(out));
    }
}

#[test]
fn every_filter_passes_eos_an_empty_stream_and_zero_length_buffers() {
    let dir = tmp();
    for card in filters() {
        let name = card["name"].as_str().unwrap();
        let needs = required_props(&card, dir.path());
        for src in [
            "fakesrc num-buffers=0",
            "fakesrc num-buffers=5 sizetype=empty",
            "fakesrc num-buffers=5 sizetype=fixed sizemax=64 filltype=pattern",
        ] {
            if src.contains("pattern") && CODED_INPUT.iter().any(|(n, ..)| *n == name) {
                continue;
            }
            let desc = format!("{src} ! {}{name} {needs} ! fakesink", typed(&card));
            let out = run(launch(&["-q", &desc]));
            let bytes = src.contains("sizemax");
            expect_decoded(&card, bytes, &desc, &out);
        }
    }
}

/// 300 text lines of varied lengths, the input the filters are run on.
fn records_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut text = Vec::new();
    for i in 0..300 {
        text.extend_from_slice(format!("line {i} {}\n", "x".repeat(i % 37)).as_bytes());
    }
    file(dir, "records", &text)
}

#[test]
fn every_filter_gives_the_same_bytes_and_metadata_in_a_worker_process() {
    let dir = tmp();
    let input = records_file(dir.path());
    for card in filters() {
        let name = card["name"].as_str().unwrap();
        if NOT_REPEATABLE.iter().any(|(n, _)| *n == name) || !takes_text(name) {
            continue;
        }
        let needs = required_props(&card, dir.path());
        let run_with = |exec: &str| {
            let desc = format!(
                "filesrc location={} blocksize=500 ! {}{name} name=x {needs} exec={exec} ! \
                 identity name=after ! fdsink",
                input.display(),
                typed(&card)
            );
            let out = run(launch(&["-q", "--tap=after", "--tap-format=json", &desc]));
            expect_decoded(&card, true, &desc, &out);
            let taps: Vec<String> = stderr(&out)
                .lines()
                .filter(|l| l.starts_with('{'))
                .map(str::to_owned)
                .collect();
            (out.stdout, taps)
        };
        let (threaded, threaded_meta) = run_with("auto");
        let (isolated, isolated_meta) = run_with("isolated");
        assert!(threaded == isolated, "{name}: bytes differ in a worker");
        assert_eq!(
            threaded_meta, isolated_meta,
            "{name}: metadata differs in a worker"
        );
    }
}

/// The sources and sinks that can run in a worker process, with what each needs to run by
/// itself here (`{dir}` is a scratch directory).
fn isolatable_ends(dir: &std::path::Path) -> Vec<String> {
    let input = file(dir, "ends-in", &random_bytes(20_000, 10));
    let mut lines = Vec::new();
    for card in cards() {
        let name = card["name"].as_str().unwrap();
        let pads = card["pads"].as_array().unwrap();
        let isolatable = card["exec"]
            .as_array()
            .is_some_and(|e| e.iter().any(|v| v == "isolated"));
        if !isolatable || pads.len() != 1 {
            continue;
        }
        let source = pads[0]["direction"] == "src";
        let line = match (name, source) {
            // Needs a producer of its own: covered by the shm tests, untrusted too.
            ("shmsrc", _) => continue,
            ("filesrc", _) => format!("filesrc location={} trust=untrusted", input.display()),
            ("fdsrc", _) => "fdsrc fd=0 trust=untrusted".to_owned(),
            (_, true) => format!("{name} num-buffers=5 trust=untrusted"),
            ("filesink", _) => format!(
                "filesink location={} trust=untrusted",
                dir.join("ends-out").display()
            ),
            ("shmsink", _) => format!(
                "shmsink socket-path={} wait-for-connection=false trust=untrusted",
                dir.join("ends-sock").display()
            ),
            (_, false) => format!("{name} trust=untrusted"),
        };
        lines.push(if source {
            format!("{line} ! fakesink")
        } else {
            format!(
                "filesrc location={} blocksize=1000 ! {line}",
                input.display()
            )
        });
    }
    lines
}

#[test]
fn every_isolatable_element_runs_untrusted_in_the_sandbox() {
    // Untrusted code runs under the seccomp allowlist: every element that can be isolated
    // must still do its job there (and nothing else), sources and sinks too.
    let dir = tmp();
    let input = records_file(dir.path());
    for card in filters() {
        let name = card["name"].as_str().unwrap();
        if !takes_text(name) {
            continue;
        }
        let needs = required_props(&card, dir.path());
        let caps = typed(&card);
        let run_with = |trust: &str| {
            let desc = format!(
                "filesrc location={} blocksize=500 ! {caps}{name} {needs} {trust} ! fdsink",
                input.display()
            );
            let out = run(launch(&["-q", &desc]));
            expect_decoded(&card, true, &desc, &out);
            out.stdout
        };
        let trusted = run_with("");
        let sandboxed = run_with("trust=untrusted");
        if !NOT_REPEATABLE.iter().any(|(n, _)| *n == name) {
            assert!(trusted == sandboxed, "{name}: bytes differ in the sandbox");
        }
    }
    let ends = isolatable_ends(dir.path());
    assert!(ends.len() >= 9, "{ends:?}");
    for line in ends {
        let mut cmd = launch(&["-q", &line]);
        cmd.stdin(std::process::Stdio::null());
        let out = run(cmd);
        assert_eq!(code(&out), 0, "`{line}`: {}", stderr(&out));
    }
}
