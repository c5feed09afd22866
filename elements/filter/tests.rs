//! The filters, one buffer at a time, outside a pipeline.

use super::*;

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
