//! `filter expr=...`: a predicate over each buffer's metadata, in CEL (the Common Expression
//! Language: Kubernetes', Envoy's and Google Cloud's policy language), parsed and run by the
//! `cel` crate. CEL suits a stream filter: it has no loops or side effects, so every
//! expression ends, in time linear in its size.
//!
//! The expression is parsed when the description is (the `expr` property's check), so a typo
//! is a description error with a caret under it: a syntax error where the parser stopped, an
//! unknown variable under its name.

use std::sync::Arc;

use cel::common::ast::{Expr, IdedExpr};
use cel::common::traits::Indexer;
use cel::common::types::{CelBytes, CelInt, CelNull, CelString, Type, DYN_TYPE};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;

use super::fast;
use crate::element::prelude::*;

/// The variables an expression may use, with what they hold (also shown by inspect).
const VARIABLES: &[(&str, &str)] = &[
    ("size", "the buffer's length in bytes"),
    ("seq", "its sequence number"),
    ("pts", "presentation time, ns (null when unset)"),
    ("dts", "decode time, ns (null when unset)"),
    ("duration", "duration, ns (null when unset)"),
    (
        "offset",
        "byte offset in the source's stream (null when unset)",
    ),
    ("stream_id", "the stream it belongs to"),
    ("flags", "flag bits (1 = discont, 2 = marker)"),
    (
        "meta",
        "user metadata fields: meta.KEY (string, int or bytes)",
    ),
];

/// A user metadata field's value, as [`meta_field`] finds it.
pub(super) enum FieldRef<'a> {
    /// Text.
    Str(&'a str),
    /// An integer.
    Int(i64),
    /// Raw bytes.
    Bytes(&'a [u8]),
}

/// The user metadata field `key` of `buf`, if it has one. The one place filters read user
/// fields (`filter`'s `meta.KEY`, `regexfilter field=KEY`).
pub(super) fn meta_field<'a>(buf: &'a Buffer, key: &str) -> Option<FieldRef<'a>> {
    Some(match buf.meta.field(key)? {
        FieldValue::Str(s) => FieldRef::Str(s),
        FieldValue::Int(i) => FieldRef::Int(*i),
        FieldValue::Bytes(b) => FieldRef::Bytes(b),
    })
}

/// The buffer's decode time.
fn dts(buf: &Buffer) -> Option<u64> {
    buf.meta.dts()
}

/// Byte offset of char `index` of `text` (the parser counts characters).
fn char_to_byte(text: &str, index: usize) -> usize {
    text.char_indices()
        .nth(index)
        .map_or(text.len(), |(b, _)| b)
}

/// Parses `source` and checks that it names only known variables: the property's check, and
/// the first step of [`compile`]. On an error: its byte offset in `source` and the message.
pub(super) fn check(source: &str) -> Result<(), (Option<usize>, String)> {
    if source.trim().is_empty() {
        return Err((None, "the expression is empty".into()));
    }
    let (ast, info) = cel::parser::Parser::new()
        .parse_with_source_info(source)
        .map_err(|errors| {
            let Some(first) = errors.errors.first() else {
                return (None, "the expression does not parse".to_owned());
            };
            // (line, column), both from 1, in characters.
            let (line, col) = first.pos;
            let line_start: usize = source
                .split_inclusive('\n')
                .take(usize::try_from(line - 1).unwrap_or(0))
                .map(str::len)
                .sum();
            let at = line_start
                + char_to_byte(&source[line_start..], usize::try_from(col - 1).unwrap_or(0));
            (Some(at.min(source.len())), first.msg.clone())
        })?;
    let mut unknown = None;
    walk_idents(&ast, &mut Vec::new(), &mut |id, name| {
        if unknown.is_none() && !VARIABLES.iter().any(|(v, _)| *v == name) {
            unknown = Some((id, name.to_owned()));
        }
    });
    if let Some((id, name)) = unknown {
        let at = info
            .offset_for(id)
            .map(|(start, _)| char_to_byte(source, start as usize));
        let best = VARIABLES
            .iter()
            .map(|(v, _)| (strsim::levenshtein(v, &name), *v))
            .min()
            .filter(|(d, _)| *d <= 2)
            .map_or(String::new(), |(_, v)| format!(" (did you mean `{v}`?)"));
        let names: Vec<&str> = VARIABLES.iter().map(|(v, _)| *v).collect();
        return Err((
            at,
            format!(
                "unknown variable `{name}`{best}; the variables are {}",
                names.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Calls `found` with every identifier that is not bound by a comprehension around it
/// (`[1, 2].exists(x, x > size)` binds `x`).
fn walk_idents<'a>(e: &'a IdedExpr, bound: &mut Vec<&'a str>, found: &mut impl FnMut(u64, &str)) {
    match &e.expr {
        Expr::Ident(name) if !name.starts_with('@') && !bound.contains(&name.as_str()) => {
            found(e.id, name);
        }
        Expr::Call(call) => {
            if let Some(t) = &call.target {
                walk_idents(t, bound, found);
            }
            for a in &call.args {
                walk_idents(a, bound, found);
            }
        }
        Expr::Select(s) => walk_idents(&s.operand, bound, found),
        Expr::List(l) => {
            for x in &l.elements {
                walk_idents(x, bound, found);
            }
        }
        Expr::Comprehension(c) => {
            walk_idents(&c.iter_range, bound, found);
            walk_idents(&c.accu_init, bound, found);
            let before = bound.len();
            bound.push(&c.iter_var);
            if let Some(v) = &c.iter_var2 {
                bound.push(v);
            }
            bound.push(&c.accu_var);
            walk_idents(&c.loop_cond, bound, found);
            walk_idents(&c.loop_step, bound, found);
            walk_idents(&c.result, bound, found);
            bound.truncate(before);
        }
        // Map and struct literals: their values may use variables too, but a typo there is
        // caught when the expression runs; nothing else holds identifiers.
        _ => {}
    }
}

/// A compiled predicate: the fast path when the expression lies in its subset, the `cel`
/// interpreter otherwise (and, for either, to say why a buffer cannot be evaluated).
pub(super) struct Predicate {
    fast: Option<fast::Node>,
    program: cel::Program,
    env: Arc<cel::Env>,
}

/// The predicate cannot be evaluated on a buffer; [`Predicate::explain`] says why.
#[derive(Debug)]
pub(super) struct EvalError(Option<String>);

/// Compiles `source` (already checked when the description was parsed).
pub(super) fn compile(source: &str) -> Result<Predicate, String> {
    check(source).map_err(|(_, e)| e)?;
    let env = Arc::new(cel::Env::stdlib());
    let program = env.compile(source).map_err(|e| e.to_string())?;
    // The same parser the program was compiled with, so the same tree.
    let fast = env
        .parser()
        .parse(source)
        .ok()
        .and_then(|ast| fast::compile(&ast));
    Ok(Predicate { fast, program, env })
}

impl Predicate {
    /// Whether `buf` satisfies the predicate; an error when it cannot be evaluated on it (a
    /// comparison with a missing value, a division by zero, a result that is not a bool).
    pub(super) fn matches(&self, buf: &Buffer) -> Result<bool, EvalError> {
        match &self.fast {
            Some(node) => node.matches(buf).map_err(|_| EvalError(None)),
            None => self.interpret(buf).map_err(|e| EvalError(Some(e))),
        }
    }

    /// Why the predicate could not be evaluated on `buf` (`error` came from [`matches`] on
    /// it): the fast path leaves the message to the interpreter, run once more.
    ///
    /// [`matches`]: Predicate::matches
    pub(super) fn explain(&self, buf: &Buffer, error: EvalError) -> String {
        error.0.unwrap_or_else(|| match self.interpret(buf) {
            Err(e) => e,
            Ok(b) => format!("the expression cannot be evaluated (the interpreter gave {b})"),
        })
    }

    /// Whether the fast path evaluates this predicate.
    #[cfg(test)]
    pub(super) fn is_fast(&self) -> bool {
        self.fast.is_some()
    }

    /// The fast path's verdict on `buf`, if it has the predicate.
    #[cfg(test)]
    pub(super) fn fast_matches(&self, buf: &Buffer) -> Option<Result<bool, fast::Failed>> {
        self.fast.as_ref().map(|n| n.matches(buf))
    }

    /// The `cel` interpreter's verdict on `buf`.
    pub(super) fn interpret(&self, buf: &Buffer) -> Result<bool, String> {
        let vars = Vars::of(buf);
        let mut cx = cel::Context::with_env(Arc::clone(&self.env));
        cx.set_variable_resolver(&vars);
        match self.program.execute(&cx) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("the expression gave {other:?}, not true or false")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The variables of one buffer, ready to lend to the interpreter without a copy.
struct Vars<'a> {
    buf: &'a Buffer,
    size: CelInt,
    seq: CelInt,
    pts: Option<CelInt>,
    dts: Option<CelInt>,
    duration: Option<CelInt>,
    offset: Option<CelInt>,
    stream_id: CelInt,
    flags: CelInt,
}

/// CEL's int from a u64 (values past i64::MAX do not occur in practice; they saturate).
fn int(v: u64) -> CelInt {
    CelInt::from(i64::try_from(v).unwrap_or(i64::MAX))
}

impl<'a> Vars<'a> {
    fn of(buf: &'a Buffer) -> Vars<'a> {
        let m = &buf.meta;
        Vars {
            buf,
            size: int(buf.len() as u64),
            seq: int(m.sequence),
            pts: m.pts().map(int),
            dts: dts(buf).map(int),
            duration: m.duration().map(int),
            offset: m.offset().map(int),
            stream_id: int(u64::from(m.stream_id)),
            flags: int(u64::from(m.flags.0)),
        }
    }
}

static NULL: CelNull = CelNull;

impl VariableResolver for Vars<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let int = |v: &'b CelInt| CowVal::Borrowed(v as &dyn Val);
        let maybe = |v: &'b Option<CelInt>| match v {
            Some(v) => CowVal::Borrowed(v as &dyn Val),
            None => CowVal::Borrowed(&NULL as &dyn Val),
        };
        Some(match variable {
            "size" => int(&self.size),
            "seq" => int(&self.seq),
            "pts" => maybe(&self.pts),
            "dts" => maybe(&self.dts),
            "duration" => maybe(&self.duration),
            "offset" => maybe(&self.offset),
            "stream_id" => int(&self.stream_id),
            "flags" => int(&self.flags),
            "meta" => CowVal::owned(MetaView(self.buf)),
            _ => return None,
        })
    }
}

/// `meta`: the buffer's user fields, looked up as the expression asks for them.
#[derive(Debug)]
struct MetaView<'a>(&'a Buffer);

impl Val for MetaView<'_> {
    fn get_type(&self) -> &Type {
        &DYN_TYPE
    }

    fn cel_type() -> &'static Type {
        &DYN_TYPE
    }

    fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
    where
        Self: 'v,
    {
        Box::new(MetaView(self.0))
    }
}

impl Indexer for MetaView<'_> {
    fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, cel::ExecutionError>
    where
        Self: 'v,
    {
        let key = idx
            .downcast_ref::<CelString>()
            .map(|k| k.inner().to_owned())
            .unwrap_or_else(|| format!("{idx:?}"));
        match meta_field(self.0, &key) {
            Some(FieldRef::Str(s)) => Ok(CowVal::owned(CelString::from(s.to_owned()))),
            Some(FieldRef::Int(i)) => Ok(CowVal::owned(CelInt::from(i))),
            Some(FieldRef::Bytes(b)) => Ok(CowVal::owned(CelBytes::from(b.to_vec()))),
            None => Err(cel::ExecutionError::NoSuchKey(Arc::new(key))),
        }
    }

    fn steal<'v>(self: Box<Self>, idx: &dyn Val) -> Result<Box<dyn Val + 'v>, cel::ExecutionError>
    where
        Self: 'v,
    {
        self.get(idx).map(|v| v.as_ref().clone_as_boxed())
    }
}
