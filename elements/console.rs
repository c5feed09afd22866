//! Data typed on the command line and buffers shown on the terminal: `datasrc` and
//! `consolesink`, the two ends a shell one-liner needs to try a pipeline without files.

use std::io::Write as _;

use base64::Engine as _;

use super::{decode_hex, hex_rows, unescape_c, Stamper};
use crate::element::prelude::*;

// --- datasrc -------------------------------------------------------------------------------

/// The `data-base64` check: standard alphabet, padding optional.
fn decode_base64(text: &str) -> Result<Vec<u8>, (Option<usize>, String)> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(text.trim()).map_err(|e| match e {
        base64::DecodeError::InvalidByte(at, b) => (
            Some(at + (text.len() - text.trim_start().len())),
            format!("`{}` is not a base64 character", b as char),
        ),
        other => (None, format!("not valid base64: {other}")),
    })
}

pub(crate) static DATASRC: Factory = Factory {
    name: "datasrc",
    aliases: &[],
    klass: Klass::Source,
    summary: "Produces buffers holding data given on the command line",
    doc:
        "Sends the bytes of exactly one of `data` (text with C escapes: \\n \\t \\xHH \\NNN ...), \
          `data-hex` (hex digits, spaces or colons between bytes allowed) or `data-base64`; \
          with none of them, an empty buffer. The data goes out `num-buffers` times (-1: until \
          stopped), each time cut into buffers of `blocksize` bytes (0: one buffer), the last one \
          short. A bad escape, hex digit or base64 character is a description error pointing \
          at it. Sequence numbers and byte offsets run on across repeats.",
    pads: Pads::SOURCE,
    props: &[
        PropSpec::string("data", None, "The data, as text with C escapes")
            .checked(|t| unescape_c(t).map(drop)),
        PropSpec::string("data-hex", None, "The data, as hex digits (`de ad be ef`)")
            .checked(|t| decode_hex(t).map(drop)),
        PropSpec::string("data-base64", None, "The data, base64-encoded")
            .checked(|t| decode_base64(t).map(drop)),
        PropSpec::int(
            "num-buffers",
            1,
            -1,
            i32::MAX as i64,
            "Times to send the data (-1 = until stopped; 0 = an empty stream)",
        ),
        PropSpec::uint(
            "blocksize",
            0,
            0,
            u32::MAX as u64,
            "Cut the data into buffers of this many bytes (0 = one buffer per repeat)",
        ),
        PropSpec::bool(
            "do-timestamp",
            false,
            "Stamp each buffer with the time since start",
        ),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let given: Vec<&str> = ["data", "data-hex", "data-base64"]
            .into_iter()
            .filter(|n| p.is_set(n))
            .collect();
        if given.len() > 1 {
            return Err(ElementError::Config(format!(
                "properties `{}` and `{}`: set only one of data, data-hex and data-base64",
                given[0], given[1]
            )));
        }
        let text =
            |name: &str| -> Result<&str, ElementError> { Ok(p.string(name)?.unwrap_or_default()) };
        let decoded = match given.first().copied() {
            Some("data-hex") => decode_hex(text("data-hex")?),
            Some("data-base64") => decode_base64(text("data-base64")?),
            _ => unescape_c(text("data")?),
        };
        let data = decoded.map_err(|(_, e)| {
            let name = given.first().copied().unwrap_or("data");
            ElementError::Config(format!("property `{name}`: {e}"))
        })?;
        let block = match usize::try_from(p.uint("blocksize")?).unwrap_or(usize::MAX) {
            0 => data.len().max(1),
            n => n,
        };
        Ok(ElementImpl::Source(Box::new(DataSrc {
            repeats: u64::try_from(p.int("num-buffers")?).ok(),
            block,
            data,
            sent: 0,
            pos: 0,
            stamper: Stamper::new(p)?,
        })))
    },
};

/// datasrc's state: the decoded bytes and how far it got.
struct DataSrc {
    data: Vec<u8>,
    /// Bytes per buffer, at least 1.
    block: usize,
    /// Times to send the data; `None` = forever.
    repeats: Option<u64>,
    /// Times sent in full.
    sent: u64,
    /// Where the next buffer starts in `data`.
    pos: usize,
    stamper: Stamper,
}

impl Source for DataSrc {
    fn pool_request(&self) -> Option<PoolRequest> {
        (!self.data.is_empty()).then(|| PoolRequest {
            slot_size: self.block.min(self.data.len()),
            slots: 0,
        })
    }

    fn size_hint(&self) -> Option<u64> {
        self.repeats
            .map(|n| n.saturating_mul(self.data.len() as u64))
    }

    fn produce(&mut self, cx: &mut Ctx<'_>) -> Result<Option<Buffer>, ElementError> {
        if self.repeats.is_some_and(|n| self.sent >= n) {
            return Ok(None);
        }
        let mut buf = if self.data.is_empty() {
            self.sent += 1;
            Buffer::empty()
        } else {
            let end = self.data.len().min(self.pos + self.block);
            let len = end - self.pos;
            let mut slot = cx.loan()?;
            slot.as_mut_slice()[..len].copy_from_slice(&self.data[self.pos..end]);
            self.pos = end;
            if self.pos == self.data.len() {
                self.pos = 0;
                self.sent += 1;
            }
            slot.freeze(len)
        };
        self.stamper.stamp(&mut buf, || cx.running_time_ns());
        Ok(Some(buf))
    }
}

// --- consolesink ---------------------------------------------------------------------------

const CONSOLE_FORMATS: &[EnumValue] = &[
    EnumValue {
        nick: "text",
        value: 0,
        doc: "The bytes as they are, one buffer per line (a newline is added unless it ends one)",
    },
    EnumValue {
        nick: "hex",
        value: 1,
        doc: "A hex dump per buffer: offset, 16 bytes in hex, the printable ASCII",
    },
    EnumValue {
        nick: "json",
        value: 2,
        doc: "One JSON object per buffer: its metadata, size and data (UTF-8 text or base64)",
    },
];

pub(crate) static CONSOLESINK: Factory = Factory {
    name: "consolesink",
    aliases: &[],
    klass: Klass::Sink,
    summary: "Shows each buffer on stdout as a line of text, a hex dump or a JSON object",
    doc: "Writes every buffer to stdout: format=text writes its bytes and a newline (unless it \
          ends with one), format=hex a hex dump, format=json one object per line with \
          sequence, size, offset, pts, duration, flags, stream, data and encoding (\"utf8\" when \
          the data is valid UTF-8, else \"base64\"), and truncated. With max-bytes=N only the \
          first N bytes of a buffer are shown: text and hex say how many were left out, json \
          sets truncated. A reader that goes away ends the run quietly.",
    pads: Pads::SINK,
    props: &[
        PropSpec::enumeration("format", "text", CONSOLE_FORMATS, "How buffers are shown"),
        PropSpec::uint(
            "max-bytes",
            0,
            0,
            u32::MAX as u64,
            "Bytes shown per buffer at most (0 = all)",
        ),
    ],
    hints: Hints::BLOCKING_IO,
    build: |p| {
        Ok(ElementImpl::Sink(Box::new(ConsoleSink {
            format: p.nick("format")?,
            max_bytes: match p.uint("max-bytes")? {
                0 => usize::MAX,
                n => usize::try_from(n).unwrap_or(usize::MAX),
            },
            line: Vec::new(),
        })))
    },
};

/// consolesink's state: the format, and the line it builds (kept to reuse its allocation).
struct ConsoleSink {
    format: &'static str,
    max_bytes: usize,
    line: Vec<u8>,
}

/// One `format=json` line.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    sequence: u64,
    size: usize,
    offset: Option<u64>,
    pts: Option<u64>,
    duration: Option<u64>,
    flags: Vec<&'static str>,
    stream: u32,
    data: std::borrow::Cow<'a, str>,
    encoding: &'static str,
    truncated: bool,
}

/// The names of the flags set, as `--tap` shows them.
fn flag_names(flags: BufferFlags) -> Vec<&'static str> {
    flags.names()
}

impl ConsoleSink {
    /// Renders `buf` into `self.line`.
    fn render_line(&mut self, buf: &Buffer) {
        let shown = &buf.data()[..buf.len().min(self.max_bytes)];
        let left_out = buf.len() - shown.len();
        self.line.clear();
        match self.format {
            "hex" => {
                self.line.extend_from_slice(hex_rows(shown).as_bytes());
                if left_out > 0 {
                    self.line
                        .extend_from_slice(format!("... {left_out} more bytes\n").as_bytes());
                }
            }
            "json" => {
                let (data, encoding) = match std::str::from_utf8(shown) {
                    Ok(text) => (std::borrow::Cow::Borrowed(text), "utf8"),
                    Err(_) => (
                        base64::engine::general_purpose::STANDARD
                            .encode(shown)
                            .into(),
                        "base64",
                    ),
                };
                let m = &buf.meta;
                let line = JsonLine {
                    sequence: m.sequence,
                    size: buf.len(),
                    offset: m.offset(),
                    pts: m.pts(),
                    duration: m.duration(),
                    flags: flag_names(m.flags),
                    stream: m.stream_id,
                    data,
                    encoding,
                    truncated: left_out > 0,
                };
                serde_json::to_writer(&mut self.line, &line)
                    .expect("a line of plain fields always serialises");
                self.line.push(b'\n');
            }
            _ => {
                self.line.extend_from_slice(shown);
                if left_out > 0 {
                    self.line
                        .extend_from_slice(format!(" [... {left_out} more bytes]").as_bytes());
                }
                if self.line.last() != Some(&b'\n') {
                    self.line.push(b'\n');
                }
            }
        }
    }
}

impl Sink for ConsoleSink {
    fn render(&mut self, buf: &Buffer, _cx: &mut Ctx<'_>) -> Result<SinkFlow, ElementError> {
        self.render_line(buf);
        std::io::stdout()
            .lock()
            .write_all(&self.line)
            .map_err(|e| ElementError::io("writing to stdout", e))?;
        Ok(SinkFlow::Continue)
    }

    fn finish(&mut self, _cx: &mut Ctx<'_>) -> Result<(), ElementError> {
        std::io::stdout()
            .lock()
            .flush()
            .map_err(|e| ElementError::io("writing to stdout", e))
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&DATASRC, &CONSOLESINK];

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(format: &'static str, max_bytes: usize, buf: &Buffer) -> String {
        let mut sink = ConsoleSink {
            format,
            max_bytes,
            line: Vec::new(),
        };
        sink.render_line(buf);
        String::from_utf8(sink.line).unwrap()
    }

    #[test]
    fn text_adds_a_newline_only_where_missing() {
        assert_eq!(
            shown("text", usize::MAX, &Buffer::from_vec(b"hi".to_vec())),
            "hi\n"
        );
        assert_eq!(
            shown("text", usize::MAX, &Buffer::from_vec(b"hi\n".to_vec())),
            "hi\n"
        );
        assert_eq!(shown("text", usize::MAX, &Buffer::empty()), "\n");
        assert_eq!(
            shown("text", 2, &Buffer::from_vec(b"hello".to_vec())),
            "he [... 3 more bytes]\n"
        );
    }

    #[test]
    fn json_carries_metadata_and_binary_as_base64() {
        let mut buf = Buffer::from_vec(vec![0xff, 0x00]);
        buf.meta.sequence = 7;
        buf.meta.set_pts(Some(5));
        buf.meta.flags = BufferFlags::MARKER;
        let line: serde_json::Value =
            serde_json::from_str(&shown("json", usize::MAX, &buf)).unwrap();
        assert_eq!(line["sequence"], 7);
        assert_eq!(line["size"], 2);
        assert_eq!(line["pts"], 5);
        assert_eq!(line["offset"], serde_json::Value::Null);
        assert_eq!(line["flags"][0], "marker");
        assert_eq!(line["encoding"], "base64");
        assert_eq!(line["data"], "/wA=");
        assert_eq!(line["truncated"], false);
        let cut: serde_json::Value =
            serde_json::from_str(&shown("json", 1, &Buffer::from_vec(b"ab".to_vec()))).unwrap();
        assert_eq!(
            (cut["data"].as_str(), cut["truncated"].as_bool()),
            (Some("a"), Some(true))
        );
    }

    #[test]
    fn hex_says_what_it_left_out() {
        let text = shown("hex", 16, &Buffer::from_vec(vec![0x41; 20]));
        assert!(text.starts_with("00000000: 41 41"), "{text}");
        assert!(text.ends_with("... 4 more bytes\n"), "{text}");
    }

    #[test]
    fn base64_errors_point_at_the_bad_character() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode_base64("aG!s").unwrap_err().0, Some(2));
    }
}
