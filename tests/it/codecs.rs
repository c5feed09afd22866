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
    // Bytes that are no image: nothing says what they are, so the link is refused up front.
    let junk = file(dir.path(), "junk.png", &random_bytes(5000, 7));
    let o = run(launch(&[
        "filesrc",
        &prop("location", &junk),
        "! pngdec ! fakesink",
    ]));
    assert_eq!(code(&o), 2, "{}", stderr(&o));
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
