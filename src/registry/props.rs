//! Property specs, typed values and their parsing from description text.
//!
//! Value syntax, by type: booleans `true/false/yes/no/on/off/1/0`; integers in decimal or `0x` hex
//! with an optional size suffix (`64KiB`, `4M` = 4 MiB, `4MB` = 4,000,000); floats; strings;
//! enums by nick or by number (as gst); times as `10ms`, `2s`, `1.5s`, `250us`, `100ns` or a
//! bare integer of nanoseconds (gst's unit).

use crate::caps::Caps;
use crate::element::ElementError;

/// One named value of an enum property.
#[derive(Debug, Clone, Copy)]
pub struct EnumValue {
    /// The nick used on the command line.
    pub nick: &'static str,
    /// gst's numeric value, also accepted on the command line.
    pub value: i64,
    /// What it means.
    pub doc: &'static str,
}

/// A property's type with its default and range.
#[derive(Debug, Clone, Copy)]
pub enum PropKind {
    /// true / false.
    Bool {
        /// Default.
        default: bool,
    },
    /// Signed integer.
    Int {
        /// Default.
        default: i64,
        /// Smallest accepted.
        min: i64,
        /// Largest accepted.
        max: i64,
    },
    /// Unsigned integer.
    UInt {
        /// Default.
        default: u64,
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
    },
    /// Floating point.
    Float {
        /// Default.
        default: f64,
        /// Smallest accepted.
        min: f64,
        /// Largest accepted.
        max: f64,
    },
    /// Text; `None` is gst's NULL default.
    Str {
        /// Default.
        default: Option<&'static str>,
    },
    /// One of a fixed set of nicks.
    Enum {
        /// Default nick.
        default: &'static str,
        /// Accepted values.
        values: &'static [EnumValue],
    },
    /// A duration in nanoseconds (`-1` is gst's "none" where the range allows it).
    Time {
        /// Default, ns.
        default: i64,
        /// Smallest accepted, ns.
        min: i64,
        /// Largest accepted, ns.
        max: i64,
    },
}

impl PropKind {
    /// The type name shown by inspect and in errors.
    pub fn type_name(&self) -> &'static str {
        match self {
            PropKind::Bool { .. } => "bool",
            PropKind::Int { .. } => "int",
            PropKind::UInt { .. } => "uint",
            PropKind::Float { .. } => "float",
            PropKind::Str { .. } => "string",
            PropKind::Enum { .. } => "enum",
            PropKind::Time { .. } => "time",
        }
    }

    /// The default as a value.
    pub fn default_value(&self) -> Value {
        match *self {
            PropKind::Bool { default } => Value::Bool(default),
            PropKind::Int { default, .. } => Value::Int(default),
            PropKind::UInt { default, .. } => Value::UInt(default),
            PropKind::Float { default, .. } => Value::Float(default),
            PropKind::Str { default } => Value::Str(default.map(str::to_owned)),
            PropKind::Enum { default, .. } => Value::Enum(default),
            PropKind::Time { default, .. } => Value::Time(default),
        }
    }
}

/// Whether setting a property changes what Parallax does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The value is used.
    Applied,
    /// Accepted so that pasted gst-launch lines run, with no effect here; the text says why.
    Ignored(&'static str),
    /// Reported by gst but not settable.
    ReadOnly,
}

/// What a property's value names outside the pipeline, for the checks that run before
/// anything is built (`--validate`, and the same-file check of every run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Nothing outside: a number, a mode, a name.
    Plain,
    /// A path the element opens for reading (filesrc's `location`).
    ReadsPath,
    /// A path the element creates or truncates (filesink's `location`).
    WritesPath,
    /// A comma-separated list of `host:port` (multiudpsink's `clients`).
    HostPorts,
    /// A unix socket the element listens at and removes when it ends (shmsink's
    /// `socket-path`); the parent removes it for a worker whose sandbox cannot.
    ListensAt,
}

/// One property of a factory.
#[derive(Debug, Clone, Copy)]
pub struct PropSpec {
    /// Kebab-case name, gst's spelling.
    pub name: &'static str,
    /// Type, default and range.
    pub kind: PropKind,
    /// One line for inspect and man.
    pub doc: &'static str,
    /// Applied, ignored or read-only.
    pub effect: Effect,
    /// Whether it may change while the pipeline runs.
    pub mutable_while_running: bool,
    /// Whether the description must set it (filesrc's `location`).
    pub required: bool,
    /// What the value names outside the pipeline, for checks before running.
    pub role: Role,
    /// A check of a string value beyond its type (a filter expression, a regex), run wherever
    /// the value is parsed, so a bad one is a description error before anything runs.
    pub check: Option<Check>,
}

/// Checks a string property's value: on refusal, where in the (unquoted) value the problem is,
/// as a byte offset when known, and what it is.
pub type Check = fn(&str) -> Result<(), (Option<usize>, String)>;

impl PropSpec {
    const fn new(name: &'static str, kind: PropKind, doc: &'static str) -> PropSpec {
        PropSpec {
            name,
            kind,
            doc,
            effect: Effect::Applied,
            mutable_while_running: false,
            required: false,
            role: Role::Plain,
            check: None,
        }
    }

    /// A boolean property.
    pub const fn bool(name: &'static str, default: bool, doc: &'static str) -> PropSpec {
        PropSpec::new(name, PropKind::Bool { default }, doc)
    }

    /// A signed integer property.
    pub const fn int(
        name: &'static str,
        default: i64,
        min: i64,
        max: i64,
        doc: &'static str,
    ) -> PropSpec {
        PropSpec::new(name, PropKind::Int { default, min, max }, doc)
    }

    /// An unsigned integer property.
    pub const fn uint(
        name: &'static str,
        default: u64,
        min: u64,
        max: u64,
        doc: &'static str,
    ) -> PropSpec {
        PropSpec::new(name, PropKind::UInt { default, min, max }, doc)
    }

    /// A float property.
    pub const fn float(
        name: &'static str,
        default: f64,
        min: f64,
        max: f64,
        doc: &'static str,
    ) -> PropSpec {
        PropSpec::new(name, PropKind::Float { default, min, max }, doc)
    }

    /// A string property.
    pub const fn string(
        name: &'static str,
        default: Option<&'static str>,
        doc: &'static str,
    ) -> PropSpec {
        PropSpec::new(name, PropKind::Str { default }, doc)
    }

    /// An enum property.
    pub const fn enumeration(
        name: &'static str,
        default: &'static str,
        values: &'static [EnumValue],
        doc: &'static str,
    ) -> PropSpec {
        PropSpec::new(name, PropKind::Enum { default, values }, doc)
    }

    /// A time property, in nanoseconds.
    pub const fn time(
        name: &'static str,
        default: i64,
        min: i64,
        max: i64,
        doc: &'static str,
    ) -> PropSpec {
        PropSpec::new(name, PropKind::Time { default, min, max }, doc)
    }

    /// Marks the property accepted-and-ignored, with the reason.
    pub const fn ignored(mut self, why: &'static str) -> PropSpec {
        self.effect = Effect::Ignored(why);
        self
    }

    /// Marks the property read-only.
    pub const fn read_only(mut self) -> PropSpec {
        self.effect = Effect::ReadOnly;
        self
    }

    /// Marks the property as one the description must set.
    pub const fn required(mut self) -> PropSpec {
        self.required = true;
        self
    }

    /// Marks the property as naming something outside the pipeline (see [`Role`]).
    pub const fn role(mut self, role: Role) -> PropSpec {
        self.role = role;
        self
    }

    /// Has every value checked by `check` when it is parsed (see [`Check`]).
    pub const fn checked(mut self, check: Check) -> PropSpec {
        self.check = Some(check);
        self
    }

    /// Marks the property changeable while running.
    pub const fn mutable(mut self) -> PropSpec {
        self.mutable_while_running = true;
        self
    }

    /// Parses `text` as a value of this property's type, checking its range.
    pub fn parse(&self, text: &str) -> Result<Value, ValueError> {
        let value = parse_value(&self.kind, text)?;
        if let (Some(check), Value::Str(Some(s))) = (self.check, &value) {
            check(s).map_err(|(at, message)| ValueError::Invalid { at, message })?;
        }
        Ok(value)
    }

    /// Human range text (`1..=4294967295`, `one of: a, b`), empty for unbounded types.
    pub fn range_text(&self) -> String {
        match &self.kind {
            PropKind::Int { min, max, .. } | PropKind::Time { min, max, .. } => {
                format!("{min}..={max}")
            }
            PropKind::UInt { min, max, .. } => format!("{min}..={max}"),
            PropKind::Float { min, max, .. } => format!("{min}..={max}"),
            PropKind::Enum { values, .. } => {
                let nicks: Vec<_> = values.iter().map(|v| v.nick).collect();
                format!("one of: {}", nicks.join(", "))
            }
            _ => String::new(),
        }
    }
}

/// A typed property value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Boolean.
    Bool(bool),
    /// Signed integer.
    Int(i64),
    /// Unsigned integer.
    UInt(u64),
    /// Float.
    Float(f64),
    /// String, `None` for NULL.
    Str(Option<String>),
    /// Enum nick.
    Enum(&'static str),
    /// Nanoseconds.
    Time(i64),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::UInt(u) => write!(f, "{u}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(Some(s)) => write!(f, "{s:?}"),
            Value::Str(None) => write!(f, "NULL"),
            Value::Enum(n) => write!(f, "{n}"),
            Value::Time(ns) => write!(f, "{}", format_time(*ns)),
        }
    }
}

/// Formats nanoseconds the way the parser reads them back.
pub fn format_time(ns: i64) -> String {
    match ns {
        -1 => "none".into(),
        0 => "0".into(),
        n if n % 1_000_000_000 == 0 => format!("{}s", n / 1_000_000_000),
        n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
        n if n % 1_000 == 0 => format!("{}us", n / 1_000),
        n => format!("{n}ns"),
    }
}

/// Why a value text was refused; rendered after "element: property `name`: ".
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    /// Not of the expected shape.
    #[error("expected {expected}, got `{got}`")]
    Expected {
        /// What would have been accepted.
        expected: String,
        /// What was given.
        got: String,
    },
    /// Refused by the property's own check (a filter expression that does not compile).
    #[error("{message}")]
    Invalid {
        /// Byte offset in the unquoted value where the problem is, when known.
        at: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// Well formed but outside the range.
    #[error("value {got} is out of range {range}")]
    OutOfRange {
        /// What was given.
        got: String,
        /// The accepted range.
        range: String,
    },
}

fn expected(what: impl Into<String>, got: &str) -> ValueError {
    ValueError::Expected {
        expected: what.into(),
        got: got.to_owned(),
    }
}

fn parse_value(kind: &PropKind, text: &str) -> Result<Value, ValueError> {
    let t = text.trim();
    match *kind {
        PropKind::Bool { .. } => match t.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "off" | "0" => Ok(Value::Bool(false)),
            _ => Err(expected("true or false", text)),
        },
        PropKind::Int { min, max, .. } => {
            let v = parse_int(t)
                .ok_or_else(|| expected("an integer (like 42, -1, 64KiB, 4M)", text))?;
            if v < i128::from(min) || v > i128::from(max) {
                return Err(ValueError::OutOfRange {
                    got: t.to_owned(),
                    range: format!("{min}..={max}"),
                });
            }
            Ok(Value::Int(v as i64))
        }
        PropKind::UInt { min, max, .. } => {
            let v = parse_int(t)
                .ok_or_else(|| expected("an unsigned integer (like 4096, 64KiB, 4M)", text))?;
            if v < i128::from(min) || v > i128::from(max) {
                return Err(ValueError::OutOfRange {
                    got: t.to_owned(),
                    range: format!("{min}..={max}"),
                });
            }
            Ok(Value::UInt(v as u64))
        }
        PropKind::Float { min, max, .. } => {
            let v: f64 = t
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| expected("a number (like 0.5)", text))?;
            if v < min || v > max {
                return Err(ValueError::OutOfRange {
                    got: t.to_owned(),
                    range: format!("{min}..={max}"),
                });
            }
            Ok(Value::Float(v))
        }
        PropKind::Str { .. } => Ok(Value::Str(Some(text.to_owned()))),
        PropKind::Enum { values, .. } => {
            let found = values
                .iter()
                .find(|v| v.nick.eq_ignore_ascii_case(t))
                .or_else(|| {
                    t.parse::<i64>()
                        .ok()
                        .and_then(|n| values.iter().find(|v| v.value == n))
                });
            match found {
                Some(v) => Ok(Value::Enum(v.nick)),
                None => {
                    let nicks: Vec<_> = values.iter().map(|v| v.nick).collect();
                    Err(expected(format!("one of {}", nicks.join(", ")), text))
                }
            }
        }
        PropKind::Time { min, max, .. } => {
            let v = parse_time(t)
                .ok_or_else(|| expected("a time (like 10ms, 2s, 1.5s, or nanoseconds)", text))?;
            if v < i128::from(min) || v > i128::from(max) {
                return Err(ValueError::OutOfRange {
                    got: t.to_owned(),
                    range: format!("{}..={}", format_time(min), format_time(max)),
                });
            }
            Ok(Value::Time(v as i64))
        }
    }
}

/// Integers: decimal or `0x` hex, optional sign, optional size suffix.
fn parse_int(t: &str) -> Option<i128> {
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (digits, mult): (&str, i128) =
        if let Some(hex) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
            (hex, 1)
        } else {
            let split = body
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(body.len());
            let (num, suffix) = body.split_at(split);
            let mult = match suffix {
                "" => 1,
                "k" | "K" | "KiB" | "kiB" => 1 << 10,
                "M" | "MiB" => 1 << 20,
                "G" | "GiB" => 1 << 30,
                "T" | "TiB" => 1 << 40,
                "kB" | "KB" => 1_000,
                "MB" => 1_000_000,
                "GB" => 1_000_000_000,
                "TB" => 1_000_000_000_000,
                _ => return None,
            };
            (num, mult)
        };
    if digits.is_empty() || digits.len() > 30 {
        return None;
    }
    let radix = if body.starts_with("0x") || body.starts_with("0X") {
        16
    } else {
        10
    };
    let v = i128::from_str_radix(digits, radix)
        .ok()?
        .checked_mul(mult)?;
    Some(if neg { -v } else { v })
}

/// Times: `none`/`-1`, bare nanoseconds, or a decimal with a unit (ns, us, ms, s, min, h).
fn parse_time(t: &str) -> Option<i128> {
    if t.eq_ignore_ascii_case("none") || t == "-1" {
        return Some(-1);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() || num.len() > 30 {
        return None;
    }
    let scale: i128 = match unit.trim() {
        "" | "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "min" | "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    match num.split_once('.') {
        None => num.parse::<i128>().ok()?.checked_mul(scale),
        Some((whole, frac)) => {
            if frac.contains('.') || whole.is_empty() && frac.is_empty() {
                return None;
            }
            let w: i128 = if whole.is_empty() {
                0
            } else {
                whole.parse().ok()?
            };
            let frac = &frac[..frac.len().min(18)];
            let f: i128 = if frac.is_empty() {
                0
            } else {
                frac.parse().ok()?
            };
            let denom = 10i128.checked_pow(frac.len() as u32)?;
            w.checked_mul(scale)?
                .checked_add(f.checked_mul(scale)? / denom)
        }
    }
}

/// What an instance's caps are before negotiation, and on a byte stream.
static ANY: Caps = Caps::Any;

/// The value of a property marked mutable while running, shared between the running element
/// and whoever changes it (the control socket): one atomic word the element reads between
/// buffers with an acquire load (a plain load on x86), never a lock. Booleans are 0 or 1, floats their bits, integers
/// and times their value, enums their number, a selector's `active-pad` its pad number.
#[derive(Debug, Clone, Default)]
pub struct LiveValue(pub(crate) std::sync::Arc<std::sync::atomic::AtomicU64>);

impl LiveValue {
    fn new(bits: u64) -> LiveValue {
        LiveValue(std::sync::Arc::new(std::sync::atomic::AtomicU64::new(bits)))
    }

    /// The raw word.
    pub fn bits(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Stores the raw word.
    pub fn store_bits(&self, bits: u64) {
        self.0.store(bits, std::sync::atomic::Ordering::Release);
    }

    /// The word a value is stored as (`None` for a string, which has no number).
    pub fn encode(kind: &PropKind, value: &Value) -> Option<u64> {
        Some(match (kind, value) {
            (_, Value::Bool(b)) => u64::from(*b),
            (_, Value::Int(i) | Value::Time(i)) => *i as u64,
            (_, Value::UInt(u)) => *u,
            (_, Value::Float(x)) => x.to_bits(),
            (PropKind::Enum { values, .. }, Value::Enum(nick)) => {
                values.iter().find(|v| v.nick == *nick)?.value as u64
            }
            _ => return None,
        })
    }

    /// The value a word stands for (`None` for a string: the element knows its meaning).
    pub fn decode(kind: &PropKind, bits: u64) -> Option<Value> {
        Some(match kind {
            PropKind::Bool { .. } => Value::Bool(bits != 0),
            PropKind::Int { .. } => Value::Int(bits as i64),
            PropKind::Time { .. } => Value::Time(bits as i64),
            PropKind::UInt { .. } => Value::UInt(bits),
            PropKind::Float { .. } => Value::Float(f64::from_bits(bits)),
            PropKind::Enum { values, .. } => {
                Value::Enum(values.iter().find(|v| v.value as u64 == bits)?.nick)
            }
            PropKind::Str { .. } => return None,
        })
    }
}

/// A boolean property an element reads while it runs (valve's `drop`).
#[derive(Debug, Clone)]
pub struct LiveBool(LiveValue);

impl LiveBool {
    /// The value now.
    #[inline]
    pub fn get(&self) -> bool {
        self.0.bits() != 0
    }
}

/// A float property an element reads while it runs (volume's `volume`).
#[derive(Debug, Clone)]
pub struct LiveFloat(LiveValue);

impl LiveFloat {
    /// The value now.
    #[inline]
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.bits())
    }
}

/// An unsigned integer property an element reads while it runs (identity's `sleep-time`,
/// a rate limit).
#[derive(Debug, Clone)]
pub struct LiveUInt(LiveValue);

impl LiveUInt {
    /// The value now.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.bits()
    }
}

/// The validated properties of one element instance: every spec of the factory, with the
/// default where the description set nothing.
#[derive(Debug, Clone)]
pub struct Props {
    /// The shared words of the properties marked mutable while running, by name.
    live: Vec<(&'static str, LiveValue)>,
    element: String,
    /// The instance name in the pipeline (`fakesink0`), where `element` may be the factory's.
    instance: String,
    values: Vec<(&'static PropSpec, Value, bool)>,
    /// The caps negotiated on the sink and src pads, once the graph is validated.
    caps: Option<Box<(Caps, Caps)>>,
    /// What a program embedding the pipeline handed this instance (an appsrc's channel, a
    /// typed stage's closure): not a property, never written in a description.
    attached: Option<std::sync::Arc<dyn std::any::Any + Send + Sync>>,
}

impl Props {
    /// Every property at its default.
    pub fn defaults(element: &str, specs: &'static [PropSpec]) -> Props {
        Props {
            live: specs
                .iter()
                .filter(|s| s.mutable_while_running)
                .map(|s| {
                    let bits = LiveValue::encode(&s.kind, &s.kind.default_value()).unwrap_or(0);
                    (s.name, LiveValue::new(bits))
                })
                .collect(),
            element: element.to_owned(),
            instance: element.to_owned(),
            values: specs
                .iter()
                .map(|s| (s, s.kind.default_value(), false))
                .collect(),
            caps: None,
            attached: None,
        }
    }

    /// Hands the instance something from the program that embeds the pipeline (see
    /// [`Props::attached`]).
    pub fn attach(&mut self, value: std::sync::Arc<dyn std::any::Any + Send + Sync>) {
        self.attached = Some(value);
    }

    /// What the program attached to this instance, if it is a `T`.
    pub fn attached<T: std::any::Any + Send + Sync>(&self) -> Option<std::sync::Arc<T>> {
        self.attached.clone().and_then(|a| a.downcast::<T>().ok())
    }

    /// Sets an already parsed value.
    pub fn set(&mut self, name: &str, value: Value) -> bool {
        match self.values.iter_mut().find(|(s, _, _)| s.name == name) {
            Some(entry) => {
                if let Some((_, live)) = self.live.iter().find(|(n, _)| *n == name) {
                    if let Some(bits) = LiveValue::encode(&entry.0.kind, &value) {
                        live.store_bits(bits);
                    }
                }
                entry.1 = value;
                entry.2 = true;
                true
            }
            None => false,
        }
    }

    /// Records the caps negotiated for the instance: what comes in and what goes out.
    pub fn set_caps(&mut self, sink: Caps, src: Caps) {
        self.caps = Some(Box::new((sink, src)));
    }

    /// The caps negotiated on the sink pad: fixed, or ANY for a byte stream (and before
    /// negotiation).
    pub fn sink_caps(&self) -> &Caps {
        self.caps.as_ref().map_or(&ANY, |c| &c.0)
    }

    /// The caps negotiated on the src pad: fixed, or ANY for a byte stream.
    pub fn src_caps(&self) -> &Caps {
        self.caps.as_ref().map_or(&ANY, |c| &c.1)
    }

    /// The name errors about these properties use: the `name=` given, else the factory's.
    pub fn element(&self) -> &str {
        &self.element
    }

    /// Sets the instance's name in the pipeline (`fakesink0`, or the `name=` given).
    pub fn with_instance(mut self, name: &str) -> Props {
        self.instance = name.to_owned();
        self
    }

    /// The instance's name in the pipeline (`fakesink0`, or the `name=` given): what an element
    /// prints about itself (fakesink's last-message).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Properties set explicitly in the description, with their values.
    pub fn explicit(&self) -> impl Iterator<Item = (&'static PropSpec, &Value)> {
        self.values
            .iter()
            .filter(|(_, _, e)| *e)
            .map(|(s, v, _)| (*s, v))
    }

    /// Every property with its value and whether the description set it.
    pub fn all(&self) -> impl Iterator<Item = (&'static PropSpec, &Value, bool)> {
        self.values.iter().map(|(s, v, e)| (*s, v, *e))
    }

    /// Whether `name` was set explicitly.
    pub fn is_set(&self, name: &str) -> bool {
        self.values.iter().any(|(s, _, e)| *e && s.name == name)
    }

    fn value(&self, name: &str) -> Result<&Value, ElementError> {
        self.values
            .iter()
            .find(|(s, _, _)| s.name == name)
            .map(|(_, v, _)| v)
            .ok_or_else(|| ElementError::Config(format!("{}: no property `{name}`", self.element)))
    }

    fn wrong_type(&self, name: &str, want: &str) -> ElementError {
        ElementError::Config(format!(
            "{}: property `{name}` is not a {want}",
            self.element
        ))
    }

    /// The shared word of a property marked mutable while running (`None` for any other).
    pub fn live(&self, name: &str) -> Option<&LiveValue> {
        self.live.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    fn live_or_err(&self, name: &str) -> Result<&LiveValue, ElementError> {
        self.live(name).ok_or_else(|| {
            ElementError::Config(format!(
                "{}: property `{name}` is not mutable while running",
                self.element
            ))
        })
    }

    /// A boolean property marked mutable, read live while running.
    pub fn live_bool(&self, name: &str) -> Result<LiveBool, ElementError> {
        self.bool(name)?;
        Ok(LiveBool(self.live_or_err(name)?.clone()))
    }

    /// A float property marked mutable, read live while running.
    pub fn live_float(&self, name: &str) -> Result<LiveFloat, ElementError> {
        self.float(name)?;
        Ok(LiveFloat(self.live_or_err(name)?.clone()))
    }

    /// An unsigned integer property marked mutable, read live while running.
    pub fn live_uint(&self, name: &str) -> Result<LiveUInt, ElementError> {
        self.uint(name)?;
        Ok(LiveUInt(self.live_or_err(name)?.clone()))
    }

    /// The shared word of a mutable property whose element keeps its own meaning in it (a
    /// selector's pad number), after storing `initial` in it.
    pub fn live_word(&self, name: &str, initial: u64) -> Result<LiveValue, ElementError> {
        let live = self.live_or_err(name)?;
        live.store_bits(initial);
        Ok(live.clone())
    }

    /// A boolean property.
    pub fn bool(&self, name: &str) -> Result<bool, ElementError> {
        match self.value(name)? {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.wrong_type(name, "bool")),
        }
    }

    /// A signed integer property.
    pub fn int(&self, name: &str) -> Result<i64, ElementError> {
        match self.value(name)? {
            Value::Int(i) => Ok(*i),
            _ => Err(self.wrong_type(name, "int")),
        }
    }

    /// An unsigned integer property.
    pub fn uint(&self, name: &str) -> Result<u64, ElementError> {
        match self.value(name)? {
            Value::UInt(u) => Ok(*u),
            _ => Err(self.wrong_type(name, "uint")),
        }
    }

    /// A float property.
    pub fn float(&self, name: &str) -> Result<f64, ElementError> {
        match self.value(name)? {
            Value::Float(x) => Ok(*x),
            _ => Err(self.wrong_type(name, "float")),
        }
    }

    /// A string property (`None` when NULL).
    pub fn string(&self, name: &str) -> Result<Option<&str>, ElementError> {
        match self.value(name)? {
            Value::Str(s) => Ok(s.as_deref()),
            _ => Err(self.wrong_type(name, "string")),
        }
    }

    /// An enum property's nick.
    pub fn nick(&self, name: &str) -> Result<&'static str, ElementError> {
        match self.value(name)? {
            Value::Enum(n) => Ok(n),
            _ => Err(self.wrong_type(name, "enum")),
        }
    }

    /// A time property in nanoseconds (`-1` = none).
    pub fn time(&self, name: &str) -> Result<i64, ElementError> {
        match self.value(name)? {
            Value::Time(t) => Ok(*t),
            _ => Err(self.wrong_type(name, "time")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_take_size_suffixes_and_hex() {
        assert_eq!(parse_int("4096"), Some(4096));
        assert_eq!(parse_int("64KiB"), Some(65536));
        assert_eq!(parse_int("64k"), Some(65536));
        assert_eq!(parse_int("4M"), Some(4 << 20));
        assert_eq!(parse_int("4MB"), Some(4_000_000));
        assert_eq!(parse_int("1G"), Some(1 << 30));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("0x10"), Some(16));
        assert_eq!(parse_int("12x"), None);
        assert_eq!(parse_int(""), None);
        assert_eq!(parse_int("99999999999999999999999999999999999"), None);
    }

    #[test]
    fn times_take_units() {
        assert_eq!(parse_time("10ms"), Some(10_000_000));
        assert_eq!(parse_time("2s"), Some(2_000_000_000));
        assert_eq!(parse_time("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_time("250us"), Some(250_000));
        assert_eq!(parse_time("42"), Some(42));
        assert_eq!(parse_time("none"), Some(-1));
        assert_eq!(parse_time("1..5s"), None);
        assert_eq!(parse_time("s"), None);
        assert_eq!(parse_time("5 parsecs"), None);
    }

    #[test]
    fn values_are_typed_and_range_checked() {
        let b = PropSpec::bool("drop", false, "d");
        assert_eq!(b.parse("yes"), Ok(Value::Bool(true)));
        assert_eq!(b.parse("0"), Ok(Value::Bool(false)));
        assert_eq!(
            b.parse("maybe").unwrap_err().to_string(),
            "expected true or false, got `maybe`"
        );
        let u = PropSpec::uint("blocksize", 4096, 1, u32::MAX as u64, "d");
        assert_eq!(u.parse("64KiB"), Ok(Value::UInt(65536)));
        assert_eq!(
            u.parse("0").unwrap_err().to_string(),
            "value 0 is out of range 1..=4294967295"
        );
        assert!(u.parse("-5").is_err());
        const V: &[EnumValue] = &[
            EnumValue {
                nick: "empty",
                value: 1,
                doc: "",
            },
            EnumValue {
                nick: "fixed",
                value: 2,
                doc: "",
            },
        ];
        let e = PropSpec::enumeration("sizetype", "empty", V, "d");
        assert_eq!(e.parse("fixed"), Ok(Value::Enum("fixed")));
        assert_eq!(e.parse("2"), Ok(Value::Enum("fixed")));
        assert_eq!(
            e.parse("huge").unwrap_err().to_string(),
            "expected one of empty, fixed, got `huge`"
        );
        let t = PropSpec::time("sleep", 0, 0, i64::MAX, "d");
        assert_eq!(t.parse("10ms"), Ok(Value::Time(10_000_000)));
        let f = PropSpec::float("p", 0.0, 0.0, 1.0, "d");
        assert!(f.parse("NaN").is_err());
        assert!(f.parse("1.5").is_err());
    }
}

#[cfg(test)]
mod live_tests {
    use super::*;

    #[test]
    fn live_words_round_trip_every_kind() {
        let kinds_values = [
            (PropKind::Bool { default: false }, Value::Bool(true)),
            (
                PropKind::Float {
                    default: 1.0,
                    min: 0.0,
                    max: 10.0,
                },
                Value::Float(0.25),
            ),
            (
                PropKind::Int {
                    default: 0,
                    min: -5,
                    max: 5,
                },
                Value::Int(-3),
            ),
            (
                PropKind::UInt {
                    default: 0,
                    min: 0,
                    max: 9,
                },
                Value::UInt(7),
            ),
        ];
        for (kind, value) in kinds_values {
            let bits = LiveValue::encode(&kind, &value).unwrap();
            assert_eq!(LiveValue::decode(&kind, bits), Some(value));
        }
    }

    #[test]
    fn a_value_set_before_the_build_is_what_the_element_reads() {
        static SPECS: [PropSpec; 2] = [
            PropSpec::bool("drop", false, "d").mutable(),
            PropSpec::bool("fixed", false, "f"),
        ];
        let mut p = Props::defaults("valve", &SPECS);
        assert!(p.set("drop", Value::Bool(true)));
        let live = p.live_bool("drop").unwrap();
        assert!(live.get());
        p.live("drop").unwrap().store_bits(0);
        assert!(!live.get());
        assert!(p.live_bool("fixed").is_err());
    }
}
