//! Splitting and merging streams: `tee`, `funnel`, the selectors, `concat` and
//! `streamiddemux`. The executor carries them out (a fan-out is a branch point inside a thread,
//! a fan-in a channel with several senders, each input held to the element's rule where it
//! sends); these factories declare their pads, properties and rules.

use crate::element::prelude::*;

// --- tee -----------------------------------------------------------------------------------

const PULL_MODES: &[EnumValue] = &[
    EnumValue {
        nick: "never",
        value: 0,
        doc: "Never activate in pull mode",
    },
    EnumValue {
        nick: "single",
        value: 1,
        doc: "Only one src pad can be active in pull mode",
    },
];

pub(crate) static TEE: Factory = Factory {
    name: "tee",
    aliases: &[],
    klass: Klass::Routing,
    summary: "Sends every buffer to each of its branches, without copying",
    doc: "Each branch (`t. ! ...`) gets a refcounted handle on the same memory. Without queues \
          the branches run one after the other in the tee's thread, and unlike gst-launch this \
          does not hang; put a queue at the start of a branch to give it its own thread.",
    pads: Pads::ONE_TO_MANY,
    props: &[
        PropSpec::bool(
            "allow-not-linked",
            false,
            "Return OK even if there are no source pads or they are all unlinked",
        )
        .ignored("an unlinked tee is refused before running"),
        PropSpec::bool("has-chain", true, "If the element can operate in push mode")
            .ignored("parallax always pushes"),
        PropSpec::enumeration(
            "pull-mode",
            "never",
            PULL_MODES,
            "Behavior of tee in pull mode",
        )
        .ignored("parallax always pushes"),
        PropSpec::bool("silent", true, "Don't produce last_message events")
            .ignored(super::NO_SIGNALS),
        PropSpec::string(
            "alloc-pad",
            None,
            "The pad ALLOCATION queries will be proxied to (deprecated, no effect)",
        )
        .ignored("deprecated with no effect in gst too"),
        PropSpec::int(
            "num-src-pads",
            0,
            0,
            i32::MAX as i64,
            "The number of source pads",
        )
        .read_only(),
        PropSpec::string(
            "last-message",
            None,
            "The message describing current status",
        )
        .read_only(),
    ],
    hints: Hints::FUSABLE,
    build: |_| Ok(ElementImpl::Tee),
};

// --- funnel --------------------------------------------------------------------------------

pub(crate) static FUNNEL: Factory = Factory {
    name: "funnel",
    aliases: &[],
    klass: Klass::Routing,
    summary: "Merges several streams into one",
    doc: "Buffers from every input (`... ! f.`) leave on one src pad in arrival order; the \
          stream ends when every input has ended. Each input runs in its own thread.",
    pads: Pads::MANY_TO_ONE,
    props: &[PropSpec::bool(
        "forward-sticky-events",
        true,
        "Forward sticky events on stream changes",
    )
    .ignored("parallax streams carry no sticky events")],
    hints: Hints::FUSABLE,
    build: |_| Ok(ElementImpl::Funnel),
};

// --- input-selector ------------------------------------------------------------------------

const SYNC_MODES: &[EnumValue] = &[
    EnumValue {
        nick: "active-segment",
        value: 0,
        doc: "Sync using the current active segment",
    },
    EnumValue {
        nick: "clock",
        value: 1,
        doc: "Sync using the clock",
    },
];

/// The pad number `active-pad` names (`sink_2` or `src_2`, or just `2`); `default` when unset.
fn active_pad(p: &Props, prefix: &str, default: u32) -> Result<ActivePad, ElementError> {
    let Some(text) = p.string("active-pad")? else {
        return ActivePad::live(p, "active-pad", default);
    };
    text.parse::<u32>()
        .ok()
        .or_else(|| text.strip_prefix(prefix).and_then(|_| ActivePad::parse(text)))
        .map(|n| ActivePad::live(p, "active-pad", n))
        .transpose()?
        .ok_or_else(|| {
            ElementError::Config(format!(
                "active-pad `{text}` is not one of this element's pads: write {prefix}N, as                  {prefix}0"
            ))
        })
}

pub(crate) static INPUT_SELECTOR: Factory = Factory {
    name: "input-selector",
    aliases: &["inputselector"],
    klass: Klass::Routing,
    summary: "Passes the buffers of one of its inputs and drops the others'",
    doc: "Buffers from the active pad (`active-pad=sink_N`, sink_0 unless set) leave on the src           pad; buffers from every other input are dropped, counted, without holding those           inputs back. The stream ends when every input has ended. Each input runs in its own           thread, as with funnel.",
    pads: Pads::MANY_TO_ONE,
    props: &[
        PropSpec::string(
            "active-pad",
            None,
            "The currently active sink pad (sink_N; sink_0 when unset)",
        )
        .mutable(),
        PropSpec::uint(
            "n-pads",
            0,
            0,
            u32::MAX as u64,
            "The number of sink pads",
        )
        .read_only(),
        PropSpec::bool(
            "sync-streams",
            true,
            "Synchronize inactive streams to the running time of the active stream",
        )
        .ignored("inactive streams are dropped as they come: nothing waits on them"),
        PropSpec::enumeration(
            "sync-mode",
            "active-segment",
            SYNC_MODES,
            "Behavior in sync-streams mode",
        )
        .ignored("inactive streams are dropped as they come: nothing waits on them"),
        PropSpec::bool(
            "cache-buffers",
            false,
            "Cache buffers for active-pad",
        )
        .ignored("buffers are passed or dropped as they come, never cached"),
        PropSpec::bool(
            "drop-backwards",
            false,
            "Drop buffers that go backwards relative to previous buffers",
        )
        .ignored("parallax streams carry no segments to go backwards in"),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        Ok(ElementImpl::FanIn(FanIn::Select(active_pad(
            p, "sink_", 0,
        )?)))
    },
};

// --- output-selector -----------------------------------------------------------------------

const PAD_NEGOTIATION_MODES: &[EnumValue] = &[
    EnumValue {
        nick: "none",
        value: 0,
        doc: "None",
    },
    EnumValue {
        nick: "all",
        value: 1,
        doc: "All",
    },
    EnumValue {
        nick: "active",
        value: 2,
        doc: "Active",
    },
];

pub(crate) static OUTPUT_SELECTOR: Factory = Factory {
    name: "output-selector",
    aliases: &["outputselector"],
    klass: Klass::Routing,
    summary: "Sends every buffer to one of its branches",
    doc: "Each buffer leaves on the active src pad (`active-pad=src_N`, src_0 unless set), not           copied; the other branches get nothing. A buffer whose active pad is not linked is           dropped, counted. Every branch gets end of stream.",
    pads: Pads::ONE_TO_MANY,
    props: &[
        PropSpec::string(
            "active-pad",
            None,
            "Currently active src pad (src_N; src_0 when unset)",
        )
        .mutable(),
        PropSpec::bool(
            "resend-latest",
            false,
            "Resend latest buffer after a switch to a new pad",
        )
        .ignored("a switch takes effect at the next buffer; none is kept to resend"),
        PropSpec::enumeration(
            "pad-negotiation-mode",
            "all",
            PAD_NEGOTIATION_MODES,
            "The mode to be used for pad negotiation",
        )
        .ignored("caps are not negotiated yet"),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        Ok(ElementImpl::Route(Box::new(ToActive(active_pad(
            p, "src_", 0,
        )?))))
    },
};

/// Routes every buffer to the active pad.
struct ToActive(ActivePad);

impl Router for ToActive {
    fn route(&mut self, _buf: &Buffer) -> Option<u32> {
        Some(self.0.get())
    }
}

// --- concat --------------------------------------------------------------------------------

pub(crate) static CONCAT: Factory = Factory {
    name: "concat",
    aliases: &[],
    klass: Klass::Routing,
    summary: "Plays its inputs one after another",
    doc: "All of sink_0's stream leaves first, then sink_1's, and so on in pad order; the stream           ends after the last input's end. An input whose turn has not come is held back where           it sends (its thread waits, nothing is queued without bound), so each input needs a           thread of its own: a source, or a queue in front.",
    pads: Pads::MANY_TO_ONE,
    props: &[
        PropSpec::bool(
            "adjust-base",
            true,
            "Adjust the base value of segments to ensure they are adjacent",
        )
        .ignored("parallax streams carry no segments; timestamps pass unchanged"),
        PropSpec::string("active-pad", None, "Currently active src pad").read_only(),
    ],
    hints: Hints::FUSABLE,
    build: |_| Ok(ElementImpl::FanIn(FanIn::Concat)),
};

// --- streamiddemux -------------------------------------------------------------------------

pub(crate) static STREAMIDDEMUX: Factory = Factory {
    name: "streamiddemux",
    aliases: &[],
    klass: Klass::Routing,
    summary: "Sends each buffer to the branch of its stream id",
    doc: "A buffer of stream id N leaves on src_N (`d.src_N ! ...`), not copied. A stream id           whose pad is not linked (one that appears late, say) is dropped, counted, until           such a pad exists. Every branch gets end of stream.",
    pads: Pads::ONE_TO_MANY,
    props: &[PropSpec::string(
        "active-pad",
        None,
        "The active src pad",
    )
    .read_only()],
    hints: Hints::FUSABLE,
    build: |_| Ok(ElementImpl::Route(Box::new(ByStreamId))),
};

/// Routes each buffer by its stream id.
struct ByStreamId;

impl Router for ByStreamId {
    fn route(&mut self, buf: &Buffer) -> Option<u32> {
        Some(buf.meta.stream_id)
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[
    &TEE,
    &FUNNEL,
    &INPUT_SELECTOR,
    &OUTPUT_SELECTOR,
    &CONCAT,
    &STREAMIDDEMUX,
];
