//! Video codecs: rav1enc's AV1 stream (well-formed OBUs, one temporal unit a frame) and, with
//! the `av1-decode` feature, dav1ddec's decode of it (same size and caps, PSNR bound, run in a
//! worker process).

use crate::support::*;

const W: usize = 64;
const H: usize = 48;
/// Bytes of one 64x48 I420 frame.
const FRAME: usize = W * H * 3 / 2;

/// (OBU type, payload length) of each OBU of an obu-stream; panics on a malformed one.
fn obus(mut bytes: &[u8]) -> Vec<(u8, usize)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let header = bytes[0];
        assert_eq!(header & 0x80, 0, "forbidden bit set");
        assert_ne!(header & 0x02, 0, "rav1enc writes sizes in every OBU");
        let mut at = 1 + usize::from(header & 0x04 != 0);
        let mut size = 0usize;
        for i in 0..8 {
            let b = bytes[at];
            at += 1;
            size |= ((b & 0x7f) as usize) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
        }
        out.push(((header >> 3) & 0x0f, size));
        bytes = &bytes[at + size..];
    }
    out
}

#[test]
fn rav1enc_writes_one_temporal_unit_per_frame() {
    let dir = tmp();
    let out = dir.path().join("a.obu");
    let o = run(launch(&[
        "-q",
        "videotestsrc num-buffers=6 ! video/x-raw,width=64,height=48 ! rav1enc speed-preset=10 ! filesink",
        &prop("location", &out),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let bytes = std::fs::read(&out).unwrap();
    let obus = obus(&bytes);
    // Temporal delimiter (2), then the sequence header (1) of the key frame.
    assert_eq!(obus[0], (2, 0));
    assert_eq!(obus[1].0, 1);
    assert_eq!(obus.iter().filter(|o| o.0 == 2).count(), 6);
    // Far smaller than the raw frames.
    assert!(bytes.len() < 6 * FRAME / 4, "{} bytes", bytes.len());
}

#[test]
fn rav1enc_caps_carry_the_picture_size() {
    let o = run(launch(&[
        "-v",
        "videotestsrc num-buffers=1 ! video/x-raw,width=64,height=48,framerate=25/1 ! rav1enc speed-preset=10 ! fakesink",
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o);
    assert!(
        text.contains("rav1enc0.src: caps = video/x-av1, stream-format=(string)obu-stream, alignment=(string)tu, width=(int)64, height=(int)48, framerate=(fraction)25/1"),
        "{text}"
    );
}

#[test]
fn rav1enc_takes_only_i420() {
    let o = run(launch(&[
        "videotestsrc num-buffers=1 ! video/x-raw,format=RGB ! rav1enc ! fakesink",
    ]));
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("rav1enc"), "{}", stderr(&o));
}

#[cfg(not(feature = "av1-decode"))]
#[test]
fn dav1ddec_names_its_feature_when_the_build_lacks_it() {
    let o = run(launch(&["fakesrc ! dav1ddec ! fakesink"]));
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("`dav1ddec` comes with the `av1-decode` feature"),
        "{}",
        stderr(&o)
    );
}

/// PSNR in dB of `b` against `a`.
#[cfg(feature = "av1-decode")]
fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0 * 255.0 / mse.max(1e-9)).log10()
}

#[cfg(feature = "av1-decode")]
#[test]
fn rav1enc_to_dav1ddec_keeps_size_caps_and_quality() {
    let dir = tmp();
    let raw = dir.path().join("raw.yuv");
    let dec = dir.path().join("dec.yuv");
    let o = run(launch(&[
        "-v",
        "videotestsrc num-buffers=5 ! video/x-raw,width=64,height=48 ! tee name=t",
        "t. ! queue ! filesink",
        &prop("location", &raw),
        "t. ! queue ! rav1enc speed-preset=10 ! dav1ddec ! filesink",
        &prop("location", &dec),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o);
    assert!(
        text.contains("dav1ddec0: exec = isolated (planner: native code runs in a worker process)"),
        "{text}"
    );
    assert!(
        text.contains("dav1ddec0.src: caps = video/x-raw, format=(string)I420, width=(int)64, height=(int)48, framerate=(fraction)30/1"),
        "{text}"
    );
    let (raw, dec) = (std::fs::read(&raw).unwrap(), std::fs::read(&dec).unwrap());
    assert_eq!(raw.len(), 5 * FRAME);
    assert_eq!(dec.len(), raw.len());
    for f in 0..5 {
        let r = &raw[f * FRAME..(f + 1) * FRAME];
        let d = &dec[f * FRAME..(f + 1) * FRAME];
        let db = psnr(r, d);
        // Quantizer 100 (the default) on the colour bars gives about 44 dB.
        assert!(db > 35.0, "frame {f}: PSNR {db:.1} dB");
    }
}

#[cfg(feature = "av1-decode")]
#[test]
fn dav1ddec_rejects_garbage_naming_itself_and_the_offset() {
    let dir = tmp();
    let junk = file(dir.path(), "junk.obu", &random_bytes(3000, 7));
    let o = run(launch(&[
        "filesrc",
        &prop("location", &junk),
        "blocksize=1000",
        "!",
        "video/x-av1,width=64,height=48",
        "!",
        "dav1ddec",
        "!",
        "fakesink",
    ]));
    assert_ne!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("dav1ddec0: libdav1d rejects the AV1 data at byte offset"),
        "{err}"
    );
    assert!(err.contains("byte offset"), "{err}");
}
