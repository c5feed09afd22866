//! typefind, decodebin and uridecodebin on input that cannot be read twice: a pipe on stdin,
//! `/dev/stdin`, a FIFO, an HTTP server. Validation reads the head to find the type and the
//! source passes that head on at run time, so the output is the one a regular file gives and
//! the bytes are the input's, unchanged.

use std::io::{BufRead as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::containers::{gst, ours};
use super::support::*;

/// Runs `cmd` with `input` written into its stdin through a pipe, in pieces of `piece` bytes,
/// by a thread of its own (a pipeline that stops reading cannot dead-lock the test).
fn through_pipe(mut cmd: Command, input: Vec<u8>, piece: usize) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || {
        for chunk in input.chunks(piece) {
            if stdin.write_all(chunk).and_then(|()| stdin.flush()).is_err() {
                return; // the pipeline ended before reading it all
            }
        }
    });
    let o = wait(child);
    writer.join().unwrap();
    o
}

/// Decodes `input` to a WAV file with `source ! decodebin ! audioconvert ! wavenc`, fed
/// through a pipe when `piped`; the WAV's bytes and `-v`'s line saying the chain chosen.
fn decode(dir: &Path, source: &str, input: &Path, piped: bool, out: &str) -> (Vec<u8>, String) {
    let wav = dir.join(out);
    let mut cmd = launch(&[
        "-v",
        source,
        "! decodebin ! audioconvert ! wavenc ! filesink",
        &prop("location", &wav),
    ]);
    let o = if piped {
        through_pipe(cmd, std::fs::read(input).unwrap(), 4096)
    } else {
        cmd.stdin(Stdio::null());
        run(cmd)
    };
    assert_eq!(
        code(&o),
        0,
        "{source} < {}: {}",
        input.display(),
        stderr(&o)
    );
    let chose = stderr(&o)
        .lines()
        .find(|l| l.contains(": chose "))
        .unwrap_or_else(|| panic!("no chain in {}", stderr(&o)))
        .split_once(": chose ")
        .unwrap()
        .1
        .to_owned();
    (std::fs::read(&wav).unwrap(), chose)
}

/// The result from `filesrc location=input`.
fn from_file(dir: &Path, input: &Path) -> (Vec<u8>, String) {
    decode(
        dir,
        &format!("filesrc {}", prop("location", input)),
        input,
        false,
        "file.wav",
    )
}

#[test]
fn flac_mp3_and_ts_through_a_pipe_decode_as_from_the_file() {
    if !gst_has(&["flacenc", "lamemp3enc", "mpegaudioparse", "mpegtsmux"]) {
        return;
    }
    let dir = tmp();
    let at = |name: &str| dir.path().join(name);
    // FLAC of noise (larger than the 64 KiB head), a short MP3 (smaller), a TS with MP3.
    gst(&format!(
        "audiotestsrc num-buffers=40 wave=white-noise ! audio/x-raw,rate=44100,channels=2 ! \
         flacenc ! filesink location={}",
        at("a.flac").display()
    ));
    gst(&format!(
        "audiotestsrc num-buffers=40 ! audio/x-raw,rate=44100,channels=2 ! lamemp3enc ! \
         filesink location={}",
        at("a.mp3").display()
    ));
    gst(&format!(
        "audiotestsrc num-buffers=600 ! audio/x-raw,rate=44100,channels=2 ! lamemp3enc ! \
         mpegaudioparse ! mpegtsmux ! filesink location={}",
        at("a.ts").display()
    ));
    assert!(std::fs::metadata(at("a.flac")).unwrap().len() > 64 * 1024);
    assert!(std::fs::metadata(at("a.mp3")).unwrap().len() < 64 * 1024);
    for (name, chain) in [
        ("a.flac", "flacparse ! flacdec"),
        ("a.mp3", "mpegaudioparse ! mpg123audiodec"),
        (
            "a.ts",
            "tsdemux; audio_0_0041: mpegaudioparse ! mpg123audiodec",
        ),
    ] {
        let input = at(name);
        let (want, chose) = from_file(dir.path(), &input);
        assert_eq!(chose, chain);
        assert!(want.len() > 40 * 1024, "{name}: {} bytes", want.len());
        for source in [
            "fdsrc",
            "fdsrc fd=0 blocksize=1000",
            "filesrc location=/dev/stdin",
        ] {
            let (got, chose) = decode(dir.path(), source, &input, true, "pipe.wav");
            assert_eq!(chose, chain, "{source} < {name}");
            assert!(
                got == want,
                "{source} < {name}: the output differs from the file's"
            );
        }
    }
    // A demuxer written in the description lists a piped stream's tracks too.
    let wav = at("demuxed.wav");
    let cmd = launch(&[
        "-q",
        "fdsrc ! tsdemux name=d d. ! mpegaudioparse ! mpg123audiodec ! audioconvert ! wavenc \
         ! filesink",
        &prop("location", &wav),
    ]);
    let o = through_pipe(cmd, std::fs::read(at("a.ts")).unwrap(), 188 * 7);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(std::fs::read(&wav).unwrap() == from_file(dir.path(), &at("a.ts")).0);
}

/// A FLAC of white noise made by our own encoder: `a.flac` in `dir`, larger than the 64 KiB
/// head typefinding may read.
fn noise_flac(dir: &Path) -> PathBuf {
    let flac = dir.join("a.flac");
    ours(&[
        "-q",
        "audiotestsrc num-buffers=40 wave=white-noise ! audio/x-raw,format=S16LE,rate=44100,channels=2 \
         ! flacenc ! filesink",
        &prop("location", &flac),
    ]);
    flac
}

#[test]
fn a_fifo_decodes_as_the_file_it_carries() {
    let dir = tmp();
    let flac = noise_flac(dir.path());
    let (want, _) = from_file(dir.path(), &flac);
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let bytes = std::fs::read(&flac).unwrap();
    let path = fifo.clone();
    // The open for writing waits for the pipeline to open the FIFO for reading.
    let writer = std::thread::spawn(move || {
        let mut w = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        let _ = w.write_all(&bytes);
    });
    let (got, chose) = decode(
        dir.path(),
        &format!("filesrc {}", prop("location", &fifo)),
        &flac,
        false,
        "fifo.wav",
    );
    writer.join().unwrap();
    assert_eq!(chose, "flacparse ! flacdec");
    assert!(got == want);
}

/// A WAV file made by our own wavenc: `buffers` buffers of 1024 frames of a sine.
fn wav(dir: &Path, name: &str, buffers: u32) -> PathBuf {
    let path = dir.join(name);
    ours(&[
        "-q",
        &format!(
            "audiotestsrc num-buffers={buffers} ! audio/x-raw,format=S16LE,rate=8000,channels=1 \
             ! wavenc ! filesink"
        ),
        &prop("location", &path),
    ]);
    path
}

#[test]
fn typefind_passes_a_pipe_s_head_on_byte_for_byte() {
    let dir = tmp();
    let copy = dir.path().join("copy");
    // Larger than the 64 KiB head, smaller (found from what there is), and one that fits a
    // single read of most pipes; read in blocks smaller and larger than the head.
    for (buffers, blocksize) in [(100u32, 4096), (100, 1 << 20), (1, 4096), (3, 333)] {
        let input = std::fs::read(wav(dir.path(), "in.wav", buffers)).unwrap();
        let cmd = launch(&[
            "-v",
            &format!("fdsrc blocksize={blocksize} ! typefind ! filesink"),
            &prop("location", &copy),
        ]);
        let o = through_pipe(cmd, input.clone(), 1000);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(
            stderr(&o).contains(
                "/pipeline0/typefind0.src: caps = audio/x-wav, format=(string)S16LE, \
                 rate=(int)8000, channels=(int)1"
            ),
            "{}",
            stderr(&o)
        );
        let got = std::fs::read(&copy).unwrap();
        assert_eq!(
            got.len(),
            input.len(),
            "{buffers} buffers, blocksize {blocksize}"
        );
        assert!(got == input, "{buffers} buffers, blocksize {blocksize}");
    }
}

#[test]
fn empty_and_unknown_piped_input_fail_saying_what_they_saw() {
    let cases: [(Vec<u8>, i32, &str); 5] = [
        (
            Vec::new(),
            2,
            "error: decodebin0: the input ended before its type could be found (0 bytes)",
        ),
        (
            random_bytes(5000, 7),
            2,
            "error: decodebin0: fd 0 is of no type this build knows (its first 5000 bytes \
             start ",
        ),
        (
            random_bytes(300 * 1024, 8),
            2,
            "error: decodebin0: fd 0 is of no type this build knows (its first 65536 bytes \
             start ",
        ),
        (vec![0; 3], 2, "(its first 3 bytes start 00 00 00)"),
        (
            b"fLaC".to_vec(),
            2,
            "error: decodebin0: fd 0 is of no type this build knows (its first 4 bytes",
        ),
    ];
    for (input, want, text) in cases {
        let len = input.len();
        let o = through_pipe(launch(&["fdsrc ! decodebin ! fakesink"]), input, 4096);
        assert_eq!(code(&o), want, "{len} bytes: {}", stderr(&o));
        assert!(stderr(&o).contains(text), "{len} bytes: {}", stderr(&o));
    }
    // typefind passes what it cannot name to the run, which fails as gst's does.
    let o = through_pipe(
        launch(&["fdsrc ! typefind ! fakesink"]),
        random_bytes(5000, 9),
        4096,
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("could not determine the type of the stream from its first 4096 bytes"),
        "{}",
        stderr(&o)
    );
    // The head is passed on by this process: the source cannot move to a worker.
    let dir = tmp();
    let o = through_pipe(
        launch(&["fdsrc exec=isolated ! decodebin ! fakesink"]),
        std::fs::read(wav(dir.path(), "in.wav", 1)).unwrap(),
        4096,
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("error: fdsrc0 cannot run isolated: its first bytes were read"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn fdsrc_into_a_sink_streams_before_its_input_ends() {
    // Nothing after fdsrc wants a type: validation reads nothing, so the line comes out while
    // stdin is still open.
    for sink in [
        "fdsink",
        "filesink location=/dev/stdout buffer-mode=unbuffered",
    ] {
        let mut child = spawn_piped(&["-q", &format!("fdsrc ! {sink}")]);
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        stdin.write_all(b"one line\n").unwrap();
        stdin.flush().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut reader = std::io::BufReader::new(stdout);
            let _ = reader.read_line(&mut line);
            let _ = tx.send((line, reader));
        });
        let Ok((line, rest)) = rx.recv_timeout(WATCHDOG) else {
            let _ = child.kill();
            panic!("{sink}: no output while stdin stays open");
        };
        assert_eq!(line, "one line\n", "{sink}");
        drop(stdin);
        // The rest is read under the watchdog: a run that does not end fails the test.
        assert!(rest.buffer().is_empty(), "{sink}");
        child.stdout = Some(rest.into_inner());
        let o = wait(child);
        assert_eq!(code(&o), 0, "{sink}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{sink}");
    }
}

#[test]
fn a_live_pipe_starts_once_its_first_bytes_say_what_it_is() {
    // 8 KiB of a FLAC stream, and stdin stays open: the type is found from the first 4 KiB,
    // so the run starts and passes those bytes on while more may still come.
    let dir = tmp();
    let flac = noise_flac(dir.path());
    let bytes = std::fs::read(&flac).unwrap();
    let mut child = spawn_piped(&["-q", "fdsrc ! typefind ! fdsink"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    stdin.write_all(&bytes[..8192]).unwrap();
    stdin.flush().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut got = vec![0u8; 8192];
        let read = stdout.read_exact(&mut got).map(|()| got);
        let _ = tx.send((read, stdout));
    });
    let Ok((read, stdout)) = rx.recv_timeout(WATCHDOG) else {
        let _ = child.kill();
        panic!("nothing came out while stdin stayed open");
    };
    assert!(read.unwrap() == bytes[..8192]);
    stdin.write_all(&bytes[8192..]).unwrap();
    drop(stdin);
    // The rest is read under the watchdog: a run that does not end fails the test.
    child.stdout = Some(stdout);
    let o = wait(child);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(o.stdout == bytes[8192..]);
}

#[test]
#[cfg(feature = "http")]
fn uridecodebin_and_httpsrc_decodebin_over_http_equal_the_file() {
    let dir = tmp();
    let flac = noise_flac(dir.path());
    let (want, _) = from_file(dir.path(), &flac);
    let server = super::net::http::Server::start(std::fs::read(&flac).unwrap());
    let url = server.url("/file");
    let wav = dir.path().join("http.wav");
    for line in [
        format!("uridecodebin uri={url} ! audioconvert"),
        format!("httpsrc location={url} ! decodebin ! audioconvert"),
        format!("souphttpsrc location={url} ! queue ! decodebin ! audioconvert"),
    ] {
        let before = server.seen().len();
        let o = ours(&["-v", &line, "! wavenc ! filesink", &prop("location", &wav)]);
        assert!(
            stderr(&o).contains(": chose flacparse ! flacdec"),
            "{}",
            stderr(&o)
        );
        assert!(std::fs::read(&wav).unwrap() == want, "{line}");
        // One request reads the head at validation, one the stream for the run.
        assert_eq!(server.seen().len() - before, 2, "{line}");
    }
    let missing = server.url("/missing");
    let o = run(launch(&[&format!("uridecodebin uri={missing} ! fakesink")]));
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "error: uridecodebin0: reading {missing}: HTTP 404 Not Found from {missing}"
        )),
        "{}",
        stderr(&o)
    );
}
