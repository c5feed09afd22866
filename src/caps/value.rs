//! One field's value in a caps structure, and gst's rules for it: intersection, subset,
//! fixedness and fixation (`gst_value_intersect`, `gst_value_is_subset`, `gst_value_fixate`).
//!
//! Values of different types never intersect (an `(int)` is not a `(double)`), as in gst. A
//! range whose ends meet collapses to the one value, and a list of one value to the value, so
//! that a fixed value has a single spelling.

use std::cmp::Ordering;
use std::fmt;

/// A fraction, kept reduced with a positive denominator (`30/1`, `30000/1001`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fraction {
    /// Numerator.
    pub num: i32,
    /// Denominator, always positive.
    pub den: i32,
}

impl Fraction {
    /// `num/den` reduced; `None` for a zero denominator.
    pub fn new(num: i32, den: i32) -> Option<Fraction> {
        if den == 0 {
            return None;
        }
        let (mut n, mut d) = (num as i64, den as i64);
        if d < 0 {
            n = -n;
            d = -d;
        }
        let g = gcd(n.unsigned_abs(), d as u64).max(1) as i64;
        Some(Fraction {
            num: i32::try_from(n / g).ok()?,
            den: i32::try_from(d / g).ok()?,
        })
    }

    /// As a float, for nearest-value fixation and for elements' arithmetic.
    pub fn as_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

impl Ord for Fraction {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.num as i64 * other.den as i64).cmp(&(other.num as i64 * self.den as i64))
    }
}

impl PartialOrd for Fraction {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Fraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

pub(crate) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// One value: fixed (a number, a string...), a range, a list of alternatives, or an array.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `(int)640`; gst's `(int)`, `(uint)`, `(int64)` all land here.
    Int(i64),
    /// `(int)[ 1, 30 ]`, or `[ 0, 30, 2 ]` with a step; `min < max`, both on the step.
    IntRange {
        /// Smallest.
        min: i64,
        /// Largest.
        max: i64,
        /// Distance between members, at least 1.
        step: i64,
    },
    /// `(double)1.5`; never NaN or infinite.
    Double(f64),
    /// `(double)[ 0.5, 2.0 ]`, `min < max`.
    DoubleRange(f64, f64),
    /// `(fraction)30/1`.
    Fraction(Fraction),
    /// `(fraction)[ 0/1, 2147483647/1 ]`, `min < max`.
    FractionRange(Fraction, Fraction),
    /// `(boolean)true`.
    Bool(bool),
    /// `(string)I420`.
    Str(String),
    /// `(bitmask)0x3`: a set of bits; intersection is the common bits, as in gst.
    Bitmask(u64),
    /// `{ I420, NV12 }`: any one of these, in order of preference; at least two.
    List(Vec<Value>),
    /// `< 1, 2 >`: an ordered array, one fixed value as a whole.
    Array(Vec<Value>),
}

// Doubles are never NaN (the parser refuses them), so equality is total.
impl Eq for Value {}

impl Value {
    /// An int range, collapsed to the int when its ends meet; `None` when empty.
    pub fn int_range(min: i64, max: i64, step: i64) -> Option<Value> {
        let step = step.max(1);
        let max = min + (max - min).div_euclid(step) * step;
        match min.cmp(&max) {
            Ordering::Less => Some(Value::IntRange { min, max, step }),
            Ordering::Equal => Some(Value::Int(min)),
            Ordering::Greater => None,
        }
    }

    /// A double range, collapsed or `None` like [`Value::int_range`].
    pub fn double_range(min: f64, max: f64) -> Option<Value> {
        match min.partial_cmp(&max)? {
            Ordering::Less => Some(Value::DoubleRange(min, max)),
            Ordering::Equal => Some(Value::Double(min)),
            Ordering::Greater => None,
        }
    }

    /// A fraction range, collapsed or `None` like [`Value::int_range`].
    pub fn fraction_range(min: Fraction, max: Fraction) -> Option<Value> {
        match min.cmp(&max) {
            Ordering::Less => Some(Value::FractionRange(min, max)),
            Ordering::Equal => Some(Value::Fraction(min)),
            Ordering::Greater => None,
        }
    }

    /// A list, without repeats, collapsed to its one member; `None` when empty.
    pub fn list(values: Vec<Value>) -> Option<Value> {
        let mut out: Vec<Value> = Vec::with_capacity(values.len());
        for v in values {
            match v {
                Value::List(inner) => {
                    for v in inner {
                        if !out.contains(&v) {
                            out.push(v);
                        }
                    }
                }
                v if !out.contains(&v) => out.push(v),
                _ => {}
            }
        }
        match out.len() {
            0 => None,
            1 => out.pop(),
            _ => Some(Value::List(out)),
        }
    }

    /// gst's type name, as written in `(int)`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) | Value::IntRange { .. } => "int",
            Value::Double(_) | Value::DoubleRange(..) => "double",
            Value::Fraction(_) | Value::FractionRange(..) => "fraction",
            Value::Bool(_) => "boolean",
            Value::Str(_) => "string",
            Value::Bitmask(_) => "bitmask",
            Value::List(v) | Value::Array(v) => v.first().map_or("string", Value::type_name),
        }
    }

    /// Whether this is one value (no range, no list of alternatives).
    pub fn is_fixed(&self) -> bool {
        match self {
            Value::IntRange { .. }
            | Value::DoubleRange(..)
            | Value::FractionRange(..)
            | Value::List(_) => false,
            Value::Array(v) => v.iter().all(Value::is_fixed),
            _ => true,
        }
    }

    /// gst's default fixation: the first of a list, the smallest of a range.
    pub fn fixate(&self) -> Value {
        match self {
            Value::IntRange { min, .. } => Value::Int(*min),
            Value::DoubleRange(min, _) => Value::Double(*min),
            Value::FractionRange(min, _) => Value::Fraction(*min),
            Value::List(v) => v.first().map_or_else(|| self.clone(), Value::fixate),
            Value::Array(v) => Value::Array(v.iter().map(Value::fixate).collect()),
            v => v.clone(),
        }
    }

    /// The values both allow, or `None` when they share none.
    pub fn intersect(&self, other: &Value) -> Option<Value> {
        use Value::*;
        match (self, other) {
            (List(xs), y) => Value::list(xs.iter().filter_map(|x| x.intersect(y)).collect()),
            (x, List(ys)) => Value::list(ys.iter().filter_map(|y| x.intersect(y)).collect()),
            (Int(a), Int(b)) => (a == b).then_some(Int(*a)),
            (Int(a), r @ IntRange { .. }) | (r @ IntRange { .. }, Int(a)) => {
                r.contains_int(*a).then_some(Int(*a))
            }
            (
                IntRange {
                    min: a0,
                    max: a1,
                    step: sa,
                },
                IntRange {
                    min: b0,
                    max: b1,
                    step: sb,
                },
            ) => {
                let step = lcm(*sa, *sb)?;
                let lo = *a0.max(b0);
                let hi = *a1.min(b1);
                // The first value at or above `lo` on both steps; gst gives up the same way
                // when the steps make this search long.
                let first = (0..step.min(4096))
                    .map(|k| lo + k)
                    .find(|v| (v - a0) % sa == 0 && (v - b0) % sb == 0)?;
                Value::int_range(first, hi, step)
            }
            (Double(a), Double(b)) => (a == b).then_some(Double(*a)),
            (Double(a), DoubleRange(lo, hi)) | (DoubleRange(lo, hi), Double(a)) => {
                (lo <= a && a <= hi).then_some(Double(*a))
            }
            (DoubleRange(a0, a1), DoubleRange(b0, b1)) => {
                Value::double_range(a0.max(*b0), a1.min(*b1))
            }
            (Fraction(a), Fraction(b)) => (a == b).then_some(Fraction(*a)),
            (Fraction(a), FractionRange(lo, hi)) | (FractionRange(lo, hi), Fraction(a)) => {
                (lo <= a && a <= hi).then_some(Fraction(*a))
            }
            (FractionRange(a0, a1), FractionRange(b0, b1)) => {
                Value::fraction_range(*a0.max(b0), *a1.min(b1))
            }
            (Bitmask(a), Bitmask(b)) => Some(Bitmask(a & b)),
            (a, b) if a.is_fixed() && a == b => Some(a.clone()),
            _ => None,
        }
    }

    /// Whether every value `self` allows, `other` allows too.
    pub fn is_subset(&self, other: &Value) -> bool {
        use Value::*;
        match (self, other) {
            (List(xs), y) => xs.iter().all(|x| x.is_subset(y)),
            (x, List(ys)) => ys.iter().any(|y| x.is_subset(y)),
            (Int(a), r @ IntRange { .. }) => r.contains_int(*a),
            (
                IntRange {
                    min: a0,
                    max: a1,
                    step: sa,
                },
                IntRange {
                    min: b0,
                    max: b1,
                    step: sb,
                },
            ) => a0 >= b0 && a1 <= b1 && sa % sb == 0 && (a0 - b0) % sb == 0,
            (Double(a), DoubleRange(lo, hi)) => lo <= a && a <= hi,
            (DoubleRange(a0, a1), DoubleRange(b0, b1)) => a0 >= b0 && a1 <= b1,
            (Fraction(a), FractionRange(lo, hi)) => lo <= a && a <= hi,
            (FractionRange(a0, a1), FractionRange(b0, b1)) => a0 >= b0 && a1 <= b1,
            (Bitmask(a), Bitmask(b)) => a & b == *a,
            (a, b) => a.is_fixed() && a == b,
        }
    }

    fn contains_int(&self, v: i64) -> bool {
        match self {
            Value::IntRange { min, max, step } => *min <= v && v <= *max && (v - min) % step == 0,
            Value::Int(a) => *a == v,
            _ => false,
        }
    }

    /// Fixes to the allowed int nearest `target` (gst_structure_fixate_field_nearest_int);
    /// `None` when this is not an int value.
    pub fn nearest_int(&self, target: i64) -> Option<i64> {
        match self {
            Value::Int(a) => Some(*a),
            Value::IntRange { min, max, step } => {
                let t = target.clamp(*min, *max);
                let below = min + (t - min) / step * step;
                let above = (below + step).min(*max);
                Some(if t - below <= above - t { below } else { above })
            }
            Value::List(v) => v
                .iter()
                .filter_map(|v| v.nearest_int(target))
                .min_by_key(|v| v.abs_diff(target)),
            _ => None,
        }
    }

    /// Fixes to the allowed fraction nearest `target`; `None` when this is not a fraction.
    pub fn nearest_fraction(&self, target: Fraction) -> Option<Fraction> {
        match self {
            Value::Fraction(a) => Some(*a),
            Value::FractionRange(lo, hi) => Some(target.clamp(*lo, *hi)),
            Value::List(v) => v
                .iter()
                .filter_map(|v| v.nearest_fraction(target))
                .min_by(|a, b| {
                    let da = (a.as_f64() - target.as_f64()).abs();
                    let db = (b.as_f64() - target.as_f64()).abs();
                    da.total_cmp(&db)
                }),
            _ => None,
        }
    }

    /// Fixes to the allowed double nearest `target`; `None` when this is not a double.
    pub fn nearest_double(&self, target: f64) -> Option<f64> {
        match self {
            Value::Double(a) => Some(*a),
            Value::DoubleRange(lo, hi) => Some(target.clamp(*lo, *hi)),
            Value::List(v) => v
                .iter()
                .filter_map(|v| v.nearest_double(target))
                .min_by(|a, b| (a - target).abs().total_cmp(&(b - target).abs())),
            _ => None,
        }
    }

    /// Writes the value without its `(type)` prefix.
    fn write_bare(&self, f: &mut fmt::Formatter<'_>, typed_members: bool) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::IntRange { min, max, step: 1 } => write!(f, "[ {min}, {max} ]"),
            Value::IntRange { min, max, step } => write!(f, "[ {min}, {max}, {step} ]"),
            Value::Double(v) => write_double(f, *v),
            Value::DoubleRange(a, b) => {
                f.write_str("[ ")?;
                write_double(f, *a)?;
                f.write_str(", ")?;
                write_double(f, *b)?;
                f.write_str(" ]")
            }
            Value::Fraction(v) => write!(f, "{v}"),
            Value::FractionRange(a, b) => write!(f, "[ {a}, {b} ]"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Str(s) => write_string(f, s),
            Value::Bitmask(v) => write!(f, "0x{v:016x}"),
            Value::List(v) | Value::Array(v) => {
                let (open, close) = match self {
                    Value::List(_) => ("{ ", " }"),
                    _ => ("< ", " >"),
                };
                f.write_str(open)?;
                for (n, member) in v.iter().enumerate() {
                    if n > 0 {
                        f.write_str(", ")?;
                    }
                    if typed_members {
                        write!(f, "{member}")?;
                    } else {
                        member.write_bare(f, false)?;
                    }
                }
                f.write_str(close)
            }
        }
    }
}

fn lcm(a: i64, b: i64) -> Option<i64> {
    let g = gcd(a.unsigned_abs(), b.unsigned_abs()).max(1) as i64;
    (a / g).checked_mul(b)
}

fn write_double(f: &mut fmt::Formatter<'_>, v: f64) -> fmt::Result {
    // A double always shows a point, so that it reads back as a double.
    if v.fract() == 0.0 && v.abs() < 1e15 {
        write!(f, "{v:.1}")
    } else {
        write!(f, "{v}")
    }
}

/// Whether `c` may appear in an unquoted string (gst's `gst_structure_parse_simple_string`).
pub(crate) fn is_simple_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '/' | ':' | '.')
}

fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    if !s.is_empty() && s.chars().all(is_simple_char) {
        return f.write_str(s);
    }
    f.write_str("\"")?;
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

impl fmt::Display for Value {
    /// gst's serialisation: `(int)640`, `(string){ I420, NV12 }`, `(fraction)[ 1/1, 30/1 ]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::List(v) | Value::Array(v) => {
                let first = v.first().map(Value::type_name);
                let same = v
                    .iter()
                    .all(|m| Some(m.type_name()) == first && m.is_fixed());
                if same {
                    write!(f, "({})", first.unwrap_or("string"))?;
                }
                self.write_bare(f, !same)
            }
            _ => {
                write!(f, "({})", self.type_name())?;
                self.write_bare(f, false)
            }
        }
    }
}
