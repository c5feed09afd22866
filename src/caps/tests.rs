//! The caps grammar and gst's algebra: examples from gst's docs, then properties.

use super::*;
use proptest::prelude::*;

fn caps(text: &str) -> Caps {
    Caps::parse(text).unwrap_or_else(|e| panic!("{text}: {e} at {}", e.at))
}

#[test]
fn parses_and_prints_in_gst_form() {
    let c = caps("video/x-raw,format=I420,width=640,height=(int)480,framerate=30/1");
    assert_eq!(
        c.to_string(),
        "video/x-raw, format=(string)I420, width=(int)640, height=(int)480, \
         framerate=(fraction)30/1"
    );
    assert!(c.is_fixed());
    let c = caps(
        "audio/x-raw, rate=(int)[ 1, 2147483647 ], format={ S16LE, F32LE }, \
                  layout=(string)interleaved, channel-mask=(bitmask)0x3",
    );
    assert_eq!(
        c.to_string(),
        "audio/x-raw, rate=(int)[ 1, 2147483647 ], format=(string){ S16LE, F32LE }, \
         layout=(string)interleaved, channel-mask=(bitmask)0x0000000000000003"
    );
    assert!(!c.is_fixed());
    assert_eq!(caps("ANY"), Caps::Any);
    assert_eq!(caps(" EMPTY "), Caps::EMPTY);
    let two = caps("video/x-raw(memory:SystemMemory), width=1; video/x-raw(memory:GLMemory)");
    assert_eq!(two.structures().len(), 2);
    // System memory is what no features means.
    assert_eq!(two.structures()[0].features, Vec::<String>::new());
    assert_eq!(
        two.to_string(),
        "video/x-raw, width=(int)1; video/x-raw(memory:GLMemory)"
    );
    let c = caps("x/y, s=\"a b\", d=1.5, t=true, r=[ 1/1, 60/1 ], a=< 1, 2 >, st=[ 0, 10, 2 ]");
    assert_eq!(
        c.to_string(),
        "x/y, s=(string)\"a b\", d=(double)1.5, t=(boolean)true, \
         r=(fraction)[ 1/1, 60/1 ], a=(int)< 1, 2 >, st=(int)[ 0, 10, 2 ]"
    );
}

#[test]
fn errors_point_at_the_character() {
    let at = |t: &str| {
        let e = Caps::parse(t).unwrap_err();
        (e.at, e.message)
    };
    assert_eq!(
        at("video/x-raw,width=(int)abc"),
        (23, "`abc` is not an int".into())
    );
    assert_eq!(
        at("video/x-raw,width=(integer)3").1,
        "unknown type `(integer)`: int, double, fraction, boolean, string or bitmask"
    );
    assert_eq!(at("video/x-raw,width=[ 5, 1 ]").0, 23);
    assert_eq!(at("video/x-raw,format={ I420, NV12").0, 31);
    assert_eq!(at("video/x-raw,=3").0, 12);
    assert_eq!(
        at("video/x-raw,width=1,width=2").1,
        "field `width` is set twice"
    );
    assert_eq!(at("ANY, x=1").0, 3);
    assert_eq!(
        at("").1,
        "expected caps (`type/subtype,field=value`, ANY or EMPTY)"
    );
}

#[test]
fn intersection_follows_gst() {
    let a = caps("video/x-raw, format={ I420, NV12, RGB }, width=[ 16, 4096 ]");
    let b = caps("video/x-raw, format={ NV12, I420 }, width=640, height=480");
    assert_eq!(
        a.intersect(&b).to_string(),
        "video/x-raw, format=(string){ I420, NV12 }, width=(int)640, height=(int)480"
    );
    assert!(caps("audio/x-raw")
        .intersect(&caps("video/x-raw"))
        .is_empty());
    assert!(caps("video/x-raw, width=(int)3")
        .intersect(&caps("video/x-raw, width=(double)3.0"))
        .is_empty());
    assert_eq!(Caps::Any.intersect(&b), b);
    assert_eq!(
        caps("x/y, r=[ 0, 100, 4 ]").intersect(&caps("x/y, r=[ 10, 50, 6 ]")),
        caps("x/y, r=[ 16, 40, 12 ]")
    );
    assert_eq!(
        caps("x/y, f=[ 1/1, 30/1 ]").intersect(&caps("x/y, f=[ 25/1, 60/1 ]")),
        caps("x/y, f=[ 25/1, 30/1 ]")
    );
    assert_eq!(
        caps("x/y(memory:GLMemory)").intersect(&caps("x/y")),
        Caps::EMPTY
    );
}

#[test]
fn fixation_takes_first_and_smallest_or_nearest() {
    let c = caps("video/x-raw, format={ YV12, I420 }, width=[ 16, 4096 ], framerate=[ 0/1, 60/1 ]; video/x-raw, format=RGB");
    assert_eq!(
        c.fixate().to_string(),
        "video/x-raw, format=(string)YV12, width=(int)16, framerate=(fraction)0/1"
    );
    let mut s = c.first().unwrap().clone();
    assert!(s.fixate_nearest_int("width", 320));
    assert!(s.fixate_nearest_fraction("framerate", Fraction::new(30, 1).unwrap()));
    assert!(s.fixate_string("format", "I420"));
    assert_eq!(
        s.to_string(),
        "video/x-raw, format=(string)I420, width=(int)320, framerate=(fraction)30/1"
    );
    let mut s = caps("a/b, r={ 8000, 44100, 48000 }")
        .first()
        .unwrap()
        .clone();
    s.fixate_nearest_int("r", 47000);
    assert_eq!(s.int("r"), Some(48000));
    assert_eq!(Caps::Any.fixate(), Caps::Any);
}

#[test]
fn subset_follows_gst() {
    let wide = caps("audio/x-raw, rate=[ 1, 48000 ], format={ S16LE, F32LE }");
    assert!(caps("audio/x-raw, rate=8000, format=S16LE, channels=1").is_subset(&wide));
    assert!(!caps("audio/x-raw, rate=96000, format=S16LE").is_subset(&wide));
    assert!(!caps("audio/x-raw, rate=8000").is_subset(&wide));
    assert!(wide.is_subset(&Caps::Any));
    assert!(!Caps::Any.is_subset(&wide));
    assert!(Caps::EMPTY.is_subset(&wide));
}

// --- properties ------------------------------------------------------------------------------

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        (-4i64..4).prop_map(Value::Int),
        (-4i64..4, 1i64..6, 1i64..3).prop_filter_map("empty", |(lo, len, step)| {
            Value::int_range(lo, lo + len, step)
        }),
        prop_oneof![Just("a"), Just("b"), Just("c")].prop_map(|s| Value::Str(s.into())),
        (1i32..4, 1i32..3)
            .prop_filter_map("zero", |(n, d)| Fraction::new(n, d).map(Value::Fraction)),
        (1i32..4, 1i32..4).prop_filter_map("empty", |(a, b)| {
            Value::fraction_range(Fraction::new(a, 1)?, Fraction::new(a + b, 1)?)
        }),
        any::<bool>().prop_map(Value::Bool),
        (0u64..8).prop_map(Value::Bitmask),
        prop_oneof![Just(0.5), Just(1.0)].prop_map(Value::Double),
    ];
    prop_oneof![
        3 => leaf.clone(),
        1 => prop::collection::vec(leaf, 1..4).prop_filter_map("empty", Value::list),
    ]
}

fn structure() -> impl Strategy<Value = Structure> {
    (
        prop_oneof![Just("audio/x-raw"), Just("video/x-raw")],
        any::<bool>(),
        prop::collection::vec(
            (prop_oneof![Just("x"), Just("y"), Just("z")], value()),
            0..3,
        ),
    )
        .prop_map(|(name, gl, fields)| {
            let mut s = Structure::new(name);
            if gl {
                s.features.push("memory:GLMemory".into());
            }
            for (k, v) in fields {
                s.set(k, v);
            }
            s
        })
}

fn any_caps() -> impl Strategy<Value = Caps> {
    prop_oneof![
        1 => Just(Caps::Any),
        6 => prop::collection::vec(structure(), 0..3).prop_map(Caps::Structures),
    ]
}

proptest! {
    #[test]
    fn intersection_is_commutative(a in any_caps(), b in any_caps()) {
        let ab = a.intersect(&b);
        let ba = b.intersect(&a);
        prop_assert!(ab.is_equivalent(&ba), "{a} ∩ {b}: {ab} vs {ba}");
    }

    #[test]
    fn intersection_is_within_both(a in any_caps(), b in any_caps()) {
        let ab = a.intersect(&b);
        prop_assert!(ab.is_subset(&a) && ab.is_subset(&b), "{a} ∩ {b} = {ab}");
    }

    #[test]
    fn subset_agrees_with_intersection(a in any_caps(), b in any_caps()) {
        if a.is_subset(&b) {
            prop_assert!(a.intersect(&b).is_equivalent(&a), "{a} ⊆ {b}");
        }
        prop_assert!(a.is_subset(&a));
    }

    #[test]
    fn fixate_is_fixed_and_within(a in any_caps()) {
        let f = a.fixate();
        if !a.is_any() && !a.is_empty() {
            prop_assert!(f.is_fixed(), "{a} fixates to {f}");
        }
        prop_assert!(f.is_subset(&a), "{a} fixates to {f}");
    }

    #[test]
    fn printed_caps_parse_back(a in any_caps()) {
        let text = a.to_string();
        let back = Caps::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(back, a);
    }
}
