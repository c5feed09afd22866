//! AAC: `aacparse` frames ADTS streams (and passes raw AAC frames from a demuxer through), and
//! `avdec_aac` decodes AAC-LC with Symphonia's decoder (also under `faad` and `fdkaacdec`, the
//! other names gst lines use for the job).
//!
//! An ADTS frame is a 7-byte header (9 with a CRC) that gives the frame's size, the profile,
//! the rate and the channels, then one raw AAC frame of 1024 samples per channel. Raw AAC
//! (`stream-format=raw`) comes one frame a buffer, with the AudioSpecificConfig in the caps'
//! `codec_data` (hex digits, as gst prints a buffer).

#![cfg_attr(not(feature = "audio-aac"), allow(dead_code))]

use crate::element::prelude::*;

#[cfg(feature = "audio-aac")]
pub(crate) use element::{AACPARSE, AVDEC_AAC};

const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// One ADTS header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Adts {
    /// 4 (MPEG-4) or 2 (MPEG-2).
    mpegversion: u8,
    /// The audio object type less one (1 is AAC-LC).
    profile: u8,
    rate_index: u8,
    pub(crate) channels: u8,
    /// Bytes of the header (7, or 9 with a CRC).
    header: usize,
    /// Bytes of the whole frame, header included.
    pub(crate) size: usize,
    /// Raw frames in this one.
    blocks: u8,
}

impl Adts {
    pub(crate) fn rate(&self) -> u32 {
        RATES[self.rate_index as usize]
    }

    /// The AudioSpecificConfig this header stands for (2 bytes).
    fn config(&self) -> [u8; 2] {
        let v = ((self.profile as u16 + 1) << 11)
            | ((self.rate_index as u16) << 7)
            | ((self.channels as u16) << 3);
        v.to_be_bytes()
    }
}

/// The ADTS header at the start of `b` (`None` if it is not one).
pub(crate) fn adts(b: &[u8]) -> Option<Adts> {
    if b.len() < 7 || b[0] != 0xFF || b[1] & 0xF6 != 0xF0 {
        return None;
    }
    let header = if b[1] & 1 != 0 { 7 } else { 9 };
    let rate_index = (b[2] >> 2) & 0xF;
    let channels = ((b[2] & 1) << 2) | (b[3] >> 6);
    let size = ((b[3] as usize & 3) << 11) | (b[4] as usize) << 3 | (b[5] as usize) >> 5;
    if rate_index >= 13 || channels == 0 || size <= header {
        return None;
    }
    Some(Adts {
        mpegversion: if b[1] & 8 != 0 { 2 } else { 4 },
        profile: b[2] >> 6,
        rate_index,
        channels,
        header,
        size,
        blocks: (b[6] & 3) + 1,
    })
}

/// The caps of an ADTS stream whose head is `head`: a header, then another of the same stream
/// where the first frame ends (or the end of the head).
pub(crate) fn sniff(head: &[u8]) -> Option<Caps> {
    let h = adts(head)?;
    if let Some(next) = head.get(h.size..h.size + 7) {
        let n = adts(next)?;
        if (n.mpegversion, n.rate_index, n.channels) != (h.mpegversion, h.rate_index, h.channels) {
            return None;
        }
    } else if h.size < head.len() {
        return None;
    }
    Some(Caps::one(
        Structure::new("audio/mpeg")
            .with("mpegversion", CapsValue::Int(h.mpegversion as i64))
            .with("stream-format", CapsValue::Str("adts".into()))
            .with("framed", CapsValue::Bool(false))
            .with("rate", CapsValue::Int(h.rate() as i64))
            .with("channels", CapsValue::Int(h.channels as i64)),
    ))
}

/// The elements (in builds with `audio-aac`): the header parsing above serves typefinding in
/// every build, so that one without the feature can still say which one it lacks.
#[cfg(feature = "audio-aac")]
mod element {
    use super::super::super::media::{frames_to_ns, negotiated_or, AudioInfo};
    use super::super::decode::{options, Decoder, Header, Measure};
    use super::super::{bad_stream, carry, DECODER};
    use super::{adts, Adts, RATES};
    use crate::element::prelude::*;

    const AAC_CAPS: &str = "audio/mpeg, mpegversion=(int){ 4, 2 }";
    const PARSE_SRC: &str = concat!(
        "audio/mpeg, mpegversion=(int){ 4, 2 }, framed=(boolean)true, ",
        "stream-format=(string){ adts, raw }, rate=(int)[ 7350, 96000 ], channels=(int)[ 1, 7 ]"
    );
    const DEC_SINK: &str = concat!(
        "audio/mpeg, mpegversion=(int){ 4, 2 }, stream-format=(string){ adts, raw }, ",
        "rate=(int)[ 7350, 96000 ], channels=(int)[ 1, 2 ]"
    );
    const DEC_SRC: &str = concat!(
        "audio/x-raw, format=(string){ F32LE, S16LE }, layout=(string)interleaved, ",
        "rate=(int)[ 7350, 96000 ], channels=(int)[ 1, 2 ]"
    );

    /// Samples per channel in an AAC-LC frame.
    const FRAME_SAMPLES: u64 = 1024;

    /// The frames of a stream of Adts headers.
    type Framer = super::super::decode::Framer<Adts>;

    impl Header for Adts {
        fn measure(
            data: &[u8],
            at: u64,
            _eos: bool,
            first: &mut Option<Adts>,
        ) -> Result<Measure<Adts>, ElementError> {
            if data.len() < 7 {
                return Ok(Measure::Wait("an ADTS header"));
            }
            let Some(h) = adts(data) else {
                return Err(bad_stream(at, "expected an ADTS frame header"));
            };
            if let Some(f) = *first {
                if (h.rate_index, h.channels, h.profile) != (f.rate_index, f.channels, f.profile) {
                    return Err(bad_stream(
                        at,
                        format!(
                            "an ADTS frame of {} Hz, {} channels in a stream of {} Hz, {} \
                                 channels",
                            h.rate(),
                            h.channels,
                            f.rate(),
                            f.channels
                        ),
                    ));
                }
            }
            if data.len() < h.size {
                return Ok(Measure::Wait("an ADTS frame"));
            }
            first.get_or_insert(h);
            Ok(Measure::Unit(h.size, h))
        }
    }

    /// The `stream-format` of fixed caps (`adts` when they do not say).
    fn stream_format(caps: &Caps) -> String {
        caps.first()
            .and_then(|s| s.string("stream-format"))
            .unwrap_or("adts")
            .to_owned()
    }

    /// Whether fixed caps say the stream is framed already.
    fn framed(caps: &Caps) -> bool {
        caps.first().and_then(|s| s.get("framed").cloned()) == Some(CapsValue::Bool(true))
    }

    /// The AudioSpecificConfig of raw AAC caps: `codec_data` as hex digits.
    fn codec_data(caps: &Caps) -> Option<Vec<u8>> {
        let hex = caps.first()?.string("codec_data")?;
        let hex = hex.trim();
        if hex.len() % 2 != 0 || hex.is_empty() {
            return None;
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect()
    }

    // --- aacparse ---------------------------------------------------------------------------

    static PARSE_CAPS: CapsFns = CapsFns {
        forward: |input, _| {
            carry(
                input,
                PARSE_SRC,
                &[
                    "mpegversion",
                    "stream-format",
                    "rate",
                    "channels",
                    "codec_data",
                ],
            )
        },
        backward: |_, _| Caps::parse(AAC_CAPS).expect("parses"),
        fixate: |caps, _| caps.fixate(),
    };

    pub(crate) static AACPARSE: Factory = Factory {
        name: "aacparse",
        aliases: &[],
        klass: Klass::Filter,
        summary: "Advanced Audio Coding parser",
        doc:
            "Cuts an ADTS stream (AAC with a 7 or 9-byte header before each frame) into one buffer \
          per frame, header kept, stamped with its pts and duration (1024 samples a frame) and \
          its byte offset. Raw AAC (`stream-format=raw`, one frame a buffer from a demuxer) is \
          passed through, stamped the same way. Bytes that are no ADTS frame, a change of rate \
          or channels, or a stream cut inside a frame end the run with an error naming the \
          byte.",
        pads: Pads::ONE_TO_ONE
            .with_caps(AAC_CAPS, PARSE_SRC)
            .with_rule(CapsRule::Derived(&PARSE_CAPS)),
        props: &[],
        hints: DECODER,
        build: |p| {
            let raw = stream_format(p.sink_caps()) == "raw";
            let rate = p
                .src_caps()
                .first()
                .and_then(|s| s.int("rate"))
                .unwrap_or(0);
            Ok(ElementImpl::Transform(Box::new(AacParse {
                framer: (!raw).then(Framer::default),
                rate: rate as u64,
                samples: 0,
                at: 0,
            })))
        },
    };

    /// aacparse's state: the framer (ADTS), the samples passed so far (for timestamps).
    struct AacParse {
        framer: Option<Framer>,
        /// The negotiated rate, for raw AAC.
        rate: u64,
        samples: u64,
        at: u64,
    }

    impl AacParse {
        fn stamp(&mut self, b: &mut Buffer, rate: u64, at: u64, frames: u64) {
            let n = frames * FRAME_SAMPLES;
            if rate > 0 {
                b.meta.set_pts(Some(frames_to_ns(self.samples, rate)));
                b.meta.set_duration(Some(
                    frames_to_ns(self.samples + n, rate) - frames_to_ns(self.samples, rate),
                ));
            }
            b.meta.set_offset(Some(at));
            self.samples += n;
        }

        fn drain(&mut self, eos: bool, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
            let Some(mut framer) = self.framer.take() else {
                return Ok(());
            };
            let out = (|| {
                while let Some((frame, h, at)) = framer.next(eos)? {
                    let mut b = Buffer::from_vec(frame.to_vec());
                    self.stamp(&mut b, h.rate() as u64, at, h.blocks as u64);
                    cx.push(b);
                }
                Ok(())
            })();
            self.framer = Some(framer);
            out
        }
    }

    impl Transform for AacParse {
        fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
            match self.framer.as_mut() {
                Some(framer) => {
                    framer.push(buf.data());
                    self.drain(false, cx)?;
                    Ok(Flow::Held)
                }
                None => {
                    let at = buf.meta.offset().unwrap_or(self.at);
                    self.at = at + buf.data().len() as u64;
                    let mut b = buf;
                    let rate = self.rate;
                    self.stamp(&mut b, rate, at, 1);
                    Ok(Flow::Push(b))
                }
            }
        }

        fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
            self.drain(true, cx)
        }
    }

    // --- avdec_aac --------------------------------------------------------------------------

    static DEC_CAPS: CapsFns = CapsFns {
        forward: |input, _| carry(input, DEC_SRC, &["rate", "channels"]),
        backward: |_, _| Caps::parse(DEC_SINK).expect("parses"),
        fixate: |caps, _| caps.fixate(),
    };

    pub(crate) static AVDEC_AAC: Factory = Factory {
        name: "avdec_aac",
        aliases: &["faad", "fdkaacdec"],
        klass: Klass::Filter,
        summary: "AAC (Advanced Audio Coding) decoder",
        doc:
            "Decodes AAC-LC, mono or stereo, with Symphonia's decoder into interleaved raw audio: \
          F32LE, or S16LE when downstream asks for it. Takes ADTS (from aacparse, or the byte \
          stream itself: it then finds frames the same way) or raw AAC frames with the \
          AudioSpecificConfig in the caps' `codec_data`. Buffers are stamped from the samples \
          decoded. HE-AAC (SBR), more than two channels, or a frame that does not decode end \
          the run with an error naming the byte where the frame starts.",
        pads: Pads::ONE_TO_ONE
            .with_caps(DEC_SINK, DEC_SRC)
            .with_rule(CapsRule::Derived(&DEC_CAPS)),
        props: &[],
        hints: DECODER,
        build: |p| {
            let info = AudioInfo::from_caps(&negotiated_or(p.src_caps(), DEC_SRC), p.instance())?;
            let sink = p.sink_caps();
            let raw = stream_format(sink) == "raw";
            let config = if raw {
                Some(codec_data(sink).ok_or_else(|| {
                    ElementError::Config(format!(
                        "{}: raw AAC needs its AudioSpecificConfig as codec_data (hex) in the caps",
                        p.instance()
                    ))
                })?)
            } else {
                None
            };
            let mut dec = AvdecAac {
                framer: (!raw && !framed(sink)).then(Framer::default),
                decoder: Decoder::new(info),
                raw,
                at: 0,
            };
            if let Some(config) = config {
                dec.start(config, 0)?;
            }
            Ok(ElementImpl::Transform(Box::new(dec)))
        },
    };

    /// The decoder's state: a framer when ADTS comes unframed, Symphonia's decoder.
    struct AvdecAac {
        framer: Option<Framer>,
        decoder: Decoder,
        /// Whether buffers are raw frames (no ADTS header).
        raw: bool,
        at: u64,
    }

    impl AvdecAac {
        fn start(&mut self, config: Vec<u8>, at: u64) -> Result<(), ElementError> {
            use symphonia::core::codecs::audio::{well_known::CODEC_ID_AAC, AudioCodecParameters};
            let (rate, channels) = config_rate_channels(&config)
                .ok_or_else(|| bad_stream(at, "the AudioSpecificConfig is damaged"))?;
            let mut params = AudioCodecParameters::new();
            params
                .for_codec(CODEC_ID_AAC)
                .with_extra_data(config.into_boxed_slice());
            let inner = symphonia::default::codecs::AacDecoder::try_new(&params, &options())
                .map_err(|e| bad_stream(at, e))?;
            self.decoder.start(Box::new(inner), rate, channels, at)
        }

        /// Decodes one ADTS frame (header included).
        fn adts_frame(
            &mut self,
            frame: &[u8],
            at: u64,
            cx: &mut Ctx<'_>,
        ) -> Result<(), ElementError> {
            let Some(h) = adts(frame) else {
                return Err(bad_stream(at, "expected an ADTS frame header"));
            };
            if h.blocks != 1 {
                return Err(bad_stream(
                    at,
                    "an ADTS frame of several raw frames (not supported)",
                ));
            }
            if frame.len() != h.size {
                return Err(bad_stream(
                    at,
                    format!(
                        "an ADTS frame of {} bytes whose header says {}",
                        frame.len(),
                        h.size
                    ),
                ));
            }
            if !self.decoder.ready() {
                self.start(h.config().to_vec(), at)?;
            }
            if let Some(b) = self.decoder.decode(&frame[h.header..], at)? {
                cx.push(b);
            }
            Ok(())
        }

        fn drain(&mut self, eos: bool, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
            let Some(mut framer) = self.framer.take() else {
                return Ok(());
            };
            let out = (|| {
                while let Some((frame, _, at)) = framer.next(eos)? {
                    self.adts_frame(frame, at, cx)?;
                }
                Ok(())
            })();
            self.framer = Some(framer);
            out
        }
    }

    /// The rate and channels an AudioSpecificConfig gives (explicit rates included).
    fn config_rate_channels(c: &[u8]) -> Option<(u32, u32)> {
        let bits = u64::from_be_bytes({
            let mut b = [0u8; 8];
            let n = c.len().min(8);
            b[..n].copy_from_slice(&c[..n]);
            b
        });
        if c.len() < 2 {
            return None;
        }
        let mut at = 5;
        if bits >> 59 == 31 {
            at += 6;
        }
        let index = (bits >> (60 - at)) & 0xF;
        at += 4;
        let rate = if index == 15 {
            let r = (bits >> (40 - at)) & 0xFF_FFFF;
            at += 24;
            r as u32
        } else {
            *RATES.get(index as usize)?
        };
        let channels = ((bits >> (60 - at)) & 0xF) as u32;
        (rate > 0 && channels > 0 && c.len() * 8 >= at + 4).then_some((rate, channels))
    }

    impl Transform for AvdecAac {
        fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
            if self.framer.is_some() {
                if let Some(f) = self.framer.as_mut() {
                    f.push(buf.data());
                }
                self.drain(false, cx)?;
                return Ok(Flow::Held);
            }
            let at = buf.meta.offset().unwrap_or(self.at);
            self.at = at + buf.data().len() as u64;
            if buf.data().is_empty() {
                return Ok(Flow::Held);
            }
            if self.raw {
                if let Some(b) = self.decoder.decode(buf.data(), at)? {
                    cx.push(b);
                }
            } else {
                self.adts_frame(buf.data(), at, cx)?;
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
        fn adts_headers_give_size_rate_channels() {
            // MPEG-4 AAC-LC, 44100 Hz, stereo, 371 bytes, no CRC.
            let h = adts(&[0xFF, 0xF1, 0x50, 0x80, 0x2E, 0x7F, 0xFC]).unwrap();
            assert_eq!(
                (h.mpegversion, h.profile, h.rate(), h.channels),
                (4, 1, 44100, 2)
            );
            assert_eq!((h.header, h.size, h.blocks), (7, 371, 1));
            assert_eq!(h.config(), [0x12, 0x10]);
            assert_eq!(config_rate_channels(&[0x12, 0x10]), Some((44100, 2)));
            assert!(adts(&[0xFF, 0xF1, 0x50, 0x00, 0x00, 0x1F, 0xFC]).is_none());
        }

        #[test]
        fn codec_data_is_hex() {
            let caps = Caps::parse("audio/mpeg, codec_data=(string)1210").unwrap();
            assert_eq!(codec_data(&caps), Some(vec![0x12, 0x10]));
            let caps = Caps::parse("audio/mpeg, codec_data=(string)12x0").unwrap();
            assert_eq!(codec_data(&caps), None);
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Any bytes, in any chunks: frames or an error, never a panic or a loop.
            #[test]
            fn framer_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..3000), chunk in 1usize..500) {
                let mut f = Framer::default();
                let mut input = vec![0xFF, 0xF1, 0x50, 0x80, 0x02, 0x1F, 0xFC];
                input.extend_from_slice(&bytes);
                for c in input.chunks(chunk) {
                    f.push(c);
                    while let Ok(Some(_)) = f.next(false) {}
                }
                while let Ok(Some(_)) = f.next(true) {}
            }

            #[test]
            fn configs_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..10)) {
                let _ = config_rate_channels(&bytes);
            }
        }
    }
}
