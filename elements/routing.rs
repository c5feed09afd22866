//! Splitting and merging streams: `tee` and `funnel`. Both are carried out by the executor
//! (a tee is a branch point inside a thread, a funnel a channel with several senders); these
//! factories declare their pads and properties.

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

pub(crate) const FACTORIES: &[&Factory] = &[&TEE, &FUNNEL];
