//! Ogg and Vorbis: `oggdemux` takes Ogg pages apart into the packets of the stream's first
//! logical stream, and `vorbisdec` decodes Vorbis packets with Symphonia's decoder.
//!
//! A page is `OggS`, a 27-byte header (flags, granule position, serial, sequence, CRC-32), a
//! lacing table and the segments it measures; a packet is a run of 255-byte segments ended by
//! a shorter one, and may continue on the next page. The packets go out one a buffer, the
//! codec's header packets first (gst's `streamheader`, in the stream), each page's last packet
//! carrying the page's granule position as its end offset.

use super::super::media::negotiated_or;
use super::decode::{options, Chunks, Decoder, Measure};
use super::{bad_stream, DECODER};
use crate::element::prelude::*;

const OGG_CAPS: &str = "application/ogg";
const DEMUX_SRC: &str = concat!(
    "audio/x-vorbis, rate=(int)[ 1, 2147483647 ], channels=(int)[ 1, 255 ]; ",
    "audio/x-opus; audio/x-flac; video/x-theora"
);
const VORBIS_CAPS: &str = "audio/x-vorbis, rate=(int)[ 1, 2147483647 ], channels=(int)[ 1, 255 ]";
const VORBISDEC_SRC: &str = concat!(
    "audio/x-raw, format=(string)F32LE, layout=(string)interleaved, ",
    "rate=(int)[ 1, 2147483647 ], channels=(int)[ 1, 255 ]"
);

/// A page larger than this cannot be (255 segments of 255 bytes and the header).
const MAX_PAGE: usize = 27 + 255 + 255 * 255;

/// CRC-32 as Ogg computes it (polynomial 0x04C11DB7, not reflected, starting at 0), carried on
/// from `crc`.
fn crc32(crc: u32, data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = (i as u32) << 24;
            for _ in 0..8 {
                c = if c & 0x8000_0000 != 0 {
                    (c << 1) ^ 0x04C1_1DB7
                } else {
                    c << 1
                };
            }
            *e = c;
        }
        t
    });
    data.iter().fold(crc, |crc, &b| {
        (crc << 8) ^ table[((crc >> 24) as u8 ^ b) as usize]
    })
}

/// The media type of a logical stream whose first packet is `p`, with the rate and channels
/// where its header gives them.
fn codec(p: &[u8]) -> Option<(&'static str, Option<(u32, u32)>)> {
    if p.len() >= 30 && p.starts_with(b"\x01vorbis") {
        let rate = u32::from_le_bytes(p[12..16].try_into().expect("4 bytes"));
        return Some(("audio/x-vorbis", Some((rate, p[11] as u32))));
    }
    if p.starts_with(b"OpusHead") {
        return Some(("audio/x-opus", None));
    }
    if p.starts_with(b"\x7fFLAC") {
        return Some(("audio/x-flac", None));
    }
    if p.starts_with(b"\x80theora") {
        return Some(("video/x-theora", None));
    }
    None
}

/// The caps of an Ogg stream whose head is `head`: `application/ogg`, with the first logical
/// stream's media type (`streamtype`, Parallax's field) and its rate and channels when the
/// first page says them, so that oggdemux's pad is typed when the description is validated.
pub(crate) fn sniff(head: &[u8]) -> Option<Caps> {
    if head.len() < 28 || &head[..4] != b"OggS" || head[4] != 0 || head[5] & 2 == 0 {
        return None;
    }
    let mut s = Structure::new(OGG_CAPS);
    let segs = head[26] as usize;
    let lacing = head.get(27..27 + segs)?;
    let first = lacing.iter().take_while(|l| **l == 255).count();
    let len = lacing[..(first + 1).min(segs)]
        .iter()
        .map(|l| *l as usize)
        .sum::<usize>();
    if let Some((kind, format)) = head.get(27 + segs..27 + segs + len).and_then(codec) {
        s = s.with("streamtype", CapsValue::Str(kind.into()));
        if let Some((rate, channels)) = format {
            s = s
                .with("rate", CapsValue::Int(rate as i64))
                .with("channels", CapsValue::Int(channels as i64));
        }
    }
    Some(Caps::one(s))
}

/// One packet of the chosen logical stream.
struct Packet {
    data: Vec<u8>,
    /// Stream offset of the page the packet starts on.
    at: u64,
    /// The page's granule position, on the last packet that ends on it.
    granule: Option<u64>,
}

/// Takes pages apart into the packets of the first logical stream.
#[derive(Default)]
struct Demuxer {
    chunks: Chunks,
    /// The serial number of the stream followed, from the first page.
    serial: Option<u32>,
    /// The next page sequence number expected.
    sequence: u32,
    /// A packet that continues on the next page.
    partial: Option<Packet>,
    out: std::collections::VecDeque<Packet>,
    /// The stream's last page (end of stream flag) was seen.
    ended: bool,
}

impl Demuxer {
    fn push(&mut self, bytes: &[u8]) {
        self.chunks.push(bytes);
    }

    /// The next packet; at end of stream (`eos`) what is left must be whole pages.
    fn next(&mut self, eos: bool) -> Result<Option<Packet>, ElementError> {
        loop {
            if let Some(p) = self.out.pop_front() {
                return Ok(Some(p));
            }
            if !self.page(eos)? {
                return Ok(None);
            }
        }
    }

    /// Reads one page; `false` when no whole page is buffered.
    fn page(&mut self, eos: bool) -> Result<bool, ElementError> {
        let measured = self.chunks.next(eos, |data, at| {
            let n = data.len().min(4);
            if data[..n] != b"OggS"[..n] || (data.len() > 4 && data[4] != 0) {
                return Err(bad_stream(at, "expected an Ogg page (`OggS`, version 0)"));
            }
            let wait = || {
                if !eos && data.len() > MAX_PAGE {
                    return Err(bad_stream(at, "an Ogg page longer than the format allows"));
                }
                Ok(Measure::Wait("an Ogg page"))
            };
            if data.len() < 27 || data.len() < 27 + data[26] as usize {
                return wait();
            }
            let segs = data[26] as usize;
            let size = 27
                + segs
                + data[27..27 + segs]
                    .iter()
                    .map(|l| *l as usize)
                    .sum::<usize>();
            if data.len() < size {
                return wait();
            }
            Ok(Measure::Unit(size, ()))
        })?;
        let Some((page, (), at)) = measured else {
            if eos {
                if let Some(p) = &self.partial {
                    return Err(bad_stream(
                        p.at,
                        "the stream ends inside an Ogg packet that continues past the last page",
                    ));
                }
            }
            return Ok(false);
        };
        let segs = page[26] as usize;
        let lacing = &page[27..27 + segs];
        let stored = u32::from_le_bytes(page[22..26].try_into().expect("4 bytes"));
        let mut header = [0u8; 27];
        header.copy_from_slice(&page[..27]);
        header[22..26].fill(0);
        let computed = crc32(crc32(0, &header), &page[27..]);
        if computed != stored {
            return Err(bad_stream(at, "an Ogg page whose CRC-32 is wrong"));
        }
        let flags = page[5];
        let granule = i64::from_le_bytes(page[6..14].try_into().expect("8 bytes"));
        let serial = u32::from_le_bytes(page[14..18].try_into().expect("4 bytes"));
        let sequence = u32::from_le_bytes(page[18..22].try_into().expect("4 bytes"));
        let first = self.serial.is_none();
        if first && flags & 2 == 0 {
            return Err(bad_stream(at, "the first Ogg page does not begin a stream"));
        }
        let ours = *self.serial.get_or_insert(serial) == serial;
        let body_at = 27 + segs;
        let lacing = lacing.to_vec();
        let body = page[body_at..].to_vec();
        if !ours || self.ended {
            return Ok(true);
        }
        if !first && sequence != self.sequence {
            return Err(bad_stream(
                at,
                format!(
                    "Ogg page {sequence} where page {} was expected (a page is missing)",
                    self.sequence
                ),
            ));
        }
        self.sequence = sequence.wrapping_add(1);
        let continued = flags & 1 != 0;
        match (&self.partial, continued) {
            (Some(p), false) => {
                return Err(bad_stream(
                    p.at,
                    "an Ogg packet continues on a page that does not continue it",
                ))
            }
            (None, true) => {
                return Err(bad_stream(at, "an Ogg page continues a packet never begun"));
            }
            _ => {}
        }
        let mut from = 0;
        let mut ended_here = Vec::new();
        let mut packet = self.partial.take();
        for l in &lacing {
            let seg = &body[from..from + *l as usize];
            from += *l as usize;
            let p = packet.get_or_insert_with(|| Packet {
                data: Vec::new(),
                at,
                granule: None,
            });
            p.data.extend_from_slice(seg);
            if *l < 255 {
                ended_here.push(packet.take().expect("a packet is open"));
            }
        }
        self.partial = packet;
        if let Some(last) = ended_here.last_mut() {
            if granule >= 0 {
                last.granule = Some(granule as u64);
            }
        }
        self.out.extend(ended_here);
        if flags & 4 != 0 {
            self.ended = true;
        }
        Ok(true)
    }
}

// --- oggdemux -------------------------------------------------------------------------------

static DEMUX_CAPS: CapsFns = CapsFns {
    forward: |input, _| {
        let all = Caps::parse(DEMUX_SRC).expect("parses");
        let Some(kind) = input.first().and_then(|s| s.string("streamtype")) else {
            return all;
        };
        let mut s = Structure::new(kind);
        for f in ["rate", "channels"] {
            if let Some(v) = input.first().and_then(|s| s.get(f)) {
                s.set(f, v.clone());
            }
        }
        Caps::one(s).intersect(&all)
    },
    backward: |_, _| Caps::parse(OGG_CAPS).expect("parses"),
    fixate: |caps, _| caps.fixate(),
};

pub(crate) static OGGDEMUX: Factory = Factory {
    name: "oggdemux",
    aliases: &[],
    klass: Klass::Filter,
    summary: "demux ogg streams (info about ogg: http://xiph.org)",
    doc: "Takes an Ogg stream apart into the packets of its first logical stream (Vorbis, Opus, \
          FLAC or Theora, by its first packet), one packet a buffer: the codec's header \
          packets first, as gst puts them in `streamheader`, then the data packets, the last \
          packet of each page with the page's granule position as its end offset. Pages of \
          other logical streams are skipped. A page whose CRC-32 is wrong, a missing page, \
          bytes that are not a page, or a stream cut inside a page end the run with an error \
          naming the byte.",
    pads: Pads::ONE_TO_ONE
        .with_caps(OGG_CAPS, DEMUX_SRC)
        .with_rule(CapsRule::Derived(&DEMUX_CAPS)),
    props: &[],
    hints: DECODER,
    build: |_| {
        Ok(ElementImpl::Transform(Box::new(OggDemux {
            demuxer: Demuxer::default(),
        })))
    },
};

struct OggDemux {
    demuxer: Demuxer,
}

impl OggDemux {
    fn drain(&mut self, eos: bool, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        while let Some(p) = self.demuxer.next(eos)? {
            let mut b = Buffer::from_vec(p.data);
            b.meta.set_offset(Some(p.at));
            b.meta.set_offset_end(p.granule);
            cx.push(b);
        }
        Ok(())
    }
}

impl Transform for OggDemux {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        self.demuxer.push(buf.data());
        self.drain(false, cx)?;
        Ok(Flow::Held)
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        self.drain(true, cx)
    }
}

// --- vorbisdec ------------------------------------------------------------------------------

static VORBISDEC_CAPS: CapsFns = CapsFns {
    forward: |input, _| super::carry(input, VORBISDEC_SRC, &["rate", "channels"]),
    backward: |_, _| Caps::parse(VORBIS_CAPS).expect("parses"),
    fixate: |caps, _| caps.fixate(),
};

pub(crate) static VORBISDEC: Factory = Factory {
    name: "vorbisdec",
    aliases: &[],
    klass: Klass::Filter,
    summary: "decode raw vorbis streams to float audio",
    doc: "Decodes Vorbis packets (from oggdemux) with Symphonia's decoder into interleaved F32LE \
          audio, as gst's vorbisdec gives. The three header packets come first (identification, \
          comment, setup); buffers are stamped from the samples decoded, and the last page's \
          granule position trims the final packet as the encoder meant. A damaged or missing \
          header, or a packet that does not decode, ends the run with an error naming the byte \
          of the Ogg page the packet came from.",
    pads: Pads::ONE_TO_ONE
        .with_caps(VORBIS_CAPS, VORBISDEC_SRC)
        .with_rule(CapsRule::Derived(&VORBISDEC_CAPS)),
    props: &[],
    hints: DECODER,
    build: |p| {
        let info = super::super::media::AudioInfo::from_caps(
            &negotiated_or(p.src_caps(), VORBISDEC_SRC),
            p.instance(),
        )?;
        Ok(ElementImpl::Transform(Box::new(VorbisDec {
            decoder: Decoder::new(info),
            headers: Vec::new(),
            samples: 0,
            at: 0,
        })))
    },
};

/// vorbisdec's state: the header packets until the setup one, then Symphonia's decoder.
struct VorbisDec {
    decoder: Decoder,
    headers: Vec<Vec<u8>>,
    /// Samples per channel passed on.
    samples: u64,
    at: u64,
}

impl Transform for VorbisDec {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let at = buf.meta.offset().unwrap_or(self.at);
        self.at = at;
        let data = buf.data();
        if data.is_empty() {
            return Ok(Flow::Held);
        }
        if !self.decoder.ready() {
            let want = [1u8, 3, 5][self.headers.len()];
            if data.len() < 7 || data[0] != want || &data[1..7] != b"vorbis" {
                return Err(bad_stream(
                    at,
                    format!("expected the Vorbis header packet of type {want}"),
                ));
            }
            self.headers.push(data.to_vec());
            if self.headers.len() < 3 {
                return Ok(Flow::Held);
            }
            let ident = &self.headers[0];
            if ident.len() < 30 {
                return Err(bad_stream(at, "the Vorbis identification header is short"));
            }
            let rate = u32::from_le_bytes(ident[12..16].try_into().expect("4 bytes"));
            let channels = ident[11] as u32;
            let mut extra = ident.clone();
            extra.extend_from_slice(&self.headers[2]);
            use symphonia::core::codecs::audio::{
                well_known::CODEC_ID_VORBIS, AudioCodecParameters,
            };
            let mut params = AudioCodecParameters::new();
            params
                .for_codec(CODEC_ID_VORBIS)
                .with_extra_data(extra.into_boxed_slice());
            let inner = symphonia::default::codecs::VorbisDecoder::try_new(&params, &options())
                .map_err(|e| bad_stream(at, e))?;
            self.decoder.start(Box::new(inner), rate, channels, at)?;
            self.headers.clear();
            return Ok(Flow::Held);
        }
        if data[0] & 1 != 0 {
            // A header packet again (a chained stream's): not taken.
            return Err(bad_stream(at, "a Vorbis header packet inside the stream"));
        }
        let Some(mut b) = self.decoder.decode(data, at)? else {
            return Ok(Flow::Held);
        };
        let frame = (self.decoder.info.channels * 4) as u64;
        let frames = b.data().len() as u64 / frame;
        // The granule position of the page's last packet is the samples up to its end: the
        // stream's last packet decodes more, which the encoder meant to be cut.
        if let Some(end) = buf.meta.offset_end() {
            if end >= self.samples && end < self.samples + frames {
                let keep = (end - self.samples) as usize * frame as usize;
                let mut v = b.data().to_vec();
                v.truncate(keep);
                let meta = b.meta.clone();
                b = Buffer::from_vec(v);
                b.meta = meta;
                let rate = self.decoder.info.rate as u64;
                let pts = b.meta.pts().unwrap_or(0);
                b.meta.set_duration(Some(
                    super::super::media::frames_to_ns(end, rate).saturating_sub(pts),
                ));
                b.meta.set_offset_end(Some(end));
                self.samples = end;
                if keep == 0 {
                    return Ok(Flow::Held);
                }
                return Ok(Flow::Push(b));
            }
        }
        self.samples += frames;
        Ok(Flow::Push(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn crc_matches_ogg_s() {
        // The CRC catalogue's CRC-32/MPEG-2 without the final inversion and initial value:
        // "123456789" gives 0x89A1897F under Ogg's parameters.
        assert_eq!(crc32(0, b"123456789"), 0x89A1_897F);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any bytes after a page start, in any chunks: packets or an error, never a panic.
        #[test]
        fn demuxer_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..3000), chunk in 1usize..500) {
            let mut d = Demuxer::default();
            let mut input = b"OggS\0\x02".to_vec();
            input.extend_from_slice(&bytes);
            for c in input.chunks(chunk) {
                d.push(c);
                while let Ok(Some(_)) = d.next(false) {}
            }
            while let Ok(Some(_)) = d.next(true) {}
        }
    }
}
