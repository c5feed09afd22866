//! Caps: what a stream carries (`audio/x-raw, format=(string)S16LE, rate=(int)44100`), as gst
//! writes them, with gst's algebra: [`Caps::intersect`], [`Caps::is_subset`] and
//! [`Caps::fixate`].
//!
//! Caps are [`Caps::Any`] (a byte stream: anything), or a list of [`Structure`]s, any one of which
//! the stream may be; none at all is EMPTY (nothing fits). A structure is a media type, optional
//! caps features (`video/x-raw(memory:SystemMemory)`) and fields; a field absent from a structure
//! allows any value. Caps are worked out once, when the description is validated
//! (`graph::negotiate`), never per buffer.

mod parse;
mod value;

pub use parse::CapsError;
pub use value::{Fraction, Value};

use std::fmt;

/// The features every structure has when it names none: plain memory.
pub const SYSTEM_MEMORY: &str = "memory:SystemMemory";

/// One alternative of a caps: a media type with features and fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structure {
    /// The media type (`video/x-raw`).
    pub name: String,
    /// Caps features, sorted; empty means `memory:SystemMemory`.
    pub features: Vec<String>,
    /// Fields in the order written.
    pub fields: Vec<(String, Value)>,
}

impl Structure {
    /// A structure with no fields.
    pub fn new(name: &str) -> Structure {
        Structure {
            name: name.to_owned(),
            features: Vec::new(),
            fields: Vec::new(),
        }
    }

    /// Adds or replaces a field.
    pub fn with(mut self, field: &str, value: Value) -> Structure {
        self.set(field, value);
        self
    }

    /// The value of `field`, if the structure has it.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == field).map(|(_, v)| v)
    }

    /// Sets `field`, replacing its value where it has one.
    pub fn set(&mut self, field: &str, value: Value) {
        match self.fields.iter_mut().find(|(k, _)| k == field) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((field.to_owned(), value)),
        }
    }

    /// Removes `field` (so that any value is allowed).
    pub fn remove(&mut self, field: &str) {
        self.fields.retain(|(k, _)| k != field);
    }

    /// A fixed int field.
    pub fn int(&self, field: &str) -> Option<i64> {
        match self.get(field)? {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// A fixed string field.
    pub fn string(&self, field: &str) -> Option<&str> {
        match self.get(field)? {
            Value::Str(v) => Some(v),
            _ => None,
        }
    }

    /// A fixed fraction field.
    pub fn fraction(&self, field: &str) -> Option<Fraction> {
        match self.get(field)? {
            Value::Fraction(v) => Some(*v),
            _ => None,
        }
    }

    /// A fixed bitmask field.
    pub fn bitmask(&self, field: &str) -> Option<u64> {
        match self.get(field)? {
            Value::Bitmask(v) => Some(*v),
            _ => None,
        }
    }

    /// Whether every field holds one value.
    pub fn is_fixed(&self) -> bool {
        self.fields.iter().all(|(_, v)| v.is_fixed())
    }

    /// The structure both allow, or `None`: same media type and features, and every field both
    /// have intersects; a field only one has is kept as it is.
    pub fn intersect(&self, other: &Structure) -> Option<Structure> {
        if self.name != other.name || self.features != other.features {
            return None;
        }
        let mut out = Structure {
            name: self.name.clone(),
            features: self.features.clone(),
            fields: Vec::with_capacity(self.fields.len() + other.fields.len()),
        };
        for (k, v) in &self.fields {
            let v = match other.get(k) {
                Some(w) => v.intersect(w)?,
                None => v.clone(),
            };
            out.fields.push((k.clone(), v));
        }
        for (k, w) in &other.fields {
            if self.get(k).is_none() {
                out.fields.push((k.clone(), w.clone()));
            }
        }
        Some(out)
    }

    /// Whether every stream `self` describes, `other` describes too.
    pub fn is_subset(&self, other: &Structure) -> bool {
        self.name == other.name
            && self.features == other.features
            && other
                .fields
                .iter()
                .all(|(k, w)| self.get(k).is_some_and(|v| v.is_subset(w)))
    }

    /// gst's default fixation of every field: the first of a list, the smallest of a range.
    pub fn fixate(&mut self) {
        for (_, v) in &mut self.fields {
            if !v.is_fixed() {
                *v = v.fixate();
            }
        }
    }

    /// Fixes `field` to the allowed int nearest `target`; true when it is now that int field.
    pub fn fixate_nearest_int(&mut self, field: &str, target: i64) -> bool {
        let Some(v) = self.get(field).and_then(|v| v.nearest_int(target)) else {
            return false;
        };
        self.set(field, Value::Int(v));
        true
    }

    /// Fixes `field` to the allowed fraction nearest `target`.
    pub fn fixate_nearest_fraction(&mut self, field: &str, target: Fraction) -> bool {
        let Some(v) = self.get(field).and_then(|v| v.nearest_fraction(target)) else {
            return false;
        };
        self.set(field, Value::Fraction(v));
        true
    }

    /// Fixes `field` to the allowed double nearest `target`.
    pub fn fixate_nearest_double(&mut self, field: &str, target: f64) -> bool {
        let Some(v) = self.get(field).and_then(|v| v.nearest_double(target)) else {
            return false;
        };
        self.set(field, Value::Double(v));
        true
    }

    /// Fixes `field` to `target` if allowed, else to its first value.
    pub fn fixate_string(&mut self, field: &str, target: &str) -> bool {
        let Some(v) = self.get(field) else {
            return false;
        };
        let want = Value::Str(target.to_owned());
        let fixed = if want.is_subset(v) { want } else { v.fixate() };
        self.set(field, fixed);
        true
    }
}

impl fmt::Display for Structure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.features.is_empty() {
            write!(f, "({})", self.features.join(", "))?;
        }
        for (k, v) in &self.fields {
            write!(f, ", {k}={v}")?;
        }
        Ok(())
    }
}

/// What a stream may be: anything, or one of a list of structures (none: EMPTY).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caps {
    /// Anything: a byte stream, or a pad that takes whatever comes.
    Any,
    /// One of these; empty is EMPTY, which nothing fits.
    Structures(Vec<Structure>),
}

impl Caps {
    /// EMPTY: no stream fits.
    pub const EMPTY: Caps = Caps::Structures(Vec::new());

    /// Parses gst's caps text (see [`parse`](self::parse)); errors carry the byte offset.
    pub fn parse(text: &str) -> Result<Caps, CapsError> {
        parse::caps(text)
    }

    /// Caps of one structure.
    pub fn one(s: Structure) -> Caps {
        Caps::Structures(vec![s])
    }

    /// Whether this is ANY.
    pub fn is_any(&self) -> bool {
        matches!(self, Caps::Any)
    }

    /// Whether this is EMPTY.
    pub fn is_empty(&self) -> bool {
        matches!(self, Caps::Structures(s) if s.is_empty())
    }

    /// The structures (none for ANY and EMPTY).
    pub fn structures(&self) -> &[Structure] {
        match self {
            Caps::Any => &[],
            Caps::Structures(s) => s,
        }
    }

    /// The structures, to change them (none for ANY).
    pub fn structures_mut(&mut self) -> &mut [Structure] {
        match self {
            Caps::Any => &mut [],
            Caps::Structures(s) => s,
        }
    }

    /// The first structure, the one a fixed caps is.
    pub fn first(&self) -> Option<&Structure> {
        self.structures().first()
    }

    /// Whether this is exactly one stream format: one structure, every field fixed.
    pub fn is_fixed(&self) -> bool {
        matches!(self, Caps::Structures(s) if s.len() == 1 && s[0].is_fixed())
    }

    /// What both allow. ANY gives the other side; otherwise every pair of structures that
    /// intersect, in `self`'s order of preference, leaving out one another already covers.
    pub fn intersect(&self, other: &Caps) -> Caps {
        let (a, b) = match (self, other) {
            (Caps::Any, x) | (x, Caps::Any) => return x.clone(),
            (Caps::Structures(a), Caps::Structures(b)) => (a, b),
        };
        let mut out: Vec<Structure> = Vec::new();
        for x in a {
            for y in b {
                if let Some(s) = x.intersect(y) {
                    if !out.iter().any(|o| s.is_subset(o)) {
                        out.push(s);
                    }
                }
            }
        }
        Caps::Structures(out)
    }

    /// Whether `self` ⊆ `other`: every structure of `self` is within one of `other`.
    pub fn is_subset(&self, other: &Caps) -> bool {
        match (self, other) {
            (_, Caps::Any) => true,
            (Caps::Any, _) => false,
            (Caps::Structures(a), Caps::Structures(b)) => {
                a.iter().all(|x| b.iter().any(|y| x.is_subset(y)))
            }
        }
    }

    /// Whether both describe the same streams.
    pub fn is_equivalent(&self, other: &Caps) -> bool {
        self.is_subset(other) && other.is_subset(self)
    }

    /// Whether both allow some stream in common.
    pub fn can_intersect(&self, other: &Caps) -> bool {
        !self.intersect(other).is_empty()
    }

    /// gst's `gst_caps_fixate`: the first structure, each field fixed to the first of a list or
    /// the smallest of a range. ANY and EMPTY stay as they are.
    pub fn fixate(&self) -> Caps {
        match self {
            Caps::Structures(s) if !s.is_empty() => {
                let mut first = s[0].clone();
                first.fixate();
                Caps::one(first)
            }
            other => other.clone(),
        }
    }
}

impl fmt::Display for Caps {
    /// gst's `gst_caps_to_string`: `ANY`, `EMPTY`, or structures joined by `; `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caps::Any => f.write_str("ANY"),
            Caps::Structures(s) if s.is_empty() => f.write_str("EMPTY"),
            Caps::Structures(s) => {
                for (n, st) in s.iter().enumerate() {
                    if n > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{st}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::str::FromStr for Caps {
    type Err = CapsError;

    fn from_str(s: &str) -> Result<Caps, CapsError> {
        Caps::parse(s)
    }
}

#[cfg(test)]
mod tests;
