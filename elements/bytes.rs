//! Buffer operations that cut or grow each buffer on its own: `buffertrim`, `bufferslice`
//! (both zero-copy: the result shares the input's memory) and `bufferpad`.
//!
//! Metadata passes unchanged, except that `bufferslice` moves `offset` to the first byte it
//! keeps, so the offset still names that byte's place in the source's stream.

use crate::element::prelude::*;

/// `0` = no limit, for the size properties that take it.
fn limit(p: &Props, name: &str) -> Result<usize, ElementError> {
    Ok(match p.uint(name)? {
        0 => usize::MAX,
        n => usize::try_from(n).unwrap_or(usize::MAX),
    })
}

// --- buffertrim ----------------------------------------------------------------------------

pub(crate) static BUFFERTRIM: Factory = Factory {
    name: "buffertrim",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Cuts every buffer down to at most max-size bytes (no copy)",
    doc: "A buffer longer than max-size keeps its first max-size bytes; shorter ones, and \
          empty ones, pass unchanged. The result shares the input's memory.",
    pads: Pads::BYTES_TO_BYTES,
    props: &[PropSpec::uint(
        "max-size",
        0,
        0,
        u64::MAX,
        "Bytes kept of each buffer at most (0 = no limit)",
    )],
    hints: Hints::FUSABLE,
    build: |p| {
        Ok(ElementImpl::Transform(Box::new(BufferTrim {
            max: limit(p, "max-size")?,
        })))
    },
};

/// buffertrim's state.
struct BufferTrim {
    max: usize,
}

impl Transform for BufferTrim {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if buf.len() <= self.max {
            return Ok(Flow::Push(buf));
        }
        let cut = buf.slice(0..self.max).expect("max < len: in bounds");
        Ok(Flow::Push(cut))
    }
}

// --- bufferslice ---------------------------------------------------------------------------

pub(crate) static BUFFERSLICE: Factory = Factory {
    name: "bufferslice",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Keeps bytes offset..offset+length of every buffer (no copy)",
    doc: "Each buffer becomes the window of `length` bytes (-1: to the end) starting at byte \
          `offset`, clipped to the buffer: a buffer shorter than `offset` becomes empty (it is \
          not dropped, so counts and sequence numbers still line up). The result shares the \
          input's memory; its metadata offset moves to the first byte kept.",
    pads: Pads::BYTES_TO_BYTES,
    props: &[
        PropSpec::uint("offset", 0, 0, u64::MAX, "First byte kept of each buffer"),
        PropSpec::int(
            "length",
            -1,
            -1,
            i64::MAX,
            "Bytes kept from offset on (-1 = to the end)",
        ),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        Ok(ElementImpl::Transform(Box::new(BufferSlice {
            offset: usize::try_from(p.uint("offset")?).unwrap_or(usize::MAX),
            length: usize::try_from(p.int("length")?).ok(),
        })))
    },
};

/// bufferslice's state.
struct BufferSlice {
    offset: usize,
    /// `None` = to the end.
    length: Option<usize>,
}

impl Transform for BufferSlice {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let start = self.offset.min(buf.len());
        let end = match self.length {
            Some(n) => start.saturating_add(n).min(buf.len()),
            None => buf.len(),
        };
        let mut out = buf.slice(start..end).expect("clipped to the buffer");
        out.meta
            .set_offset(buf.meta.offset().map(|o| o + start as u64));
        Ok(Flow::Push(out))
    }
}

// --- bufferpad -----------------------------------------------------------------------------

pub(crate) static BUFFERPAD: Factory = Factory {
    name: "bufferpad",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Pads every buffer shorter than min-size with a fill byte",
    doc: "A buffer shorter than min-size is copied into a new one of min-size bytes, the rest \
          set to `fill`; buffers already long enough pass unchanged, without a copy.",
    pads: Pads::BYTES_TO_BYTES,
    props: &[
        PropSpec::uint(
            "min-size",
            0,
            0,
            u32::MAX as u64,
            "Bytes every buffer has at least",
        ),
        PropSpec::uint("fill", 0, 0, 255, "The byte padding is made of (0..=255)"),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        Ok(ElementImpl::Transform(Box::new(BufferPad {
            min: usize::try_from(p.uint("min-size")?).unwrap_or(usize::MAX),
            fill: u8::try_from(p.uint("fill")?).unwrap_or(0),
        })))
    },
};

/// bufferpad's state.
struct BufferPad {
    min: usize,
    fill: u8,
}

impl Transform for BufferPad {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if buf.len() >= self.min {
            return Ok(Flow::Push(buf));
        }
        let mut bytes = Vec::with_capacity(self.min);
        bytes.extend_from_slice(buf.data());
        bytes.resize(self.min, self.fill);
        let mut out = Buffer::from_vec(bytes);
        out.meta = buf.meta;
        Ok(Flow::Push(out))
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&BUFFERTRIM, &BUFFERSLICE, &BUFFERPAD];

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `t` on `data` outside a pipeline (these transforms never touch the context).
    fn run(t: &mut dyn Transform, data: &[u8]) -> Buffer {
        let run = DetachedRun::new();
        let mut cx = run.ctx();
        let mut buf = Buffer::from_vec(data.to_vec());
        buf.meta.set_offset(Some(100));
        buf.meta.sequence = 3;
        match t.process(buf, &mut cx).unwrap() {
            Flow::Push(b) => b,
            other => panic!("expected a buffer, got {other:?}"),
        }
    }

    #[test]
    fn trim_keeps_the_head_and_shares_memory() {
        let mut t = BufferTrim { max: 3 };
        assert_eq!(run(&mut t, b"abcdef").data(), b"abc");
        assert_eq!(run(&mut t, b"abc").data(), b"abc");
        assert_eq!(run(&mut t, b"").data(), b"");
    }

    #[test]
    fn slice_clips_to_the_buffer_and_moves_the_offset() {
        let mut s = BufferSlice {
            offset: 2,
            length: Some(3),
        };
        let out = run(&mut s, b"abcdefg");
        assert_eq!(
            (out.data(), out.meta.offset(), out.meta.sequence),
            (&b"cde"[..], Some(102), 3)
        );
        assert_eq!(run(&mut s, b"abcd").data(), b"cd");
        assert_eq!(run(&mut s, b"a").data(), b"");
        let mut to_end = BufferSlice {
            offset: 1,
            length: None,
        };
        assert_eq!(run(&mut to_end, b"abc").data(), b"bc");
        let mut huge = BufferSlice {
            offset: usize::MAX,
            length: Some(usize::MAX),
        };
        assert_eq!(run(&mut huge, b"abc").data(), b"");
    }

    #[test]
    fn pad_fills_short_buffers_and_keeps_metadata() {
        let mut p = BufferPad { min: 4, fill: b'.' };
        let out = run(&mut p, b"ab");
        assert_eq!((out.data(), out.meta.offset()), (&b"ab.."[..], Some(100)));
        assert_eq!(run(&mut p, b"").data(), b"....");
        assert_eq!(run(&mut p, b"abcdef").data(), b"abcdef");
    }
}
