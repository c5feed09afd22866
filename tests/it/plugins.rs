//! Plugins: the example plugins (C and Rust) built here and run isolated and fused with output
//! identical to the built-in transform; discovery, inspect, and plugins that misbehave.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::*;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where this test run's plugins are built (once per test binary).
fn build_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

#[track_caller]
fn check(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compiles `source` into `dir/lib<name>.so` with `cc` and the extra flags.
fn cc(source: &Path, dir: &Path, name: &str, flags: &[&str]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let out = dir.join(format!("lib{name}.so"));
    check(
        Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-Wall", "-I"])
            .arg(repo().join("plugin"))
            .arg("-o")
            .arg(&out)
            .arg(source)
            .args(flags)
            .arg("-lm"),
    );
    out
}

/// The two example plugins, in a directory of their own.
fn examples() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = build_dir().join("examples");
        cc(&repo().join("plugin/examples/gain.c"), &dir, "gain", &[]);
        cc(
            &repo().join("plugin/examples/counter.c"),
            &dir,
            "counter",
            &[],
        );
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        check(
            Command::new(rustc)
                .args([
                    "--edition",
                    "2021",
                    "--crate-type",
                    "cdylib",
                    "-C",
                    "opt-level=1",
                ])
                .arg("-o")
                .arg(dir.join("librot13.so"))
                .arg(repo().join("plugin/examples/rot13.rs")),
        );
        dir
    })
}

/// `tests/plugins/faulty.c` built with `flags` into a directory of its own.
fn faulty(name: &str, flags: &[&str]) -> PathBuf {
    let dir = build_dir().join(format!("faulty-{name}"));
    cc(&repo().join("tests/plugins/faulty.c"), &dir, name, flags);
    dir
}

/// The descriptor cache of this test binary's runs (never the user's own).
fn shared_cache() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fn with_plugins(mut cmd: Command, path: &Path) -> Command {
    cmd.env("PARALLAX_PLUGIN_PATH", path);
    if std::env::var_os("PARALLAX_CACHE_DIR").is_none() {
        cmd.env("PARALLAX_CACHE_DIR", shared_cache());
    }
    cmd
}

fn launch_with(path: &Path, args: &[&str]) -> Command {
    with_plugins(launch(args), path)
}

fn inspect_with(path: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(inspect_bin());
    c.args(args);
    with_plugins(c, path)
}

fn rot(data: &[u8], shift: u8) -> Vec<u8> {
    data.iter()
        .map(|&b| match b {
            b'a'..=b'z' => b'a' + (b - b'a' + shift) % 26,
            b'A'..=b'Z' => b'A' + (b - b'A' + shift) % 26,
            _ => b,
        })
        .collect()
}

#[test]
fn the_c_gain_plugin_matches_the_built_in_volume_isolated_and_fused() {
    let plugins = examples();
    let t = tmp();
    let src = "audiotestsrc num-buffers=40 wave=sine freq=440 volume=0.9 ! \
               audio/x-raw,format=S16LE,rate=44100,channels=2";
    let run_to = |element: &str, name: &str| {
        let out = t.path().join(name);
        let text = format!("-v {src} ! {element} ! filesink location={}", out.display());
        let args: Vec<&str> = text.split(' ').collect();
        let o = run_expecting(launch_with(plugins, &args), 0);
        (std::fs::read(out).unwrap(), stderr(&o))
    };
    let (built_in, _) = run_to("volume volume=1.7", "volume.raw");
    let (isolated, said) = run_to("gain volume=1.7", "isolated.raw");
    let (fused, fused_said) = run_to("gain volume=1.7 exec=fused", "fused.raw");
    assert!(built_in.len() > 40_000, "{}", built_in.len());
    assert!(built_in == isolated, "isolated gain differs from volume");
    assert!(built_in == fused, "fused gain differs from volume");
    // The planner isolated it by default, and exec=fused kept it in the process.
    assert!(said.contains("exec = isolated"), "{said}");
    assert!(!fused_said.contains("isolated"), "{fused_said}");
}

#[test]
fn the_rust_rot13_plugin_rotates_letters_isolated_and_fused() {
    let plugins = examples();
    let t = tmp();
    let mut data = random_bytes(300_000, 7);
    data.extend_from_slice(b"Hello, World! The quick brown fox.");
    let input = file(t.path(), "in.bin", &data);
    for (extra, shift) in [
        ("", 13u8),
        ("exec=fused", 13),
        ("shift=3", 3),
        ("shift=5 trust=trusted", 5),
    ] {
        let out = t.path().join("out.bin");
        let text = format!(
            "filesrc location={} blocksize=4096 ! rot13 {extra} ! filesink location={}",
            input.display(),
            out.display()
        );
        let args: Vec<&str> = text.split_whitespace().collect();
        run_expecting(launch_with(plugins, &args), 0);
        assert!(
            std::fs::read(&out).unwrap() == rot(&data, shift),
            "rot13 {extra}: output differs"
        );
    }
}

/// Adler-32, as sumsink writes it.
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

#[test]
fn a_plugin_source_and_sink_run_isolated_and_fused() {
    let plugins = examples();
    let t = tmp();
    let counted: Vec<u8> = (0..7 * 3000u64).map(|o| (o % 251) as u8).collect();
    for exec in ["auto", "fused"] {
        // The source, into a built-in sink.
        let out = t.path().join("count.bin");
        let o = run_expecting(
            launch_with(
                plugins,
                &[
                    "-v",
                    "countsrc",
                    "num-buffers=7",
                    "blocksize=3000",
                    &format!("exec={exec}"),
                    "!",
                    "filesink",
                    &prop("location", &out),
                ],
            ),
            0,
        );
        assert!(std::fs::read(&out).unwrap() == counted, "countsrc {exec}");
        assert_eq!(
            stderr(&o).contains("exec = isolated"),
            exec == "auto",
            "{}",
            stderr(&o)
        );
        // A built-in source into the sink.
        let data = random_bytes(100_003, 21);
        let input = file(t.path(), "in.bin", &data);
        let sum = t.path().join("sum.txt");
        run_expecting(
            launch_with(
                plugins,
                &[
                    "filesrc",
                    &prop("location", &input),
                    "blocksize=4096",
                    "!",
                    "sumsink",
                    &prop("location", &sum),
                    &format!("exec={exec}"),
                ],
            ),
            0,
        );
        assert_eq!(
            std::fs::read_to_string(&sum).unwrap(),
            format!("100003 {:08x}\n", adler32(&data)),
            "sumsink {exec}"
        );
        // The two together.
        run_expecting(
            launch_with(
                plugins,
                &[
                    "countsrc",
                    "num-buffers=7",
                    "blocksize=3000",
                    &format!("exec={exec}"),
                    "!",
                    "sumsink",
                    &prop("location", &sum),
                    &format!("exec={exec}"),
                ],
            ),
            0,
        );
        assert_eq!(
            std::fs::read_to_string(&sum).unwrap(),
            format!("21000 {:08x}\n", adler32(&counted)),
            "countsrc ! sumsink {exec}"
        );
    }
    // Listed with their classes; a sink without its required property says so.
    let o = run_expecting(inspect_with(plugins, &[]), 0);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}: {text}"))
            .to_owned()
    };
    assert!(line("countsrc").contains("source"), "{}", line("countsrc"));
    assert!(line("sumsink").contains("sink"), "{}", line("sumsink"));
    for exec in ["exec=auto", "exec=fused"] {
        let o = run(launch_with(plugins, &["countsrc", "!", "sumsink", exec]));
        assert_eq!(code(&o), 2, "{}", stderr(&o));
        assert!(
            stderr(&o).contains("error: sumsink0: sumsink needs location=FILE\n"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn inspect_lists_plugin_elements_with_their_origin() {
    let plugins = examples();
    let o = run_expecting(inspect_with(plugins, &[]), 0);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let gain = plugins.join("libgain.so");
    let line = text.lines().find(|l| l.starts_with("gain ")).expect(&text);
    assert!(
        line.contains(&format!("[plugin gain 1.0.0: {}]", gain.display())),
        "{line}"
    );
    assert!(text.lines().any(|l| l.starts_with("rot13 ")), "{text}");

    let o = run_expecting(inspect_with(plugins, &["--json"]), 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rot13 = v["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "rot13")
        .unwrap();
    assert_eq!(rot13["origin"]["plugin"], "rot13");
    assert_eq!(rot13["origin"]["version"], "1.0.0");
    assert!(rot13["origin"]["file"]
        .as_str()
        .unwrap()
        .ends_with("librot13.so"));
    let filesrc = v["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "filesrc");
    assert!(filesrc.unwrap().get("origin").is_none());

    // One element's card, and one file described on its own (no search path needed).
    let o = run_expecting(inspect_with(plugins, &["--json", "gain"]), 0);
    let card: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(card["properties"][0]["name"], "volume");
    assert_eq!(card["properties"][0]["max"], 10.0);
    assert_eq!(card["hints"]["native_code"], true);
    assert!(card["exec"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "fused"));
    let mut cmd = Command::new(inspect_bin());
    cmd.arg(plugins.join("librot13.so"))
        .env("PARALLAX_PLUGIN_PATH", "");
    let o = run_expecting(cmd, 0);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.starts_with("Plugin rot13 1.0.0\n"), "{text}");
    assert!(text.contains("shift  int  default 13  (0..=25)"), "{text}");

    // --plugin-path finds them as well, and so does the user's data directory.
    let mut cmd = Command::new(inspect_bin());
    cmd.args(["--exists", "--plugin-path"])
        .arg(plugins)
        .arg("gain");
    cmd.env("PARALLAX_PLUGIN_PATH", "");
    run_expecting(cmd, 0);
    let home = tmp();
    let user_dir = home.path().join(".local/share/parallax/plugins");
    std::fs::create_dir_all(&user_dir).unwrap();
    std::fs::copy(plugins.join("libgain.so"), user_dir.join("libgain.so")).unwrap();
    let mut cmd = Command::new(inspect_bin());
    cmd.args(["--exists", "gain"])
        .env("PARALLAX_PLUGIN_PATH", "")
        .env_remove("XDG_DATA_HOME")
        .env("HOME", home.path());
    run_expecting(cmd, 0);
}

#[test]
fn libraries_that_are_not_good_plugins_cost_a_warning_and_the_rest_loads() {
    let dir = build_dir().join("mixed");
    let src = repo().join("tests/plugins/faulty.c");
    cc(&src, &dir, "good", &["-DNAME=copy"]);
    cc(&src, &dir, "abi", &["-DABI_VERSION=7"]);
    cc(&src, &dir, "ctor", &["-DCTOR_SEGV"]);
    cc(&src, &dir, "pointer", &["-DBAD_POINTER"]);
    cc(&src, &dir, "utf8", &["-DBAD_UTF8"]);
    cc(&src, &dir, "dup", &["-DDUPLICATE", "-DNAME=dup"]);
    cc(&src, &dir, "shadow", &["-DNAME=queue"]);
    cc(&src, &dir, "minor", &["-DABI_MINOR=9", "-DNAME=future"]);
    cc(
        &src,
        &dir,
        "oldsource",
        &["-DKLASS=\"source\"", "-DNAME=oldsrc"],
    );
    cc(
        &src,
        &dir,
        "noproduce",
        &["-DKLASS=\"source\"", "-DABI_MINOR=1", "-DNAME=noproduce"],
    );
    std::fs::write(dir.join("none.c"), "int nothing;\n").unwrap();
    check(
        Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(dir.join("libnone.so"))
            .arg(dir.join("none.c")),
    );
    std::fs::write(dir.join("libjunk.so"), random_bytes(4096, 3)).unwrap();

    let o = run_expecting(inspect_with(&dir, &[]), 0);
    let err = stderr(&o);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(stdout.lines().any(|l| l.starts_with("copy ")), "{stdout}");
    assert!(stdout
        .lines()
        .any(|l| l.starts_with("queue ") && !l.contains("plugin")));
    for (file, why) in [
        ("libabi.so", "ABI version 7 (this Parallax loads version 1)"),
        ("libctor.so", "crashed (signal 11: SIGSEGV)"),
        ("libpointer.so", "crashed (signal 11: SIGSEGV)"),
        ("libutf8.so", "name is not UTF-8"),
        (
            "libminor.so",
            "ABI version 1.9 (this Parallax loads versions 1.0 to 1.1)",
        ),
        (
            "liboldsource.so",
            "`oldsrc` class `source` needs ABI version 1.1 (the descriptor's abi_minor is 0)",
        ),
        (
            "libnoproduce.so",
            "`noproduce` is a source whose vtable lacks produce",
        ),
        ("libdup.so", "element `dup` is declared twice"),
        (
            "libnone.so",
            "not a Parallax plugin: no `parallax_plugin_v1` symbol",
        ),
        ("libjunk.so", "not a loadable shared library"),
        (
            "libshadow.so",
            "element `queue` has the name of a built-in element",
        ),
    ] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("{}", dir.join(file).display())))
            .unwrap_or_else(|| panic!("nothing said about {file}: {err}"));
        assert!(line.contains(why), "{file}: {line}");
    }
    // The good one runs.
    let t = tmp();
    let input = file(t.path(), "in.bin", &random_bytes(50_000, 9));
    let out = t.path().join("out.bin");
    let o = run_expecting(
        launch_with(
            &dir,
            &[
                "filesrc",
                &prop("location", &input),
                "!",
                "copy",
                "!",
                "filesink",
                &prop("location", &out),
            ],
        ),
        0,
    );
    assert!(stderr(&o).contains("libjunk.so"));
    assert_eq!(std::fs::read(out).unwrap(), std::fs::read(input).unwrap());
}

fn run_faulty(dir: &Path, element: &str, exec: &str) -> std::process::Output {
    let t = tmp();
    let input = file(t.path(), "in.bin", &random_bytes(10_000, 1));
    let exec = format!("exec={exec}");
    run(launch_with(
        dir,
        &[
            "-q",
            "filesrc",
            &prop("location", &input),
            "!",
            element,
            &exec,
            "!",
            "fakesink",
        ],
    ))
}

#[test]
fn a_plugin_that_segfaults_in_process_costs_an_error_not_the_pipeline() {
    let dir = faulty("segv", &["-DPROCESS_SEGV", "-DNAME=segv"]);
    let o = run_faulty(&dir, "segv", "auto");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("segv0: worker process") && err.contains("SIGSEGV"),
        "{err}"
    );
}

#[test]
fn a_plugin_that_writes_past_its_output_is_stopped() {
    // Claims more bytes than its slot holds: refused, isolated and fused alike.
    let dir = faulty("over", &["-DPROCESS_OVERCLAIM", "-DNAME=over"]);
    for exec in ["isolated", "fused"] {
        let o = run_faulty(&dir, "over", exec);
        assert_eq!(code(&o), 1, "{exec}: {}", stderr(&o));
        assert!(
            stderr(&o)
                .contains("over0: pushed 65537 bytes from a slot of 65536 (wrote past its output)"),
            "{exec}: {}",
            stderr(&o)
        );
    }
    // Writes far past its slot: the sandboxed worker dies, the pipeline reports it.
    let dir = faulty("scribble", &["-DPROCESS_SCRIBBLE", "-DNAME=scribble"]);
    let o = run_faulty(&dir, "scribble", "auto");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("scribble0: worker process"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_plugin_that_never_returns_is_killed_at_its_processing_deadline() {
    // Isolated (the default): the watchdog kills the worker once the deadline passes, and the
    // run ends with an error naming the element, the buffer and the deadline. No timing luck:
    // the plugin never returns at all.
    let dir = faulty("hang", &["-DPROCESS_HANG", "-DNAME=hang"]);
    let t = tmp();
    let input = file(t.path(), "in.bin", &random_bytes(10_000, 1));
    let o = run(launch_with(
        &dir,
        &[
            "-q",
            "filesrc",
            &prop("location", &input),
            "blocksize=1000",
            "!",
            "hang",
            "processing-deadline=200ms",
            "!",
            "fakesink",
        ],
    ));
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("hang0: process did not return within 200ms on buffer 1 (processing-deadline); worker process"),
        "{err}"
    );
    assert!(err.contains("was killed"), "{err}");
}

#[test]
fn a_plugin_that_never_returns_in_process_ends_at_the_second_ctrl_c() {
    // Fused, nothing can stop the call: the first Ctrl-C asks for a drain the plugin never
    // answers, the second stops the run (and -v says so beforehand).
    let dir = faulty("hang", &["-DPROCESS_HANG", "-DNAME=hang"]);
    let t = tmp();
    let input = file(t.path(), "in.bin", &random_bytes(10_000, 1));
    let mut cmd = launch_with(
        &dir,
        &[
            "-v",
            "filesrc",
            &prop("location", &input),
            "!",
            "hang",
            "exec=fused",
            "processing-deadline=100ms",
            "!",
            "fakesink",
        ],
    );
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = rustix::process::Pid::from_child(&child);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for _ in 0..2 {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
        std::thread::sleep(std::time::Duration::from_millis(1000));
    }
    let o = wait(child);
    assert_eq!(code(&o), 130, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "hang0 runs a plugin in this process (exec=fused): processing-deadline cannot stop it"
        ),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_header_matches_the_rust_definitions() {
    use parallax::plugin::abi::*;
    use std::mem::{offset_of, size_of};
    let mut c = String::from("#include <stddef.h>\n#include \"parallax_plugin.h\"\n");
    let mut check = |what: String, value: usize| {
        c.push_str(&format!("_Static_assert({what} == {value}, \"{what}\");\n"));
    };
    macro_rules! layout {
        ($ty:ident: $($field:ident),+) => {
            check(format!("sizeof({})", stringify!($ty)), size_of::<$ty>());
            $(check(
                format!("offsetof({}, {})", stringify!($ty), stringify!($field)),
                offset_of!($ty, $field),
            );)+
        };
    }
    layout!(px_prop_spec: name, doc, kind, n_enum_values, enum_values, int_default, int_min,
        int_max, float_default, float_min, float_max, string_default);
    layout!(px_prop_value: name, kind, reserved, int_value, float_value, string_value);
    layout!(px_buffer: data, len, pts, duration, offset, sequence);
    layout!(px_error: message);
    layout!(px_output: host, lend, push);
    layout!(px_element_vtable: create, process, end_of_stream, destroy, produce, render);
    layout!(px_element_desc: name, klass, summary, doc, sink_caps, src_caps, caps_rule, hints,
        props, n_props, vtable);
    layout!(px_plugin_desc: abi_version, abi_minor, name, version, description, elements,
        n_elements);
    // The minor version's field keeps its old name for plugins written before it.
    check(
        "offsetof(px_plugin_desc, reserved)".into(),
        offset_of!(px_plugin_desc, abi_minor),
    );
    for (name, value) in [
        ("PX_ABI_VERSION", PX_ABI_VERSION as usize),
        ("PX_ABI_MINOR", PX_ABI_MINOR as usize),
        ("PX_EOS", PX_EOS as usize),
        ("PX_ERROR_LEN", PX_ERROR_LEN),
        ("PX_OK", PX_OK as usize),
        ("PX_ERROR", PX_ERROR as usize),
        ("PX_PROP_BOOL", PX_PROP_BOOL as usize),
        ("PX_PROP_INT", PX_PROP_INT as usize),
        ("PX_PROP_FLOAT", PX_PROP_FLOAT as usize),
        ("PX_PROP_STRING", PX_PROP_STRING as usize),
        ("PX_PROP_ENUM", PX_PROP_ENUM as usize),
        ("PX_CAPS_PASSTHROUGH", PX_CAPS_PASSTHROUGH as usize),
        ("PX_CAPS_FIXED", PX_CAPS_FIXED as usize),
        ("PX_HINT_CPU", PX_HINT_CPU as usize),
        ("PX_HINT_RT_SAFE", PX_HINT_RT_SAFE as usize),
    ] {
        check(name.to_owned(), value);
    }
    c.push_str(&format!(
        "_Static_assert(PX_NONE == {}ull, \"PX_NONE\");\n\
         const char entry[] = PX_ENTRY_SYMBOL;\n\
         _Static_assert(sizeof entry == {}, \"PX_ENTRY_SYMBOL\");\n\
         px_plugin_entry the_entry_type;\n",
        PX_NONE,
        PX_ENTRY_SYMBOL.len() + 1
    ));
    let t = tmp();
    let source = file(t.path(), "layout.c", c.as_bytes());
    check_cc(&source);
}

fn check_cc(source: &Path) {
    check(
        Command::new("cc")
            .args(["-std=c11", "-fsyntax-only", "-Wall", "-Werror", "-I"])
            .arg(repo().join("plugin"))
            .arg(source),
    );
}

// --- the descriptor cache and the probe's time limit ------------------------------------------

/// The lines the traced plugin's constructor wrote: one per process that loaded it.
fn loads(trace: &Path) -> usize {
    std::fs::read_to_string(trace).map_or(0, |t| t.lines().count())
}

#[test]
fn the_descriptor_cache_answers_without_loading_the_library_until_it_changes() {
    let t = tmp();
    let dir = t.path().join("plugins");
    let src = repo().join("tests/plugins/faulty.c");
    cc(&src, &dir, "traced", &["-DCTOR_TRACE", "-DNAME=traced"]);
    std::fs::copy(examples().join("libgain.so"), dir.join("libgain.so")).unwrap();
    let cache = t.path().join("cache");
    let trace = t.path().join("trace.txt");
    let listing = |cache: &Path| {
        let mut cmd = inspect_with(&dir, &["--json"]);
        cmd.env("PARALLAX_CACHE_DIR", cache)
            .env("PX_TEST_TRACE", &trace);
        let o = run_expecting(cmd, 0);
        assert!(stderr(&o).is_empty(), "{}", stderr(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    // A miss reads the descriptors in the child (which loads the library) and fills the cache.
    let missed = listing(&cache);
    assert_eq!(loads(&trace), 1);
    assert!(missed.contains("\"traced\"") && missed.contains("\"gain\""));
    let cache_file = cache.join("plugins.cache");
    assert!(cache_file.is_file());
    // A hit says exactly the same without loading anything.
    for _ in 0..3 {
        assert_eq!(listing(&cache), missed);
    }
    assert_eq!(loads(&trace), 1, "a cache hit loaded the library");
    // With the cache off every start reads it again.
    assert_eq!(listing(Path::new("")), missed);
    assert_eq!(loads(&trace), 2);

    // Garbage, a truncated cache, one of another version: ignored, read again, rewritten.
    let good = std::fs::read(&cache_file).unwrap();
    let mut other_version = good.clone();
    other_version[9] ^= 1;
    let mut flipped = good.clone();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x40;
    for (n, bad) in [
        random_bytes(5000, 11),
        good[..good.len() / 2].to_vec(),
        good[..good.len() - 1].to_vec(),
        other_version,
        flipped,
        Vec::new(),
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(&cache_file, bad).unwrap();
        assert_eq!(listing(&cache), missed, "bad cache {n}");
        assert_eq!(loads(&trace), 3 + n, "bad cache {n} was trusted");
        assert_eq!(listing(&cache), missed);
        assert_eq!(loads(&trace), 3 + n, "bad cache {n} was not rewritten");
    }
    let loaded = loads(&trace);

    // A replaced library (built elsewhere, renamed over) is read again: its new element shows.
    let next = t.path().join("next");
    cc(&src, &next, "traced", &["-DCTOR_TRACE", "-DNAME=retraced"]);
    std::fs::rename(next.join("libtraced.so"), dir.join("libtraced.so")).unwrap();
    let replaced = listing(&cache);
    assert_eq!(loads(&trace), loaded + 1);
    assert!(replaced.contains("\"retraced\"") && !replaced.contains("\"traced\""));
    assert_eq!(listing(&cache), replaced);
    assert_eq!(loads(&trace), loaded + 1);
    // Rewritten in place (same inode and size, new bytes): read again as well.
    let bytes = std::fs::read(dir.join("libtraced.so")).unwrap();
    std::fs::write(dir.join("libtraced.so"), bytes).unwrap();
    assert_eq!(listing(&cache), replaced);
    assert_eq!(loads(&trace), loaded + 2);

    // A pipeline start uses the cache too, and the element still runs from its library.
    let input = file(t.path(), "in.bin", &random_bytes(20_000, 4));
    let out = t.path().join("out.bin");
    let mut cmd = launch_with(
        &dir,
        &[
            "filesrc",
            &prop("location", &input),
            "!",
            "retraced",
            "exec=fused",
            "!",
            "filesink",
            &prop("location", &out),
        ],
    );
    cmd.env("PARALLAX_CACHE_DIR", &cache)
        .env("PX_TEST_TRACE", &trace);
    run_expecting(cmd, 0);
    assert_eq!(std::fs::read(out).unwrap(), std::fs::read(input).unwrap());
    // Loaded once: by the pipeline itself (fused), not by a descriptor-reading child.
    assert_eq!(loads(&trace), loaded + 3);
}

#[test]
fn a_plugin_whose_constructor_hangs_costs_a_warning_and_the_rest_loads() {
    let t = tmp();
    let dir = t.path().join("plugins");
    let src = repo().join("tests/plugins/faulty.c");
    cc(&src, &dir, "a-hang", &["-DCTOR_HANG", "-DNAME=hangs"]);
    cc(&src, &dir, "b-copy", &["-DNAME=copies"]);
    let input = file(t.path(), "in.bin", &random_bytes(20_000, 5));
    let out = t.path().join("out.bin");
    for cache in [Path::new(""), &t.path().join("cache")] {
        for round in 0..2 {
            let mut cmd = launch_with(
                &dir,
                &[
                    "filesrc",
                    &prop("location", &input),
                    "!",
                    "copies",
                    "!",
                    "filesink",
                    &prop("location", &out),
                ],
            );
            cmd.env("PARALLAX_PLUGIN_PROBE_TIMEOUT", "300ms")
                .env("PARALLAX_CACHE_DIR", cache);
            let o = run_expecting(cmd, 0);
            let err = stderr(&o);
            let line = err
                .lines()
                .find(|l| l.contains("liba-hang.so"))
                .unwrap_or_else(|| panic!("{cache:?} {round}: nothing said: {err}"));
            assert!(
                line.contains("did not end within 300ms (PARALLAX_PLUGIN_PROBE_TIMEOUT)"),
                "{line}"
            );
            assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&input).unwrap());
        }
    }
    let mut cmd = inspect_with(&dir, &["--exists", "copies"]);
    cmd.env("PARALLAX_PLUGIN_PROBE_TIMEOUT", "0.2")
        .env("PARALLAX_CACHE_DIR", "");
    run_expecting(cmd, 0);
}

// --- hot-swap ---------------------------------------------------------------------------------

/// rot13 changed: version 1.1.0, whose `shift` defaults to 1 (a visibly different output).
fn rot13_v2() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let dir = build_dir().join("rot13-v2");
        std::fs::create_dir_all(&dir).unwrap();
        let text = std::fs::read_to_string(repo().join("plugin/examples/rot13.rs")).unwrap();
        let changed = text
            .replace("default: 13", "default: 1")
            .replace("c\"1.0.0\"", "c\"1.1.0\"")
            .replace(
                "#[path = \"../parallax_plugin.rs\"]",
                &format!(
                    "#[path = {:?}]",
                    repo()
                        .join("plugin/parallax_plugin.rs")
                        .display()
                        .to_string()
                ),
            );
        assert_ne!(text, changed);
        let source = file(&dir, "rot13.rs", changed.as_bytes());
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let lib = dir.join("librot13.so");
        check(
            Command::new(rustc)
                .args([
                    "--edition",
                    "2021",
                    "--crate-type",
                    "cdylib",
                    "-C",
                    "opt-level=1",
                ])
                .arg("-o")
                .arg(&lib)
                .arg(source),
        );
        lib
    })
}

/// A directory of its own holding rot13 1.0.0, for a test to replace.
fn rot13_dir(t: &Path) -> PathBuf {
    let dir = t.join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(examples().join("librot13.so"), dir.join("librot13.so")).unwrap();
    dir
}

/// Replaces `dir/librot13.so` with `with` the way installers do: a new file renamed over it.
fn replace_rot13(dir: &Path, with: &Path) {
    let next = dir.join(".librot13.so.new");
    std::fs::copy(with, &next).unwrap();
    std::fs::rename(&next, dir.join("librot13.so")).unwrap();
}

/// A live stream of 100-byte buffers through rot13 into `out`, steered at `sock`; fakesrc's
/// pattern-span makes buffer k the bytes (100k + j) mod 256, so each is recognisable.
fn rot13_stream(dir: &Path, sock: &Path, out: &Path, exec: &str) -> std::process::Child {
    let control = format!("--control={}", sock.display());
    let location = prop("location", out);
    let exec = format!("exec={exec}");
    let mut cmd = launch_with(
        dir,
        &[
            "--stats=json",
            &control,
            "fakesrc",
            "is-live=true",
            "num-buffers=-1",
            "sizetype=fixed",
            "sizemax=100",
            "filltype=pattern-span",
            "datarate=20000",
            "!",
            "rot13",
            &exec,
            "!",
            "filesink",
            &location,
        ],
    );
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.spawn().unwrap()
}

/// For each 100-byte block of `out`: (it is rot13 of its input, it is rot1 of its input).
fn versions(out: &[u8]) -> Vec<(bool, bool)> {
    assert_eq!(out.len() % 100, 0, "a partial buffer in the output");
    out.chunks(100)
        .enumerate()
        .map(|(k, block)| {
            let input: Vec<u8> = (0..100).map(|j| ((k * 100 + j) % 256) as u8).collect();
            (block == rot(&input, 13), block == rot(&input, 1))
        })
        .collect()
}

/// Where the output moved from the old version to the new: every block before it is the old
/// one's, every block from it on the new one's.
fn switch_point(v: &[(bool, bool)]) -> usize {
    let s = v.iter().position(|&(old, _)| !old).unwrap_or(v.len());
    for (k, &(old, new)) in v.iter().enumerate() {
        if k < s {
            assert!(old, "block {k} is not the old version's");
        } else {
            assert!(new, "block {k} is neither version's (switch at {s})");
        }
    }
    s
}

/// Waits until the output holds a block only the new version makes.
fn wait_for_new_version(out: &Path) {
    let deadline = std::time::Instant::now() + WATCHDOG;
    loop {
        let bytes = std::fs::read(out).unwrap_or_default();
        let whole = &bytes[..bytes.len() / 100 * 100];
        if versions(whole).iter().any(|&(old, new)| new && !old) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new version never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn buffers_of(stats: &serde_json::Value, name: &str) -> u64 {
    element(stats, name)["buffers"].as_u64().unwrap()
}

#[test]
fn sighup_swaps_a_replaced_plugin_between_two_buffers() {
    use super::control::{socket_in, Client};
    let t = tmp();
    let dir = rot13_dir(t.path());
    let (sock, out) = (socket_in(t.path()), t.path().join("out.bin"));
    let child = rot13_stream(&dir, &sock, &out, "auto");
    let pid = rustix::process::Pid::from_child(&child);
    let mut c = Client::connect(&sock);
    c.wait_taken("filesink0", 20);
    replace_rot13(&dir, rot13_v2());
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    wait_for_new_version(&out);
    let taken = c.element("filesink0")["buffers"].as_u64().unwrap();
    c.wait_taken("filesink0", taken + 20);
    c.ok(serde_json::json!({"cmd": "eos"}));
    let o = wait(child);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("rot130: plugin ")
            && err.contains("librot13.so reloaded (rot13 1.0.0 -> 1.1.0) in worker process"),
        "{err}"
    );
    // None lost, none duplicated: every buffer the source made is in the output once, in
    // order, and the version changes at one buffer boundary.
    let s = stats(&o);
    let made = buffers_of(&s, "fakesrc0");
    assert_eq!(buffers_of(&s, "filesink0"), made);
    let v = versions(&std::fs::read(&out).unwrap());
    assert_eq!(v.len() as u64, made);
    let at = switch_point(&v);
    assert!(at >= 20 && at < v.len(), "switch at {at} of {}", v.len());
}

#[test]
fn a_reload_that_fails_keeps_the_running_version_with_a_warning() {
    use super::control::{socket_in, Client};
    let t = tmp();
    let dir = rot13_dir(t.path());
    let (sock, out) = (socket_in(t.path()), t.path().join("out.bin"));
    let child = rot13_stream(&dir, &sock, &out, "auto");
    let mut c = Client::connect(&sock);
    c.wait_taken("filesink0", 10);
    let not_a_plugin = {
        let src = file(t.path(), "empty.c", b"int nothing_here;\n");
        cc(&src, &t.path().join("junk"), "junk", &[])
    };
    let bad_abi =
        faulty("abi99-rot13", &["-DABI_VERSION=99", "-DNAME=rot13"]).join("libabi99-rot13.so");
    let crashes = faulty("ctor-rot13", &["-DCTOR_SEGV", "-DNAME=rot13"]).join("libctor-rot13.so");
    let other = faulty("other", &["-DNAME=other"]).join("libother.so");
    let cases: [(&Path, &str); 4] = [
        (&bad_abi, "ABI version 99"),
        (&crashes, "SIGSEGV"),
        (&not_a_plugin, "parallax_plugin_v1"),
        (&other, "the new version has no element `rot13`"),
    ];
    for (with, why) in cases {
        replace_rot13(&dir, with);
        let answer = c.ask(serde_json::json!({"cmd": "reload"}));
        assert_eq!(answer["ok"], false, "{answer}");
        let reload = &answer["reloads"][0];
        assert_eq!(reload["element"], "rot130", "{answer}");
        assert_eq!(reload["outcome"], "failed", "{answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(&dir.join("librot13.so").display().to_string())
                && error.contains(why)
                && error.contains("the running version goes on"),
            "{why}: {error}"
        );
        // Still running, still the old version.
        let taken = c.element("filesink0")["buffers"].as_u64().unwrap();
        c.wait_taken("filesink0", taken + 5);
    }
    c.ok(serde_json::json!({"cmd": "eos"}));
    let o = wait(child);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("parallax: warning: rot130: plugin ")
            && stderr(&o).contains("cannot be reloaded: "),
        "{}",
        stderr(&o)
    );
    let s = stats(&o);
    let v = versions(&std::fs::read(&out).unwrap());
    assert_eq!(v.len() as u64, buffers_of(&s, "fakesrc0"));
    assert_eq!(switch_point(&v), v.len(), "the old version ran to the end");
}

#[test]
fn a_fused_plugin_is_never_swapped_and_a_reload_says_why() {
    use super::control::{socket_in, Client};
    let t = tmp();
    let dir = rot13_dir(t.path());
    let (sock, out) = (socket_in(t.path()), t.path().join("out.bin"));
    let child = rot13_stream(&dir, &sock, &out, "fused");
    let mut c = Client::connect(&sock);
    c.wait_taken("filesink0", 10);
    // Unchanged: nothing to do, and nothing to complain about.
    assert_eq!(
        c.ok(serde_json::json!({"cmd": "reload"}))["reloads"],
        serde_json::json!([])
    );
    replace_rot13(&dir, rot13_v2());
    let answer = c.ask(serde_json::json!({"cmd": "reload"}));
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(answer["reloads"][0]["outcome"], "in-process", "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("runs in this process (exec=fused)"),
        "{answer}"
    );
    let taken = c.element("filesink0")["buffers"].as_u64().unwrap();
    c.wait_taken("filesink0", taken + 10);
    c.ok(serde_json::json!({"cmd": "eos"}));
    let o = wait(child);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = versions(&std::fs::read(&out).unwrap());
    assert_eq!(switch_point(&v), v.len(), "the old version ran to the end");
}
