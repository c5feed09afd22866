//! The winnow grammar (see the module docs of [`super`] for the syntax).
//!
//! Bins recurse; their depth is capped at [`MAX_NESTING`] so that hostile input cannot overflow
//! the stack. Chains and element lists are loops, so a 10,000-element chain costs no stack.

use winnow::combinator::{cut_err, opt};
use winnow::error::{ContextError, ErrMode, StrContext, StrContextValue};
use winnow::prelude::*;
use winnow::stream::{LocatingSlice, Location, Stream};
use winnow::token::{any, one_of, take_while};

use super::ast::{Bin, Chain, Description, Element, Item, Property, Reference, Spanned};
use super::Diagnostic;

type In<'a> = LocatingSlice<&'a str>;

/// Deepest bin nesting accepted.
pub const MAX_NESTING: usize = 32;

/// Parses a whole description.
pub fn parse(text: &str) -> Result<Description, Diagnostic> {
    let mut input = LocatingSlice::new(text);
    let result = description(&mut input);
    match result {
        Ok(d) => Ok(d),
        Err(e) => {
            let err = match e {
                ErrMode::Backtrack(e) | ErrMode::Cut(e) => e,
                ErrMode::Incomplete(_) => ContextError::new(),
            };
            let offset = input.current_token_start();
            Err(diagnostic(text, offset, &err))
        }
    }
}

fn diagnostic(text: &str, offset: usize, err: &ContextError) -> Diagnostic {
    let expected: Vec<String> = err
        .context()
        .filter_map(|c| match c {
            StrContext::Expected(StrContextValue::Description(d)) => Some((*d).to_owned()),
            StrContext::Expected(StrContextValue::CharLiteral(c)) => Some(format!("`{c}`")),
            StrContext::Expected(StrContextValue::StringLiteral(s)) => Some(format!("`{s}`")),
            _ => None,
        })
        .collect();
    let rest = &text[offset..];
    let word_len = rest
        .char_indices()
        .find(|&(i, c)| c.is_whitespace() || (i > 0 && c == '!'))
        .map_or(rest.len(), |(i, _)| i);
    let found = match rest.chars().next() {
        None => "end of description".to_owned(),
        Some(c) if word_len == 0 && c.is_whitespace() => "a space".to_owned(),
        Some(_) => format!("`{}`", &rest[..word_len]),
    };
    let what = if expected.is_empty() {
        "a valid description".to_owned()
    } else {
        expected.join(" or ")
    };
    Diagnostic::new(
        format!("expected {what}, found {found}"),
        offset..offset + word_len,
    )
}

fn fail_expected(what: &'static str) -> ErrMode<ContextError> {
    let mut e = ContextError::new();
    e.push(StrContext::Expected(StrContextValue::Description(what)));
    ErrMode::Cut(e)
}

fn ws(i: &mut In<'_>) -> ModalResult<()> {
    take_while(0.., char::is_whitespace).void().parse_next(i)
}

fn peek_char(i: &In<'_>) -> Option<char> {
    i.chars().next()
}

fn ident<'a>(i: &mut In<'a>) -> ModalResult<&'a str> {
    (
        one_of(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(0.., |c: char| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+')
        }),
    )
        .take()
        .parse_next(i)
}

fn spanned_ident(i: &mut In<'_>) -> ModalResult<Spanned<String>> {
    ident
        .with_span()
        .map(|(s, span)| Spanned {
            value: s.to_owned(),
            span,
        })
        .parse_next(i)
}

fn description(i: &mut In<'_>) -> ModalResult<Description> {
    let chains = chains(i, 0)?;
    ws(i)?;
    if !i.is_empty() {
        return Err(fail_expected(if peek_char(i) == Some(')') {
            "an element (`)` closes no bin)"
        } else {
            "an element, a `name.` reference or caps"
        }));
    }
    Ok(Description { chains })
}

fn chains(i: &mut In<'_>, depth: usize) -> ModalResult<Vec<Chain>> {
    let mut out = Vec::new();
    loop {
        ws(i)?;
        match peek_char(i) {
            None | Some(')') => return Ok(out),
            Some(_) => out.push(chain(i, depth)?),
        }
    }
}

fn chain(i: &mut In<'_>, depth: usize) -> ModalResult<Chain> {
    let first = item(i, depth, "an element, a `name.` reference or caps")?;
    let mut items = vec![first];
    loop {
        let before = i.checkpoint();
        ws(i)?;
        if opt('!').parse_next(i)?.is_none() {
            i.reset(&before);
            return Ok(Chain { items });
        }
        ws(i)?;
        items.push(item(
            i,
            depth,
            "an element, a `name.` reference or caps after `!`",
        )?);
    }
}

fn item(i: &mut In<'_>, depth: usize, what: &'static str) -> ModalResult<Item> {
    match peek_char(i) {
        None | Some('!') | Some(')') | Some('=') => return Err(fail_expected(what)),
        Some('(') => return bin(i, depth, None).map(Item::Bin),
        Some('"') | Some('\'') => return quoted_caps(i).map(Item::Caps),
        _ => {}
    }
    if let Some(uri) = opt(uri).parse_next(i)? {
        return Ok(Item::Uri(uri));
    }
    if let Some(caps) = opt(caps).parse_next(i)? {
        return Ok(Item::Caps(caps));
    }
    let start = i.current_token_start();
    let name = match opt(spanned_ident).parse_next(i)? {
        Some(n) => n,
        None => return Err(fail_expected(what)),
    };
    if opt('.').parse_next(i)?.is_some() {
        if peek_char(i) == Some('(') {
            return bin(i, depth, Some(name)).map(Item::Bin);
        }
        let pad = opt(pad_name).parse_next(i)?;
        let span = start..i.current_token_start();
        return Ok(Item::Ref(Reference { name, pad, span }));
    }
    let props = props(i)?;
    end_of_word(i, "a space, `!` or a property (`key=value`)")?;
    let span = start..i.previous_token_end();
    Ok(Item::Element(Element {
        factory: name,
        props,
        span,
    }))
}

/// After a complete item the next character must end the word.
fn end_of_word(i: &mut In<'_>, what: &'static str) -> ModalResult<()> {
    match peek_char(i) {
        None | Some('!') | Some(')') => Ok(()),
        Some(c) if c.is_whitespace() => Ok(()),
        Some(_) => Err(fail_expected(what)),
    }
}

fn pad_name(i: &mut In<'_>) -> ModalResult<Spanned<String>> {
    take_while(1.., |c: char| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '%')
    })
    .with_span()
    .map(|(s, span): (&str, _)| Spanned {
        value: s.to_owned(),
        span,
    })
    .parse_next(i)
}

/// `key=value` pairs after an element name, each preceded by whitespace; as in gst, spaces
/// around the `=` are allowed (`num-buffers = 3`).
fn props(i: &mut In<'_>) -> ModalResult<Vec<Property>> {
    let mut out = Vec::new();
    loop {
        let before = i.checkpoint();
        ws(i)?;
        let key_start = i.current_token_start();
        let key = opt((
            ident,
            take_while(0.., |c: char| {
                c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':')
            }),
        )
            .take())
        .parse_next(i)?;
        let Some(key) = key else {
            i.reset(&before);
            return Ok(out);
        };
        ws(i)?;
        if opt('=').parse_next(i)?.is_none() {
            i.reset(&before);
            return Ok(out);
        }
        ws(i)?;
        let key = Spanned {
            value: key.to_owned(),
            span: key_start..key_start + key.len(),
        };
        let value = cut_err(|i: &mut In<'_>| value(i, false)).parse_next(i)?;
        out.push(Property { key, value });
    }
}

/// A value: quoted parts are unquoted, `\x` escapes x, and a bare part ends at whitespace or
/// `!` (or at a `)` that closes an enclosing bin, or at `,` inside caps).
fn value(i: &mut In<'_>, in_caps: bool) -> ModalResult<Spanned<String>> {
    let start = i.current_token_start();
    let mut out = String::new();
    let mut parens = 0usize;
    loop {
        match peek_char(i) {
            None | Some('!') => break,
            Some(c) if c.is_whitespace() => break,
            Some(')') if parens == 0 => break,
            Some(',') if in_caps && parens == 0 => break,
            Some(q @ ('"' | '\'')) => {
                any.parse_next(i)?;
                quoted_body(i, q, &mut out)?;
            }
            Some('\\') => {
                any.parse_next(i)?;
                match opt(any).parse_next(i)? {
                    Some(c) => push_escaped(&mut out, c),
                    None => out.push('\\'),
                }
            }
            Some(c) => {
                any.parse_next(i)?;
                match c {
                    '(' => parens += 1,
                    ')' => parens -= 1,
                    // Lists, ranges and arrays of caps values hold commas of their own.
                    '{' | '[' | '<' if in_caps => parens += 1,
                    '}' | ']' | '>' if in_caps => parens = parens.saturating_sub(1),
                    _ => {}
                }
                out.push(c);
            }
        }
    }
    let end = i.previous_token_end().max(start);
    if end == start {
        return Err(fail_expected("a value after `=`"));
    }
    Ok(Spanned {
        value: out,
        span: start..end,
    })
}

/// Whether `\c` in a value stands for `c` alone: the characters the description syntax itself
/// gives a meaning (quotes, `\`, white space, `!`, parentheses, `,`, `=`). Any other escape is
/// kept whole, `\n` stays backslash-n, for the element to read: `datasrc data="a\tb"` and
/// `buffersplit delimiter="\n"` get their C escapes however the shell passed them.
pub(crate) fn is_syntax_escape(c: char) -> bool {
    matches!(c, '"' | '\'' | '\\' | '!' | '(' | ')' | ',' | '=') || c.is_whitespace()
}

fn push_escaped(out: &mut String, c: char) {
    if !is_syntax_escape(c) {
        out.push('\\');
    }
    out.push(c);
}

/// The inside of a quoted string whose opening quote `q` was consumed; `\` escapes in `"..."`.
fn quoted_body(i: &mut In<'_>, q: char, out: &mut String) -> ModalResult<()> {
    loop {
        let Some(c) = opt(any).parse_next(i)? else {
            return Err(fail_expected(if q == '"' {
                "a closing `\"`"
            } else {
                "a closing `'`"
            }));
        };
        match c {
            c if c == q => return Ok(()),
            '\\' if q == '"' => match opt(any).parse_next(i)? {
                Some(e) => push_escaped(out, e),
                None => return Err(fail_expected("a closing `\"`")),
            },
            c => out.push(c),
        }
    }
}

fn uri(i: &mut In<'_>) -> ModalResult<Spanned<String>> {
    (
        one_of(|c: char| c.is_ascii_alphabetic()),
        take_while(0.., |c: char| {
            c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')
        }),
        "://",
        take_while(0.., |c: char| !c.is_whitespace() && c != '!'),
    )
        .take()
        .with_span()
        .map(|(s, span): (&str, _)| Spanned {
            value: s.to_owned(),
            span,
        })
        .parse_next(i)
}

/// `type/subtype` then `,field=value` pairs (spaces allowed after the commas).
fn caps(i: &mut In<'_>) -> ModalResult<Spanned<String>> {
    let start = i.current_token_start();
    let media = (
        ident,
        '/',
        take_while(1.., |c: char| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.')
        }),
        // Caps features: `video/x-raw(memory:SystemMemory)`.
        opt(('(', take_while(0.., |c: char| c != ')' && c != '!'), ')')),
    )
        .take()
        .parse_next(i)?;
    let mut text = media.to_owned();
    loop {
        let before = i.checkpoint();
        if opt(',').parse_next(i)?.is_none() {
            break;
        }
        ws(i)?;
        let Some(field) = opt(ident).parse_next(i)? else {
            i.reset(&before);
            break;
        };
        if opt('=').parse_next(i)?.is_none() {
            i.reset(&before);
            break;
        }
        let v = cut_err(|i: &mut In<'_>| value(i, true)).parse_next(i)?;
        text.push(',');
        text.push_str(field);
        text.push('=');
        text.push_str(&v.value);
    }
    end_of_word(i, "`,` and a caps field, a space or `!`")?;
    Ok(Spanned {
        value: text,
        span: start..i.previous_token_end(),
    })
}

/// Caps written as one quoted word: `"video/x-raw, width=320"`.
fn quoted_caps(i: &mut In<'_>) -> ModalResult<Spanned<String>> {
    let start = i.current_token_start();
    let at_start = i.checkpoint();
    let q = any.parse_next(i)?;
    let mut body = String::new();
    quoted_body(i, q, &mut body)?;
    let span = start..i.previous_token_end();
    let text: String = body.split(',').map(str::trim).collect::<Vec<_>>().join(",");
    if !text.split(',').next().is_some_and(|m| m.contains('/')) {
        let mut e = ContextError::new();
        e.push(StrContext::Expected(StrContextValue::Description(
            "an element or caps (`type/subtype,...`); a quoted word here must be caps",
        )));
        i.reset(&at_start);
        return Err(ErrMode::Cut(e));
    }
    end_of_word(i, "a space or `!` after the caps")?;
    Ok(Spanned { value: text, span })
}

fn bin(i: &mut In<'_>, depth: usize, factory: Option<Spanned<String>>) -> ModalResult<Bin> {
    let start = factory
        .as_ref()
        .map_or_else(|| i.current_token_start(), |f| f.span.start);
    if depth >= MAX_NESTING {
        return Err(fail_expected("at most 32 nested bins"));
    }
    '('.parse_next(i)?;
    let props = props(i)?;
    let chains = chains(i, depth + 1)?;
    ws(i)?;
    if opt(')').parse_next(i)?.is_none() {
        return Err(fail_expected("`)` to close the bin"));
    }
    Ok(Bin {
        factory,
        props,
        chains,
        span: start..i.previous_token_end(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elements(d: &Description) -> Vec<String> {
        d.chains
            .iter()
            .flat_map(|c| c.items.iter())
            .map(|it| match it {
                Item::Element(e) => e.factory.value.clone(),
                Item::Ref(r) => format!(
                    "{}.{}",
                    r.name.value,
                    r.pad.as_ref().map_or("", |p| &p.value)
                ),
                Item::Caps(c) => format!("caps:{}", c.value),
                Item::Uri(u) => format!("uri:{}", u.value),
                Item::Bin(b) => format!("bin:{}", b.chains.len()),
            })
            .collect()
    }

    #[test]
    fn a_simple_chain_with_properties() {
        let d =
            parse("filesrc location=/tmp/a blocksize=64KiB ! filesink location=\"b c\"").unwrap();
        assert_eq!(d.chains.len(), 1);
        let Item::Element(src) = &d.chains[0].items[0] else {
            panic!()
        };
        assert_eq!(src.factory.value, "filesrc");
        assert_eq!(src.props[0].key.value, "location");
        assert_eq!(src.props[0].value.value, "/tmp/a");
        assert_eq!(src.props[1].value.value, "64KiB");
        let Item::Element(sink) = &d.chains[0].items[1] else {
            panic!()
        };
        assert_eq!(sink.props[0].value.value, "b c");
        assert_eq!(sink.props[0].value.span, 60..65);
    }

    #[test]
    fn quotes_and_escapes() {
        let d = parse(r#"a x='single q' y="say \"hi\"" z=my\ file w=pre"mid dle"post"#).unwrap();
        let Item::Element(e) = &d.chains[0].items[0] else {
            panic!()
        };
        let v: Vec<_> = e.props.iter().map(|p| p.value.value.as_str()).collect();
        assert_eq!(v, ["single q", "say \"hi\"", "my file", "premid dlepost"]);
        // Escapes the syntax does not need are the element's: kept whole.
        let d = parse(r#"a x=\n y="\t\\" z='\n'"#).unwrap();
        let Item::Element(e) = &d.chains[0].items[0] else {
            panic!()
        };
        let v: Vec<_> = e.props.iter().map(|p| p.value.value.as_str()).collect();
        assert_eq!(v, [r"\n", r"\t\", r"\n"]);
    }

    #[test]
    fn several_chains_and_references() {
        let d = parse("filesrc location=a ! f. filesrc location=b ! f. funnel name=f ! fakesink")
            .unwrap();
        assert_eq!(d.chains.len(), 3);
        assert_eq!(
            elements(&d),
            ["filesrc", "f.", "filesrc", "f.", "funnel", "fakesink"]
        );
        let d =
            parse("fakesrc ! tee name=t ! queue ! fakesink t.src_1 ! queue ! fakesink").unwrap();
        assert_eq!(d.chains.len(), 2);
        assert_eq!(elements(&d)[4], "t.src_1");
    }

    #[test]
    fn caps_uris_and_bins() {
        let d = parse("fakesrc ! video/x-raw,width=320, height=(int)240 ! application/octet-stream ! fakesink").unwrap();
        assert_eq!(
            elements(&d),
            [
                "fakesrc",
                "caps:video/x-raw,width=320,height=(int)240",
                "caps:application/octet-stream",
                "fakesink"
            ]
        );
        let d = parse("fakesrc ! \"video/x-raw, width=320\" ! fakesink").unwrap();
        assert_eq!(elements(&d)[1], "caps:video/x-raw,width=320");
        let d = parse("file:///tmp/a ! file:///tmp/b").unwrap();
        assert_eq!(elements(&d), ["uri:file:///tmp/a", "uri:file:///tmp/b"]);
        let d = parse("fakesrc ! ( identity ! identity ) ! fakesink").unwrap();
        assert_eq!(elements(&d), ["fakesrc", "bin:1", "fakesink"]);
        let d = parse("fakesrc ! bin.( name=b identity ) ! fakesink").unwrap();
        let Item::Bin(b) = &d.chains[0].items[1] else {
            panic!()
        };
        assert_eq!(b.props[0].key.value, "name");
    }

    #[test]
    fn errors_point_at_the_offending_word() {
        let e = parse("filesrc location=a ! ! filesink").unwrap_err();
        assert_eq!(e.span.start, 21);
        assert!(e.message.contains("after `!`"), "{}", e.message);
        let e = parse("filesrc location=a !").unwrap_err();
        assert_eq!(
            e.message,
            "expected an element, a `name.` reference or caps after `!`, found end of description"
        );
        let e = parse("filesrc location=\"a ! fakesink").unwrap_err();
        assert!(e.message.contains("closing `\"`"), "{}", e.message);
        let e = parse("fakesrc ! ( identity ! fakesink").unwrap_err();
        assert!(e.message.contains("`)`"), "{}", e.message);
        let e = parse("fakesrc num-buffers= ! fakesink").unwrap_err();
        assert!(e.message.contains("a value after `=`"), "{}", e.message);
        let e = parse("fakesrc ) fakesink").unwrap_err();
        assert_eq!(e.span.start, 8);
        let e = parse("= fakesink").unwrap_err();
        assert_eq!(e.span.start, 0);
    }

    #[test]
    fn nesting_is_capped_and_long_chains_are_fine() {
        let deep = format!("{}fakesrc{}", "( ".repeat(1000), " )".repeat(1000));
        let e = parse(&deep).unwrap_err();
        assert!(e.message.contains("nested"), "{}", e.message);
        let long = format!("fakesrc{} ! fakesink", " ! identity".repeat(10_000));
        assert_eq!(parse(&long).unwrap().chains[0].items.len(), 10_002);
    }
}
