//! Links the two command-line binaries as position-dependent executables.
//!
//! A position-independent executable makes the dynamic loader rewrite every pointer in the
//! binary's relocated read-only data at each start: some 30 000 relocations and 120 page faults,
//! a quarter of a millisecond of a one-buffer pipeline's run. Linked at a fixed address those
//! pointers are final in the file. Shared libraries, heap, stacks and memory maps stay
//! randomized; only the executable's own image loses address randomization. Set
//! `PARALLAX_PIE=1` at build time to keep the position-independent link.
fn main() {
    println!("cargo:rerun-if-env-changed=PARALLAX_PIE");
    let target = std::env::var("TARGET").unwrap_or_default();
    if std::env::var_os("PARALLAX_PIE").is_none() && target.contains("linux-gnu") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
