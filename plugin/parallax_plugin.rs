//! The Rust side of `parallax_plugin.h`: the same `#[repr(C)]` types (Parallax itself reads
//! plugins through them, and a test compiles the header against their sizes and offsets), and
//! for plugin authors the [`Element`] trait and the [`parallax_plugin!`] macro, which turn an
//! ordinary Rust type into the exported descriptor and vtable of a `cdylib`.
//!
//! A plugin crate either depends on `parallax` (feature `macros`: `parallax::plugin_sdk`) or,
//! with nothing to build but itself, includes this one file as a module:
//! `#[path = "parallax_plugin.rs"] mod parallax_plugin;` (no dependency, no unsafe of its own).
//! The ownership rules are the header's.
// Fields mirror the header, where they are documented.
#![allow(non_camel_case_types, dead_code, missing_docs)]

use std::ffi::{c_char, c_void, CStr};

/// The ABI version of this file and of `parallax_plugin.h`.
pub const PX_ABI_VERSION: u32 = 1;
/// The minor version: what this file adds to version 1, which older plugins (minor 0) lack.
pub const PX_ABI_MINOR: u32 = 1;
/// The symbol a plugin exports.
pub const PX_ENTRY_SYMBOL: &str = "parallax_plugin_v1";
/// "Unknown" for a buffer's pts, duration and offset.
pub const PX_NONE: u64 = u64::MAX;
/// Bytes of `px_error::message`, with its NUL.
pub const PX_ERROR_LEN: usize = 512;
/// Success.
pub const PX_OK: i32 = 0;
/// Failure; the message is in the `px_error`.
pub const PX_ERROR: i32 = 1;
/// `produce`: end of stream (minor 1).
pub const PX_EOS: i32 = 2;
/// Property kinds.
pub const PX_PROP_BOOL: u32 = 0;
/// Signed integer.
pub const PX_PROP_INT: u32 = 1;
/// Double.
pub const PX_PROP_FLOAT: u32 = 2;
/// Text.
pub const PX_PROP_STRING: u32 = 3;
/// One of a list of nicks.
pub const PX_PROP_ENUM: u32 = 4;
/// Output caps are the input's.
pub const PX_CAPS_PASSTHROUGH: u32 = 0;
/// Output caps are the src template's.
pub const PX_CAPS_FIXED: u32 = 1;
/// Computation bound.
pub const PX_HINT_CPU: u32 = 1;
/// Never blocks, allocates or locks per buffer.
pub const PX_HINT_RT_SAFE: u32 = 2;

/// A property's type, default and range.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct px_prop_spec {
    pub name: *const c_char,
    pub doc: *const c_char,
    pub kind: u32,
    pub n_enum_values: u32,
    pub enum_values: *const *const c_char,
    pub int_default: i64,
    pub int_min: i64,
    pub int_max: i64,
    pub float_default: f64,
    pub float_min: f64,
    pub float_max: f64,
    pub string_default: *const c_char,
}

/// A property's value, passed to `create`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct px_prop_value {
    pub name: *const c_char,
    pub kind: u32,
    pub reserved: u32,
    pub int_value: i64,
    pub float_value: f64,
    pub string_value: *const c_char,
}

/// A buffer lent to `process`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct px_buffer {
    pub data: *const u8,
    pub len: usize,
    pub pts: u64,
    pub duration: u64,
    pub offset: u64,
    pub sequence: u64,
}

/// Where a plugin writes why it failed.
#[repr(C)]
pub struct px_error {
    pub message: [c_char; PX_ERROR_LEN],
}

/// Where a plugin's output goes: slots of Parallax's memory.
#[repr(C)]
pub struct px_output {
    pub host: *mut c_void,
    pub lend: unsafe extern "C" fn(output: *mut px_output, capacity: *mut usize) -> *mut u8,
    pub push: unsafe extern "C" fn(output: *mut px_output, len: usize) -> i32,
}

/// An element's functions.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct px_element_vtable {
    pub create: Option<
        unsafe extern "C" fn(
            props: *const px_prop_value,
            n_props: usize,
            sink_caps: *const c_char,
            error: *mut px_error,
        ) -> *mut c_void,
    >,
    pub process: Option<
        unsafe extern "C" fn(
            instance: *mut c_void,
            input: *const px_buffer,
            output: *mut px_output,
            error: *mut px_error,
        ) -> i32,
    >,
    pub end_of_stream: Option<
        unsafe extern "C" fn(
            instance: *mut c_void,
            output: *mut px_output,
            error: *mut px_error,
        ) -> i32,
    >,
    pub destroy: Option<unsafe extern "C" fn(instance: *mut c_void)>,
    /// Minor 1: a source's.
    pub produce: Option<
        unsafe extern "C" fn(
            instance: *mut c_void,
            output: *mut px_output,
            error: *mut px_error,
        ) -> i32,
    >,
    /// Minor 1: a sink's.
    pub render: Option<
        unsafe extern "C" fn(
            instance: *mut c_void,
            input: *const px_buffer,
            error: *mut px_error,
        ) -> i32,
    >,
}

/// One element of a plugin.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct px_element_desc {
    pub name: *const c_char,
    pub klass: *const c_char,
    pub summary: *const c_char,
    pub doc: *const c_char,
    pub sink_caps: *const c_char,
    pub src_caps: *const c_char,
    pub caps_rule: u32,
    pub hints: u32,
    pub props: *const px_prop_spec,
    pub n_props: usize,
    pub vtable: *const px_element_vtable,
}

/// What `parallax_plugin_v1` returns.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct px_plugin_desc {
    pub abi_version: u32,
    pub abi_minor: u32,
    pub name: *const c_char,
    pub version: *const c_char,
    pub description: *const c_char,
    pub elements: *const px_element_desc,
    pub n_elements: usize,
}

/// The exported entry point's type.
pub type px_plugin_entry = unsafe extern "C" fn() -> *const px_plugin_desc;

// --- for plugin authors ---------------------------------------------------------------------

/// A property's value as an element's `create` sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum PropValue {
    /// `PX_PROP_BOOL`.
    Bool(bool),
    /// `PX_PROP_INT`.
    Int(i64),
    /// `PX_PROP_FLOAT`.
    Float(f64),
    /// `PX_PROP_STRING`.
    Str(Option<String>),
    /// `PX_PROP_ENUM`: the index of the nick.
    Enum(u32),
}

/// Every property of the element with its value, in descriptor order.
#[derive(Debug, Clone, Default)]
pub struct Props(pub Vec<(String, PropValue)>);

impl Props {
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&PropValue> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// An integer property's value.
    pub fn int(&self, name: &str) -> Result<i64, String> {
        match self.get(name) {
            Some(PropValue::Int(v)) => Ok(*v),
            _ => Err(format!("no integer property `{name}`")),
        }
    }

    /// A float property's value.
    pub fn float(&self, name: &str) -> Result<f64, String> {
        match self.get(name) {
            Some(PropValue::Float(v)) => Ok(*v),
            _ => Err(format!("no float property `{name}`")),
        }
    }

    /// A boolean property's value.
    pub fn bool(&self, name: &str) -> Result<bool, String> {
        match self.get(name) {
            Some(PropValue::Bool(v)) => Ok(*v),
            _ => Err(format!("no boolean property `{name}`")),
        }
    }
}

/// A property of an element, described in Rust.
#[derive(Debug, Clone, Copy)]
pub struct Prop {
    /// Kebab-case name.
    pub name: &'static CStr,
    /// One line.
    pub doc: &'static CStr,
    /// Type, default and range.
    pub kind: PropKind,
}

/// A property's type, default and range.
#[derive(Debug, Clone, Copy)]
pub enum PropKind {
    /// true / false.
    Bool(bool),
    /// An integer in `min..=max`.
    Int { default: i64, min: i64, max: i64 },
    /// A float in `min..=max`.
    Float { default: f64, min: f64, max: f64 },
    /// Text.
    Str(Option<&'static CStr>),
    /// One of `values`; `default` indexes it.
    Enum {
        default: u32,
        values: &'static [&'static CStr],
    },
}

impl Prop {
    /// The C descriptor of this property (an enum's nick array is allocated once and kept).
    pub fn to_c(&self) -> px_prop_spec {
        let mut spec = px_prop_spec {
            name: self.name.as_ptr(),
            doc: self.doc.as_ptr(),
            kind: PX_PROP_BOOL,
            n_enum_values: 0,
            enum_values: std::ptr::null(),
            int_default: 0,
            int_min: 0,
            int_max: 1,
            float_default: 0.0,
            float_min: 0.0,
            float_max: 0.0,
            string_default: std::ptr::null(),
        };
        match self.kind {
            PropKind::Bool(d) => spec.int_default = i64::from(d),
            PropKind::Int { default, min, max } => {
                (spec.kind, spec.int_default, spec.int_min, spec.int_max) =
                    (PX_PROP_INT, default, min, max)
            }
            PropKind::Float { default, min, max } => {
                (
                    spec.kind,
                    spec.float_default,
                    spec.float_min,
                    spec.float_max,
                ) = (PX_PROP_FLOAT, default, min, max)
            }
            PropKind::Str(d) => {
                spec.kind = PX_PROP_STRING;
                spec.string_default = d.map_or(std::ptr::null(), CStr::as_ptr);
            }
            PropKind::Enum { default, values } => {
                let nicks: Vec<*const c_char> = values.iter().map(|v| v.as_ptr()).collect();
                spec.kind = PX_PROP_ENUM;
                spec.int_default = i64::from(default);
                spec.n_enum_values = values.len() as u32;
                spec.enum_values = Box::leak(nicks.into_boxed_slice()).as_ptr();
            }
        }
        spec
    }
}

/// Where an element's output goes.
pub trait Output {
    /// A writable slot of Parallax's memory, or `None` when the pipeline is stopping.
    fn lend(&mut self) -> Option<&mut [u8]>;
    /// Passes on the first `len` bytes of the slot lent last.
    fn push(&mut self, len: usize) -> Result<(), String>;
}

/// An element of a plugin written in Rust: [`parallax_plugin!`] exports it.
pub trait Element: Sized + Send + 'static {
    /// A new instance, from every property's value and the caps negotiated on the sink pad.
    fn create(props: &Props, sink_caps: &str) -> Result<Self, String>;
    /// Handles one buffer: zero or more outputs through `out`.
    fn process(&mut self, input: &[u8], out: &mut dyn Output) -> Result<(), String>;
    /// After the last buffer: pass on whatever is held.
    fn end_of_stream(&mut self, _out: &mut dyn Output) -> Result<(), String> {
        Ok(())
    }
}

/// Exports a plugin: the `parallax_plugin_v1` symbol and a vtable per element.
///
/// ```ignore
/// parallax_plugin! {
///     name: c"rot13", version: c"1.0.0", description: c"Letters rotated by 13",
///     elements: [Rot13 {
///         name: c"rot13", summary: c"Rotates ASCII letters by 13", doc: c"...",
///         sink_caps: c"ANY", src_caps: c"ANY", caps_rule: PX_CAPS_FIXED, hints: PX_HINT_CPU,
///         props: [],
///     }],
/// }
/// ```
#[macro_export]
macro_rules! parallax_plugin {
    (
        name: $pname:expr, version: $pver:expr, description: $pdesc:expr,
        elements: [ $( $ty:ty {
            name: $name:expr, summary: $summary:expr, doc: $doc:expr,
            sink_caps: $sink:expr, src_caps: $src:expr, caps_rule: $rule:expr, hints: $hints:expr,
            props: [ $( $prop:expr ),* $(,)? ] $(,)?
        } ),+ $(,)? ] $(,)?
    ) => {
        #[doc(hidden)]
        #[allow(unsafe_code, clippy::missing_safety_doc)]
        pub mod __parallax_plugin_glue {
            use super::*;
            use std::ffi::{c_char, c_void, CStr};

            fn say(error: *mut px_error, text: &str) {
                if error.is_null() {
                    return;
                }
                let n = text.len().min(PX_ERROR_LEN - 1);
                // SAFETY: the host passes a px_error of PX_ERROR_LEN bytes, valid for the call.
                let message = unsafe { &mut (*error).message };
                for (d, s) in message.iter_mut().zip(&text.as_bytes()[..n]) {
                    *d = *s as c_char;
                }
                message[n] = 0;
            }

            struct HostOutput(*mut px_output, Option<usize>);

            impl Output for HostOutput {
                fn lend(&mut self) -> Option<&mut [u8]> {
                    let mut capacity = 0usize;
                    // SAFETY: the host's px_output is valid for the call this runs in.
                    let ptr = unsafe { ((*self.0).lend)(self.0, &mut capacity) };
                    if ptr.is_null() {
                        self.1 = None;
                        return None;
                    }
                    self.1 = Some(capacity);
                    // SAFETY: the host lends `capacity` writable bytes until push or return.
                    Some(unsafe { std::slice::from_raw_parts_mut(ptr, capacity) })
                }

                fn push(&mut self, len: usize) -> Result<(), String> {
                    // SAFETY: as in lend.
                    match unsafe { ((*self.0).push)(self.0, len) } {
                        PX_OK => Ok(()),
                        _ => Err(format!("the host refused {len} bytes")),
                    }
                }
            }

            fn text(ptr: *const c_char) -> Option<String> {
                // SAFETY: the host passes NUL-terminated strings valid for the call, or NULL.
                (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
            }

            pub unsafe extern "C" fn create<T: Element>(
                props: *const px_prop_value,
                n_props: usize,
                sink_caps: *const c_char,
                error: *mut px_error,
            ) -> *mut c_void {
                let values = if props.is_null() {
                    &[][..]
                } else {
                    // SAFETY: the host lends n_props values for the call.
                    unsafe { std::slice::from_raw_parts(props, n_props) }
                };
                let props = Props(
                    values
                        .iter()
                        .map(|v| {
                            let value = match v.kind {
                                PX_PROP_BOOL => PropValue::Bool(v.int_value != 0),
                                PX_PROP_INT => PropValue::Int(v.int_value),
                                PX_PROP_FLOAT => PropValue::Float(v.float_value),
                                PX_PROP_ENUM => PropValue::Enum(v.int_value as u32),
                                _ => PropValue::Str(text(v.string_value)),
                            };
                            (text(v.name).unwrap_or_default(), value)
                        })
                        .collect(),
                );
                let caps = text(sink_caps).unwrap_or_default();
                match std::panic::catch_unwind(|| T::create(&props, &caps)) {
                    Ok(Ok(element)) => Box::into_raw(Box::new(element)).cast(),
                    Ok(Err(e)) => {
                        say(error, &e);
                        std::ptr::null_mut()
                    }
                    Err(_) => {
                        say(error, "the element panicked in create");
                        std::ptr::null_mut()
                    }
                }
            }

            fn run(error: *mut px_error, f: impl FnOnce() -> Result<(), String>) -> i32 {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                    Ok(Ok(())) => PX_OK,
                    Ok(Err(e)) => {
                        say(error, &e);
                        PX_ERROR
                    }
                    Err(_) => {
                        say(error, "the element panicked");
                        PX_ERROR
                    }
                }
            }

            pub unsafe extern "C" fn process<T: Element>(
                instance: *mut c_void,
                input: *const px_buffer,
                output: *mut px_output,
                error: *mut px_error,
            ) -> i32 {
                // SAFETY: `instance` came from create::<T> and is called from one thread.
                let element = unsafe { &mut *instance.cast::<T>() };
                // SAFETY: the host lends the input for the call.
                let input = unsafe { &*input };
                let data = if input.len == 0 {
                    &[][..]
                } else {
                    // SAFETY: as above: `len` readable bytes at `data`.
                    unsafe { std::slice::from_raw_parts(input.data, input.len) }
                };
                run(error, || element.process(data, &mut HostOutput(output, None)))
            }

            pub unsafe extern "C" fn end_of_stream<T: Element>(
                instance: *mut c_void,
                output: *mut px_output,
                error: *mut px_error,
            ) -> i32 {
                // SAFETY: as in process.
                let element = unsafe { &mut *instance.cast::<T>() };
                run(error, || element.end_of_stream(&mut HostOutput(output, None)))
            }

            pub unsafe extern "C" fn destroy<T: Element>(instance: *mut c_void) {
                // SAFETY: created by Box::into_raw in create::<T>; destroyed once, last.
                drop(unsafe { Box::from_raw(instance.cast::<T>()) });
            }

            fn describe() -> *const px_plugin_desc {
                let elements = vec![$(
                    px_element_desc {
                        name: CStr::as_ptr($name),
                        klass: c"filter".as_ptr(),
                        summary: CStr::as_ptr($summary),
                        doc: CStr::as_ptr($doc),
                        sink_caps: CStr::as_ptr($sink),
                        src_caps: CStr::as_ptr($src),
                        caps_rule: $rule,
                        hints: $hints,
                        props: {
                            let props: Vec<px_prop_spec> = vec![$( Prop::to_c(&$prop) ),*];
                            Box::leak(props.into_boxed_slice()).as_ptr()
                        },
                        n_props: [$( stringify!($prop) ),*].len(),
                        vtable: Box::leak(Box::new(px_element_vtable {
                            create: Some(create::<$ty>),
                            process: Some(process::<$ty>),
                            end_of_stream: Some(end_of_stream::<$ty>),
                            destroy: Some(destroy::<$ty>),
                            produce: None,
                            render: None,
                        })),
                    }
                ),+];
                let n_elements = elements.len();
                Box::leak(Box::new(px_plugin_desc {
                    abi_version: PX_ABI_VERSION,
                    abi_minor: PX_ABI_MINOR,
                    name: CStr::as_ptr($pname),
                    version: CStr::as_ptr($pver),
                    description: CStr::as_ptr($pdesc),
                    elements: Box::leak(elements.into_boxed_slice()).as_ptr(),
                    n_elements,
                }))
            }

            /// The plugin's entry point.
            #[no_mangle]
            pub extern "C" fn parallax_plugin_v1() -> *const px_plugin_desc {
                static DESC: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
                *DESC.get_or_init(|| describe() as usize) as *const px_plugin_desc
            }
        }
    };
}
