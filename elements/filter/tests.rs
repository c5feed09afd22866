//! The filters, one buffer at a time, outside a pipeline.

use super::*;
use proptest::prelude::*;

/// Builds `factory` with `props` set from text, as a description would.
fn build(factory: &'static Factory, props: &[(&str, &str)]) -> Box<dyn Transform> {
    let mut p = Props::defaults(factory.name, factory.props);
    for (k, v) in props {
        let spec = factory.prop(k).unwrap();
        assert!(p.set(k, spec.parse(v).unwrap()));
    }
    match (factory.build)(&p) {
        Ok(ElementImpl::Transform(t)) => t,
        Ok(_) => panic!("{} is not a transform", factory.name),
        Err(e) => panic!("{}: {e}", factory.name),
    }
}

fn buffer(seq: u64, data: &[u8]) -> Buffer {
    let mut b = Buffer::from_vec(data.to_vec());
    b.meta.sequence = seq;
    b
}

/// What `t` does with each buffer: `Some(seq)` passed, `None` dropped; stops at EOS.
fn outcome(t: &mut dyn Transform, bufs: Vec<Buffer>) -> Vec<Option<u64>> {
    let run = DetachedRun::new();
    let mut cx = run.ctx();
    let mut out = Vec::new();
    for b in bufs {
        match t.process(b, &mut cx).unwrap() {
            Flow::Push(b) => out.push(Some(b.meta.sequence)),
            Flow::Drop | Flow::Held => out.push(None),
            Flow::Eos => break,
        }
    }
    out
}

fn passed(t: &mut dyn Transform, bufs: Vec<Buffer>) -> Vec<u64> {
    outcome(t, bufs).into_iter().flatten().collect()
}

fn sized(sizes: &[usize]) -> Vec<Buffer> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| buffer(i as u64, &vec![b'x'; n]))
        .collect()
}

#[test]
fn expr_filters_on_size_and_sequence() {
    let mut f = build(&FILTER, &[("expr", "size > 2 && seq % 2 == 0")]);
    assert_eq!(passed(&mut *f, sized(&[5, 5, 1, 5, 5, 0])), [0, 4]);
}

#[test]
fn expr_sees_null_for_unset_times_and_on_error_decides() {
    let bufs = || sized(&[1, 1]);
    // pts is unset: comparing null with an int cannot be evaluated.
    let mut drop = build(&FILTER, &[("expr", "pts > 5")]);
    assert_eq!(passed(&mut *drop, bufs()), Vec::<u64>::new());
    let mut pass = build(&FILTER, &[("expr", "pts > 5"), ("on-error", "pass")]);
    assert_eq!(passed(&mut *pass, bufs()), [0, 1]);
    let mut fail = build(&FILTER, &[("expr", "pts > 5"), ("on-error", "fail")]);
    let run = DetachedRun::new();
    let err = fail.process(buffer(0, b"a"), &mut run.ctx()).unwrap_err();
    assert!(err.to_string().starts_with("expr on buffer 0:"), "{err}");
    let mut null = build(&FILTER, &[("expr", "pts == null && offset == null")]);
    assert_eq!(passed(&mut *null, bufs()), [0, 1]);
}

#[test]
fn expr_meta_fields_are_missing_until_metadata_has_them() {
    let mut f = build(&FILTER, &[("expr", r#"meta.kind == "audio""#)]);
    assert_eq!(passed(&mut *f, sized(&[1])), Vec::<u64>::new());
    let mut has = build(&FILTER, &[("expr", "!has(meta.kind) && size == 1")]);
    assert_eq!(passed(&mut *has, sized(&[1, 2])), [0]);
}

#[test]
fn expr_typos_are_refused_with_a_position() {
    let spec = FILTER.prop("expr").unwrap();
    let err = |text: &str| match spec.parse(text).unwrap_err() {
        ValueError::Invalid { at, message } => (at, message),
        other => panic!("{other}"),
    };
    let (at, message) = err("size > && seq");
    assert_eq!(at, Some(7), "{message}");
    let (at, message) = err("size > 1 && sise < 5");
    assert_eq!(at, Some(12));
    assert!(message.contains("did you mean `size`"), "{message}");
    let (at, _) = err("size > 1 &&\n  seq %% 2");
    assert_eq!(at, Some(19));
    let (at, _) = err("  ");
    assert_eq!(at, None);
    // Comprehension variables are bound, not unknown.
    assert!(spec.parse("[1, 2].exists(x, x == size)").is_ok());
}

#[test]
fn regex_matches_bytes_and_invert_passes_the_rest() {
    let bufs = || {
        vec![
            buffer(0, b"an ERROR here"),
            buffer(1, b"fine"),
            buffer(2, b"\xff\xfeERROR"),
            buffer(3, b""),
        ]
    };
    let mut r = build(&REGEXFILTER, &[("pattern", "ERROR")]);
    assert_eq!(passed(&mut *r, bufs()), [0, 2]);
    let mut v = build(&REGEXFILTER, &[("pattern", "ERROR"), ("invert", "true")]);
    assert_eq!(passed(&mut *v, bufs()), [1, 3]);
    let mut empty = build(&REGEXFILTER, &[("pattern", "^$")]);
    assert_eq!(passed(&mut *empty, bufs()), [3]);
    let mut field = build(&REGEXFILTER, &[("pattern", ""), ("field", "kind")]);
    assert_eq!(passed(&mut *field, bufs()), Vec::<u64>::new());
}

#[test]
fn bad_patterns_say_where() {
    let spec = REGEXFILTER.prop("pattern").unwrap();
    match spec.parse("ab(c").unwrap_err() {
        ValueError::Invalid { at, message } => {
            assert_eq!(at, Some(2));
            assert!(message.contains("unclosed group"), "{message}");
        }
        other => panic!("{other}"),
    }
    match spec.parse("a{2,1}").unwrap_err() {
        ValueError::Invalid { at, .. } => assert!(at.is_some()),
        other => panic!("{other}"),
    }
}

#[test]
fn sample_every_and_first() {
    let mut every = build(&SAMPLEFILTER, &[("every", "3")]);
    assert_eq!(passed(&mut *every, sized(&[1; 10])), [0, 3, 6, 9]);
    let mut first = build(&SAMPLEFILTER, &[("first", "2"), ("every", "2")]);
    assert_eq!(
        outcome(&mut *first, sized(&[1; 10])),
        [Some(0), None, Some(2)]
    );
    let mut none = build(&SAMPLEFILTER, &[("first", "0")]);
    assert_eq!(outcome(&mut *none, sized(&[1; 3])), []);
}

#[test]
fn sample_probability_is_deterministic_with_a_seed() {
    let run = |seed: &str| {
        let mut s = build(&SAMPLEFILTER, &[("probability", "0.3"), ("seed", seed)]);
        passed(&mut *s, sized(&[1; 1000]))
    };
    let a = run("42");
    assert_eq!(a, run("42"));
    assert_ne!(a, run("43"));
    assert!(
        (200..400).contains(&a.len()),
        "{} of 1000 passed at p=0.3",
        a.len()
    );
    let mut never = build(&SAMPLEFILTER, &[("probability", "0")]);
    assert!(passed(&mut *never, sized(&[1; 100])).is_empty());
}

#[test]
fn duplicates_within_the_window_are_dropped() {
    let data = |items: &[&str]| -> Vec<Buffer> {
        items
            .iter()
            .enumerate()
            .map(|(i, s)| buffer(i as u64, s.as_bytes()))
            .collect()
    };
    let mut uniq = build(&DUPLICATEFILTER, &[]);
    assert_eq!(
        passed(&mut *uniq, data(&["a", "a", "b", "a", "", ""])),
        [0, 2, 3, 4]
    );
    let mut two = build(&DUPLICATEFILTER, &[("window", "2")]);
    assert_eq!(
        passed(&mut *two, data(&["a", "b", "a", "c", "a", "b", "a"])),
        [0, 1, 3, 4, 5]
    );
}

#[test]
fn range_bounds_are_inclusive() {
    let mut r = build(&RANGEFILTER, &[("min-size", "2"), ("max-size", "4")]);
    assert_eq!(passed(&mut *r, sized(&[1, 2, 3, 4, 5, 0])), [1, 2, 3]);
    let mut s = build(
        &RANGEFILTER,
        &[("sequence-min", "1"), ("sequence-max", "2")],
    );
    assert_eq!(passed(&mut *s, sized(&[1; 5])), [1, 2]);
    let mut empty_only = build(&RANGEFILTER, &[("max-size", "0")]);
    assert_eq!(passed(&mut *empty_only, sized(&[0, 1, 0])), [0, 2]);
}

#[test]
fn an_empty_range_is_refused() {
    let mut p = Props::defaults("rangefilter0", RANGEFILTER.props);
    p.set("min-size", Value::UInt(5));
    p.set("max-size", Value::Int(4));
    let err = (RANGEFILTER.build)(&p).err().unwrap();
    assert!(err.to_string().contains("property `min-size`"), "{err}");
}

// --- the fast path against the interpreter -------------------------------------------------

#[test]
fn expr_outside_the_fast_subset_still_runs_on_the_interpreter() {
    for source in [
        "size(meta.kind) == 5",
        "[1, 2].exists(x, x == seq)",
        "seq in [0, 2]",
        r#"meta["kind"] == "audio""#,
    ] {
        assert!(!expr::compile(source).unwrap().is_fast(), "{source}");
    }
    let mut f = build(&FILTER, &[("expr", "seq in [0, 2]")]);
    assert_eq!(passed(&mut *f, sized(&[1; 4])), [0, 2]);
    let mut tagged = buffer(0, b"a");
    tagged
        .meta
        .set_field("kind", FieldValue::Str("audio".into()));
    let mut s = build(&FILTER, &[("expr", "size(meta.kind) == 5")]);
    assert_eq!(passed(&mut *s, vec![tagged]), [0]);
}

#[test]
fn expr_errors_on_the_fast_path_carry_the_interpreters_message() {
    for (source, on) in [
        ("pts > 5", buffer(3, b"a")),
        ("seq / (size - 1) == 0", buffer(4, b"a")),
        (r#"meta.kind == "audio""#, buffer(5, b"a")),
        ("size + 1", buffer(6, b"a")),
    ] {
        let p = expr::compile(source).unwrap();
        assert!(p.is_fast(), "{source}");
        let want = p.interpret(&on).unwrap_err();
        let mut f = build(&FILTER, &[("expr", source), ("on-error", "fail")]);
        let run = DetachedRun::new();
        let seq = on.meta.sequence;
        let err = f.process(on, &mut run.ctx()).unwrap_err();
        assert_eq!(err.to_string(), format!("expr on buffer {seq}: {want}"));
    }
}

/// Expressions in the fast path's subset, fully parenthesised (so any tree can be written).
fn subset_expr() -> impl Strategy<Value = String> {
    subset_leaf().prop_recursive(5, 48, 3, move |inner| {
        prop_oneof![
            6 => (inner.clone(), binary_op(), inner.clone())
                .prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
            1 => inner.clone().prop_map(|a| format!("!({a})")),
            1 => inner.clone().prop_map(|a| format!("-({a})")),
            1 => (inner.clone(), inner.clone(), inner)
                .prop_map(|(c, a, b)| format!("({c}) ? ({a}) : ({b})")),
        ]
    })
}

fn binary_op() -> impl Strategy<Value = &'static str> + Clone {
    prop::sample::select(vec![
        "&&", "&&", "||", "||", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%",
    ])
}

/// A variable, a field, a presence test or a literal (NaN and infinity included).
fn subset_leaf() -> impl Strategy<Value = String> + Clone {
    let vars = prop::sample::select(vec![
        "size",
        "seq",
        "pts",
        "dts",
        "duration",
        "offset",
        "stream_id",
        "flags",
        "meta.kind",
        "meta.n",
        "meta.raw",
        "has(meta.kind)",
        "has(meta.n)",
    ]);
    let literals = prop::sample::select(vec![
        "0",
        "1",
        "2",
        "-1",
        "10",
        "50",
        "100",
        "9223372036854775807",
        "-9223372036854775808",
        "0u",
        "1u",
        "7u",
        "18446744073709551615u",
        "0.0",
        "1.5",
        "-2.5",
        "100.0",
        "1e300",
        "-0.0",
        "(0.0 / 0.0)",
        "(1e300 * 1e300)",
        r#""audio""#,
        r#""video""#,
        r#""""#,
        r#"b"ab""#,
        r#"b"""#,
        "true",
        "false",
        "null",
    ]);
    prop_oneof![
        3 => vars.prop_map(String::from),
        2 => literals.prop_map(String::from),
        1 => (-200i64..200).prop_map(|i| i.to_string()),
    ]
}

/// A time or offset: unset, small, or past i64::MAX (the variables saturate).
fn maybe_time() -> impl Strategy<Value = Option<u64>> {
    prop::option::of(prop_oneof![
        4 => 0u64..1000,
        1 => Just(1u64 << 63),
        1 => Just(u64::MAX - 1),
    ])
}

/// A user field's value, or none.
fn maybe_field() -> impl Strategy<Value = Option<FieldValue>> {
    prop::option::of(prop_oneof![
        Just(FieldValue::Str("audio".into())),
        Just(FieldValue::Str("video".into())),
        Just(FieldValue::Str(String::new())),
        (-3i64..200).prop_map(FieldValue::Int),
        Just(FieldValue::Int(i64::MIN)),
        Just(FieldValue::Bytes(b"ab".to_vec())),
        Just(FieldValue::Bytes(Vec::new())),
    ])
}

fn any_buffer() -> impl Strategy<Value = Buffer> {
    (
        0usize..120,
        prop_oneof![4 => 0u64..30, 1 => Just(u64::MAX)],
        [maybe_time(), maybe_time(), maybe_time(), maybe_time()],
        prop_oneof![0u32..3, Just(u32::MAX)],
        0u32..4,
        [maybe_field(), maybe_field(), maybe_field()],
    )
        .prop_map(
            |(size, seq, [pts, dts, duration, offset], stream, flags, fields)| {
                let mut b = buffer(seq, &vec![b'x'; size]);
                b.meta.set_pts(pts);
                b.meta.set_dts(dts);
                b.meta.set_duration(duration);
                b.meta.set_offset(offset);
                b.meta.stream_id = stream;
                b.meta.flags = BufferFlags(flags);
                for (key, value) in ["kind", "n", "raw"].into_iter().zip(fields) {
                    if let Some(v) = value {
                        b.meta.set_field(key, v);
                    }
                }
                b
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// On every expression of the subset and every buffer, the fast path gives the
    /// interpreter's value, or fails where it gives an error.
    #[test]
    fn fast_path_agrees_with_the_interpreter(
        source in subset_expr(),
        bufs in prop::collection::vec(any_buffer(), 4),
    ) {
        agree(&source, &bufs)?;
    }

    /// The same, denser on the operators' corners: one operator between two leaves.
    #[test]
    fn fast_path_agrees_on_one_operator(
        (a, op, b) in (subset_leaf(), binary_op(), subset_leaf()),
        bufs in prop::collection::vec(any_buffer(), 4),
    ) {
        agree(&format!("{a} {op} {b}"), &bufs)?;
        agree(&format!("-({a}) {op} !({b})"), &bufs)?;
    }
}

/// The corners random expressions reach only by luck, checked every run.
#[test]
fn fast_path_agrees_on_the_corners() {
    let plain = buffer(u64::MAX, b"abc");
    let mut full = buffer(7, b"");
    full.meta.set_pts(Some(1 << 63));
    full.meta.set_dts(Some(5));
    full.meta.set_field("kind", FieldValue::Str("audio".into()));
    full.meta.set_field("n", FieldValue::Int(i64::MIN));
    full.meta
        .set_field("raw", FieldValue::Bytes(b"ab".to_vec()));
    let bufs = [plain, full];
    for source in [
        "0.0 / 0.0 < 1.5",
        "0.0 / 0.0 == 0.0 / 0.0",
        "0.0 / 0.0 != 1",
        "-0.0 < 0.0",
        "-0.0 == 0u",
        "1e300 * 1e300 > 9223372036854775807",
        "9223372036854775807 == 9223372036854775807.0",
        "9223372036854775807 < 9223372036854775807.0",
        "18446744073709551615u > 9223372036854775807",
        "-1 < 0u",
        "seq == 9223372036854775807",
        "pts == 9223372036854775807 && dts == 5",
        "-9223372036854775808 / -1 == 0",
        "-9223372036854775808 % -1 == 0",
        "-(meta.n) == 0",
        "meta.n - 1 < 0",
        "1.5 % 1.0 == 0.5",
        "7u % 0u == 0u",
        "0u - 1u == 0u",
        "-(1u) == 0",
        r#"meta.kind + "x" == "audiox""#,
        r#"meta.raw + b"c" == b"abc""#,
        r#"meta.raw < b"b" && meta.kind > "a""#,
        r#"meta.kind == b"audio""#,
        "true < false || false <= true",
        "null == null && pts != null",
        "null < null",
        "(size > 1 ? meta.kind : 1) == 1",
        "meta.missing == 1 || true",
        "true || meta.missing == 1",
        "meta.missing == 1 && false",
        "1 && false",
        "1 || true",
        "false || 1",
        "!1",
        "size",
        "has(meta.kind) && !has(meta.missing)",
    ] {
        agree(source, &bufs).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Checks that `source` is compiled for the fast path, and that on each of `bufs` it gives
/// the interpreter's value, or fails where the interpreter gives an error.
fn agree(source: &str, bufs: &[Buffer]) -> Result<(), TestCaseError> {
    let p = expr::compile(source).unwrap();
    prop_assert!(p.is_fast(), "not compiled: {}", source);
    for buf in bufs {
        let fast = p.fast_matches(buf).unwrap();
        let slow = p.interpret(buf);
        prop_assert_eq!(
            fast.ok(),
            slow.as_ref().ok().copied(),
            "{} on {:?}: the interpreter says {:?}",
            source,
            buf.meta,
            slow
        );
    }
    Ok(())
}
