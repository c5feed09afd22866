//! MPEG-1/2 audio (layers I to III, MP3): `mpegaudioparse` frames the byte stream, and
//! `mpg123audiodec` decodes it with Symphonia's decoder (the name gst lines use).
//!
//! A frame starts with an 11-bit sync and a header that gives its size; an ID3v2 tag in front
//! of the first frame and an ID3v1 or APEv2 tag after the last are skipped, and a LAME/Xing
//! `Info` frame (gapless data, no sound) is dropped. Anything else between frames is an error
//! naming the byte, as is a stream that ends inside a frame.

#![cfg_attr(not(feature = "audio-mp3"), allow(dead_code))]

use crate::element::prelude::*;

#[cfg(feature = "audio-mp3")]
pub(crate) use element::{MPEGAUDIOPARSE, MPG123AUDIODEC};

/// One frame header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// 1 (MPEG-1), 2 (MPEG-2) or 3 (MPEG-2.5): gst's `mpegaudioversion`.
    pub(crate) version: u8,
    pub(crate) layer: u8,
    pub(crate) rate: u32,
    pub(crate) channels: u32,
    /// Bytes of the whole frame, header included.
    pub(crate) size: usize,
    /// Samples per channel.
    pub(crate) samples: u32,
}

const BITRATES: [[u16; 15]; 5] = [
    // MPEG-1 layer I, II, III.
    [
        0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
    ],
    [
        0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
    ],
    [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ],
    // MPEG-2 and 2.5 layer I, then II and III.
    [
        0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
    ],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
];

/// The frame header in the first four bytes of `b` (`None` if they are not one; free-format
/// frames, whose size the header does not give, are not taken).
pub(crate) fn header(b: &[u8]) -> Option<Header> {
    if b.len() < 4 || b[0] != 0xFF || b[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = match (b[1] >> 3) & 3 {
        3 => 1,
        2 => 2,
        0 => 3,
        _ => return None,
    };
    let layer = match (b[1] >> 1) & 3 {
        1 => 3,
        2 => 2,
        3 => 1,
        _ => return None,
    };
    let (bi, si) = ((b[2] >> 4) as usize, ((b[2] >> 2) & 3) as usize);
    if bi == 0 || bi == 15 || si == 3 || b[3] & 3 == 2 {
        return None;
    }
    let table = match (version, layer) {
        (1, l) => l as usize - 1,
        (_, 1) => 3,
        _ => 4,
    };
    let bitrate = BITRATES[table][bi] as usize * 1000;
    let rate = [44100, 48000, 32000][si] >> (version - 1);
    let pad = ((b[2] >> 1) & 1) as usize;
    let (size, samples) = match (layer, version) {
        (1, _) => ((12 * bitrate / rate as usize + pad) * 4, 384),
        (2, _) | (3, 1) => (144 * bitrate / rate as usize + pad, 1152),
        _ => (72 * bitrate / rate as usize + pad, 576),
    };
    Some(Header {
        version,
        layer,
        rate,
        channels: if b[3] >> 6 == 3 { 1 } else { 2 },
        size,
        samples,
    })
}

/// Bytes of an ID3v2 tag at the start of `b`: `None` while too short to tell, `Some(0)` when
/// there is none.
fn id3v2_len(b: &[u8]) -> Option<usize> {
    let n = b.len().min(3);
    if b[..n] != b"ID3"[..n] {
        return Some(0);
    }
    if b.len() < 10 {
        return None;
    }
    let size = b[6..10]
        .iter()
        .fold(0usize, |acc, &x| (acc << 7) | (x & 0x7F) as usize);
    let footer = if b[5] & 0x10 != 0 { 10 } else { 0 };
    Some(10 + size + footer)
}

/// The caps of an MPEG audio stream whose head is `head`: after any ID3v2 tag, a frame header
/// followed by a second one of the same stream (or the end of the head).
pub(crate) fn sniff(head: &[u8]) -> Option<Caps> {
    let skip = id3v2_len(head)?;
    let h = header(head.get(skip..)?)?;
    if let Some(next) = head.get(skip + h.size..skip + h.size + 4) {
        let n = header(next)?;
        if (n.version, n.layer, n.rate) != (h.version, h.layer, h.rate) {
            return None;
        }
    } else if skip + h.size < head.len() {
        return None;
    }
    Some(Caps::one(
        Structure::new("audio/mpeg")
            .with("mpegversion", CapsValue::Int(1))
            .with("mpegaudioversion", CapsValue::Int(h.version as i64))
            .with("layer", CapsValue::Int(h.layer as i64))
            .with("rate", CapsValue::Int(h.rate as i64))
            .with("channels", CapsValue::Int(h.channels as i64))
            .with("parsed", CapsValue::Bool(false)),
    ))
}

/// The elements (in builds with `audio-mp3`): the header parsing above serves typefinding in
/// every build, so that one without the feature can still say which one it lacks.
#[cfg(feature = "audio-mp3")]
mod element {
    use super::super::super::media::{frames_to_ns, negotiated_or, AudioInfo};
    use super::super::decode::{options, Decoder, Header as FrameHeader, Measure};
    use super::super::{bad_stream, carry, DECODER};
    use super::{header, id3v2_len, Header};
    use crate::element::prelude::*;

    const MPEG_CAPS: &str = "audio/mpeg, mpegversion=(int)1";
    const PARSE_SRC: &str = concat!(
        "audio/mpeg, mpegversion=(int)1, mpegaudioversion=(int)[ 1, 3 ], layer=(int)[ 1, 3 ], ",
        "rate=(int){ 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000 }, ",
        "channels=(int)[ 1, 2 ], parsed=(boolean)true"
    );
    const DEC_SINK: &str = concat!(
        "audio/mpeg, mpegversion=(int)1, layer=(int)[ 1, 3 ], ",
        "rate=(int){ 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000 }, ",
        "channels=(int)[ 1, 2 ]"
    );
    const DEC_SRC: &str = concat!(
        "audio/x-raw, format=(string){ S16LE, F32LE }, layout=(string)interleaved, ",
        "rate=(int){ 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000 }, ",
        "channels=(int)[ 1, 2 ]"
    );

    /// Whether the frame `f` (header `h`) is a Xing/Info or VBRI frame: gapless and seek data
    /// written where the first frame goes, which holds no sound.
    fn is_info_frame(f: &[u8], h: &Header) -> bool {
        let side = match (h.version, h.channels) {
            (1, 1) => 17,
            (1, _) => 32,
            (_, 1) => 9,
            _ => 17,
        };
        let at = 4 + side;
        let tag = |o: usize, t: &[u8]| f.get(o..o + 4) == Some(t);
        h.layer == 3 && (tag(at, b"Xing") || tag(at, b"Info") || tag(36, b"VBRI"))
    }

    /// The frames of a stream of Header headers.
    type Framer = super::super::decode::Framer<Header>;

    impl FrameHeader for Header {
        fn measure(
            data: &[u8],
            at: u64,
            eos: bool,
            first: &mut Option<Header>,
        ) -> Result<Measure<Header>, ElementError> {
            if first.is_none() {
                let Some(skip) = id3v2_len(data) else {
                    return Ok(Measure::Wait("an ID3v2 tag"));
                };
                if skip > data.len() {
                    return Ok(Measure::Wait("an ID3v2 tag"));
                }
                if skip > 0 {
                    return Ok(Measure::Skip(skip));
                }
            }
            if data.len() < 4 {
                return Ok(Measure::Wait("a frame header"));
            }
            let Some(h) = header(data) else {
                return match trailing_tag(data, eos) {
                    Some(Some(n)) => Ok(Measure::Skip(n)),
                    Some(None) => Ok(Measure::Wait("a tag")),
                    None => Err(bad_stream(at, "expected an MPEG audio frame header")),
                };
            };
            if let Some(f) = *first {
                if (h.version, h.layer, h.rate) != (f.version, f.layer, f.rate) {
                    return Err(bad_stream(
                        at,
                        format!(
                            "a frame of MPEG-{} layer {} at {} Hz in a stream of MPEG-{} \
                                 layer {} at {} Hz",
                            h.version, h.layer, h.rate, f.version, f.layer, f.rate
                        ),
                    ));
                }
            }
            if data.len() < h.size {
                return Ok(Measure::Wait("a frame"));
            }
            if first.is_none() && is_info_frame(&data[..h.size], &h) {
                *first = Some(h);
                return Ok(Measure::Skip(h.size));
            }
            first.get_or_insert(h);
            Ok(Measure::Unit(h.size, h))
        }
    }

    /// A tag after the frames at the start of `data`: `Some(Some(len))` to skip, `Some(None)` to
    /// wait for more bytes, `None` when it is no tag.
    fn trailing_tag(data: &[u8], eos: bool) -> Option<Option<usize>> {
        let wait = |whole: bool, len: usize| {
            if whole {
                Some(Some(len))
            } else {
                (!eos).then_some(None)
            }
        };
        if data.starts_with(b"TAG") {
            return wait(data.len() >= 128, 128);
        }
        let n = data.len().min(8);
        if data[..n] == b"APETAGEX"[..n] {
            if data.len() < 32 {
                return wait(false, 0);
            }
            let size = u32::from_le_bytes(data[12..16].try_into().expect("4 bytes")) as usize;
            let flags = u32::from_le_bytes(data[20..24].try_into().expect("4 bytes"));
            // With a header, `size` counts the footer but not the header.
            let total = (size + if flags & 0x8000_0000 != 0 { 32 } else { 0 }).max(32);
            return wait(data.len() >= total, total);
        }
        None
    }

    // --- mpegaudioparse ---------------------------------------------------------------------

    static PARSE_CAPS: CapsFns = CapsFns {
        forward: |input, _| {
            carry(
                input,
                PARSE_SRC,
                &["mpegaudioversion", "layer", "rate", "channels"],
            )
        },
        backward: |_, _| Caps::parse(MPEG_CAPS).expect("parses"),
        fixate: |caps, _| caps.fixate(),
    };

    pub(crate) static MPEGAUDIOPARSE: Factory = Factory {
        name: "mpegaudioparse",
        aliases: &[],
        klass: Klass::Filter,
        summary: "Parses and frames mpeg1 audio streams (levels 1-3), provides seek",
        doc: "Cuts an MPEG-1/2/2.5 audio byte stream (layers I, II and III: MP3) into one buffer \
          per frame, stamped with its pts and duration from the samples each frame holds and \
          its byte offset. An ID3v2 tag before the first frame and an ID3v1 or APEv2 tag after \
          the last are skipped, and a LAME/Xing `Info` frame is dropped; other bytes between \
          frames, free-format frames, a change of version, layer or rate, or a stream cut \
          inside a frame end the run with an error naming the byte.",
        pads: Pads::ONE_TO_ONE
            .with_caps(MPEG_CAPS, PARSE_SRC)
            .with_rule(CapsRule::Derived(&PARSE_CAPS)),
        props: &[],
        hints: DECODER,
        build: |_| {
            Ok(ElementImpl::Transform(Box::new(MpegAudioParse {
                framer: Framer::default(),
                samples: 0,
            })))
        },
    };

    /// mpegaudioparse's state: the framer and the samples passed so far (for timestamps).
    struct MpegAudioParse {
        framer: Framer,
        samples: u64,
    }

    impl MpegAudioParse {
        fn drain(&mut self, eos: bool, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
            while let Some((frame, h, at)) = self.framer.next(eos)? {
                let mut b = Buffer::from_vec(frame.to_vec());
                let rate = h.rate as u64;
                let n = h.samples as u64;
                b.meta.set_pts(Some(frames_to_ns(self.samples, rate)));
                b.meta.set_duration(Some(
                    frames_to_ns(self.samples + n, rate) - frames_to_ns(self.samples, rate),
                ));
                b.meta.set_offset(Some(at));
                self.samples += n;
                cx.push(b);
            }
            Ok(())
        }
    }

    impl Transform for MpegAudioParse {
        fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
            self.framer.push(buf.data());
            self.drain(false, cx)?;
            Ok(Flow::Held)
        }

        fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
            self.drain(true, cx)
        }
    }

    // --- mpg123audiodec ---------------------------------------------------------------------

    static DEC_CAPS: CapsFns = CapsFns {
        forward: |input, _| carry(input, DEC_SRC, &["rate", "channels"]),
        backward: |_, _| Caps::parse(DEC_SINK).expect("parses"),
        fixate: |caps, _| caps.fixate(),
    };

    pub(crate) static MPG123AUDIODEC: Factory = Factory {
        name: "mpg123audiodec",
        aliases: &["mpegaudiodec", "avdec_mp3", "avdec_mp3float"],
        klass: Klass::Filter,
        summary: "Decodes mp3 streams",
        doc:
            "Decodes MPEG-1/2/2.5 audio, layers I, II and III (MP3), with Symphonia's decoder into \
          interleaved raw audio: S16LE (as gst's mpg123audiodec gives by default) or F32LE when \
          downstream asks for it. Takes frames from mpegaudioparse, or the byte stream itself \
          (it then finds frames the same way). Buffers are stamped from the samples decoded. A \
          frame that does not decode, or bytes that are no MPEG audio, end the run with an \
          error naming the byte where the frame starts.",
        pads: Pads::ONE_TO_ONE
            .with_caps(DEC_SINK, DEC_SRC)
            .with_rule(CapsRule::Derived(&DEC_CAPS)),
        props: &[],
        hints: DECODER,
        build: |p| {
            let info = AudioInfo::from_caps(&negotiated_or(p.src_caps(), DEC_SRC), p.instance())?;
            let parsed = p.sink_caps().first().and_then(|s| s.get("parsed").cloned())
                == Some(CapsValue::Bool(true));
            Ok(ElementImpl::Transform(Box::new(Mpg123AudioDec {
                framer: (!parsed).then(Framer::default),
                decoder: Decoder::new(info),
                at: 0,
            })))
        },
    };

    /// The decoder's state: a framer when the input is not framed yet, Symphonia's decoder.
    struct Mpg123AudioDec {
        framer: Option<Framer>,
        decoder: Decoder,
        /// Stream offset of the next framed buffer (when its offset is not set).
        at: u64,
    }

    impl Mpg123AudioDec {
        fn frame(
            decoder: &mut Decoder,
            frame: &[u8],
            at: u64,
            cx: &mut Ctx<'_>,
        ) -> Result<(), ElementError> {
            let Some(h) = header(frame) else {
                return Err(bad_stream(at, "expected an MPEG audio frame header"));
            };
            if !decoder.ready() {
                use symphonia::core::codecs::audio::{well_known::*, AudioCodecParameters};
                let mut params = AudioCodecParameters::new();
                params.for_codec(match h.layer {
                    1 => CODEC_ID_MP1,
                    2 => CODEC_ID_MP2,
                    _ => CODEC_ID_MP3,
                });
                let inner = symphonia::default::codecs::MpaDecoder::try_new(&params, &options())
                    .map_err(|e| bad_stream(at, e))?;
                decoder.start(Box::new(inner), h.rate, h.channels, at)?;
            }
            if let Some(b) = decoder.decode(frame, at)? {
                cx.push(b);
            }
            Ok(())
        }

        fn drain(&mut self, eos: bool, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
            let Some(framer) = self.framer.as_mut() else {
                return Ok(());
            };
            while let Some((frame, _, at)) = framer.next(eos)? {
                Self::frame(&mut self.decoder, frame, at, cx)?;
            }
            Ok(())
        }
    }

    impl Transform for Mpg123AudioDec {
        fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
            match self.framer.as_mut() {
                Some(framer) => {
                    framer.push(buf.data());
                    self.drain(false, cx)?;
                }
                None => {
                    let at = buf.meta.offset().unwrap_or(self.at);
                    self.at = at + buf.data().len() as u64;
                    if !buf.data().is_empty() {
                        Self::frame(&mut self.decoder, buf.data(), at, cx)?;
                    }
                }
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

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Any bytes, in any chunks: frames or an error, never a panic or a loop.
            #[test]
            fn framer_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..3000), chunk in 1usize..500, sync in any::<bool>()) {
                let mut f = Framer::default();
                let mut input = if sync { vec![0xFF, 0xFB, 0x10, 0x64] } else { Vec::new() };
                input.extend_from_slice(&bytes);
                for c in input.chunks(chunk) {
                    f.push(c);
                    while let Ok(Some(_)) = f.next(false) {}
                }
                while let Ok(Some(_)) = f.next(true) {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_give_size_rate_and_samples() {
        // MPEG-1 layer III, 128 kbit/s, 44100 Hz, joint stereo: 417 bytes.
        let h = header(&[0xFF, 0xFB, 0x90, 0x64]).unwrap();
        assert_eq!((h.version, h.layer, h.rate, h.channels), (1, 3, 44100, 2));
        assert_eq!((h.size, h.samples), (417, 1152));
        // MPEG-2 layer III, 64 kbit/s, 22050 Hz, mono, padded: 72 * 64000 / 22050 + 1.
        let h = header(&[0xFF, 0xF3, 0x82, 0xC4]).unwrap();
        assert_eq!(
            (h.version, h.rate, h.channels, h.samples),
            (2, 22050, 1, 576)
        );
        assert_eq!(h.size, 208 + 1);
        // Free format, a bad rate, layer 0: not headers.
        assert!(header(&[0xFF, 0xFB, 0x00, 0x64]).is_none());
        assert!(header(&[0xFF, 0xFB, 0x9C, 0x64]).is_none());
        assert!(header(&[0xFF, 0xF9, 0x90, 0x64]).is_none());
    }

    #[test]
    fn id3v2_tags_are_measured() {
        assert_eq!(id3v2_len(b"\xFF\xFB"), Some(0));
        assert_eq!(id3v2_len(b"ID"), None);
        assert_eq!(id3v2_len(b"ID3\x04\0\0\0\0\x01\x01"), Some(10 + 129));
    }
}
