//! rot13: a Parallax plugin in Rust. Rotates ASCII letters by `shift` places (13 by default,
//! its own inverse); every other byte passes unchanged.
//!
//! Built with nothing but rustc (the ABI module is one file, no dependency):
//!
//! ```sh
//! rustc --edition 2021 --crate-type cdylib -O -o librot13.so plugin/examples/rot13.rs
//! ```
//!
//! A crate depending on `parallax` (feature `macros`) writes `use parallax::plugin_sdk::*;`
//! and `parallax::parallax_plugin! { ... }` instead of the `#[path]` module.

#[macro_use]
#[path = "../parallax_plugin.rs"]
mod parallax_plugin;

use parallax_plugin::*;

/// The element: an ordinary Rust type.
struct Rot {
    shift: u8,
}

fn rotate(b: u8, shift: u8) -> u8 {
    match b {
        b'a'..=b'z' => b'a' + (b - b'a' + shift) % 26,
        b'A'..=b'Z' => b'A' + (b - b'A' + shift) % 26,
        _ => b,
    }
}

impl Element for Rot {
    fn create(props: &Props, _sink_caps: &str) -> Result<Self, String> {
        Ok(Rot {
            shift: props.int("shift")? as u8,
        })
    }

    fn process(&mut self, input: &[u8], out: &mut dyn Output) -> Result<(), String> {
        let Some(slot) = out.lend() else {
            return Ok(());
        };
        if slot.len() < input.len() {
            return Err(format!("a {}-byte buffer in a {}-byte slot", input.len(), slot.len()));
        }
        for (o, i) in slot.iter_mut().zip(input) {
            *o = rotate(*i, self.shift);
        }
        out.push(input.len())
    }
}

parallax_plugin! {
    name: c"rot13",
    version: c"1.0.0",
    description: c"Letters rotated (a plugin written in Rust)",
    elements: [Rot {
        name: c"rot13",
        summary: c"Rotates ASCII letters by `shift` places (a plugin written in Rust)",
        doc: c"Letters a-z and A-Z move `shift` places along the alphabet, wrapping; every other \
               byte passes unchanged. shift=13 is its own inverse.",
        sink_caps: c"ANY",
        src_caps: c"ANY",
        caps_rule: PX_CAPS_FIXED,
        hints: PX_HINT_CPU | PX_HINT_RT_SAFE,
        props: [Prop {
            name: c"shift",
            doc: c"places each letter moves",
            kind: PropKind::Int { default: 13, min: 0, max: 25 },
        }],
    }],
}
