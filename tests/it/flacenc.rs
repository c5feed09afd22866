//! flacenc: what it writes decodes bit for bit with the reference `flac -d`, gst's flacdec and
//! our own flacdec, for every sample width and channel count FLAC takes, odd lengths included;
//! the file's STREAMINFO is completed at end of stream; bad caps and settings are refused
//! before the run.

use crate::support::*;
use std::path::{Path, PathBuf};

/// One input: gst's format name, bytes a sample, bits kept, channels, samples per channel.
struct Case {
    format: &'static str,
    width: usize,
    bits: u32,
    channels: usize,
    frames: usize,
}

impl Case {
    /// A tone on each channel (a different pitch each, so LPC has work) plus some noise, as
    /// integers of `bits` bits, interleaved.
    fn samples(&self) -> Vec<i32> {
        let max = (1i64 << (self.bits - 1)) - 1;
        let noise = random_bytes(self.frames * self.channels, self.frames as u64);
        (0..self.frames * self.channels)
            .map(|i| {
                let (t, ch) = ((i / self.channels) as f64, (i % self.channels) as f64);
                let tone = (t * (0.01 + 0.013 * ch)).sin() * 0.7;
                let n = (noise[i] as f64 - 127.5) / 127.5 * 0.05;
                ((tone + n) * max as f64)
                    .round()
                    .clamp(-(max as f64) - 1.0, max as f64) as i32
            })
            .collect()
    }

    /// `samples` as the raw bytes of the case's format.
    fn raw(&self, samples: &[i32]) -> Vec<u8> {
        samples
            .iter()
            .flat_map(|&s| s.to_le_bytes()[..self.width].to_vec())
            .collect()
    }

    /// What `flac -d` gives back: each sample in as many bytes as its bits need.
    fn reference(&self, samples: &[i32]) -> Vec<u8> {
        let n = self.bits as usize / 8;
        samples
            .iter()
            .flat_map(|&s| s.to_le_bytes()[..n].to_vec())
            .collect()
    }

    /// What gst's flacdec gives: S8, S16LE, or S24_32LE (sign-extended) for 24 bits.
    fn gst(&self, samples: &[i32]) -> Vec<u8> {
        let n = match self.bits {
            8 => 1,
            16 => 2,
            _ => 4,
        };
        samples
            .iter()
            .flat_map(|&s| s.to_le_bytes()[..n].to_vec())
            .collect()
    }

    /// The samples as S32LE with the sample in the high bits (what a converter makes of any
    /// narrower format).
    fn s32(&self, samples: &[i32]) -> Vec<u8> {
        samples
            .iter()
            .flat_map(|&s| (s << (32 - self.bits)).to_le_bytes())
            .collect()
    }

    fn caps(&self) -> String {
        format!(
            "audio/x-raw,format={},layout=interleaved,rate=44100,channels={}",
            self.format, self.channels
        )
    }
}

fn ours(desc: &str) {
    let o = run(launch(&["-q", desc]));
    assert_eq!(code(&o), 0, "{desc}: {}", stderr(&o));
}

fn gst(desc: &str) {
    let ok = std::process::Command::new("gst-launch-1.0")
        .arg("-q")
        .args(desc.split(' '))
        .status()
        .expect("gst-launch-1.0 runs")
        .success();
    assert!(ok, "gst-launch-1.0 {desc}");
}

/// `flac ARGS... FILE` succeeds.
fn flac(args: &[&str], file: &Path) {
    let st = std::process::Command::new("flac")
        .args(args)
        .arg(file)
        .status()
        .unwrap();
    assert!(st.success(), "flac {args:?} {}", file.display());
}

/// STREAMINFO's total samples and MD5 in the file `f`.
fn streaminfo(f: &[u8]) -> (u64, [u8; 16]) {
    assert_eq!(&f[..4], b"fLaC");
    let packed = u64::from_be_bytes(f[18..26].try_into().unwrap());
    (packed & 0xF_FFFF_FFFF, f[26..42].try_into().unwrap())
}

/// Encodes `case` with `props`, checks the file with the three decoders; the file's path.
fn check(dir: &Path, name: &str, case: &Case, props: &str) -> PathBuf {
    let samples = case.samples();
    let input = file(dir, &format!("{name}.raw"), &case.raw(&samples));
    let coded = dir.join(format!("{name}.flac"));
    ours(&format!(
        "filesrc location={} ! {} ! flacenc {props} ! filesink location={}",
        input.display(),
        case.caps(),
        coded.display()
    ));
    let what = format!("{name} ({} x{} {props})", case.format, case.channels);
    let bytes = std::fs::read(&coded).unwrap();
    let (total, md5) = streaminfo(&bytes);
    assert_eq!(total, case.frames as u64, "{what}: STREAMINFO's total");
    assert_ne!(md5, [0; 16], "{what}: STREAMINFO's MD5");
    // The reference decoder, which also checks the MD5 against what it decodes.
    let decoded = dir.join(format!("{name}.ref"));
    flac(
        &[
            "-s",
            "-d",
            "-f",
            "--force-raw-format",
            "--endian=little",
            "--sign=signed",
            "-o",
            decoded.to_str().unwrap(),
        ],
        &coded,
    );
    assert!(
        std::fs::read(&decoded).unwrap() == case.reference(&samples),
        "{what}: flac -d gives other samples"
    );
    // gst's flacdec in its own format, ours converted to S32LE.
    let theirs = dir.join(format!("{name}.gst"));
    gst(&format!(
        "filesrc location={} ! flacparse ! flacdec ! filesink location={}",
        coded.display(),
        theirs.display()
    ));
    // gst puts more than six channels in its own order: the channels are compared as a set.
    let channels = |b: Vec<u8>| {
        let width = b.len() / samples.len().max(1);
        let mut by_channel = vec![Vec::new(); case.channels];
        for (i, s) in b.chunks(width.max(1)).enumerate() {
            by_channel[i % case.channels].extend_from_slice(s);
        }
        by_channel.sort();
        by_channel
    };
    let got = std::fs::read(&theirs).unwrap();
    assert_eq!(got.len(), case.gst(&samples).len(), "{what}: gst's flacdec");
    assert!(
        channels(got) == channels(case.gst(&samples)),
        "{what}: gst's flacdec gives other samples"
    );
    let want = case.s32(&samples);
    let mine = dir.join(format!("{name}.ours"));
    ours(&format!(
        "filesrc location={} ! flacparse ! flacdec ! audioconvert ! audio/x-raw,format=S32LE ! \
         filesink location={}",
        coded.display(),
        mine.display()
    ));
    assert!(
        std::fs::read(&mine).unwrap() == want,
        "{what}: our flacdec gives other samples"
    );
    coded
}

#[test]
fn flacenc_output_decodes_bit_exact_with_flac_gst_and_flacdec() {
    if !have_tool("flac") || !have_tool("gst-launch-1.0") {
        return;
    }
    let dir = tmp();
    let cases = [
        // One sample; less than a block; several blocks and a short one.
        ("one", "S16LE", 2, 16, 1, 1, ""),
        ("short", "S16LE", 2, 16, 2, 1000, ""),
        ("stereo", "S16LE", 2, 16, 2, 3 * 4608 + 17, ""),
        ("s8", "S8", 1, 8, 3, 5000, ""),
        ("s24", "S24LE", 3, 24, 6, 4609, ""),
        ("s24in32", "S24_32LE", 4, 24, 1, 7001, ""),
        ("eight", "S16LE", 2, 16, 8, 2500, "blocksize=1000"),
        ("q0", "S16LE", 2, 16, 2, 5000, "quality=0"),
        ("q8", "S24LE", 3, 24, 2, 5000, "quality=8 padding=100"),
        (
            "fixed",
            "S16LE",
            2,
            16,
            2,
            5000,
            "max-lpc-order=0 mid-side-stereo=false",
        ),
        (
            "big",
            "S16LE",
            2,
            16,
            1,
            40000,
            "blocksize=16384 streamable-subset=false",
        ),
    ];
    for (name, format, width, bits, channels, frames, props) in cases {
        let case = Case {
            format,
            width,
            bits,
            channels,
            frames,
        };
        check(dir.path(), name, &case, props);
    }
}

#[test]
fn flacenc_streams_where_the_output_cannot_seek_and_into_flacdec() {
    if !have_tool("flac") {
        return;
    }
    let dir = tmp();
    let case = Case {
        format: "S16LE",
        width: 2,
        bits: 16,
        channels: 2,
        frames: 10_000,
    };
    let samples = case.samples();
    let raw = case.raw(&samples);
    let input = file(dir.path(), "in.raw", &raw);
    let into = |tail: &str| {
        format!(
            "filesrc location={} ! {} ! flacenc ! {tail}",
            input.display(),
            case.caps()
        )
    };
    // Through fdsink (a stream): the first STREAMINFO stays, total and MD5 unknown; the
    // frames are the same as in the file filesink completes.
    let o = run(launch(&["-q", &into("fdsink")]));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let streamed = o.stdout;
    assert_eq!(streaminfo(&streamed), (0, [0; 16]));
    let seekable = dir.path().join("seekable.flac");
    ours(&into(&format!("filesink location={}", seekable.display())));
    let whole = std::fs::read(&seekable).unwrap();
    assert_eq!(streaminfo(&whole).0, 10_000);
    assert_eq!(streamed.len(), whole.len());
    assert!(streamed[42..] == whole[42..], "only STREAMINFO differs");
    let streamed = file(dir.path(), "streamed.flac", &streamed);
    flac(&["-s", "-t"], &streamed);
    // flacparse passes the final STREAMINFO on; flacdec decodes the framed stream as it comes.
    let parsed = dir.path().join("parsed.flac");
    ours(&into(&format!(
        "flacparse ! filesink location={}",
        parsed.display()
    )));
    assert!(std::fs::read(&parsed).unwrap() == whole);
    for dec in ["flacdec", "flacparse ! flacdec"] {
        let out = dir.path().join("out.raw");
        ours(&into(&format!(
            "{dec} ! filesink location={}",
            out.display()
        )));
        assert!(std::fs::read(&out).unwrap() == raw, "{dec}: samples differ");
    }
    // No input at all: a complete empty stream.
    let empty = file(dir.path(), "empty.raw", b"");
    let coded = dir.path().join("empty.flac");
    ours(&format!(
        "filesrc location={} ! {} ! flacenc ! filesink location={}",
        empty.display(),
        case.caps(),
        coded.display()
    ));
    assert_eq!(streaminfo(&std::fs::read(&coded).unwrap()).0, 0);
    flac(&["-s", "-t"], &coded);
}

#[test]
fn flacenc_refuses_what_flac_cannot_hold_before_the_run() {
    let dir = tmp();
    let input = file(dir.path(), "in.raw", &[0; 64]);
    for (caps, props, says) in [
        (
            "audio/x-raw,format=F32LE,layout=interleaved,rate=44100,channels=1",
            "",
            "cannot agree on caps",
        ),
        (
            "audio/x-raw,format=S16LE,layout=interleaved,rate=44100,channels=9",
            "",
            "cannot agree on caps",
        ),
        (
            "audio/x-raw,format=S16LE,layout=interleaved,rate=44100,channels=2",
            "blocksize=8192",
            "blocksize=8192 is outside the streamable subset at 44100 Hz",
        ),
        (
            "audio/x-raw,format=S16LE,layout=interleaved,rate=44100,channels=2",
            "max-lpc-order=20",
            "max-lpc-order=20 is outside the streamable subset",
        ),
        (
            "audio/x-raw,format=S16LE,layout=interleaved,rate=44100,channels=2",
            "blocksize=16",
            "blocksize",
        ),
    ] {
        let desc = format!(
            "filesrc location={} ! {caps} ! flacenc {props} ! fakesink",
            input.display()
        );
        let o = run(launch(&["-q", &desc]));
        assert_eq!(code(&o), 2, "{desc}: {}", stderr(&o));
        assert!(stderr(&o).contains("flacenc"), "{desc}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{desc}: {}", stderr(&o));
    }
}
