//! Flow behaviour: valve, queues, EOS, closed stdout, bounded memory, long chains, stats.

use super::support::*;

#[test]
fn valve_drops_while_closed_and_passes_while_open() {
    let out = run(launch(&[
        "--stats=json",
        "fakesrc num-buffers=50 ! valve drop=true ! fakesink",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = stats(&out);
    assert_eq!(element(&s, "valve0")["dropped"], 50);
    assert_eq!(element(&s, "fakesink0")["buffers"], 0);
    let out = run(launch(&[
        "--stats=json",
        "fakesrc num-buffers=50 ! valve drop=false ! fakesink",
    ]));
    assert_eq!(element(&stats(&out), "fakesink0")["buffers"], 50);
}

#[test]
fn fakesink_num_buffers_ends_an_endless_source() {
    let out = run(launch(&[
        "--stats=json",
        "fakesrc ! fakesink num-buffers=1000",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(element(&stats(&out), "fakesink0")["buffers"], 1000);
    // Through a queue too: the queue's thread ends, then the source notices.
    let out = run(launch(&[
        "--stats=json",
        "fakesrc ! queue ! fakesink num-buffers=1000",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(element(&stats(&out), "fakesink0")["buffers"], 1000);
}

#[test]
fn identity_eos_after_ends_the_stream_below_it() {
    let out = run(launch(&[
        "--stats=json",
        "fakesrc ! identity eos-after=7 ! fakesink",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // As gst: the 7th buffer is the end of stream, 6 pass.
    assert_eq!(element(&stats(&out), "fakesink0")["buffers"], 6);
}

#[test]
fn a_tee_with_one_finished_branch_keeps_feeding_the_other() {
    let out = run(launch(&[
        "--stats=json",
        "fakesrc num-buffers=100 ! tee name=t ! fakesink num-buffers=10 t. ! fakesink",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = stats(&out);
    assert_eq!(element(&s, "fakesink0")["buffers"], 10);
    assert_eq!(element(&s, "fakesink1")["buffers"], 100);
}

#[test]
fn leaky_queues_count_every_buffer_as_passed_or_dropped() {
    for leaky in ["upstream", "downstream"] {
        let desc = format!(
            "fakesrc num-buffers=300 ! queue max-size-buffers=2 leaky={leaky} ! identity sleep-time=200 ! fakesink"
        );
        let out = run(launch(&["--stats=json", &desc]));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let s = stats(&out);
        let passed = element(&s, "fakesink0")["buffers"].as_u64().unwrap();
        let dropped = element(&s, "queue0")["dropped"].as_u64().unwrap();
        assert_eq!(
            passed + dropped,
            300,
            "leaky={leaky}: {passed} passed, {dropped} dropped"
        );
    }
}

#[test]
fn queue_byte_limit_holds_and_everything_arrives() {
    let out = run(launch(&[
        "--stats=json",
        "fakesrc num-buffers=500 sizetype=fixed sizemax=1000 ! queue max-size-buffers=0 max-size-bytes=5000 ! identity sleep-time=10 ! fakesink",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = stats(&out);
    assert_eq!(element(&s, "fakesink0")["bytes"], 500_000);
    let link = s["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["to"] == "queue0.sink")
        .unwrap();
    // At most one buffer beyond the byte limit (a buffer enters while below it).
    assert!(link["high_water"].as_u64().unwrap() <= 6, "{link}");
}

#[test]
fn a_closed_stdout_ends_quietly_with_exit_0() {
    let mut child = spawn_piped(&["fakesrc sizetype=fixed sizemax=4096 filltype=zero ! fdsink"]);
    // Read 100 bytes, then close our end, like `| head -c 100`.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = wait(child);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("error"), "{}", stderr(&out));
}

#[test]
fn peak_memory_is_bounded_by_the_pool_not_the_input() {
    let dir = tmp();
    let big = dir.path().join("big.bin");
    // Sparse: reads cost no disk, but every byte still passes through the pipeline.
    std::fs::File::create(&big)
        .unwrap()
        .set_len(512 << 20)
        .unwrap();
    let desc = format!(
        "filesrc location={} ! filesink location=/dev/null",
        big.display()
    );
    let out = run(launch(&["--stats=json", &desc]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = stats(&out);
    assert_eq!(s["sink_bytes"], 512u64 << 20);
    let rss_kib = s["peak_rss_kib"].as_u64().unwrap();
    assert!(
        rss_kib < 32 * 1024,
        "peak RSS {rss_kib} KiB while copying 512 MiB"
    );
    // With a queue and a tee the bound holds too.
    let desc = format!("filesrc location={} ! tee name=t ! queue ! fakesink t. ! queue ! filesink location=/dev/null", big.display());
    let out = run(launch(&["--stats=json", &desc]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rss_kib = stats(&out)["peak_rss_kib"].as_u64().unwrap();
    assert!(rss_kib < 48 * 1024, "peak RSS {rss_kib} KiB with queues");
}

#[test]
fn a_ten_thousand_element_chain_runs() {
    let desc = format!(
        "fakesrc num-buffers=20 sizetype=fixed sizemax=8{} ! fakesink",
        " ! identity".repeat(10_000)
    );
    let out = run(launch(&["--stats=json", &desc]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = stats(&out);
    assert_eq!(element(&s, "identity9999")["buffers"], 20);
    assert_eq!(element(&s, "fakesink0")["bytes"], 160);
}

#[test]
fn stats_table_unless_quiet() {
    let out = run(launch(&["fakesrc num-buffers=3 ! fakesink"]));
    let err = stderr(&out);
    assert!(
        err.contains("fakesrc0") && err.contains("end of stream: 3 buffers"),
        "{err}"
    );
    let out = run(launch(&["-q", "fakesrc num-buffers=3 ! fakesink"]));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    let out = run(launch(&[
        "-q",
        "--stats=json",
        "fakesrc num-buffers=3 ! fakesink",
    ]));
    assert_eq!(stats(&out)["ending"], "eos");
}

#[test]
fn verbose_prints_properties_and_links() {
    let out = run(launch(&[
        "-v",
        "-X",
        "sizemax",
        "fakesrc num-buffers=3 sizetype=fixed sizemax=9 ! fakesink",
    ]));
    let err = stderr(&out);
    assert!(
        err.contains("/pipeline0/fakesrc0: num-buffers = 3"),
        "{err}"
    );
    assert!(!err.contains("sizemax"), "{err}");
    assert!(
        err.contains("/pipeline0/fakesrc0.src -> /pipeline0/fakesink0.sink"),
        "{err}"
    );
}

#[test]
fn caps_between_links_make_a_capsfilter() {
    let out = run(launch(&[
        "--stats=json",
        "fakesrc num-buffers=4 ! video/x-raw ! video/x-raw,width=320 ! fakesink",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = stats(&out);
    assert_eq!(element(&s, "capsfilter0")["buffers"], 4);
    assert_eq!(element(&s, "capsfilter1")["buffers"], 4);
}

#[test]
fn messages_report_each_thread_and_the_ending() {
    let out = run(launch(&[
        "-m",
        "-q",
        "fakesrc num-buffers=3 ! tee name=t ! queue ! fakesink t. ! fakesink",
    ]));
    assert_eq!(code(&out), 0);
    let err = stderr(&out);
    for line in [
        "pipeline: running",
        "message: px-fakesrc0: started",
        "message: px-queue0: end of stream",
        "pipeline: end of stream",
    ] {
        assert!(err.contains(line), "missing {line:?} in:\n{err}");
    }
    let out = run(launch(&[
        "-m",
        "-q",
        "fakesrc ! identity error-after=2 ! fakesink",
    ]));
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(
        err.contains("message: px-fakesrc0: error: identity0: error-after=2 reached"),
        "{err}"
    );
    assert!(err.contains("pipeline: stopped on error"), "{err}");
}

#[test]
fn do_timestamp_counts_from_the_start_of_the_run_in_every_source() {
    // One clock for sync and async sources: the pipeline's running time, so no pts can be
    // later than the run's own wall time (a clock started at build time could be).
    let dir = tmp();
    let input = file(dir.path(), "in.bin", &random_bytes(3 * 4096, 81));
    for source in [
        vec!["fakesrc", "num-buffers=5", "do-timestamp=true"],
        vec![
            "filesrc",
            "blocksize=4096",
            "do-timestamp=true",
            "location=IN",
        ],
    ] {
        let location = prop("location", &input);
        let mut args = vec!["-q", "--stats=json", "--tap-format=json", "--tap"];
        let tapped = format!("{}0", source[0]);
        args.push(&tapped);
        args.extend(source.iter().map(|a| {
            if *a == "location=IN" {
                location.as_str()
            } else {
                a
            }
        }));
        args.extend(["!", "fakesink"]);
        let out = run(launch(&args));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &stderr(&out);
        let report = text.lines().find(|l| l.starts_with("{\"ending\"")).unwrap();
        let wall = serde_json::from_str::<serde_json::Value>(report).unwrap()["wall_ns"]
            .as_u64()
            .unwrap();
        let pts: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with("{\"tap\"") && l.contains("\"pts\""))
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["pts"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert!(!pts.is_empty(), "{source:?}: no tapped pts in {text}");
        assert!(pts.windows(2).all(|w| w[0] <= w[1]), "{pts:?}");
        assert!(
            pts.iter().all(|&p| p <= wall),
            "{source:?}: {pts:?} beyond {wall}"
        );
    }
}

#[test]
fn a_tee_renders_its_sink_branches_in_pad_order() {
    // Two sinks writing to the same stdout: src_0's bytes come first, as with gst.
    for (desc, raw_first) in [
        ("tee name=t ! fdsink t. ! fakesink dump=true", true),
        ("tee name=t ! fakesink dump=true t. ! fdsink", false),
    ] {
        let out = run(launch(&[
            "-q",
            &format!("fakesrc num-buffers=1 sizetype=fixed sizemax=4 filltype=zero ! {desc}"),
        ]));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(
            out.stdout.starts_with(&[0u8; 4]),
            raw_first,
            "{desc}: {:?}",
            out.stdout
        );
    }
}
