//! tsdemux and tsparse on transport streams gst's mpegtsmux makes, against gst's tsdemux
//! sample by sample, through decodebin, and on damaged streams.

use super::containers::{compare_demuxer_with_gst, gst, gst_seen, our_seen, ours, wav_data, Seen};
use super::support::*;

/// One buffer as a sink saw it: size, pts, dts (a TS gives no duration gst and we agree on).
type Timing = (usize, Option<u64>, Option<u64>);

fn timing(seen: Vec<Seen>) -> Vec<Timing> {
    seen.into_iter()
        .map(|(size, pts, dts, _, _)| (size, pts, dts))
        .collect()
}

/// tsdemux's pads against gst's: every buffer's size, pts and dts.
fn compare_with_gst(ts: &std::path::Path, pads: &[&str]) {
    compare_demuxer_with_gst(
        "tsdemux",
        ts,
        pads,
        6,
        |out, name| timing(gst_seen(out, name)),
        |err, name| timing(our_seen(err, name)),
    );
}

/// A transport stream with H.264 video (PID 0x41) and AAC audio (0x42).
pub(crate) fn h264_aac(dir: &std::path::Path) -> std::path::PathBuf {
    let ts = dir.join("av.ts");
    gst(&format!(
        "videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         openh264enc ! h264parse ! queue ! mpegtsmux name=m ! filesink location={} \
         audiotestsrc num-buffers=40 ! audio/x-raw,rate=44100,channels=2 ! voaacenc ! aacparse ! \
         queue ! m.",
        ts.display()
    ));
    ts
}

/// A transport stream with MP3 audio (PID 0x41).
fn mp3(dir: &std::path::Path, buffers: u32) -> std::path::PathBuf {
    let ts = dir.join("a.ts");
    gst(&format!(
        "audiotestsrc num-buffers={buffers} ! audio/x-raw,rate=44100,channels=2 ! lamemp3enc ! \
         mpegaudioparse ! mpegtsmux ! filesink location={}",
        ts.display()
    ));
    ts
}

#[test]
fn tsdemux_gives_gsts_buffers_and_timestamps_for_h264_aac_and_mp3() {
    if !gst_has(&[
        "openh264enc",
        "voaacenc",
        "lamemp3enc",
        "mpegtsmux",
        "tsdemux",
        "h264parse",
        "aacparse",
        "mpegaudioparse",
    ]) {
        return;
    }
    let dir = tmp();
    let av = h264_aac(dir.path());
    compare_with_gst(&av, &["video_0_0041", "audio_0_0042"]);
    compare_with_gst(&mp3(dir.path(), 100), &["audio_0_0041"]);
    // Pads are named as gst names them, with gst's caps; `d.` takes the next stream its
    // downstream accepts.
    let o = ours(&[
        "-v",
        "filesrc",
        &prop("location", &av),
        "! tsdemux name=d d. ! queue ! audio/mpeg ! fakesink d. ! queue ! video/x-h264 ! fakesink",
    ]);
    let err = stderr(&o);
    assert!(
        err.contains("/pipeline0/d.audio_0_0042 -> /pipeline0/queue0.sink"),
        "{err}"
    );
    assert!(
        err.contains("/pipeline0/d.video_0_0041 -> /pipeline0/queue1.sink"),
        "{err}"
    );
    assert!(
        err.contains("d.video_0_0041: caps = video/x-h264, stream-format=(string)byte-stream"),
        "{err}"
    );
    assert!(
        err.contains(
            "d.audio_0_0042: caps = audio/mpeg, mpegversion=(int)4, stream-format=(string)adts"
        ),
        "{err}"
    );
    // A program the file lacks, a pad it lacks.
    let o = run(launch(&[
        "filesrc",
        &prop("location", &av),
        "! tsdemux program-number=7 ! fakesink",
    ]));
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("the program association table has no program 7"),
        "{}",
        stderr(&o)
    );
    let o = run(launch(&[
        "filesrc",
        &prop("location", &av),
        "! tsdemux name=d d.audio_0_0043 ! fakesink",
    ]));
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains(
            "d has no pad `audio_0_0043`: the file's tracks are video_0_0041 (video/x-h264), \
             audio_0_0042 (audio/mpeg)"
        ),
        "{}",
        stderr(&o)
    );
    // program-number=1 is the program mpegtsmux writes.
    ours(&[
        "-q",
        "filesrc",
        &prop("location", &av),
        "! tsdemux program-number=1 name=d d.video_0_0041 ! fakesink",
    ]);
}

#[test]
fn decodebin_on_ts_with_mp3_gives_the_explicit_chain() {
    if !gst_has(&["lamemp3enc", "mpegtsmux", "mpegaudioparse"]) {
        return;
    }
    let dir = tmp();
    let ts = mp3(dir.path(), 60);
    let out = |name: &str| dir.path().join(name);
    let o = ours(&[
        "-v",
        "filesrc",
        &prop("location", &ts),
        "! decodebin ! audioconvert ! wavenc ! filesink",
        &prop("location", &out("auto.wav")),
    ]);
    assert!(
        stderr(&o).contains(
            "/pipeline0/decodebin0: chose tsdemux; audio_0_0041: mpegaudioparse ! mpg123audiodec"
        ),
        "{}",
        stderr(&o)
    );
    ours(&[
        "-q",
        "filesrc",
        &prop("location", &ts),
        "! tsdemux ! mpegaudioparse ! mpg123audiodec ! audioconvert ! wavenc ! filesink",
        &prop("location", &out("explicit.wav")),
    ]);
    let auto = wav_data(&out("auto.wav"));
    assert!(auto.len() > 40 * 1024 * 4, "{}", auto.len());
    assert!(auto == wav_data(&out("explicit.wav")));
    // typefind says what it is.
    let o = ours(&[
        "-v",
        "filesrc",
        &prop("location", &ts),
        "! typefind ! fakesink",
    ]);
    assert!(
        stderr(&o).contains("video/mpegts, systemstream=(boolean)true, packetsize=(int)188"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn tsparse_passes_whole_packets_and_drops_garbage() {
    if !gst_has(&["lamemp3enc", "mpegtsmux", "mpegaudioparse"]) {
        return;
    }
    let dir = tmp();
    let ts = mp3(dir.path(), 60);
    let bytes = std::fs::read(&ts).unwrap();
    let out = dir.path().join("out.ts");
    ours(&[
        "-q",
        "filesrc",
        &prop("location", &ts),
        "blocksize=1000",
        "! tsparse set-timestamps=true ! filesink",
        &prop("location", &out),
    ]);
    assert!(std::fs::read(&out).unwrap() == bytes);
    // Garbage between packets goes, with a warning naming the byte.
    let mut bad = bytes[..188 * 10].to_vec();
    bad.extend_from_slice(&[1, 2, 3, 0x47, 5, 6, 7]);
    bad.extend_from_slice(&bytes[188 * 10..]);
    let bad = file(dir.path(), "bad.ts", &bad);
    let o = ours(&[
        "filesrc",
        &prop("location", &bad),
        "! tsparse ! filesink",
        &prop("location", &out),
    ]);
    assert!(std::fs::read(&out).unwrap() == bytes);
    assert!(
        stderr(&o).contains(
            "tsparse0: lost sync at byte 1880, resynchronised at byte 1887 (7 bytes skipped)"
        ),
        "{}",
        stderr(&o)
    );
    // alignment=7: buffers of 7 packets, the last padded with null packets as gst's.
    let o = ours(&[
        "-q",
        "--tap-format=json",
        "--tap=t",
        "filesrc",
        &prop("location", &ts),
        "! tsparse alignment=7 ! identity name=t ! filesink",
        &prop("location", &out),
    ]);
    let sizes: Vec<u64> = stderr(&o)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("index").is_some())
        .map(|v| v["size"].as_u64().unwrap())
        .collect();
    let packets = bytes.len() / 188;
    assert_eq!(sizes.len(), packets.div_ceil(7));
    assert!(sizes.iter().all(|s| *s == 7 * 188));
    let padded = std::fs::read(&out).unwrap();
    assert!(padded[..bytes.len()] == bytes[..]);
}

#[test]
fn damaged_transport_streams_fail_naming_tsdemux_and_the_byte() {
    if !gst_has(&["lamemp3enc", "mpegtsmux", "mpegaudioparse"]) {
        return;
    }
    let dir = tmp();
    let ts = mp3(dir.path(), 60);
    let bytes = std::fs::read(&ts).unwrap();
    let demux = |path: &std::path::Path| {
        run(launch(&[
            "filesrc",
            &prop("location", path),
            "! tsdemux name=d d.audio_0_0041 ! fakesink",
        ]))
    };
    // Cut mid-packet: the last PES is given and the cut is a warning naming the byte.
    let cut = file(dir.path(), "cut.ts", &bytes[..bytes.len() / 2 + 100]);
    let o = demux(&cut);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("d: the stream ends inside a packet at byte"),
        "{}",
        stderr(&o)
    );
    // A lost packet: a continuity warning naming PID and byte; the run goes on.
    let mut lost = bytes[..188 * 20].to_vec();
    lost.extend_from_slice(&bytes[188 * 21..]);
    let lost = file(dir.path(), "lost.ts", &lost);
    let o = demux(&lost);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("d: continuity counter of PID 0x0041 jumps from"),
        "{}",
        stderr(&o)
    );
    // Random bytes: an error naming tsdemux and the byte, exit 1.
    let noise = file(dir.path(), "noise.ts", &random_bytes(3 << 20, 7));
    let o = run(launch(&[
        "-q",
        "filesrc",
        &prop("location", &noise),
        "! tsdemux ! fakesink",
    ]));
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("tsdemux0: ")
            && stderr(&o).contains("not a transport stream (at byte 0)"),
        "{}",
        stderr(&o)
    );
    let o = run(launch(&[
        "-q",
        "filesrc",
        &prop("location", &noise),
        "! tsparse ! fakesink",
    ]));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("tsparse0: no MPEG-TS packet"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("(at byte 0)"), "{}", stderr(&o));
    // Flipped bytes: a run, a warning or an error; never a crash.
    for seed in 0..20u64 {
        let mut bad = bytes.clone();
        for (k, r) in random_bytes(24, seed).chunks(3).enumerate() {
            let at = (usize::from(r[0]) << 8 | usize::from(r[1])) * (k + 1) % bad.len();
            bad[at] ^= r[2] | 1;
        }
        let f = file(dir.path(), "bad.ts", &bad);
        let o = run(launch(&[
            "-q",
            "filesrc",
            &prop("location", &f),
            "! tsdemux ! fakesink",
        ]));
        assert!([0, 1, 2].contains(&code(&o)), "seed {seed}: {}", stderr(&o));
        assert!(
            !stderr(&o).contains("panicked"),
            "seed {seed}: {}",
            stderr(&o)
        );
    }
}
