//! Typefinding: what the first bytes of a stream are, as caps (gst's typefind functions).
//!
//! Caps are settled when the description is validated, before anything runs, so a decoder
//! right after `filesrc` learns its format from the file's head: validation reads the first
//! bytes of a regular file that feeds an element wanting typed input, and the caps found here
//! stand on that link. Only what the head says is used (an image's size, a stream's rate and
//! channels). A pipe, a FIFO or an HTTP stream that reaches `typefind` or `decodebin` lends
//! its head instead: validation reads it and the source passes those bytes first at run time
//! (see `src/graph/head.rs`).

use crate::element::prelude::*;

/// Bytes of a file's head that typefinding reads at most.
pub(crate) const HEAD_LEN: usize = 64 * 1024;

/// The lengths of head typefinding decides at, shortest first, as gst's typefind tries
/// longer and longer heads: a live pipe starts once its first 4 KiB say what it is.
/// A file and a pipe of the same bytes stop at the same step, so they get the same caps.
pub(crate) const STEPS: [usize; 3] = [4 * 1024, 16 * 1024, HEAD_LEN];

/// What typefinding says of a head read `STEPS` at a time: `head(len)` gives the stream's
/// first `len` bytes (fewer at its end). The head it decided on, and the caps found.
pub(crate) fn typefind<E>(
    mut head: impl FnMut(usize) -> Result<Vec<u8>, E>,
) -> Result<(Vec<u8>, Option<Caps>), E> {
    for step in STEPS {
        let bytes = head(step)?;
        let last = step == HEAD_LEN || bytes.len() < step;
        let found = sniff_with(&bytes, last);
        if found.is_some() || last {
            return Ok((bytes, found));
        }
    }
    unreachable!("the last step decides")
}

/// The caps of a stream starting with `head`, when a codec of this build knows it.
pub(crate) fn sniff(head: &[u8]) -> Option<Caps> {
    sniff_with(head, true)
}

/// [`sniff`]; without `guesses`, only what more bytes cannot overturn (not an ID3 tag whose
/// first frame is further on, nor two frame headers alone).
fn sniff_with(head: &[u8], guesses: bool) -> Option<Caps> {
    #[cfg(feature = "image-png")]
    if let Some(c) = png(head) {
        return Some(c);
    }
    #[cfg(feature = "image-jpeg")]
    if let Some(c) = jpeg(head) {
        return Some(c);
    }
    #[cfg(feature = "audio-flac")]
    if let Some(c) = super::flac::sniff(head) {
        return Some(c);
    }
    #[cfg(feature = "audio-mp3")]
    if let Some(c) = super::mpeg::sniff(head) {
        return Some(c);
    }
    #[cfg(feature = "audio-aac")]
    if let Some(c) = super::aac::sniff(head) {
        return Some(c);
    }
    #[cfg(feature = "audio-vorbis")]
    if let Some(c) = super::ogg::sniff(head) {
        return Some(c);
    }
    container(head, guesses)
}

/// Containers and elementary streams whose type the head tells, whether or not this build
/// decodes them: decodebin says which feature brings what it lacks.
fn container(head: &[u8], guesses: bool) -> Option<Caps> {
    let caps = |text: &str| Some(Caps::parse(text).expect("a typefind caps text parses"));
    if let Some(c) = super::super::media::sniff_wav(head) {
        return Some(c);
    }
    if head.len() >= 12
        && matches!(
            &head[4..8],
            b"ftyp" | b"moov" | b"mdat" | b"free" | b"wide" | b"skip"
        )
    {
        let box_size = u32::from_be_bytes(head[..4].try_into().expect("4 bytes"));
        if box_size == 1 || box_size >= 8 {
            let apple = &head[4..8] == b"ftyp" && &head[8..12] == b"qt  ";
            return caps(if apple {
                "video/quicktime, variant=(string)apple"
            } else {
                "video/quicktime, variant=(string)iso"
            });
        }
    }
    for size in [188usize, 192] {
        let skip = size - 188;
        let packets = (head.len().saturating_sub(skip) / size).min(8);
        if packets >= 2 && (0..packets).all(|i| head[skip + i * size] == 0x47) {
            return caps(&format!(
                "video/mpegts, systemstream=(boolean)true, packetsize=(int){size}"
            ));
        }
    }
    if head.starts_with(b"OggS") {
        return caps("application/ogg");
    }
    if head.len() >= 4 && head[..4] == [0x1A, 0x45, 0xDF, 0xA3] {
        return caps("video/x-matroska");
    }
    if !guesses {
        return None;
    }
    // The header parsers of mpegaudioparse and aacparse, which every build has.
    let mp3 = |h: &[u8]| {
        super::mpeg::header(h)
            .filter(|h| h.layer == 3)
            .map(|h| h.size)
    };
    if head.starts_with(b"ID3") || two_frames(head, mp3) {
        return caps("audio/mpeg, mpegversion=(int)1, layer=(int)3");
    }
    if two_frames(head, |h| super::aac::adts(h).map(|h| h.size)) {
        return caps("audio/mpeg, mpegversion=(int)4, stream-format=(string)adts");
    }
    None
}

/// Two frames in a row at the head, each measured by `size` (the frame's bytes, `None` when
/// the bytes are no frame header).
fn two_frames(head: &[u8], size: impl Fn(&[u8]) -> Option<usize>) -> bool {
    size(head).is_some_and(|len| size(head.get(len..).unwrap_or(&[])).is_some())
}

/// A still image's caps: its size, framerate 0/1 (gst's for one picture).
#[allow(dead_code)]
fn image(name: &str, width: i64, height: i64) -> Option<Caps> {
    (width > 0 && height > 0).then(|| {
        Caps::one(
            Structure::new(name)
                .with("width", CapsValue::Int(width))
                .with("height", CapsValue::Int(height))
                .with(
                    "framerate",
                    CapsValue::Fraction(Fraction { num: 0, den: 1 }),
                ),
        )
    })
}

/// PNG: the signature, then IHDR's width and height.
#[cfg(feature = "image-png")]
fn png(head: &[u8]) -> Option<Caps> {
    if head.len() < 24 || &head[..8] != b"\x89PNG\r\n\x1a\n" || &head[12..16] != b"IHDR" {
        return None;
    }
    let be = |at: usize| u32::from_be_bytes(head[at..at + 4].try_into().expect("4 bytes"));
    image("image/png", be(16) as i64, be(20) as i64)
}

/// JPEG: SOI, then the segments up to a start-of-frame marker and its size.
#[cfg(feature = "image-jpeg")]
fn jpeg(head: &[u8]) -> Option<Caps> {
    if head.len() < 4 || head[..3] != [0xFF, 0xD8, 0xFF] {
        return None;
    }
    let mut at = 2;
    while at + 9 <= head.len() && head[at] == 0xFF {
        let marker = head[at + 1];
        let len = u16::from_be_bytes([head[at + 2], head[at + 3]]) as usize;
        if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
            let h = u16::from_be_bytes([head[at + 5], head[at + 6]]) as i64;
            let w = u16::from_be_bytes([head[at + 7], head[at + 8]]) as i64;
            return image("image/jpeg", w, h);
        }
        if len < 2 || marker == 0xDA {
            return None;
        }
        at += 2 + len;
    }
    None
}

// --- typefind ------------------------------------------------------------------------------

/// Caps that typefinding found for the input, or `force-caps`: what typefind gives.
static TYPEFIND_CAPS: CapsFns = CapsFns {
    forward: |input, p| match forced(p) {
        Some(c) => c,
        None => input.clone(),
    },
    backward: |_, _| Caps::Any,
    fixate: |caps, _| caps,
};

pub(crate) static TYPEFIND: Factory = Factory {
    name: "typefind",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Finds the media type of a stream",
    doc: "Says what a byte stream is, as caps on its src pad, from its first bytes: PNG, JPEG, \
          FLAC, WAV, MP4/QuickTime, MPEG-TS, Ogg, Matroska, MP3 and ADTS AAC. The head (4 KiB, or \
          16, at most 64, as far as it takes to decide) is read when the description is \
          validated, so \
          everything after typefind knows the format before the run (`-v` prints the caps); \
          `force-caps` says it instead. A regular file is read again at run time; a pipe, a \
          FIFO or stdin (`fdsrc`, `filesrc location=/dev/stdin`) lends those bytes and its \
          source passes them first, then the rest, so the stream is unchanged; validation \
          waits for them as gst's typefind waits for data. `httpsrc` reads its URL twice, once \
          for the head. Input that is read only at run time (a socket) is checked when its \
          first buffers come: bytes of no known type are an error, as gst's `Could not \
          determine type of stream`. Buffers pass unchanged.",
    pads: Pads::ONE_TO_ONE.with_rule(CapsRule::Derived(&TYPEFIND_CAPS)),
    props: &[
        PropSpec::string("force-caps", None, "force caps without doing a typefind")
            .checked(super::super::flow::check_caps),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        Ok(ElementImpl::Transform(Box::new(TypeFind {
            checked: forced(p).is_some() || !p.src_caps().is_any(),
            head: Vec::new(),
        })))
    },
};

/// The `force-caps` property as caps, when set.
fn forced(p: &Props) -> Option<Caps> {
    p.string("force-caps")
        .ok()
        .flatten()
        .and_then(|t| Caps::parse(t).ok())
}

/// Passes buffers; when nothing told the type before the run, checks the stream's head.
struct TypeFind {
    /// The type is known (found at validation, or forced): nothing to check.
    checked: bool,
    /// The head gathered so far, while not checked.
    head: Vec<u8>,
}

/// Bytes typefind gathers at run time before it gives up: validation's first step, where a
/// live stream decides (see [`STEPS`]).
const RUN_HEAD: usize = STEPS[0];

impl Transform for TypeFind {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if self.checked {
            return Ok(Flow::Push(buf));
        }
        self.head
            .extend_from_slice(&buf.data()[..buf.len().min(RUN_HEAD - self.head.len())]);
        if self.head.len() >= RUN_HEAD {
            self.decide()?;
        }
        Ok(Flow::Push(buf))
    }

    fn flush(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if !self.checked && !self.head.is_empty() {
            self.decide()?;
        }
        Ok(())
    }
}

impl TypeFind {
    fn decide(&mut self) -> Result<(), ElementError> {
        self.checked = true;
        match sniff(&self.head) {
            Some(_) => Ok(()),
            None => Err(ElementError::Failed(format!(
                "could not determine the type of the stream from its first {} bytes",
                self.head.len()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Typefinds `stream` as validation does, with the head lengths it asked for.
    fn typefound(stream: &[u8]) -> (usize, Option<String>, Vec<usize>) {
        let mut asked = Vec::new();
        let (head, caps) = typefind(|len| {
            asked.push(len);
            Ok::<_, ()>(stream[..len.min(stream.len())].to_vec())
        })
        .unwrap();
        (head.len(), caps.map(|c| c.to_string()), asked)
    }

    #[test]
    fn typefinding_stops_at_the_first_step_that_decides() {
        let mut wav = b"RIFF\xff\xff\xff\xffWAVEfmt \x10\0\0\0\x01\0\x01\0".to_vec();
        wav.extend_from_slice(&8000u32.to_le_bytes());
        wav.extend_from_slice(&16000u32.to_le_bytes());
        wav.extend_from_slice(b"\x02\0\x10\0data\xff\xff\xff\xff");
        wav.resize(100_000, 0);
        let (len, caps, asked) = typefound(&wav);
        assert_eq!((len, asked), (4096, vec![4096]));
        assert!(caps.unwrap().starts_with("audio/x-wav"));
        // A short stream is typefound from all of it.
        let (len, caps, asked) = typefound(&wav[..100]);
        assert_eq!((len, asked), (100, vec![4096]));
        assert!(caps.is_some());
    }

    #[test]
    fn a_guess_waits_for_the_whole_window() {
        // An ID3 tag longer than the window: only the tag says it is MP3, a guess that more
        // bytes could refine, so it is made at the last step only.
        let size = 100_000u32;
        let mut id3 = b"ID3\x04\0\0".to_vec();
        id3.extend((0..4).rev().map(|i| ((size >> (7 * i)) & 0x7F) as u8));
        id3.resize(200_000, 0);
        let (len, caps, asked) = typefound(&id3);
        assert_eq!((len, asked), (HEAD_LEN, STEPS.to_vec()));
        assert_eq!(
            caps.unwrap(),
            "audio/mpeg, mpegversion=(int)1, layer=(int)3"
        );
        let (_, caps, _) = typefound(&[0xFF; 70_000]);
        assert!(caps.is_none());
    }

    #[test]
    fn unknown_bytes_have_no_caps() {
        assert!(sniff(b"").is_none());
        assert!(sniff(&[0xFF; 100]).is_none());
    }

    #[cfg(feature = "image-png")]
    #[test]
    fn png_head_gives_its_size() {
        let mut head = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        head.extend_from_slice(&640u32.to_be_bytes());
        head.extend_from_slice(&480u32.to_be_bytes());
        assert_eq!(
            sniff(&head).unwrap().to_string(),
            "image/png, width=(int)640, height=(int)480, framerate=(fraction)0/1"
        );
    }
}
