//! The builder in full: rkyv structs, a tee, dynamic elements between typed stages, and the
//! description the builder hands to the parser (the same graph `parallax-launch` would build).

use parallax::typed::{collect, from_iter};

#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
struct Reading {
    sensor: u32,
    celsius: f32,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let readings = (0..20).map(|i| Reading {
        sensor: i % 4,
        celsius: 15.0 + i as f32,
    });
    let (hot, all) = from_iter(readings)
        .skip(2)
        .take(12)
        .through("queue max-size-buffers=4 ! identity")
        .tee();
    let _alerts = hot
        .filter(|r: &Reading| r.celsius > 25.0)
        .filter_map(|r: Reading| {
            (r.sensor != 0).then(|| format!("sensor {} at {}", r.sensor, r.celsius))
        })
        .sink(collect::<String>());
    let sealed = all
        .inspect(|r| assert!(r.celsius.to_native() >= 15.0))
        .map(|r: Reading| r.sensor)
        .sink(collect::<u32>());
    println!("description: {}", sealed.description());
    let ran = sealed.run()?;
    println!("elements: {}", ran.report.elements.len());
    println!("sensors seen: {:?}", ran.into_inner());
    Ok(())
}
