//! A plugin's descriptor as owned Rust values: what the probe child sends the parent (as JSON),
//! checked here for what the C side cannot promise (names, classes, caps, ranges).

use serde::{Deserialize, Serialize};

use super::abi::{PX_CAPS_FIXED, PX_CAPS_PASSTHROUGH};

/// What a plugin declares.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub struct PluginInfo {
    /// The plugin's name.
    pub name: String,
    /// Its version text.
    pub version: String,
    /// One line.
    pub description: String,
    /// Its elements.
    pub elements: Vec<ElementInfo>,
}

/// One element of a plugin.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub struct ElementInfo {
    /// Element name.
    pub name: String,
    /// `filter`, `source` or `sink` (the last two from ABI version 1.1).
    pub klass: String,
    /// One line.
    pub summary: String,
    /// A paragraph.
    pub doc: String,
    /// Sink template caps text.
    pub sink_caps: String,
    /// Src template caps text.
    pub src_caps: String,
    /// `PX_CAPS_*`.
    pub caps_rule: u32,
    /// `PX_HINT_*` bits.
    pub hints: u32,
    /// Properties, in order.
    pub props: Vec<PropInfo>,
}

/// One property of a plugin element.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub struct PropInfo {
    /// Kebab-case name.
    pub name: String,
    /// One line.
    pub doc: String,
    /// Type, default and range.
    pub kind: PropInfoKind,
}

pub use kind::PropInfoKind;

mod kind {
    // The variants' fields say what they are; rkyv's archived and resolver types follow them.
    #![allow(missing_docs)]

    use serde::{Deserialize, Serialize};

    /// A property's type, default and range.
    #[derive(
        Debug,
        Clone,
        PartialEq,
        Serialize,
        Deserialize,
        rkyv::Archive,
        rkyv::Serialize,
        rkyv::Deserialize,
    )]
    pub enum PropInfoKind {
        Bool { default: bool },
        Int { default: i64, min: i64, max: i64 },
        Float { default: f64, min: f64, max: f64 },
        Str { default: Option<String> },
        Enum { default: u32, values: Vec<String> },
    }
}

/// Whether `name` is an acceptable element or property name: lowercase ASCII letters, digits
/// and `-`, starting with a letter, at most 64 bytes.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl PluginInfo {
    /// What is wrong with the descriptor beyond its pointers, or `None`.
    pub fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("the plugin's name is empty".into());
        }
        if self.elements.is_empty() {
            return Err("it declares no element".into());
        }
        let mut seen = std::collections::HashSet::new();
        for e in &self.elements {
            if !valid_name(&e.name) {
                return Err(format!(
                    "element name `{}` is not lowercase letters, digits and '-'",
                    e.name.escape_debug()
                ));
            }
            if !seen.insert(e.name.as_str()) {
                return Err(format!("element `{}` is declared twice", e.name));
            }
            e.check()
                .map_err(|why| format!("element `{}`: {why}", e.name))?;
        }
        Ok(())
    }
}

impl ElementInfo {
    fn check(&self) -> Result<(), String> {
        if !["filter", "source", "sink"].contains(&self.klass.as_str()) {
            return Err(format!(
                "class `{}` (a plugin element is a filter, a source or a sink)",
                self.klass
            ));
        }
        if ![PX_CAPS_PASSTHROUGH, PX_CAPS_FIXED].contains(&self.caps_rule) {
            return Err(format!("caps rule {} is none", self.caps_rule));
        }
        for (pad, text) in [("sink", &self.sink_caps), ("src", &self.src_caps)] {
            // A source has no sink pad and a sink no src pad: those caps are not read.
            let absent = (pad, self.klass.as_str()) == ("sink", "source")
                || (pad, self.klass.as_str()) == ("src", "sink");
            if !absent {
                crate::caps::Caps::parse(text).map_err(|e| format!("{pad} caps `{text}`: {e}"))?;
            }
        }
        let mut seen = std::collections::HashSet::new();
        for p in &self.props {
            if !valid_name(&p.name) {
                return Err(format!(
                    "property name `{}` is not kebab-case",
                    p.name.escape_debug()
                ));
            }
            if !seen.insert(p.name.as_str()) {
                return Err(format!("property `{}` is declared twice", p.name));
            }
            if p.name == super::PROCESSING_DEADLINE {
                return Err(format!(
                    "property `{}` belongs to the host (its watchdog)",
                    p.name
                ));
            }
            if ["name", "exec", "trust", "latency"].contains(&p.name.as_str()) {
                return Err(format!("property `{}` is one Parallax sets itself", p.name));
            }
            let ok = match &p.kind {
                PropInfoKind::Int { default, min, max } => min <= default && default <= max,
                PropInfoKind::Float { default, min, max } => min <= default && default <= max,
                PropInfoKind::Enum { default, values } => {
                    (*default as usize) < values.len() && values.iter().all(|v| valid_name(v))
                }
                _ => true,
            };
            if !ok {
                return Err(format!(
                    "property `{}`: its default is out of its range",
                    p.name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(name: &str) -> ElementInfo {
        ElementInfo {
            name: name.into(),
            klass: "filter".into(),
            summary: "s".into(),
            doc: String::new(),
            sink_caps: "ANY".into(),
            src_caps: "ANY".into(),
            caps_rule: PX_CAPS_FIXED,
            hints: 0,
            props: Vec::new(),
        }
    }

    fn plugin(elements: Vec<ElementInfo>) -> PluginInfo {
        PluginInfo {
            name: "p".into(),
            version: "1".into(),
            description: String::new(),
            elements,
        }
    }

    #[test]
    fn a_descriptor_that_lies_is_refused_with_the_reason() {
        assert_eq!(plugin(vec![element("ok")]).check(), Ok(()));
        let twice = plugin(vec![element("a"), element("a")])
            .check()
            .unwrap_err();
        assert_eq!(twice, "element `a` is declared twice");
        assert!(plugin(vec![]).check().unwrap_err().contains("no element"));
        assert!(plugin(vec![element("Bad Name")]).check().is_err());
        let mut e = element("e");
        e.klass = "transform".into();
        assert!(plugin(vec![e])
            .check()
            .unwrap_err()
            .contains("a filter, a source or a sink"));
        let mut e = element("e");
        e.sink_caps = "audio/x-raw, rate=(int)[".into();
        assert!(plugin(vec![e]).check().unwrap_err().contains("sink caps"));
        let mut e = element("e");
        e.props.push(PropInfo {
            name: "gain".into(),
            doc: String::new(),
            kind: PropInfoKind::Int {
                default: 11,
                min: 0,
                max: 10,
            },
        });
        assert!(plugin(vec![e])
            .check()
            .unwrap_err()
            .contains("out of its range"));
        let mut e = element("e");
        e.props.push(PropInfo {
            name: "exec".into(),
            doc: String::new(),
            kind: PropInfoKind::Bool { default: false },
        });
        assert!(plugin(vec![e])
            .check()
            .unwrap_err()
            .contains("Parallax sets itself"));
    }
}
