//! FLAC: `flacparse` (frames a FLAC byte stream) and `flacdec` (Symphonia's decoder).
//!
//! Both find frames the same way, so `filesrc ! flacdec` works as well as the gst line
//! `filesrc ! flacparse ! flacdec`: the stream's metadata blocks first (`fLaC`, STREAMINFO and
//! the rest), then frames, each starting at a sync code whose header checks out (CRC-8) and
//! ending where the next one starts, with its own CRC-16 right. The first buffer flacparse
//! passes on is the metadata, every later one a frame.

use super::super::media::{frames_to_ns, negotiated_or, AudioInfo};
use super::decode::{options, Decoder};
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

/// Finds metadata and frames in bytes that come in arbitrary chunks.
#[derive(Default)]
struct Framer {
    pending: Vec<u8>,
    /// Stream offset of `pending[0]`.
    at: u64,
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
        self.pending.extend_from_slice(bytes);
    }

    fn take(&mut self, n: usize) -> (Vec<u8>, u64) {
        (self.crc, self.crc_len, self.scan_from) = (0, 0, 0);
        let rest = self.pending.split_off(n);
        let at = self.at;
        self.at += n as u64;
        (std::mem::replace(&mut self.pending, rest), at)
    }

    /// The next complete unit; at end of stream (`eos`) what is left must be a whole frame.
    fn next(&mut self, eos: bool) -> Result<Option<Unit>, ElementError> {
        let data = &self.pending;
        if !self.header_done {
            let head = data.len().min(4);
            if data[..head] != b"fLaC"[..head] {
                return Err(bad_stream(self.at, "not a FLAC stream: no `fLaC` marker"));
            }
            let mut at = 4;
            let mut info = None;
            let mut block = Vec::new();
            loop {
                if at + 4 > data.len() {
                    return self.incomplete(eos, "its metadata");
                }
                let last = data[at] & 0x80 != 0;
                let kind = data[at] & 0x7F;
                let len = u32::from_be_bytes([0, data[at + 1], data[at + 2], data[at + 3]]);
                let end = at + 4 + len as usize;
                if end > data.len() {
                    return self.incomplete(eos, "its metadata");
                }
                if kind == 0 && len == 34 {
                    block = data[at + 4..end].to_vec();
                    info = StreamInfo::parse(&block);
                }
                at = end;
                if last {
                    break;
                }
            }
            let Some(info) = info else {
                return Err(bad_stream(
                    self.at,
                    "the FLAC stream has no valid STREAMINFO",
                ));
            };
            self.header_done = true;
            let (bytes, _) = self.take(at);
            return Ok(Some(Unit::Header(bytes, info, block)));
        }
        if data.is_empty() {
            return Ok(None);
        }
        let samples = match frame_header(data) {
            None => return self.incomplete(eos, "a frame"),
            Some(Err(())) => {
                return Err(bad_stream(
                    self.at,
                    "expected a FLAC frame (sync code and header)",
                ))
            }
            Some(Ok(samples)) => samples,
        };
        // A frame ends where the CRC-16 over it and its stored CRC is zero (the CRC's
        // residue); a candidate before `crc_len` was checked already and failed.
        let whole = |end: usize, crc: &mut u16, crc_len: &mut usize| {
            if end < 4 || end < *crc_len {
                return false;
            }
            *crc = crc16_update(*crc, &data[*crc_len..end]);
            *crc_len = end;
            *crc == 0
        };
        let (mut crc, mut crc_len) = (self.crc, self.crc_len);
        let mut from = self.scan_from.max(2);
        while let Some(i) = memchr_ff(&data[from..]) {
            let p = from + i;
            match frame_header(&data[p..]) {
                None if !eos => {
                    (self.crc, self.crc_len, self.scan_from) = (crc, crc_len, p);
                    return Ok(None);
                }
                Some(Ok(_)) if whole(p, &mut crc, &mut crc_len) => {
                    let (bytes, at) = self.take(p);
                    return Ok(Some(Unit::Frame(bytes, at, samples)));
                }
                _ => from = p + 1,
            }
        }
        (self.crc, self.crc_len, self.scan_from) = (crc, crc_len, data.len().max(2));
        if eos {
            let data = &self.pending;
            if data.len() >= 4 && crc16_update(self.crc, &data[self.crc_len..]) == 0 {
                let n = data.len();
                let (bytes, at) = self.take(n);
                return Ok(Some(Unit::Frame(bytes, at, samples)));
            }
            return Err(bad_stream(
                self.at,
                format!(
                    "the stream ends inside a FLAC frame, or the frame is damaged ({} bytes, \
                     CRC-16 wrong)",
                    data.len()
                ),
            ));
        }
        if data.len() > MAX_FRAME {
            return Err(bad_stream(self.at, "a FLAC frame longer than 16 MiB"));
        }
        Ok(None)
    }

    fn incomplete(&self, eos: bool, what: &str) -> Result<Option<Unit>, ElementError> {
        if eos && !self.pending.is_empty() {
            return Err(bad_stream(
                self.at,
                format!(
                    "the stream ends inside {what} ({} bytes)",
                    self.pending.len()
                ),
            ));
        }
        Ok(None)
    }
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
                    b.meta.pts = Some(frames_to_ns(self.samples, rate));
                    b.meta.duration = Some(
                        frames_to_ns(self.samples + n as u64, rate)
                            - frames_to_ns(self.samples, rate),
                    );
                    b.meta.offset = Some(at);
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
        if !self.framed || !self.decoder.ready() {
            // The metadata (framed or not) and every unframed byte go through the framer.
            self.framer.push(buf.data());
            self.drain(false, cx)?;
            self.at += buf.data().len() as u64;
            return Ok(Flow::Held);
        }
        let at = buf.meta.offset.unwrap_or(self.at);
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
