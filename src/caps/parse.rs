//! gst's caps text, parsed by hand-written recursive descent so that every error knows the byte
//! it is about (the description's caret goes under it).
//!
//! ```text
//! caps      := 'ANY' | 'EMPTY' | 'NONE' | structure ( ';' structure )* ';'?
//! structure := NAME features? ( ',' FIELD '=' value )*
//! features  := '(' FEATURE ( ',' FEATURE )* ')'
//! value     := ( '(' TYPE ')' )? ( range | list | array | scalar )
//! range     := '[' scalar ',' scalar ( ',' scalar )? ']'
//! list      := '{' value ( ',' value )* '}'      array := '<' value ( ',' value )* '>'
//! scalar    := "quoted \" string" | simple-word
//! ```
//!
//! An untyped scalar takes the first type it reads as, in gst's order: int, double, fraction,
//! boolean, string.

use super::value::{is_simple_char, Fraction, Value};
use super::{Caps, Structure, SYSTEM_MEMORY};

/// A caps text that does not parse: what was expected, and at which byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CapsError {
    /// Byte offset in the text.
    pub at: usize,
    /// What is wrong, lowercase.
    pub message: String,
}

/// The type a `(type)` prefix names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Int,
    Double,
    Fraction,
    Bool,
    Str,
    Bitmask,
}

impl Type {
    fn from_name(name: &str) -> Option<Type> {
        Some(match name {
            "int" | "i" | "uint" | "u" | "int64" | "i64" | "uint64" | "u64" => Type::Int,
            "double" | "d" | "float" | "f" => Type::Double,
            "fraction" => Type::Fraction,
            "boolean" | "bool" | "b" => Type::Bool,
            "string" | "str" | "s" => Type::Str,
            "bitmask" => Type::Bitmask,
            _ => return None,
        })
    }
}

struct Cursor<'t> {
    text: &'t str,
    at: usize,
}

pub(super) fn caps(text: &str) -> Result<Caps, CapsError> {
    let mut c = Cursor { text, at: 0 };
    c.ws();
    let word_start = c.at;
    let word = c.word();
    if matches!(word, "ANY" | "EMPTY" | "NONE") {
        c.ws();
        if !c.done() {
            return Err(c.error("nothing after ANY or EMPTY"));
        }
        return Ok(if word == "ANY" {
            Caps::Any
        } else {
            Caps::EMPTY
        });
    }
    c.at = word_start;
    if c.done() {
        return Err(c.error("expected caps (`type/subtype,field=value`, ANY or EMPTY)"));
    }
    let mut out = Vec::new();
    loop {
        out.push(c.structure()?);
        c.ws();
        if c.eat(';') {
            c.ws();
            if c.done() {
                break;
            }
            continue;
        }
        if c.done() {
            break;
        }
        return Err(c.error("expected `,` and a field, `;` and a structure, or the end"));
    }
    Ok(Caps::Structures(out))
}

impl<'t> Cursor<'t> {
    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn done(&self) -> bool {
        self.at >= self.text.len()
    }

    fn eat(&mut self, ch: char) -> bool {
        if self.peek() == Some(ch) {
            self.at += ch.len_utf8();
            true
        } else {
            false
        }
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn error(&self, message: impl Into<String>) -> CapsError {
        CapsError {
            at: self.at,
            message: message.into(),
        }
    }

    fn expect(&mut self, ch: char, what: &str) -> Result<(), CapsError> {
        if self.eat(ch) {
            Ok(())
        } else {
            Err(self.error(format!("expected {what}, found {}", self.found())))
        }
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the caps".into(),
            Some(c) => format!("`{c}`"),
        }
    }

    /// A run of simple-string characters (maybe empty).
    fn word(&mut self) -> &'t str {
        let start = self.at;
        while self.peek().is_some_and(is_simple_char) {
            self.at += 1;
        }
        &self.text[start..self.at]
    }

    fn structure(&mut self) -> Result<Structure, CapsError> {
        let start = self.at;
        let name = self.word();
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            self.at = start;
            return Err(self.error(format!(
                "expected a media type (`video/x-raw`), found {}",
                self.found()
            )));
        }
        let mut s = Structure::new(name);
        if self.eat('(') {
            loop {
                self.ws();
                let f = self.word();
                if f.is_empty() {
                    return Err(self.error(format!(
                        "expected a caps feature (`memory:SystemMemory`), found {}",
                        self.found()
                    )));
                }
                if f != SYSTEM_MEMORY && !s.features.iter().any(|x| x == f) {
                    s.features.push(f.to_owned());
                }
                self.ws();
                if self.eat(')') {
                    break;
                }
                self.expect(',', "`,` or `)` after a caps feature")?;
            }
            s.features.sort();
        }
        loop {
            let before = self.at;
            self.ws();
            if !self.eat(',') {
                self.at = before;
                return Ok(s);
            }
            self.ws();
            let key_at = self.at;
            let key = self.word();
            if key.is_empty() || !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
                self.at = key_at;
                return Err(self.error(format!("expected a field name, found {}", self.found())));
            }
            if s.get(key).is_some() {
                self.at = key_at;
                return Err(self.error(format!("field `{key}` is set twice")));
            }
            self.ws();
            self.expect('=', &format!("`=` after `{key}`"))?;
            self.ws();
            let v = self.value(None)?;
            s.fields.push((key.to_owned(), v));
        }
    }

    fn value(&mut self, inherited: Option<Type>) -> Result<Value, CapsError> {
        let mut ty = inherited;
        if self.peek() == Some('(') {
            let open = self.at;
            self.at += 1;
            self.ws();
            let name = self.word();
            let Some(t) = Type::from_name(name) else {
                self.at = open + 1;
                return Err(self.error(format!(
                    "unknown type `({name})`: int, double, fraction, boolean, string or bitmask"
                )));
            };
            self.ws();
            self.expect(')', "`)` after the type")?;
            self.ws();
            ty = Some(t);
        }
        match self.peek() {
            Some('[') => self.range(ty),
            Some('{') => self.members('{', '}', ty).map(|(v, at)| {
                Value::list(v).ok_or(CapsError {
                    at,
                    message: "an empty list allows nothing".into(),
                })
            })?,
            Some('<') => self.members('<', '>', ty).map(|(v, _)| Value::Array(v)),
            _ => self.scalar(ty),
        }
    }

    fn members(
        &mut self,
        open: char,
        close: char,
        ty: Option<Type>,
    ) -> Result<(Vec<Value>, usize), CapsError> {
        let at = self.at;
        self.expect(open, "a list")?;
        let mut out = Vec::new();
        self.ws();
        if self.eat(close) {
            return Ok((out, at));
        }
        loop {
            self.ws();
            out.push(self.value(ty)?);
            self.ws();
            if self.eat(close) {
                return Ok((out, at));
            }
            self.expect(',', &format!("`,` or `{close}`"))?;
        }
    }

    fn range(&mut self, ty: Option<Type>) -> Result<Value, CapsError> {
        let open = self.at;
        self.at += 1;
        let mut ends = Vec::new();
        loop {
            self.ws();
            let at = self.at;
            let v = self.scalar(ty)?;
            ends.push((v, at, self.at));
            self.ws();
            if self.eat(']') {
                break;
            }
            self.expect(',', "`,` or `]` in a range")?;
        }
        let bad = |at: usize, m: &str| CapsError {
            at,
            message: m.to_owned(),
        };
        // An end of another type than the first is the one to point at.
        if let Some((_, at, end)) = ends
            .iter()
            .skip(1)
            .find(|(v, ..)| v.type_name() != ends[0].0.type_name())
        {
            let article = match ends[0].0.type_name() {
                "int" => "an int",
                "double" => "a double",
                "fraction" => "a fraction",
                other => other,
            };
            return Err(bad(
                *at,
                &format!(
                    "`{}` is not {article} like the range's start",
                    &self.text[*at..*end]
                ),
            ));
        }
        let range = match ends.as_slice() {
            [(Value::Int(a), ..), (Value::Int(b), bt, _)] => Value::int_range(*a, *b, 1)
                .ok_or_else(|| bad(*bt, "a range's end is below its start")),
            [(Value::Int(a), ..), (Value::Int(b), bt, _), (Value::Int(s), st, _)] => {
                if *s < 1 {
                    return Err(bad(*st, "a range's step must be at least 1"));
                }
                Value::int_range(*a, *b, *s)
                    .ok_or_else(|| bad(*bt, "a range's end is below its start"))
            }
            [(Value::Double(a), ..), (Value::Double(b), bt, _)] => Value::double_range(*a, *b)
                .ok_or_else(|| bad(*bt, "a range's end is below its start")),
            [(Value::Fraction(a), ..), (Value::Fraction(b), bt, _)] => {
                Value::fraction_range(*a, *b)
                    .ok_or_else(|| bad(*bt, "a range's end is below its start"))
            }
            [_, _] | [_, _, _] => Err(bad(
                open,
                "a range holds two ints, doubles or fractions of one type (and an int step)",
            )),
            _ => Err(bad(
                open,
                "a range is `[ min, max ]` or `[ min, max, step ]`",
            )),
        }?;
        Ok(range)
    }

    fn scalar(&mut self, ty: Option<Type>) -> Result<Value, CapsError> {
        let start = self.at;
        let (text, quoted) = if self.peek() == Some('"') {
            (self.quoted()?, true)
        } else {
            let w = self.word();
            if w.is_empty() {
                return Err(self.error(format!("expected a value, found {}", self.found())));
            }
            (w.to_owned(), false)
        };
        let wrong = |t: &str| CapsError {
            at: start,
            message: format!("`{text}` is not {t}"),
        };
        Ok(match ty {
            Some(Type::Str) => Value::Str(text),
            Some(Type::Int) => Value::Int(int(&text).ok_or_else(|| wrong("an int"))?),
            Some(Type::Double) => Value::Double(double(&text).ok_or_else(|| wrong("a double"))?),
            Some(Type::Fraction) => {
                Value::Fraction(fraction(&text).ok_or_else(|| wrong("a fraction (`30/1`)"))?)
            }
            Some(Type::Bool) => Value::Bool(boolean(&text).ok_or_else(|| wrong("a boolean"))?),
            Some(Type::Bitmask) => {
                Value::Bitmask(bitmask(&text).ok_or_else(|| wrong("a bitmask (`0x3`)"))?)
            }
            None if quoted => Value::Str(text),
            None => {
                if let Some(v) = int(&text) {
                    Value::Int(v)
                } else if let Some(v) = double(&text) {
                    Value::Double(v)
                } else if let Some(v) = fraction(&text) {
                    Value::Fraction(v)
                } else if let Some(v) = boolean(&text) {
                    Value::Bool(v)
                } else {
                    Value::Str(text)
                }
            }
        })
    }

    fn quoted(&mut self) -> Result<String, CapsError> {
        let open = self.at;
        self.at += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    self.at = open;
                    return Err(self.error("this quote is never closed"));
                }
                Some('"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some('\\') => {
                    self.at += 1;
                    if let Some(c) = self.peek() {
                        out.push(c);
                        self.at += c.len_utf8();
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.at += c.len_utf8();
                }
            }
        }
    }
}

fn int(t: &str) -> Option<i64> {
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16).ok();
    }
    t.parse().ok()
}

fn double(t: &str) -> Option<f64> {
    // Only decimal text: "nan", "inf" and "infinity" are strings, as in gst.
    if !t.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.')) {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn fraction(t: &str) -> Option<Fraction> {
    let (n, d) = t.split_once('/').unwrap_or((t, "1"));
    Fraction::new(n.parse().ok()?, d.parse().ok()?)
}

fn boolean(t: &str) -> Option<bool> {
    match t.to_ascii_lowercase().as_str() {
        "true" | "yes" | "t" => Some(true),
        "false" | "no" | "f" => Some(false),
        _ => None,
    }
}

fn bitmask(t: &str) -> Option<u64> {
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}
