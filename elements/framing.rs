//! Buffers as a byte stream and back: `streampay` frames each buffer with its metadata (and the
//! stream's caps, and end of stream) so that any byte transport carries them — tcp, a unix
//! socket, a websocket, a file — and `streamdepay` reads the frames back. In the spirit of gst's
//! `gdppay`/`gdpdepay`, whose names they also answer to; the frame format is Parallax's own
//! (described in `parallax-inspect streampay`), so both ends must be Parallax.

use crate::element::prelude::*;

/// Caps of a framed stream.
const FRAMED: &str = "application/x-parallax-stream";

// --- streampay ---------------------------------------------------------------------------------

pub(crate) static STREAMPAY: Factory = Factory {
    name: "streampay",
    aliases: &["gdppay"],
    klass: Klass::Filter,
    summary: "Frames buffers with their metadata and caps for a byte transport",
    doc: "Each buffer becomes one frame: the 16-byte header (the magic \"STRM\", version 1, \
          flags, payload length and the payload's CRC-32, little-endian), then the metadata \
          (sequence, pts, dts, duration, offsets, flags, stream id, user fields) serialized with \
          rkyv, then the buffer's bytes. The header and metadata leave as a buffer of their \
          own and the buffer follows unchanged, so its bytes are never copied (a message \
          transport such as websocketsink carries each frame as two messages; streamdepay joins \
          them). The stream's negotiated caps go first, in a frame of \
          their own, and end of stream is a last frame, so that a reader can tell a finished \
          stream from a cut one. streamdepay reads it back.",
    pads: Pads::ONE_TO_ONE
        .with_caps("ANY", FRAMED)
        .with_rule(CapsRule::Fixed),
    props: &[],
    hints: Hints::FUSABLE,
    build: |p| {
        let caps = p.sink_caps();
        Ok(ElementImpl::Transform(Box::new(StreamPay {
            caps: (!caps.is_any()).then(|| caps.to_string()),
            offset: 0,
        })))
    },
};

/// streampay's state.
struct StreamPay {
    /// Caps still to send ahead of the first buffer.
    caps: Option<String>,
    /// Bytes written so far: each output buffer's offset in the framed stream.
    offset: u64,
}

impl StreamPay {
    fn out(&mut self, bytes: Vec<u8>) -> Buffer {
        let mut buf = Buffer::from_vec(bytes);
        buf.meta.set_offset(Some(self.offset));
        self.offset += buf.len() as u64;
        buf
    }
}

impl Transform for StreamPay {
    /// The frame's header and metadata go out as a buffer of their own, then the buffer itself,
    /// unchanged: its bytes are never copied.
    fn process(&mut self, mut buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let mut bytes = Vec::with_capacity(128);
        if let Some(caps) = self.caps.take() {
            stream_frame::encode_caps(&caps, &mut bytes);
        }
        stream_frame::encode_buffer_head(&buf, &mut bytes).map_err(|e| {
            ElementError::Failed(format!("cannot frame buffer {}: {e}", buf.meta.sequence))
        })?;
        let mut head = self.out(bytes);
        head.meta.sequence = buf.meta.sequence;
        head.meta.set_pts(buf.meta.pts());
        cx.push(head);
        buf.meta.set_offset(Some(self.offset));
        self.offset += buf.len() as u64;
        Ok(Flow::Push(buf))
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        let mut bytes = Vec::new();
        if let Some(caps) = self.caps.take() {
            stream_frame::encode_caps(&caps, &mut bytes);
        }
        stream_frame::encode_eos(&mut bytes);
        let out = self.out(bytes);
        cx.push(out);
        Ok(())
    }
}

// --- streamdepay -------------------------------------------------------------------------------

const ON_ERROR: &[EnumValue] = &[
    EnumValue {
        nick: "fail",
        value: 0,
        doc: "End the run with an error naming the frame's byte offset",
    },
    EnumValue {
        nick: "drop",
        value: 1,
        doc: "Count the frame as dropped, look for the next one and go on",
    },
];

pub(crate) static STREAMDEPAY: Factory = Factory {
    name: "streamdepay",
    aliases: &["gdpdepay"],
    klass: Klass::Filter,
    summary: "Reads buffers, metadata and end of stream back out of streampay's frames",
    doc: "The input may be cut anywhere (a tcp read, a file's blocks): frames that span reads \
          are joined, and a frame that lies inside one read comes out as a slice of it, without \
          a copy. Every frame is checked (magic, version, length, CRC, metadata) before it is \
          used; a bad one ends the run with an error naming its byte offset, or with \
          on-error=drop is counted as dropped and reading resumes at the next frame (a warning \
          says so for the first, another gives the count at the end). The \
          writer's end-of-stream frame ends the stream here; a stream that stops inside a frame \
          is an error. The writer's caps frame is checked to parse; set the caps downstream \
          with a capsfilter.",
    pads: Pads::ONE_TO_ONE
        .with_caps("ANY", "ANY")
        .with_rule(CapsRule::Fixed),
    props: &[
        PropSpec::enumeration("on-error", "fail", ON_ERROR, "What a bad frame does"),
        PropSpec::uint(
            "max-frame-size",
            256 << 20,
            64,
            1 << 30,
            "The largest frame payload accepted, in bytes (a larger length is a bad frame)",
        ),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        Ok(ElementImpl::Transform(Box::new(StreamDepay {
            reader: stream_frame::Depayloader::new(
                usize::try_from(p.uint("max-frame-size")?).unwrap_or(usize::MAX),
            ),
            resync: p.nick("on-error")? == "drop",
            got: Vec::new(),
            ended: false,
            skipped: 0,
        })))
    },
};

/// streamdepay's state.
struct StreamDepay {
    reader: stream_frame::Depayloader,
    resync: bool,
    /// What the last input gave, reused.
    got: Vec<Result<stream_frame::Packet, stream_frame::WireError>>,
    /// The writer's end of stream came.
    ended: bool,
    /// Damaged frames skipped (`on-error=drop`).
    skipped: u64,
}

impl Transform for StreamDepay {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if self.ended {
            return Ok(Flow::Eos);
        }
        self.reader.push(&buf, self.resync, &mut self.got);
        for packet in self.got.drain(..) {
            match packet {
                Ok(stream_frame::Packet::Buffer(b)) => cx.push(b),
                Ok(stream_frame::Packet::Caps(text)) => {
                    if let Err(e) = Caps::parse(&text) {
                        let e = ElementError::Failed(format!(
                            "the stream's caps frame does not parse ({text:?}): {e}"
                        ));
                        if !self.resync {
                            return Err(e);
                        }
                        cx.dropped += 1;
                    }
                }
                Ok(stream_frame::Packet::Eos) => {
                    self.ended = true;
                    return Ok(Flow::Eos);
                }
                Err(e) if self.resync => {
                    // The first damaged frame is a warning; the count of the rest comes at
                    // the end, so a long damaged stretch is not a line per frame.
                    if self.skipped == 0 {
                        cx.warn(format_args!("{e}; resynchronised at the next frame"));
                    } else {
                        tracing::debug!("{e}");
                    }
                    self.skipped += 1;
                    cx.dropped += 1;
                }
                Err(e) => return Err(ElementError::Failed(e.to_string())),
            }
        }
        Ok(Flow::Held)
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if self.skipped > 1 {
            cx.warn(format_args!(
                "{} damaged frames skipped in all (on-error=drop)",
                self.skipped
            ));
        }
        if self.ended {
            return Ok(());
        }
        match self.reader.finish() {
            Err(e) if !self.resync => Err(ElementError::Failed(e.to_string())),
            _ => Ok(()),
        }
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&STREAMPAY, &STREAMDEPAY];

#[cfg(test)]
mod tests {
    use super::*;

    fn build(f: &Factory, props: &[(&str, &str)]) -> Box<dyn Transform> {
        let mut p = Props::defaults(f.name, f.props);
        for (k, v) in props {
            let spec = f.props.iter().find(|s| s.name == *k).unwrap();
            p.set(k, spec.parse(v).unwrap());
        }
        match (f.build)(&p).unwrap() {
            ElementImpl::Transform(t) => t,
            _ => unreachable!(),
        }
    }

    #[test]
    fn pay_then_depay_gives_the_buffers_back_and_ends_at_the_writers_eos() {
        let run = DetachedRun::new();
        let mut pay = build(&STREAMPAY, &[]);
        let mut depay = build(&STREAMDEPAY, &[]);
        let mut framed = Vec::new();
        for i in 0..3u8 {
            let mut b = Buffer::from_vec(vec![i; 10]);
            b.meta.sequence = i as u64;
            b.meta.set_pts(Some(i as u64 * 7));
            let at = b.data().as_ptr();
            let mut cx = run.ctx();
            let Flow::Push(f) = pay.process(b, &mut cx).unwrap() else {
                panic!()
            };
            assert_eq!(f.data().as_ptr(), at, "the buffer's bytes pass uncopied");
            for head in cx.take_pushed() {
                framed.extend_from_slice(head.data());
            }
            framed.extend_from_slice(f.data());
        }
        let mut cx = run.ctx();
        pay.flush(&mut cx).unwrap();
        for f in cx.take_pushed() {
            framed.extend_from_slice(f.data());
        }
        // Fed a byte at a time: the frames span inputs.
        let mut got = Vec::new();
        let mut flows = Vec::new();
        for byte in framed {
            let mut cx = run.ctx();
            flows.push(
                depay
                    .process(Buffer::from_vec(vec![byte]), &mut cx)
                    .unwrap(),
            );
            got.extend(cx.take_pushed());
        }
        assert!(matches!(flows.last(), Some(Flow::Eos)));
        assert_eq!(got.len(), 3);
        for (i, b) in got.iter().enumerate() {
            assert_eq!(b.data(), &[i as u8; 10]);
            assert_eq!(b.meta.pts(), Some(i as u64 * 7));
        }
    }

    #[test]
    fn garbage_fails_or_is_dropped_as_asked() {
        let run = DetachedRun::new();
        let mut depay = build(&STREAMDEPAY, &[]);
        let e = depay
            .process(
                Buffer::from_vec(b"not a frame at all".to_vec()),
                &mut run.ctx(),
            )
            .unwrap_err();
        assert!(e.to_string().contains("bad stream frame at byte 0"), "{e}");
        let mut depay = build(&STREAMDEPAY, &[("on-error", "drop")]);
        let mut cx = run.ctx();
        assert!(matches!(
            depay.process(Buffer::from_vec(b"not a frame at all".to_vec()), &mut cx),
            Ok(Flow::Held)
        ));
        assert!(cx.dropped > 0);
    }
}
