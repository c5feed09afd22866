//! `decodebin` and `uridecodebin`: decode whatever a file holds to raw audio and video.
//!
//! Both are expanded when the description is validated (the engine's autoplugger): the
//! input's head (a file's, or the head a pipe or URL lends) says its type, and the demuxer, parsers and decoders that take it are chosen from the
//! registry by caps and rank and become elements of the graph after the bin, named
//! `decodebin0/flacdec0`. What is left of `decodebin` at run time is its entry, which passes
//! bytes unchanged; `uridecodebin` becomes the `filesrc` or `httpsrc` that reads its URI.

use crate::element::prelude::*;

const FORCE_SW: PropSpec = PropSpec::bool(
    "force-sw-decoders",
    false,
    "Use only software decoders to process streams",
);
const CAPS: PropSpec = PropSpec::string(
    "caps",
    None,
    "The caps on which to stop decoding. (NULL = default)",
)
.ignored("decodebin always decodes to raw audio/x-raw, video/x-raw or images as raw video");
const EXPOSE_ALL: PropSpec = PropSpec::bool(
    "expose-all-streams",
    true,
    "Expose all streams, including those of unknown type or that don't match the 'caps' property",
)
.ignored("a stream that no `d.` link takes is not decoded: its demuxer drops it, counted");

const DOC: &str = "Reads the type of its input from its first bytes when the description is \
     validated, then plugs the demuxer, parsers and decoders that take it, chosen from the \
     registry by caps and rank (a parser first while the stream is not framed; Rust code \
     before native code), so `filesrc location=song.flac ! decodebin ! audioconvert ! ...` \
     decodes without naming the format. `-v` prints the chain it chose \
     (`/pipeline0/decodebin0: chose flacparse ! flacdec`); the chosen elements appear in \
     `--stats`, DOT and errors as `decodebin0/flacdec0`, and a decoder written in C runs \
     isolated as it would outside the bin. A container (MP4) gives one stream per track: each \
     `d.` link takes the next stream whose raw caps its downstream accepts, in track order, as \
     gst-launch links pads as they appear. The input's type is read before the run: from a \
     regular file (`filesrc`, `fdsrc < file`); from a pipe, FIFO or stdin (`cat song.flac | \
     parallax-launch fdsrc ! decodebin ! ...`), whose head (4 to 64 KiB) validation reads and \
     its source passes first at run time (validation waits for them; an empty input is an \
     error); from `httpsrc`, which fetches the URL once for the head and again for the run; \
     or from caps written before decodebin (`tcpclientsrc ! audio/x-flac ! decodebin`). A \
     transport stream's tables, and an MP4's index when it comes first (faststart), are \
     read from a pipe too. Other input (a socket) without caps is refused with what to \
     write instead.";

// --- decodebin -----------------------------------------------------------------------------

pub(crate) static DECODEBIN: Factory = Factory {
    name: "decodebin",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Autoplug and decode to raw media",
    doc: DOC,
    pads: Pads {
        sink: PadPresence::Always("sink"),
        src: PadPresence::Request("src_%u"),
        ..Pads::ONE_TO_ONE
    },
    props: &[CAPS, EXPOSE_ALL, FORCE_SW],
    hints: Hints::FUSABLE,
    build: |_| Ok(ElementImpl::Transform(Box::new(Entry))),
};

/// The bin's entry: the chosen elements follow it in the graph.
struct Entry;

impl Transform for Entry {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        Ok(Flow::Push(buf))
    }
}

// --- uridecodebin --------------------------------------------------------------------------

pub(crate) static URIDECODEBIN: Factory = Factory {
    name: "uridecodebin",
    aliases: &[],
    klass: Klass::Source,
    summary: "Autoplug and decode an URI to raw media",
    doc: "decodebin reading `uri=`: becomes the filesrc that reads a `file:///...` URI, or \
          the httpsrc that fetches an `http://` one (fetched twice: once when the description \
          is validated, for the head that says its type, and again for the run), then the \
          chain decodebin would choose (see `parallax-inspect decodebin`).",
    pads: Pads {
        sink: PadPresence::None,
        src: PadPresence::Request("src_%u"),
        ..Pads::SOURCE
    },
    props: &[
        PropSpec::string("uri", None, "URI to decode").required(),
        CAPS,
        EXPOSE_ALL,
        FORCE_SW,
    ],
    hints: Hints::BLOCKING_IO,
    build: |_| {
        Err(ElementError::Config(
            "uridecodebin is expanded when the description is validated".into(),
        ))
    },
};
