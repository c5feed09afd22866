//! A typed pipeline: the compiler checks every link (a stage that takes `String` cannot follow
//! one that gives `i32`), and the run is the engine's own.

use parallax::typed::{collect, filter, from_iter, map};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ran = from_iter(1i32..=10)
        .then(filter(|x: &i32| x % 2 == 0)) // keep even numbers
        .then(map(|x: i32| x * 10)) // multiply by 10
        .sink(collect::<i32>())
        .run()?;
    for e in &ran.report.elements {
        println!("{:<12} {:>3} buffers", e.name, e.buffers);
    }
    println!("result: {:?}", ran.into_inner());
    Ok(())
}
