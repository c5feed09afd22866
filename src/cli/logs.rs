//! Logs: a `tracing-subscriber` with an env-filter, set from `-d/--debug FILTER` or else from
//! `PARALLAX_LOG`, the way GST_DEBUG works. Without either, no subscriber is installed, so
//! every log call in the engine is a disabled callsite and costs nothing.
//!
//! The filter is tracing's env-filter syntax, plus gst's habits: a directive whose target is an
//! element factory (`filesrc=trace`) or an instance name (`src=debug`, `filesrc0=debug`) selects
//! the log lines of those elements (every element's work runs in a span
//! `element{name=... factory=...}`), `*` in such a name is a wildcard (`*src=debug`), gst's
//! `NAME:LEVEL` form and numeric levels (`filesrc:5`, `*:3`, `2`) are read as gst means them.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::exec::Console;

/// The environment variable read when `-d` is not given.
pub const ENV: &str = "PARALLAX_LOG";

/// Turns a user's filter into env-filter directives (see the module doc).
pub fn directives(spec: &str) -> String {
    spec.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(directive)
        .collect::<Vec<_>>()
        .join(",")
}

fn directive(d: &str) -> String {
    // Already tracing syntax: a span selector or a module path.
    if d.contains('[') || d.contains("::") {
        return d.to_owned();
    }
    let (target, level) = match d.rfind(['=', ':']) {
        Some(i) => (Some(&d[..i]), &d[i + 1..]),
        None if level(d).is_some() => (None, d),
        None => (Some(d), "trace"),
    };
    let level = level_name(level);
    match target {
        None | Some("*") | Some("") => level,
        Some("parallax") => format!("parallax={level}"),
        Some(t) if t.contains('*') => {
            let pattern = regex_of(t);
            if crate::registry::all().any(|f| glob_matches(t, f.name)) {
                format!("[element{{factory={pattern}}}]={level}")
            } else {
                format!("[element{{name={pattern}}}]={level}")
            }
        }
        Some(t) => match crate::registry::find(t) {
            Some(f) => format!("[element{{factory={}}}]={level}", f.name),
            None => format!("[element{{name={}}}]={level}", regex_of(t)),
        },
    }
}

/// gst's numeric and named levels as tracing's.
fn level(text: &str) -> Option<&'static str> {
    Some(match text.to_ascii_lowercase().as_str() {
        "0" | "none" | "off" => "off",
        "1" | "error" => "error",
        "2" | "warning" | "warn" => "warn",
        "3" | "4" | "fixme" | "info" => "info",
        "5" | "debug" => "debug",
        "6" | "7" | "8" | "9" | "log" | "trace" | "memdump" => "trace",
        _ => return None,
    })
}

fn level_name(text: &str) -> String {
    // An unknown level is left for the env-filter to reject with its own message.
    level(text).map_or_else(|| text.to_owned(), str::to_owned)
}

fn regex_of(glob: &str) -> String {
    let mut out = String::new();
    for c in glob.chars() {
        match c {
            '*' => out.push_str(".*"),
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => out.push(c),
            c => {
                out.push('\\');
                out.push(c);
            }
        }
    }
    out
}

fn glob_matches(glob: &str, name: &str) -> bool {
    let parts: Vec<&str> = glob.split('*').collect();
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(p) => rest = &rest[p + part.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}

/// The filter in force: `-d` if given, else `PARALLAX_LOG` if set and not empty.
pub fn requested(flag: Option<&str>) -> Option<String> {
    match flag {
        Some(f) => Some(f.to_owned()),
        None => std::env::var(ENV).ok().filter(|v| !v.trim().is_empty()),
    }
}

/// The longest filter accepted, in characters: hundreds of directives.
pub const MAX_FILTER: usize = 4096;
/// The longest directive accepted, in characters: far above any element name or module path.
pub const MAX_DIRECTIVE: usize = 256;

/// Bounds what the env-filter is given: each name becomes a regex whose automaton grows much
/// faster than its length (a 30 000-character filter took 13 s to parse, one name of that
/// length minutes; issue 21), so a filter or a directive over the limit is refused, named.
fn check_size(spec: &str) -> Result<(), String> {
    let shown = |text: &str| -> String {
        let head: String = text.chars().take(24).collect();
        format!("{head}…")
    };
    let len = spec.chars().count();
    if len > MAX_FILTER {
        return Err(format!(
            "log filter `{}` is {len} characters long; at most {MAX_FILTER} are accepted",
            shown(spec)
        ));
    }
    if let Some(d) = spec
        .split(',')
        .map(str::trim)
        .find(|d| d.chars().count() > MAX_DIRECTIVE)
    {
        return Err(format!(
            "log filter directive `{}` is {} characters long; at most {MAX_DIRECTIVE} are accepted",
            shown(d),
            d.chars().count()
        ));
    }
    Ok(())
}

/// Installs the subscriber for `spec`; its lines go through `console`, so that they step
/// around a progress line. An invalid filter is an error naming it.
pub fn init(spec: &str, console: Console) -> Result<(), String> {
    check_size(spec)?;
    let translated = directives(spec);
    let filter = EnvFilter::builder()
        .parse(&translated)
        .map_err(|e| format!("invalid log filter `{spec}`: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || ConsoleWriter(console.clone()))
        .with_ansi(std::io::stderr().is_terminal())
        .with_thread_names(true)
        .try_init()
        .map_err(|e| format!("cannot set up logging: {e}"))
}

/// One formatted event at a time, written to stderr through the console.
struct ConsoleWriter(Console);

impl std::io::Write for ConsoleWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn factories_and_names_select_element_spans() {
        assert_eq!(
            directives("info,filesrc=trace"),
            "info,[element{factory=filesrc}]=trace"
        );
        assert_eq!(directives("src=debug"), "[element{name=src}]=debug");
        assert_eq!(
            directives("nullsink=debug"),
            "[element{factory=fakesink}]=debug"
        );
        assert_eq!(directives("parallax::exec=debug"), "parallax::exec=debug");
        assert_eq!(directives("parallax=info"), "parallax=info");
    }

    #[test]
    fn gst_forms_are_understood() {
        assert_eq!(directives("*:3"), "info");
        assert_eq!(directives("2"), "warn");
        assert_eq!(directives("filesrc:5"), "[element{factory=filesrc}]=debug");
        assert_eq!(directives("*src:6"), "[element{factory=.*src}]=trace");
        assert_eq!(
            directives("fakesink0=log"),
            "[element{name=fakesink0}]=trace"
        );
    }

    #[test]
    fn every_translation_parses() {
        for spec in [
            "info,filesrc=trace",
            "*:3",
            "fakesink0=debug",
            "*src:6",
            "warn",
        ] {
            tracing_subscriber::EnvFilter::builder()
                .parse(directives(spec))
                .unwrap_or_else(|e| panic!("{spec}: {e}"));
        }
    }
}
