//! Image codecs through the real binaries: round trips, files typefound at validation, bad
//! files as errors naming the element and the byte, and the feature report.

use crate::support::*;

#[test]
fn png_round_trip_is_bit_exact() {
    let dir = tmp();
    let (raw, back) = (dir.path().join("raw"), dir.path().join("back"));
    let o = run(launch(&[
        "-q",
        "videotestsrc num-buffers=1 ! video/x-raw,format=RGBA ! tee name=t ! filesink",
        &prop("location", &raw),
        "t. ! queue ! pngenc ! pngdec ! filesink",
        &prop("location", &back),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let raw = std::fs::read(&raw).unwrap();
    assert_eq!(raw.len(), 320 * 240 * 4);
    assert_eq!(raw, std::fs::read(&back).unwrap());
}

#[test]
fn a_png_file_is_typefound_when_the_description_is_validated() {
    let dir = tmp();
    let png = dir.path().join("a.png");
    let o = run(launch(&[
        "-q",
        "videotestsrc num-buffers=1 ! video/x-raw,format=RGB,width=64,height=32 ! pngenc ! filesink",
        &prop("location", &png),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(launch(&[
        "-v",
        "filesrc",
        &prop("location", &png),
        "! pngdec ! fakesink",
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(
        out.contains(
            "pngdec0.src: caps = video/x-raw, format=(string)RGBA, width=(int)64, height=(int)32"
        ),
        "{out}"
    );
}

#[test]
fn cut_and_foreign_files_fail_naming_element_and_byte() {
    let dir = tmp();
    let png = dir.path().join("a.png");
    let o = run(launch(&[
        "-q",
        "videotestsrc num-buffers=1 ! pngenc ! filesink",
        &prop("location", &png),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let bytes = std::fs::read(&png).unwrap();
    let cut = file(dir.path(), "cut.png", &bytes[..bytes.len() / 2]);
    let o = run(launch(&[
        "filesrc",
        &prop("location", &cut),
        "! pngdec ! fakesink",
    ]));
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("pngdec0: the stream ends inside a PNG image"),
        "{}",
        stderr(&o)
    );
    // Bytes that are no image: the sniffer cannot type them, the decoder refuses them at once
    // and says where.
    let junk = file(dir.path(), "junk.png", &random_bytes(5000, 7));
    let o = run(launch(&[
        "filesrc",
        &prop("location", &junk),
        "! pngdec ! fakesink",
    ]));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("pngdec0: not a PNG image: the signature is wrong (at byte 0)"),
        "{}",
        stderr(&o)
    );
    // Said to be a PNG with caps, they are refused by the decoder with the offset.
    let o = run(launch(&[
        "filesrc",
        &prop("location", &junk),
        "! image/png,width=4,height=4 ! pngdec ! fakesink",
    ]));
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("pngdec0: not a PNG image: the signature is wrong (at byte 0)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn jpeg_round_trip_keeps_caps_and_size() {
    let dir = tmp();
    let jpg = dir.path().join("a.jpg");
    let back = dir.path().join("back");
    let o = run(launch(&[
        "-q",
        "videotestsrc num-buffers=1 ! video/x-raw,width=100,height=60 ! jpegenc quality=90 ! filesink",
        &prop("location", &jpg),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(std::fs::read(&jpg).unwrap()[..2], [0xFF, 0xD8]);
    let o = run(launch(&[
        "-q",
        "filesrc",
        &prop("location", &jpg),
        "! jpegdec ! filesink",
        &prop("location", &back),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(std::fs::read(&back).unwrap().len(), 100 * 60 * 3);
}

/// PSNR in dB of `b` against `a`, 8-bit samples.
fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let se: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum();
    10.0 * (255.0f64.powi(2) / (se / a.len() as f64)).log10()
}

#[test]
fn jpeg_keeps_a_noisy_picture_s_colour_detail() {
    // Random RGB: every colour changes at every pixel, the worst case for halved chroma
    // (10.6 dB with 4:2:0; gst's jpegenc gives 32.8 dB at the default quality).
    let dir = tmp();
    let noise = random_bytes(256 * 192 * 3, 11);
    let raw = file(dir.path(), "noise.rgb", &noise);
    let back = dir.path().join("back.rgb");
    let o = run(launch(&[
        "-q",
        "filesrc",
        &prop("location", &raw),
        "blocksize=147456",
        "! video/x-raw,format=RGB,width=256,height=192,framerate=0/1 ! jpegenc ! jpegdec ! video/x-raw,format=RGB ! filesink",
        &prop("location", &back),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let p = psnr(&noise, &std::fs::read(&back).unwrap());
    assert!(p > 30.0, "noise: {p} dB");
    // Smooth content stays near-lossless.
    let (raw, back) = (dir.path().join("bars.rgb"), dir.path().join("bars.back"));
    let o = run(launch(&[
        "-q",
        "videotestsrc num-buffers=1 ! video/x-raw,format=RGB,width=320,height=240 ! tee name=t ! queue ! filesink",
        &prop("location", &raw),
        "t. ! queue ! jpegenc ! jpegdec ! video/x-raw,format=RGB ! filesink",
        &prop("location", &back),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let p = psnr(
        &std::fs::read(&raw).unwrap(),
        &std::fs::read(&back).unwrap(),
    );
    assert!(p > 40.0, "bars: {p} dB");
}

#[test]
fn inspect_reports_features_and_version() {
    let mut cmd = std::process::Command::new(inspect_bin());
    cmd.arg("--features");
    let o = run(cmd);
    assert_eq!(code(&o), 0);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("+ image-png"), "{out}");
    assert!(out.contains("[jpegdec, jpegenc]"), "{out}");
    let mut cmd = std::process::Command::new(inspect_bin());
    cmd.arg("--version");
    let o = run(cmd);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("features: image-png image-jpeg"), "{out}");
}

/// A FLAC file of 16-bit stereo noise and tone made by the reference encoder, and the reference
/// decoder's raw samples of it.
fn flac_fixture(dir: &std::path::Path) -> (std::path::PathBuf, Vec<u8>) {
    let wav = dir.join("in.wav");
    let o = run(launch(&[
        "-q",
        "audiotestsrc num-buffers=40 wave=white-noise volume=0.5 ! audio/x-raw,format=S16LE,channels=2,rate=44100 ! wavenc ! filesink",
        &prop("location", &wav),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let flac = dir.join("in.flac");
    let st = std::process::Command::new("flac")
        .args(["-s", "-f", "-o"])
        .arg(&flac)
        .arg(&wav)
        .status()
        .unwrap();
    assert!(st.success());
    let raw = dir.join("ref.raw");
    let st = std::process::Command::new("flac")
        .args([
            "-s",
            "-d",
            "-f",
            "--force-raw-format",
            "--endian=little",
            "--sign=signed",
            "-o",
        ])
        .arg(&raw)
        .arg(&flac)
        .status()
        .unwrap();
    assert!(st.success());
    (flac, std::fs::read(raw).unwrap())
}

#[test]
fn flac_decodes_bit_exact_against_the_reference_decoder() {
    if !have_tool("flac") {
        return;
    }
    let dir = tmp();
    let (flac, reference) = flac_fixture(dir.path());
    assert_eq!(reference.len(), 40 * 1024 * 4);
    for line in ["flacparse ! flacdec", "flacdec"] {
        let out = dir.path().join("out.raw");
        let o = run(launch(&[
            "-q",
            "filesrc",
            &prop("location", &flac),
            &format!("! {line} ! filesink"),
            &prop("location", &out),
        ]));
        assert_eq!(code(&o), 0, "{line}: {}", stderr(&o));
        assert!(
            std::fs::read(&out).unwrap() == reference,
            "{line}: samples differ"
        );
    }
    // The caps come from the file's STREAMINFO, so wavenc writes the right header.
    let wav = dir.path().join("out.wav");
    let o = run(launch(&[
        "-q",
        "filesrc",
        &prop("location", &flac),
        "! flacparse ! flacdec ! wavenc ! filesink",
        &prop("location", &wav),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let wav = std::fs::read(&wav).unwrap();
    assert_eq!(u32::from_le_bytes(wav[24..28].try_into().unwrap()), 44100);
    assert_eq!(u16::from_le_bytes(wav[22..24].try_into().unwrap()), 2);
    assert!(wav[44..] == reference[..]);
}

#[test]
fn damaged_flac_fails_naming_element_and_byte() {
    if !have_tool("flac") {
        return;
    }
    let dir = tmp();
    let (flac, _) = flac_fixture(dir.path());
    let bytes = std::fs::read(&flac).unwrap();
    let cut = file(dir.path(), "cut.flac", &bytes[..bytes.len() / 2]);
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    for b in &mut flipped[mid..mid + 16] {
        *b ^= 0x5A;
    }
    let flipped = file(dir.path(), "flipped.flac", &flipped);
    for (path, what) in [(&cut, "cut"), (&flipped, "flipped")] {
        let o = run(launch(&[
            "filesrc",
            &prop("location", path),
            "! flacparse ! flacdec ! fakesink",
        ]));
        assert_eq!(code(&o), 1, "{what}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("flacparse0: ") && e.contains("(at byte "),
            "{what}: {e}"
        );
    }
}
