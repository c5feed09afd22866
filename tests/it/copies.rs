//! Byte-exact copies through files, fds, tees and funnels.

use std::io::Write as _;

use super::support::*;

fn copy_and_compare(data: &[u8], extra: &[&str]) {
    let dir = tmp();
    let input = file(dir.path(), "in.bin", data);
    let output = dir.path().join("out.bin");
    let (i, o) = (prop("location", &input), prop("location", &output));
    let mut args = vec!["-q", "filesrc", i.as_str()];
    args.extend_from_slice(extra);
    args.extend(["!", "filesink", o.as_str()]);
    let out = run(launch(&args));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&output).unwrap(),
        data,
        "copy of {} bytes with {extra:?}",
        data.len()
    );
}

#[test]
fn copies_are_byte_identical_at_block_boundaries() {
    for len in [0, 1, 4095, 4096, 4097, 131_071, 131_072, 131_073] {
        copy_and_compare(&random_bytes(len, len as u64), &[]);
    }
    for len in [4095, 4096, 4097, 8193] {
        copy_and_compare(&random_bytes(len, 7), &["blocksize=4096"]);
    }
    // The read() path (FIFOs and devices take it; use-mmap=false forces it for files).
    for len in [0, 1, 131_071, 131_073] {
        copy_and_compare(&random_bytes(len, 11), &["use-mmap=false"]);
    }
}

#[test]
fn every_memory_backend_copies_exactly_and_reports_its_pool() {
    let data = random_bytes(3 << 20, 9);
    for (flag, backings) in [
        ("--memory=memfd", &["memfd"][..]),
        ("--memory=heap", &["heap"][..]),
        // Huge pages when the machine has some reserved; otherwise memfd after one warning.
        ("--memory=hugepages", &["hugepages", "memfd"][..]),
    ] {
        let dir = tmp();
        let input = file(dir.path(), "in.bin", &data);
        let output = dir.path().join("out.bin");
        let (i, o) = (prop("location", &input), prop("location", &output));
        let out = run(launch(&[
            "-q",
            flag,
            "--stats=json",
            "filesrc",
            &i,
            "use-mmap=false",
            "blocksize=1M",
            "!",
            "filesink",
            &o,
        ]));
        assert_eq!(code(&out), 0, "{flag}: {}", stderr(&out));
        assert_eq!(std::fs::read(&output).unwrap(), data, "{flag}");
        let pool = &stats(&out)["pools"][0];
        let backing = pool["backing"].as_str().unwrap();
        assert!(backings.contains(&backing), "{flag}: pool on {backing}");
        assert!(pool["high_water"].as_u64().unwrap() >= 1);
        if backing == "memfd" && flag == "--memory=hugepages" {
            assert!(
                stderr(&out).contains("huge pages unavailable"),
                "{}",
                stderr(&out)
            );
        }
    }
}

#[test]
fn ten_mebibytes_of_random_bytes_copy_exactly() {
    copy_and_compare(&random_bytes(10 << 20, 42), &[]);
    copy_and_compare(&random_bytes(10 << 20, 43), &["blocksize=1M"]);
    copy_and_compare(&random_bytes(10 << 20, 44), &["use-mmap=false"]);
}

#[test]
fn all_256_byte_values_survive() {
    let data: Vec<u8> = (0..=255u8).cycle().take(256 * 17).collect();
    copy_and_compare(&data, &[]);
    copy_and_compare(&data, &["blocksize=3"]);
}

#[test]
fn file_names_with_spaces_as_argv_words_and_quoted() {
    let dir = tmp();
    let data = random_bytes(5000, 3);
    let input = file(dir.path(), "my input.bin", &data);
    let out1 = dir.path().join("out one.bin");
    // argv words, as a shell passes `location="my input.bin"`.
    let out = run(launch(&[
        "-q",
        "filesrc",
        &prop("location", &input),
        "!",
        "filesink",
        &prop("location", &out1),
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read(&out1).unwrap(), data);
    // One word with double and single quotes inside.
    let out2 = dir.path().join("out two.bin");
    let desc = format!(
        "filesrc location=\"{}\" ! filesink location='{}'",
        input.display(),
        out2.display()
    );
    let out = run(launch(&["-q", &desc]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read(&out2).unwrap(), data);
}

#[test]
fn file_uris_copy() {
    let dir = tmp();
    let data = random_bytes(3000, 9);
    let input = file(dir.path(), "in x.bin", &data);
    let output = dir.path().join("out.bin");
    let src = format!("file://{}", input.display().to_string().replace(' ', "%20"));
    let dst = format!("file://{}", output.display());
    let out = run(launch(&["-q", &src, "!", &dst]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read(&output).unwrap(), data);
}

#[test]
fn tee_to_eight_files_with_and_without_queues() {
    for with_queue in [false, true] {
        let dir = tmp();
        let data = random_bytes(1 << 20, 11);
        let input = file(dir.path(), "in.bin", &data);
        let mut desc = format!(
            "filesrc location={} blocksize=65536 ! tee name=t",
            input.display()
        );
        for n in 0..8 {
            let q = if with_queue { " ! queue" } else { "" };
            desc.push_str(&format!(
                " t.{q} ! filesink location={}/out{n}.bin",
                dir.path().display()
            ));
        }
        let out = run(launch(&["--stats=json", &desc]));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        for n in 0..8 {
            let got = std::fs::read(dir.path().join(format!("out{n}.bin"))).unwrap();
            assert!(got == data, "branch {n} (queues: {with_queue}) differs");
        }
        let s = stats(&out);
        assert_eq!(s["threads"], if with_queue { 9 } else { 1 });
        assert_eq!(s["sink_bytes"], 8 * data.len() as u64);
    }
}

#[test]
fn funnel_merges_every_buffer_of_every_input() {
    let dir = tmp();
    let a = file(dir.path(), "a.bin", &vec![b'a'; 300_000]);
    let b = file(dir.path(), "b.bin", &vec![b'b'; 200_000]);
    let output = dir.path().join("out.bin");
    let desc = format!(
        "filesrc location={} blocksize=4096 ! f. filesrc location={} blocksize=4096 ! f.sink_7 funnel name=f ! filesink location={}",
        a.display(),
        b.display(),
        output.display()
    );
    let out = run(launch(&["-q", &desc]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let got = std::fs::read(&output).unwrap();
    assert_eq!(got.iter().filter(|&&c| c == b'a').count(), 300_000);
    assert_eq!(got.iter().filter(|&&c| c == b'b').count(), 200_000);
    assert_eq!(got.len(), 500_000);
}

#[test]
fn stdin_to_stdout() {
    let data = random_bytes(3 << 20, 5);
    let mut child = spawn_piped(&["-q", "fdsrc", "!", "fdsink"]);
    let mut stdin = child.stdin.take().unwrap();
    let feed = data.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&feed).unwrap());
    let out = wait(child);
    writer.join().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(out.stdout == data, "stdout differs from stdin");
}

#[test]
fn fakesrc_fill_patterns_match_gst_byte_for_byte() {
    let out = run(launch(&[
        "-q",
        "fakesrc num-buffers=3 sizetype=fixed sizemax=300 filltype=pattern ! fdsink",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let one: Vec<u8> = (0..300).map(|i| (i % 256) as u8).collect();
    assert_eq!(out.stdout, [one.clone(), one.clone(), one].concat());
    let out = run(launch(&[
        "-q",
        "fakesrc num-buffers=3 sizetype=fixed sizemax=300 filltype=pattern-span ! fdsink",
    ]));
    let span: Vec<u8> = (0..900).map(|i| (i % 256) as u8).collect();
    assert_eq!(out.stdout, span);
    let out = run(launch(&[
        "-q",
        "fakesrc num-buffers=4 sizetype=fixed sizemax=1000 filltype=zero ! fdsink",
    ]));
    assert_eq!(out.stdout, vec![0u8; 4000]);
    let out = run(launch(&[
        "--stats=json",
        "fakesrc num-buffers=200 sizetype=random sizemin=10 sizemax=20 ! fakesink",
    ]));
    let s = stats(&out);
    let bytes = element(&s, "fakesink0")["bytes"].as_u64().unwrap();
    assert!((2000..=4000).contains(&bytes), "{bytes}");
}

#[test]
fn testsrc_counter_pattern_spans_buffers() {
    let out = run(launch(&[
        "-q",
        "testsrc num-buffers=5 blocksize=100 ! fdsink",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let want: Vec<u8> = (0..500).map(|i| (i % 256) as u8).collect();
    assert_eq!(out.stdout, want);
}

#[test]
fn filesink_append_and_sync() {
    let dir = tmp();
    let output = file(dir.path(), "out.bin", b"head:");
    let o = prop("location", &output);
    let out = run(launch(&[
        "-q",
        "testsrc",
        "num-buffers=1",
        "blocksize=3",
        "!",
        "filesink",
        &o,
        "append=true",
        "sync=true",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read(&output).unwrap(), b"head:\x00\x01\x02");
}
