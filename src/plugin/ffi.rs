//! Every unsafe step of plugins: loading a library, reading its descriptor into owned Rust
//! values, and calling its vtable. The rest of `plugin` is safe code over [`Library`],
//! [`PluginInfo`] and [`Instance`].
//!
//! What can be checked here is: null pointers, counts out of bounds, text that is not UTF-8,
//! a wrong ABI version, a missing entry point or vtable function. What cannot (a pointer into
//! nowhere, a constructor that crashes) is why the parent reads descriptors in a child process
//! (`plugin::probe`) and runs plugin code in a worker by default.

use std::ffi::{c_char, c_void, CStr};
use std::path::Path;
use std::sync::Arc;

use super::abi::*;
use super::info::{ElementInfo, PluginInfo, PropInfo, PropInfoKind};

/// The most elements, properties and enum values a descriptor may declare: past these it is
/// taken to be garbage.
const MAX_COUNT: usize = 4096;

/// A loaded plugin library and its descriptor.
pub struct Library {
    desc: *const px_plugin_desc,
    // Last: dropping it unloads the code the pointer above points into.
    _lib: libloading::Library,
}

// SAFETY: the descriptor is immutable static data of the library for as long as it is loaded
// (the header's rule), and `libloading::Library` is Send + Sync itself.
unsafe impl Send for Library {}
// SAFETY: as above: nothing is mutated through the descriptor pointer.
unsafe impl Sync for Library {}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("plugin::Library")
    }
}

impl Library {
    /// Loads `path` (resolving every symbol now) and calls its entry point.
    pub fn open(path: &Path) -> Result<Library, String> {
        let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL;
        // SAFETY: loading a library runs its constructors: code Parallax did not write. That is
        // the point of a plugin; the parent does this only in a child process (the probe) or
        // where the user asked for the plugin to run (a worker, or exec=fused).
        let lib = unsafe { libloading::os::unix::Library::open(Some(path), flags) }
            .map_err(|e| format!("not a loadable shared library ({})", dl_text(&e)))?;
        let lib: libloading::Library = lib.into();
        // SAFETY: the symbol's type is the ABI's entry type; a library that exports the name
        // with another type breaks the ABI's contract (the child probe survives that).
        let entry: px_plugin_entry = unsafe {
            *lib.get::<px_plugin_entry>(PX_ENTRY_SYMBOL.as_bytes())
                .map_err(|_| format!("not a Parallax plugin: no `{PX_ENTRY_SYMBOL}` symbol"))?
        };
        // SAFETY: as above: calling the plugin's entry point with no arguments.
        let desc = unsafe { entry() };
        if desc.is_null() {
            return Err(format!("`{PX_ENTRY_SYMBOL}` returned NULL"));
        }
        Ok(Library { desc, _lib: lib })
    }

    /// The descriptor, copied into owned values and checked as far as pointers allow.
    pub fn info(&self) -> Result<PluginInfo, String> {
        // SAFETY: non-null (checked in open), and per the ABI a valid descriptor for as long as
        // the library is loaded, which `self` guarantees.
        let d = unsafe { &*self.desc };
        if d.abi_version != PX_ABI_VERSION {
            return Err(format!(
                "ABI version {} (this Parallax loads version {PX_ABI_VERSION})",
                d.abi_version
            ));
        }
        if d.abi_minor > PX_ABI_MINOR {
            return Err(format!(
                "ABI version {}.{} (this Parallax loads versions {PX_ABI_VERSION}.0 to \
                 {PX_ABI_VERSION}.{PX_ABI_MINOR})",
                d.abi_version, d.abi_minor
            ));
        }
        let minor = d.abi_minor;
        let elements = slice(d.elements, d.n_elements, "elements")?
            .iter()
            .enumerate()
            .map(|(i, e)| element(e, minor).map_err(|why| format!("element {i}: {why}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PluginInfo {
            name: text(d.name, "plugin name")?,
            version: text(d.version, "plugin version")?,
            description: opt_text(d.description, "plugin description")?.unwrap_or_default(),
            elements,
        })
    }

    /// The vtable of element number `index` (an index [`Library::info`] accepted).
    fn vtable(&self, index: usize) -> Result<px_element_vtable, String> {
        // SAFETY: as in `info`.
        let d = unsafe { &*self.desc };
        let e = slice(d.elements, d.n_elements, "elements")?
            .get(index)
            .ok_or("no such element")?;
        vtable(e, d.abi_minor)
    }
}

/// The loader's words, bounded (they name the file and what is wrong with it).
fn dl_text(e: &libloading::Error) -> String {
    e.to_string().chars().take(300).collect()
}

/// `n` items at `ptr`, refused when null with n > 0 or when n is absurd.
fn slice<'a, T>(ptr: *const T, n: usize, what: &str) -> Result<&'a [T], String> {
    if n == 0 {
        return Ok(&[]);
    }
    if n > MAX_COUNT {
        return Err(format!("{n} {what} (at most {MAX_COUNT})"));
    }
    if ptr.is_null() {
        return Err(format!("{what} is NULL with a count of {n}"));
    }
    if (ptr as usize) % std::mem::align_of::<T>() != 0 {
        return Err(format!("{what} is a misaligned pointer"));
    }
    // SAFETY: non-null and aligned, and by the ABI `n` initialised items that live as long as
    // the library (the caller ties 'a to it). A pointer that lies crashes the child probe.
    Ok(unsafe { std::slice::from_raw_parts(ptr, n) })
}

fn opt_text(ptr: *const c_char, what: &str) -> Result<Option<String>, String> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-null, and by the ABI a NUL-terminated string as long-lived as the library.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(Some(s.to_owned())),
        Err(e) => Err(format!(
            "{what} is not UTF-8 (byte {} of {})",
            e.valid_up_to(),
            bytes.len()
        )),
    }
}

fn text(ptr: *const c_char, what: &str) -> Result<String, String> {
    opt_text(ptr, what)?.ok_or_else(|| format!("{what} is NULL"))
}

/// The vtable of `e`, of a descriptor of minor version `minor`: one of minor 0 has only the
/// first four functions, and the fields after them are not read (they may not exist).
fn vtable(e: &px_element_desc, minor: u32) -> Result<px_element_vtable, String> {
    let p = e.vtable;
    if p.is_null() {
        return Err("its vtable is NULL".into());
    }
    // SAFETY: non-null, and by the ABI a vtable as long-lived as the library, with at least
    // the fields of its minor version; each field is read on its own through the raw pointer,
    // so no field past the plugin's vtable is touched.
    let vt = unsafe {
        px_element_vtable {
            create: std::ptr::addr_of!((*p).create).read(),
            process: std::ptr::addr_of!((*p).process).read(),
            end_of_stream: std::ptr::addr_of!((*p).end_of_stream).read(),
            destroy: std::ptr::addr_of!((*p).destroy).read(),
            produce: if minor >= 1 {
                std::ptr::addr_of!((*p).produce).read()
            } else {
                None
            },
            render: if minor >= 1 {
                std::ptr::addr_of!((*p).render).read()
            } else {
                None
            },
        }
    };
    if vt.create.is_none() || vt.destroy.is_none() {
        return Err("its vtable lacks create or destroy".into());
    }
    Ok(vt)
}

fn element(e: &px_element_desc, minor: u32) -> Result<ElementInfo, String> {
    let name = text(e.name, "name")?;
    let within = |what: &str| format!("`{name}` {what}");
    let vt = vtable(e, minor).map_err(|why| within(&why))?;
    let klass = text(e.klass, &within("class"))?;
    let (needs, has) = match klass.as_str() {
        "filter" => ("process", vt.process.is_some()),
        "source" | "sink" if minor < 1 => {
            return Err(within(&format!(
                "class `{klass}` needs ABI version {PX_ABI_VERSION}.1 (the descriptor's \
                 abi_minor is {minor})"
            )))
        }
        "source" => ("produce", vt.produce.is_some()),
        "sink" => ("render", vt.render.is_some()),
        // Refused with the reason by the descriptor's checks.
        _ => ("", true),
    };
    if !has {
        return Err(within(&format!("is a {klass} whose vtable lacks {needs}")));
    }
    let props = slice(e.props, e.n_props, "properties")?
        .iter()
        .map(|p| prop(p).map_err(|why| within(&why)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ElementInfo {
        klass,
        summary: text(e.summary, &within("summary"))?,
        doc: opt_text(e.doc, &within("doc"))?.unwrap_or_default(),
        sink_caps: text(e.sink_caps, &within("sink caps"))?,
        src_caps: text(e.src_caps, &within("src caps"))?,
        caps_rule: e.caps_rule,
        hints: e.hints,
        props,
        name,
    })
}

fn prop(p: &px_prop_spec) -> Result<PropInfo, String> {
    let name = text(p.name, "property name")?;
    let doc = opt_text(p.doc, &format!("property `{name}` doc"))?.unwrap_or_default();
    let kind = match p.kind {
        PX_PROP_BOOL => PropInfoKind::Bool {
            default: p.int_default != 0,
        },
        PX_PROP_INT => PropInfoKind::Int {
            default: p.int_default,
            min: p.int_min,
            max: p.int_max,
        },
        PX_PROP_FLOAT => PropInfoKind::Float {
            default: p.float_default,
            min: p.float_min,
            max: p.float_max,
        },
        PX_PROP_STRING => PropInfoKind::Str {
            default: opt_text(p.string_default, &format!("property `{name}` default"))?,
        },
        PX_PROP_ENUM => {
            let values = slice(p.enum_values, p.n_enum_values as usize, "enum values")?
                .iter()
                .map(|v| text(*v, &format!("property `{name}` enum value")))
                .collect::<Result<Vec<_>, _>>()?;
            PropInfoKind::Enum {
                default: u32::try_from(p.int_default).unwrap_or(u32::MAX),
                values,
            }
        }
        other => return Err(format!("property `{name}` has kind {other}, which is none")),
    };
    Ok(PropInfo { name, doc, kind })
}

/// A property value handed to `create`.
#[derive(Debug, Clone)]
pub enum ArgValue {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// Text, or NULL.
    Str(Option<String>),
    /// An enum's index.
    Enum(u32),
}

/// Where a running instance's output goes: the safe side of `px_output`.
pub trait Output {
    /// A writable slot, or `None` when none can be had (the pipeline stops).
    fn lend(&mut self) -> Option<&mut [u8]>;
    /// Passes on the first `len` bytes of the slot lent last; false when `len` is larger than
    /// that slot or none is lent.
    fn push(&mut self, len: usize) -> bool;
}

/// Metadata of a buffer handed to `process`.
#[derive(Debug, Clone, Copy)]
pub struct InputMeta {
    /// ns or none.
    pub pts: Option<u64>,
    /// ns or none.
    pub duration: Option<u64>,
    /// bytes or none.
    pub offset: Option<u64>,
    /// Position in its source's output.
    pub sequence: u64,
}

/// One instance of a plugin element.
pub struct Instance {
    vt: px_element_vtable,
    ptr: *mut c_void,
    // Last: the code the vtable points into.
    _lib: Arc<Library>,
}

// SAFETY: the ABI lets an instance be called from any one thread at a time; `&mut self` on
// every call makes it one at a time.
unsafe impl Send for Instance {}

impl Instance {
    /// Creates an instance of element number `index` of `lib`.
    pub fn create(
        lib: &Arc<Library>,
        index: usize,
        props: &[(String, ArgValue)],
        sink_caps: &str,
    ) -> Result<Instance, String> {
        let vt = lib.vtable(index)?;
        let keep: Vec<(std::ffi::CString, Option<std::ffi::CString>)> = props
            .iter()
            .map(|(name, v)| {
                let s = match v {
                    ArgValue::Str(Some(s)) => Some(cstring(s)),
                    _ => None,
                };
                (cstring(name), s)
            })
            .collect();
        let values: Vec<px_prop_value> = props
            .iter()
            .zip(&keep)
            .map(|((_, v), (name, s))| {
                let mut out = px_prop_value {
                    name: name.as_ptr(),
                    kind: PX_PROP_BOOL,
                    reserved: 0,
                    int_value: 0,
                    float_value: 0.0,
                    string_value: s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                };
                match *v {
                    ArgValue::Bool(b) => out.int_value = i64::from(b),
                    ArgValue::Int(i) => (out.kind, out.int_value) = (PX_PROP_INT, i),
                    ArgValue::Float(f) => (out.kind, out.float_value) = (PX_PROP_FLOAT, f),
                    ArgValue::Str(_) => out.kind = PX_PROP_STRING,
                    ArgValue::Enum(i) => (out.kind, out.int_value) = (PX_PROP_ENUM, i.into()),
                }
                out
            })
            .collect();
        let caps = cstring(sink_caps);
        let mut error = new_error();
        let create = vt.create.ok_or("no create")?;
        // SAFETY: every pointer passed lives until the call returns (`keep`, `values`, `caps`,
        // `error`), as the ABI requires of the host.
        let ptr = unsafe { create(values.as_ptr(), values.len(), caps.as_ptr(), &mut error) };
        if ptr.is_null() {
            return Err(error_text(&error, "create failed"));
        }
        Ok(Instance {
            vt,
            ptr,
            _lib: Arc::clone(lib),
        })
    }

    /// Hands one buffer to the plugin; its outputs go to `out`.
    pub fn process(
        &mut self,
        data: &[u8],
        meta: InputMeta,
        out: &mut dyn Output,
    ) -> Result<(), String> {
        let input = px_input(data, &meta);
        let process = self.vt.process.ok_or("no process")?;
        self.call(out, |ptr, output, error| {
            // SAFETY: `ptr` is the instance create returned; `input` and `data` outlive the
            // call and are not written by the host meanwhile; `output` and `error` are valid
            // for the call (see `call`).
            unsafe { process(ptr, &input, output, error) }
        })
    }

    /// A source's next output: true at end of stream (what it pushed still goes out).
    pub fn produce(&mut self, out: &mut dyn Output) -> Result<bool, String> {
        let produce = self.vt.produce.ok_or("no produce")?;
        let mut eos = false;
        self.call(out, |ptr, output, error| {
            // SAFETY: as in `process`.
            match unsafe { produce(ptr, output, error) } {
                PX_EOS => {
                    eos = true;
                    PX_OK
                }
                other => other,
            }
        })?;
        Ok(eos)
    }

    /// Hands one buffer to a sink.
    pub fn render(&mut self, data: &[u8], meta: InputMeta) -> Result<(), String> {
        let input = px_input(data, &meta);
        let render = self.vt.render.ok_or("no render")?;
        let mut error = new_error();
        // SAFETY: `ptr` is the instance create returned; `input`, `data` and `error` outlive
        // the call.
        match unsafe { render(self.ptr, &input, &mut error) } {
            PX_OK => Ok(()),
            _ => Err(error_text(&error, "render failed")),
        }
    }

    /// A sink's end of stream (it gets no output to push to).
    pub fn sink_end_of_stream(&mut self) -> Result<(), String> {
        let Some(eos) = self.vt.end_of_stream else {
            return Ok(());
        };
        let mut error = new_error();
        // SAFETY: the instance create returned; a NULL output is what the ABI gives a sink.
        match unsafe { eos(self.ptr, std::ptr::null_mut(), &mut error) } {
            PX_OK => Ok(()),
            _ => Err(error_text(&error, "end of stream failed")),
        }
    }

    /// End of stream: the plugin passes on what it holds.
    pub fn end_of_stream(&mut self, out: &mut dyn Output) -> Result<(), String> {
        let Some(eos) = self.vt.end_of_stream else {
            return Ok(());
        };
        self.call(out, |ptr, output, error| {
            // SAFETY: as in `process`.
            unsafe { eos(ptr, output, error) }
        })
    }

    fn call(
        &mut self,
        out: &mut dyn Output,
        f: impl FnOnce(*mut c_void, *mut px_output, *mut px_error) -> i32,
    ) -> Result<(), String> {
        let mut host: &mut dyn Output = out;
        let mut output = px_output {
            host: (&mut host as *mut &mut dyn Output).cast(),
            lend: lend_trampoline,
            push: push_trampoline,
        };
        let mut error = new_error();
        match f(self.ptr, &mut output, &mut error) {
            PX_OK => Ok(()),
            _ => Err(error_text(&error, "failed")),
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(destroy) = self.vt.destroy {
            // SAFETY: the instance create returned, destroyed once (drop runs once), last.
            unsafe { destroy(self.ptr) }
        }
    }
}

fn cstring(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// The ABI's view of `data` with `meta`, for `process` and `render`: it borrows `data`, which
/// must outlive the call it is passed to.
fn px_input(data: &[u8], meta: &InputMeta) -> px_buffer {
    px_buffer {
        data: data.as_ptr(),
        len: data.len(),
        pts: meta.pts.unwrap_or(PX_NONE),
        duration: meta.duration.unwrap_or(PX_NONE),
        offset: meta.offset.unwrap_or(PX_NONE),
        sequence: meta.sequence,
    }
}

fn new_error() -> px_error {
    px_error {
        message: [0; PX_ERROR_LEN],
    }
}

fn error_text(e: &px_error, otherwise: &str) -> String {
    let bytes: Vec<u8> = e
        .message
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    if bytes.is_empty() {
        otherwise.to_owned()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The host side of `px_output::lend`.
unsafe extern "C" fn lend_trampoline(output: *mut px_output, capacity: *mut usize) -> *mut u8 {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if output.is_null() || capacity.is_null() {
            return std::ptr::null_mut();
        }
        // SAFETY: `output` is the px_output `Instance::call` made, whose `host` points at a
        // `&mut dyn Output` on its stack frame, alive for the whole plugin call this runs in.
        let host = unsafe { &mut *(*output).host.cast::<&mut dyn Output>() };
        match host.lend() {
            Some(slot) => {
                // SAFETY: `capacity` is non-null; the plugin passes a pointer to a size_t.
                unsafe { *capacity = slot.len() };
                slot.as_mut_ptr()
            }
            None => std::ptr::null_mut(),
        }
    }))
    .unwrap_or(std::ptr::null_mut())
}

/// The host side of `px_output::push`.
unsafe extern "C" fn push_trampoline(output: *mut px_output, len: usize) -> i32 {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if output.is_null() {
            return PX_ERROR;
        }
        // SAFETY: as in lend_trampoline.
        let host = unsafe { &mut *(*output).host.cast::<&mut dyn Output>() };
        if host.push(len) {
            PX_OK
        } else {
            PX_ERROR
        }
    }))
    .unwrap_or(PX_ERROR)
}
