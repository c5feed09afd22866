//! Byte-exact copies through files, fds, tees and funnels.

use std::io::{Read as _, Write as _};

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

// --- kernel copies (copy_file_range) ---------------------------------------------------------

/// Copies `data` through `filesrc IN SRC_EXTRA ! MIDDLE... filesink OUT SINK_EXTRA` with
/// `--stats=json`, checks the output is byte-identical, and returns the stats.
fn copy_with_stats(
    data: &[u8],
    src_extra: &[&str],
    middle: &[&str],
    sink_extra: &[&str],
) -> serde_json::Value {
    let dir = tmp();
    let input = file(dir.path(), "in.bin", data);
    let output = dir.path().join("out.bin");
    let (i, o) = (prop("location", &input), prop("location", &output));
    let stats = file_to(&i, src_extra, middle, &o, sink_extra);
    let got = std::fs::read(&output).unwrap();
    assert!(
        got == data,
        "{src_extra:?} {middle:?} {sink_extra:?}: {} bytes out of {} differ",
        got.len(),
        data.len()
    );
    stats
}

/// Runs `filesrc IN SRC_EXTRA ! MIDDLE... filesink OUT SINK_EXTRA` (`IN` and `OUT` are
/// `location=` properties) with `--stats=json`, checks it exits 0, and returns the stats.
fn file_to(
    input: &str,
    src_extra: &[&str],
    middle: &[&str],
    output: &str,
    sink_extra: &[&str],
) -> serde_json::Value {
    let mut args = vec!["-q", "--stats=json", "filesrc", input];
    args.extend_from_slice(src_extra);
    args.push("!");
    args.extend_from_slice(middle);
    args.extend(["filesink", output]);
    args.extend_from_slice(sink_extra);
    let out = run(launch(&args));
    assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    stats(&out)
}

/// Starts `filesrc IN ! fdsink` (`IN` a `location=` property) with `--stats=json`, its
/// stdout on `stdout` and its stderr on a pipe.
fn spawn_fdsink(input: &str, stdout: std::process::Stdio) -> std::process::Child {
    launch(&["-q", "--stats=json", "filesrc", input, "!", "fdsink"])
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `filesrc IN ! fdsink` into `stdout` (see [`spawn_fdsink`]), checks it exits 0, and
/// returns the stats.
fn fdsink_to(input: &str, stdout: std::process::Stdio) -> serde_json::Value {
    let out = wait(spawn_fdsink(input, stdout));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stats(&out)
}

/// Bytes the element had the kernel copy, and bytes it took in.
fn copied_of(stats: &serde_json::Value, name: &str) -> (u64, u64) {
    let e = element(stats, name);
    (
        e["kernel_copied"].as_u64().unwrap(),
        e["bytes"].as_u64().unwrap(),
    )
}

#[test]
fn mapped_files_are_copied_by_the_kernel_byte_for_byte() {
    const MIB4: usize = 4 << 20;
    let sizes = [0, 1, 4095, 4096, 4097, MIB4 - 1, MIB4, MIB4 + 1];
    let blocksizes: [&[&str]; 4] = [
        &[],
        &["blocksize=4096"],
        &["blocksize=1M"],
        &["blocksize=5000"],
    ];
    for len in sizes {
        let data = random_bytes(len, len as u64 + 1);
        for bs in blocksizes {
            let s = copy_with_stats(&data, bs, &[], &[]);
            let n = len as u64;
            assert_eq!(copied_of(&s, "filesink0"), (n, n), "{len} bytes, {bs:?}");
        }
    }
    // Small buffers gather into one copy per buffer-size, as small writes gather.
    let data = random_bytes(10 << 20, 77);
    let n = data.len() as u64;
    for (src, sink) in [
        (&[][..], &[][..]),
        (&["blocksize=3000"][..], &[][..]),
        (&["blocksize=3000"][..], &["buffer-mode=unbuffered"][..]),
        (&["blocksize=65536"][..], &["buffer-size=1000000"][..]),
    ] {
        let s = copy_with_stats(&data, src, &[], sink);
        assert_eq!(copied_of(&s, "filesink0"), (n, n), "{src:?} {sink:?}");
    }
}

#[test]
fn a_buffer_passed_on_unchanged_is_still_copied_by_the_kernel() {
    let data = random_bytes((4 << 20) + 123, 5);
    let n = data.len() as u64;
    let s = copy_with_stats(&data, &["blocksize=65536"], &["identity", "!"], &[]);
    assert_eq!(copied_of(&s, "filesink0"), (n, n));
    let s = copy_with_stats(&data, &[], &["queue", "!", "identity", "!"], &[]);
    assert_eq!(copied_of(&s, "filesink0"), (n, n));
}

#[test]
fn a_tee_to_two_filesinks_copies_into_both() {
    for with_queue in [false, true] {
        let dir = tmp();
        let data = random_bytes((10 << 20) + 17, 13);
        let input = file(dir.path(), "in.bin", &data);
        let q = if with_queue { "queue ! " } else { "" };
        let desc = format!(
            "filesrc location={} ! tee name=t t. ! {q}filesink location={d}/a.bin \
             t. ! {q}filesink location={d}/b.bin",
            input.display(),
            d = dir.path().display()
        );
        let out = run(launch(&["-q", "--stats=json", &desc]));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let s = stats(&out);
        let n = data.len() as u64;
        for (name, f) in [("filesink0", "a.bin"), ("filesink1", "b.bin")] {
            assert!(std::fs::read(dir.path().join(f)).unwrap() == data, "{f}");
            assert_eq!(copied_of(&s, name), (n, n), "{name}, queues: {with_queue}");
        }
    }
}

#[test]
fn the_message_and_stats_say_how_many_bytes_the_kernel_copied() {
    let dir = tmp();
    let data = random_bytes(10 << 20, 21);
    let input = file(dir.path(), "in.bin", &data);
    let output = dir.path().join("out.bin");
    let (i, o) = (prop("location", &input), prop("location", &output));
    let out = run(launch(&[
        "-m", "--stats", "filesrc", &i, "!", "filesink", &o,
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "message: filesink0: 10485760 bytes copied in the kernel (copy_file_range or splice), 0 written\n"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "filesink0: 10.00 MiB copied in the kernel (copy_file_range or splice), 0 B written\n"
        ),
        "{err}"
    );
    assert_eq!(std::fs::read(&output).unwrap(), data);
}

#[test]
fn buffers_not_over_a_mapped_file_are_written() {
    let data = random_bytes((4 << 20) + 1, 8);
    let n = data.len() as u64;
    // read() into pool slots: nothing to copy from.
    let s = copy_with_stats(&data, &["use-mmap=false"], &[], &[]);
    assert_eq!(copied_of(&s, "filesink0"), (0, n));
    // Synchronous output: O_SYNC's guarantee is written for write(2).
    let s = copy_with_stats(&data, &[], &[], &["o-sync=true"]);
    assert_eq!(copied_of(&s, "filesink0"), (0, n));
    // Nor is a buffer an element made.
    let dir = tmp();
    let o = prop("location", &dir.path().join("out.bin"));
    let out = run(launch(&[
        "-q",
        "--stats=json",
        "testsrc num-buffers=3 blocksize=10 ! filesink",
        &o,
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(copied_of(&stats(&out), "filesink0"), (0, 30));
}

#[test]
fn funnelled_file_and_heap_buffers_keep_their_order() {
    // A funnel interleaves buffers of two files (one mapped, one read into slots): the sink
    // alternates between kernel copies and writes, and every byte of each input arrives in
    // that input's order.
    let dir = tmp();
    let a_data: Vec<u8> = random_bytes(300_000, 1).iter().map(|x| x & 0x7f).collect();
    let b_data: Vec<u8> = random_bytes(200_000, 2).iter().map(|x| x | 0x80).collect();
    let a = file(dir.path(), "a.bin", &a_data);
    let b = file(dir.path(), "b.bin", &b_data);
    let output = dir.path().join("out.bin");
    let desc = format!(
        "filesrc location={} blocksize=4096 ! f. filesrc location={} blocksize=4096 use-mmap=false ! f. \
         funnel name=f ! filesink location={}",
        a.display(),
        b.display(),
        output.display()
    );
    let out = run(launch(&["-q", "--stats=json", &desc]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let got = std::fs::read(&output).unwrap();
    assert_eq!(got.len(), 500_000);
    let (from_a, from_b): (Vec<u8>, Vec<u8>) = got.iter().partition(|&&c| c < 0x80);
    assert!(
        from_a == a_data && from_b == b_data,
        "an input lost its order"
    );
    let (copied, bytes) = copied_of(&stats(&out), "filesink0");
    assert_eq!((copied, bytes), (300_000, 500_000));
}

#[test]
fn append_appends_mapped_files_too() {
    // The kernel will not copy into a file opened for appending (O_APPEND, which keeps
    // concurrent appenders safe), so append=true writes.
    let dir = tmp();
    let data = random_bytes((4 << 20) + 3, 4);
    let input = file(dir.path(), "in.bin", &data);
    let output = file(dir.path(), "out.bin", b"head:");
    let (i, o) = (prop("location", &input), prop("location", &output));
    for _ in 0..2 {
        let n = data.len() as u64;
        assert_eq!(
            copied_of(&file_to(&i, &[], &[], &o, &["append=true"]), "filesink0"),
            (0, n)
        );
    }
    let got = std::fs::read(&output).unwrap();
    assert!(
        got == [&b"head:"[..], &data, &data].concat(),
        "appended twice"
    );
}

#[test]
fn fdsink_into_a_regular_file_copies_by_the_kernel_unless_appending() {
    let dir = tmp();
    let data = random_bytes((4 << 20) + 5, 6);
    let n = data.len() as u64;
    let input = file(dir.path(), "in.bin", &data);
    let i = prop("location", &input);
    let output = dir.path().join("out.bin");
    // `> out`
    let s = fdsink_to(&i, std::fs::File::create(&output).unwrap().into());
    assert_eq!(copied_of(&s, "fdsink0"), (n, n));
    assert!(std::fs::read(&output).unwrap() == data);
    // `>> out`
    let stdout = std::fs::OpenOptions::new()
        .append(true)
        .open(&output)
        .unwrap();
    let s = fdsink_to(&i, stdout.into());
    assert_eq!(copied_of(&s, "fdsink0"), (0, n));
    assert!(std::fs::read(&output).unwrap() == [&data[..], &data].concat());
}

#[test]
fn across_filesystems_the_refused_copy_is_written_instead() {
    // The kernel refuses to copy from tmpfs to another filesystem (EXDEV): the sink reads and
    // writes the refused run itself, then writes every later buffer.
    use std::os::unix::fs::MetadataExt as _;
    let dir = tmp();
    let shm = std::path::Path::new("/dev/shm");
    let other_fs = shm.is_dir()
        && std::fs::metadata(shm).unwrap().dev() != std::fs::metadata(dir.path()).unwrap().dev();
    if !other_fs {
        eprintln!(
            "skipped: no /dev/shm on another filesystem than {}",
            dir.path().display()
        );
        return;
    }
    let data = random_bytes((1 << 20) + 99, 31);
    let n = data.len() as u64;
    let mut input = tempfile::Builder::new().tempfile_in(shm).unwrap();
    input.write_all(&data).unwrap();
    let i = prop("location", input.path());
    let output = dir.path().join("out.bin");
    let o = prop("location", &output);
    for bs in ["blocksize=4096", "blocksize=131072"] {
        let s = file_to(&i, &[bs], &[], &o, &[]);
        assert_eq!(copied_of(&s, "filesink0"), (0, n), "{bs}");
        assert!(std::fs::read(&output).unwrap() == data, "{bs}");
    }
    let s = fdsink_to(&i, std::fs::File::create(&output).unwrap().into());
    assert_eq!(copied_of(&s, "fdsink0"), (0, n));
    assert!(std::fs::read(&output).unwrap() == data);
}

#[test]
fn files_in_proc_are_read_not_mapped() {
    // /proc files say they are empty; mapped, they would give nothing.
    let out = run(launch(&[
        "-q",
        "filesrc",
        "location=/proc/version",
        "!",
        "fdsink",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let want = std::fs::read("/proc/version").unwrap();
    assert!(!want.is_empty());
    assert_eq!(out.stdout, want);
}

// --- splices into pipes ----------------------------------------------------------------------

#[test]
fn into_a_pipe_mapped_files_are_spliced_byte_for_byte() {
    let dir = tmp();
    for (len, seed) in [
        (0, 1),
        (1, 2),
        (4095, 3),
        (4096, 4),
        (4097, 5),
        ((4 << 20) + 5, 6),
        (10 << 20, 7),
    ] {
        let data = random_bytes(len, seed);
        let n = len as u64;
        let input = file(dir.path(), "in.bin", &data);
        let i = prop("location", &input);
        for middle in [
            &[][..],
            &["queue", "!"][..],
            &["tee", "!", "identity", "!"][..],
        ] {
            for bs in ["blocksize=4096", "blocksize=131072", "blocksize=1048576"] {
                let mut args = vec!["-q", "--stats=json", "filesrc", &i, bs, "!"];
                args.extend_from_slice(middle);
                args.push("fdsink");
                // `run` gives the child a pipe for stdout.
                let out = run(launch(&args));
                assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
                assert!(out.stdout == data, "{args:?}: the bytes differ");
                assert_eq!(copied_of(&stats(&out), "fdsink0"), (n, n), "{args:?}");
            }
        }
    }
}

#[test]
fn a_full_non_blocking_pipe_is_waited_on_not_lost() {
    use rustix::pipe::{pipe_with, PipeFlags};
    let dir = tmp();
    let data = random_bytes((3 << 20) + 17, 11);
    let input = file(dir.path(), "in.bin", &data);
    let i = prop("location", &input);
    // Both ends start non-blocking; only the writer's stays so, as a shell with a
    // non-blocking terminal or a program that set O_NONBLOCK would leave it.
    let (reader, writer) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC).unwrap();
    rustix::fs::fcntl_setfl(&reader, rustix::fs::OFlags::empty()).unwrap();
    let child = spawn_fdsink(&i, writer.into());
    // Read in small pieces: the sink keeps finding the pipe full.
    let mut reader = std::fs::File::from(reader);
    let mut got = Vec::new();
    let mut piece = [0u8; 4096];
    loop {
        let k = reader.read(&mut piece).unwrap();
        if k == 0 {
            break;
        }
        got.extend_from_slice(&piece[..k]);
    }
    let out = wait(child);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(got == data, "{} bytes of {} arrived", got.len(), data.len());
    let n = data.len() as u64;
    assert_eq!(copied_of(&stats(&out), "fdsink0"), (n, n));
}

#[test]
fn a_reader_that_leaves_a_spliced_pipe_ends_the_run_quietly() {
    let dir = tmp();
    let input = file(dir.path(), "in.bin", &random_bytes(16 << 20, 12));
    let i = prop("location", &input);
    let mut child = spawn_piped(&["-q", "filesrc", &i, "!", "fdsink"]);
    // `| head -c 100`
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = wait(child);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn filesink_into_a_fifo_splices() {
    let dir = tmp();
    let data = random_bytes((2 << 20) + 3, 13);
    let input = file(dir.path(), "in.bin", &data);
    let fifo = dir.path().join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        0,
    )
    .unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let (i, o) = (prop("location", &input), prop("location", &fifo));
    let s = file_to(&i, &[], &[], &o, &[]);
    assert!(reader.join().unwrap() == data);
    let n = data.len() as u64;
    assert_eq!(copied_of(&s, "filesink0"), (n, n));
}
