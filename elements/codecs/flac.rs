//! FLAC: `flacparse` (frames a FLAC byte stream) and `flacdec` (Symphonia's decoder).
//!
//! Both find frames the same way, so `filesrc ! flacdec` works as well as the gst line
//! `filesrc ! flacparse ! flacdec`: the stream's metadata blocks first (`fLaC`, STREAMINFO and
//! the rest), then frames, each starting at a sync code whose header checks out (CRC-8) and
//! ending where the next one starts, with its own CRC-16 right. The first buffer flacparse
//! passes on is the metadata, every later one a frame.

use super::super::media::{frames_to_ns, negotiated_or, AudioInfo};
use super::decode::{options, Chunks, Decoder, Measure};
use super::{bad_stream, carry, DECODER};
use crate::element::prelude::*;

/// What typefinding and flacparse say about a FLAC stream: its rate, channels and bits per
/// sample (`bits` is Parallax's field: the decoder's output format follows it).
const FLAC_CAPS: &str = "audio/x-flac";
const FLACPARSE_SRC: &str =
    "audio/x-flac, framed=(boolean)true, rate=(int)[ 1, 655350 ], channels=(int)[ 1, 8 ]";
const FLACDEC_SRC: &str = concat!(
    "audio/x-raw, format=(string){ S16LE, S32LE }, layout=(string)interleaved, ",
    "rate=(int)[ 1, 655350 ], channels=(int)[ 1, 8 ]"
);

/// A frame larger than this is refused (the format's own bound is far below it).
const MAX_FRAME: usize = 16 << 20;

/// The caps of a FLAC stream whose head is `head`, from its STREAMINFO block.
pub(crate) fn sniff(head: &[u8]) -> Option<Caps> {
    if head.len() < 8 + 34 || &head[..4] != b"fLaC" || head[4] & 0x7F != 0 {
        return None;
    }
    let info = StreamInfo::parse(&head[8..42])?;
    Some(Caps::one(
        Structure::new("audio/x-flac")
            .with("framed", CapsValue::Bool(false))
            .with("rate", CapsValue::Int(info.rate as i64))
            .with("channels", CapsValue::Int(info.channels as i64))
            .with("bits", CapsValue::Int(info.bits as i64)),
    ))
}

/// The fields of STREAMINFO this code uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StreamInfo {
    rate: u32,
    channels: u32,
    bits: u32,
}

impl StreamInfo {
    fn parse(block: &[u8]) -> Option<StreamInfo> {
        let b = block.get(10..14)?;
        let rate = (b[0] as u32) << 12 | (b[1] as u32) << 4 | (b[2] as u32) >> 4;
        let channels = ((b[2] >> 1) & 7) as u32 + 1;
        let bits = (((b[2] & 1) << 4) | (b[3] >> 4)) as u32 + 1;
        (rate > 0 && bits >= 4).then_some(StreamInfo {
            rate,
            channels,
            bits,
        })
    }
}

/// One unit of a FLAC stream.
enum Unit {
    /// `fLaC` and every metadata block, with STREAMINFO's fields.
    Header(Vec<u8>, StreamInfo, Vec<u8>),
    /// One frame, its offset in the stream and its samples per channel.
    Frame(Vec<u8>, u64, u32),
}

/// What the framer found: the metadata with STREAMINFO's fields, or a frame's samples per
/// channel.
enum Found {
    Header(StreamInfo, Vec<u8>),
    Frame(u32),
}

/// Finds metadata and frames in bytes that come in arbitrary chunks.
#[derive(Default)]
struct Framer {
    chunks: Chunks,
    header_done: bool,
    /// The CRC-16 of the frame at the start of `pending`, over its first `crc_len` bytes:
    /// carried on as more comes, so each byte is checked once.
    crc: u16,
    crc_len: usize,
    /// Where the search for the next frame's sync code goes on from.
    scan_from: usize,
}

fn crc8(data: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &b in data {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// CRC-16 (polynomial 0x8005, FLAC's frame check) carried on from `crc` over `data`, eight
/// bytes a step (slice-by-8 tables): it runs over every byte of every frame.
fn crc16_update(crc: u16, data: &[u8]) -> u16 {
    static TABLES: std::sync::OnceLock<[[u16; 256]; 8]> = std::sync::OnceLock::new();
    let t = TABLES.get_or_init(|| {
        let mut t = [[0u16; 256]; 8];
        for (i, e) in t[0].iter_mut().enumerate() {
            let mut c = (i as u16) << 8;
            for _ in 0..8 {
                c = if c & 0x8000 != 0 {
                    (c << 1) ^ 0x8005
                } else {
                    c << 1
                };
            }
            *e = c;
        }
        for k in 1..8 {
            for i in 0..256 {
                let prev = t[k - 1][i];
                t[k][i] = (prev << 8) ^ t[0][(prev >> 8) as usize];
            }
        }
        t
    });
    let mut crc = crc;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        crc = t[7][(c[0] ^ (crc >> 8) as u8) as usize]
            ^ t[6][(c[1] ^ crc as u8) as usize]
            ^ t[5][c[2] as usize]
            ^ t[4][c[3] as usize]
            ^ t[3][c[4] as usize]
            ^ t[2][c[5] as usize]
            ^ t[1][c[6] as usize]
            ^ t[0][c[7] as usize];
    }
    chunks.remainder().iter().fold(crc, |crc, &b| {
        (crc << 8) ^ t[0][((crc >> 8) as u8 ^ b) as usize]
    })
}

#[cfg(test)]
fn crc16(data: &[u8]) -> u16 {
    crc16_update(0, data)
}

/// A frame header at the start of `data`: `None` while too short to tell, else whether it is
/// valid, with its samples per channel.
fn frame_header(data: &[u8]) -> Option<Result<u32, ()>> {
    if data.len() < 4 {
        return None;
    }
    if data[0] != 0xFF || data[1] & 0xFE != 0xF8 {
        return Some(Err(()));
    }
    let (bs, sr) = (data[2] >> 4, data[2] & 0x0F);
    let (ch, ss) = (data[3] >> 4, (data[3] >> 1) & 7);
    if bs == 0 || sr == 0x0F || ch > 10 || ss == 3 || data[3] & 1 != 0 {
        return Some(Err(()));
    }
    // The frame or sample number, UTF-8 coded.
    let first = *data.get(4)?;
    let extra = match first.leading_ones() {
        0 => 0,
        n @ 2..=7 => n as usize - 1,
        _ => return Some(Err(())),
    };
    let mut len = 5 + extra;
    if data.len() < len {
        return None;
    }
    if data[5..len].iter().any(|b| b & 0xC0 != 0x80) {
        return Some(Err(()));
    }
    let block_at = len;
    len += match bs {
        6 => 1,
        7 => 2,
        _ => 0,
    };
    len += match sr {
        12 => 1,
        13 | 14 => 2,
        _ => 0,
    };
    if data.len() < len + 1 {
        return None;
    }
    if crc8(&data[..len]) != data[len] {
        return Some(Err(()));
    }
    let samples = match bs {
        1 => 192,
        2..=5 => 576 << (bs - 2),
        6 => data[block_at] as u32 + 1,
        7 => u16::from_be_bytes([data[block_at], data[block_at + 1]]) as u32 + 1,
        _ => 256 << (bs - 8),
    };
    Some(Ok(samples))
}

impl Framer {
    fn push(&mut self, bytes: &[u8]) {
        self.chunks.push(bytes);
    }

    /// The next complete unit; at end of stream (`eos`) what is left must be a whole frame.
    fn next(&mut self, eos: bool) -> Result<Option<Unit>, ElementError> {
        let Framer {
            chunks,
            header_done,
            crc,
            crc_len,
            scan_from,
        } = self;
        let found = chunks.next(eos, |data, at| {
            let found = if *header_done {
                frame(data, at, eos, crc, crc_len, scan_from)?
            } else {
                let m = metadata(data, at)?;
                *header_done = matches!(m, Measure::Unit(..));
                m
            };
            if let Measure::Unit(..) = found {
                (*crc, *crc_len, *scan_from) = (0, 0, 0);
            }
            Ok(found)
        })?;
        Ok(found.map(|(bytes, found, at)| match found {
            Found::Header(info, block) => Unit::Header(bytes.to_vec(), info, block),
            Found::Frame(samples) => Unit::Frame(bytes.to_vec(), at, samples),
        }))
    }
}

/// `fLaC` and the metadata blocks at the start of `data` (at stream offset `at`).
fn metadata(data: &[u8], at: u64) -> Result<Measure<Found>, ElementError> {
    let head = data.len().min(4);
    if data[..head] != b"fLaC"[..head] {
        return Err(bad_stream(at, "not a FLAC stream: no `fLaC` marker"));
    }
    let mut end = 4;
    let mut info = None;
    let mut block = Vec::new();
    loop {
        if end + 4 > data.len() {
            return Ok(Measure::Wait("its metadata"));
        }
        let last = data[end] & 0x80 != 0;
        let kind = data[end] & 0x7F;
        let len = u32::from_be_bytes([0, data[end + 1], data[end + 2], data[end + 3]]);
        let next = end + 4 + len as usize;
        if next > data.len() {
            return Ok(Measure::Wait("its metadata"));
        }
        if kind == 0 && len == 34 {
            block = data[end + 4..next].to_vec();
            info = StreamInfo::parse(&block);
        }
        end = next;
        if last {
            break;
        }
    }
    let Some(info) = info else {
        return Err(bad_stream(at, "the FLAC stream has no valid STREAMINFO"));
    };
    Ok(Measure::Unit(end, Found::Header(info, block)))
}

/// The frame at the start of `data` (at stream offset `at`): it ends where the next frame
/// header starts and the CRC-16 over it checks. `crc` is the CRC over its first `crc_len`
/// bytes, and `scan_from` where the search for the next header goes on from, both carried
/// across calls so that each byte is checked once.
fn frame(
    data: &[u8],
    at: u64,
    eos: bool,
    crc: &mut u16,
    crc_len: &mut usize,
    scan_from: &mut usize,
) -> Result<Measure<Found>, ElementError> {
    let samples = match frame_header(data) {
        None => return Ok(Measure::Wait("a frame")),
        Some(Err(())) => {
            return Err(bad_stream(
                at,
                "expected a FLAC frame (sync code and header)",
            ))
        }
        Some(Ok(samples)) => samples,
    };
    // A frame ends where the CRC-16 over it and its stored CRC is zero (the CRC's residue);
    // a candidate before `crc_len` was checked already and failed.
    let whole = |end: usize, crc: &mut u16, crc_len: &mut usize| {
        if end < 4 || end < *crc_len {
            return false;
        }
        *crc = crc16_update(*crc, &data[*crc_len..end]);
        *crc_len = end;
        *crc == 0
    };
    let mut from = (*scan_from).max(2);
    while let Some(i) = memchr_ff(&data[from..]) {
        let p = from + i;
        match frame_header(&data[p..]) {
            None if !eos => {
                *scan_from = p;
                return Ok(Measure::Wait("a frame"));
            }
            Some(Ok(_)) if whole(p, crc, crc_len) => {
                return Ok(Measure::Unit(p, Found::Frame(samples)));
            }
            _ => from = p + 1,
        }
    }
    *scan_from = data.len().max(2);
    if eos {
        if data.len() >= 4 && crc16_update(*crc, &data[*crc_len..]) == 0 {
            return Ok(Measure::Unit(data.len(), Found::Frame(samples)));
        }
        return Err(bad_stream(
            at,
            format!(
                "the stream ends inside a FLAC frame, or the frame is damaged ({} bytes, CRC-16 \
                 wrong)",
                data.len()
            ),
        ));
    }
    if data.len() > MAX_FRAME {
        return Err(bad_stream(at, "a FLAC frame longer than 16 MiB"));
    }
    Ok(Measure::Wait("a frame"))
}

fn memchr_ff(data: &[u8]) -> Option<usize> {
    memchr::memchr(0xFF, data)
}

// --- flacparse ------------------------------------------------------------------------------

static FLACPARSE_CAPS: CapsFns = CapsFns {
    forward: |input, _| carry(input, FLACPARSE_SRC, &["rate", "channels", "bits"]),
    backward: |_, _| Caps::parse(FLAC_CAPS).expect("parses"),
    fixate: |caps, _| caps.fixate(),
};

pub(crate) static FLACPARSE: Factory = Factory {
    name: "flacparse",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Parses audio with the FLAC lossless audio codec",
    doc: "Cuts a FLAC byte stream into its metadata (one buffer: `fLaC` and every metadata \
          block) and then one buffer per frame, stamped with its pts and duration from the \
          samples each frame holds. A frame is found by its sync code and header CRC-8 and \
          checked by its CRC-16; bytes that are not FLAC, or a stream cut inside a frame, end \
          the run with an error naming the byte.",
    pads: Pads::ONE_TO_ONE
        .with_caps(FLAC_CAPS, FLACPARSE_SRC)
        .with_rule(CapsRule::Derived(&FLACPARSE_CAPS)),
    props: &[],
    hints: DECODER,
    build: |_| {
        Ok(ElementImpl::Transform(Box::new(FlacParse {
            framer: Framer::default(),
            rate: 0,
            samples: 0,
        })))
    },
};

/// flacparse's state: the framer and the samples passed so far (for timestamps).
struct FlacParse {
    framer: Framer,
    rate: u32,
    samples: u64,
}

impl FlacParse {
    fn drain(&mut self, eos: bool, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        while let Some(unit) = self.framer.next(eos)? {
            let buf = match unit {
                Unit::Header(bytes, info, _) => {
                    self.rate = info.rate;
                    Buffer::from_vec(bytes)
                }
                Unit::Frame(bytes, at, n) => {
                    let mut b = Buffer::from_vec(bytes);
                    let rate = self.rate as u64;
                    b.meta.set_pts(Some(frames_to_ns(self.samples, rate)));
                    b.meta.set_duration(Some(
                        frames_to_ns(self.samples + n as u64, rate)
                            - frames_to_ns(self.samples, rate),
                    ));
                    b.meta.set_offset(Some(at));
                    self.samples += n as u64;
                    b
                }
            };
            cx.push(buf);
        }
        Ok(())
    }
}

impl Transform for FlacParse {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if buf.meta.flags.contains(BufferFlags::REWRITE) {
            // flacenc's final STREAMINFO, for the file at the end of the line.
            return Ok(Flow::Push(buf));
        }
        self.framer.push(buf.data());
        self.drain(false, cx)?;
        Ok(Flow::Held)
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        self.drain(true, cx)
    }
}

// --- flacdec --------------------------------------------------------------------------------

/// Raw audio at the stream's rate and channels: S16LE up to 16 bits a sample, else S32LE.
static FLACDEC_CAPS: CapsFns = CapsFns {
    forward: |input, _| {
        let mut out = carry(input, FLACDEC_SRC, &["rate", "channels"]);
        if let Some(bits) = input.first().and_then(|s| s.int("bits")) {
            let format = if bits <= 16 { "S16LE" } else { "S32LE" };
            for s in out.structures_mut() {
                s.set("format", CapsValue::Str(format.into()));
            }
        }
        out
    },
    backward: |_, _| Caps::parse(FLAC_CAPS).expect("parses"),
    fixate: |caps, _| caps.fixate(),
};

pub(crate) static FLACDEC: Factory = Factory {
    name: "flacdec",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Decodes FLAC lossless audio streams",
    doc: "Decodes FLAC (after flacparse or straight from the bytes: it finds frames the same \
          way) into interleaved raw audio, S16LE for streams of up to 16 bits a sample and \
          S32LE (samples in the high bits) above, bit for bit what the reference decoder \
          gives. A damaged frame (CRC-16 wrong) or a stream cut inside one ends the run with \
          an error naming the byte where the frame starts.",
    pads: Pads::ONE_TO_ONE
        .with_caps(FLAC_CAPS, FLACDEC_SRC)
        .with_rule(CapsRule::Derived(&FLACDEC_CAPS)),
    props: &[],
    hints: DECODER,
    build: |p| {
        let info = AudioInfo::from_caps(&negotiated_or(p.src_caps(), FLACDEC_SRC), p.instance())?;
        let framed = p.sink_caps().first().and_then(|s| s.get("framed").cloned())
            == Some(CapsValue::Bool(true));
        Ok(ElementImpl::Transform(Box::new(FlacDec {
            framer: Framer::default(),
            framed,
            decoder: Decoder::new(info),
            at: 0,
        })))
    },
};

/// flacdec's state: the framer (its own, or flacparse's work taken as it comes), Symphonia's
/// decoder once STREAMINFO came.
struct FlacDec {
    framer: Framer,
    /// Whether flacparse framed the stream already: then each buffer is one unit (the
    /// metadata first, then one frame a buffer) and is not searched again.
    framed: bool,
    decoder: Decoder,
    /// Stream offset of the next framed buffer (when its offset is not set).
    at: u64,
}

impl FlacDec {
    fn unit(&mut self, unit: Unit, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        match unit {
            Unit::Header(_, info, block) => {
                use symphonia::core::codecs::audio::{
                    well_known::CODEC_ID_FLAC, AudioCodecParameters,
                };
                let mut params = AudioCodecParameters::new();
                params
                    .for_codec(CODEC_ID_FLAC)
                    .with_extra_data(block.into_boxed_slice());
                let decoder = symphonia::default::codecs::FlacDecoder::try_new(&params, &options())
                    .map_err(|e| bad_stream(0, e))?;
                self.decoder
                    .start(Box::new(decoder), info.rate, info.channels, 0)?;
            }
            Unit::Frame(bytes, at, _) => {
                if let Some(b) = self.decoder.decode(&bytes, at)? {
                    cx.push(b);
                }
            }
        }
        Ok(())
    }

    fn drain(&mut self, eos: bool, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        while let Some(unit) = self.framer.next(eos)? {
            self.unit(unit, cx)?;
        }
        Ok(())
    }
}

impl Transform for FlacDec {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if buf.meta.flags.contains(BufferFlags::REWRITE) {
            // flacenc's final STREAMINFO: the decoder has what it needs.
            return Ok(Flow::Held);
        }
        if !self.framed || !self.decoder.ready() {
            // The metadata (framed or not) and every unframed byte go through the framer.
            self.framer.push(buf.data());
            self.drain(false, cx)?;
            self.at += buf.data().len() as u64;
            return Ok(Flow::Held);
        }
        let at = buf.meta.offset().unwrap_or(self.at);
        self.at = at + buf.data().len() as u64;
        if buf.data().is_empty() {
            return Ok(Flow::Held);
        }
        if !matches!(frame_header(buf.data()), Some(Ok(_))) {
            return Err(bad_stream(
                at,
                "expected a FLAC frame (sync code and header)",
            ));
        }
        if let Some(b) = self.decoder.decode(buf.data(), at)? {
            cx.push(b);
        }
        Ok(Flow::Held)
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        self.drain(true, cx)
    }
}

// --- flacenc --------------------------------------------------------------------------------

/// What flacenc takes (gst's formats; S16LE first, the one a converter in front settles on).
const FLACENC_SINK: &str = concat!(
    "audio/x-raw, format=(string){ S16LE, S24LE, S24_32LE, S8 }, layout=(string)interleaved, ",
    "rate=(int)[ 1, 655350 ], channels=(int)[ 1, 8 ]"
);
const FLACENC_SRC: &str =
    "audio/x-flac, framed=(boolean)true, rate=(int)[ 1, 655350 ], channels=(int)[ 1, 8 ]";

/// Bytes a sample takes in a raw buffer of format `name`, and the bits FLAC keeps of it.
fn raw_format(name: &str) -> Option<(usize, u32)> {
    Some(match name {
        "S8" => (1, 8),
        "S16LE" => (2, 16),
        "S24LE" => (3, 24),
        "S24_32LE" => (4, 24),
        _ => return None,
    })
}

/// The stream's rate and channels, and its bits a sample as Parallax's `bits` field (what
/// flacdec's output format follows).
static FLACENC_CAPS: CapsFns = CapsFns {
    forward: |input, _| {
        let mut out = carry(input, FLACENC_SRC, &["rate", "channels"]);
        let bits = input
            .first()
            .and_then(|s| s.string("format"))
            .and_then(raw_format);
        if let Some((_, bits)) = bits {
            for s in out.structures_mut() {
                s.set("bits", CapsValue::Int(bits as i64));
            }
        }
        out
    },
    backward: |_, _| Caps::parse(FLACENC_SINK).expect("parses"),
    fixate: |caps, _| caps.fixate(),
};

/// gst's `quality` levels (libFLAC's compression levels): their nick is their number.
const QUALITIES: &[EnumValue] = &[
    EnumValue {
        nick: "0",
        value: 0,
        doc:
            "0 - Fastest compression: 1152-sample blocks, fixed predictors, no stereo decorrelation",
    },
    EnumValue {
        nick: "1",
        value: 1,
        doc: "1: 1152-sample blocks, fixed predictors",
    },
    EnumValue {
        nick: "2",
        value: 2,
        doc: "2: 1152-sample blocks, fixed predictors",
    },
    EnumValue {
        nick: "3",
        value: 3,
        doc: "3: LPC up to order 6, no stereo decorrelation",
    },
    EnumValue {
        nick: "4",
        value: 4,
        doc: "4: LPC up to order 8",
    },
    EnumValue {
        nick: "5",
        value: 5,
        doc: "5 - Default: LPC up to order 8",
    },
    EnumValue {
        nick: "6",
        value: 6,
        doc: "6: LPC up to order 8",
    },
    EnumValue {
        nick: "7",
        value: 7,
        doc: "7: LPC up to order 8",
    },
    EnumValue {
        nick: "8",
        value: 8,
        doc: "8 - Highest compression: LPC up to order 12",
    },
    EnumValue {
        nick: "9",
        value: 9,
        doc: "9 - Insane: LPC up to order 24 (12 in the streamable subset at 48 kHz or less)",
    },
];

/// The largest LPC order the encoder has.
const MAX_LPC_ORDER: u64 = 24;

pub(crate) static FLACENC: Factory = Factory {
    name: "flacenc",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Encodes audio with the FLAC lossless audio encoder",
    doc: "Encodes interleaved raw audio (S8, S16LE, S24LE or S24_32LE, 1 to 8 channels) into a \
          FLAC stream with the pure-Rust flacenc encoder: first the metadata (`fLaC`, \
          STREAMINFO, a VORBIS_COMMENT with the encoder's name, and a PADDING block with \
          padding>0) as one buffer, then one frame a buffer of `blocksize` samples, the last \
          shorter. `quality` picks gst's presets (block size, stereo decorrelation, LPC order); \
          `blocksize`, `mid-side-stereo` and `max-lpc-order` set override them. At end of \
          stream the STREAMINFO block follows again with the total samples, the frame sizes \
          and the MD5 of the audio, flagged `rewrite` at its offset: filesink writes it over \
          the first, so the file is complete; fdsink and other streams drop it and keep the \
          first, whose total (0) and MD5 (zeros) mean `unknown`, which decoders accept. A last \
          partial sample (a stream whose length is not a whole number of frames) is dropped, as \
          rawaudioparse does. No SEEKTABLE is written. Frames are coded on as many threads \
          as the machine has cores (at most 4), two a thread at most in flight, and pushed in \
          order; the bytes are those of coding them one by one.",
    pads: Pads::ONE_TO_ONE
        .with_caps(FLACENC_SINK, FLACENC_SRC)
        .with_rule(CapsRule::Derived(&FLACENC_CAPS)),
    props: &[
        PropSpec::enumeration(
            "quality",
            "5",
            QUALITIES,
            "Speed versus compression tradeoff",
        ),
        PropSpec::uint(
            "blocksize",
            4608,
            32,
            32767,
            "Blocksize in samples (the quality's when not set)",
        ),
        PropSpec::bool(
            "streamable-subset",
            true,
            "true to limit encoder to generating a Subset stream, else false",
        ),
        PropSpec::bool(
            "mid-side-stereo",
            true,
            "Do mid side stereo (only for stereo input; the quality's when not set)",
        ),
        PropSpec::uint(
            "max-lpc-order",
            8,
            0,
            MAX_LPC_ORDER,
            "Max LPC order; 0 => use only fixed predictors (the quality's when not set)",
        ),
        PropSpec::uint(
            "qlp-coeff-precision",
            0,
            0,
            15,
            "Precision in bits of quantized linear-predictor coefficients; 0 = automatic",
        ),
        PropSpec::uint(
            "padding",
            0,
            0,
            (1 << 24) - 1,
            "Write a PADDING block with this length in bytes",
        ),
        PropSpec::bool("loose-mid-side-stereo", false, "Loose mid side stereo")
            .ignored("every frame's stereo coding is chosen by trying each"),
        PropSpec::bool(
            "exhaustive-model-search",
            false,
            "do exhaustive search of LP coefficient quantization (expensive!)",
        )
        .ignored("the encoder has no exhaustive model search"),
        PropSpec::bool(
            "escape-coding",
            false,
            "search for escape codes in the entropy coding stage for slightly better compression",
        )
        .ignored("the encoder does not use escape codes"),
        PropSpec::int(
            "seekpoints",
            -10,
            -(i32::MAX as i64),
            i32::MAX as i64,
            "Add SEEKTABLE metadata (if > 0, number of entries, if < 0, interval in sec)",
        )
        .ignored("no SEEKTABLE is written"),
    ],
    hints: super::ENCODER,
    build: |p| FlacEnc::new(p).map(|e| ElementImpl::Transform(Box::new(e))),
};

/// What one encoder writes: block size, padding, and flacenc's configuration.
struct Settings {
    block: usize,
    padding: u32,
    config: flacenc::error::Verified<flacenc::config::Encoder>,
    /// Samples stored as they are: for a frame the predictors would make larger (the encoder's
    /// Rice parameters stop at 14, which noisy 24-bit audio outgrows).
    verbatim: flacenc::error::Verified<flacenc::config::Encoder>,
}

/// The settings `p` asks for on a stream of `rate` Hz: gst's quality preset, then the
/// properties set, checked against the streamable subset when it is asked for.
fn settings(p: &Props, rate: u32) -> Result<Settings, ElementError> {
    use flacenc::error::Verify as _;
    let bad = ElementError::Config;
    let quality = p.nick("quality")?.parse::<usize>().unwrap_or(5);
    // gst's presets: (mid-side stereo, block size, max LPC order).
    let (mut mid_side, mut block, mut lpc) = [
        (false, 1152, 0),
        (true, 1152, 0),
        (true, 1152, 0),
        (false, 4608, 6),
        (true, 4608, 8),
        (true, 4608, 8),
        (true, 4608, 8),
        (true, 4608, 8),
        (true, 4608, 12),
        (true, 4608, MAX_LPC_ORDER),
    ][quality.min(9)];
    let subset = p.bool("streamable-subset")?;
    // The subset's limits at 48 kHz or less (above it, 16384-sample blocks).
    let (subset_block, subset_lpc) = if rate <= 48000 {
        (4608, 12)
    } else {
        (16384, MAX_LPC_ORDER)
    };
    if subset && !p.is_set("max-lpc-order") {
        lpc = lpc.min(subset_lpc);
    }
    if p.is_set("blocksize") {
        block = p.uint("blocksize")?;
    }
    if p.is_set("mid-side-stereo") {
        mid_side = p.bool("mid-side-stereo")?;
    }
    if p.is_set("max-lpc-order") {
        lpc = p.uint("max-lpc-order")?;
    }
    if subset && block > subset_block {
        return Err(bad(format!(
            "blocksize={block} is outside the streamable subset at {rate} Hz (at most \
             {subset_block}); set streamable-subset=false to write it"
        )));
    }
    if subset && lpc > subset_lpc {
        return Err(bad(format!(
            "max-lpc-order={lpc} is outside the streamable subset at {rate} Hz (at most \
             {subset_lpc}); set streamable-subset=false to write it"
        )));
    }
    let mut config = encoder(block as usize, mid_side);
    config.subframe_coding.use_lpc = lpc > 0;
    if lpc > 0 {
        config.subframe_coding.qlpc.lpc_order = lpc as usize;
    }
    let precision = p.uint("qlp-coeff-precision")?;
    if precision > 0 {
        config.subframe_coding.qlpc.quant_precision = precision as usize;
    }
    let mut verbatim = encoder(block as usize, false);
    verbatim.subframe_coding.use_constant = false;
    verbatim.subframe_coding.use_fixed = false;
    verbatim.subframe_coding.use_lpc = false;
    let verify = |c: flacenc::config::Encoder| {
        c.into_verified()
            .map_err(|(_, e)| bad(format!("the encoder refuses its settings: {e}")))
    };
    let (config, verbatim) = (verify(config)?, verify(verbatim)?);
    Ok(Settings {
        block: block as usize,
        padding: p.uint("padding")? as u32,
        config,
        verbatim,
    })
}

/// flacenc's configuration for `block`-sample frames, one thread, stereo decorrelation or not.
fn encoder(block: usize, stereo: bool) -> flacenc::config::Encoder {
    let mut config = flacenc::config::Encoder::default();
    config.block_size = block;
    config.multithread = false;
    config.stereo_coding.use_leftside = stereo;
    config.stereo_coding.use_rightside = stereo;
    config.stereo_coding.use_midside = stereo;
    config
}

/// flacenc's state: the stream's format, the samples not coded yet, what STREAMINFO will say.
struct FlacEnc {
    settings: std::sync::Arc<Settings>,
    info: flacenc::component::StreamInfo,
    rate: u32,
    channels: usize,
    bits: u32,
    /// Bytes a sample takes in the input.
    width: usize,
    /// Interleaved samples not coded yet, from `next` on.
    samples: Vec<i32>,
    next: usize,
    /// The bytes of a sample cut by a buffer's end.
    cut: Vec<u8>,
    /// Frames coded so far and the samples per channel in them.
    frames: usize,
    coded: u64,
    /// The smallest and largest frame written, in bytes.
    frame_sizes: Option<(usize, usize)>,
    /// A frame's samples, filled in stream order (the MD5 runs over them as they come).
    framebuf: flacenc::source::FrameBuf,
    /// Frame buffers back from the coding threads, to fill again.
    spare: Vec<flacenc::source::FrameBuf>,
    /// Threads that code frames, started with the first frame; `None` codes them here.
    pool: Option<Pool>,
    /// Threads to start (1: code every frame here, in turn).
    threads: usize,
    /// Frames given out to code so far.
    given: usize,
    /// Frames coded but not pushed yet (a later one came back before an earlier one).
    ready: std::collections::BTreeMap<usize, Coded>,
    /// flacenc's running MD5 of the samples.
    context: flacenc::source::Context,
    sent_header: bool,
}

/// Bytes from the file's start to STREAMINFO's body (`fLaC` and the block's header).
const STREAMINFO_AT: u64 = 8;

impl FlacEnc {
    fn new(p: &Props) -> Result<FlacEnc, ElementError> {
        let caps = negotiated_or(p.sink_caps(), FLACENC_SINK);
        let s = caps
            .first()
            .ok_or_else(|| ElementError::Config("no raw audio caps".into()))?;
        let bad = |what: &str| ElementError::Config(format!("the stream's caps ({caps}) {what}"));
        let (width, bits) = s
            .string("format")
            .and_then(raw_format)
            .ok_or_else(|| bad("are not S8, S16LE, S24LE or S24_32LE"))?;
        let rate =
            s.int("rate")
                .filter(|r| (1..=655350).contains(r))
                .ok_or_else(|| bad("have no rate FLAC takes (1 to 655350 Hz)"))? as u32;
        let channels = s
            .int("channels")
            .filter(|c| (1..=8).contains(c))
            .ok_or_else(|| bad("have no channel count FLAC takes (1 to 8)"))?
            as usize;
        let settings = settings(p, rate)?;
        let info = flacenc::component::StreamInfo::new(rate as usize, channels, bits as usize)
            .map_err(|e| bad(&format!("are refused by the encoder: {e}")))?;
        let framebuf = flacenc::source::FrameBuf::with_size(channels, settings.block)
            .map_err(|e| bad(&format!("are refused by the encoder: {e}")))?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(FlacEnc {
            settings: std::sync::Arc::new(settings),
            info,
            rate,
            channels,
            bits,
            width,
            samples: Vec::new(),
            next: 0,
            cut: Vec::new(),
            frames: 0,
            coded: 0,
            frame_sizes: None,
            framebuf,
            spare: Vec::new(),
            pool: None,
            threads: threads.clamp(1, MAX_THREADS),
            given: 0,
            ready: Default::default(),
            context: flacenc::source::Context::new(bits as usize, channels),
            sent_header: false,
        })
    }

    /// STREAMINFO's 34 bytes: what is known so far (the total, frame sizes and MD5 once the
    /// stream has ended; zeros, `unknown`, before).
    fn streaminfo(&self, done: bool) -> [u8; 34] {
        let mut b = [0u8; 34];
        let block = self.settings.block as u16;
        b[0..2].copy_from_slice(&block.to_be_bytes());
        b[2..4].copy_from_slice(&block.to_be_bytes());
        let (min, max) = self.frame_sizes.filter(|_| done).unwrap_or((0, 0));
        b[4..7].copy_from_slice(&(min as u32).to_be_bytes()[1..]);
        b[7..10].copy_from_slice(&(max as u32).to_be_bytes()[1..]);
        let total = if done { self.coded } else { 0 };
        let packed = (self.rate as u64) << 44
            | (self.channels as u64 - 1) << 41
            | (self.bits as u64 - 1) << 36
            | (total & 0xF_FFFF_FFFF);
        b[10..18].copy_from_slice(&packed.to_be_bytes());
        if done {
            b[18..34].copy_from_slice(&self.context.md5_digest());
        }
        b
    }

    /// The stream's metadata: `fLaC`, STREAMINFO, VORBIS_COMMENT and PADDING when asked for.
    fn header(&self, done: bool) -> Buffer {
        let mut h = b"fLaC".to_vec();
        h.extend_from_slice(&[0, 0, 0, 34]);
        h.extend_from_slice(&self.streaminfo(done));
        let vendor = concat!("Parallax ", env!("CARGO_PKG_VERSION"), " (flacenc-rs)");
        let len = 4 + vendor.len() + 4;
        let last = if self.settings.padding == 0 { 0x80 } else { 0 };
        h.push(last | 4);
        h.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        h.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        h.extend_from_slice(vendor.as_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        if self.settings.padding > 0 {
            h.push(0x80 | 1);
            h.extend_from_slice(&self.settings.padding.to_be_bytes()[1..]);
            h.resize(h.len() + self.settings.padding as usize, 0);
        }
        let mut b = Buffer::from_vec(h);
        b.meta.set_offset(Some(0));
        b
    }

    /// Appends the whole samples of `data` (with the bytes of a sample cut before it).
    fn take(&mut self, mut data: &[u8]) {
        let w = self.width;
        if !self.cut.is_empty() {
            let need = (w - self.cut.len()).min(data.len());
            self.cut.extend_from_slice(&data[..need]);
            data = &data[need..];
            if self.cut.len() < w {
                return;
            }
            let cut = std::mem::take(&mut self.cut);
            self.push_samples(&cut);
        }
        let whole = data.len() / w * w;
        self.push_samples(&data[..whole]);
        self.cut.extend_from_slice(&data[whole..]);
    }

    fn push_samples(&mut self, data: &[u8]) {
        let s = &mut self.samples;
        match self.width {
            1 => s.extend(data.iter().map(|&b| b as i8 as i32)),
            2 => s.extend(
                data.chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]) as i32),
            ),
            3 => s.extend(
                data.chunks_exact(3)
                    .map(|c| i32::from_le_bytes([0, c[0], c[1], c[2]]) >> 8),
            ),
            // S24_32LE: the low 24 bits, sign-extended.
            _ => s.extend(
                data.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([0, c[0], c[1], c[2]]) >> 8),
            ),
        }
    }

    /// Gives out every whole block buffered to be coded (and at end of stream, `eos`, the
    /// rest, then waits for them all), and pushes the frames coded, in order.
    fn code(&mut self, eos: bool, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        use flacenc::source::Fill as _;
        let step = self.settings.block * self.channels;
        loop {
            let left = self.samples.len() - self.next;
            let n = if left >= step {
                step
            } else if eos && left >= self.channels {
                left / self.channels * self.channels
            } else {
                break;
            };
            let mut fb = self.spare.pop().unwrap_or_else(|| self.framebuf.clone());
            (&mut fb, &mut self.context)
                .fill_interleaved(&self.samples[self.next..self.next + n])
                .map_err(|e| ElementError::Failed(format!("the FLAC encoder: {e}")))?;
            self.next += n;
            let job = Job {
                number: self.given,
                samples: n,
                framebuf: fb,
            };
            self.given += 1;
            if self.pool.is_none() && self.threads > 1 {
                self.pool = Pool::start(self.threads, &self.settings, &self.info, self.bits);
            }
            match &mut self.pool {
                Some(pool) => {
                    pool.give(job)?;
                    // Wait only while every thread has two frames to code.
                    while pool.in_flight >= 2 * pool.threads {
                        let done = pool.take(true)?.expect("a frame is in flight");
                        keep(&mut self.spare, &mut self.ready, done);
                    }
                    while let Some(done) = pool.take(false)? {
                        keep(&mut self.spare, &mut self.ready, done);
                    }
                }
                None => {
                    let done = code_job(&self.settings, &self.info, self.bits, job);
                    self.done(done);
                }
            }
            self.push_ready(cx)?;
        }
        if eos {
            if let Some(pool) = &mut self.pool {
                while let Some(done) = pool.take(pool.in_flight > 0)? {
                    keep(&mut self.spare, &mut self.ready, done);
                }
            }
            self.push_ready(cx)?;
        }
        if self.next > 0 {
            self.samples.drain(..self.next);
            self.next = 0;
        }
        Ok(())
    }

    /// Keeps a frame that came back until the ones before it are pushed.
    fn done(&mut self, done: (Job, Result<Vec<u8>, ElementError>)) {
        keep(&mut self.spare, &mut self.ready, done);
    }

    /// Pushes the frames coded, in order, up to the first still being coded.
    fn push_ready(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        while let Some((n, bytes)) = self.ready.remove(&self.frames) {
            let bytes = bytes?;
            let len = bytes.len();
            self.frame_sizes = Some(match self.frame_sizes {
                Some((min, max)) => (min.min(len), max.max(len)),
                None => (len, len),
            });
            let samples = (n / self.channels) as u64;
            let rate = self.rate as u64;
            let mut b = Buffer::from_vec(bytes);
            b.meta.set_pts(Some(frames_to_ns(self.coded, rate)));
            b.meta.set_duration(Some(
                frames_to_ns(self.coded + samples, rate) - frames_to_ns(self.coded, rate),
            ));
            self.coded += samples;
            self.frames += 1;
            cx.push(b);
        }
        Ok(())
    }
}

/// Keeps a frame that came back (its buffer to fill again, its bytes until the frames before
/// it are pushed).
fn keep(
    spare: &mut Vec<flacenc::source::FrameBuf>,
    ready: &mut std::collections::BTreeMap<usize, Coded>,
    (job, coded): (Job, Result<Vec<u8>, ElementError>),
) {
    spare.push(job.framebuf);
    ready.insert(job.number, (job.samples, coded));
}

/// Threads flacenc codes frames on at most.
const MAX_THREADS: usize = 4;

/// One frame to code: its number in the stream, its interleaved sample count, its samples.
struct Job {
    number: usize,
    samples: usize,
    framebuf: flacenc::source::FrameBuf,
}

/// A frame's bytes (or why it could not be coded), for the [`Job`] it came from.
type Coded = (usize, Result<Vec<u8>, ElementError>);

/// Codes `job`'s frame: with the predictors `settings` ask for, or stored as it is when they
/// would make it larger (the encoder's Rice parameters stop at 14, which noisy 24-bit audio
/// outgrows).
fn code_job(
    settings: &Settings,
    info: &flacenc::component::StreamInfo,
    bits: u32,
    job: Job,
) -> (Job, Result<Vec<u8>, ElementError>) {
    use flacenc::component::BitRepr as _;
    let code = |config| {
        flacenc::encode_fixed_size_frame(config, &job.framebuf, job.number, info).map_err(|e| {
            ElementError::Failed(format!(
                "the FLAC encoder refused frame {}: {e}",
                job.number
            ))
        })
    };
    let bytes = code(&settings.config).and_then(|mut frame| {
        // Stored samples, their subframe headers and the frame's header and CRC at most.
        let channels = info.channels();
        let verbatim_bits = job.samples * bits as usize + channels * 8 + 16 * 8 + 16;
        if frame.count_bits() > verbatim_bits {
            frame = code(&settings.verbatim)?;
        }
        let mut sink = flacenc::bitsink::ByteSink::with_capacity(frame.count_bits());
        frame
            .write(&mut sink)
            .map_err(|e| ElementError::Failed(format!("writing FLAC frame {}: {e}", job.number)))?;
        Ok(sink.into_inner())
    });
    (job, bytes)
}

/// Threads that take frames to code from one queue and send them back as they finish: a
/// frame depends only on its samples, so the bytes are those of coding them in turn.
struct Pool {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    done: std::sync::mpsc::Receiver<(Job, Result<Vec<u8>, ElementError>)>,
    handles: Vec<std::thread::JoinHandle<()>>,
    threads: usize,
    in_flight: usize,
}

impl Pool {
    /// `threads` coding threads; `None` when not one would start (frames are then coded on
    /// the element's thread).
    fn start(
        threads: usize,
        settings: &std::sync::Arc<Settings>,
        info: &flacenc::component::StreamInfo,
        bits: u32,
    ) -> Option<Pool> {
        use std::sync::{mpsc, Arc, Mutex};
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let (done_tx, done) = mpsc::channel();
        let handles: Vec<_> = (0..threads)
            .filter_map(|i| {
                let (queue, done_tx) = (queue.clone(), done_tx.clone());
                let (settings, info) = (settings.clone(), info.clone());
                std::thread::Builder::new()
                    .name(format!("flacenc-{i}"))
                    .spawn(move || loop {
                        // The lock is held only to take a job.
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        if done_tx.send(code_job(&settings, &info, bits, job)).is_err() {
                            return;
                        }
                    })
                    .ok()
            })
            .collect();
        (!handles.is_empty()).then(|| Pool {
            jobs: Some(jobs),
            done,
            threads: handles.len(),
            handles,
            in_flight: 0,
        })
    }

    fn give(&mut self, job: Job) -> Result<(), ElementError> {
        let sent = self.jobs.as_ref().map(|j| j.send(job));
        if !matches!(sent, Some(Ok(()))) {
            return Err(ElementError::Failed(
                "the FLAC encoder's threads stopped".into(),
            ));
        }
        self.in_flight += 1;
        Ok(())
    }

    /// A frame that finished (waiting for one with `wait`), or `None`.
    #[allow(clippy::type_complexity)]
    fn take(
        &mut self,
        wait: bool,
    ) -> Result<Option<(Job, Result<Vec<u8>, ElementError>)>, ElementError> {
        use std::sync::mpsc::TryRecvError;
        let got = if wait {
            self.done.recv().map_err(|_| TryRecvError::Disconnected)
        } else {
            self.done.try_recv()
        };
        match got {
            Ok(done) => {
                self.in_flight -= 1;
                Ok(Some(done))
            }
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(ElementError::Failed(
                "the FLAC encoder's threads stopped (one panicked)".into(),
            )),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the queue ends every thread once its frame is coded.
        self.jobs = None;
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

impl Transform for FlacEnc {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if !self.sent_header {
            cx.push(self.header(false));
            self.sent_header = true;
        }
        self.take(buf.data());
        self.code(false, cx)?;
        Ok(Flow::Held)
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        self.code(true, cx)?;
        if !self.sent_header {
            // Nothing came: a complete empty stream.
            cx.push(self.header(true));
            self.sent_header = true;
            return Ok(());
        }
        let mut b = Buffer::from_vec(self.streaminfo(true).to_vec());
        b.meta.set_offset(Some(STREAMINFO_AT));
        b.meta.flags = BufferFlags::REWRITE;
        cx.push(b);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_coded_on_threads_are_the_frames_coded_in_turn() {
        let caps = Caps::parse(
            "audio/x-raw, format=(string)S16LE, layout=(string)interleaved, rate=(int)44100, \
             channels=(int)2",
        )
        .unwrap();
        let audio: Vec<u8> = (0..44100 * 4)
            .flat_map(|i: i32| ((i * 37 % 2000 - 1000) as i16 * (i / 997 % 7) as i16).to_le_bytes())
            .collect();
        let encode = |threads: usize| {
            let mut p = Props::defaults("flacenc", FLACENC.props);
            p.set_caps(caps.clone(), caps.clone());
            let mut enc = FlacEnc::new(&p).unwrap();
            enc.threads = threads;
            let run = DetachedRun::new();
            let mut cx = run.ctx();
            for chunk in audio.chunks(3000) {
                enc.process(Buffer::from_vec(chunk.to_vec()), &mut cx)
                    .unwrap();
            }
            enc.flush(&mut cx).unwrap();
            cx.take_pushed()
                .map(|b| (b.data().to_vec(), b.meta.pts()))
                .collect::<Vec<_>>()
        };
        let in_turn = encode(1);
        // The header, 88200 stereo samples in 4608-sample frames, the final STREAMINFO.
        assert_eq!(in_turn.len(), 1 + 88200usize.div_ceil(4608) + 1);
        assert_eq!(encode(3), in_turn);
    }

    #[test]
    fn crcs_match_the_format_s_check_values() {
        // The CRC catalogue's check values for "123456789".
        assert_eq!(crc8(b"123456789"), 0xF4);
        assert_eq!(crc16(b"123456789"), 0xFEE8);
        // Eight bytes a step gives what one a step gives, and carries on across calls.
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let bytewise = data.iter().fold(0u16, |crc, &b| {
            let mut c = crc ^ (b as u16) << 8;
            for _ in 0..8 {
                c = if c & 0x8000 != 0 {
                    (c << 1) ^ 0x8005
                } else {
                    c << 1
                };
            }
            c
        });
        assert_eq!(crc16(&data), bytewise);
        assert_eq!(crc16_update(crc16(&data[..333]), &data[333..]), bytewise);
        // A frame followed by its CRC leaves zero.
        let mut framed = data.clone();
        framed.extend_from_slice(&bytewise.to_be_bytes());
        assert_eq!(crc16(&framed), 0);
    }

    #[test]
    fn streaminfo_gives_rate_channels_bits() {
        // 44100 Hz, 2 channels, 16 bits: 0x0AC44 << 12 | (2-1) << 9 | (16-1) << 4.
        let mut block = [0u8; 34];
        block[10..14].copy_from_slice(&[0x0A, 0xC4, 0x42, 0xF0]);
        assert_eq!(
            StreamInfo::parse(&block),
            Some(StreamInfo {
                rate: 44100,
                channels: 2,
                bits: 16
            })
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any bytes after a valid-looking start: an error or units, never a panic or a loop.
        #[test]
        fn framer_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000), cut in 0usize..64) {
            let mut f = Framer::default();
            let mut input = b"fLaC\x80\0\0\x22".to_vec();
            input.extend_from_slice(&[0, 16, 0, 16, 0, 0, 0, 0, 0, 0, 0x0A, 0xC4, 0x42, 0xF0]);
            input.extend_from_slice(&[0; 20]);
            input.extend_from_slice(&bytes);
            input.truncate(input.len().saturating_sub(cut));
            for chunk in input.chunks(97) {
                f.push(chunk);
                while let Ok(Some(_)) = f.next(false) {}
            }
            while let Ok(Some(_)) = f.next(true) {}
        }
    }
}
