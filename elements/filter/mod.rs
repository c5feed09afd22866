//! Filtering: elements that pass some buffers and drop the others, unchanged. `filter` (a CEL
//! predicate, in [`expr`]), `regexfilter`, `samplefilter`, `duplicatefilter` and `rangefilter`.
//!
//! A filter never copies or alters what it passes, and end of stream always passes. What it
//! drops shows as `dropped` in `--stats`.

mod expr;
mod fast;

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher as _;

use super::Rng;
use crate::element::prelude::*;

/// `-1` = no limit, for the int properties that take it.
fn optional(p: &Props, name: &str) -> Result<Option<u64>, ElementError> {
    Ok(u64::try_from(p.int(name)?).ok())
}

// --- filter --------------------------------------------------------------------------------

const ON_ERROR: &[EnumValue] = &[
    EnumValue {
        nick: "drop",
        value: 0,
        doc: "The buffer does not match: it is dropped (a warning is logged once)",
    },
    EnumValue {
        nick: "pass",
        value: 1,
        doc: "The buffer passes (a warning is logged once)",
    },
    EnumValue {
        nick: "fail",
        value: 2,
        doc: "The pipeline stops with an error naming the buffer",
    },
];

pub(crate) static FILTER: Factory = Factory {
    name: "filter",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Passes the buffers for which a CEL expression is true",
    doc: "expr is a CEL (Common Expression Language) predicate over each buffer: `size`, `seq`, \
          `pts`, `dts`, `duration`, `offset` (ns or bytes; null when unset), `stream_id`, \
          `flags` and user fields `meta.KEY`; operators && || ! == != < <= > >= + - * / % and \
          CEL's functions, e.g. expr='size > 100 && seq % 10 == 0 && meta.kind == \"audio\"'. \
          The expression is compiled once, when the description is parsed: a syntax error or \
          an unknown variable is a description error with a caret under it. A buffer the \
          expression cannot be evaluated on (a missing meta field, a comparison with a null \
          pts, a division by zero) is handled as on-error says; `has(meta.KEY)` tests for a \
          field first.",
    pads: Pads::ONE_TO_ONE,
    props: &[
        PropSpec::string(
            "expr",
            None,
            "The CEL predicate a buffer must satisfy to pass",
        )
        .required()
        .checked(expr::check),
        PropSpec::enumeration(
            "on-error",
            "drop",
            ON_ERROR,
            "What a buffer the expression cannot be evaluated on does",
        ),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let source = p.string("expr")?.unwrap_or_default();
        let predicate = expr::compile(source)
            .map_err(|e| ElementError::Config(format!("property `expr`: {e}")))?;
        Ok(ElementImpl::Transform(Box::new(Filter {
            predicate,
            on_error: p.nick("on-error")?,
            warned: false,
        })))
    },
};

/// filter's state.
struct Filter {
    predicate: expr::Predicate,
    on_error: &'static str,
    /// Whether the one warning about evaluation errors went out.
    warned: bool,
}

impl Transform for Filter {
    fn process(&mut self, buf: Buffer, cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let pass = match self.predicate.matches(&buf) {
            Ok(pass) => pass,
            Err(e) if self.on_error == "fail" => {
                return Err(ElementError::Failed(format!(
                    "expr on buffer {}: {}",
                    buf.meta.sequence,
                    self.predicate.explain(&buf, e)
                )))
            }
            Err(e) => {
                if !self.warned {
                    self.warned = true;
                    // Only the first error's message is built (the fast path has none).
                    let e = self.predicate.explain(&buf, e);
                    cx.warn(format_args!(
                        "expr cannot be evaluated on buffer {}: {e}; on-error={} (said once)",
                        buf.meta.sequence, self.on_error
                    ));
                }
                self.on_error == "pass"
            }
        };
        Ok(if pass { Flow::Push(buf) } else { Flow::Drop })
    }
}

// --- regexfilter ---------------------------------------------------------------------------

/// The `pattern` check: the `regex` crate's own parser (as `regex::bytes` configures it), which
/// says where in the pattern it failed.
fn check_pattern(pattern: &str) -> Result<(), (Option<usize>, String)> {
    regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .map(drop)
        .map_err(|e| match e {
            regex_syntax::Error::Parse(e) => (Some(e.span().start.offset), e.kind().to_string()),
            regex_syntax::Error::Translate(e) => {
                (Some(e.span().start.offset), e.kind().to_string())
            }
            other => (None, other.to_string()),
        })
}

pub(crate) static REGEXFILTER: Factory = Factory {
    name: "regexfilter",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Passes the buffers whose bytes (or a user field) match a regular expression",
    doc: "pattern is a regular expression in the `regex` crate's syntax, matched anywhere in \
          the buffer's bytes (anchor with ^ and $; (?m) makes them match at line ends), not \
          necessarily UTF-8. With field=KEY it is matched against the user metadata field KEY \
          instead (a buffer without that field does not match). invert=true passes the buffers \
          that do not match, as grep -v. A bad pattern is a description error with a caret \
          under the place it fails.",
    pads: Pads::ONE_TO_ONE,
    props: &[
        PropSpec::string("pattern", None, "The regular expression to match")
            .required()
            .checked(check_pattern),
        PropSpec::bool(
            "invert",
            false,
            "Pass the buffers that do not match instead",
        ),
        PropSpec::string(
            "field",
            Some("payload"),
            "What is matched: payload (the bytes) or the name of a user metadata field",
        ),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let pattern = p.string("pattern")?.unwrap_or_default();
        let regex = regex::bytes::Regex::new(pattern)
            .map_err(|e| ElementError::Config(format!("property `pattern`: {e}")))?;
        let field = match p.string("field")?.unwrap_or("payload") {
            "payload" => None,
            key => Some(key.to_owned()),
        };
        Ok(ElementImpl::Transform(Box::new(RegexFilter {
            regex,
            invert: p.bool("invert")?,
            field,
        })))
    },
};

/// regexfilter's state.
struct RegexFilter {
    regex: regex::bytes::Regex,
    invert: bool,
    /// The user field matched; `None` = the payload.
    field: Option<String>,
}

impl RegexFilter {
    fn is_match(&self, buf: &Buffer) -> bool {
        let Some(key) = &self.field else {
            return self.regex.is_match(buf.data());
        };
        match expr::meta_field(buf, key) {
            Some(expr::FieldRef::Str(s)) => self.regex.is_match(s.as_bytes()),
            Some(expr::FieldRef::Bytes(b)) => self.regex.is_match(b),
            Some(expr::FieldRef::Int(i)) => self.regex.is_match(i.to_string().as_bytes()),
            None => false,
        }
    }
}

impl Transform for RegexFilter {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        Ok(if self.is_match(&buf) != self.invert {
            Flow::Push(buf)
        } else {
            Flow::Drop
        })
    }
}

// --- samplefilter --------------------------------------------------------------------------

pub(crate) static SAMPLEFILTER: Factory = Factory {
    name: "samplefilter",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Passes every Nth buffer, a random share, or the first N",
    doc: "every=N passes buffers 0, N, 2N, ... of its input (counted from 0) and drops the \
          others. probability=P then passes each of those with probability P, drawn from a \
          generator seeded with `seed` (the same seed passes the same buffers on every run; \
          -1 seeds from the clock). first=N ends the stream after N buffers have passed, as \
          `head` does (0: an empty stream).",
    pads: Pads::ONE_TO_ONE,
    props: &[
        PropSpec::uint("every", 1, 1, u64::MAX, "Pass one buffer in every N"),
        PropSpec::int(
            "first",
            -1,
            -1,
            i64::MAX,
            "End the stream after N buffers passed (-1 = never)",
        ),
        PropSpec::float(
            "probability",
            1.0,
            0.0,
            1.0,
            "Chance that a buffer passes (after `every`)",
        ),
        PropSpec::int(
            "seed",
            -1,
            -1,
            i64::MAX,
            "Seed of the random draws (-1 = from the clock)",
        ),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let rng = match optional(p, "seed")? {
            // Rng::new sets the low bit; shifting first keeps seeds 42 and 43 apart.
            Some(seed) => Rng::new(seed << 1),
            None => Rng::from_time(),
        };
        Ok(ElementImpl::Transform(Box::new(SampleFilter {
            every: p.uint("every")?,
            first: optional(p, "first")?,
            probability: p.float("probability")?,
            rng,
            seen: 0,
            passed: 0,
        })))
    },
};

/// samplefilter's state.
struct SampleFilter {
    every: u64,
    first: Option<u64>,
    probability: f64,
    rng: Rng,
    /// Buffers received.
    seen: u64,
    /// Buffers passed.
    passed: u64,
}

impl Transform for SampleFilter {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        if self.first.is_some_and(|n| self.passed >= n) {
            return Ok(Flow::Eos);
        }
        let index = self.seen;
        self.seen += 1;
        if index % self.every != 0 {
            return Ok(Flow::Drop);
        }
        // A draw for every candidate, so the choice depends on the seed and the input only.
        if self.probability < 1.0 && self.rng.unit() >= self.probability {
            return Ok(Flow::Drop);
        }
        self.passed += 1;
        Ok(Flow::Push(buf))
    }
}

// --- duplicatefilter -----------------------------------------------------------------------

pub(crate) static DUPLICATEFILTER: Factory = Factory {
    name: "duplicatefilter",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Drops buffers whose bytes repeat one of the last N passed",
    doc: "Remembers a 64-bit hash of the bytes of the last `window` buffers it passed and drops \
          a buffer whose bytes hash the same as one of them: window=1 drops consecutive repeats, \
          as `uniq` does. Only hashes are kept, never the buffers, so any window costs no pool \
          memory; the hash is keyed at random per run, so crafted input cannot aim collisions.",
    pads: Pads::ONE_TO_ONE,
    props: &[PropSpec::uint(
        "window",
        1,
        1,
        u32::MAX as u64,
        "How many passed buffers a new one is compared with",
    )],
    hints: Hints::FUSABLE,
    build: |p| {
        Ok(ElementImpl::Transform(Box::new(DuplicateFilter {
            window: usize::try_from(p.uint("window")?).unwrap_or(usize::MAX),
            hasher: foldhash::quality::RandomState::default(),
            order: VecDeque::new(),
            counts: HashMap::new(),
        })))
    },
};

/// duplicatefilter's state: the hashes of the last `window` passed buffers, oldest first,
/// and how many times each occurs among them.
struct DuplicateFilter {
    window: usize,
    hasher: foldhash::quality::RandomState,
    order: VecDeque<u64>,
    counts: HashMap<u64, u32>,
}

impl Transform for DuplicateFilter {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let hash = self.hasher.hash_one(buf.data());
        if self.counts.contains_key(&hash) {
            return Ok(Flow::Drop);
        }
        if self.order.len() == self.window {
            if let Some(old) = self.order.pop_front() {
                if let Some(n) = self.counts.get_mut(&old) {
                    *n -= 1;
                    if *n == 0 {
                        self.counts.remove(&old);
                    }
                }
            }
        }
        self.order.push_back(hash);
        *self.counts.entry(hash).or_insert(0) += 1;
        Ok(Flow::Push(buf))
    }
}

// --- rangefilter ---------------------------------------------------------------------------

pub(crate) static RANGEFILTER: Factory = Factory {
    name: "rangefilter",
    aliases: &[],
    klass: Klass::Filter,
    summary: "Passes buffers whose size and sequence number are within bounds",
    doc: "A buffer passes when min-size <= size <= max-size and sequence-min <= seq <= \
          sequence-max, every bound inclusive; -1 leaves an upper bound open. A minimum above \
          its maximum is refused.",
    pads: Pads::ONE_TO_ONE,
    props: &[
        PropSpec::uint("min-size", 0, 0, u64::MAX, "Smallest size passed, bytes"),
        PropSpec::int(
            "max-size",
            -1,
            -1,
            i64::MAX,
            "Largest size passed, bytes (-1 = no limit)",
        ),
        PropSpec::uint(
            "sequence-min",
            0,
            0,
            u64::MAX,
            "Smallest sequence number passed",
        ),
        PropSpec::int(
            "sequence-max",
            -1,
            -1,
            i64::MAX,
            "Largest sequence number passed (-1 = no limit)",
        ),
    ],
    hints: Hints::FUSABLE,
    build: |p| {
        let bounds = |min: &str, max: &str| -> Result<(u64, u64), ElementError> {
            let lo = p.uint(min)?;
            let hi = optional(p, max)?.unwrap_or(u64::MAX);
            if lo > hi {
                return Err(ElementError::Config(format!(
                    "property `{min}`: {lo} is above {max}={hi}, so nothing would pass"
                )));
            }
            Ok((lo, hi))
        };
        let (min_size, max_size) = bounds("min-size", "max-size")?;
        let (seq_min, seq_max) = bounds("sequence-min", "sequence-max")?;
        Ok(ElementImpl::Transform(Box::new(RangeFilter {
            size: min_size..=max_size,
            sequence: seq_min..=seq_max,
        })))
    },
};

/// rangefilter's state.
struct RangeFilter {
    size: std::ops::RangeInclusive<u64>,
    sequence: std::ops::RangeInclusive<u64>,
}

impl Transform for RangeFilter {
    fn process(&mut self, buf: Buffer, _cx: &mut Ctx<'_>) -> Result<Flow, ElementError> {
        let pass =
            self.size.contains(&(buf.len() as u64)) && self.sequence.contains(&buf.meta.sequence);
        Ok(if pass { Flow::Push(buf) } else { Flow::Drop })
    }
}

pub(crate) const FACTORIES: &[&Factory] = &[
    &FILTER,
    &REGEXFILTER,
    &SAMPLEFILTER,
    &DUPLICATEFILTER,
    &RANGEFILTER,
];

#[cfg(test)]
mod tests;
