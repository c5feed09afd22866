use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::*;
use std::time::Instant;
fn main() {
    let src = vec![100u8; 1920 * 1080];
    let mut dst = vec![0u8; 1280 * 720];
    for (name, alg) in [
        ("nearest", ResizeAlg::Nearest),
        (
            "interp bilinear",
            ResizeAlg::Interpolation(FilterType::Bilinear),
        ),
        (
            "conv bilinear",
            ResizeAlg::Convolution(FilterType::Bilinear),
        ),
        ("conv box", ResizeAlg::Convolution(FilterType::Box)),
    ] {
        let mut r = Resizer::new();
        let opts = ResizeOptions::new().resize_alg(alg).use_alpha(false);
        let s = ImageRef::new(1920, 1080, &src, PixelType::U8).unwrap();
        let t = Instant::now();
        for _ in 0..100 {
            let mut d = Image::from_slice_u8(1280, 720, &mut dst, PixelType::U8).unwrap();
            r.resize(&s, &mut d, &opts).unwrap();
        }
        println!(
            "{name}: {:.3} ms per Y plane ({:?})",
            t.elapsed().as_secs_f64() * 10.0,
            r.cpu_extensions()
        );
    }
}
