//! WAV: `wavenc` and `wavparse`.

use super::{frames_to_ns, negotiated_or, AudioInfo, SampleFormat};
use crate::element::prelude::*;

/// What wavenc takes: the sample formats a canonical WAV file holds.
const WAVENC_SINK: &str = concat!(
    "audio/x-raw, format=(string){ S16LE, S32LE, S24LE, F32LE, F64LE, U8 }, ",
    "layout=(string)interleaved, rate=(int)[ 1, 2147483647 ], channels=(int)[ 1, 65535 ]"
);

/// The size fields of the header written before the sizes are known: "to the end of the
/// stream", as most readers take it.
const UNKNOWN: u32 = u32::MAX;

/// Bytes of the header: RIFF, fmt (16 bytes) and the data chunk's head.
pub(crate) const HEADER_LEN: usize = 44;

pub(crate) static WAVENC: Factory = Factory {
    name: "wavenc",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Encode raw audio into WAV",
    doc: "Writes a 44-byte RIFF/WAVE header for the negotiated format (PCM for integer samples, \
          IEEE float for F32LE and F64LE), then the samples unchanged. The first header's sizes \
          are 0xFFFFFFFF (not known yet); at end of stream a second header with the real sizes \
          follows, flagged `rewrite` at offset 0: filesink writes it over the first (gst's \
          wavenc seeks back for this), fdsink and other streams drop it and keep the streaming \
          header. Channels beyond two are written in the plain format, without \
          WAVE_FORMAT_EXTENSIBLE's channel mask; an odd data size gets no pad byte.",
    pads: Pads::ONE_TO_ONE
        .with_caps(WAVENC_SINK, "audio/x-wav")
        .with_rule(CapsRule::Fixed),
    props: &[],
    hints: Hints::FUSABLE,
    build: |p| {
        let info = AudioInfo::from_caps(&negotiated_or(p.sink_caps(), WAVENC_SINK), p.instance())?;
        Ok(ElementImpl::Transform(Box::new(WavEnc {
            info,
            data_len: 0,
            sent_header: false,
        })))
    },
};

/// wavenc's state: the format and how many sample bytes went out.
struct WavEnc {
    info: AudioInfo,
    data_len: u64,
    sent_header: bool,
}

/// The 44-byte header of `info` with `data_len` bytes of samples (`UNKNOWN` sizes when none).
pub(crate) fn header(info: &AudioInfo, data_len: Option<u64>) -> [u8; HEADER_LEN] {
    let (riff, data) = match data_len {
        Some(n) => (
            u32::try_from(n + 36).unwrap_or(UNKNOWN),
            u32::try_from(n).unwrap_or(UNKNOWN),
        ),
        None => (UNKNOWN, UNKNOWN),
    };
    let bpf = info.bpf() as u32;
    let tag: u16 = match info.format {
        SampleFormat::F32 | SampleFormat::F64 => 3,
        _ => 1,
    };
    let mut h = [0u8; HEADER_LEN];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        h[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(b"RIFF");
    put(&riff.to_le_bytes());
    put(b"WAVE");
    put(b"fmt ");
    put(&16u32.to_le_bytes());
    put(&tag.to_le_bytes());
    put(&(info.channels as u16).to_le_bytes());
    put(&info.rate.to_le_bytes());
    put(&(info.rate.saturating_mul(bpf)).to_le_bytes());
    put(&(bpf as u16).to_le_bytes());
    put(&((info.format.width() * 8) as u16).to_le_bytes());
    put(b"data");
    put(&data.to_le_bytes());
    h
}

impl WavEnc {
    fn header_buffer(&self, data_len: Option<u64>) -> Buffer {
        let mut b = Buffer::from_vec(header(&self.info, data_len).to_vec());
        b.meta.set_offset(Some(0));
        b
    }
}

impl Transform for WavEnc {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if !self.sent_header {
            let mut h = self.header_buffer(None);
            h.meta.set_pts(buf.meta.pts());
            cx.push(h);
            self.sent_header = true;
        }
        self.data_len += buf.len() as u64;
        Ok(Flow::Push(buf))
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if !self.sent_header {
            // No samples at all: a complete empty file, as gst's.
            cx.push(self.header_buffer(Some(0)));
            return Ok(());
        }
        let mut h = self.header_buffer(Some(self.data_len));
        h.meta.flags = BufferFlags::REWRITE;
        cx.push(h);
        Ok(())
    }
}

// --- wavparse ------------------------------------------------------------------------------

/// What wavparse gives: any raw audio a WAV file holds, known once its header is read.
const WAVPARSE_SRC: &str = concat!(
    "audio/x-raw, format=(string){ S16LE, S32LE, F32LE, F64LE, S24LE, U8 }, ",
    "layout=(string)interleaved, rate=(int)[ 1, 2147483647 ], channels=(int)[ 1, 65535 ]"
);

/// The format comes from the file: wavparse offers every raw format, keeps whatever caps
/// downstream narrowed them to, and checks the header against them when it reads it.
static WAVPARSE_CAPS: CapsFns = CapsFns {
    // Typefinding read the file's fmt chunk: its format is the output's.
    forward: |input, _| match input.first().and_then(|s| s.string("format")) {
        Some(_) => {
            super::super::codecs::carry(input, WAVPARSE_SRC, &["format", "rate", "channels"])
        }
        None => Caps::parse(WAVPARSE_SRC).expect("the template parses"),
    },
    backward: |_, _| Caps::Any,
    fixate: |caps, _| caps,
};

pub(crate) static WAVPARSE: Factory = Factory {
    name: "wavparse",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Parse a .wav file into raw audio",
    doc: "Reads a RIFF/WAVE stream: PCM of 8, 16, 24 or 32 bits and IEEE float of 32 or 64 \
          bits, plain or WAVE_FORMAT_EXTENSIBLE, and gives its samples as raw audio (U8, S16LE, \
          S24LE, S32LE, F32LE, F64LE), stamped with pts, duration and offsets in frames. Chunks \
          other than `fmt ` and `data` (LIST, fact, cue...) are skipped, odd-sized ones with \
          their pad byte; a data size of 0 or 0xFFFFFFFF (a streamed WAV) means up to the end \
          of the stream, and what follows a sized data chunk is ignored. A stream that is not \
          WAV, a header cut short or one that contradicts itself is an error naming the byte \
          offset; a last partial frame is dropped, as gst's. The format is known only \
          once the header is read: elements after wavparse that need it at validation (such \
          as audioconvert) need caps that say it (`wavparse ! audio/x-raw,format=S16LE,\
          rate=44100,channels=2 ! ...`), and a file that differs from them is an error.",
    pads: Pads::ONE_TO_ONE
        .with_caps("audio/x-wav", WAVPARSE_SRC)
        .with_rule(CapsRule::Derived(&WAVPARSE_CAPS)),
    props: &[PropSpec::bool(
        "ignore-length",
        false,
        "Ignore length from the Wave header",
    )],
    hints: Hints::FUSABLE,
    build: |p| {
        let caps = p.src_caps();
        let expect = if caps.is_fixed() {
            AudioInfo::from_caps(caps, p.instance()).ok()
        } else {
            None
        };
        Ok(ElementImpl::Transform(Box::new(WavParse {
            stage: Stage::Riff,
            held: Vec::new(),
            pos: 0,
            info: None,
            expect,
            ignore_length: p.bool("ignore-length")?,
            frames: 0,
            partial: Vec::new(),
        })))
    },
};

/// Where in the stream wavparse is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The 12 bytes of `RIFF size WAVE`.
    Riff,
    /// The 8 bytes of a chunk's id and size.
    ChunkHead,
    /// The body of the `fmt ` chunk, which starts at `at`, `size` bytes (then `pad`).
    Fmt { at: u64, size: usize, pad: bool },
    /// Bytes of a chunk to pass over.
    Skip(u64),
    /// Samples: how many bytes are left (`None`: to the end of the stream).
    Data(Option<u64>),
    /// After the data chunk: the rest is ignored.
    Done,
}

/// A header that does not hold, at byte `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WavError {
    pub(crate) at: u64,
    pub(crate) what: String,
}

impl std::fmt::Display for WavError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at byte {}: {}", self.at, self.what)
    }
}

/// The largest `fmt ` chunk read (an extensible one is 40 bytes): a bigger one is a lie.
const MAX_FMT: usize = 4096;

/// wavparse's state.
struct WavParse {
    stage: Stage,
    /// Bytes of the structure being read (a head, a fmt body), gathered across buffers.
    held: Vec<u8>,
    /// Stream offset of the next byte to read.
    pos: u64,
    info: Option<AudioInfo>,
    /// The format the negotiated caps name, when they are fixed.
    expect: Option<AudioInfo>,
    ignore_length: bool,
    /// Frames given so far.
    frames: u64,
    /// The start of a frame cut by a buffer boundary.
    partial: Vec<u8>,
}

/// The sample format of a `fmt ` chunk's tag and bits.
fn sample_format(tag: u16, bits: u16) -> Option<SampleFormat> {
    Some(match (tag, bits) {
        (1, 8) => SampleFormat::U8,
        (1, 16) => SampleFormat::S16,
        (1, 24) => SampleFormat::S24,
        (1, 32) => SampleFormat::S32,
        (3, 32) => SampleFormat::F32,
        (3, 64) => SampleFormat::F64,
        _ => return None,
    })
}

/// The caps of a WAV stream whose head is `head`: `audio/x-wav` with the raw format of its
/// `fmt ` chunk (Parallax's fields `format`, `rate`, `channels`, which wavparse's output takes),
/// or plain `audio/x-wav` when the fmt chunk is not within the head or is not raw PCM.
pub(crate) fn sniff(head: &[u8]) -> Option<Caps> {
    if head.len() < 12 || &head[..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return None;
    }
    let plain = Caps::one(Structure::new("audio/x-wav"));
    let mut at = 12usize;
    while let Some(h) = head.get(at..at + 8) {
        let size = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        if &h[..4] == b"fmt " {
            let Some(body) = head.get(at + 8..(at + 8).saturating_add(size)) else {
                return Some(plain);
            };
            return Some(match parse_fmt(body, at as u64 + 8) {
                Ok(info) => {
                    let raw = info.caps();
                    let mut s = Structure::new("audio/x-wav");
                    for f in ["format", "rate", "channels"] {
                        if let Some(v) = raw.first().and_then(|r| r.get(f)) {
                            s = s.with(f, v.clone());
                        }
                    }
                    Caps::one(s)
                }
                Err(_) => plain,
            });
        }
        if &h[..4] == b"data" {
            break;
        }
        at = at
            .saturating_add(8)
            .saturating_add(size)
            .saturating_add(size % 2);
    }
    Some(plain)
}

/// Reads a `fmt ` chunk's body, which starts at byte `at`.
pub(crate) fn parse_fmt(b: &[u8], at: u64) -> Result<AudioInfo, WavError> {
    let err = |off: u64, what: String| Err(WavError { at: at + off, what });
    if b.len() < 16 {
        return err(
            0,
            format!("the fmt chunk is {} bytes, at least 16 expected", b.len()),
        );
    }
    let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut tag = u16_at(0);
    let channels = u16_at(2);
    let rate = u32_at(4);
    let align = u16_at(12);
    let bits = u16_at(14);
    if tag == 0xFFFE {
        // WAVE_FORMAT_EXTENSIBLE: the real tag is the first two bytes of the sub-format GUID.
        if b.len() < 40 {
            return err(
                0,
                format!(
                    "the fmt chunk says WAVE_FORMAT_EXTENSIBLE but is {} bytes, 40 expected",
                    b.len()
                ),
            );
        }
        tag = u16_at(24);
    }
    if channels == 0 {
        return err(2, "the fmt chunk gives 0 channels".into());
    }
    if rate == 0 || rate > i32::MAX as u32 {
        return err(4, format!("the fmt chunk gives a sample rate of {rate} Hz"));
    }
    let Some(format) = sample_format(tag, bits) else {
        return err(
            0,
            format!(
                "format tag {tag:#06x} with {bits} bits a sample is not raw PCM (8, 16, 24, 32 \
                 bits) or IEEE float (32, 64 bits): wavparse gives only raw audio"
            ),
        );
    };
    let info = AudioInfo {
        format,
        rate,
        channels: channels as u32,
    };
    if align as usize != info.bpf() {
        return err(
            12,
            format!(
                "block align {align} does not match {channels} channels of {bits} bits ({} bytes)",
                info.bpf()
            ),
        );
    }
    Ok(info)
}

impl WavParse {
    /// Gathers `n` bytes of a structure from `data[*i..]` into `held`; true once complete.
    fn gather(&mut self, data: &[u8], i: &mut usize, n: usize) -> bool {
        let take = (n - self.held.len()).min(data.len() - *i);
        self.held.extend_from_slice(&data[*i..*i + take]);
        *i += take;
        self.pos += take as u64;
        self.held.len() == n
    }

    /// Reads `data`, returning the sample bytes it holds (a zero-copy slice when it can).
    fn parse(&mut self, buf: &Buffer) -> Result<Option<Buffer>, WavError> {
        let data = buf.data();
        let mut i = 0;
        while i < data.len() {
            match self.stage {
                Stage::Riff => {
                    if !self.gather(data, &mut i, 12) {
                        break;
                    }
                    let h = std::mem::take(&mut self.held);
                    if &h[0..4] != b"RIFF" || &h[8..12] != b"WAVE" {
                        return Err(WavError {
                            at: 0,
                            what: format!(
                                "not a WAV stream: it starts {:?}, not with a RIFF/WAVE header",
                                String::from_utf8_lossy(&h[..4])
                            ),
                        });
                    }
                    self.stage = Stage::ChunkHead;
                }
                Stage::ChunkHead => {
                    if !self.gather(data, &mut i, 8) {
                        break;
                    }
                    let h = std::mem::take(&mut self.held);
                    let at = self.pos - 8;
                    let size = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
                    let pad = size % 2 == 1;
                    self.stage = match &h[0..4] {
                        b"fmt " => {
                            if size as usize > MAX_FMT {
                                return Err(WavError {
                                    at: at + 4,
                                    what: format!(
                                        "the fmt chunk claims {size} bytes, at most {MAX_FMT} are read"
                                    ),
                                });
                            }
                            Stage::Fmt {
                                at: at + 8,
                                size: size as usize,
                                pad,
                            }
                        }
                        b"data" => {
                            if self.info.is_none() {
                                return Err(WavError {
                                    at,
                                    what: "the data chunk comes before any fmt chunk".into(),
                                });
                            }
                            if size == 0 || size == u32::MAX || self.ignore_length {
                                Stage::Data(None)
                            } else {
                                Stage::Data(Some(size as u64))
                            }
                        }
                        _ => Stage::Skip(size as u64 + pad as u64),
                    };
                }
                Stage::Fmt { at, size, pad } => {
                    if !self.gather(data, &mut i, size) {
                        break;
                    }
                    let body = std::mem::take(&mut self.held);
                    let info = parse_fmt(&body, at)?;
                    if let Some(e) = self.expect.filter(|e| *e != info) {
                        return Err(WavError {
                            at,
                            what: format!(
                                "the file holds {} but the caps after wavparse say {}",
                                info.caps(),
                                e.caps()
                            ),
                        });
                    }
                    self.info = Some(info);
                    self.stage = if pad {
                        Stage::Skip(1)
                    } else {
                        Stage::ChunkHead
                    };
                }
                Stage::Skip(left) => {
                    let take = left.min((data.len() - i) as u64);
                    i += take as usize;
                    self.pos += take;
                    self.stage = if take == left {
                        Stage::ChunkHead
                    } else {
                        Stage::Skip(left - take)
                    };
                }
                Stage::Data(left) => {
                    let take =
                        left.map_or(data.len() - i, |l| l.min((data.len() - i) as u64) as usize);
                    let out = self.samples(buf, i..i + take);
                    self.pos += take as u64;
                    self.stage = match left {
                        Some(l) if l == take as u64 => Stage::Done,
                        Some(l) => Stage::Data(Some(l - take as u64)),
                        None => Stage::Data(None),
                    };
                    return Ok(out);
                }
                Stage::Done => {
                    self.pos += (data.len() - i) as u64;
                    break;
                }
            }
        }
        Ok(None)
    }

    /// The whole frames of `buf[range]` (after a frame cut by the last boundary).
    fn samples(&mut self, buf: &Buffer, range: std::ops::Range<usize>) -> Option<Buffer> {
        let info = self.info.expect("data comes after fmt");
        let bpf = info.bpf();
        let mut out = if self.partial.is_empty() {
            let whole = range.start + (range.len() / bpf) * bpf;
            let tail = &buf.data()[whole..range.end];
            self.partial.extend_from_slice(tail);
            if whole == range.start {
                return None;
            }
            buf.slice(range.start..whole)?
        } else {
            let mut bytes = std::mem::take(&mut self.partial);
            bytes.extend_from_slice(&buf.data()[range]);
            let whole = (bytes.len() / bpf) * bpf;
            self.partial = bytes.split_off(whole);
            if whole == 0 {
                return None;
            }
            Buffer::from_vec(bytes)
        };
        let n = (out.len() / bpf) as u64;
        let rate = info.rate as u64;
        out.meta = Default::default();
        out.meta.set_pts(Some(frames_to_ns(self.frames, rate)));
        out.meta.set_duration(Some(
            frames_to_ns(self.frames + n, rate) - frames_to_ns(self.frames, rate),
        ));
        out.meta.set_offset(Some(self.frames));
        out.meta.set_offset_end(Some(self.frames + n));
        self.frames += n;
        Some(out)
    }

    /// End of stream: an error unless the samples had begun.
    fn finish(&mut self) -> Result<usize, WavError> {
        let inside = match self.stage {
            Stage::Data(_) | Stage::Done => return Ok(self.partial.len()),
            Stage::Riff => "the RIFF/WAVE header (12 bytes)".to_string(),
            Stage::ChunkHead if self.held.is_empty() => {
                return Err(WavError {
                    at: self.pos,
                    what: "the stream ends before any data chunk".into(),
                })
            }
            Stage::ChunkHead => "a chunk header (8 bytes)".to_string(),
            Stage::Fmt { size, .. } => format!("the fmt chunk ({size} bytes)"),
            Stage::Skip(left) => format!("a chunk it skips ({left} bytes short)"),
        };
        Err(WavError {
            at: self.pos,
            what: format!("the stream ends inside {inside}"),
        })
    }
}

impl Transform for WavParse {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        match self.parse(&buf) {
            Ok(Some(out)) => Ok(Flow::Push(out)),
            Ok(None) => Ok(Flow::Held),
            Err(e) => Err(ElementError::Failed(e.to_string())),
        }
    }

    fn flush(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        // A last partial frame cannot be given as raw audio; it is dropped, as gst's.
        self.finish()
            .map(|_| ())
            .map_err(|e| ElementError::Failed(e.to_string()))
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&WAVENC, &WAVPARSE];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields() {
        let info = AudioInfo {
            format: SampleFormat::S16,
            rate: 8000,
            channels: 1,
        };
        let h = header(&info, Some(1000));
        assert_eq!(&h[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(h[4..8].try_into().unwrap()), 1036);
        assert_eq!(u32::from_le_bytes(h[28..32].try_into().unwrap()), 16000);
        assert_eq!(u16::from_le_bytes(h[32..34].try_into().unwrap()), 2);
        assert_eq!(u32::from_le_bytes(h[40..44].try_into().unwrap()), 1000);
        let h = header(&info, None);
        assert_eq!(u32::from_le_bytes(h[4..8].try_into().unwrap()), u32::MAX);
    }

    fn chunk(id: &[u8], body: &[u8]) -> Vec<u8> {
        let mut v = id.to_vec();
        v.extend_from_slice(&(body.len() as u32).to_le_bytes());
        v.extend_from_slice(body);
        if body.len() % 2 == 1 {
            v.push(0);
        }
        v
    }

    fn fmt(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
        chunk(b"fmt ", &fmt_body(tag, channels, rate, bits))
    }

    fn fmt_body(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
        let align = channels * bits / 8;
        let mut b = Vec::new();
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * align as u32).to_le_bytes());
        b.extend_from_slice(&align.to_le_bytes());
        b.extend_from_slice(&bits.to_le_bytes());
        b
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
        v.extend_from_slice(b"WAVE");
        v.extend_from_slice(&body);
        v
    }

    fn parser() -> WavParse {
        WavParse {
            stage: Stage::Riff,
            held: Vec::new(),
            pos: 0,
            info: None,
            expect: None,
            ignore_length: false,
            frames: 0,
            partial: Vec::new(),
        }
    }

    /// Feeds `bytes` in pieces of `step`: the samples out, the format, or the error.
    fn parse_all(bytes: &[u8], step: usize) -> Result<(Vec<u8>, Option<AudioInfo>), WavError> {
        let mut p = parser();
        let mut out = Vec::new();
        let mut frames = 0;
        for piece in bytes.chunks(step.max(1)) {
            if let Some(b) = p.parse(&Buffer::from_vec(piece.to_vec()))? {
                assert_eq!(b.meta.offset(), Some(frames));
                frames = b.meta.offset_end().unwrap();
                out.extend_from_slice(b.data());
            }
        }
        p.finish()?;
        Ok((out, p.info))
    }

    #[test]
    fn every_pcm_and_float_format_and_any_split() {
        let samples: Vec<u8> = (0..240u32).map(|i| (i * 7) as u8).collect();
        for (tag, bits, format) in [
            (1, 8, SampleFormat::U8),
            (1, 16, SampleFormat::S16),
            (1, 24, SampleFormat::S24),
            (1, 32, SampleFormat::S32),
            (3, 32, SampleFormat::F32),
            (3, 64, SampleFormat::F64),
        ] {
            let file = riff(&[fmt(tag, 2, 22050, bits), chunk(b"data", &samples)]);
            for step in [1, 3, 7, 44, 45, 1000] {
                let (out, info) = parse_all(&file, step).unwrap();
                assert_eq!(out, samples, "{format:?} in pieces of {step}");
                let info = info.unwrap();
                assert_eq!((info.format, info.rate, info.channels), (format, 22050, 2));
            }
        }
    }

    #[test]
    fn extensible_list_odd_chunks_and_streamed_sizes() {
        let samples: Vec<u8> = (0..100u8).collect();
        // WAVE_FORMAT_EXTENSIBLE, 24 bits: cbSize 22, valid bits, mask, the PCM GUID.
        let mut ext = fmt_body(0xFFFE, 2, 48000, 24);
        ext.extend_from_slice(&22u16.to_le_bytes());
        ext.extend_from_slice(&24u16.to_le_bytes());
        ext.extend_from_slice(&3u32.to_le_bytes());
        ext.extend_from_slice(&[
            1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71,
        ]);
        let ext = chunk(b"fmt ", &ext);
        let list = chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00Lavf\x00");
        let odd = chunk(b"junk", b"abc");
        let file = riff(&[
            odd.clone(),
            ext.clone(),
            list.clone(),
            chunk(b"data", &samples[..96]),
        ]);
        let (out, info) = parse_all(&file, 5).unwrap();
        assert_eq!(out, &samples[..96]);
        assert_eq!(info.unwrap().format, SampleFormat::S24);
        // A sized data chunk ends the samples: what follows it is not audio.
        let mut file = riff(&[ext.clone(), chunk(b"data", &samples[..96])]);
        file.extend_from_slice(&list);
        assert_eq!(parse_all(&file, 7).unwrap().0, &samples[..96]);
        // Sizes of 0 or 0xFFFFFFFF (a streamed WAV): up to the end, the last partial frame dropped.
        for size in [0u32, u32::MAX] {
            let mut file = riff(&[fmt(1, 1, 8000, 16)]);
            file.extend_from_slice(b"data");
            file.extend_from_slice(&size.to_le_bytes());
            file.extend_from_slice(&samples[..99]);
            assert_eq!(parse_all(&file, 10).unwrap().0, &samples[..98]);
        }
    }

    #[test]
    fn bad_headers_name_the_byte() {
        let err = |bytes: &[u8]| parse_all(bytes, 4).unwrap_err().to_string();
        let e = err(b"OggS\0\0\0\0\0\0\0\0\0\0");
        assert!(e.starts_with("at byte 0: not a WAV stream"), "{e}");
        let good = riff(&[fmt(1, 1, 8000, 16), chunk(b"data", &[0; 8])]);
        assert_eq!(
            err(&good[..30]),
            "at byte 30: the stream ends inside the fmt chunk (16 bytes)"
        );
        assert_eq!(
            err(&good[..6]),
            "at byte 6: the stream ends inside the RIFF/WAVE header (12 bytes)"
        );
        assert_eq!(
            err(&good[..38]),
            "at byte 38: the stream ends inside a chunk header (8 bytes)"
        );
        assert_eq!(
            err(&good[..36]),
            "at byte 36: the stream ends before any data chunk"
        );
        let mut lying = fmt(1, 2, 8000, 16);
        lying[20] = 3;
        assert_eq!(
            err(&riff(&[lying, chunk(b"data", &[0; 8])])),
            "at byte 32: block align 3 does not match 2 channels of 16 bits (4 bytes)"
        );
        assert!(err(&riff(&[fmt(2, 1, 8000, 4), chunk(b"data", &[0; 8])]))
            .starts_with("at byte 20: format tag 0x0002 with 4 bits a sample is not raw PCM"));
        assert_eq!(
            err(&riff(&[chunk(b"data", &[0; 8])])),
            "at byte 12: the data chunk comes before any fmt chunk"
        );
        assert_eq!(
            err(&riff(&[fmt(1, 0, 8000, 16), chunk(b"data", &[0; 8])])),
            "at byte 22: the fmt chunk gives 0 channels"
        );
    }

    proptest::proptest! {
        #[test]
        fn random_and_truncated_bytes_never_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            cut in 0usize..120,
            step in 1usize..50,
        ) {
            let _ = parse_all(&bytes, step);
            let mut file = riff(&[fmt(1, 2, 44100, 16), chunk(b"LIST", &bytes), chunk(b"data", &bytes)]);
            let _ = parse_all(&file[..cut.min(file.len())], step);
            // Random bytes over a real header's fields.
            let len = file.len();
            for (i, b) in bytes.iter().take(len).enumerate() {
                if i % 3 == 0 {
                    file[(i * 7) % len] = *b;
                }
            }
            let _ = parse_all(&file, step);
        }
    }
}
