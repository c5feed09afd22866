//! Raw media and caps negotiation (issue 13): sizes, headers-free layouts and signal content
//! as gst-launch-1.0 gives them for the same lines, and negotiation failures as exit 2.

use crate::support::*;

fn samples_s16(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

#[test]
fn audiotestsrc_sine_has_gst_size_frequency_and_level() {
    let dir = tmp();
    let out = dir.path().join("sine.raw");
    let o = run(launch(&[
        "-q",
        "audiotestsrc",
        "num-buffers=10",
        "freq=1000",
        "!",
        "filesink",
        &prop("location", &out),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let bytes = std::fs::read(&out).unwrap();
    // S16LE, mono, 1024 samples a buffer: gst's defaults.
    assert_eq!(bytes.len(), 10 * 1024 * 2);
    let s = samples_s16(&bytes);
    // gst's first samples: sin(2π·1000/44100·n)·0.8·32767 truncated, from n = 1.
    assert_eq!(
        s[0],
        (((std::f64::consts::TAU * 1000.0 / 44100.0).sin()) * 0.8 * 32767.0) as i16
    );
    let peak = s.iter().map(|v| v.unsigned_abs()).max().unwrap();
    assert!((26_000..=26_214).contains(&peak), "peak {peak}");
    let rising = s.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
    // 10240 samples at 44100 Hz are 0.232 s: 232 periods of 1 kHz.
    assert!((231..=233).contains(&rising), "{rising} periods");
}

#[test]
fn caps_after_a_source_choose_its_format() {
    let dir = tmp();
    let out = dir.path().join("f32.raw");
    let o = run(launch(&[
        "-q",
        "audiotestsrc num-buffers=2 samplesperbuffer=100 ! audio/x-raw,format=F32LE,rate=8000,channels=2 ! filesink",
        &prop("location", &out),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(bytes.len(), 2 * 100 * 2 * 4);
    // Both channels carry the same wave.
    assert_eq!(bytes[0..4], bytes[4..8]);
}

#[test]
fn audioconvert_converts_format_and_channels() {
    let dir = tmp();
    let a = dir.path().join("a.raw");
    let b = dir.path().join("b.raw");
    let o = run(launch(&[
        "-q",
        "audiotestsrc num-buffers=1 wave=square volume=0.5 ! audioconvert ! audio/x-raw,format=S32LE,channels=2 ! filesink",
        &prop("location", &a),
        "audiotestsrc num-buffers=1 wave=square volume=0.5 ! audio/x-raw,format=S16LE ! filesink",
        &prop("location", &b),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (a, b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(a.len(), 1024 * 2 * 4);
    let s16 = samples_s16(&b);
    for (f, s) in s16.iter().enumerate() {
        let left = i32::from_le_bytes(a[f * 8..f * 8 + 4].try_into().unwrap());
        let right = i32::from_le_bytes(a[f * 8 + 4..f * 8 + 8].try_into().unwrap());
        assert_eq!(left, right);
        assert_eq!(left >> 16, *s as i32, "frame {f}");
    }
}

#[test]
fn videotestsrc_frames_have_gst_sizes_and_colours() {
    let dir = tmp();
    let out = dir.path().join("red.yuv");
    let o = run(launch(&[
        "-q",
        "videotestsrc num-buffers=3 pattern=red ! video/x-raw,format=I420,width=640,height=480,framerate=30/1 ! filesink",
        &prop("location", &out),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(bytes.len(), 3 * 460_800);
    assert!(bytes[..307_200].iter().all(|&y| y == 81));
    assert!(bytes[307_200..384_000].iter().all(|&u| u == 90));
    assert!(bytes[384_000..460_800].iter().all(|&v| v == 240));
}

#[test]
fn a_link_that_cannot_agree_is_exit_2_with_both_caps() {
    let o = run_expecting(launch(&["audiotestsrc ! video/x-raw ! fakesink"]), 2);
    let err = stderr(&o);
    assert!(
        err.contains("error: `audiotestsrc0` and `capsfilter0` cannot agree on caps: audiotestsrc0 gives audio/x-raw"),
        "{err}"
    );
    assert!(err.contains("capsfilter0 takes video/x-raw"), "{err}");
    assert!(
        err.contains("  audiotestsrc ! video/x-raw ! fakesink\n               ^\n"),
        "{err}"
    );
    // Untyped bytes into an element that needs audio.
    let o = run_expecting(launch(&["fakesrc ! audioconvert ! fakesink"]), 2);
    assert!(stderr(&o).contains("fakesrc0 gives ANY"), "{}", stderr(&o));
}

#[test]
fn verbose_prints_negotiated_caps_of_every_pad() {
    let o = run(launch(&["-v", "audiotestsrc num-buffers=1 ! fakesink"]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    let caps = "caps = audio/x-raw, format=(string)S16LE, layout=(string)interleaved, \
                rate=(int)44100, channels=(int)1";
    assert!(
        text.contains(&format!("/pipeline0/audiotestsrc0.src: {caps}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("/pipeline0/fakesink0.sink: {caps}")),
        "{text}"
    );
}

#[test]
fn sync_true_renders_at_running_time() {
    // Six frames at 10/1: the last one's pts is 0.5 s, so a synced sink cannot finish sooner.
    let started = std::time::Instant::now();
    let o = run(launch(&[
        "-q",
        "videotestsrc num-buffers=6 pattern=black ! video/x-raw,width=16,height=16,framerate=10/1 ! fakesink sync=true",
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(started.elapsed() >= std::time::Duration::from_millis(500));
}

/// A parsed canonical WAV file: the fmt chunk's fields and the data chunk.
struct Wav {
    tag: u16,
    channels: u16,
    rate: u32,
    byte_rate: u32,
    block_align: u16,
    bits: u16,
    riff_size: u32,
    data_size: u32,
    data: Vec<u8>,
}

fn parse_wav(bytes: &[u8]) -> Wav {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap());
    assert_eq!(&bytes[0..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");
    assert_eq!(&bytes[12..16], b"fmt ");
    assert_eq!(u32_at(16), 16, "fmt chunk size");
    assert_eq!(&bytes[36..40], b"data");
    Wav {
        tag: u16_at(20),
        channels: u16_at(22),
        rate: u32_at(24),
        byte_rate: u32_at(28),
        block_align: u16_at(32),
        bits: u16_at(34),
        riff_size: u32_at(4),
        data_size: u32_at(40),
        data: bytes[44..].to_vec(),
    }
}

#[test]
fn wavenc_into_a_file_writes_a_complete_header_and_the_samples_unchanged() {
    let dir = tmp();
    let wav = dir.path().join("out.wav");
    let raw = dir.path().join("out.raw");
    let o = run(launch(&[
        "-q",
        "audiotestsrc num-buffers=20 ! audioconvert ! audio/x-raw,channels=2 ! wavenc ! filesink",
        &prop("location", &wav),
        "audiotestsrc num-buffers=20 ! audioconvert ! audio/x-raw,channels=2 ! filesink",
        &prop("location", &raw),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let bytes = std::fs::read(&wav).unwrap();
    let w = parse_wav(&bytes);
    assert_eq!((w.tag, w.channels, w.rate, w.bits), (1, 2, 44100, 16));
    assert_eq!(w.block_align, 2 * 2);
    assert_eq!(w.byte_rate, 44100 * 4);
    // 20 buffers of 1024 frames of 4 bytes, and the sizes say so.
    assert_eq!(w.data.len(), 20 * 1024 * 4);
    assert_eq!(w.data_size as usize, w.data.len());
    assert_eq!(w.riff_size as usize, bytes.len() - 8);
    assert_eq!(w.data, std::fs::read(&raw).unwrap());
}

#[test]
fn wavenc_float_samples_get_the_ieee_float_tag() {
    let dir = tmp();
    let wav = dir.path().join("f.wav");
    let o = run(launch(&[
        "-q",
        "audiotestsrc num-buffers=3 samplesperbuffer=100 ! audio/x-raw,format=F32LE,rate=8000 ! wavenc ! filesink",
        &prop("location", &wav),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let w = parse_wav(&std::fs::read(&wav).unwrap());
    assert_eq!((w.tag, w.channels, w.rate, w.bits), (3, 1, 8000, 32));
    assert_eq!((w.block_align, w.byte_rate), (4, 32000));
    assert_eq!(w.data_size, 3 * 100 * 4);
}

#[test]
fn wavenc_into_a_pipe_keeps_the_streaming_header() {
    // fdsink cannot seek back: the final header is dropped and the sizes stay "unknown".
    let o = run(launch(&[
        "-q",
        "audiotestsrc num-buffers=2 ! wavenc ! fdsink",
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let w = parse_wav(&o.stdout);
    assert_eq!((w.riff_size, w.data_size), (u32::MAX, u32::MAX));
    assert_eq!(w.data.len(), 2 * 1024 * 2);
}

#[test]
fn the_gst_line_resamples_to_8000_hz_mono_wav() {
    let dir = tmp();
    let wav = dir.path().join("out.wav");
    let raw = dir.path().join("out.raw");
    let o = run(launch(&[
        "-q",
        "audiotestsrc num-buffers=20 freq=1000 ! audioconvert ! audioresample ! audio/x-raw,rate=8000,channels=1 ! wavenc ! filesink",
        &prop("location", &wav),
        "audiotestsrc num-buffers=20 freq=1000 ! audioconvert ! audioresample quality=4 ! audio/x-raw,rate=8000,channels=1 ! filesink",
        &prop("location", &raw),
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let bytes = std::fs::read(&wav).unwrap();
    let w = parse_wav(&bytes);
    assert_eq!((w.tag, w.channels, w.rate, w.bits), (1, 1, 8000, 16));
    assert_eq!((w.block_align, w.byte_rate), (2, 16000));
    // 20 x 1024 frames at 44100 Hz make floor(20479 x 8000 / 44100) + 1 frames at 8000 Hz,
    // gst's count.
    let frames = (20_479u64 * 8000 / 44100 + 1) as usize;
    assert_eq!(frames, 3716);
    assert_eq!(w.data.len(), frames * 2);
    assert_eq!(w.data_size as usize, w.data.len());
    assert_eq!(w.riff_size as usize, 36 + w.data.len());
    assert_eq!(w.data, std::fs::read(&raw).unwrap());
    // Still 1 kHz: 20480 / 44100 s hold 464 periods.
    let s = samples_s16(&w.data);
    let rising = s.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
    assert!((463..=465).contains(&rising), "{rising} periods");
}

#[test]
fn audioresample_keeps_the_rate_when_nothing_asks_for_another() {
    let o = run(launch(&[
        "-v",
        "audiotestsrc num-buffers=1 ! audioresample ! fakesink",
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(
        text.contains("/pipeline0/audioresample0.src: caps = audio/x-raw, format=(string)S16LE, layout=(string)interleaved, rate=(int)44100"),
        "{text}"
    );
}

#[test]
fn wavenc_then_wavparse_gives_the_samples_back_bit_exact() {
    let dir = tmp();
    let wav = dir.path().join("round.wav");
    for format in ["S16LE", "S24LE", "F32LE", "U8"] {
        let o = run(launch(&[
            "-q",
            &format!("audiotestsrc num-buffers=7 samplesperbuffer=333 wave=white-noise ! audio/x-raw,format={format},rate=22050,channels=2 ! wavenc ! filesink"),
            &prop("location", &wav),
        ]));
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let o = run(launch(&[
            "-q",
            "filesrc",
            &prop("location", &wav),
            "blocksize=1000",
            "!",
            "wavparse",
            "!",
            "fdsink",
        ]));
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let bytes = std::fs::read(&wav).unwrap();
        assert_eq!(o.stdout, bytes[44..], "{format}");
        assert!(!o.stdout.is_empty());
    }
}

#[test]
fn wavparse_reads_what_python_wave_writes_and_feeds_audio_elements() {
    let dir = tmp();
    let wav = dir.path().join("py.wav");
    // Python's wave module (in every python3): 3 channels of 16 bits at 11025 Hz.
    let script = format!(
        "import wave, struct\nw = wave.open({:?}, 'wb')\nw.setnchannels(3)\nw.setsampwidth(2)\nw.setframerate(11025)\nw.writeframes(b''.join(struct.pack('<3h', i, -i, i * 2 % 30000) for i in range(1000)))\nw.close()\n",
        wav.to_str().unwrap()
    );
    let py = std::process::Command::new("python3")
        .args(["-c", &script])
        .status()
        .expect("python3 runs");
    assert!(py.success());
    let o = run(launch(&[
        "-q",
        "filesrc",
        &prop("location", &wav),
        "! wavparse ! audio/x-raw,format=S16LE,rate=11025,channels=3 ! audioresample ! audio/x-raw,rate=22050 ! fdsink",
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // gst's count: floor(999 x 22050 / 11025) + 1 frames of 6 bytes.
    assert_eq!(o.stdout.len(), 1999 * 6);
    // Caps that contradict a regular file: its head is read at validation, so the description
    // is refused before anything runs.
    let o = run(launch(&[
        "-q",
        "filesrc",
        &prop("location", &wav),
        "! wavparse ! audio/x-raw,format=S16LE,rate=44100,channels=3 ! fakesink",
    ]));
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("wavparse0 gives audio/x-raw, format=(string)S16LE, layout=(string)interleaved, rate=(int)11025, channels=(int)3"), "{}", stderr(&o));
    // From a pipe the head comes only at run time: a runtime error naming both.
    let mut cmd = launch(&[
        "-q",
        "fdsrc ! wavparse ! audio/x-raw,format=S16LE,rate=44100,channels=3 ! fakesink",
    ]);
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(&wav).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        use std::io::Write as _;
        let _ = stdin.write_all(&bytes);
    });
    let o = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("at byte 20: the file holds audio/x-raw, format=(string)S16LE, layout=(string)interleaved, rate=(int)11025, channels=(int)3 but the caps after wavparse say"), "{}", stderr(&o));
}

#[test]
fn wavparse_refuses_a_truncated_header_and_what_is_not_wav() {
    let dir = tmp();
    let cut = file(
        dir.path(),
        "cut.wav",
        b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00",
    );
    let o = run(launch(&[
        "-q",
        "filesrc",
        &prop("location", &cut),
        "! wavparse ! fakesink",
    ]));
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o)
            .contains("wavparse0: at byte 22: the stream ends inside the fmt chunk (16 bytes)"),
        "{}",
        stderr(&o)
    );
    let o = run(launch(&[
        "-q",
        "fakesrc num-buffers=1 sizetype=fixed sizemax=64 ! wavparse ! fakesink",
    ]));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("at byte 0: not a WAV stream"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn rawaudioparse_cuts_bytes_into_whole_frames_of_the_format_it_is_told() {
    let dir = tmp();
    let raw = file(dir.path(), "r.raw", &random_bytes(10_003, 7));
    let o = run(launch(&[
        "-q",
        "filesrc",
        &prop("location", &raw),
        "blocksize=777",
        "!",
        "rawaudioparse",
        "pcm-format=s24le",
        "num-channels=1",
        "sample-rate=8000",
        "!",
        "fdsink",
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // 3334 whole frames of 3 bytes; the last partial frame is dropped.
    assert_eq!(o.stdout, random_bytes(10_003, 7)[..10_002]);
    // Defaults: S16LE stereo at 44100 Hz, which audioresample then takes.
    let o = run(launch(&[
        "-v",
        "filesrc",
        &prop("location", &raw),
        "!",
        "rawaudioparse",
        "!",
        "audioresample",
        "!",
        "audio/x-raw,rate=8000",
        "!",
        "fakesink",
    ]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("/pipeline0/rawaudioparse0.src: caps = audio/x-raw, format=(string)S16LE, layout=(string)interleaved, rate=(int)44100, channels=(int)2"), "{}", stderr(&o));
    // use-sink-caps=true without raw audio caps in front is refused, saying why.
    let o = run(launch(&[
        "-q",
        "filesrc",
        &prop("location", &raw),
        "!",
        "rawaudioparse",
        "use-sink-caps=true",
        "!",
        "fakesink",
    ]));
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("use-sink-caps=true needs fixed audio/x-raw caps"),
        "{}",
        stderr(&o)
    );
}
