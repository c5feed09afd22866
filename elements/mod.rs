//! Every built-in element, by family. Order here is the order of `parallax-inspect`.
//!
//! Element files use only `crate::element::prelude::*` (a test checks it), so the engine behind
//! them can change without touching them. Adding an element touches its family file only: its
//! factory, its state, its trait impl, its tests and its line in the family's `FACTORIES`.

pub mod app;
mod bytes;
mod codecs;
mod console;
mod fd;
mod filter;
mod flow;
mod framing;
mod io;
mod media;
mod metadata;
mod net;
mod rate;
mod records;
mod routing;
mod shm;
mod testing;
mod timing;

use crate::element::prelude::*;

pub(crate) use codecs::{demuxers, typefind};

/// Every factory, in listing order.
pub fn all() -> impl Iterator<Item = &'static Factory> {
    [
        io::FACTORIES,
        fd::FACTORIES,
        testing::FACTORIES,
        console::FACTORIES,
        flow::FACTORIES,
        records::FACTORIES,
        timing::FACTORIES,
        filter::FACTORIES,
        bytes::FACTORIES,
        rate::FACTORIES,
        metadata::FACTORIES,
        routing::FACTORIES,
        media::AUDIO,
        media::RESAMPLE,
        media::VIDEO,
        media::VIDEOCONVERT,
        media::VIDEOSCALE,
        media::VIDEOGEOMETRY,
        media::VIDEORATE,
        media::WAV,
        codecs::FACTORIES,
        media::AV1,
        media::H264,
        framing::FACTORIES,
        net::FACTORIES,
        shm::FACTORIES,
        app::FACTORIES,
    ]
    .into_iter()
    .flatten()
    .copied()
}

/// Why the clock-related properties of gst's base classes do nothing here.
pub(crate) const NO_CLOCK: &str =
    "parallax has no pipeline clock: buffers are rendered as soon as they arrive";
/// gst's GstFormat values, for the properties that take one (fakesrc's `format`,
/// tcpserversink's `unit-format` and `burst-format`).
pub(crate) const FORMATS: &[EnumValue] = &[
    EnumValue {
        nick: "undefined",
        value: 0,
        doc: "GST_FORMAT_UNDEFINED",
    },
    EnumValue {
        nick: "default",
        value: 1,
        doc: "GST_FORMAT_DEFAULT",
    },
    EnumValue {
        nick: "bytes",
        value: 2,
        doc: "GST_FORMAT_BYTES",
    },
    EnumValue {
        nick: "time",
        value: 3,
        doc: "GST_FORMAT_TIME",
    },
    EnumValue {
        nick: "buffers",
        value: 4,
        doc: "GST_FORMAT_BUFFERS",
    },
    EnumValue {
        nick: "percent",
        value: 5,
        doc: "GST_FORMAT_PERCENT",
    },
];

/// Why gst's last-message/signal plumbing does nothing here.
pub(crate) const NO_SIGNALS: &str = "parallax reports through --stats and -v, not GObject signals";

/// A source's property list: the element's own, then those of gst's GstBaseSrc.
macro_rules! basesrc_props {
    ($($p:expr),* $(,)?) => {
        &[
            $($p,)*
            PropSpec::int("num-buffers", -1, -1, i32::MAX as i64, "Number of buffers to output before sending EOS (-1 = unlimited)"),
            PropSpec::bool("do-timestamp", false, "Stamp each buffer with the time since start"),
            PropSpec::bool("typefind", false, "Run typefind before negotiating (deprecated in gst, non-functional)")
                .ignored("deprecated and non-functional in gst too"),
        ]
    };
}
pub(crate) use basesrc_props;

/// A sink's property list: the element's own, then those of gst's GstBaseSink (less `sync`,
/// which each sink declares: filesink gives it a meaning).
macro_rules! basesink_props {
    ($($p:expr),* $(,)?) => {
        &[
            $($p,)*
            PropSpec::bool("async", true, "Go asynchronously to PAUSED").ignored("parallax has no preroll: sinks never block the start"),
            PropSpec::uint("blocksize", 4096, 0, u32::MAX as u64, "Size in bytes to pull per buffer (0 = default)")
                .ignored("parallax sinks are pushed to, never pulled from"),
            PropSpec::bool("enable-last-sample", true, "Enable the last-sample property").ignored(super::NO_SIGNALS),
            PropSpec::string("last-sample", None, "The last sample received in the sink").read_only(),
            PropSpec::uint("max-bitrate", 0, 0, u64::MAX, "The maximum bits per second to render (0 = disabled)").ignored(super::NO_CLOCK),
            PropSpec::time("max-lateness", -1, -1, i64::MAX, "Maximum time a buffer can be late before it is dropped (-1 unlimited)").ignored(super::NO_CLOCK),
            PropSpec::time("processing-deadline", 20_000_000, 0, i64::MAX, "Maximum processing time for a buffer").ignored(super::NO_CLOCK),
            PropSpec::bool("qos", false, "Generate Quality-of-Service events upstream").ignored(super::NO_CLOCK),
            PropSpec::time("render-delay", 0, 0, i64::MAX, "Additional render delay of the sink").ignored(super::NO_CLOCK),
            PropSpec::string("stats", None, "Sink statistics (see --stats)").read_only(),
            PropSpec::time("throttle-time", 0, 0, i64::MAX, "The time to keep between rendered buffers (0 = disabled)").ignored(super::NO_CLOCK),
            PropSpec::time("ts-offset", 0, i64::MIN, i64::MAX, "Timestamp offset").ignored(super::NO_CLOCK),
        ]
    };
}
pub(crate) use basesink_props;

/// The check of a delimiter property when the description is parsed: valid C escapes, and at
/// least one byte.
pub(crate) fn delimiter_check(text: &str) -> Result<(), (Option<usize>, String)> {
    if unescape_c(text)?.is_empty() {
        return Err((None, "a delimiter needs at least one byte".into()));
    }
    Ok(())
}

/// The non-empty delimiter property `name`, C escapes resolved.
pub(crate) fn delimiter(p: &Props, name: &str) -> Result<Vec<u8>, ElementError> {
    let text = p.string(name)?.unwrap_or_default();
    let bytes = unescape_c(text).map_err(|(_, e)| ElementError::Config(format!("{name}: {e}")))?;
    if bytes.is_empty() {
        return Err(ElementError::Config(format!(
            "{name} is empty: a delimiter needs at least one byte"
        )));
    }
    Ok(bytes)
}

/// Writes `data` as a hex dump (offset, 16 bytes of hex, ASCII) to stdout, like gst's `dump`.
fn hex_dump(data: &[u8]) -> Result<(), ElementError> {
    use std::io::Write as _;
    std::io::stdout()
        .lock()
        .write_all(hex_rows(data).as_bytes())
        .map_err(|e| ElementError::io("dumping to stdout", e))
}

/// `data` as hex dump rows: offset, 16 bytes of hex, the printable ASCII; one line per 16 bytes.
/// Used by fakesink's `dump` and by `--tap`.
pub(crate) fn hex_rows(data: &[u8]) -> String {
    let mut text = String::with_capacity(data.len() * 4 + 80);
    for (row, chunk) in data.chunks(16).enumerate() {
        text.push_str(&format!("{:08x}: ", row * 16));
        for i in 0..16 {
            match chunk.get(i) {
                Some(b) => text.push_str(&format!("{b:02x} ")),
                None => text.push_str("   "),
            }
        }
        text.push(' ');
        text.extend(chunk.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        text.push('\n');
    }
    text
}

/// Bytes from text with C escapes: `\n \t \r \0 \a \b \f \v \e \\ \" \'`, `\xHH` (one
/// or two hex digits) and `\NNN` (one to three octal digits); any other character stands for its
/// UTF-8 bytes. On a bad escape: its byte offset in `text` and what is wrong (for a caret).
pub(crate) fn unescape_c(text: &str) -> Result<Vec<u8>, (Option<usize>, String)> {
    let mut out = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let at = i;
        let Some(&e) = bytes.get(i + 1) else {
            return Err((
                Some(at),
                "a `\\` at the end escapes nothing (write `\\\\`)".into(),
            ));
        };
        i += 2;
        let simple = match e {
            b'n' => Some(b'\n'),
            b't' => Some(b'\t'),
            b'r' => Some(b'\r'),
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'v' => Some(0x0b),
            b'e' => Some(0x1b),
            b'\\' | b'"' | b'\'' | b'?' => Some(e),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        let (radix, max_digits, from) = match e {
            b'x' => (16, 2, i),
            b'0'..=b'7' => (8, 3, i - 1),
            _ => {
                let shown = text[at..].chars().take(2).collect::<String>();
                return Err((Some(at), format!("unknown escape `{shown}`")));
            }
        };
        let digits = bytes[from..]
            .iter()
            .take(max_digits)
            .take_while(|&&b| (b as char).is_digit(radix))
            .count();
        if digits == 0 {
            return Err((Some(at), "`\\x` needs one or two hex digits".into()));
        }
        let value = u32::from_str_radix(&text[from..from + digits], radix).unwrap_or(u32::MAX);
        let byte = u8::try_from(value).map_err(|_| {
            (
                Some(at),
                format!(
                    "octal escape `\\{}` is over 255",
                    &text[from..from + digits]
                ),
            )
        })?;
        out.push(byte);
        i = from + digits;
    }
    Ok(out)
}

/// Bytes from hex digits, two per byte; whitespace and `:` between bytes are allowed
/// (`de ad be ef`, `de:ad`). On an error: its byte offset in `text` and what is wrong.
pub(crate) fn decode_hex(text: &str) -> Result<Vec<u8>, (Option<usize>, String)> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<(usize, u8)> = None;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() || c == ':' {
            if let Some((at, _)) = high {
                return Err((Some(at), "a hex byte needs two digits".into()));
            }
            continue;
        }
        let Some(d) = c.to_digit(16) else {
            return Err((Some(i), format!("`{c}` is not a hex digit")));
        };
        match high.take() {
            None => high = Some((i, d as u8)),
            Some((_, h)) => out.push(h << 4 | d as u8),
        }
    }
    if let Some((at, _)) = high {
        return Err((Some(at), "a hex byte needs two digits".into()));
    }
    Ok(out)
}

/// A small, fast, seedable generator for random fill and drop probabilities (xorshift64*).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn from_time() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        Rng::new(t ^ u64::from(std::process::id()).rotate_left(32))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }

    /// Uniform in 0.0..1.0.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Default read size: what `cat` uses (coreutils reads 128 KiB at a time), so that a default
/// `filesrc ! filesink` copies at `cat` speed. gst's default is 4096; see README.
pub(super) const DEFAULT_BLOCKSIZE: u64 = 128 * 1024;

/// The `blocksize` property of the stream sources.
pub(super) const BLOCKSIZE: PropSpec = PropSpec::uint(
    "blocksize",
    DEFAULT_BLOCKSIZE,
    0,
    u32::MAX as u64,
    "Size in bytes to read per buffer (0 = default)",
);

/// The `blocksize` property in bytes; 0 means the default.
pub(super) fn blocksize(p: &Props) -> Result<usize, ElementError> {
    let b = match p.uint("blocksize")? {
        0 => DEFAULT_BLOCKSIZE,
        n => n,
    };
    Ok(usize::try_from(b).unwrap_or(usize::MAX))
}

/// Sequence numbers, byte offsets, `do-timestamp` and `num-buffers`: what every source that
/// reads a stream stamps on its buffers, sync or async.
pub(super) struct Stamper {
    sequence: u64,
    /// Bytes stamped so far: the next buffer's offset in the stream.
    pub(super) offset: u64,
    num_buffers: Option<u64>,
    do_timestamp: bool,
}

impl Stamper {
    pub(super) fn new(p: &Props) -> Result<Stamper, ElementError> {
        Ok(Stamper {
            sequence: 0,
            offset: 0,
            num_buffers: u64::try_from(p.int("num-buffers")?).ok(),
            do_timestamp: p.bool("do-timestamp")?,
        })
    }

    /// Whether `num-buffers` buffers went out already.
    pub(super) fn done(&self) -> bool {
        self.num_buffers.is_some_and(|n| self.sequence >= n)
    }

    /// Sets the metadata of the next buffer: its sequence number, its byte offsets in the
    /// stream (first byte and just past the last, as gst's offset and offset_end), and with
    /// `do-timestamp` the pipeline's running time (read only then) as pts.
    pub(super) fn stamp(&mut self, buf: &mut Buffer, running_time_ns: impl FnOnce() -> u64) {
        buf.meta.sequence = self.sequence;
        buf.meta.set_offset(Some(self.offset));
        buf.meta
            .set_offset_end(Some(self.offset + buf.len() as u64));
        if self.do_timestamp {
            buf.meta.set_pts(Some(running_time_ns()));
        }
        self.sequence += 1;
        self.offset += buf.len() as u64;
    }
}

/// Removes the socket file this element bound, when it ends (also on an error).
pub(crate) struct BoundPath(pub(crate) std::path::PathBuf);

impl Drop for BoundPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Makes `path` free to bind: nothing there is fine, a socket nobody serves any more (its
/// process died) is removed, anything else is an error. The probe is an unbound datagram
/// `connect`, which sends nothing: a live peer never sees it.
pub(crate) fn claim(path: &std::path::Path) -> Result<(), ElementError> {
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ElementError::io(format!("inspecting {shown}"), e)),
        Ok(meta) if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) => {
            let probe = std::os::unix::net::UnixDatagram::unbound().and_then(|s| s.connect(path));
            match probe {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path).map_err(|e| {
                        ElementError::io(format!("removing the stale socket {shown}"), e)
                    })
                }
                _ => Err(ElementError::Failed(format!(
                    "socket {shown} is in use by another process"
                ))),
            }
        }
        Ok(_) => Err(ElementError::Failed(format!(
            "{shown} already exists and is not a socket: not replacing it"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_kebab(s: &str) -> bool {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }

    #[test]
    fn every_factory_keeps_the_contract() {
        let mut seen = std::collections::HashSet::new();
        for f in all() {
            for n in std::iter::once(f.name).chain(f.aliases.iter().copied()) {
                assert!(seen.insert(n), "duplicate element name `{n}`");
            }
            assert!(
                !f.summary.is_empty() && !f.doc.is_empty(),
                "{} needs docs",
                f.name
            );
            let mut props = std::collections::HashSet::new();
            for p in f.props {
                assert!(
                    is_kebab(p.name) && !p.doc.is_empty(),
                    "{}.{}",
                    f.name,
                    p.name
                );
                assert!(
                    props.insert(p.name),
                    "{}: property `{}` listed twice",
                    f.name,
                    p.name
                );
                // Every default must parse back through the spec's own parser.
                let shown = p.kind.default_value().to_string();
                if let crate::registry::PropKind::Str { default: Some(_) }
                | crate::registry::PropKind::Enum { .. } = p.kind
                {
                    let unquoted = shown.trim_matches('"');
                    assert!(
                        p.parse(unquoted).is_ok(),
                        "{}.{} default {shown}",
                        f.name,
                        p.name
                    );
                }
            }
            if f.props.iter().any(|p| p.required) {
                continue;
            }
            let props = Props::defaults(f.name, f.props);
            let built = match (f.build)(&props) {
                Ok(b) => b,
                Err(e) => panic!("{} does not build with its defaults: {e}", f.name),
            };
            // The planner places by the factory's domain and runs what was built: they agree.
            let is_async = matches!(
                built,
                ElementImpl::AsyncSource(_) | ElementImpl::AsyncSink(_)
            );
            assert_eq!(
                is_async,
                f.domain() == crate::registry::Domain::Async,
                "{}: hints.async_io must match what build returns",
                f.name
            );
        }
    }

    #[test]
    fn element_files_use_only_the_prelude() {
        let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("elements")];
        let mut files = Vec::new();
        // A family that outgrew one file is a folder (elements/net/).
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines() {
                let l = line.trim();
                if l.starts_with("use crate::") {
                    assert_eq!(
                        l,
                        "use crate::element::prelude::*;",
                        "{}: {l}",
                        path.display()
                    );
                }
            }
        }
    }

    #[test]
    fn c_escapes_decode_and_bad_ones_say_where() {
        assert_eq!(unescape_c(r"a\tb\n").unwrap(), b"a\tb\n");
        assert_eq!(unescape_c(r"\x41\x4a\x7").unwrap(), b"AJ\x07");
        assert_eq!(unescape_c(r"\0\101\1012").unwrap(), b"\0AA2");
        assert_eq!(unescape_c(r#"\\\"\'"#).unwrap(), b"\\\"'");
        assert_eq!(unescape_c("é").unwrap(), "é".as_bytes());
        assert_eq!(unescape_c(r"ab\q").unwrap_err().0, Some(2));
        assert_eq!(unescape_c(r"ab\xg").unwrap_err().0, Some(2));
        assert_eq!(unescape_c(r"\777").unwrap_err().0, Some(0));
        assert_eq!(unescape_c("x\\").unwrap_err().0, Some(1));
    }

    #[test]
    fn hex_decodes_with_separators_and_says_where_it_fails() {
        assert_eq!(decode_hex("DEad be:ef").unwrap(), [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(decode_hex("").unwrap(), b"");
        assert_eq!(decode_hex("abc").unwrap_err().0, Some(2));
        assert_eq!(decode_hex("a bc").unwrap_err().0, Some(0));
        assert_eq!(decode_hex("zz").unwrap_err().0, Some(0));
    }

    #[test]
    fn rng_fills_odd_lengths() {
        let mut r = Rng::new(7);
        let mut b = [0u8; 13];
        r.fill(&mut b);
        assert!(b.iter().any(|&x| x != 0));
        let u = r.unit();
        assert!((0.0..1.0).contains(&u));
    }
}
