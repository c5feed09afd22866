//! The lossy audio decoders against gst's own: MP3, AAC and Ogg Vorbis files that gst encodes
//! (lamemp3enc, voaacenc, vorbisenc) decode here as gst-launch-1.0 decodes them, within a
//! stated sample error, with the caps the stream says; damaged files are errors naming the
//! element and the byte.

use crate::support::*;
use std::path::{Path, PathBuf};

fn gst(line: &str) {
    let ok = std::process::Command::new("gst-launch-1.0")
        .arg("-q")
        .args(line.split(' '))
        .status()
        .expect("gst-launch-1.0 runs")
        .success();
    assert!(ok, "gst-launch-1.0 {line}");
}

/// A coded file of 40 buffers of ticks at `rate` and `channels`, made by gst with `encoder`,
/// and gst's decode of it with `decoder` as F32LE samples.
fn fixture(
    dir: &Path,
    name: &str,
    (rate, channels): (u32, u32),
    encoder: &str,
    decoder: &str,
) -> (PathBuf, Vec<f32>) {
    let coded = dir.join(name);
    gst(&format!(
        "audiotestsrc num-buffers=40 wave=ticks volume=0.6 ! \
         audio/x-raw,rate={rate},channels={channels} ! {encoder} ! filesink location={}",
        coded.display()
    ));
    let raw = dir.join(format!("{name}.gst.raw"));
    gst(&format!(
        "filesrc location={} ! {decoder} ! audioconvert ! audio/x-raw,format=F32LE ! \
         filesink location={}",
        coded.display(),
        raw.display()
    ));
    (coded, f32s(&std::fs::read(raw).unwrap()))
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Our decode of `coded` through `line` into a WAV file: its rate, channels, F32 samples.
fn ours(dir: &Path, coded: &Path, line: &str) -> (u32, u32, Vec<f32>) {
    let wav = dir.join("ours.wav");
    let o = run(launch(&[
        "-q",
        "filesrc",
        &prop("location", coded),
        &format!("! {line} ! audioconvert ! audio/x-raw,format=F32LE ! wavenc ! filesink"),
        &prop("location", &wav),
    ]));
    assert_eq!(code(&o), 0, "{line}: {}", stderr(&o));
    let wav = std::fs::read(&wav).unwrap();
    (
        u32::from_le_bytes(wav[24..28].try_into().unwrap()),
        u16::from_le_bytes(wav[22..24].try_into().unwrap()) as u32,
        f32s(&wav[44..]),
    )
}

/// The largest difference between `ours` from sample `skip` on and `theirs`, which must be as
/// long but for `slack` samples at the end.
fn max_error(ours: &[f32], theirs: &[f32], skip: usize, slack: usize) -> f32 {
    let n = ours.len() - skip;
    assert!(
        n.abs_diff(theirs.len()) <= slack,
        "sample counts differ: {n} {}",
        theirs.len()
    );
    ours[skip..]
        .iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

#[test]
fn mp3_decodes_as_gst_mpg123audiodec_does() {
    if !gst_has(&["lamemp3enc", "mpg123audiodec"]) {
        return;
    }
    let dir = tmp();
    for (format, name) in [((44100, 2), "a.mp3"), ((22050, 1), "b.mp3")] {
        let (mp3, theirs) = fixture(
            dir.path(),
            name,
            format,
            "lamemp3enc",
            "mpegaudioparse ! mpg123audiodec",
        );
        for line in ["mpegaudioparse ! mpg123audiodec", "mpg123audiodec"] {
            let (rate, channels, samples) = ours(dir.path(), &mp3, line);
            assert_eq!((rate, channels), format, "{name}: {line}");
            // Both round to 16 bits: two steps of 2^-15 at most.
            let e = max_error(&samples, &theirs, 0, 0);
            assert!(e <= 2.0 / 32768.0, "{name}: {line}: error {e}");
        }
    }
}

#[test]
fn aac_decodes_as_gst_faad_does() {
    if !gst_has(&["voaacenc", "faad"]) {
        return;
    }
    let dir = tmp();
    let (aac, theirs) = fixture(
        dir.path(),
        "a.aac",
        (44100, 2),
        "voaacenc ! aacparse ! audio/mpeg,stream-format=adts",
        "aacparse ! faad",
    );
    for line in ["aacparse ! avdec_aac", "aacparse ! faad", "avdec_aac"] {
        let (rate, channels, samples) = ours(dir.path(), &aac, line);
        assert_eq!((rate, channels), (44100, 2), "{line}");
        // faad drops the first frame (the encoder's priming), which is passed on here as
        // avdec_aac passes it: 1024 samples a channel; faad rounds to 16 bits.
        let e = max_error(&samples, &theirs, 1024 * 2, 0);
        assert!(e <= 2.0 / 32768.0, "{line}: error {e}");
    }
}

#[test]
fn ogg_vorbis_decodes_as_gst_vorbisdec_does() {
    if !gst_has(&["vorbisenc"]) {
        return;
    }
    let dir = tmp();
    for (format, name) in [((44100, 2), "a.ogg"), ((48000, 1), "b.ogg")] {
        let (ogg, theirs) = fixture(
            dir.path(),
            name,
            format,
            "vorbisenc ! oggmux",
            "oggdemux ! vorbisdec",
        );
        let (rate, channels, samples) = ours(dir.path(), &ogg, "oggdemux ! vorbisdec");
        assert_eq!((rate, channels), format, "{name}");
        // Both decode in floats: the same samples to rounding, and as many (the last page's
        // granule position trims the end) but for one: gst clips by timestamps, rounded, and
        // may keep a sample past the granule position.
        let e = max_error(&samples, &theirs, 0, format.1 as usize);
        assert!(e <= 1e-5, "{name}: error {e}");
    }
}

#[test]
fn decoders_give_the_stream_s_caps_and_timestamps() {
    if !gst_has(&["lamemp3enc"]) {
        return;
    }
    let dir = tmp();
    let (mp3, _) = fixture(
        dir.path(),
        "a.mp3",
        (32000, 1),
        "lamemp3enc",
        "mpegaudioparse ! mpg123audiodec",
    );
    let o = run(launch(&[
        "-v",
        "filesrc",
        &prop("location", &mp3),
        "! mpegaudioparse ! mpg123audiodec ! fakesink silent=false",
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(
        out.contains(
            "mpegaudioparse0.src: caps = audio/mpeg, mpegversion=(int)1, mpegaudioversion=(int)1, \
             layer=(int)3, rate=(int)32000, channels=(int)1, parsed=(boolean)true"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "mpg123audiodec0.src: caps = audio/x-raw, format=(string)S16LE, \
             layout=(string)interleaved, rate=(int)32000, channels=(int)1"
        ),
        "{out}"
    );
    // 1152 samples a frame at 32 kHz: 36 ms each.
    assert!(out.contains("0:00:00.036000000"), "{out}");
}

#[test]
fn damaged_files_fail_naming_the_element_and_the_byte() {
    if !gst_has(&["lamemp3enc", "vorbisenc", "voaacenc"]) {
        return;
    }
    let dir = tmp();
    let cases = [
        (
            "a.mp3",
            "lamemp3enc",
            "mpegaudioparse ! mpg123audiodec",
            "mpegaudioparse0",
        ),
        (
            "a.aac",
            "voaacenc ! aacparse ! audio/mpeg,stream-format=adts",
            "aacparse ! avdec_aac",
            "aacparse0",
        ),
        (
            "a.ogg",
            "vorbisenc ! oggmux",
            "oggdemux ! vorbisdec",
            "oggdemux0",
        ),
    ];
    for (name, encoder, line, parser) in cases {
        let coded = dir.path().join(name);
        gst(&format!(
            "audiotestsrc num-buffers=40 ! {encoder} ! filesink location={}",
            coded.display()
        ));
        let bytes = std::fs::read(&coded).unwrap();
        let cut = file(dir.path(), "cut", &bytes[..bytes.len() / 2 + 1]);
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        for b in &mut flipped[mid..mid + 8] {
            *b ^= 0xFF;
        }
        let flipped = file(dir.path(), "flipped", &flipped);
        let junk = file(dir.path(), "junk", &random_bytes(20_000, 3));
        for (path, what) in [(&cut, "cut"), (&flipped, "flipped"), (&junk, "junk")] {
            let o = run(launch(&[
                "filesrc",
                &prop("location", path),
                &format!("! {line} ! fakesink"),
            ]));
            let e = stderr(&o);
            // Ogg pages carry a CRC; an MP3 or AAC frame whose bytes flip where its header
            // holds decodes to noise without a word (as with gst's decoders), or fails.
            if what == "flipped" && !name.ends_with(".ogg") && code(&o) == 0 {
                continue;
            }
            assert_eq!(code(&o), 1, "{name} {what}: {e}");
            assert!(e.contains("(at byte "), "{name} {what}: {e}");
            if what != "flipped" {
                assert!(e.contains(&format!("{parser}: ")), "{name} {what}: {e}");
            }
        }
    }
}
