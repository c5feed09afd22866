//! streampay / streamdepay: buffers with their metadata over a byte transport and back.

use super::*;

/// The `--tap` JSON lines of `stderr`, without the tap's own name and running index.
fn tapped(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter(|l| l.starts_with("{\"tap\""))
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("tap");
            o.remove("index");
            v
        })
        .collect()
}

#[test]
fn buffers_and_their_metadata_cross_tcp_and_the_stream_ends_with_the_writer() {
    let dir = tmp();
    let data = random_bytes(1_000_003, 71);
    let input = file(dir.path(), "in.bin", &data);
    let mut server = Proc::spawn(
        &[
            "-q",
            "--tap-format=json",
            "--tap",
            "d",
            "tcpserversrc host=127.0.0.1 port=0 ! streamdepay name=d ! fdsink",
        ],
        None,
    );
    let port = server.port();
    let client = run_args(&[
        "-q",
        "--tap-format=json",
        "--tap",
        "m",
        &format!(
            "filesrc {} blocksize=65521 ! metadatainject name=m set=\"who=tester,n=(int)-3\" \
             ! streampay ! tcpclientsink host=127.0.0.1 port={port}",
            prop("location", &input)
        ),
    ])
    .ok();
    let server = server.finish().ok();
    server.assert_stdout(&data);
    let sent = tapped(&client.stderr);
    let got = tapped(&server.stderr);
    assert!(sent.len() >= data.len().div_ceil(65521));
    assert_eq!(got, sent, "metadata and heads arrive as sent");
    assert_eq!(got[1]["fields"]["n"], -3);
}

#[test]
fn a_framed_file_reads_back_in_any_block_size_and_a_cut_one_is_an_error() {
    let dir = tmp();
    let data = random_bytes(300_001, 72);
    let input = file(dir.path(), "in.bin", &data);
    let framed = dir.path().join("framed.strm");
    run_args(&[
        "-q",
        &format!(
            "filesrc {} blocksize=4096 ! streampay ! filesink {}",
            prop("location", &input),
            prop("location", &framed)
        ),
    ])
    .ok();
    for bs in ["1", "13", "4096", "1000000"] {
        let out = run_args(&[
            "-q",
            &format!(
                "filesrc {} blocksize={bs} ! streamdepay ! fdsink",
                prop("location", &framed)
            ),
        ])
        .ok();
        out.assert_stdout(&data);
    }
    // Cut in the middle of a frame: the bytes before it arrive, then an error naming where.
    let bytes = std::fs::read(&framed).unwrap();
    let cut = file(dir.path(), "cut.strm", &bytes[..bytes.len() / 2]);
    let out = run_args(&[
        "-q",
        &format!("filesrc {} ! streamdepay ! fdsink", prop("location", &cut)),
    ]);
    out.fails_with(1, "the stream ends inside a frame");
    assert!(data.starts_with(&out.stdout) && !out.stdout.is_empty());
    // A flipped byte: an error at that frame, or with on-error=drop one buffer fewer.
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 3] ^= 0x40;
    let bad = file(dir.path(), "bad.strm", &flipped);
    run_args(&[
        "-q",
        &format!(
            "filesrc {} ! streamdepay ! fakesink",
            prop("location", &bad)
        ),
    ])
    .fails_with(1, "bad stream frame at byte");
    let out = run_args(&[
        "-q",
        "--stats=json",
        &format!(
            "filesrc {} ! streamdepay on-error=drop ! fakesink",
            prop("location", &bad)
        ),
    ])
    .ok();
    let stats = out.stats();
    assert_eq!(
        element(&stats, "fakesink0")["buffers"],
        300_001u64.div_ceil(4096) - 1
    );
}
