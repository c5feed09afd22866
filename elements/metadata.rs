//! Metadata: `sequencenumber`, `timestamper`, `metadatainject`, `metadataextract` and
//! `metadatafilter` read and write what travels with a buffer ([`Metadata`]: sequence,
//! timestamps, offsets, stream id and user fields), never its bytes.
//!
//! User fields are written as `key=value` in `metadatainject set=`; see [`parse_fields`] for
//! the notation (the same one `--tap` and `fakesink silent=false` print).

use std::os::fd::AsFd as _;

use crate::element::prelude::*;

// --- sequencenumber ------------------------------------------------------------------------

pub(crate) static SEQUENCENUMBER: Factory = Factory {
    name: "sequencenumber",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Renumbers the buffers' sequence numbers from start",
    doc: "Sets each buffer's sequence number to start, start+1, ... in the order buffers pass, \
          whatever they carried before: after a filter or a funnel the numbers are contiguous \
          again.",
    pads: Pads::ONE_TO_ONE,
    props: &[PropSpec::uint(
        "start",
        0,
        0,
        u64::MAX,
        "Sequence number of the first buffer",
    )],
    hints: Hints::FUSABLE,
    build: |p| {
        Ok(ElementImpl::Transform(Box::new(SequenceNumber {
            next: p.uint("start")?,
        })))
    },
};

/// The number the next buffer gets.
struct SequenceNumber {
    next: u64,
}

impl Transform for SequenceNumber {
    fn process(&mut self, mut buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        buf.meta.sequence = self.next;
        // Past u64::MAX the numbers wrap, as a counter on the wire would.
        self.next = self.next.wrapping_add(1);
        Ok(Flow::Push(buf))
    }
}

// --- timestamper ---------------------------------------------------------------------------

const CLOCKS: &[EnumValue] = &[
    EnumValue {
        nick: "monotonic",
        value: 0,
        doc: "The pipeline's running time: nanoseconds since it started running (the clock \
              do-timestamp uses)",
    },
    EnumValue {
        nick: "realtime",
        value: 1,
        doc: "Wall-clock time: nanoseconds since the Unix epoch (1970-01-01 UTC)",
    },
];

const STAMP_MODES: &[EnumValue] = &[
    EnumValue {
        nick: "pts",
        value: 0,
        doc: "Write the time into the buffer's pts",
    },
    EnumValue {
        nick: "dts",
        value: 1,
        doc: "Write the time into the buffer's dts",
    },
    EnumValue {
        nick: "field",
        value: 2,
        doc: "Write the time into the user field named by `field`, as an integer",
    },
];

pub(crate) static TIMESTAMPER: Factory = Factory {
    name: "timestamper",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Stamps each buffer with the time it passes",
    doc: "Reads the clock as each buffer passes and writes the time in nanoseconds into its pts \
          (mode=pts), its dts (mode=dts) or a user field (mode=field, field=NAME, an integer). \
          clock=monotonic is the pipeline's running time, clock=realtime the time since the \
          Unix epoch. With overwrite=false a buffer that already has that time keeps it.",
    pads: Pads::ONE_TO_ONE,
    props: &[
        PropSpec::enumeration("clock", "monotonic", CLOCKS, "Which clock to read"),
        PropSpec::enumeration("mode", "pts", STAMP_MODES, "Where to write the time"),
        PropSpec::string(
            "field",
            Some("timestamp"),
            "The user field mode=field writes (1 to 256 bytes)",
        ),
        PropSpec::bool(
            "overwrite",
            true,
            "Replace a time the buffer already has (false: keep it)",
        ),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let realtime = p.nick("clock")? == "realtime";
        let target = match p.nick("mode")? {
            "field" => {
                let name = p.string("field")?.unwrap_or_default();
                check_key(name).map_err(|why| prop_error("field", &why))?;
                Stamp::Field(name.to_owned())
            }
            "dts" => Stamp::Dts,
            _ => Stamp::Pts,
        };
        Ok(ElementImpl::Transform(Box::new(Timestamper {
            realtime,
            target,
            overwrite: p.bool("overwrite")?,
        })))
    },
};

/// Where the time goes.
enum Stamp {
    Pts,
    Dts,
    Field(String),
}

/// Stamps buffers with `realtime` or the running time.
struct Timestamper {
    realtime: bool,
    target: Stamp,
    overwrite: bool,
}

impl Timestamper {
    fn now(&self, cx: &Ctx<'_>) -> u64 {
        if self.realtime {
            // A clock set before 1970 reads as 0; past 2554 it saturates.
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        } else {
            cx.running_time_ns()
        }
    }
}

impl Transform for Timestamper {
    fn process(&mut self, mut buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        match &self.target {
            Stamp::Pts => {
                if self.overwrite || buf.meta.pts().is_none() {
                    buf.meta.set_pts(Some(self.now(cx)));
                }
            }
            Stamp::Dts => {
                if self.overwrite || buf.meta.dts().is_none() {
                    buf.meta.set_dts(Some(self.now(cx)));
                }
            }
            Stamp::Field(name) => {
                if self.overwrite || buf.meta.field(name).is_none() {
                    // An integer field is an i64: nanoseconds fit until the year 2262.
                    let ns = i64::try_from(self.now(cx)).unwrap_or(i64::MAX);
                    buf.meta.set_field(name.as_str(), FieldValue::Int(ns));
                }
            }
        }
        Ok(Flow::Push(buf))
    }
}

// --- metadatainject ------------------------------------------------------------------------

pub(crate) static METADATAINJECT: Factory = Factory {
    name: "metadatainject",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Sets stream id, duration, offsets and user fields on every buffer",
    doc: "Writes what it is given into each buffer's metadata and leaves the rest alone; a \
          property left at -1 (or unset) changes nothing. offset=N numbers bytes from N: each \
          buffer's offset is where the previous one ended, and offset_end is set with it. \
          set=\"key=value,...\" sets user fields: `n=(int)-5` an integer, `b=(bytes)0aff` \
          bytes in hex, `s=text` or `s=(string)text` a string; a backslash makes the next \
          character literal (`\\,` `\\=` `\\\\`, or `\\(` to start a string with a \
          parenthesis). Spaces around entries are dropped. A malformed set= is an error before \
          anything runs.",
    pads: Pads::ONE_TO_ONE,
    props: &[
        PropSpec::int(
            "stream-id",
            -1,
            -1,
            u32::MAX as i64,
            "Stream id to set (-1 = leave as it is)",
        ),
        PropSpec::time(
            "duration",
            -1,
            -1,
            i64::MAX,
            "Duration to set on every buffer (-1 = leave as it is)",
        ),
        PropSpec::int(
            "offset",
            -1,
            -1,
            i64::MAX,
            "Byte offset of the first buffer; later ones follow on (-1 = leave as it is)",
        ),
        PropSpec::string(
            "set",
            None,
            "User fields to set, key=value,...: value text, (string)text, (int)N or (bytes)HEX",
        ),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let mut fields = Metadata::default();
        if let Some(text) = p.string("set")? {
            for (key, value) in parse_fields(text).map_err(|why| prop_error("set", &why))? {
                fields.set_field(key, value);
            }
        }
        Ok(ElementImpl::Transform(Box::new(MetadataInject {
            stream_id: u32::try_from(p.int("stream-id")?).ok(),
            duration: u64::try_from(p.time("duration")?).ok(),
            offset: u64::try_from(p.int("offset")?).ok(),
            fields,
        })))
    },
};

/// What to write; `None` leaves a field alone.
struct MetadataInject {
    stream_id: Option<u32>,
    duration: Option<u64>,
    /// The next buffer's offset.
    offset: Option<u64>,
    /// The user fields to set, built once: a buffer without fields of its own shares this map
    /// (a refcount increment per buffer, no allocation).
    fields: Metadata,
}

impl Transform for MetadataInject {
    fn process(&mut self, mut buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let len = buf.len() as u64;
        let m = &mut buf.meta;
        if let Some(id) = self.stream_id {
            m.stream_id = id;
        }
        if let Some(d) = self.duration {
            m.set_duration(Some(d));
        }
        if let Some(at) = self.offset {
            let end = at.saturating_add(len);
            m.set_offset(Some(at));
            m.set_offset_end(Some(end));
            self.offset = Some(end);
        }
        m.merge_fields(&self.fields);
        Ok(Flow::Push(buf))
    }
}

/// Reads `key=value,...` (metadatainject's `set=`) into fields, in the order written.
///
/// - entries are separated by `,`; spaces around an entry are dropped; empty entries (a
///   trailing comma) are skipped;
/// - the first `=` ends the key; keys are 1 to 256 bytes and each may appear once;
/// - a value is text, unless it starts with a type: `(string)text`, `(int)-12` (decimal i64)
///   or `(bytes)00ff` (hex, two digits a byte, may be empty);
/// - a backslash makes the next character literal, so `\,` `\=` and `\\` can be written, and
///   `\(` starts a text value with a parenthesis;
/// - all fields together keep to [`FieldLimits`], so they can cross to any process.
pub(crate) fn parse_fields(text: &str) -> Result<Vec<(String, FieldValue)>, String> {
    let mut fields: Vec<(String, FieldValue)> = Vec::new();
    for entry in split_unescaped(text, ',')? {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let mut parts = split_unescaped(entry, '=')?.into_iter();
        let raw_key = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        if rest.is_empty() {
            return Err(format!("entry `{entry}` is not key=value"));
        }
        // Everything after the first unescaped `=` is the value, `=` included.
        let raw_value = &entry[raw_key.len() + 1..];
        let key = unescape(raw_key.trim_end())?;
        check_key(&key).map_err(|why| format!("entry `{entry}`: {why}"))?;
        if fields.iter().any(|(k, _)| *k == key) {
            return Err(format!("key `{key}` is set twice"));
        }
        let value =
            parse_value(raw_value.trim_start()).map_err(|why| format!("entry `{entry}`: {why}"))?;
        fields.push((key, value));
    }
    FieldLimits::check(fields.iter().map(|(k, v)| (k.as_str(), v)))?;
    Ok(fields)
}

/// One value: a typed `(int)`, `(bytes)` or `(string)` one, or text.
fn parse_value(raw: &str) -> Result<FieldValue, String> {
    if let Some(n) = raw.strip_prefix("(int)") {
        let n = unescape(n)?;
        return n
            .trim()
            .parse::<i64>()
            .map(FieldValue::Int)
            .map_err(|_| format!("`{n}` is not an integer (i64)"));
    }
    if let Some(hex) = raw.strip_prefix("(bytes)") {
        return parse_hex(&unescape(hex)?).map(FieldValue::Bytes);
    }
    if let Some(text) = raw.strip_prefix("(string)") {
        return unescape(text).map(FieldValue::Str);
    }
    // `(uint)5` and the like are a typo more often than text: say so rather than guess.
    if let Some((ty, _)) = raw.strip_prefix('(').and_then(|r| r.split_once(')')) {
        if !ty.is_empty() && ty.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!(
                "unknown type `({ty})`: use (int), (bytes) or (string), or write `\\(` for text"
            ));
        }
    }
    unescape(raw).map(FieldValue::Str)
}

/// Hex digits, two a byte; spaces are not allowed.
fn parse_hex(hex: &str) -> Result<Vec<u8>, String> {
    if hex.len() % 2 != 0 {
        return Err(format!(
            "`{hex}` is not hex bytes (an odd number of digits)"
        ));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("`{hex}` is not hex bytes"))
        })
        .collect()
}

/// Splits `text` at every `sep` not preceded by a backslash; the parts keep their escapes.
fn split_unescaped(text: &str, sep: char) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&text[start..i]);
            start = i + 1;
        }
    }
    if escaped {
        return Err(format!("`{text}` ends with a lone backslash"));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

/// Drops each escaping backslash, keeping the character after it.
fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(
                chars
                    .next()
                    .ok_or_else(|| format!("`{text}` ends with a lone backslash"))?,
            );
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// A user field key is 1 to 256 bytes.
fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > FieldLimits::MAX_KEY_BYTES {
        return Err(format!(
            "a field name must be 1 to {} bytes, got {}",
            FieldLimits::MAX_KEY_BYTES,
            key.len()
        ));
    }
    Ok(())
}

/// A build error about property `name`: exit 2, and the executor puts the element's name first.
fn prop_error(name: &str, why: &str) -> ElementError {
    ElementError::Config(format!("property `{name}`: {why}"))
}

// --- metadataextract -----------------------------------------------------------------------

pub(crate) static METADATAEXTRACT: Factory = Factory {
    name: "metadataextract",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Writes each buffer's metadata as a JSON line; the buffer passes on unchanged",
    doc: "For every buffer, writes one JSON object on a line of its own to location= (a file, \
          created or truncated) or fd= (an inherited descriptor, stdout by default), before \
          passing the buffer on untouched. The keys, in this order: sequence, size, offset, \
          offset_end, pts, dts, duration (nanoseconds or null), flags (names), stream, fields \
          (user fields: a string as a string, an integer as a number, bytes as {\"bytes\": \
          \"<hex>\"}). Each line is written whole as its buffer passes, so none is lost when the \
          pipeline stops.",
    pads: Pads::ONE_TO_ONE,
    props: &[
        PropSpec::string(
            "location",
            None,
            "File to write the lines to (created or truncated)",
        ),
        PropSpec::int(
            "fd",
            1,
            0,
            i32::MAX as i64,
            "Inherited descriptor to write the lines to, when location is not set",
        ),
    ],
    hints: Hints::BLOCKING_IO,
    build: |p| {
        let out = match p.string("location")? {
            Some(_) if p.is_set("fd") => {
                return Err(prop_error("location", "give location or fd, not both"))
            }
            Some(path) => {
                let file = std::fs::File::create(path)
                    .map_err(|e| ElementError::io(format!("creating {path}"), e))?;
                Output::File(file, path.to_owned())
            }
            None => {
                let n = p.int("fd")? as i32;
                let fd = inherited_fd(n)
                    .map_err(|e| ElementError::io(format!("fd {n} is not open"), e))?;
                Output::Fd(fd, format!("fd {n}"))
            }
        };
        Ok(ElementImpl::Transform(Box::new(MetadataExtract {
            out,
            line: String::new(),
        })))
    },
};

/// Where the lines go, and its name for errors.
enum Output {
    File(std::fs::File, String),
    Fd(std::os::fd::BorrowedFd<'static>, String),
}

/// Writes a line per buffer.
struct MetadataExtract {
    out: Output,
    /// The line being built, kept to reuse its allocation.
    line: String,
}

/// One line of `metadataextract`, keys in this order (documented in its `doc`).
#[derive(serde::Serialize)]
struct ExtractLine<'a> {
    sequence: u64,
    size: usize,
    offset: Option<u64>,
    offset_end: Option<u64>,
    pts: Option<u64>,
    dts: Option<u64>,
    duration: Option<u64>,
    flags: Vec<&'static str>,
    stream: u32,
    fields: Fields<'a>,
}

/// A buffer's user fields as one JSON object, in key order.
struct Fields<'a>(&'a Metadata);

impl serde::Serialize for Fields<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.fields())
    }
}

impl Transform for MetadataExtract {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let m = &buf.meta;
        let line = ExtractLine {
            sequence: m.sequence,
            size: buf.len(),
            offset: m.offset(),
            offset_end: m.offset_end(),
            pts: m.pts(),
            dts: m.dts(),
            duration: m.duration(),
            flags: m.flags.names(),
            stream: m.stream_id,
            fields: Fields(m),
        };
        self.line.clear();
        // Plain numbers, strings and maps of them always serialise; still an error, not a panic.
        let json = serde_json::to_string(&line)
            .map_err(|e| ElementError::Failed(format!("metadata as JSON: {e}")))?;
        self.line.push_str(&json);
        self.line.push('\n');
        // Each line is written whole as its buffer passes, not gathered for a flush at end of
        // stream: a run that stops on an error elsewhere still has every line it passed.
        let (fd, what) = match &self.out {
            Output::File(f, what) => (f.as_fd(), what),
            Output::Fd(fd, what) => (*fd, what),
        };
        super::io::write_all(fd, self.line.as_bytes(), what)?;
        Ok(Flow::Push(buf))
    }
}

// --- metadatafilter ------------------------------------------------------------------------

pub(crate) static METADATAFILTER: Factory = Factory {
    name: "metadatafilter",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Passes only buffers of one stream id or a sequence range",
    doc: "A buffer passes when it matches every constraint that is set: its stream id equals \
          stream-id, its sequence number is at least sequence-min and at most sequence-max \
          (both inclusive). A constraint left at -1 does not apply; with none set everything \
          passes. invert=true passes exactly the buffers that would have been dropped.",
    pads: Pads::ONE_TO_ONE,
    props: &[
        PropSpec::int(
            "stream-id",
            -1,
            -1,
            u32::MAX as i64,
            "Only this stream id passes (-1 = any)",
        ),
        PropSpec::int(
            "sequence-min",
            -1,
            -1,
            i64::MAX,
            "Lowest sequence number that passes, inclusive (-1 = no lower bound)",
        ),
        PropSpec::int(
            "sequence-max",
            -1,
            -1,
            i64::MAX,
            "Highest sequence number that passes, inclusive (-1 = no upper bound)",
        ),
        PropSpec::bool(
            "invert",
            false,
            "Pass the buffers that do not match instead",
        ),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let min = u64::try_from(p.int("sequence-min")?).ok();
        let max = u64::try_from(p.int("sequence-max")?).ok();
        if let (Some(lo), Some(hi)) = (min, max) {
            if lo > hi {
                return Err(prop_error(
                    "sequence-min",
                    &format!("{lo} is above sequence-max={hi}: no buffer could pass"),
                ));
            }
        }
        Ok(ElementImpl::Transform(Box::new(MetadataFilter {
            stream_id: u32::try_from(p.int("stream-id")?).ok(),
            min: min.unwrap_or(0),
            max: max.unwrap_or(u64::MAX),
            invert: p.bool("invert")?,
        })))
    },
};

/// The constraints, unset ones widened to match everything.
struct MetadataFilter {
    stream_id: Option<u32>,
    min: u64,
    max: u64,
    invert: bool,
}

impl Transform for MetadataFilter {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let m = &buf.meta;
        let matches = self.stream_id.is_none_or(|id| id == m.stream_id)
            && (self.min..=self.max).contains(&m.sequence);
        Ok(if matches != self.invert {
            Flow::Push(buf)
        } else {
            Flow::Drop
        })
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[
    &SEQUENCENUMBER,
    &TIMESTAMPER,
    &METADATAINJECT,
    &METADATAEXTRACT,
    &METADATAFILTER,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Vec<(String, FieldValue)> {
        parse_fields(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn set_reads_strings_integers_and_bytes() {
        assert_eq!(
            parsed("s=text, n=(int)-5,b=(bytes)0aFF,e=(bytes),t=(string)(int)5,"),
            [
                ("s".to_owned(), FieldValue::Str("text".into())),
                ("n".to_owned(), FieldValue::Int(-5)),
                ("b".to_owned(), FieldValue::Bytes(vec![0x0a, 0xff])),
                ("e".to_owned(), FieldValue::Bytes(vec![])),
                ("t".to_owned(), FieldValue::Str("(int)5".into())),
            ]
        );
        assert!(parsed("").is_empty());
        assert!(parsed(" , ").is_empty());
    }

    #[test]
    fn backslashes_make_separators_literal() {
        assert_eq!(
            parsed(r"a\,b=x\,y\=z\\,p=\(note) q=r,e="),
            [
                ("a,b".to_owned(), FieldValue::Str(r"x,y=z\".into())),
                ("p".to_owned(), FieldValue::Str("(note) q=r".into())),
                ("e".to_owned(), FieldValue::Str(String::new())),
            ]
        );
    }

    #[test]
    fn malformed_set_says_what_is_wrong() {
        let err = |text: &str| parse_fields(text).unwrap_err();
        assert_eq!(err("novalue"), "entry `novalue` is not key=value");
        assert!(err("=5").contains("a field name must be 1 to 256 bytes, got 0"));
        assert_eq!(err("a=1,a=2"), "key `a` is set twice");
        assert!(err("n=(int)x").contains("`x` is not an integer"));
        assert!(err("n=(int)99999999999999999999").contains("not an integer"));
        assert!(err("b=(bytes)abc").contains("odd number of digits"));
        assert!(err("b=(bytes)zz").contains("`zz` is not hex bytes"));
        assert!(err("u=(uint)5").contains("unknown type `(uint)`"));
        assert!(err(r"a=b\").contains("lone backslash"));
        let many: Vec<String> = (0..=FieldLimits::MAX_FIELDS)
            .map(|i| format!("k{i}=v"))
            .collect();
        assert!(err(&many.join(",")).contains("more than 64 metadata fields"));
    }

    #[test]
    fn what_set_writes_reads_back_from_display() {
        // Integers and bytes print in the notation set= reads.
        for v in [FieldValue::Int(i64::MIN), FieldValue::Bytes(vec![0, 0x7f])] {
            let text = format!("k={v}");
            assert_eq!(parsed(&text), [("k".to_owned(), v)]);
        }
    }
}
