//! Isolation: a typed map over an rkyv struct runs in a worker process (this program,
//! re-executed), and a typed filter in another. The items cross in shared memory both ways:
//! the map's worker reads each archive in the parent's pool, validated once, and writes its
//! answer into a pool of its own that the parent maps; the filter's worker sends back the very
//! buffers it keeps. `-m` style messages count what crossed and what was copied.

use parallax::exec::RunOptions;
use parallax::registry::Exec;
use parallax::typed::{collect, from_iter, AnyNamedStage, NamedFilter, NamedStage};

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
struct Reading {
    sensor: u32,
    celsius: f32,
}

fn to_fahrenheit(r: Reading) -> Reading {
    Reading {
        celsius: r.celsius * 9.0 / 5.0 + 32.0,
        ..r
    }
}

fn warm(r: &Reading) -> bool {
    r.celsius >= 30.0
}

static FAHRENHEIT: NamedStage<Reading, Reading> = NamedStage::new("fahrenheit", to_fahrenheit);
static WARM: NamedFilter<Reading> = NamedFilter::new("warm", warm);
static STAGES: &[&dyn AnyNamedStage] = &[&FAHRENHEIT, &WARM];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A worker starts here, serves its stage and exits.
    parallax::typed::serve_worker(STAGES);
    let readings: Vec<Reading> = (0..8)
        .map(|i| Reading {
            sensor: i,
            celsius: 10.0 * i as f32,
        })
        .collect();
    let options = RunOptions {
        messages: true,
        ..RunOptions::default()
    };
    let out = from_iter(readings.clone())
        .then_named(&FAHRENHEIT)
        .exec(Exec::Isolated)
        .sink(collect::<Reading>())
        .run_with(&options)?
        .into_inner();
    let expected: Vec<Reading> = readings.iter().cloned().map(to_fahrenheit).collect();
    println!(
        "{} readings converted in a worker process, as expected: {}",
        out.len(),
        out == expected
    );

    let kept = from_iter(readings.clone())
        .filter_named(&WARM)
        .exec(Exec::Isolated)
        .sink(collect::<Reading>())
        .run_with(&options)?
        .into_inner();
    println!(
        "{} of {} readings kept by a filter in a worker process, as expected: {}",
        kept.len(),
        readings.len(),
        kept == readings
            .iter()
            .filter(|r| warm(r))
            .cloned()
            .collect::<Vec<_>>()
    );
    println!(
        "typed buffers copied for alignment: {}",
        parallax::typed::misaligned_copies()
    );
    Ok(())
}
