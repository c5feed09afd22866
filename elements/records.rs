//! Records out of a byte stream and back: `buffersplit` cuts at a delimiter, `chunk` at a fixed
//! size, `bufferjoin` and `bufferconcat` put buffers back together.
//!
//! A record that lies inside one input buffer leaves as a slice of it (no copy); only a record
//! that spans input buffers is joined into memory of its own.

use crate::element::prelude::*;

// --- buffersplit ---------------------------------------------------------------------------

const OVERSIZE: &[EnumValue] = &[
    EnumValue {
        nick: "error",
        value: 0,
        doc: "A record longer than max-size ends the run with an error naming its offset",
    },
    EnumValue {
        nick: "truncate",
        value: 1,
        doc: "Keep the first max-size bytes of the record, drop the rest",
    },
    EnumValue {
        nick: "split",
        value: 2,
        doc: "Pass the record on in pieces of max-size bytes",
    },
];

pub(crate) static BUFFERSPLIT: Factory = Factory {
    name: "buffersplit",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Cuts a byte stream into records at a delimiter",
    doc: "Each record leaves as a buffer of its own, in order, numbered from 0 (sequence) with \
          its byte offset in the stream. A record inside one input buffer is a slice of it (no \
          copy); one that spans input buffers is joined, and a delimiter split across two \
          buffers is still found. Empty records (two delimiters in a row) pass as empty \
          buffers; a delimiter at the very end ends the last record and starts none; bytes \
          after the last delimiter leave at end of stream as the last record.",
    pads: Pads::ONE_TO_ONE,
    props: &[
        PropSpec::string(
            "delimiter",
            Some("\\n"),
            "What ends a record, with C escapes (\\n, \\r\\n, \\0, \\xHH, \\t, \\\\)",
        ),
        PropSpec::bool(
            "keep",
            false,
            "Whether each record keeps its delimiter at its end",
        ),
        PropSpec::uint(
            "max-size",
            0,
            0,
            u32::MAX as u64,
            "Longest record in bytes, delimiter not counted (0 = no limit)",
        ),
        PropSpec::enumeration(
            "oversize",
            "error",
            OVERSIZE,
            "What a record longer than max-size does",
        ),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let delimiter = super::delimiter(p, "delimiter")?;
        Ok(ElementImpl::Transform(Box::new(BufferSplit {
            finder: memchr::memmem::Finder::new(&delimiter).into_owned(),
            delimiter,
            keep: p.bool("keep")?,
            max_size: p.uint("max-size")? as usize,
            oversize: match p.nick("oversize")? {
                "truncate" => Oversize::Truncate,
                "split" => Oversize::Split,
                _ => Oversize::Error,
            },
            pending: Vec::new(),
            pending_meta: None,
            seen: 0,
            dropping: false,
            offset: 0,
            sequence: 0,
        })))
    },
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Oversize {
    Error,
    Truncate,
    Split,
}

struct BufferSplit {
    delimiter: Vec<u8>,
    finder: memchr::memmem::Finder<'static>,
    keep: bool,
    max_size: usize,
    oversize: Oversize,
    /// The start of a record whose end has not come yet.
    pending: Vec<u8>,
    /// The metadata of the buffer that record started in.
    pending_meta: Option<Metadata>,
    /// Input bytes of the pending record so far (more than held when it was cut).
    seen: usize,
    /// The record being read was cut at max-size: its bytes up to the delimiter go.
    dropping: bool,
    /// Stream offset of the next record's first byte.
    offset: u64,
    sequence: u64,
}

impl BufferSplit {
    /// Passes `record` on, numbered, as the stream's next record of `len` bytes in the input
    /// (which differs from the record's own length when truncated or with a kept delimiter).
    fn emit(&mut self, mut record: Buffer, meta: &Metadata, consumed: usize, cx: &mut Ctx<'_>) {
        record.meta = meta.clone();
        record.meta.sequence = self.sequence;
        record.meta.offset = Some(self.offset);
        self.sequence += 1;
        self.offset += consumed as u64;
        cx.push(record);
    }

    /// The part of a complete record of `body` bytes (delimiter excluded) that goes on: all of
    /// it, or an error or a cut when it exceeds max-size. `Ok(None)` with oversize=split:
    /// the caller passes pieces.
    fn limit(&self, body: usize) -> Result<usize, ElementError> {
        if self.max_size == 0 || body <= self.max_size {
            return Ok(body);
        }
        match self.oversize {
            Oversize::Error => Err(ElementError::Failed(format!(
                "the record at byte {} is longer than max-size ({} bytes): raise max-size, or \
                 set oversize=truncate or oversize=split",
                self.offset, self.max_size
            ))),
            Oversize::Truncate | Oversize::Split => Ok(self.max_size),
        }
    }

    /// Ends the pending record with the first `upto` bytes of `buf` (its delimiter, if any,
    /// follows at `upto`).
    fn complete_pending(
        &mut self,
        buf: &Buffer,
        upto: usize,
        delim_len: usize,
        cx: &mut Ctx<'_>,
    ) -> Result<(), ElementError> {
        self.seen += upto;
        let mut record = self.take_pending();
        if !self.dropping {
            record.extend_from_slice(&buf.data()[..upto]);
        }
        self.finish_pending(record, delim_len, cx)
    }

    /// The held start of a record, without the bytes kept only to find a straddling
    /// delimiter in a record cut at max-size.
    fn take_pending(&mut self) -> Vec<u8> {
        let mut record = std::mem::take(&mut self.pending);
        if self.dropping {
            record.truncate(self.max_size);
        }
        record
    }

    /// Passes the held record `record`, ended by `delim_len` delimiter bytes.
    fn finish_pending(
        &mut self,
        record: Vec<u8>,
        delim_len: usize,
        cx: &mut Ctx<'_>,
    ) -> Result<(), ElementError> {
        let meta = self.pending_meta.take().unwrap_or_default();
        let consumed = std::mem::take(&mut self.seen) + delim_len;
        self.dropping = false;
        self.pass_owned(record, delim_len, consumed, &meta, cx)
    }

    /// Passes a record held in memory of its own, `consumed` input bytes long.
    fn pass_owned(
        &mut self,
        mut record: Vec<u8>,
        delim_len: usize,
        consumed: usize,
        meta: &Metadata,
        cx: &mut Ctx<'_>,
    ) -> Result<(), ElementError> {
        let body = record.len();
        let keep = self.limit(body)?;
        if keep < body && self.oversize == Oversize::Split {
            let pieces: Vec<Vec<u8>> = record.chunks(self.max_size).map(<[u8]>::to_vec).collect();
            let last = pieces.len() - 1;
            for (i, mut piece) in pieces.into_iter().enumerate() {
                let len = piece.len();
                if i == last && self.keep {
                    piece.extend_from_slice(&self.delimiter[..delim_len]);
                }
                let used = if i == last { len + delim_len } else { len };
                self.emit(Buffer::from_vec(piece), meta, used, cx);
            }
            return Ok(());
        }
        record.truncate(keep);
        if self.keep {
            record.extend_from_slice(&self.delimiter[..delim_len]);
        }
        self.emit(Buffer::from_vec(record), meta, consumed, cx);
        Ok(())
    }

    /// Passes `buf[start..end]` (a record, plus `delim_len` delimiter bytes after it), without
    /// a copy unless it is split.
    fn pass_slice(
        &mut self,
        buf: &Buffer,
        start: usize,
        end: usize,
        delim_len: usize,
        cx: &mut Ctx<'_>,
    ) -> Result<(), ElementError> {
        let body = end - start;
        let keep = self.limit(body)?;
        if keep < body && self.oversize == Oversize::Split {
            let mut at = start;
            while at < end {
                let to = (at + self.max_size).min(end);
                let last = to == end;
                let (out_end, used) = if last {
                    (
                        if self.keep { to + delim_len } else { to },
                        to - at + delim_len,
                    )
                } else {
                    (to, to - at)
                };
                let piece = buf.slice(at..out_end).expect("within the buffer");
                self.emit(piece, &buf.meta, used, cx);
                at = to;
            }
            return Ok(());
        }
        let out_end = if self.keep && keep == body {
            end + delim_len
        } else {
            start + keep
        };
        let record = buf.slice(start..out_end).expect("within the buffer");
        let record = if self.keep && keep < body {
            // Cut, then the delimiter: the two are not adjacent in the input.
            let mut owned = record.data().to_vec();
            owned.extend_from_slice(&self.delimiter);
            Buffer::from_vec(owned)
        } else {
            record
        };
        self.emit(record, &buf.meta, body + delim_len, cx);
        Ok(())
    }

    /// Holds `bytes` as the start (or more) of a record whose end is still to come.
    fn hold(&mut self, bytes: &[u8], meta: &Metadata) -> Result<(), ElementError> {
        if self.pending_meta.is_none() {
            self.pending_meta = Some(meta.clone());
        }
        self.seen += bytes.len();
        self.pending.extend_from_slice(bytes);
        // What is held may end with the head of a delimiter: only beyond that is it too long.
        let tail = self.delimiter.len() - 1;
        if self.max_size != 0 && self.pending.len() > self.max_size + tail {
            match self.oversize {
                Oversize::Error => {
                    self.limit(self.seen - tail)?;
                }
                Oversize::Truncate => {
                    // Keep the first max-size bytes, and the last bytes seen, where the head
                    // of a straddling delimiter may be: memory stays bounded.
                    self.dropping = true;
                    let len = self.pending.len();
                    self.pending.copy_within(len - tail.., self.max_size);
                    self.pending.truncate(self.max_size + tail);
                }
                // Pieces leave when the record ends.
                Oversize::Split => {}
            }
        }
        Ok(())
    }
}

impl Transform for BufferSplit {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let data = buf.data();
        let d = self.delimiter.len();
        let mut at = 0;
        if self.pending_meta.is_some() {
            // A delimiter may straddle the boundary: its head ends what is held, its tail
            // starts this buffer.
            let held = &self.pending;
            let straddle = (1..d).find(|&k| {
                held.ends_with(&self.delimiter[..k]) && data.starts_with(&self.delimiter[k..])
            });
            if let Some(k) = straddle {
                self.pending.truncate(self.pending.len() - k);
                self.seen -= k;
                let record = self.take_pending();
                self.finish_pending(record, d, cx)?;
                at = d - k;
            } else {
                match self.finder.find(data) {
                    Some(i) => {
                        self.complete_pending(&buf, i, d, cx)?;
                        at = i + d;
                    }
                    None => {
                        self.hold(data, &buf.meta.clone())?;
                        return Ok(Flow::Held);
                    }
                }
            }
        }
        while let Some(i) = self.finder.find(&data[at..]) {
            self.pass_slice(&buf, at, at + i, d, cx)?;
            at += i + d;
        }
        if at < data.len() {
            self.hold(&data[at..], &buf.meta.clone())?;
        }
        Ok(Flow::Held)
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if self.pending_meta.is_some() {
            let record = self.take_pending();
            self.finish_pending(record, 0, cx)?;
        }
        Ok(())
    }
}

// --- bufferjoin ----------------------------------------------------------------------------

pub(crate) static BUFFERJOIN: Factory = Factory {
    name: "bufferjoin",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Puts a delimiter between buffers, turning records back into a byte stream",
    doc: "Each buffer leaves with the delimiter after it (trailing=true, as lines end in a text \
          file) or between it and the next (trailing=false). The inverse of buffersplit: \
          `buffersplit ! bufferjoin` gives back a newline-terminated stream unchanged.",
    pads: Pads::ONE_TO_ONE,
    props: &[
        PropSpec::string(
            "delimiter",
            Some("\\n"),
            "What goes between buffers, with C escapes (\\n, \\r\\n, \\0, \\xHH, \\t, \\\\)",
        ),
        PropSpec::bool(
            "trailing",
            true,
            "Whether the last buffer is followed by the delimiter too",
        ),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        Ok(ElementImpl::Transform(Box::new(BufferJoin {
            delimiter: super::delimiter(p, "delimiter")?,
            trailing: p.bool("trailing")?,
            first: true,
        })))
    },
};

struct BufferJoin {
    delimiter: Vec<u8>,
    trailing: bool,
    first: bool,
}

impl Transform for BufferJoin {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let data = buf.data();
        let mut joined = Vec::with_capacity(data.len() + self.delimiter.len());
        if !self.trailing && !std::mem::replace(&mut self.first, false) {
            joined.extend_from_slice(&self.delimiter);
        }
        joined.extend_from_slice(data);
        if self.trailing {
            joined.extend_from_slice(&self.delimiter);
        }
        let mut out = Buffer::from_vec(joined);
        out.meta = buf.meta.clone();
        Ok(Flow::Push(out))
    }
}

// --- bufferconcat --------------------------------------------------------------------------

pub(crate) static BUFFERCONCAT: Factory = Factory {
    name: "bufferconcat",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Joins consecutive buffers into larger ones",
    doc: "Bytes of consecutive buffers are gathered into one buffer of up to max-bytes (a buffer \
          larger than that on its own passes unchanged); what is gathered leaves when the next \
          buffer would not fit, and at end of stream. Fewer, larger buffers cost a sink fewer \
          writes. The metadata is the first gathered buffer's.",
    pads: Pads::ONE_TO_ONE,
    props: &[
        PropSpec::uint(
            "max-bytes",
            65_536,
            1,
            u32::MAX as u64,
            "Largest buffer to make, in bytes",
        ),
        PropSpec::uint(
            "max-buffers",
            0,
            0,
            u32::MAX as u64,
            "Most buffers to join into one (0 = no limit)",
        ),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        Ok(ElementImpl::Transform(Box::new(BufferConcat {
            max_bytes: p.uint("max-bytes")? as usize,
            max_buffers: p.uint("max-buffers")? as usize,
            held: Vec::new(),
            count: 0,
            meta: None,
        })))
    },
};

struct BufferConcat {
    max_bytes: usize,
    max_buffers: usize,
    held: Vec<u8>,
    count: usize,
    meta: Option<Metadata>,
}

impl BufferConcat {
    fn release(&mut self, cx: &mut Ctx<'_>) {
        if let Some(meta) = self.meta.take() {
            let mut out = Buffer::from_vec(std::mem::take(&mut self.held));
            out.meta = meta;
            self.count = 0;
            cx.push(out);
        }
    }
}

impl Transform for BufferConcat {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if self.held.len() + buf.len() > self.max_bytes {
            self.release(cx);
        }
        if buf.len() >= self.max_bytes {
            // Already as large as asked: on unchanged, without a copy.
            return Ok(Flow::Push(buf));
        }
        if self.meta.is_none() {
            self.meta = Some(buf.meta.clone());
            self.held.reserve(self.max_bytes.min(1 << 20));
        }
        self.held.extend_from_slice(buf.data());
        self.count += 1;
        if self.held.len() == self.max_bytes
            || (self.max_buffers != 0 && self.count >= self.max_buffers)
        {
            self.release(cx);
        }
        Ok(Flow::Held)
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        self.release(cx);
        Ok(())
    }
}

// --- chunk ---------------------------------------------------------------------------------

pub(crate) static CHUNK: Factory = Factory {
    name: "chunk",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Re-cuts the stream into buffers of a fixed size",
    doc: "Every buffer that leaves holds exactly size bytes, whatever sizes came in; the last \
          one is shorter unless pad=true, which fills it with the fill byte. A chunk inside one \
          input buffer is a slice of it (no copy). Chunks are numbered from 0 with their byte \
          offset in the stream.",
    pads: Pads::ONE_TO_ONE,
    props: &[
        PropSpec::uint("size", 4096, 1, u32::MAX as u64, "Bytes per output buffer"),
        PropSpec::bool(
            "pad",
            false,
            "Fill the last buffer up to size with the fill byte",
        ),
        PropSpec::uint("fill", 0, 0, 255, "The byte the last buffer is padded with"),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        Ok(ElementImpl::Transform(Box::new(Chunk {
            size: p.uint("size")? as usize,
            pad: p.bool("pad")?,
            fill: p.uint("fill")? as u8,
            held: Vec::new(),
            meta: None,
            offset: 0,
            sequence: 0,
        })))
    },
};

struct Chunk {
    size: usize,
    pad: bool,
    fill: u8,
    held: Vec<u8>,
    meta: Option<Metadata>,
    offset: u64,
    sequence: u64,
}

impl Chunk {
    fn emit(&mut self, mut out: Buffer, meta: &Metadata, cx: &mut Ctx<'_>) {
        out.meta = meta.clone();
        out.meta.sequence = self.sequence;
        out.meta.offset = Some(self.offset);
        self.sequence += 1;
        self.offset += out.len() as u64;
        cx.push(out);
    }
}

impl Transform for Chunk {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let data = buf.data();
        let mut at = 0;
        if let Some(meta) = self.meta.clone() {
            let take = (self.size - self.held.len()).min(data.len());
            self.held.extend_from_slice(&data[..take]);
            at = take;
            if self.held.len() < self.size {
                return Ok(Flow::Held);
            }
            let full = Buffer::from_vec(std::mem::take(&mut self.held));
            self.meta = None;
            self.emit(full, &meta, cx);
        }
        while data.len() - at >= self.size {
            let piece = buf.slice(at..at + self.size).expect("within the buffer");
            self.emit(piece, &buf.meta, cx);
            at += self.size;
        }
        if at < data.len() {
            self.held.reserve(self.size);
            self.held.extend_from_slice(&data[at..]);
            self.meta = Some(buf.meta.clone());
        }
        Ok(Flow::Held)
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if let Some(meta) = self.meta.take() {
            let mut last = std::mem::take(&mut self.held);
            if self.pad {
                last.resize(self.size, self.fill);
            }
            self.emit(Buffer::from_vec(last), &meta, cx);
        }
        Ok(())
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&BUFFERSPLIT, &BUFFERJOIN, &BUFFERCONCAT, &CHUNK];
