//! A custom transform is an ordinary closure: a typed `map` turns each line into its upper
//! case, on the same engine that runs `parallax-launch` descriptions.

use parallax::typed::from_iter;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lines = ["hello", "parallax", "world"].map(String::from);
    let upper = from_iter(lines)
        .map(|s: String| s.to_uppercase())
        .map(|s: String| format!("{s} ({} bytes)", s.len()))
        .sink(parallax::typed::collect::<String>())
        .run()?
        .into_inner();
    for line in upper {
        println!("{line}");
    }
    Ok(())
}
