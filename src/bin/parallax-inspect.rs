//! `parallax-inspect`: the element list, or one element's card.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use parallax::cli::InspectArgs;
use parallax::registry::{self, Effect, Factory, PadPresence, PropKind};

fn main() -> ExitCode {
    if let Some(code) = parallax::plugin::probe_if_asked() {
        return ExitCode::from(code);
    }
    let args = InspectArgs::parse();
    for p in &args.plugin_path {
        parallax::plugin::add_search_path(p);
    }
    let mut out = std::io::stdout().lock();
    let text = match &args.element {
        None if args.features => features(),
        None if args.json => listing_json(&args.types) + "\n",
        None => listing(&args.types),
        Some(path) if path.contains('/') => match describe_file(path, args.json) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("error: {path}: {e}");
                return ExitCode::from(1);
            }
        },
        Some(name) => match registry::find(name) {
            Some(_) if args.exists => return ExitCode::SUCCESS,
            Some(f) if args.json => card_json(f).to_string() + "\n",
            Some(f) => card(f),
            None if args.exists => return ExitCode::from(1),
            None => {
                eprint!(
                    "error: no element `{name}`\n  = help: {}\n",
                    registry::unknown_element_help(name)
                );
                return ExitCode::from(1);
            }
        },
    };
    match out.write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: writing to stdout: {e}");
            ExitCode::from(1)
        }
    }
}

/// `parallax-inspect path/to/libfoo.so`: the plugin, then each element's card.
fn describe_file(path: &str, json: bool) -> Result<String, String> {
    let (info, factories) = parallax::plugin::describe_file(std::path::Path::new(path))?;
    if json {
        let elements: Vec<_> = factories.iter().map(|f| card_json(f)).collect();
        let v = serde_json::json!({
            "schema": 1,
            "file": path,
            "plugin": info.name,
            "version": info.version,
            "description": info.description,
            "elements": elements,
        });
        return Ok(v.to_string() + "\n");
    }
    let mut s = format!(
        "Plugin {} {}\n  file: {path}\n  {}\n  elements: {}\n",
        info.name,
        info.version,
        info.description,
        factories
            .iter()
            .map(|f| f.name)
            .collect::<Vec<_>>()
            .join(", ")
    );
    for f in factories {
        s.push('\n');
        s.push_str(&card(f));
    }
    Ok(s)
}

/// `--features`: every optional feature, whether this build has it, and what it brings.
fn features() -> String {
    let mut out = String::new();
    for f in registry::features::FEATURES {
        let mark = if f.built { "+" } else { "-" };
        out += &format!(
            "{mark} {:<14} {} [{}]\n",
            f.name,
            f.doc,
            f.elements.join(", ")
        );
    }
    out
}

/// Factories of the requested classes (all when none is given), sorted by name.
fn selected(types: &[String]) -> Vec<&'static Factory> {
    let mut factories: Vec<&Factory> = registry::all()
        .filter(|f| {
            types.is_empty()
                || types
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(f.klass.as_str()))
        })
        .collect();
    factories.sort_by_key(|f| f.name);
    factories
}

/// `{"schema": 1, "elements": [{name, aliases, class, summary}]}`
fn listing_json(types: &[String]) -> String {
    let elements: Vec<_> = selected(types)
        .iter()
        .map(|f| {
            let mut v = serde_json::json!({
                "name": f.name,
                "aliases": f.aliases,
                "class": f.klass.as_str(),
                "summary": f.summary,
            });
            if let Some(origin) = parallax::plugin::origin(f) {
                v["origin"] = serde_json::json!(origin);
            }
            v
        })
        .collect();
    serde_json::json!({ "schema": 1, "elements": elements }).to_string()
}

/// One element's card as JSON (schema 1, documented in README).
fn card_json(f: &Factory) -> serde_json::Value {
    let pads: Vec<_> = [
        ("sink", f.pads.sink, f.pads.sink_template()),
        ("src", f.pads.src, f.pads.src_template()),
    ]
    .into_iter()
    .filter_map(|(dir, p, caps)| {
        let (t, presence) = match p {
            PadPresence::None => return None,
            PadPresence::Always(t) => (t, "always"),
            PadPresence::Request(t) => (t, "request"),
        };
        Some(serde_json::json!({
            "direction": dir,
            "template": t,
            "presence": presence,
            "caps": caps.to_string(),
        }))
    })
    .collect();
    let props: Vec<_> = f
        .props
        .iter()
        .map(|p| {
            let (effect, why) = match p.effect {
                Effect::Applied => ("applied", None),
                Effect::Ignored(why) => ("ignored", Some(why)),
                Effect::ReadOnly => ("read-only", None),
            };
            let mut v = serde_json::json!({
                "name": p.name,
                "type": p.kind.type_name(),
                "default": p.kind.default_value().to_string(),
                "doc": p.doc,
                "effect": effect,
                "mutable_while_running": p.mutable_while_running,
                "required": p.required,
            });
            if let Some(why) = why {
                v["ignored_because"] = why.into();
            }
            match p.kind {
                PropKind::Int { min, max, .. } | PropKind::Time { min, max, .. } => {
                    v["min"] = min.into();
                    v["max"] = max.into();
                }
                PropKind::UInt { min, max, .. } => {
                    v["min"] = min.into();
                    v["max"] = max.into();
                }
                PropKind::Float { min, max, .. } => {
                    v["min"] = min.into();
                    v["max"] = max.into();
                }
                PropKind::Enum { values, .. } => {
                    v["values"] = values
                        .iter()
                        .map(
                            |e| serde_json::json!({"nick": e.nick, "value": e.value, "doc": e.doc}),
                        )
                        .collect();
                }
                _ => {}
            }
            v
        })
        .collect();
    let mut card = serde_json::json!({
        "schema": 1,
        "name": f.name,
        "aliases": f.aliases,
        "class": f.klass.as_str(),
        "summary": f.summary,
        "doc": f.doc,
        "pads": pads,
        "properties": props,
        "hints": f.hints,
        "placement": f.placement(),
        "exec": f.exec_choices().iter().map(|(v, _)| *v).collect::<Vec<_>>(),
    });
    if let Some(origin) = parallax::plugin::origin(f) {
        card["origin"] = serde_json::json!(origin);
    }
    card
}

fn listing(types: &[String]) -> String {
    let factories = selected(types);
    let width = factories.iter().map(|f| f.name.len()).max().unwrap_or(0);
    // Laid out by hand into one string: `format!` with padding per line was a third of the
    // listing's instructions (names and classes are ASCII, so a byte is a column).
    let mut s = String::with_capacity(factories.len() * (width + 96));
    let pad = |s: &mut String, n: usize| s.extend(std::iter::repeat_n(' ', n));
    for f in &factories {
        s.push_str(f.name);
        pad(&mut s, width - f.name.len() + 2);
        let klass = f.klass.as_str();
        s.push_str(klass);
        pad(&mut s, 8usize.saturating_sub(klass.len()) + 2);
        s.push_str(f.summary);
        if !f.aliases.is_empty() {
            s.push_str(" (alias: ");
            s.push_str(&f.aliases.join(", "));
            s.push(')');
        }
        if let Some(o) = parallax::plugin::origin(f) {
            s.push_str(&format!(
                "  [plugin {} {}: {}]",
                o.plugin,
                o.version,
                o.file.display()
            ));
        }
        s.push('\n');
    }
    s.push_str(&format!("\n{} elements\n", factories.len()));
    s
}

fn card(f: &Factory) -> String {
    let mut s = format!(
        "{}: {}\n\n  class: {}\n",
        f.name,
        f.summary,
        f.klass.as_str()
    );
    if !f.aliases.is_empty() {
        s.push_str(&format!("  aliases: {}\n", f.aliases.join(", ")));
    }
    if let Some(o) = parallax::plugin::origin(f) {
        s.push_str(&format!(
            "  plugin: {} {} ({})\n",
            o.plugin,
            o.version,
            o.file.display()
        ));
    }
    s.push_str(&format!("\n{}\n\nPads:\n", f.doc));
    for (dir, p, caps) in [
        ("sink", f.pads.sink, f.pads.sink_template()),
        ("src", f.pads.src, f.pads.src_template()),
    ] {
        match p {
            PadPresence::None => continue,
            PadPresence::Always(n) => s.push_str(&format!("  {dir:4}  {n}  always\n")),
            PadPresence::Request(n) => s.push_str(&format!("  {dir:4}  {n}  on request\n")),
        }
        s.push_str(&template_caps(&caps));
    }
    s.push_str("\nProperties:\n");
    for p in f.props {
        let default = p.kind.default_value();
        let range = p.range_text();
        s.push_str(&format!(
            "  {}  {}  default {}",
            p.name,
            p.kind.type_name(),
            default
        ));
        if !range.is_empty() && !matches!(p.kind, PropKind::Bool { .. }) {
            s.push_str(&format!("  ({range})"));
        }
        if p.required {
            s.push_str("  required");
        }
        s.push('\n');
        s.push_str(&format!("      {}\n", p.doc));
        match p.effect {
            Effect::Applied => {}
            Effect::Ignored(why) => s.push_str(&format!("      accepted and ignored: {why}\n")),
            Effect::ReadOnly => s.push_str("      read-only\n"),
        }
        if p.mutable_while_running {
            s.push_str("      mutable while running (parallax-launch --control: set)\n");
        }
    }
    let h = f.hints;
    s.push_str(&format!(
        "\nExecution hints:\n  trust {:?}, processing {:?}, latency {:?}, native code {}, rt-safe {}\n",
        h.trust, h.processing, h.latency, h.native_code, h.rt_safe
    ));
    s.push_str(&format!("  planner: {}\n", f.placement()));
    for (value, what) in f.exec_choices() {
        s.push_str(&format!("  exec={value}: {what}\n"));
    }
    s.push_str(&format!(
        "  trust={}, latency={}: override the hints for one instance (untrusted: isolated and \
         sandboxed; low latency and RT-safe: an rt thread)\n",
        parallax::registry::Trust::NAMES.join("|"),
        parallax::registry::Latency::NAMES.join("|"),
    ));
    s
}

/// A pad template's caps as gst-inspect lays them out: the media type, then a field a line.
fn template_caps(caps: &parallax::caps::Caps) -> String {
    let structures = caps.structures();
    if structures.is_empty() {
        return format!("        {caps}\n");
    }
    let mut out = String::new();
    for st in structures {
        let mut head = st.name.clone();
        if !st.features.is_empty() {
            head.push_str(&format!("({})", st.features.join(", ")));
        }
        out.push_str(&format!("        {head}\n"));
        for (k, v) in &st.fields {
            out.push_str(&format!("        {k:>22}: {v}\n"));
        }
    }
    out
}
