//! `filter`'s fast path: the common subset of a parsed CEL expression compiled into a small
//! tree of nodes over one buffer's values, evaluated with no allocation (except to join two
//! strings or byte strings) and no dynamic dispatch. The `cel` interpreter costs some hundreds
//! of ns per buffer (a context, a resolver, a boxed value per variable); this costs a few.
//!
//! The subset: int, uint, double, string, bytes, bool and null literals; the variables and
//! `meta.KEY`, `has(meta.KEY)`; `== != < <= > >=`, `+ - * / %`, unary `-`, `! && ||` and
//! `?:`. Anything else (a function, a list, a map, `in`, an index, a comprehension) leaves the
//! whole expression to the interpreter: [`compile`] says `None`.
//!
//! Semantics are the `cel` crate's, operator by operator (read from its 0.15 source, and
//! checked against it on random expressions and buffers by a property test): numbers compare
//! across int, uint and double but add only within a type; int and uint arithmetic fails on
//! overflow and on division or remainder by zero; double arithmetic is IEEE (no `%`); `==`
//! between unrelated types is false, ordering them an error; `&&` and `||` absorb an error on
//! either side when the other side decides. An error here is only "this buffer cannot be
//! evaluated": its message, needed at most once per filter, comes from running the
//! interpreter on the same buffer.

use std::borrow::Cow;
use std::cmp::Ordering;

use cel::common::ast::{operators, Expr, IdedExpr, LiteralValue};

use super::expr::{meta_field, FieldRef};
use crate::element::prelude::*;

/// The expression cannot be evaluated on this buffer (the interpreter says why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Failed;

/// A value during evaluation: CEL's scalar types, borrowing literals and user fields.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum V<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    Str(Cow<'a, str>),
    Bytes(Cow<'a, [u8]>),
}

impl V<'_> {
    /// The same value, borrowing what it holds.
    fn borrowed(&self) -> V<'_> {
        match self {
            V::Null => V::Null,
            V::Bool(b) => V::Bool(*b),
            V::Int(i) => V::Int(*i),
            V::UInt(u) => V::UInt(*u),
            V::Double(d) => V::Double(*d),
            V::Str(s) => V::Str(Cow::Borrowed(s)),
            V::Bytes(b) => V::Bytes(Cow::Borrowed(b)),
        }
    }
}

/// A buffer's variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Var {
    Size,
    Seq,
    Pts,
    Dts,
    Duration,
    Offset,
    StreamId,
    Flags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// A compiled expression.
#[derive(Debug)]
pub(super) enum Node {
    Lit(V<'static>),
    Var(Var),
    /// `meta.KEY`: an error when the buffer has no such field.
    Meta(Box<str>),
    /// `has(meta.KEY)`.
    Has(Box<str>),
    Not(Box<Node>),
    Neg(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cond(Box<[Node; 3]>),
    Cmp(Cmp, Box<Node>, Box<Node>),
    /// `VAR op INT`, the commonest comparison, without the value round trip.
    CmpVarInt(Cmp, Var, i64),
    /// A comparison of two ints known as such when compiled (`seq % 10 == 0`).
    CmpInt(Cmp, Box<IntNode>, Box<IntNode>),
    /// `meta.KEY op LITERAL`.
    CmpMeta(Cmp, Box<str>, V<'static>),
    Arith(Arith, Box<Node>, Box<Node>),
    /// Arithmetic known to be on ints when compiled.
    Int(Box<IntNode>),
}

/// An int expression: its value is an int, or it fails (an overflow, a division by zero, an
/// unset variable in arithmetic, where null has no operators). Evaluated in registers, with
/// no value enum to pass around.
#[derive(Debug)]
pub(super) enum IntNode {
    Lit(i64),
    /// A variable; null (an unset time) fails.
    Var(Var),
    Neg(Box<IntNode>),
    Arith(Arith, Box<IntNode>, Box<IntNode>),
}

impl IntNode {
    /// `n` as an int expression, if it is one whatever the buffer. A variable that may be
    /// null is one only as an operand of arithmetic (`pts + 1` fails on a null pts; `pts ==
    /// 1` is false).
    fn of(n: &Node, in_arith: bool) -> Option<IntNode> {
        Some(match n {
            Node::Lit(V::Int(i)) => IntNode::Lit(*i),
            Node::Var(v) if in_arith || !v.nullable() => IntNode::Var(*v),
            Node::Neg(x) => IntNode::Neg(Box::new(IntNode::of(x, true)?)),
            Node::Arith(op, l, r) => IntNode::Arith(
                *op,
                Box::new(IntNode::of(l, true)?),
                Box::new(IntNode::of(r, true)?),
            ),
            Node::Int(x) => IntNode::of_int(x),
            _ => return None,
        })
    }

    /// A copy of `n`.
    fn of_int(n: &IntNode) -> IntNode {
        match n {
            IntNode::Lit(i) => IntNode::Lit(*i),
            IntNode::Var(v) => IntNode::Var(*v),
            IntNode::Neg(x) => IntNode::Neg(Box::new(IntNode::of_int(x))),
            IntNode::Arith(op, l, r) => IntNode::Arith(
                *op,
                Box::new(IntNode::of_int(l)),
                Box::new(IntNode::of_int(r)),
            ),
        }
    }

    fn eval(&self, buf: &Buffer) -> Result<i64, Failed> {
        match self {
            IntNode::Lit(i) => Ok(*i),
            IntNode::Var(v) => v.get(buf).ok_or(Failed),
            IntNode::Neg(x) => x.eval(buf)?.checked_neg().ok_or(Failed),
            IntNode::Arith(op, l, r) => {
                let (a, b) = (l.eval(buf)?, r.eval(buf)?);
                match op {
                    Arith::Add => a.checked_add(b),
                    Arith::Sub => a.checked_sub(b),
                    Arith::Mul => a.checked_mul(b),
                    Arith::Div => a.checked_div(b),
                    Arith::Rem => a.checked_rem(b),
                }
                .ok_or(Failed)
            }
        }
    }
}

/// `e` compiled, if it lies in the subset the fast path knows.
pub(super) fn compile(e: &IdedExpr) -> Option<Node> {
    let node = match &e.expr {
        Expr::Literal(lit) => Node::Lit(match lit {
            LiteralValue::Boolean(b) => V::Bool(*b.inner()),
            LiteralValue::Int(i) => V::Int(*i.inner()),
            LiteralValue::UInt(u) => V::UInt(*u.inner()),
            LiteralValue::Double(d) => V::Double(*d.inner()),
            LiteralValue::Null => V::Null,
            LiteralValue::String(s) => V::Str(Cow::Owned(s.inner().to_owned())),
            LiteralValue::Bytes(b) => V::Bytes(Cow::Owned(b.inner().to_vec())),
        }),
        Expr::Ident(name) => Node::Var(match name.as_str() {
            "size" => Var::Size,
            "seq" => Var::Seq,
            "pts" => Var::Pts,
            "dts" => Var::Dts,
            "duration" => Var::Duration,
            "offset" => Var::Offset,
            "stream_id" => Var::StreamId,
            "flags" => Var::Flags,
            _ => return None,
        }),
        Expr::Select(s) => match &s.operand.expr {
            Expr::Ident(name) if name == "meta" => {
                let key = s.field.as_str().into();
                if s.test {
                    Node::Has(key)
                } else {
                    Node::Meta(key)
                }
            }
            _ => return None,
        },
        Expr::Call(call) if call.target.is_none() => {
            let arg = |i: usize| compile(&call.args[i]).map(Box::new);
            match (call.func_name.as_str(), call.args.len()) {
                (operators::LOGICAL_NOT, 1) => Node::Not(arg(0)?),
                (operators::NEGATE, 1) => int_or(Node::Neg(arg(0)?)),
                (operators::LOGICAL_AND, 2) => Node::And(arg(0)?, arg(1)?),
                (operators::LOGICAL_OR, 2) => Node::Or(arg(0)?, arg(1)?),
                (operators::CONDITIONAL, 3) => Node::Cond(Box::new([
                    compile(&call.args[0])?,
                    compile(&call.args[1])?,
                    compile(&call.args[2])?,
                ])),
                (name, 2) => {
                    if let Some(op) = cmp_op(name) {
                        let (l, r) = (arg(0)?, arg(1)?);
                        match (*l, *r) {
                            (Node::Var(v), Node::Lit(V::Int(i))) => Node::CmpVarInt(op, v, i),
                            (Node::Meta(key), Node::Lit(lit)) => Node::CmpMeta(op, key, lit),
                            (l, r) => match (IntNode::of(&l, false), IntNode::of(&r, false)) {
                                (Some(a), Some(b)) => Node::CmpInt(op, Box::new(a), Box::new(b)),
                                _ => Node::Cmp(op, Box::new(l), Box::new(r)),
                            },
                        }
                    } else {
                        int_or(Node::Arith(arith_op(name)?, arg(0)?, arg(1)?))
                    }
                }
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(node)
}

/// `n` (arithmetic or a negation) as an int expression if it is one.
fn int_or(n: Node) -> Node {
    match IntNode::of(&n, false) {
        Some(i) => Node::Int(Box::new(i)),
        None => n,
    }
}

fn cmp_op(name: &str) -> Option<Cmp> {
    Some(match name {
        operators::EQUALS => Cmp::Eq,
        operators::NOT_EQUALS => Cmp::Ne,
        operators::LESS => Cmp::Lt,
        operators::LESS_EQUALS => Cmp::Le,
        operators::GREATER => Cmp::Gt,
        operators::GREATER_EQUALS => Cmp::Ge,
        _ => return None,
    })
}

fn arith_op(name: &str) -> Option<Arith> {
    Some(match name {
        operators::ADD => Arith::Add,
        operators::SUBSTRACT => Arith::Sub,
        operators::MULTIPLY => Arith::Mul,
        operators::DIVIDE => Arith::Div,
        operators::MODULO => Arith::Rem,
        _ => return None,
    })
}

/// CEL's int from a u64, saturating as the interpreter's variables do.
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Var {
    /// Whether the variable is null on a buffer that lacks it.
    fn nullable(self) -> bool {
        matches!(self, Var::Pts | Var::Dts | Var::Duration | Var::Offset)
    }

    /// The variable's value on `buf`: an int, or null when unset.
    fn get(self, buf: &Buffer) -> Option<i64> {
        let m = &buf.meta;
        match self {
            Var::Size => Some(int(buf.len() as u64)),
            Var::Seq => Some(int(m.sequence)),
            Var::Pts => m.pts().map(int),
            Var::Dts => m.dts().map(int),
            Var::Duration => m.duration().map(int),
            Var::Offset => m.offset().map(int),
            Var::StreamId => Some(i64::from(m.stream_id)),
            Var::Flags => Some(i64::from(m.flags.0)),
        }
    }
}

impl Node {
    /// Whether `buf` satisfies the predicate; [`Failed`] where the interpreter would give an
    /// error, or a value that is not a bool.
    pub(super) fn matches(&self, buf: &Buffer) -> Result<bool, Failed> {
        self.eval_bool(buf)
    }

    /// Evaluates a node whose value must be a bool (an operand of `! && || ?:`, the result).
    #[inline]
    fn eval_bool(&self, buf: &Buffer) -> Result<bool, Failed> {
        match self {
            Node::And(l, r) => {
                let left = l.eval_bool(buf);
                if left == Ok(false) {
                    return Ok(false);
                }
                // As the interpreter: an error on the right, or a right side that is not a
                // bool, is an error whatever the left side.
                match (left, r.eval_bool(buf)?) {
                    (Ok(true), right) => Ok(right),
                    (Err(_), false) => Ok(false),
                    _ => Err(Failed),
                }
            }
            Node::Or(l, r) => {
                let left = l.eval_bool(buf);
                if left == Ok(true) {
                    return Ok(true);
                }
                match (left, r.eval_bool(buf)?) {
                    (Ok(false), right) => Ok(right),
                    (Err(_), true) => Ok(true),
                    _ => Err(Failed),
                }
            }
            Node::Not(x) => x.eval_bool(buf).map(|b| !b),
            Node::CmpVarInt(op, var, lit) => match var.get(buf) {
                Some(v) => Ok(op.holds(v.cmp(lit))),
                None if *op == Cmp::Eq => Ok(false),
                None if *op == Cmp::Ne => Ok(true),
                None => Err(Failed),
            },
            Node::CmpInt(op, l, r) => {
                let (a, b) = (l.eval(buf)?, r.eval(buf)?);
                Ok(op.holds(a.cmp(&b)))
            }
            Node::CmpMeta(op, key, lit) => {
                let field = match meta_field(buf, key).ok_or(Failed)? {
                    FieldRef::Str(s) => V::Str(Cow::Borrowed(s)),
                    FieldRef::Int(i) => V::Int(i),
                    FieldRef::Bytes(b) => V::Bytes(Cow::Borrowed(b)),
                };
                compare(*op, &field, lit)
            }
            Node::Cmp(op, l, r) => compare(*op, &l.eval(buf)?, &r.eval(buf)?),
            Node::Has(key) => Ok(buf.meta.field(key).is_some()),
            other => match other.eval(buf)? {
                V::Bool(b) => Ok(b),
                _ => Err(Failed),
            },
        }
    }

    /// Evaluates a node to its value.
    fn eval<'a>(&'a self, buf: &'a Buffer) -> Result<V<'a>, Failed> {
        Ok(match self {
            Node::Lit(v) => v.borrowed(),
            Node::Var(var) => var.get(buf).map_or(V::Null, V::Int),
            Node::Meta(key) => match meta_field(buf, key).ok_or(Failed)? {
                FieldRef::Str(s) => V::Str(Cow::Borrowed(s)),
                FieldRef::Int(i) => V::Int(i),
                FieldRef::Bytes(b) => V::Bytes(Cow::Borrowed(b)),
            },
            Node::Neg(x) => match x.eval(buf)? {
                V::Int(i) => V::Int(i.checked_neg().ok_or(Failed)?),
                V::Double(d) => V::Double(-d),
                _ => return Err(Failed),
            },
            Node::Cond(parts) => {
                let [c, a, b] = &**parts;
                return if c.eval_bool(buf)? {
                    a.eval(buf)
                } else {
                    b.eval(buf)
                };
            }
            Node::Arith(op, l, r) => {
                let l = l.eval(buf)?;
                arith(*op, l, r.eval(buf)?)?
            }
            Node::Int(x) => V::Int(x.eval(buf)?),
            Node::And(..)
            | Node::CmpInt(..)
            | Node::CmpMeta(..)
            | Node::Or(..)
            | Node::Not(_)
            | Node::Has(_)
            | Node::Cmp(..)
            | Node::CmpVarInt(..) => V::Bool(self.eval_bool(buf)?),
        })
    }
}

impl Cmp {
    /// Whether an ordering satisfies an ordering operator (not `==`, `!=`).
    fn holds(self, o: Ordering) -> bool {
        match self {
            Cmp::Eq => o == Ordering::Equal,
            Cmp::Ne => o != Ordering::Equal,
            Cmp::Lt => o == Ordering::Less,
            Cmp::Le => o != Ordering::Greater,
            Cmp::Gt => o == Ordering::Greater,
            Cmp::Ge => o != Ordering::Less,
        }
    }
}

/// `l op r`: `==` and `!=` are false/true between values that do not compare, an ordering
/// is then an error.
fn compare(op: Cmp, l: &V<'_>, r: &V<'_>) -> Result<bool, Failed> {
    match op {
        Cmp::Eq => Ok(equals(l, r)),
        Cmp::Ne => Ok(!equals(l, r)),
        _ => order(l, r).map(|o| op.holds(o)),
    }
}

/// CEL equality: numbers numerically across types (NaN equals nothing), null only null, the
/// others within their type.
fn equals(l: &V<'_>, r: &V<'_>) -> bool {
    match (l, r) {
        (V::Int(_) | V::UInt(_) | V::Double(_), _) => order(l, r) == Ok(Ordering::Equal),
        (V::Null, V::Null) => true,
        (V::Bool(a), V::Bool(b)) => a == b,
        (V::Str(a), V::Str(b)) => a == b,
        (V::Bytes(a), V::Bytes(b)) => a == b,
        _ => false,
    }
}

/// CEL ordering: numbers across types (int against double through f64, as the interpreter),
/// strings and bytes bytewise, bools; anything else (null, mixed types, NaN) is an error.
fn order(l: &V<'_>, r: &V<'_>) -> Result<Ordering, Failed> {
    match (l, r) {
        (V::Int(a), V::Int(b)) => Ok(a.cmp(b)),
        (V::UInt(a), V::UInt(b)) => Ok(a.cmp(b)),
        (V::Int(a), V::UInt(b)) => Ok(u64::try_from(*a).map_or(Ordering::Less, |a| a.cmp(b))),
        (V::UInt(a), V::Int(b)) => Ok(i64::try_from(*a).map_or(Ordering::Greater, |a| a.cmp(b))),
        (V::Int(a), V::Double(b)) => (*a as f64).partial_cmp(b).ok_or(Failed),
        (V::UInt(a), V::Double(b)) => (*a as f64).partial_cmp(b).ok_or(Failed),
        (V::Double(a), V::Double(b)) => a.partial_cmp(b).ok_or(Failed),
        (V::Double(a), V::Int(b)) => a.partial_cmp(&(*b as f64)).ok_or(Failed),
        (V::Double(a), V::UInt(b)) => a.partial_cmp(&(*b as f64)).ok_or(Failed),
        (V::Str(a), V::Str(b)) => Ok(a.as_bytes().cmp(b.as_bytes())),
        (V::Bytes(a), V::Bytes(b)) => Ok(a.cmp(b)),
        (V::Bool(a), V::Bool(b)) => Ok(a.cmp(b)),
        _ => Err(Failed),
    }
}

/// `l op r`, within one type: int and uint checked, double IEEE (no `%`), `+` joins strings
/// and bytes.
fn arith<'a>(op: Arith, l: V<'a>, r: V<'a>) -> Result<V<'a>, Failed> {
    Ok(match (l, r) {
        (V::Int(a), V::Int(b)) => V::Int(
            match op {
                Arith::Add => a.checked_add(b),
                Arith::Sub => a.checked_sub(b),
                Arith::Mul => a.checked_mul(b),
                Arith::Div => a.checked_div(b),
                Arith::Rem => a.checked_rem(b),
            }
            .ok_or(Failed)?,
        ),
        (V::UInt(a), V::UInt(b)) => V::UInt(
            match op {
                Arith::Add => a.checked_add(b),
                Arith::Sub => a.checked_sub(b),
                Arith::Mul => a.checked_mul(b),
                Arith::Div => a.checked_div(b),
                Arith::Rem => a.checked_rem(b),
            }
            .ok_or(Failed)?,
        ),
        (V::Double(a), V::Double(b)) => V::Double(match op {
            Arith::Add => a + b,
            Arith::Sub => a - b,
            Arith::Mul => a * b,
            Arith::Div => a / b,
            Arith::Rem => return Err(Failed),
        }),
        (V::Str(a), V::Str(b)) if op == Arith::Add => V::Str(Cow::Owned(a.into_owned() + &b)),
        (V::Bytes(a), V::Bytes(b)) if op == Arith::Add => {
            let mut v = a.into_owned();
            v.extend_from_slice(&b);
            V::Bytes(Cow::Owned(v))
        }
        _ => return Err(Failed),
    })
}
