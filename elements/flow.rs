//! Flow control: `queue` (a thread boundary), `valve` and `capsfilter` (caps, enforced when the
//! description is validated).

use crate::element::prelude::*;

// --- queue ---------------------------------------------------------------------------------

const LEAKY: &[EnumValue] = &[
    EnumValue {
        nick: "no",
        value: 0,
        doc: "Not Leaky",
    },
    EnumValue {
        nick: "upstream",
        value: 1,
        doc: "Leaky on upstream (new buffers)",
    },
    EnumValue {
        nick: "downstream",
        value: 2,
        doc: "Leaky on downstream (old buffers)",
    },
];

pub(crate) static QUEUE: Factory = Factory {
    name: "queue",
    aliases: &[],
    klass: Klass::Flow,
    summary: "A thread boundary with a bounded buffer queue",
    doc: "Everything downstream of a queue runs on its own thread. The queue holds at most \
          max-size-buffers buffers and max-size-bytes bytes (0 disables a limit); when full it \
          blocks the producer (backpressure), or with leaky=upstream drops new buffers, with \
          leaky=downstream drops the oldest. Buffers cross it as refcounted handles, never copied.",
    pads: Pads::ONE_TO_ONE,
    props: &[
        PropSpec::uint(
            "max-size-buffers",
            200,
            0,
            u32::MAX as u64,
            "Max. number of buffers in the queue (0=disable)",
        ),
        PropSpec::uint(
            "max-size-bytes",
            10_485_760,
            0,
            u32::MAX as u64,
            "Max. amount of data in the queue (bytes, 0=disable)",
        ),
        PropSpec::time(
            "max-size-time",
            1_000_000_000,
            0,
            i64::MAX,
            "Max. amount of data in the queue (in ns, 0=disable)",
        )
        .ignored("buffers here seldom carry durations; the buffer and byte limits bound the queue"),
        PropSpec::enumeration("leaky", "no", LEAKY, "Where the queue leaks, if at all"),
        PropSpec::uint(
            "min-threshold-buffers",
            0,
            0,
            u32::MAX as u64,
            "Min. number of buffers in the queue to allow reading (0=disable)",
        )
        .ignored("the consumer takes each buffer as soon as it arrives"),
        PropSpec::uint(
            "min-threshold-bytes",
            0,
            0,
            u32::MAX as u64,
            "Min. amount of data in the queue to allow reading (bytes, 0=disable)",
        )
        .ignored("the consumer takes each buffer as soon as it arrives"),
        PropSpec::time(
            "min-threshold-time",
            0,
            0,
            i64::MAX,
            "Min. amount of data in the queue to allow reading (in ns, 0=disable)",
        )
        .ignored("the consumer takes each buffer as soon as it arrives"),
        PropSpec::bool(
            "flush-on-eos",
            false,
            "Discard all data in the queue when an EOS event is received",
        )
        .ignored("queued buffers are always delivered before EOS"),
        PropSpec::bool("silent", false, "Don't emit queue signals").ignored(super::NO_SIGNALS),
        PropSpec::uint(
            "current-level-buffers",
            0,
            0,
            u32::MAX as u64,
            "Current number of buffers in the queue",
        )
        .read_only(),
        PropSpec::uint(
            "current-level-bytes",
            0,
            0,
            u32::MAX as u64,
            "Current amount of data in the queue (bytes)",
        )
        .read_only(),
        PropSpec::time(
            "current-level-time",
            0,
            0,
            i64::MAX,
            "Current amount of data in the queue (in ns)",
        )
        .read_only(),
    ],
    hints: Hints::BOUNDARY,
    build: |p| {
        let leaky = match p.nick("leaky")? {
            "upstream" => Leaky::Upstream,
            "downstream" => Leaky::Downstream,
            _ => Leaky::No,
        };
        Ok(ElementImpl::Queue(QueueSettings {
            max_buffers: p.uint("max-size-buffers")? as usize,
            max_bytes: p.uint("max-size-bytes")?,
            leaky,
        }))
    },
};

// --- valve ---------------------------------------------------------------------------------

const DROP_MODES: &[EnumValue] = &[
    EnumValue {
        nick: "drop-all",
        value: 0,
        doc: "Drop all buffers and events",
    },
    EnumValue {
        nick: "forward-sticky-events",
        value: 1,
        doc: "Drop all buffers and non-sticky events",
    },
    EnumValue {
        nick: "transform-to-gap",
        value: 2,
        doc: "Convert all dropped buffers into gap events",
    },
];

pub(crate) static VALVE: Factory = Factory {
    name: "valve",
    aliases: &[],
    klass: Klass::Flow,
    summary: "Passes or drops buffers depending on the drop property",
    doc: "While drop=true buffers are discarded and counted; end of stream always passes.",
    pads: Pads::ONE_TO_ONE,
    props: &[
        PropSpec::bool("drop", false, "Whether to drop buffers or let them through").mutable(),
        PropSpec::enumeration("drop-mode", "drop-all", DROP_MODES, "The drop mode to use")
            .ignored("parallax streams carry no events besides EOS, which always passes"),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        Ok(ElementImpl::Transform(Box::new(Valve {
            drop: p.live_bool("drop")?,
        })))
    },
};

/// Drops everything while `drop` is set (read live: the control socket flips it).
struct Valve {
    drop: LiveBool,
}

impl Transform for Valve {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        Ok(if self.drop.get() {
            Flow::Drop
        } else {
            Flow::Push(buf)
        })
    }
}

// --- capsfilter ----------------------------------------------------------------------------

const CAPS_CHANGE_MODES: &[EnumValue] = &[
    EnumValue {
        nick: "immediate",
        value: 0,
        doc: "Only accept the current filter caps",
    },
    EnumValue {
        nick: "delayed",
        value: 1,
        doc: "Temporarily accept previous filter caps",
    },
];

pub(crate) static CAPSFILTER: Factory = Factory {
    name: "capsfilter",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Restricts the stream's caps (caps written between links become one)",
    doc: "Written as `! video/x-raw,width=320 !` or `capsfilter caps=...`. Negotiation (when the \
          description is validated) makes the stream through it fit these caps, or refuses the \
          description; on untyped bytes (ANY) it says what they are. Buffers pass unchanged: \
          nothing is checked per buffer.",
    pads: Pads::ONE_TO_ONE.with_rule(CapsRule::Derived(&CAPSFILTER_CAPS)),
    props: &[
        PropSpec::string(
            "caps",
            None,
            "Restrict the possible allowed capabilities (NULL means ANY)",
        )
        .checked(check_caps),
        PropSpec::enumeration(
            "caps-change-mode",
            "immediate",
            CAPS_CHANGE_MODES,
            "Filter caps change behaviour",
        )
        .ignored("a change in mid-stream must fit the caps, or the run ends naming both"),
        PropSpec::bool("qos", false, "Handle Quality-of-Service events").ignored(super::NO_CLOCK),
    ],
    hints: Hints::FUSABLE,
    build: |p| Ok(ElementImpl::Transform(Box::new(CapsFilter(filter_caps(p))))),
};

/// The `caps` property as caps: ANY when unset.
pub(super) fn filter_caps(p: &Props) -> Caps {
    p.string("caps")
        .ok()
        .flatten()
        .and_then(|t| Caps::parse(t).ok())
        .unwrap_or(Caps::Any)
}

/// A bad caps value is refused where it is written, with the caret at the character.
pub(super) fn check_caps(text: &str) -> Result<(), (Option<usize>, String)> {
    Caps::parse(text)
        .map(|_| ())
        .map_err(|e| (Some(e.at), e.message))
}

/// What comes out is what came in, within the filter; untyped bytes become the filter's caps.
/// The app elements' `caps` property works the same way.
pub(super) static CAPSFILTER_CAPS: CapsFns = CapsFns {
    forward: |input, p| {
        let filter = filter_caps(p);
        if input.is_any() {
            filter
        } else {
            input.intersect(&filter)
        }
    },
    backward: |down, p| filter_caps(p).intersect(down),
    fixate: CapsFns::default_fixate,
};

/// Passes buffers: negotiation already made the stream fit. Holds its caps for a change in
/// mid-stream.
struct CapsFilter(Caps);

impl Transform for CapsFilter {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        Ok(Flow::Push(buf))
    }

    /// A change in mid-stream passes when it fits the filter.
    fn caps_changed(&mut self, caps: &Caps) -> Option<Result<Caps, ElementError>> {
        Some(if caps.is_subset(&self.0) {
            Ok(caps.clone())
        } else {
            Err(ElementError::Failed(format!("they do not fit {}", self.0)))
        })
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[&QUEUE, &VALVE, &CAPSFILTER];
