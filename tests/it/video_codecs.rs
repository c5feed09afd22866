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

#[cfg(feature = "h264")]
mod h264 {
    use super::*;

    /// Annex B NAL unit types of a byte stream, in order.
    fn nal_types(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i + 3 < bytes.len() {
            if bytes[i] == 0 && bytes[i + 1] == 0 && bytes[i + 2] == 1 {
                out.push(bytes[i + 3] & 0x1f);
                i += 3;
            } else {
                i += 1;
            }
        }
        out
    }

    #[test]
    fn openh264enc_parse_and_decode_keep_size_and_quality() {
        let dir = tmp();
        let (raw, h264, dec) = (
            dir.path().join("raw.yuv"),
            dir.path().join("a.h264"),
            dir.path().join("dec.yuv"),
        );
        let o = run(launch(&[
            "-q",
            "videotestsrc num-buffers=10 ! video/x-raw,width=64,height=48 ! tee name=t",
            "t. ! queue ! filesink",
            &prop("location", &raw),
            "t. ! queue ! openh264enc ! filesink",
            &prop("location", &h264),
        ]));
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let stream = std::fs::read(&h264).unwrap();
        let types = nal_types(&stream);
        // SPS, PPS, then an IDR slice; the rest are P slices.
        assert_eq!(&types[..3], &[7, 8, 5], "{types:?}");
        assert_eq!(types.iter().filter(|t| matches!(t, 1 | 5)).count(), 10);
        // Read back in odd-sized blocks: h264parse finds the access units again.
        let o = run(launch(&[
            "-v",
            "filesrc",
            &prop("location", &h264),
            "blocksize=37",
            "!",
            "video/x-h264",
            "!",
            "h264parse",
            "!",
            "video/x-h264,width=64,height=48",
            "!",
            "openh264dec",
            "!",
            "filesink",
            &prop("location", &dec),
        ]));
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o);
        assert!(
            text.contains(
                "openh264dec0: exec = isolated (planner: native code runs in a worker process)"
            ),
            "{text}"
        );
        let (raw, dec) = (std::fs::read(&raw).unwrap(), std::fs::read(&dec).unwrap());
        assert_eq!(raw.len(), 10 * FRAME);
        assert_eq!(dec.len(), raw.len());
        let mse = raw
            .iter()
            .zip(&dec)
            .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
            .sum::<f64>()
            / raw.len() as f64;
        let psnr = 10.0 * (255.0f64 * 255.0 / mse).log10();
        // OpenH264's quality mode on the colour bars gives about 45 dB.
        assert!(psnr > 35.0, "PSNR {psnr:.1} dB");
    }

    #[test]
    fn h264parse_and_openh264dec_reject_garbage_naming_the_offset() {
        let dir = tmp();
        let junk = file(
            dir.path(),
            "junk.h264",
            &[b"not h264 at all".as_slice(); 10].concat(),
        );
        let o = run(launch(&[
            "filesrc",
            &prop("location", &junk),
            "!",
            "video/x-h264",
            "!",
            "h264parse",
            "!",
            "fakesink",
        ]));
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        assert!(
            stderr(&o).contains("h264parse0: no start code at byte offset 0"),
            "{}",
            stderr(&o)
        );
        // Start codes around random bytes reach the decoder, which refuses them.
        let mut bytes = Vec::new();
        for seed in 0..5 {
            bytes.extend_from_slice(&[0, 0, 0, 1, 0x65]);
            bytes.extend_from_slice(&random_bytes(200, seed));
        }
        let junk = file(dir.path(), "nals.h264", &bytes);
        let o = run(launch(&[
            "filesrc",
            &prop("location", &junk),
            "!",
            "video/x-h264",
            "!",
            "h264parse",
            "!",
            "video/x-h264,width=64,height=48",
            "!",
            "openh264dec",
            "!",
            "fakesink",
        ]));
        // No picture comes out of it, and never a crash of the pipeline.
        assert!(matches!(code(&o), 0 | 1), "{}", stderr(&o));
        if code(&o) == 1 {
            assert!(stderr(&o).contains("openh264dec0"), "{}", stderr(&o));
        }
    }

    #[test]
    fn a_stream_gst_encodes_decodes_as_gst_decodes_it() {
        let dir = tmp();
        let (h264, ours, theirs) = (
            dir.path().join("gst.h264"),
            dir.path().join("ours.yuv"),
            dir.path().join("theirs.yuv"),
        );
        let gst = |args: &str| {
            let ok = std::process::Command::new("gst-launch-1.0")
                .arg("-q")
                .args(args.split(' '))
                .status()
                .expect("gst-launch-1.0 is installed by .ci/run")
                .success();
            assert!(ok, "gst-launch-1.0 {args}");
        };
        gst(&format!(
            "videotestsrc num-buffers=8 pattern=ball ! video/x-raw,format=I420,width=96,height=64 ! openh264enc ! video/x-h264,stream-format=byte-stream ! filesink location={}",
            h264.display()
        ));
        gst(&format!(
            "filesrc location={} ! h264parse ! openh264dec ! video/x-raw,format=I420 ! filesink location={}",
            h264.display(),
            theirs.display()
        ));
        let o = run(launch(&[
            "-q",
            "filesrc",
            &prop("location", &h264),
            "!",
            "video/x-h264",
            "!",
            "h264parse",
            "!",
            "video/x-h264,width=96,height=64",
            "!",
            "openh264dec",
            "!",
            "filesink",
            &prop("location", &ours),
        ]));
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let (ours, theirs) = (
            std::fs::read(&ours).unwrap(),
            std::fs::read(&theirs).unwrap(),
        );
        assert_eq!(ours.len(), 8 * 96 * 64 * 3 / 2);
        assert!(ours == theirs, "decoded frames differ from gst's");
    }

    /// An MP4 gst muxes from its own H.264 encode decodes as gst's qtdemux ! h264parse !
    /// openh264dec decodes it, explicitly and through decodebin: h264parse turns qtdemux's
    /// avc samples into the byte stream openh264dec takes.
    #[test]
    fn h264_in_mp4_decodes_as_gst_decodes_it() {
        let dir = tmp();
        let path = |n: &str| dir.path().join(n);
        let gst = |args: &str| {
            let o = std::process::Command::new("gst-launch-1.0")
                .arg("-q")
                .args(args.split(' '))
                .output()
                .expect("gst-launch-1.0 is installed by .ci/run");
            assert!(
                o.status.success(),
                "gst-launch-1.0 {args}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        gst(&format!(
            "videotestsrc num-buffers=30 pattern=ball ! video/x-raw,format=I420,width=96,height=64,framerate=30/1 ! openh264enc gop-size=10 ! h264parse ! mp4mux ! filesink location={}",
            path("v.mp4").display()
        ));
        gst(&format!(
            "filesrc location={} ! qtdemux ! h264parse ! openh264dec ! video/x-raw,format=I420 ! filesink location={}",
            path("v.mp4").display(),
            path("theirs.yuv").display()
        ));
        let o = run(launch(&[
            "-q",
            "filesrc",
            &prop("location", &path("v.mp4")),
            "! qtdemux ! h264parse ! openh264dec ! filesink",
            &prop("location", &path("ours.yuv")),
        ]));
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let o = run(launch(&[
            "-v",
            "filesrc",
            &prop("location", &path("v.mp4")),
            "! decodebin ! filesink",
            &prop("location", &path("auto.yuv")),
        ]));
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(
            stderr(&o).contains("decodebin0: chose qtdemux; video_0: h264parse ! openh264dec"),
            "{}",
            stderr(&o)
        );
        let read = |n: &str| std::fs::read(path(n)).unwrap();
        let (ours, theirs, auto) = (read("ours.yuv"), read("theirs.yuv"), read("auto.yuv"));
        let frame = 96 * 64 * 3 / 2;
        assert_eq!(theirs.len(), 30 * frame);
        assert_eq!(ours.len(), theirs.len());
        assert!(
            ours == auto,
            "decodebin's frames differ from the explicit chain's"
        );
        // Both sides are OpenH264: the pixels agree (within a rounding step where they differ).
        let worst = ours.iter().zip(&theirs).map(|(a, b)| a.abs_diff(*b)).max();
        assert!(worst <= Some(2), "a pixel differs by {worst:?}");
    }

    /// An H.264 + AAC transport stream gst muxes decodes through decodebin as gst's tsdemux !
    /// h264parse ! openh264dec decodes it: tsdemux reads the picture size from the stream's
    /// SPS when the description is validated, so openh264dec is planned with it.
    #[test]
    fn h264_in_ts_decodes_through_decodebin_as_gst_decodes_it() {
        let dir = tmp();
        let ts = crate::mpegts::h264_aac(dir.path());
        let theirs = dir.path().join("theirs.yuv");
        let ours = dir.path().join("ours.yuv");
        let ok = std::process::Command::new("gst-launch-1.0")
            .arg("-q")
            .args(
                format!(
                    "filesrc location={} ! tsdemux ! h264parse ! openh264dec ! \
                     video/x-raw,format=I420 ! filesink location={}",
                    ts.display(),
                    theirs.display()
                )
                .split_whitespace(),
            )
            .status()
            .expect("gst-launch-1.0 is installed by .ci/run")
            .success();
        assert!(ok, "gst's decode of the transport stream");
        let o = run(launch(&[
            "-v",
            "filesrc",
            &prop("location", &ts),
            "! decodebin name=d d. ! queue ! filesink",
            &prop("location", &ours),
            "d. ! queue ! audioconvert ! fakesink",
        ]));
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(
                "/pipeline0/d: chose tsdemux; video_0_0041: h264parse ! openh264dec; \
                 audio_0_0042: aacparse ! avdec_aac"
            ),
            "{err}"
        );
        assert!(
            err.contains(
                "/pipeline0/d/tsdemux0.video_0_0041: caps = video/x-h264, \
                 stream-format=(string)byte-stream, width=(int)320, height=(int)240, \
                 pixel-aspect-ratio=(fraction)1/1, interlace-mode=(string)progressive, \
                 chroma-format=(string)4:2:0, bit-depth-luma=(int)8, bit-depth-chroma=(int)8, \
                 profile=(string)constrained-baseline, level=(string)1.3"
            ),
            "{err}"
        );
        assert!(
            err.contains("/pipeline0/d/openh264dec0.src: caps = video/x-raw, format=(string)I420, width=(int)320, height=(int)240"),
            "{err}"
        );
        let (ours, theirs) = (std::fs::read(ours).unwrap(), std::fs::read(theirs).unwrap());
        assert_eq!(theirs.len(), 30 * 320 * 240 * 3 / 2);
        assert_eq!(ours.len(), theirs.len());
        // Both sides are OpenH264: every pixel within a rounding step of gst's (equal here).
        let worst = ours.iter().zip(&theirs).map(|(a, b)| a.abs_diff(*b)).max();
        assert!(worst <= Some(2), "a pixel differs by {worst:?}");
    }
}
