//! typefind, decodebin, uridecodebin and qtdemux on real files, against the explicit chain and
//! against gst-launch-1.0 (which `.ci/run` installs with the plugins that make the fixtures).

use super::support::*;

pub(super) fn gst(desc: &str) -> std::process::Output {
    let out = std::process::Command::new("gst-launch-1.0")
        .arg("-q")
        .args(desc.split_whitespace())
        .output()
        .expect("gst-launch-1.0 runs");
    assert!(
        out.status.success(),
        "gst-launch-1.0 {desc}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The samples of a WAV file's data chunk (what two encoders of the same PCM share).
pub(super) fn wav_data(path: &std::path::Path) -> Vec<u8> {
    let b = std::fs::read(path).unwrap();
    let mut at = 12;
    while at + 8 <= b.len() {
        let size = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
        if &b[at..at + 4] == b"data" {
            let end = (at + 8 + size).min(b.len());
            return b[at + 8..end].to_vec();
        }
        at += 8 + size + size % 2;
    }
    panic!("{}: no data chunk", path.display());
}

/// Runs parallax-launch, which must succeed.
pub(super) fn ours(args: &[&str]) -> std::process::Output {
    let o = run(launch(args));
    assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
    o
}

#[test]
fn decodebin_on_flac_gives_the_explicit_chains_and_gsts_samples() {
    if !gst_has(&["flacenc", "decodebin", "wavenc"]) {
        return;
    }
    let dir = tmp();
    let flac = dir.path().join("in.flac");
    gst(&format!(
        "audiotestsrc num-buffers=30 wave=white-noise ! audio/x-raw,rate=44100,channels=2 ! \
         flacenc ! filesink location={}",
        flac.display()
    ));
    let out = |name: &str| dir.path().join(name);
    let o = ours(&[
        "-v",
        "filesrc",
        &prop("location", &flac),
        "! decodebin ! wavenc ! filesink",
        &prop("location", &out("auto.wav")),
    ]);
    assert!(
        stderr(&o).contains("/pipeline0/decodebin0: chose flacparse ! flacdec"),
        "{}",
        stderr(&o)
    );
    ours(&[
        "-q",
        "filesrc",
        &prop("location", &flac),
        "! flacparse ! flacdec ! wavenc ! filesink",
        &prop("location", &out("explicit.wav")),
    ]);
    let uri = format!("uri=file://{}", flac.display());
    ours(&[
        "-q",
        "uridecodebin",
        &uri,
        "! wavenc ! filesink",
        &prop("location", &out("uri.wav")),
    ]);
    gst(&format!(
        "filesrc location={} ! decodebin ! wavenc ! filesink location={}",
        flac.display(),
        out("gst.wav").display()
    ));
    let auto = wav_data(&out("auto.wav"));
    assert_eq!(auto.len(), 30 * 1024 * 4);
    assert!(auto == wav_data(&out("explicit.wav")));
    assert!(auto == wav_data(&out("uri.wav")));
    assert!(
        auto == wav_data(&out("gst.wav")),
        "decodebin differs from gst's"
    );
    // stdin redirected from the file is a regular file too.
    let mut cmd = launch(&[
        "-q",
        "fdsrc ! decodebin ! wavenc ! filesink",
        &prop("location", &out("stdin.wav")),
    ]);
    cmd.stdin(std::fs::File::open(&flac).unwrap());
    assert_eq!(code(&run(cmd)), 0);
    assert!(auto == wav_data(&out("stdin.wav")));
}

#[test]
fn decodebin_on_wav_and_a_pipe_without_caps() {
    let dir = tmp();
    let wav = dir.path().join("in.wav");
    ours(&[
        "-q",
        "audiotestsrc num-buffers=10 ! audio/x-raw,format=S16LE,rate=8000,channels=1 ! wavenc ! filesink",
        &prop("location", &wav),
    ]);
    let o = ours(&[
        "-v",
        "filesrc",
        &prop("location", &wav),
        "! decodebin ! audioconvert ! audio/x-raw,format=S16LE ! fdsink",
    ]);
    assert!(stderr(&o).contains("chose wavparse"), "{}", stderr(&o));
    assert!(o.stdout == wav_data(&wav));
    // An empty input has no type: exit 2 saying so.
    let mut cmd = launch(&["fdsrc ! decodebin ! fakesink"]);
    cmd.stdin(std::process::Stdio::null());
    let o = run(cmd);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("decodebin0: the input ended before its type could be found (0 bytes)"),
        "{}",
        stderr(&o)
    );
    // Bytes of no known type name the file.
    let junk = file(dir.path(), "junk", &random_bytes(1000, 3));
    let o = run(launch(&[
        "filesrc",
        &prop("location", &junk),
        "! decodebin ! fakesink",
    ]));
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("is of no type this build knows"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn typefind_sets_caps_and_force_caps_overrides() {
    let dir = tmp();
    let wav = dir.path().join("in.wav");
    ours(&[
        "-q",
        "audiotestsrc num-buffers=2 ! audio/x-raw,format=S16LE,rate=8000,channels=1 ! wavenc ! filesink",
        &prop("location", &wav),
    ]);
    let o = ours(&[
        "-v",
        "filesrc",
        &prop("location", &wav),
        "! typefind ! fakesink",
    ]);
    assert!(
        stderr(&o).contains("/pipeline0/typefind0.src: caps = audio/x-wav, format=(string)S16LE, rate=(int)8000, channels=(int)1"),
        "{}",
        stderr(&o)
    );
    let o = ours(&[
        "-v",
        "filesrc",
        &prop("location", &wav),
        "! typefind force-caps=application/x-foo ! fakesink",
    ]);
    assert!(
        stderr(&o).contains("typefind0.src: caps = application/x-foo"),
        "{}",
        stderr(&o)
    );
    // At run time, bytes of no known type are an error, as gst's.
    let mut cmd = launch(&["-q", "fdsrc ! typefind ! fakesink"]);
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(&[0u8; 5000]);
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("could not determine the type of the stream"),
        "{}",
        stderr(&o)
    );
}

/// One buffer as a sink saw it: size, pts, dts, duration (each `None` for none), whether a
/// delta unit. qtdemux's and tsdemux's comparisons with gst read it.
pub(super) type Seen = (usize, Option<u64>, Option<u64>, Option<u64>, bool);

/// gst's fakesink `last-message` chain lines for the sink called `name`.
pub(super) fn gst_seen(out: &str, name: &str) -> Vec<Seen> {
    let time = |line: &str, key: &str| -> Option<u64> {
        let v = line
            .split(key)
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .trim();
        if v == "none" {
            return None;
        }
        let p: Vec<u64> = v.split([':', '.']).map(|x| x.parse().unwrap()).collect();
        Some(((p[0] * 60 + p[1]) * 60 + p[2]) * 1_000_000_000 + p[3])
    };
    let mut seen: Vec<Seen> = out
        .lines()
        .filter(|l| l.contains("chain") && l.contains(&format!("({name}:sink) (")))
        .map(|l| {
            let size = l
                .split("sink) (")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            (
                size.parse().unwrap(),
                time(l, "pts: "),
                time(l, "dts: "),
                time(l, "duration: "),
                l.contains("delta-unit"),
            )
        })
        .collect();
    // A notification gst-launch printed twice.
    seen.dedup();
    seen
}

/// Parallax's taps on element `name`.
pub(super) fn our_seen(err: &str, name: &str) -> Vec<Seen> {
    err.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["tap"] == format!("{name}.src") && v.get("index").is_some())
        .map(|v| {
            (
                v["size"].as_u64().unwrap() as usize,
                v["pts"].as_u64(),
                v["dts"].as_u64(),
                v["duration"].as_u64(),
                v["flags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f == "delta-unit"),
            )
        })
        .collect()
}

/// A sample of an MP4 track, which always has its pts, dts and duration: they are unwrapped, so
/// one missing on either side fails the comparison.
type Sample = (usize, u64, u64, u64, bool);

fn samples(seen: Vec<Seen>) -> Vec<Sample> {
    seen.into_iter()
        .map(|(size, pts, dts, duration, delta)| {
            (size, pts.unwrap(), dts.unwrap(), duration.unwrap(), delta)
        })
        .collect()
}

/// qtdemux's tracks against gst's: every sample's size, pts, dts, duration and keyframe flag.
fn compare_with_gst(mp4: &std::path::Path, pads: &[&str]) {
    compare_demuxer_with_gst(
        "qtdemux",
        mp4,
        pads,
        1,
        |out, name| samples(gst_seen(out, name)),
        |err, name| samples(our_seen(err, name)),
    );
}

/// A demuxer's pads against gst's, buffer by buffer, as `gst_seen` reads gst's `-v` lines and
/// `our_seen` our `--tap` lines for each sink; gst must give at least `min` on every pad.
///
/// gst's side is read from `-v`'s last-message notifications, which gst-launch prints from its
/// bus and can lose under load (a first or middle sample missing, a line twice). So gst runs
/// again, five times at most, until what it printed is what we gave; the comparison below is
/// exact either way, and our side runs once.
pub(super) fn compare_demuxer_with_gst<T: PartialEq + std::fmt::Debug>(
    demuxer: &str,
    file: &std::path::Path,
    pads: &[&str],
    min: usize,
    gst_seen: fn(&str, &str) -> Vec<T>,
    our_seen: fn(&str, &str) -> Vec<T>,
) {
    let mut desc = format!("filesrc location={} ! {demuxer} name=d", file.display());
    let mut ours_desc = desc.clone();
    let mut taps = Vec::new();
    for (i, pad) in pads.iter().enumerate() {
        desc.push_str(&format!(
            " d.{pad} ! queue ! fakesink silent=false async=false sync=true name=s{i}"
        ));
        ours_desc.push_str(&format!(" d.{pad} ! identity name=s{i} ! fakesink"));
        taps.push(format!("--tap=s{i}"));
    }
    let mut args: Vec<&str> = vec!["-q", "--tap-format=json"];
    args.extend(taps.iter().map(String::as_str));
    args.push(&ours_desc);
    let o = ours(&args);
    let gst_run = || {
        let o = std::process::Command::new("gst-launch-1.0")
            .arg("-v")
            .args(desc.split_whitespace())
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let agrees = |theirs: &str| {
        (0..pads.len()).all(|i| {
            let name = format!("s{i}");
            gst_seen(theirs, &name) == our_seen(&stderr(&o), &name)
        })
    };
    let mut theirs = gst_run();
    for _ in 1..5 {
        if agrees(&theirs) {
            break;
        }
        theirs = gst_run();
    }
    for (i, pad) in pads.iter().enumerate() {
        let name = format!("s{i}");
        let want = gst_seen(&theirs, &name);
        assert!(want.len() >= min, "gst gave too little on {pad}: {want:?}");
        assert_eq!(our_seen(&stderr(&o), &name), want, "{pad}");
    }
}

#[test]
fn qtdemux_gives_gsts_samples_and_timestamps_for_h264_and_aac() {
    if !gst_has(&[
        "openh264enc",
        "voaacenc",
        "mp4mux",
        "qtdemux",
        "h264parse",
        "aacparse",
    ]) {
        return;
    }
    let dir = tmp();
    let mp4 = dir.path().join("av.mp4");
    gst(&format!(
        "videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         openh264enc ! h264parse ! queue ! mp4mux name=m ! filesink location={} \
         audiotestsrc num-buffers=40 ! audio/x-raw,rate=44100,channels=2 ! voaacenc ! aacparse ! \
         queue ! m.",
        mp4.display()
    ));
    compare_with_gst(&mp4, &["video_0", "audio_0"]);
    // The caps carry codec_data; `d.` takes the next track its downstream accepts.
    let o = ours(&[
        "-v",
        "filesrc",
        &prop("location", &mp4),
        "! qtdemux name=d d. ! queue ! audio/mpeg ! fakesink d. ! queue ! video/x-h264 ! fakesink",
    ]);
    let err = stderr(&o);
    assert!(
        err.contains("/pipeline0/d.audio_0 -> /pipeline0/queue0.sink"),
        "{err}"
    );
    assert!(
        err.contains("/pipeline0/d.video_0 -> /pipeline0/queue1.sink"),
        "{err}"
    );
    assert!(err.contains("stream-format=(string)avc, alignment=(string)au, width=(int)320, height=(int)240, codec_data=(string)0142"), "{err}");
    // A pad the file lacks is named with the ones it has.
    let o = run(launch(&[
        "filesrc",
        &prop("location", &mp4),
        "! qtdemux name=d d.audio_1 ! fakesink",
    ]));
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("d has no pad `audio_1`: the file's tracks are video_0 (video/x-h264), audio_0 (audio/mpeg)"),
        "{}",
        stderr(&o)
    );
    // A faststart file (moov first) gives the same.
    let fast = dir.path().join("fast.mp4");
    gst(&format!(
        "videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         openh264enc ! h264parse ! queue ! mp4mux faststart=true name=m ! filesink location={} \
         audiotestsrc num-buffers=40 ! audio/x-raw,rate=44100,channels=2 ! voaacenc ! aacparse ! \
         queue ! m.",
        fast.display()
    ));
    compare_with_gst(&fast, &["video_0", "audio_0"]);
}

#[test]
fn qtdemux_gives_gsts_sample_bytes_however_the_file_comes_in() {
    if !gst_has(&["openh264enc", "mp4mux", "qtdemux", "h264parse"]) {
        return;
    }
    let dir = tmp();
    for faststart in [false, true] {
        let mp4 = dir.path().join(format!("v{faststart}.mp4"));
        gst(&format!(
            "videotestsrc num-buffers=10 pattern=snow ! video/x-raw,width=320,height=240 ! \
             openh264enc ! h264parse ! mp4mux faststart={faststart} ! filesink location={}",
            mp4.display()
        ));
        let want = dir.path().join("gst.h264");
        gst(&format!(
            "filesrc location={} ! qtdemux ! filesink location={}",
            mp4.display(),
            want.display()
        ));
        let want = std::fs::read(&want).unwrap();
        assert!(want.len() > 100_000, "{}", want.len());
        let got = dir.path().join("ours.h264");
        // Samples inside one incoming buffer leave as slices of it (a mapped file's windows
        // here), samples across buffers as copies, and buffers in a pool's slots (fdsrc's) are
        // copied as they come: every way gives the same bytes.
        for src in [
            format!("filesrc {}", prop("location", &mp4)),
            format!("filesrc {} blocksize=1000", prop("location", &mp4)),
            format!("filesrc {} blocksize=7777", prop("location", &mp4)),
        ] {
            ours(&[
                "-q",
                &format!("{src} ! qtdemux ! filesink {}", prop("location", &got)),
            ]);
            assert!(
                std::fs::read(&got).unwrap() == want,
                "{src}, faststart={faststart}"
            );
        }
        let o = run({
            let mut cmd = launch(&[
                "-q",
                &format!(
                    "fdsrc blocksize=4096 ! qtdemux ! filesink {}",
                    prop("location", &got)
                ),
            ]);
            cmd.stdin(std::fs::File::open(&mp4).unwrap());
            cmd
        });
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(
            std::fs::read(&got).unwrap() == want,
            "fdsrc, faststart={faststart}"
        );
        if !faststart {
            // 20 MiB between mdat and moov: more than filesrc maps at once (four 4 MiB
            // windows), all held until moov comes, without starving filesrc.
            let bytes = std::fs::read(&mp4).unwrap();
            let moov = top_level_box(&bytes, b"moov");
            let mut padded = bytes[..moov].to_vec();
            let pad = 20 << 20;
            padded.extend_from_slice(&(pad as u32 + 8).to_be_bytes());
            padded.extend_from_slice(b"free");
            padded.resize(padded.len() + pad, 0);
            padded.extend_from_slice(&bytes[moov..]);
            let padded = file(dir.path(), "padded.mp4", &padded);
            ours(&[
                "-q",
                &format!(
                    "filesrc {} ! qtdemux ! filesink {}",
                    prop("location", &padded),
                    prop("location", &got)
                ),
            ]);
            assert!(std::fs::read(&got).unwrap() == want, "padded");
        }
    }
}

/// The offset of the top-level box `kind` in an MP4 file's bytes.
fn top_level_box(bytes: &[u8], kind: &[u8; 4]) -> usize {
    let mut at = 0;
    while &bytes[at + 4..at + 8] != kind {
        at += u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    }
    at
}

#[test]
fn qtdemux_gives_gsts_samples_for_av1() {
    if !gst_has(&["av1enc", "av1parse", "mp4mux", "qtdemux"]) {
        return;
    }
    let dir = tmp();
    let mp4 = dir.path().join("v.mp4");
    gst(&format!(
        "videotestsrc num-buffers=8 ! video/x-raw,width=64,height=64,framerate=25/1 ! \
         av1enc cpu-used=8 ! av1parse ! mp4mux ! filesink location={}",
        mp4.display()
    ));
    compare_with_gst(&mp4, &["video_0"]);
}

#[test]
fn damaged_mp4_files_fail_naming_qtdemux_and_the_byte() {
    if !gst_has(&["voaacenc", "mp4mux"]) {
        return;
    }
    let dir = tmp();
    let mp4 = dir.path().join("a.mp4");
    gst(&format!(
        "audiotestsrc num-buffers=40 ! voaacenc ! mp4mux faststart=true ! filesink location={}",
        mp4.display()
    ));
    let bytes = std::fs::read(&mp4).unwrap();
    // Cut in half: moov is read at validation, the samples run out at run time.
    let cut = file(dir.path(), "cut.mp4", &bytes[..bytes.len() / 2]);
    let o = run(launch(&[
        "-q",
        "filesrc",
        &prop("location", &cut),
        "! qtdemux ! fakesink",
    ]));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("qtdemux0"), "{}", stderr(&o));
    assert!(stderr(&o).contains("(at byte "), "{}", stderr(&o));
    // Flipped bytes: an error or a run, never a crash.
    for seed in 0..20u64 {
        let mut bad = bytes.clone();
        for (k, r) in random_bytes(16, seed).chunks(2).enumerate() {
            let at = (usize::from(r[0]) << 8 | usize::from(r[1])) * (k + 1) % bad.len();
            bad[at] ^= 0xFF;
        }
        let f = file(dir.path(), "bad.mp4", &bad);
        let o = run(launch(&[
            "-q",
            "filesrc",
            &prop("location", &f),
            "! qtdemux ! fakesink",
        ]));
        assert!([0, 1, 2].contains(&code(&o)), "seed {seed}: {}", stderr(&o));
        assert!(
            !stderr(&o).contains("panicked"),
            "seed {seed}: {}",
            stderr(&o)
        );
    }
}
