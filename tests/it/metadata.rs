//! Buffer metadata: the metadata elements (`sequencenumber`, `timestamper`, `metadatainject`,
//! `metadataextract`, `metadatafilter`), what `--tap` and `fakesink silent=false` show, and
//! every field (user fields included) crossing each kind of boundary unchanged.

use std::path::Path;
use std::process::Stdio;

use serde_json::{json, Value};

use super::support::*;

/// `metadatainject` setting everything it can: a string with an escaped comma, a negative
/// integer, bytes and empty bytes.
const INJECT: &[&str] = &[
    "metadatainject",
    "stream-id=3",
    "duration=5ms",
    "offset=10",
    r"set=s=a\,b, n=(int)-9,b=(bytes)00ff,e=(bytes)",
];

/// The lines `metadataextract` wrote to `path`, parsed.
fn extracted(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Five 8-byte buffers with every metadata field set (pts and dts from the running time, a
/// wall-clock user field), extracted to `before`; the pipeline goes on after the last `!`.
fn stamped_source(before: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "-q",
        "fakesrc",
        "num-buffers=5",
        "sizetype=fixed",
        "sizemax=8",
        "filltype=pattern",
        "!",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(INJECT.iter().map(|s| s.to_string()));
    for stage in [
        "timestamper mode=pts",
        "timestamper mode=dts",
        "timestamper clock=realtime mode=field field=wall",
    ] {
        args.push("!".into());
        args.extend(stage.split(' ').map(str::to_owned));
    }
    args.extend([
        "!".into(),
        "metadataextract".into(),
        prop("location", before),
        "!".into(),
    ]);
    args
}

/// What every buffer of [`stamped_source`] must carry, besides its times.
#[track_caller]
fn assert_fully_stamped(lines: &[Value]) {
    assert_eq!(lines.len(), 5);
    for (i, l) in lines.iter().enumerate() {
        let i = i as u64;
        assert_eq!(l["sequence"], i);
        assert_eq!(l["size"], 8);
        assert_eq!(l["stream"], 3);
        assert_eq!(l["duration"], 5_000_000);
        assert_eq!(l["offset"], 10 + 8 * i);
        assert_eq!(l["offset_end"], 18 + 8 * i);
        assert!(l["pts"].is_u64() && l["dts"].is_u64(), "{l}");
        let fields = l["fields"].as_object().unwrap();
        let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
        assert_eq!(keys, ["b", "e", "n", "s", "wall"], "in key order");
        assert_eq!(fields["s"], "a,b");
        assert_eq!(fields["n"], -9);
        assert_eq!(fields["b"], json!({"bytes": "00ff"}));
        assert_eq!(fields["e"], json!({"bytes": ""}));
        assert!(fields["wall"].is_i64());
    }
}

#[test]
fn every_field_crosses_every_in_process_and_worker_boundary_unchanged() {
    for boundary in [
        "identity exec=isolated",
        "identity exec=rt",
        "identity exec=async",
        "queue",
        "queue ! identity exec=isolated ! queue ! identity exec=rt",
    ] {
        let dir = tmp();
        let (before, after) = (dir.path().join("before"), dir.path().join("after"));
        let mut args = stamped_source(&before);
        args.extend(boundary.split(' ').map(str::to_owned));
        args.extend([
            "!".into(),
            "metadataextract".into(),
            prop("location", &after),
            "!".into(),
            "fakesink".into(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_expecting(launch(&args), 0);
        let (before, after) = (extracted(&before), extracted(&after));
        assert_fully_stamped(&after);
        assert_eq!(before, after, "{boundary}");
    }
}

#[test]
fn fields_set_in_a_worker_process_come_back() {
    let run_inject = |exec: &str| {
        let dir = tmp();
        let out = dir.path().join("out");
        let mut args = vec!["-q", "fakesrc", "num-buffers=3", "!"];
        args.extend_from_slice(INJECT);
        args.push(exec);
        let loc = prop("location", &out);
        args.extend(["!", "metadataextract", &loc, "!", "fakesink"]);
        run_expecting(launch(&args), 0);
        extracted(&out)
    };
    let isolated = run_inject("exec=isolated");
    assert_eq!(isolated.len(), 3);
    assert_eq!(isolated[2]["fields"]["s"], "a,b");
    assert_eq!(isolated, run_inject("exec=auto"));
}

#[test]
fn every_field_crosses_shmsink_to_shmsrc_unchanged() {
    let dir = tmp();
    let sock = dir.path().join("s");
    let (before, after) = (dir.path().join("before"), dir.path().join("after"));
    let mut args = stamped_source(&before);
    args.extend(["shmsink".into(), prop("socket-path", &sock)]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let producer = launch(&args).stderr(Stdio::piped()).spawn().unwrap();
    // The socket exists once the producer is built; shmsink waits for its consumer.
    while !sock.exists() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    run_expecting(
        launch(&[
            "-q",
            "shmsrc",
            &prop("socket-path", &sock),
            "!",
            "metadataextract",
            &prop("location", &after),
            "!",
            "fakesink",
        ]),
        0,
    );
    let out = wait(producer);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (before, after) = (extracted(&before), extracted(&after));
    assert_fully_stamped(&after);
    assert_eq!(before, after);
}

#[test]
fn a_worker_that_sends_a_field_twice_is_cut_off() {
    let mut cmd = launch(&[
        "fakesrc",
        "num-buffers=3",
        "!",
        "identity",
        "exec=isolated",
        "!",
        "fakesink",
    ]);
    cmd.env("PARALLAX_WORKER_FAULT", "bad-fields");
    let out = run_expecting(cmd, 1);
    let err = stderr(&out);
    assert!(err.contains("identity0: worker process"), "{err}");
    assert!(
        err.contains("the metadata field \"k\" appears twice"),
        "{err}"
    );
}

#[test]
fn fields_too_large_for_a_frame_are_refused_at_the_boundary_by_name() {
    // Each set= keeps to the limit; together they exceed what may cross to another process.
    let half = format!("(bytes){}", "ab".repeat(16 * 1024));
    let (a, b) = (format!("set=a={half}"), format!("set=b={half}"));
    let head = ["-q", "fakesrc", "num-buffers=1", "!", "metadatainject", &a];
    let mut args = head.to_vec();
    args.extend(["!", "metadatainject", &b, "!", "fakesink"]);
    run_expecting(launch(&args), 0);
    let mut args = head.to_vec();
    args.extend(["!", "metadatainject", &b, "!", "identity", "exec=isolated"]);
    args.extend(["!", "fakesink"]);
    let out = run_expecting(launch(&args), 1);
    assert!(
        stderr(&out).contains(
            "identity0: cannot hand a buffer to the worker: metadata fields of more than 32768 bytes"
        ),
        "{}",
        stderr(&out)
    );
    // Into shmsink: the sink's own error, before any consumer is involved.
    let dir = tmp();
    let sock = prop("socket-path", &dir.path().join("s"));
    let mut args = head.to_vec();
    args.extend([
        "!",
        "metadatainject",
        &b,
        "!",
        "shmsink",
        &sock,
        "wait-for-connection=false",
    ]);
    let out = run_expecting(launch(&args), 1);
    assert!(
        stderr(&out).contains("shmsink0: cannot send this buffer's metadata"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sequencenumber_renumbers_from_start_after_a_filter() {
    let dir = tmp();
    let out = dir.path().join("out");
    run_expecting(
        launch(&[
            "-q",
            "fakesrc num-buffers=10 ! metadatafilter sequence-min=3 ! sequencenumber start=100",
            "!",
            "metadataextract",
            &prop("location", &out),
            "!",
            "fakesink",
        ]),
        0,
    );
    let seqs: Vec<u64> = extracted(&out)
        .iter()
        .map(|l| l["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (100..107).collect::<Vec<_>>());
}

/// The sequence numbers `filter` lets through of ten buffers.
fn passed(filter: &str) -> Vec<u64> {
    let dir = tmp();
    let out = dir.path().join("out");
    let text = format!("fakesrc num-buffers=10 ! {filter} ! metadataextract");
    run_expecting(
        launch(&["-q", &text, &prop("location", &out), "!", "fakesink"]),
        0,
    );
    extracted(&out)
        .iter()
        .map(|l| l["sequence"].as_u64().unwrap())
        .collect()
}

#[test]
fn metadatafilter_passes_an_inclusive_sequence_range() {
    assert_eq!(passed("metadatafilter"), (0..10).collect::<Vec<_>>());
    assert_eq!(
        passed("metadatafilter sequence-min=2 sequence-max=4"),
        [2, 3, 4]
    );
    assert_eq!(passed("metadatafilter sequence-max=0"), [0]);
    assert_eq!(passed("metadatafilter sequence-min=9 sequence-max=9"), [9]);
    assert_eq!(passed("metadatafilter sequence-min=100"), Vec::<u64>::new());
    assert_eq!(
        passed("metadatafilter sequence-min=2 sequence-max=7 invert=true"),
        [0, 1, 8, 9]
    );
}

#[test]
fn metadatafilter_picks_one_stream_out_of_a_funnel() {
    let dir = tmp();
    let out = dir.path().join("out");
    run_expecting(
        launch(&[
            "-q",
            "fakesrc num-buffers=4 ! metadatainject stream-id=1 ! f.",
            "fakesrc num-buffers=6 ! metadatainject stream-id=2 set=from=two ! f.",
            "funnel name=f ! metadatafilter stream-id=2 ! metadataextract",
            &prop("location", &out),
            "!",
            "fakesink",
        ]),
        0,
    );
    let lines = extracted(&out);
    assert_eq!(lines.len(), 6);
    assert!(lines
        .iter()
        .all(|l| l["stream"] == 2 && l["fields"]["from"] == "two"));
    // Inverted, it drops exactly the stream it names.
    assert_eq!(
        passed("metadatainject stream-id=7 ! metadatafilter stream-id=7 invert=true"),
        Vec::<u64>::new()
    );
}

#[test]
fn metadatainject_numbers_offsets_on_from_its_start_and_merges_fields() {
    let dir = tmp();
    let input = file(dir.path(), "in", b"0123456789");
    let out = dir.path().join("out");
    run_expecting(
        launch(&[
            "-q",
            "filesrc",
            &prop("location", &input),
            "blocksize=3",
            "!",
            "metadatainject",
            "offset=100",
            "set=a=1,b=2",
            "!",
            "metadatainject",
            "set=b=(int)3",
            "!",
            "metadataextract",
            &prop("location", &out),
            "!",
            "fakesink",
        ]),
        0,
    );
    let lines = extracted(&out);
    let ranges: Vec<(u64, u64)> = lines
        .iter()
        .map(|l| {
            (
                l["offset"].as_u64().unwrap(),
                l["offset_end"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranges, [(100, 103), (103, 106), (106, 109), (109, 110)]);
    for l in &lines {
        assert_eq!(l["fields"], json!({"a": "1", "b": 3}));
        // What it was not asked to set stays as the source set it.
        assert_eq!(
            (l["stream"].as_u64(), l["duration"].as_u64()),
            (Some(0), None)
        );
    }
}

#[test]
fn a_malformed_set_is_exit_2_naming_element_and_property() {
    for (set, says) in [
        ("set=novalue", "entry `novalue` is not key=value"),
        ("set=n=(int)x", "`x` is not an integer"),
        ("set=b=(bytes)abc", "odd number of digits"),
        ("set=u=(uint)5", "unknown type `(uint)`"),
        ("set=a=1,a=2", "key `a` is set twice"),
        ("set==5", "a field name must be 1 to 256 bytes"),
    ] {
        let out = run_expecting(
            launch(&["fakesrc", "!", "metadatainject", set, "!", "fakesink"]),
            2,
        );
        let err = stderr(&out);
        assert!(
            err.contains("metadatainject0: property `set`") && err.contains(says),
            "{set}: {err}"
        );
    }
}

#[test]
fn other_bad_properties_are_exit_2_naming_element_and_property() {
    for (element, says) in [
        (
            "metadatafilter sequence-min=5 sequence-max=2",
            "metadatafilter0: property `sequence-min`: 5 is above sequence-max=2",
        ),
        (
            "metadataextract location=/tmp/never fd=2",
            "metadataextract0: property `location`: give location or fd, not both",
        ),
        (
            "timestamper mode=field field=\"\"",
            "timestamper0: property `field`",
        ),
        ("timestamper clock=tai", "clock"),
        ("metadatainject stream-id=-2", "stream-id"),
    ] {
        let text = format!("fakesrc num-buffers=1 ! {element} ! fakesink");
        let out = run_expecting(launch(&[&text]), 2);
        assert!(stderr(&out).contains(says), "{element}: {}", stderr(&out));
    }
}

#[test]
fn timestamper_writes_pts_dts_or_a_field_and_can_keep_what_is_there() {
    let dir = tmp();
    let out = dir.path().join("out");
    let run_with = |stages: &str| {
        let text = format!("fakesrc num-buffers=4 ! {stages} ! metadataextract");
        run_expecting(
            launch(&["-q", &text, &prop("location", &out), "!", "fakesink"]),
            0,
        );
        extracted(&out)
    };
    let wall_now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    };
    // Running time: present and never going back.
    let lines = run_with("timestamper");
    let pts: Vec<u64> = lines.iter().map(|l| l["pts"].as_u64().unwrap()).collect();
    assert!(pts.windows(2).all(|w| w[0] <= w[1]), "{pts:?}");
    assert!(lines.iter().all(|l| l["dts"].is_null()));
    // Wall-clock time, into dts: between the test's readings before and after.
    let start = wall_now();
    let lines = run_with("timestamper clock=realtime mode=dts");
    let end = wall_now();
    for l in &lines {
        let dts = l["dts"].as_u64().unwrap();
        assert!((start..=end).contains(&dts), "{start} <= {dts} <= {end}");
        assert!(l["pts"].is_null());
    }
    // overwrite=false keeps the first stamp; the default replaces it.
    let kept = run_with("timestamper ! timestamper clock=realtime overwrite=false");
    let replaced = run_with("timestamper ! timestamper clock=realtime");
    for (k, r) in kept.iter().zip(&replaced) {
        assert!(
            k["pts"].as_u64().unwrap() < start,
            "running time, not wall time"
        );
        assert!(r["pts"].as_u64().unwrap() >= start);
    }
    // A field, as an integer; the pts is left alone.
    let start = wall_now();
    let lines = run_with("timestamper clock=realtime mode=field field=seen-at");
    for l in &lines {
        let at = l["fields"]["seen-at"].as_u64().unwrap();
        assert!(at >= start);
        assert!(l["pts"].is_null());
    }
}

#[test]
fn metadataextract_passes_bytes_unchanged_and_writes_a_line_per_buffer() {
    let dir = tmp();
    let data = random_bytes(100_000, 12);
    let input = file(dir.path(), "in", &data);
    let (copy, meta) = (dir.path().join("copy"), dir.path().join("meta"));
    run_expecting(
        launch(&[
            "-q",
            "filesrc",
            &prop("location", &input),
            "blocksize=4096",
            "!",
            "metadataextract",
            &prop("location", &meta),
            "!",
            "filesink",
            &prop("location", &copy),
        ]),
        0,
    );
    assert_eq!(std::fs::read(&copy).unwrap(), data);
    let lines = extracted(&meta);
    assert_eq!(lines.len(), data.len().div_ceil(4096));
    let sizes: u64 = lines.iter().map(|l| l["size"].as_u64().unwrap()).sum();
    assert_eq!(sizes, data.len() as u64);
    let keys: Vec<&str> = lines[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = [
        "sequence",
        "size",
        "offset",
        "offset_end",
        "pts",
        "dts",
        "duration",
        "flags",
        "stream",
        "fields",
    ];
    want.sort_unstable();
    assert_eq!(keys, want, "serde_json orders keys; every one is there");
}

#[test]
fn metadataextract_writes_to_stdout_by_default_even_for_empty_buffers() {
    let out = run_expecting(
        launch(&["-q", "fakesrc num-buffers=3 ! metadataextract ! fakesink"]),
        0,
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[2]["size"], 0);
    assert_eq!(lines[2]["fields"], json!({}));
    // Into a file it cannot create: a runtime error naming the path.
    let out = run_expecting(
        launch(&[
            "fakesrc num-buffers=1 ! metadataextract location=/nonexistent/m.jsonl ! fakesink",
        ]),
        1,
    );
    assert!(
        stderr(&out).contains("metadataextract0: creating /nonexistent/m.jsonl"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn tap_shows_dts_offset_end_and_user_fields_in_text_and_json() {
    let head = "fakesrc num-buffers=1 sizetype=fixed sizemax=4 ! metadatainject";
    let set = "set=s=x y,n=(int)7,b=(bytes)01";
    let tail = "! timestamper mode=dts ! fakesink name=f";
    let out = run_expecting(launch(&["-q", "--tap", "f", head, set, tail]), 0);
    let err = stderr(&out);
    assert!(
        err.contains("tap f.sink: #0 4 bytes, seq 0, offset 0, offset-end 4, pts none, dts 0:"),
        "{err}"
    );
    assert!(
        err.contains(r#", fields b=(bytes)01 n=(int)7 s="x y""#),
        "{err}"
    );
    let out = run_expecting(
        launch(&["-q", "--tap", "f", "--tap-format=json", head, set, tail]),
        0,
    );
    let first: Value = serde_json::from_str(stderr(&out).lines().next().unwrap()).unwrap();
    assert_eq!(first["offset_end"], 4);
    assert!(first["dts"].is_u64());
    assert_eq!(
        first["fields"],
        json!({"b": {"bytes": "01"}, "n": 7, "s": "x y"})
    );
    // A buffer without fields shows none in text, `{}` in JSON.
    let out = run_expecting(
        launch(&[
            "-q",
            "--tap",
            "f",
            "--tap-format=json",
            "fakesrc num-buffers=1 ! fakesink name=f",
        ]),
        0,
    );
    let first: Value = serde_json::from_str(stderr(&out).lines().next().unwrap()).unwrap();
    assert_eq!(first["fields"], json!({}));
}

#[test]
fn fakesink_silent_false_prints_gsts_last_message_with_all_metadata() {
    let out = run_expecting(
        launch(&[
            "-q",
            "fakesrc num-buffers=2 sizetype=fixed sizemax=4 ! metadatainject stream-id=2",
            "set=k=v,n=(int)1",
            "!",
            "fakesink",
            "silent=false",
        ]),
        0,
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "/pipeline0/fakesink0: last-message = chain   ******* (fakesink0:sink) (4 bytes, \
             dts: none, pts: none, duration: none, offset: 0, offset_end: 4, flags: 00000000 , \
             sequence: 0, stream: 2, meta: k=\"v\", n=(int)1)",
            "/pipeline0/fakesink0: last-message = chain   ******* (fakesink0:sink) (4 bytes, \
             dts: none, pts: none, duration: none, offset: 4, offset_end: 8, flags: 00000000 , \
             sequence: 1, stream: 2, meta: k=\"v\", n=(int)1)",
        ]
    );
    // Silent by default, as gst's.
    let out = run_expecting(launch(&["-q", "fakesrc num-buffers=2 ! fakesink"]), 0);
    assert!(out.stdout.is_empty());
}
