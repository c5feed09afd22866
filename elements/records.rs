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
    pads: Pads::BYTES_TO_BYTES,
    props: &[
        PropSpec::string(
            "delimiter",
            Some("\\n"),
            "What ends a record, with C escapes (\\n, \\r\\n, \\0, \\xHH, \\t, \\\\)",
        )
        .checked(super::delimiter_check),
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
        self.number(record, consumed, cx);
    }

    /// Passes `record` (whose metadata is its input buffer's already, as a slice's is) on as
    /// the stream's next record, spanning `consumed` input bytes.
    fn number(&mut self, mut record: Buffer, consumed: usize, cx: &mut Ctx<'_>) {
        let end = self.offset + consumed as u64;
        record.meta.sequence = self.sequence;
        record.meta.set_offset(Some(self.offset));
        record.meta.set_offset_end(Some(end));
        self.sequence += 1;
        self.offset = end;
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
                self.number(piece, used, cx);
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
        if self.keep && keep < body {
            // Cut, then the delimiter: the two are not adjacent in the input.
            let mut owned = record.data().to_vec();
            owned.extend_from_slice(&self.delimiter);
            self.emit(Buffer::from_vec(owned), &buf.meta, body + delim_len, cx);
        } else {
            self.number(record, body + delim_len, cx);
        }
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
    pads: Pads::BYTES_TO_BYTES,
    props: &[
        PropSpec::string(
            "delimiter",
            Some("\\n"),
            "What goes between buffers, with C escapes (\\n, \\r\\n, \\0, \\xHH, \\t, \\\\)",
        )
        .checked(super::delimiter_check),
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
        out.meta.set_offset(Some(self.offset));
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

// --- batch / unbatch -----------------------------------------------------------------------

/// The user field a batch keeps its parts' lengths and metadata in.
const PARTS_FIELD: &str = "batch.parts";
/// A batch closes before its parts table grows past this, so that it still crosses a process
/// boundary (which holds all user fields of a buffer to 32 KiB).
const MAX_PARTS_TABLE: usize = 16 * 1024;

pub(crate) static BATCH: Factory = Factory {
    name: "batch",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Gathers buffers into batches that remember their parts",
    doc: "Consecutive buffers leave together as one buffer holding their bytes in order, once \
          max-buffers are in, once the next would pass max-bytes, once the oldest has waited \
          timeout nanoseconds, and at end of stream (a batch cut short). The batch carries each \
          part's length and metadata (user field `batch.parts`), so unbatch gives back exactly \
          the original buffers. A batch also closes before that table passes 16 KiB, so that it \
          can cross into a worker process.",
    pads: Pads::ONE_TO_ONE,
    props: &[
        PropSpec::uint(
            "max-buffers",
            16,
            0,
            u32::MAX as u64,
            "Buffers per batch at most (0 = no limit)",
        ),
        PropSpec::uint(
            "max-bytes",
            0,
            0,
            u32::MAX as u64,
            "Bytes per batch at most (0 = no limit); a larger buffer is a batch of its own",
        ),
        PropSpec::time(
            "timeout",
            0,
            0,
            i64::MAX,
            "Longest a buffer waits in an open batch, in nanoseconds (0 = no limit)",
        ),
    ],
    hints: Hints::TIMED,
    build: |p| {
        let max_buffers = p.uint("max-buffers")? as usize;
        let max_bytes = p.uint("max-bytes")? as usize;
        let timeout = u64::try_from(p.time("timeout")?).unwrap_or(0);
        if max_buffers == 0 && max_bytes == 0 && timeout == 0 {
            return Err(ElementError::Config(
                "max-buffers, max-bytes and timeout are all 0: a batch would never close".into(),
            ));
        }
        Ok(ElementImpl::Transform(Box::new(Batch {
            max_buffers,
            max_bytes,
            timeout: (timeout > 0).then(|| std::time::Duration::from_nanos(timeout)),
            bytes: Vec::new(),
            table: Vec::new(),
            parts: 0,
            first: None,
            opened: None,
            sequence: 0,
        })))
    },
};

struct Batch {
    max_buffers: usize,
    max_bytes: usize,
    timeout: Option<std::time::Duration>,
    bytes: Vec<u8>,
    /// The parts' lengths and metadata, encoded.
    table: Vec<u8>,
    parts: u32,
    /// The first part's metadata: the batch's own.
    first: Option<Metadata>,
    opened: Option<std::time::Instant>,
    sequence: u64,
}

impl Batch {
    fn close(&mut self, cx: &mut Ctx<'_>) {
        let Some(mut meta) = self.first.take() else {
            return;
        };
        let mut table = Vec::with_capacity(4 + self.table.len());
        table.extend_from_slice(&self.parts.to_le_bytes());
        table.append(&mut self.table);
        meta.sequence = self.sequence;
        meta.set_field(PARTS_FIELD, FieldValue::Bytes(table));
        self.sequence += 1;
        self.parts = 0;
        self.opened = None;
        let mut out = Buffer::from_vec(std::mem::take(&mut self.bytes));
        out.meta = meta;
        cx.push(out);
    }
}

impl Transform for Batch {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let too_big = self.max_bytes != 0 && self.bytes.len() + buf.len() > self.max_bytes;
        let mut entry = Vec::new();
        parts::encode(buf.len(), &buf.meta, &mut entry);
        if self.first.is_some() && (too_big || self.table.len() + entry.len() > MAX_PARTS_TABLE) {
            self.close(cx);
        }
        if self.first.is_none() {
            self.first = Some(buf.meta.clone());
            self.opened = Some(std::time::Instant::now());
        }
        if let Some(first) = &mut self.first {
            // The batch spans from its first part's start to its last part's end.
            first.set_offset_end(buf.meta.offset_end());
        }
        self.bytes.extend_from_slice(buf.data());
        self.table.append(&mut entry);
        self.parts += 1;
        if (self.max_buffers != 0 && self.parts as usize >= self.max_buffers)
            || (self.max_bytes != 0 && self.bytes.len() >= self.max_bytes)
        {
            self.close(cx);
        }
        Ok(Flow::Held)
    }

    fn deadline(&self) -> Option<std::time::Instant> {
        Some(self.opened? + self.timeout?)
    }

    fn on_deadline(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        if self
            .deadline()
            .is_some_and(|d| d <= std::time::Instant::now())
        {
            self.close(cx);
        }
        Ok(())
    }

    fn flush(&mut self, cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        self.close(cx);
        Ok(())
    }
}

pub(crate) static UNBATCH: Factory = Factory {
    name: "unbatch",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Gives back the buffers a batch was made of",
    doc: "A batch made by `batch` leaves as its original buffers, in order, each with its own \
          metadata, each a slice of the batch (no copy). A buffer that is not a batch passes \
          unchanged. A batch whose parts table does not match its bytes is an error.",
    pads: Pads::ONE_TO_ONE,
    props: &[],
    hints: Hints::FUSABLE,
    build: |_| Ok(ElementImpl::Transform(Box::new(Unbatch))),
};

struct Unbatch;

impl Transform for Unbatch {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let Some(table) = buf.meta.field(PARTS_FIELD).and_then(FieldValue::as_bytes) else {
            return Ok(Flow::Push(buf));
        };
        let bad = |why: &str| {
            ElementError::Failed(format!(
                "batch {} has a damaged parts table: {why}",
                buf.meta.sequence
            ))
        };
        let mut parts = Vec::new();
        let mut at = 0usize;
        for (len, meta) in parts::decode(table).map_err(|e| bad(&e))? {
            let end = at
                .checked_add(len)
                .filter(|&e| e <= buf.len())
                .ok_or_else(|| bad("its parts are longer than the batch"))?;
            let mut part = buf.slice(at..end).expect("checked against the length");
            part.meta = meta;
            parts.push(part);
            at = end;
        }
        if at != buf.len() {
            return Err(bad("its parts are shorter than the batch"));
        }
        for part in parts {
            cx.push(part);
        }
        Ok(Flow::Held)
    }
}

/// The parts table of a batch: for each part its length and every metadata field, in a
/// little-endian layout that `decode` checks as it reads (it may come from another process).
mod parts {
    use crate::element::prelude::*;

    fn put_opt(out: &mut Vec<u8>, v: Option<u64>) {
        match v {
            Some(v) => {
                out.push(1);
                out.extend_from_slice(&v.to_le_bytes());
            }
            None => out.push(0),
        }
    }

    fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    }

    pub(super) fn encode(len: usize, meta: &Metadata, out: &mut Vec<u8>) {
        out.extend_from_slice(&(len as u64).to_le_bytes());
        out.extend_from_slice(&meta.sequence.to_le_bytes());
        for v in [
            meta.pts(),
            meta.dts(),
            meta.duration(),
            meta.offset(),
            meta.offset_end(),
        ] {
            put_opt(out, v);
        }
        out.extend_from_slice(&meta.flags.0.to_le_bytes());
        out.extend_from_slice(&meta.stream_id.to_le_bytes());
        out.extend_from_slice(&(meta.field_count() as u32).to_le_bytes());
        for (key, value) in meta.fields() {
            put_bytes(out, key.as_bytes());
            match value {
                FieldValue::Str(s) => {
                    out.push(0);
                    put_bytes(out, s.as_bytes());
                }
                FieldValue::Int(i) => {
                    out.push(1);
                    out.extend_from_slice(&i.to_le_bytes());
                }
                FieldValue::Bytes(b) => {
                    out.push(2);
                    put_bytes(out, b);
                }
            }
        }
    }

    struct Reader<'a>(&'a [u8]);

    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
            if self.0.len() < n {
                return Err("it ends early".into());
            }
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            Ok(head)
        }
        fn u32(&mut self) -> Result<u32, String> {
            Ok(u32::from_le_bytes(
                self.take(4)?.try_into().expect("4 bytes"),
            ))
        }
        fn u64(&mut self) -> Result<u64, String> {
            Ok(u64::from_le_bytes(
                self.take(8)?.try_into().expect("8 bytes"),
            ))
        }
        fn opt(&mut self) -> Result<Option<u64>, String> {
            match self.take(1)?[0] {
                0 => Ok(None),
                1 => self.u64().map(Some),
                t => Err(format!("an unknown tag {t}")),
            }
        }
        fn bytes(&mut self) -> Result<&'a [u8], String> {
            let n = self.u32()? as usize;
            self.take(n)
        }
        fn text(&mut self) -> Result<String, String> {
            String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "text that is not UTF-8".into())
        }
    }

    pub(super) fn decode(table: &[u8]) -> Result<Vec<(usize, Metadata)>, String> {
        let mut r = Reader(table);
        let count = r.u32()?;
        let mut parts = Vec::with_capacity((count as usize).min(table.len() / 8));
        for _ in 0..count {
            let len = usize::try_from(r.u64()?).map_err(|_| "a part too long")?;
            let mut meta = Metadata::default();
            meta.sequence = r.u64()?;
            meta.set_pts(r.opt()?);
            meta.set_dts(r.opt()?);
            meta.set_duration(r.opt()?);
            meta.set_offset(r.opt()?);
            meta.set_offset_end(r.opt()?);
            meta.flags = BufferFlags(r.u32()?);
            meta.stream_id = r.u32()?;
            for _ in 0..r.u32()? {
                let key = r.text()?;
                let value = match r.take(1)?[0] {
                    0 => FieldValue::Str(r.text()?),
                    1 => FieldValue::Int(r.u64()? as i64),
                    2 => FieldValue::Bytes(r.bytes()?.to_vec()),
                    t => return Err(format!("an unknown field type {t}")),
                };
                meta.set_field(key, value);
            }
            parts.push((len, meta));
        }
        if !r.0.is_empty() {
            return Err("bytes after its last part".into());
        }
        Ok(parts)
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[
    &BUFFERSPLIT,
    &BUFFERJOIN,
    &BUFFERCONCAT,
    &CHUNK,
    &BATCH,
    &UNBATCH,
];
