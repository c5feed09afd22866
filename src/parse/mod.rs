//! The pipeline description language, gst-launch compatible: a winnow grammar from text to an
//! AST with byte spans ([`ast`]), the joining of argv words into one description ([`join_argv`]),
//! and [`Diagnostic`], the error type that renders a caret under the offending word.
//!
//! ```text
//! description := chain*
//! chain       := item ( '!' item )*            -- items not separated by '!' start a new chain
//! item        := element | reference | caps | uri | bin
//! element     := NAME ( KEY '=' value )*
//! reference   := NAME '.' PAD?                  -- t.   t.src_1   f.sink_0
//! caps        := TYPE '/' SUBTYPE ( '(' FEATURES ')' )? ( ',' KEY '=' value )*
//! uri         := SCHEME '://' REST              -- file:///tmp/x is filesrc or filesink
//! bin         := ( NAME '.' )? '(' chain* ')'
//! value       := "double quoted" | 'single quoted' | bare\ word
//! ```

pub mod ast;
mod grammar;

pub use grammar::{parse, MAX_NESTING};

/// An error about the description, with the span of the offending text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong, lowercase, no full stop.
    pub message: String,
    /// Byte range in the description.
    pub span: std::ops::Range<usize>,
    /// A hint: "did you mean `filesink`?".
    pub help: Option<String>,
}

impl std::fmt::Display for Diagnostic {
    /// The message alone; [`Diagnostic::render`] adds the caret and the hint.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl Diagnostic {
    /// A diagnostic without a hint.
    pub fn new(message: impl Into<String>, span: std::ops::Range<usize>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            span,
            help: None,
        }
    }

    /// Adds a hint.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Renders the message, the description line with a caret under the span, and the hint.
    pub fn render(&self, text: &str) -> String {
        let mut out = format!("error: {}\n", self.message);
        let start = floor_char(text, self.span.start.min(text.len()));
        let end = floor_char(text, self.span.end.clamp(start, text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |p| p + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |p| start + p);
        // Keep long lines readable: a window of about 80 columns around the span.
        const BEFORE: usize = 50;
        const AFTER: usize = 40;
        let win_start = if start - line_start > BEFORE {
            ceil_char(text, start - BEFORE)
        } else {
            line_start
        };
        let win_end = if line_end - end.max(start) > AFTER {
            floor_char(text, end.max(start) + AFTER)
        } else {
            line_end
        };
        let prefix = if win_start > line_start { "..." } else { "" };
        let suffix = if win_end < line_end { "..." } else { "" };
        let shown = &text[win_start..win_end];
        out.push_str(&format!("  {prefix}{shown}{suffix}\n"));
        let pad = prefix.chars().count() + text[win_start..start].chars().count();
        let width = text[start..end.min(win_end).max(start)]
            .chars()
            .count()
            .max(1);
        out.push_str(&format!("  {}{}\n", " ".repeat(pad), "^".repeat(width)));
        if let Some(help) = &self.help {
            out.push_str(&format!("  = help: {help}\n"));
        }
        out
    }
}

/// Where the character at byte `at` of a property's unquoted value was written in `raw`, the
/// value as it stands in the description (quotes and `\` escapes included): the byte range of
/// that character there, or an empty range at the end when `at` is past the value. The rules
/// are the grammar's: quotes are dropped, and outside quotes or inside double quotes `\c` is c
/// when c is a character of the syntax, and kept whole otherwise.
pub fn value_char_span(raw: &str, at: usize) -> (usize, usize) {
    let mut out = 0;
    let mut quote: Option<char> = None;
    let mut chars = raw.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let produced = match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                continue;
            }
            (Some(q), c) if c == q => {
                quote = None;
                continue;
            }
            (None | Some('"'), '\\') => match chars.peek() {
                // `\c` that the syntax unescapes is one character of the value; any other
                // backslash is kept, so it is a character of its own.
                Some(&(_, e)) if grammar::is_syntax_escape(e) => {
                    chars.next();
                    e
                }
                _ => c,
            },
            _ => c,
        };
        let end = chars.peek().map_or(raw.len(), |&(j, _)| j);
        if out >= at {
            return (i, end);
        }
        out += produced.len_utf8();
    }
    (raw.len(), raw.len())
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Joins argv words into one description, the way gst-launch does: each word is a token, so a
/// word like `location=my file` (the shell already removed its quotes) keeps its space. A single
/// word is taken as a whole description, so `'filesrc location=a ! filesink location=b'` works
/// too.
pub fn join_argv(words: &[String]) -> String {
    if words.len() == 1 {
        return words[0].clone();
    }
    let mut out = String::new();
    for (n, word) in words.iter().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        match split_property_word(word) {
            // `num-buffers= 3`: the value is the next word, as the grammar allows spaces
            // around `=` (gst does too).
            Some((_, "")) if words.get(n + 1).is_some_and(|next| next != "!") => out.push_str(word),
            Some((key, value)) if value.chars().any(char::is_whitespace) || value.is_empty() => {
                out.push_str(key);
                out.push_str("=\"");
                for c in value.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
            _ => out.push_str(word),
        }
    }
    out
}

/// `key=value` where key is a property name and the value is not already quoted.
fn split_property_word(word: &str) -> Option<(&str, &str)> {
    let (key, value) = word.split_once('=')?;
    let mut chars = key.chars();
    let first = chars.next()?;
    let key_ok = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':'));
    let quoted = value.starts_with('"') || value.starts_with('\'');
    (key_ok && !quoted).then_some((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[&str]) -> Vec<String> {
        ws.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn argv_words_keep_spaces_inside_values() {
        let d = join_argv(&words(&["filesrc", "location=my file", "!", "fakesink"]));
        assert_eq!(d, r#"filesrc location="my file" ! fakesink"#);
        let d = join_argv(&words(&["filesrc", r#"location=a "q" b"#]));
        assert_eq!(d, r#"filesrc location="a \"q\" b""#);
    }

    #[test]
    fn one_word_is_a_whole_description() {
        let d = join_argv(&words(&["fakesrc num-buffers=1 ! fakesink"]));
        assert_eq!(d, "fakesrc num-buffers=1 ! fakesink");
    }

    #[test]
    fn caret_points_at_the_span() {
        let text = "filesrc location=a ! filesnk";
        let d =
            Diagnostic::new("no element `filesnk`", 21..28).with_help("did you mean `filesink`?");
        assert_eq!(
            d.render(text),
            "error: no element `filesnk`\n  filesrc location=a ! filesnk\n                       ^^^^^^^\n  = help: did you mean `filesink`?\n"
        );
    }

    #[test]
    fn offsets_in_a_value_map_back_through_quotes_and_escapes() {
        // Bare, single-quoted, escapes in double quotes, an escaped space, the end, UTF-8.
        assert_eq!(value_char_span("abc", 1), (1, 2));
        assert_eq!(value_char_span("'size > x'", 5), (6, 7));
        assert_eq!(value_char_span(r#""a \"b\" c""#, 2), (3, 5));
        assert_eq!(value_char_span(r"a\ b", 1), (1, 3));
        assert_eq!(value_char_span(r"a\nb", 2), (2, 3));
        assert_eq!(value_char_span("abc", 3), (3, 3));
        assert_eq!(value_char_span("'é!'", 2), (3, 4));
    }

    #[test]
    fn caret_at_end_of_text_and_in_long_lines() {
        let d = Diagnostic::new("x", 5..5);
        assert!(d.render("abcde").ends_with("       ^\n"));
        let long = format!("{} ! bad", "fakesrc ! identity ".repeat(20));
        let at = long.find("bad").unwrap();
        let r = Diagnostic::new("x", at..at + 3).render(&long);
        let lines: Vec<_> = r.lines().collect();
        assert!(lines[1].starts_with("  ...") && lines[1].len() < 120);
        let caret = lines[2].find('^').unwrap();
        assert_eq!(&lines[1][caret..caret + 3], "bad");
    }
}
