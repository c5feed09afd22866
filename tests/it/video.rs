//! Raw video elements against gst-launch-1.0: the same sizes for the same caps (figures taken
//! from gst-launch-1.0 runs of the same lines), the colours of `pattern=red` in every format,
//! geometry on known pixels, videorate counts, rawvideoparse of a file, and negotiation
//! failures as exit 2.

use crate::support::*;

/// Runs `line` (words) and returns stdout; the run must succeed.
fn frames(line: &str) -> Vec<u8> {
    let o = run(launch(&["-q", line]));
    assert_eq!(code(&o), 0, "{line}: {}", stderr(&o));
    o.stdout
}

const FORMATS: [&str; 17] = [
    "I420",
    "YV12",
    "NV12",
    "YUY2",
    "UYVY",
    "RGB",
    "BGR",
    "RGBA",
    "BGRA",
    "ARGB",
    "ABGR",
    "RGBx",
    "BGRx",
    "xRGB",
    "xBGR",
    "GRAY8",
    "GRAY16_LE",
];

#[test]
fn red_converted_into_every_format_is_red_with_gst_sizes() {
    // Frame sizes gst-launch-1.0 gives for a 33x17 frame in each format (GstVideoInfo.size).
    const GST_SIZES: [usize; 17] = [
        1008, 1008, 972, 1156, 1156, 1700, 1700, 2244, 2244, 2244, 2244, 2244, 2244, 2244, 2244,
        612, 1156,
    ];
    for (format, size) in FORMATS.iter().zip(GST_SIZES) {
        let out = frames(&format!(
            "videotestsrc num-buffers=1 pattern=red ! video/x-raw,format=I420,width=33,height=17 ! videoconvert ! video/x-raw,format={format} ! fdsink"
        ));
        assert_eq!(out.len(), size, "{format}");
        // The first pixel, read as gst lays each format out.
        let (r, g, b) = match *format {
            "RGB" | "RGBA" | "RGBx" => (out[0], out[1], out[2]),
            "BGR" | "BGRA" | "BGRx" => (out[2], out[1], out[0]),
            "ARGB" | "xRGB" => (out[1], out[2], out[3]),
            "ABGR" | "xBGR" => (out[3], out[2], out[1]),
            "GRAY8" | "GRAY16_LE" => {
                // gst carries Y over to grey: red's 81.
                assert!(out[0].abs_diff(81) <= 2, "{format}: {out:?}");
                continue;
            }
            _ => {
                // Y, U, V of BT.601 red wherever the format keeps them.
                let (y, u, v) = match *format {
                    "I420" => (out[0], out[36 * 18], out[36 * 18 + 20 * 9]),
                    "YV12" => (out[0], out[36 * 18 + 20 * 9], out[36 * 18]),
                    "NV12" => (out[0], out[36 * 18], out[36 * 18 + 1]),
                    "YUY2" => (out[0], out[1], out[3]),
                    _ => (out[1], out[0], out[2]),
                };
                for (got, want) in [(y, 81), (u, 90), (v, 240)] {
                    assert!(got.abs_diff(want) <= 2, "{format}: {got} for {want}");
                }
                continue;
            }
        };
        for (got, want) in [(r, 255), (g, 0), (b, 0)] {
            assert!(got.abs_diff(want) <= 2, "{format}: {got} for {want}");
        }
    }
}

#[test]
fn hd_is_bt709_as_in_gst() {
    // gst paints 1280x720 red as Y 63, U 102, V 240 and converts it back to (254, 0, 0).
    let out = frames(
        "videotestsrc num-buffers=1 pattern=red ! video/x-raw,format=I420,width=1280,height=720 ! fdsink",
    );
    assert_eq!(
        (out[0], out[1280 * 720], out[1280 * 720 * 5 / 4]),
        (63, 102, 240)
    );
    let out = frames(
        "videotestsrc num-buffers=1 pattern=red ! video/x-raw,format=I420,width=1280,height=720 ! videoconvert ! video/x-raw,format=BGRx ! fdsink",
    );
    assert_eq!(out.len(), 1280 * 720 * 4);
    assert!(
        out[2] >= 253 && out[1] <= 2 && out[0] <= 2,
        "{:?}",
        &out[..4]
    );
}

#[test]
fn rgb_to_i420_and_back_stays_close() {
    let dir = tmp();
    let src = dir.path().join("bars.rgb");
    let o = run(launch(&[
        "-q",
        "videotestsrc num-buffers=1 pattern=checkers-8 ! video/x-raw,format=RGB,width=64,height=48 ! filesink",
        &prop("location", &src),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let back = frames(&format!(
        "filesrc location={} ! rawvideoparse format=rgb width=64 height=48 ! videoconvert ! video/x-raw,format=I420 ! videoconvert ! video/x-raw,format=RGB ! fdsink",
        src.display()
    ));
    let orig = std::fs::read(&src).unwrap();
    assert_eq!(back.len(), orig.len());
    // 8x8 squares line up with 2x2 chroma blocks: every pixel comes back within 3.
    let worst = orig
        .iter()
        .zip(&back)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(worst <= 3, "off by {worst}");
}

#[test]
fn passthrough_when_formats_agree() {
    let a = frames("videotestsrc num-buffers=2 pattern=checkers-4 ! video/x-raw,format=NV12,width=40,height=30 ! fdsink");
    let b = frames("videotestsrc num-buffers=2 pattern=checkers-4 ! video/x-raw,format=NV12,width=40,height=30 ! videoconvert ! videoscale ! videorate ! fdsink");
    assert_eq!(a, b);
}

#[test]
fn videoscale_gives_gst_sizes_and_keeps_flat_colour() {
    // gst-launch-1.0: 1920x1080 I420 to 1280x720 is 1382400 bytes a frame; width=160 alone
    // keeps the height (160x240: 57600).
    let out = frames("videotestsrc num-buffers=1 pattern=green ! video/x-raw,format=I420,width=1920,height=1080 ! videoscale ! video/x-raw,width=1280,height=720 ! fdsink");
    assert_eq!(out.len(), 1_382_400);
    assert!(out[..1280 * 720].iter().all(|&y| y.abs_diff(out[0]) <= 1));
    let out = frames("videotestsrc num-buffers=1 ! video/x-raw,width=320,height=240 ! videoscale method=nearest-neighbour ! video/x-raw,width=160 ! fdsink");
    assert_eq!(out.len(), 57_600);
    // Borders when downstream fixes the pixel aspect ratio: 4:3 into 16:9 leaves black sides.
    let out = frames("videotestsrc num-buffers=1 pattern=white ! video/x-raw,format=RGB,width=40,height=30 ! videoscale ! video/x-raw,width=64,height=36,pixel-aspect-ratio=1/1 ! fdsink");
    assert_eq!(&out[..3], [0, 0, 0]);
    assert_eq!(&out[32 * 3..32 * 3 + 3], [255, 255, 255]);
}

#[test]
fn flips_and_crops_move_known_pixels() {
    // Checkers-8 in GRAY8: the square at (0, 0) is red's luma, the next one green's.
    let plain = frames("videotestsrc num-buffers=1 pattern=checkers-8 ! video/x-raw,format=GRAY8,width=16,height=8 ! fdsink");
    let (red, green) = (plain[0], plain[8]);
    assert_ne!(red, green);
    let flipped = frames("videotestsrc num-buffers=1 pattern=checkers-8 ! video/x-raw,format=GRAY8,width=16,height=8 ! videoflip video-direction=horiz ! fdsink");
    assert_eq!((flipped[0], flipped[8]), (green, red));
    let turned = frames("videotestsrc num-buffers=1 pattern=checkers-8 ! video/x-raw,format=GRAY8,width=16,height=8 ! videoflip video-direction=90r ! fdsink");
    // 8x16 now: the top row is the old left column, bottom first.
    assert_eq!(turned.len(), 8 * 16);
    assert_eq!(turned[0], red);
    assert_eq!(turned[8 * 8], green);
    let cropped = frames("videotestsrc num-buffers=1 pattern=checkers-8 ! video/x-raw,format=GRAY8,width=16,height=8 ! videocrop left=8 right=4 top=2 ! fdsink");
    // 4x6 of the green square (stride 4).
    assert_eq!(cropped, vec![green; 24]);
    // gst's videocrop output size for I420 64x48 cropped 10/20/3/5: 34x40, 2240 bytes.
    let out = frames("videotestsrc num-buffers=1 ! video/x-raw,format=I420,width=64,height=48 ! videocrop left=10 right=20 top=3 bottom=5 ! fdsink");
    assert_eq!(out.len(), 2240);
}

#[test]
fn videorate_drops_and_duplicates_to_the_downstream_rate() {
    let frame = 16 * 16 * 3 / 2;
    let out = frames("videotestsrc num-buffers=30 ! video/x-raw,format=I420,width=16,height=16,framerate=30/1 ! videorate ! video/x-raw,framerate=10/1 ! fdsink");
    // Counts from gst-launch-1.0 for the same lines: the last frame goes out once at EOS.
    assert_eq!(out.len(), 11 * frame);
    let out = frames("videotestsrc num-buffers=10 ! video/x-raw,format=I420,width=16,height=16,framerate=10/1 ! videorate ! video/x-raw,framerate=30/1 ! fdsink");
    assert_eq!(out.len(), 27 * frame);
    let out = frames("videotestsrc num-buffers=10 ! video/x-raw,format=I420,width=16,height=16,framerate=30/1 ! videorate drop-only=true ! video/x-raw,framerate=10/1 ! fdsink");
    assert_eq!(out.len(), 4 * frame);
    let out = frames("videotestsrc num-buffers=30 ! video/x-raw,format=I420,width=16,height=16,framerate=30/1 ! videorate max-rate=15 ! fdsink");
    assert_eq!(out.len(), 16 * frame);
    // drop-only makes no frames: a higher rate downstream cannot be agreed on (gst refuses too).
    run_expecting(
        launch(&["videotestsrc ! video/x-raw,framerate=10/1 ! videorate drop-only=true ! video/x-raw,framerate=30/1 ! fakesink"]),
        2,
    );
    // Under max-rate the input's rate passes.
    let out = frames("videotestsrc num-buffers=30 ! video/x-raw,format=I420,width=16,height=16,framerate=30/1 ! videorate max-rate=60 ! fdsink");
    assert_eq!(out.len(), 30 * frame);
}

#[test]
fn rawvideoparse_cuts_a_file_into_frames() {
    let dir = tmp();
    let src = dir.path().join("frames.yuv");
    let o = run(launch(&[
        "-q",
        "videotestsrc num-buffers=4 pattern=snow ! video/x-raw,format=I420,width=33,height=17 ! filesink",
        &prop("location", &src),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let orig = std::fs::read(&src).unwrap();
    assert_eq!(orig.len(), 4 * 1008);
    // Odd block sizes cut frames across reads; the frames come out whole and in order.
    let out = frames(&format!(
        "filesrc location={} blocksize=777 ! rawvideoparse width=33 height=17 framerate=30/1 ! videoconvert ! video/x-raw,format=I420 ! fdsink",
        src.display()
    ));
    assert_eq!(out, orig);
    let o = run(launch(&[
        "-v",
        &format!("filesrc location={} ! rawvideoparse format=yuy2 width=8 height=4 framerate=5/1 ! fakesink", src.display()),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(
        text.contains("rawvideoparse0.src: caps = video/x-raw, format=(string)YUY2, width=(int)8, height=(int)4, framerate=(fraction)5/1"),
        "{text}"
    );
}

#[test]
fn negotiation_failures_are_exit_2_with_both_caps() {
    let o = run_expecting(
        launch(&["videotestsrc ! video/x-raw,width=320 ! videoconvert ! video/x-raw,width=640 ! fakesink"]),
        2,
    );
    let err = stderr(&o);
    assert!(
        err.contains("`videoconvert0` and `capsfilter1` cannot agree on caps"),
        "{err}"
    );
    assert!(
        err.contains("width=(int)320") && err.contains("width=(int)640"),
        "{err}"
    );
    let o = run_expecting(
        launch(&["videotestsrc ! video/x-raw,format=I420 ! videoscale ! video/x-raw,format=RGB ! fakesink"]),
        2,
    );
    let err = stderr(&o);
    assert!(
        err.contains("format=(string)I420") && err.contains("format=(string)RGB"),
        "{err}"
    );
}

#[test]
fn absurd_frame_sizes_are_refused_before_running() {
    let o = run(launch(&[
        "videotestsrc ! video/x-raw,width=2000000,height=2000000 ! fakesink",
    ]));
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("2000000x2000000"), "{}", stderr(&o));
    let o = run(launch(&[
        "fdsrc ! rawvideoparse width=2147483647 height=2147483647 format=rgba ! fakesink",
    ]));
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("at most"), "{}", stderr(&o));
}
