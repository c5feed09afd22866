//! AV1: `rav1enc` (rav1e, feature `av1-encode`) and `dav1ddec` (the system's libdav1d, feature
//! `av1-decode`).
//!
//! Both speak gst's `video/x-av1, stream-format=obu-stream, alignment=tu`: one buffer per
//! temporal unit, each starting with its temporal delimiter OBU, the sequence header OBU in
//! front of every key frame. That is what gst's `rav1enc` makes and `dav1ddec` takes, so the
//! two interoperate with gst's through a file (`filesink` / `filesrc ! av1parse` in gst).

#[cfg(feature = "av1-decode")]
use super::PixelFormat;
use super::{negotiated_or, VideoInfo};
use crate::element::prelude::*;

/// The raw side of dav1ddec: 8-bit 4:2:0 planar.
#[cfg(feature = "av1-decode")]
const RAW_CAPS: &str = concat!(
    "video/x-raw, format=(string)I420, width=(int)[ 1, 65535 ], height=(int)[ 1, 65535 ], ",
    "framerate=(fraction)[ 0/1, 2147483647/1 ]"
);

/// What rav1enc takes: rav1e codes pictures of 16x16 and more.
#[cfg(feature = "av1-encode")]
const ENC_RAW_CAPS: &str = concat!(
    "video/x-raw, format=(string)I420, width=(int)[ 16, 65535 ], height=(int)[ 16, 65535 ], ",
    "framerate=(fraction)[ 0/1, 2147483647/1 ]"
);

/// The coded side.
const AV1_CAPS: &str = concat!(
    "video/x-av1, stream-format=(string)obu-stream, alignment=(string)tu, ",
    "width=(int)[ 1, 65535 ], height=(int)[ 1, 65535 ], ",
    "framerate=(fraction)[ 0/1, 2147483647/1 ]"
);

/// `template` with the size and framerate fields of `caps` where it has them: a codec keeps the
/// picture's size and rate and changes only its coding.
fn carry_geometry(caps: &Caps, template: &str) -> Caps {
    let template = Caps::parse(template).expect("the template parses");
    if caps.is_any() {
        return template;
    }
    let mut out = template.clone();
    if let (Some(from), Some(to)) = (caps.first(), out.structures_mut().first_mut()) {
        for field in ["width", "height", "framerate"] {
            if let Some(v) = from.get(field) {
                to.set(field, v.clone());
            }
        }
    }
    let out = out.intersect(&template);
    if out.is_empty() {
        template
    } else {
        out
    }
}

// --- rav1enc -------------------------------------------------------------------------------

#[cfg(feature = "av1-encode")]
pub(crate) use enc::RAV1ENC;

#[cfg(feature = "av1-encode")]
mod enc {
    use super::*;
    use rav1e::prelude::{Config, Context, EncoderConfig, EncoderStatus, Rational, SpeedSettings};
    use std::collections::VecDeque;

    static RAV1ENC_CAPS: CapsFns = CapsFns {
        forward: |input, _| carry_geometry(input, AV1_CAPS),
        backward: |down, _| carry_geometry(down, ENC_RAW_CAPS),
        fixate: |caps, _| caps.fixate(),
    };

    pub(crate) static RAV1ENC: Factory = Factory {
        name: "rav1enc",
        aliases: &[],
        klass: Klass::Filter,
        summary: "rav1e AV1 encoder",
        doc: "Encodes 8-bit I420 frames into AV1 with rav1e: one buffer per temporal unit \
              (`video/x-av1, stream-format=obu-stream, alignment=tu`, gst's caps), the \
              sequence header in front of every key frame, each buffer stamped with the pts \
              and duration of its frame. Quality is set by `quantizer` (constant quantizer) \
              unless `bitrate` asks for a target rate; `speed-preset` trades speed for \
              compression (0 slowest, 10 fastest). Frames are held for lookahead and come out \
              in order; end of stream drains them.",
        pads: Pads::ONE_TO_ONE
            .with_caps(ENC_RAW_CAPS, AV1_CAPS)
            .with_rule(CapsRule::Derived(&RAV1ENC_CAPS)),
        props: &[
            PropSpec::uint(
                "speed-preset",
                6,
                0,
                10,
                "Speed preset (10 fastest, 0 slowest)",
            ),
            PropSpec::bool("low-latency", false, "Low latency: no frame reordering"),
            PropSpec::uint(
                "min-key-frame-interval",
                12,
                0,
                u64::MAX,
                "Minimum number of frames between two key frames",
            ),
            PropSpec::uint(
                "max-key-frame-interval",
                240,
                0,
                u64::MAX,
                "Maximum number of frames between two key frames",
            ),
            PropSpec::int(
                "bitrate",
                0,
                0,
                i32::MAX as i64,
                "Target bitrate in bits a second (0 = constant quantizer)",
            ),
            PropSpec::uint(
                "quantizer",
                100,
                0,
                255,
                "Quantizer (0 best quality, 255 worst)",
            ),
            PropSpec::uint(
                "min-quantizer",
                0,
                0,
                255,
                "Lowest quantizer the rate control may use",
            ),
            PropSpec::uint("tile-cols", 0, 0, u64::MAX, "Tile columns (0 = automatic)"),
            PropSpec::uint("tile-rows", 0, 0, u64::MAX, "Tile rows (0 = automatic)"),
            PropSpec::uint("tiles", 0, 0, u64::MAX, "Number of tiles (0 = automatic)"),
            PropSpec::bool("error-resilient", false, "Error resilient frames"),
            PropSpec::uint("threads", 0, 0, u64::MAX, "Threads (0 = one a core)"),
        ],
        hints: Hints {
            processing: Processing::Cpu,
            rt_safe: false,
            ..Hints::FUSABLE
        },
        build: |p| {
            let name = p.instance();
            let info = VideoInfo::from_caps(&negotiated_or(p.sink_caps(), ENC_RAW_CAPS), name)?;
            let default = EncoderConfig::default();
            let enc = EncoderConfig {
                width: info.width,
                height: info.height,
                // rav1e's time base is seconds a tick: one frame a tick at the stream's rate.
                time_base: if info.fps.num > 0 {
                    Rational::new(info.fps.den as u64, info.fps.num as u64)
                } else {
                    default.time_base
                },
                speed_settings: SpeedSettings::from_preset(p.uint("speed-preset")? as u8),
                low_latency: p.bool("low-latency")?,
                min_key_frame_interval: p.uint("min-key-frame-interval")?,
                max_key_frame_interval: p.uint("max-key-frame-interval")?,
                bitrate: p.int("bitrate")? as i32,
                quantizer: p.uint("quantizer")? as usize,
                min_quantizer: p.uint("min-quantizer")? as u8,
                tile_cols: p.uint("tile-cols")? as usize,
                tile_rows: p.uint("tile-rows")? as usize,
                tiles: p.uint("tiles")? as usize,
                error_resilient: p.bool("error-resilient")?,
                ..default
            };
            let cfg = Config::new()
                .with_encoder_config(enc)
                .with_threads(p.uint("threads")? as usize);
            let ctx = cfg
                .new_context::<u8>()
                .map_err(|e| ElementError::Config(format!("rav1e refuses the settings: {e}")))?;
            Ok(ElementImpl::Transform(Box::new(Rav1Enc {
                info,
                ctx,
                stamps: VecDeque::new(),
                frames_in: 0,
            })))
        },
    };

    struct Rav1Enc {
        info: VideoInfo,
        ctx: Context<u8>,
        /// (frame number, pts, duration) of the frames sent and not yet out.
        stamps: VecDeque<(u64, Option<u64>, Option<u64>)>,
        frames_in: u64,
    }

    impl Rav1Enc {
        fn failed(&self, what: &str, e: EncoderStatus) -> ElementError {
            ElementError::Failed(format!("rav1e failed {what}: {e}"))
        }

        /// Pushes every packet rav1e has ready; `Ok(true)` once the stream is complete.
        fn drain(&mut self, cx: &mut Ctx<'_>) -> Result<bool, ElementError> {
            loop {
                match self.ctx.receive_packet() {
                    Ok(pkt) => {
                        let (pts, duration) = loop {
                            match self.stamps.pop_front() {
                                Some((n, pts, d)) if n == pkt.input_frameno => break (pts, d),
                                Some((n, ..)) if n < pkt.input_frameno => continue,
                                Some(other) => {
                                    self.stamps.push_front(other);
                                    break (None, None);
                                }
                                None => break (None, None),
                            }
                        };
                        let mut b = Buffer::from_vec(pkt.data);
                        b.meta.set_pts(pts);
                        b.meta.set_duration(duration);
                        cx.push(b);
                    }
                    Err(EncoderStatus::Encoded) => continue,
                    Err(EncoderStatus::NeedMoreData) => return Ok(false),
                    Err(EncoderStatus::LimitReached) => return Ok(true),
                    Err(e) => return Err(self.failed("to encode", e)),
                }
            }
        }
    }

    impl Transform for Rav1Enc {
        fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
            let data = buf.data();
            let info = &self.info;
            if data.is_empty() {
                // No picture in it: nothing to code.
                return Ok(Flow::Held);
            }
            if data.len() < info.size {
                return Err(ElementError::Failed(format!(
                    "frame {} has {} bytes, but {}x{} I420 needs {}",
                    self.frames_in,
                    data.len(),
                    info.width,
                    info.height,
                    info.size
                )));
            }
            let mut frame = self.ctx.new_frame();
            for (i, plane) in frame.planes.iter_mut().enumerate() {
                plane.copy_from_raw_u8(&data[info.offset[i]..], info.stride[i], 1);
            }
            self.stamps
                .push_back((self.frames_in, buf.meta.pts(), buf.meta.duration()));
            self.frames_in += 1;
            if let Err(e) = self.ctx.send_frame(frame) {
                return Err(self.failed("to take a frame", e));
            }
            self.drain(cx)?;
            Ok(Flow::Held)
        }

        fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
            self.ctx.flush();
            while !self.drain(cx)? {}
            Ok(())
        }
    }
}

// --- dav1ddec ------------------------------------------------------------------------------

#[cfg(feature = "av1-decode")]
pub(crate) use dec::DAV1DDEC;

#[cfg(feature = "av1-decode")]
mod dec {
    use super::*;
    use dav1d::{PixelLayout, PlanarImageComponent as Plane};

    static DAV1DDEC_CAPS: CapsFns = CapsFns {
        forward: |input, _| carry_geometry(input, RAW_CAPS),
        backward: |down, _| carry_geometry(down, AV1_CAPS),
        fixate: |caps, _| caps.fixate(),
    };

    pub(crate) static DAV1DDEC: Factory = Factory {
        name: "dav1ddec",
        aliases: &[],
        klass: Klass::Filter,
        summary: "Decoder for AV1 using the dav1d library",
        doc: "Decodes AV1 (`video/x-av1, stream-format=obu-stream`, one temporal unit or frame \
              a buffer) with the system's libdav1d into I420 frames laid out as gst lays them \
              out, each stamped with the pts and duration of the buffer it came from. The \
              picture size comes from the caps in front of it (rav1enc, a demuxer or a \
              capsfilter give it); a stream of another size, bit depth or chroma layout is an \
              error naming it. libdav1d is C code reading untrusted input: the planner runs \
              dav1ddec in a worker process, and data it rejects is an error naming the byte \
              offset of the buffer.",
        pads: Pads::ONE_TO_ONE
            .with_caps(AV1_CAPS, RAW_CAPS)
            .with_rule(CapsRule::Derived(&DAV1DDEC_CAPS)),
        props: &[
            PropSpec::uint(
                "n-threads",
                0,
                0,
                u32::MAX as u64,
                "Number of frame threads (0 = automatic)",
            ),
            PropSpec::int(
                "max-frame-delay",
                -1,
                -1,
                u32::MAX as i64,
                "Maximum frame delay (-1 = automatic, 1 = no delay)",
            ),
            PropSpec::bool(
                "apply-grain",
                true,
                "Apply film grain when the stream has it",
            ),
        ],
        hints: Hints {
            trust: Trust::SemiTrusted,
            processing: Processing::Cpu,
            native_code: true,
            rt_safe: false,
            ..Hints::FUSABLE
        },
        build: |p| {
            let name = p.instance();
            let info = VideoInfo::from_caps(&negotiated_or(p.src_caps(), RAW_CAPS), name)?;
            let mut settings = dav1d::Settings::new();
            settings.set_n_threads(p.uint("n-threads")? as u32);
            let delay = p.int("max-frame-delay")?;
            settings.set_max_frame_delay(if delay < 0 { 0 } else { delay as u32 });
            settings.set_apply_grain(p.bool("apply-grain")?);
            let decoder = dav1d::Decoder::with_settings(&settings)
                .map_err(|e| ElementError::Config(format!("libdav1d would not start: {e}")))?;
            Ok(ElementImpl::Transform(Box::new(Dav1dDec {
                info,
                decoder,
                offset: 0,
                stamps: Vec::new(),
            })))
        },
    };

    struct Dav1dDec {
        info: VideoInfo,
        decoder: dav1d::Decoder,
        /// Bytes taken so far: where the next buffer starts in the stream.
        offset: u64,
        /// (pts, duration) of the buffers sent, by the offset libdav1d hands back.
        stamps: Vec<(i64, Option<u64>, Option<u64>)>,
    }

    impl Dav1dDec {
        fn rejected(&self, at: i64, e: dav1d::Error) -> ElementError {
            ElementError::Failed(format!(
                "libdav1d rejects the AV1 data at byte offset {at}: {e}"
            ))
        }

        /// Pushes the pictures libdav1d has ready (all of them when `drain`).
        fn pictures(&mut self, cx: &mut Ctx<'_>, drain: bool) -> Result<(), ElementError> {
            loop {
                match self.decoder.get_picture() {
                    Ok(pic) => cx.push(self.frame(&pic)?),
                    Err(dav1d::Error::Again) => return Ok(()),
                    Err(e) => return Err(self.rejected(self.offset as i64, e)),
                }
                if !drain {
                    return Ok(());
                }
            }
        }

        /// `pic` copied into the negotiated I420 layout.
        fn frame(&mut self, pic: &dav1d::Picture) -> Result<Buffer, ElementError> {
            let info = &self.info;
            let (w, h) = (pic.width() as usize, pic.height() as usize);
            if pic.pixel_layout() != PixelLayout::I420 || pic.bit_depth() != 8 {
                return Err(ElementError::Failed(format!(
                    "the stream is {:?} at {} bits, only 8-bit 4:2:0 (I420) is decoded",
                    pic.pixel_layout(),
                    pic.bit_depth()
                )));
            }
            if (w, h) != (info.width, info.height) || info.format != PixelFormat::I420 {
                return Err(ElementError::Failed(format!(
                    "the stream's pictures are {w}x{h}, but the caps say {}x{}",
                    info.width, info.height
                )));
            }
            let mut out = vec![0u8; info.size];
            for (i, comp) in [Plane::Y, Plane::U, Plane::V].into_iter().enumerate() {
                let plane = pic.plane(comp);
                let src: &[u8] = plane.as_ref();
                let stride = pic.stride(comp) as usize;
                let (pw, ph) = if i == 0 {
                    (w, h)
                } else {
                    (w.div_ceil(2), h.div_ceil(2))
                };
                for row in 0..ph {
                    let to = info.offset[i] + row * info.stride[i];
                    let from = row * stride;
                    out[to..to + pw].copy_from_slice(&src[from..from + pw]);
                }
            }
            let mut b = Buffer::from_vec(out);
            let at = pic.offset();
            if let Some(i) = self.stamps.iter().position(|s| s.0 == at) {
                let (_, pts, duration) = self.stamps.remove(i);
                b.meta.set_pts(pts);
                b.meta.set_duration(duration);
            }
            Ok(b)
        }
    }

    impl Transform for Dav1dDec {
        fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
            let at = self.offset as i64;
            if buf.is_empty() {
                // No OBU in it: nothing to decode.
                return Ok(Flow::Held);
            }
            self.offset += buf.len() as u64;
            self.stamps.push((at, buf.meta.pts(), buf.meta.duration()));
            if self.stamps.len() > 64 {
                // Buffers that made no picture (headers only) never come back.
                self.stamps.remove(0);
            }
            let data = buf.data().to_vec();
            let mut sent = self.decoder.send_data(data, Some(at), None, None);
            loop {
                match sent {
                    Ok(()) => break,
                    Err(dav1d::Error::Again) => {
                        self.pictures(cx, false)?;
                        sent = self.decoder.send_pending_data();
                    }
                    Err(e) => return Err(self.rejected(at, e)),
                }
            }
            self.pictures(cx, false)?;
            Ok(Flow::Held)
        }

        fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
            self.pictures(cx, true)
        }
    }
}

/// The AV1 elements this build has.
pub(crate) const FACTORIES: &[&Factory] = &[
    #[cfg(feature = "av1-encode")]
    &RAV1ENC,
    #[cfg(feature = "av1-decode")]
    &DAV1DDEC,
];

#[cfg(all(test, feature = "av1-encode", feature = "av1-decode"))]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    const RAW: &str =
        "video/x-raw, format=(string)I420, width=(int)32, height=(int)32, framerate=(fraction)30/1";
    const CODED: &str = "video/x-av1, stream-format=(string)obu-stream, alignment=(string)tu, width=(int)32, height=(int)32, framerate=(fraction)30/1";

    fn transform(f: &Factory, sink: &str, src: &str, set: &[(&str, Value)]) -> Box<dyn Transform> {
        let mut p = Props::defaults(f.name, f.props).with_instance(&format!("{}0", f.name));
        p.set_caps(Caps::parse(sink).unwrap(), Caps::parse(src).unwrap());
        for (k, v) in set {
            assert!(p.set(k, v.clone()));
        }
        match (f.build)(&p) {
            Ok(ElementImpl::Transform(t)) => t,
            _ => panic!("{} builds a transform", f.name),
        }
    }

    /// Four temporal units of a 32x32 gradient, encoded once.
    fn stream() -> &'static [Vec<u8>] {
        static TUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        TUS.get_or_init(|| {
            let run = DetachedRun::new();
            let mut cx = run.ctx();
            let mut enc = transform(&RAV1ENC, RAW, CODED, &[("speed-preset", Value::UInt(10))]);
            for n in 0..4u8 {
                let frame: Vec<u8> = (0..32 * 32 * 3 / 2)
                    .map(|i| (i as u8).wrapping_add(n * 9))
                    .collect();
                enc.process(Buffer::from_vec(frame), &mut cx).unwrap();
            }
            enc.flush(&mut cx).unwrap();
            cx.take_pushed().map(|b| b.data().to_vec()).collect()
        })
    }

    /// Decodes `tus`; every failure must be an error that names the element.
    fn decode(tus: &[Vec<u8>]) -> Result<usize, String> {
        let run = DetachedRun::new();
        let mut cx = run.ctx();
        let mut dec = transform(&DAV1DDEC, CODED, RAW, &[]);
        let mut frames = 0;
        for tu in tus {
            dec.process(Buffer::from_vec(tu.clone()), &mut cx)
                .map_err(|e| e.to_string())?;
        }
        dec.flush(&mut cx).map_err(|e| e.to_string())?;
        for b in cx.take_pushed() {
            assert_eq!(b.len(), 32 * 32 * 3 / 2);
            frames += 1;
        }
        Ok(frames)
    }

    #[test]
    fn a_clean_stream_decodes_every_frame() {
        assert_eq!(stream().len(), 4);
        assert_eq!(decode(stream()), Ok(4));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Flipped bytes and cut streams give frames or an error naming dav1ddec: never a
        /// panic or a hang.
        #[test]
        fn damaged_streams_fail_cleanly(
            flips in proptest::collection::vec((0usize..4, any::<usize>(), 1u8..=255), 0..8),
            cut in proptest::option::of((0usize..4, any::<usize>())),
        ) {
            let mut tus = stream().to_vec();
            for (tu, at, x) in flips {
                let len = tus[tu].len();
                tus[tu][at % len] ^= x;
            }
            if let Some((tu, at)) = cut {
                let len = tus[tu].len();
                tus[tu].truncate(at % len);
                tus.truncate(tu + 1);
            }
            if let Err(e) = decode(&tus) {
                prop_assert!(
                    e.starts_with("libdav1d rejects the AV1 data at byte offset ")
                        || e.starts_with("the stream"),
                    "{}",
                    e
                );
            }
        }
    }
}
