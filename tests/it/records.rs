//! Records: buffersplit, bufferjoin, bufferconcat, chunk, batch and unbatch, end to end.

use super::support::*;

/// Runs `filesrc location=<input> blocksize=BS ! MIDDLE ! fdsink` and returns stdout.
fn through(input: &[u8], blocksize: usize, middle: &str) -> Vec<u8> {
    let dir = tmp();
    let path = file(dir.path(), "in", input);
    let out = run_expecting(
        launch(&[
            "-q",
            &format!(
                "filesrc location={} blocksize={blocksize} ! {middle} ! fdsink",
                path.display()
            ),
        ]),
        0,
    );
    out.stdout
}

#[test]
fn buffersplit_then_bufferjoin_gives_back_a_text_file_at_every_block_size() {
    let text = b"one\ntwo\n\nthree\nlast line\n";
    for bs in [1, 2, 3, 5, 7, 64, 4096] {
        let got = through(
            text,
            bs,
            r#"buffersplit delimiter="\n" ! bufferjoin delimiter="\n""#,
        );
        assert_eq!(got, text, "blocksize {bs}");
    }
}

#[test]
fn records_spanning_buffers_empty_records_and_the_tail_without_a_delimiter() {
    // Records shown between brackets: an empty record passes, a trailing delimiter starts no
    // record, bytes after the last delimiter are the last record.
    for bs in [1, 2, 4, 100] {
        let got = through(
            b"ab\r\n\r\ncdef\r\ng",
            bs,
            r"buffersplit delimiter=\r\n ! bufferjoin delimiter=] trailing=true",
        );
        assert_eq!(got, b"ab]]cdef]g]", "blocksize {bs}");
        let got = through(
            b"ab\r\n",
            bs,
            r"buffersplit delimiter=\r\n ! bufferjoin delimiter=]",
        );
        assert_eq!(got, b"ab]", "a delimiter at the very end, blocksize {bs}");
    }
}

#[test]
fn buffersplit_keep_and_max_size_modes() {
    let text = b"abcdefg\nhi\n";
    assert_eq!(
        through(text, 3, "buffersplit keep=true ! bufferjoin delimiter=|"),
        b"abcdefg\n|hi\n|"
    );
    assert_eq!(
        through(
            text,
            3,
            "buffersplit max-size=3 oversize=truncate ! bufferjoin delimiter=|"
        ),
        b"abc|hi|"
    );
    assert_eq!(
        through(
            text,
            2,
            "buffersplit max-size=3 oversize=split ! bufferjoin delimiter=|"
        ),
        b"abc|def|g|hi|"
    );
    let dir = tmp();
    let path = file(dir.path(), "in", text);
    let out = run_expecting(
        launch(&[&format!(
            "filesrc location={} ! buffersplit max-size=3 ! fakesink",
            path.display()
        )]),
        1,
    );
    let err = stderr(&out);
    assert!(
        err.contains("buffersplit0")
            && err.contains("record at byte 0")
            && err.contains("max-size"),
        "{err}"
    );
}

#[test]
fn buffersplit_records_inside_one_buffer_are_slices_not_copies() {
    // Numbered from 0, with their stream offsets.
    let dir = tmp();
    let path = file(dir.path(), "in", b"aa\nbbb\nc");
    let out = run_expecting(
        launch(&[
            "-q",
            "--tap=buffersplit0",
            "--tap-format=json",
            &format!(
                "filesrc location={} ! buffersplit ! fakesink",
                path.display()
            ),
        ]),
        0,
    );
    let lines: Vec<serde_json::Value> = stderr(&out)
        .lines()
        .filter(|l| l.contains("\"index\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(u64, u64, u64)> = lines
        .iter()
        .map(|l| {
            (
                l["sequence"].as_u64().unwrap(),
                l["offset"].as_u64().unwrap(),
                l["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [(0, 0, 2), (1, 3, 3), (2, 7, 1)]);
}

#[test]
fn bad_delimiters_are_description_errors() {
    for bad in ["buffersplit delimiter=\"\"", r"buffersplit delimiter=\q"] {
        let out = run_expecting(
            launch(&[&format!("fakesrc num-buffers=1 ! {bad} ! fakesink")]),
            2,
        );
        assert!(
            stderr(&out).contains("delimiter"),
            "{bad}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn chunk_recuts_to_a_fixed_size_and_pads_the_last_on_request() {
    let data = random_bytes(10_000, 7);
    for bs in [1, 333, 4096, 20_000] {
        let got = through(
            &data,
            bs,
            "chunk size=1000 ! bufferjoin delimiter=| trailing=false",
        );
        let want: Vec<u8> = data.chunks(1000).collect::<Vec<_>>().join(&b'|');
        assert_eq!(got, want, "blocksize {bs}");
    }
    let got = through(
        b"abcdefg",
        2,
        "chunk size=3 pad=true fill=46 ! bufferjoin delimiter=|",
    );
    assert_eq!(got, b"abc|def|g..|");
}

#[test]
fn bufferconcat_joins_consecutive_buffers_up_to_max_bytes() {
    let data = random_bytes(10_000, 3);
    let dir = tmp();
    let path = file(dir.path(), "in", &data);
    let out = run_expecting(
        launch(&[
            "--stats=json",
            &format!(
                "filesrc location={} blocksize=100 ! bufferconcat max-bytes=1000 ! fakesink",
                path.display()
            ),
        ]),
        0,
    );
    let s = stats(&out);
    assert_eq!(element(&s, "fakesink0")["buffers"], 10);
    assert_eq!(element(&s, "fakesink0")["bytes"], 10_000);
    assert_eq!(through(&data, 77, "bufferconcat max-bytes=1000"), data);
}

#[test]
fn batch_then_unbatch_gives_back_the_very_buffers_with_their_metadata() {
    let data = random_bytes(50_000, 11);
    for exec in ["auto", "isolated", "rt"] {
        // A batch cut by end of stream too (50 records of 1000 bytes, batches of 7).
        let got = through(
            &data,
            1000,
            &format!("batch max-buffers=7 exec={exec} ! queue ! unbatch ! bufferjoin delimiter=| trailing=false"),
        );
        let want: Vec<u8> = data.chunks(1000).collect::<Vec<_>>().join(&b'|');
        assert_eq!(got, want, "exec={exec}");
    }
    let out = run_expecting(
        launch(&[
            "-q",
            "--tap=unbatch0",
            "--tap-format=json",
            "fakesrc num-buffers=5 sizetype=fixed sizemax=3 ! batch max-buffers=2 ! unbatch ! fakesink",
        ]),
        0,
    );
    let seqs: Vec<u64> = stderr(&out)
        .lines()
        .filter(|l| l.contains("\"index\""))
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["sequence"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [0, 1, 2, 3, 4], "each part keeps its own sequence");
}

#[test]
fn a_batch_with_no_limit_is_refused() {
    let out = run_expecting(
        launch(&["fakesrc num-buffers=1 ! batch max-buffers=0 ! fakesink"]),
        2,
    );
    assert!(stderr(&out).contains("never close"), "{}", stderr(&out));
}

#[test]
fn fdsink_gathers_records_but_never_holds_them_while_the_input_waits() {
    use std::io::{Read as _, Write as _};
    let mut child = spawn_piped(&[
        "-q",
        r#"fdsrc ! buffersplit delimiter="\n" ! bufferjoin delimiter="\n" ! fdsink"#,
    ]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    for round in 0..3 {
        let text = format!("one {round}\ntwo {round}\nthree {round}\n");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
        // The input stays open: every record of this write must come out now.
        let mut got = vec![0u8; text.len()];
        stdout.read_exact(&mut got).unwrap();
        assert_eq!(got, text.as_bytes(), "round {round}");
    }
    drop(stdin);
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    child.stdout = None;
    assert_eq!(code(&wait(child)), 0);
}
