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

/// gst's variable, read like [`ENV`] when that is not set, so a GST_DEBUG in the environment
/// works as it does for gst-launch.
pub const GST_ENV: &str = "GST_DEBUG";

/// What `--gst-debug-help` prints.
pub const HELP: &str = "\
Log filters (-d FILTER, --gst-debug=LIST, --gst-debug-level=LEVEL, PARALLAX_LOG, GST_DEBUG):
  a comma-separated list of LEVEL or TARGET:LEVEL (TARGET=LEVEL works too)
  LEVEL   0 none, 1 error, 2 warning, 3-4 info, 5 debug, 6-9 trace, or those names
  TARGET  an element factory (filesrc: every filesrc), an element name (filesrc0, or
          what name= gave), a pattern with * (*src), or a module path (parallax::exec)
Examples: -d 3   -d filesrc:5   --gst-debug=*:2,filesink0:6   PARALLAX_LOG=debug
The flags win over PARALLAX_LOG, which wins over GST_DEBUG.
";

/// Turns a user's filter into env-filter directives (see the module doc); a directive that
/// is neither gst's form nor tracing's is an error naming it.
pub fn directives(spec: &str) -> Result<String, String> {
    Ok(spec
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(directive)
        .collect::<Result<Vec<_>, _>>()?
        .join(","))
}

fn directive(d: &str) -> Result<String, String> {
    // Already tracing syntax: a span selector or a module path.
    if d.contains('[') || d.contains("::") {
        return Ok(d.to_owned());
    }
    let (target, level_text) = match d.rfind(['=', ':']) {
        Some(i) => (Some(&d[..i]), &d[i + 1..]),
        None if level(d).is_some() => (None, d),
        None => (Some(d), "trace"),
    };
    let Some(level) = level(level_text) else {
        let what = if level_text.is_empty() {
            "no level".to_owned()
        } else {
            format!("`{level_text}` is not a level")
        };
        return Err(format!(
            "`{d}`: {what} (0-9, none, error, warning, info, debug, log, trace)"
        ));
    };
    let level = level.to_owned();
    if let Some(t) = target.filter(|t| {
        !t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '*' | '.'))
    }) {
        return Err(format!(
            "`{d}`: `{t}` is not an element factory, name or pattern"
        ));
    }
    Ok(match target {
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
    })
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

/// The filter in force and where it came from: the flags' if given (see
/// [`crate::cli::LaunchArgs::log_flags`]), else `PARALLAX_LOG`, else `GST_DEBUG`, each if set
/// and not empty.
pub fn requested(flags: Option<(&'static str, String)>) -> Option<(&'static str, String)> {
    flags.or_else(|| {
        [ENV, GST_ENV].into_iter().find_map(|var| {
            let v = std::env::var(var).ok()?;
            (!v.trim().is_empty()).then_some((var, v))
        })
    })
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
/// `colour` forces colours on or off (`None`: when stderr is a terminal).
pub fn init(spec: &str, console: Console, colour: Option<bool>) -> Result<(), String> {
    check_size(spec)?;
    let translated = directives(spec).map_err(|e| format!("invalid log filter `{spec}`: {e}"))?;
    let filter = EnvFilter::builder()
        .parse(&translated)
        .map_err(|e| format!("invalid log filter `{spec}`: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || ConsoleWriter(console.clone()))
        .with_ansi(colour.unwrap_or_else(|| std::io::stderr().is_terminal()))
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

    fn directives_ok(spec: &str) -> String {
        directives(spec).unwrap()
    }

    #[test]
    fn nonsense_is_refused_with_its_directive() {
        let e = directives("bogus===").unwrap_err();
        assert!(e.contains("`bogus===`: no level"), "{e}");
        let e = directives("fil(e:5").unwrap_err();
        assert!(e.contains("`fil(e`"), "{e}");
    }

    #[test]
    fn factories_and_names_select_element_spans() {
        assert_eq!(
            directives_ok("info,filesrc=trace"),
            "info,[element{factory=filesrc}]=trace"
        );
        assert_eq!(directives_ok("src=debug"), "[element{name=src}]=debug");
        assert_eq!(
            directives_ok("nullsink=debug"),
            "[element{factory=fakesink}]=debug"
        );
        assert_eq!(
            directives_ok("parallax::exec=debug"),
            "parallax::exec=debug"
        );
        assert_eq!(directives_ok("parallax=info"), "parallax=info");
    }

    #[test]
    fn gst_forms_are_understood() {
        assert_eq!(directives_ok("*:3"), "info");
        assert_eq!(directives_ok("2"), "warn");
        assert_eq!(
            directives_ok("filesrc:5"),
            "[element{factory=filesrc}]=debug"
        );
        assert_eq!(directives_ok("*src:6"), "[element{factory=.*src}]=trace");
        assert_eq!(
            directives_ok("fakesink0=log"),
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
                .parse(directives(spec).unwrap())
                .unwrap_or_else(|e| panic!("{spec}: {e}"));
        }
    }
}
