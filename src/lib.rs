//! Parallax: a streaming pipeline engine with a gst-launch compatible command line.
//!
//! This library is internal (`publish = false`): it serves the two binaries,
//! `parallax-launch` and `parallax-inspect`, and promises no stable API.
//!
//! Data path: [`parse`] turns a description into an AST, [`graph`] validates it against the
//! [`registry`] into a DAG, [`exec`] plans it into fused segments and runs them; buffers live in
//! [`memory`] pools backed by memfd shared memory.

#![warn(missing_docs)]

pub mod caps;
pub mod cli;
pub mod element;
#[path = "../elements/mod.rs"]
pub mod elements;
pub mod exec;
pub mod graph;
#[allow(unsafe_code)]
pub mod ipc;
#[allow(unsafe_code)]
pub mod memory;
pub mod parse;
pub mod plugin;
pub mod registry;

/// The Rust side of the plugin ABI (`plugin/parallax_plugin.h`) for plugin authors: the
/// `#[repr(C)]` types, [`plugin_sdk::Element`] and the `parallax_plugin!` macro.
#[cfg(feature = "macros")]
pub use plugin::abi as plugin_sdk;
pub mod typed;
