//! Image encoders: RGBA pixels → the model's input tensor → embeddings.
//!
//! Browsers decode images themselves (createImageBitmap, canvas) and hand over RGBA; the
//! CLI and the package under Node decode PNG and JPEG files with `decode_image` (the `image`
//! crate). From RGBA on, all run this same code.

use image::{imageops, ImageBuffer, Rgb, RgbImage};
use tract_onnx::prelude::Tensor;

use super::runtime::{OnnxModel, Output, Threads};
use super::{
    check_sha256, EncodeError, Filter, Matrix, ModelEntry, ModelKind, Preprocessing, ResizeMode,
};

/// Larger images are refused rather than risk running a browser tab out of memory
/// (64 megapixels is a 256 MB RGBA buffer).
pub const MAX_IMAGE_PIXELS: u64 = 64 * 1024 * 1024;

/// Straight (not premultiplied) RGBA, row after row, 4 bytes a pixel.
#[derive(Clone, Debug, PartialEq)]
pub struct RgbaImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// Decodes a PNG or JPEG file's bytes to straight RGBA (colour profiles ignored), naming `what`
/// on failure. The size is read from the header and checked (pixel limit, memory budget) before
/// any pixel is decoded, so a small file claiming a huge picture is refused, not allocated.
pub fn decode_image(what: &str, bytes: &[u8]) -> Result<RgbaImage, EncodeError> {
    let undecodable = |message: String| EncodeError::Undecodable {
        what: what.to_string(),
        message,
    };
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| undecodable(e.to_string()))?;
    // Reading the header allocates nothing; the decoder's own limit would refuse a forged size
    // with only "Memory limit exceeded", where the checks below say what and why.
    reader.no_limits();
    let Some(format) = reader.format() else {
        return Err(undecodable(format!(
            "{} bytes that are neither PNG nor JPEG",
            bytes.len()
        )));
    };
    let (width, height) = reader.into_dimensions().map_err(|e| match e {
        // On wasm32 a forged header can claim more than the 4 GB address space.
        image::ImageError::Limits(_) => {
            undecodable("its header claims a picture too large to decode here".into())
        }
        e => undecodable(e.to_string()),
    })?;
    if u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS {
        return Err(undecodable(format!(
            "{width}×{height} is more than {MAX_IMAGE_PIXELS} pixels"
        )));
    }
    // The decoder's buffer and the RGBA copy live together.
    crate::core::budget::check_bytes(
        what,
        format!("{width}×{height} pixels"),
        u128::from(width) * u128::from(height) * 8,
    )
    .map_err(|e| undecodable(e.to_string()))?;
    let decoded = image::ImageReader::with_format(std::io::Cursor::new(bytes), format)
        .decode()
        .map_err(|e| undecodable(e.to_string()))?;
    let decoded = into_rgba(decoded);
    Ok(RgbaImage {
        width: decoded.width(),
        height: decoded.height(),
        data: decoded.into_raw(),
    })
}

/// Straight RGBA of a decoded picture. Grey and RGB bytes, what photos decode to, are spread
/// here in one pass (alpha 255; grey to all three channels, as `to_rgba8` does): `to_rgba8`'s
/// generic per-pixel conversion was 2.8% of a one-thread image run. Other layouts go through it.
fn into_rgba(decoded: image::DynamicImage) -> image::RgbaImage {
    let (width, height) = (decoded.width(), decoded.height());
    let pixels = width as usize * height as usize;
    let spread = |from: &[u8], channels: usize, to: fn(&[u8], &mut [u8])| {
        let mut rgba = vec![255u8; pixels * 4];
        for (px, out) in from.chunks_exact(channels).zip(rgba.chunks_exact_mut(4)) {
            to(px, out);
        }
        image::RgbaImage::from_raw(width, height, rgba)
    };
    let fast = match &decoded {
        image::DynamicImage::ImageRgb8(rgb) => {
            spread(rgb.as_raw(), 3, |px, out| out[..3].copy_from_slice(px))
        }
        image::DynamicImage::ImageLuma8(grey) => {
            spread(grey.as_raw(), 1, |px, out| out[..3].fill(px[0]))
        }
        _ => None,
    };
    fast.unwrap_or_else(|| decoded.to_rgba8())
}

fn check_image(index: usize, image: &RgbaImage) -> Result<(), EncodeError> {
    let (width, height) = (image.width, image.height);
    if width == 0 || height == 0 {
        return Err(EncodeError::EmptyImage {
            index,
            width,
            height,
        });
    }
    if u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS {
        return Err(EncodeError::ImageTooLarge {
            index,
            width,
            height,
            max: MAX_IMAGE_PIXELS,
        });
    }
    let expected = width as usize * height as usize * 4;
    if image.data.len() != expected {
        return Err(EncodeError::PixelBuffer {
            index,
            width,
            height,
            expected,
            actual: image.data.len(),
        });
    }
    Ok(())
}

/// Alpha-composites over the background colour. An opaque pixel is copied as it is (what the
/// blend gives for alpha 255: (255·v + 127) / 255 = v).
fn flatten(image: &RgbaImage, background: [u8; 3]) -> RgbImage {
    let mut out = vec![0u8; image.width as usize * image.height as usize * 3];
    for (px, rgb) in image.data.chunks_exact(4).zip(out.chunks_exact_mut(3)) {
        let alpha = u32::from(px[3]);
        if alpha == 255 {
            rgb.copy_from_slice(&px[..3]);
            continue;
        }
        for c in 0..3 {
            let v = u32::from(px[c]) * alpha + u32::from(background[c]) * (255 - alpha);
            rgb[c] = ((v + 127) / 255) as u8;
        }
    }
    // The length is width * height * 3 by construction (checked in check_image).
    ImageBuffer::from_raw(image.width, image.height, out)
        .unwrap_or_else(|| RgbImage::new(image.width, image.height))
}

/// `image` resized by fast_image_resize: Pillow's filters in fixed point, the same bytes with
/// every instruction set (its tests check each against one checksum), so native and wasm
/// builds see the same pixels. Through its typed API for 8-bit RGB alone: its untyped
/// `resize` dispatches over 13 pixel types at run time, and so compiled all 13 into the
/// wasm module.
fn resize(image: &RgbImage, width: u32, height: u32, filter: Filter) -> RgbImage {
    use fast_image_resize::images::{TypedImage, TypedImageRef};
    use fast_image_resize::pixels::U8x3;
    use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
    if image.width() == width && image.height() == height {
        return image.clone();
    }
    let algorithm = match filter {
        Filter::Nearest => ResizeAlg::Nearest,
        Filter::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
        Filter::Bicubic => ResizeAlg::Convolution(FilterType::CatmullRom),
    };
    let mut bytes = vec![0u8; width as usize * height as usize * 3];
    let resized = TypedImageRef::<U8x3>::from_buffer(image.width(), image.height(), image.as_raw())
        .map_err(|e| e.to_string())
        .and_then(|source| {
            let mut resized = TypedImage::<U8x3>::from_buffer(width, height, &mut bytes)
                .map_err(|e| e.to_string())?;
            Resizer::new()
                .resize_typed(
                    &source,
                    &mut resized,
                    &ResizeOptions::new().resize_alg(algorithm),
                )
                .map_err(|e| e.to_string())
        })
        .ok()
        .and_then(|()| RgbImage::from_raw(width, height, bytes));
    // Not reached: the buffer is whole (width × height × 3, checked in check_image) and bytes
    // need no alignment; image's own resize stays as the fallback rather than a panic.
    resized.unwrap_or_else(|| {
        let filter = match filter {
            Filter::Nearest => imageops::FilterType::Nearest,
            Filter::Bilinear => imageops::FilterType::Triangle,
            Filter::Bicubic => imageops::FilterType::CatmullRom,
        };
        imageops::resize(image, width, height, filter)
    })
}

fn scaled(side: u32, scale: f64) -> u32 {
    ((f64::from(side) * scale).round() as u32).max(1)
}

/// The square `size`×`size` RGB image the model sees, before normalisation.
pub fn resized_rgb(p: &Preprocessing, image: &RgbaImage) -> Result<RgbImage, EncodeError> {
    check_image(0, image)?;
    let rgb = flatten(image, p.background);
    let size = p.size;
    let (w, h) = (image.width, image.height);
    Ok(match p.resize {
        ResizeMode::Stretch => resize(&rgb, size, size, p.filter),
        ResizeMode::Letterbox => {
            let scale = f64::from(size) / f64::from(w.max(h));
            let (nw, nh) = (scaled(w, scale).min(size), scaled(h, scale).min(size));
            let inner = resize(&rgb, nw, nh, p.filter);
            let mut canvas = ImageBuffer::from_pixel(size, size, Rgb(p.background));
            imageops::replace(
                &mut canvas,
                &inner,
                i64::from((size - nw) / 2),
                i64::from((size - nh) / 2),
            );
            canvas
        }
        ResizeMode::CenterCrop => {
            let scale = f64::from(size) / f64::from(w.min(h));
            let (nw, nh) = (scaled(w, scale).max(size), scaled(h, scale).max(size));
            let big = resize(&rgb, nw, nh, p.filter);
            imageops::crop_imm(&big, (nw - size) / 2, (nh - size) / 2, size, size).to_image()
        }
    })
}

/// The model's input for one image: `3×size×size` (NCHW) or `size×size×3` (NHWC) floats.
pub fn preprocess(p: &Preprocessing, image: &RgbaImage) -> Result<Vec<f32>, EncodeError> {
    let affine = p.affine()?;
    let rgb = resized_rgb(p, image)?;
    let plane = p.size as usize * p.size as usize;
    let bgr = p.channel_order == "bgr";
    let nhwc = p.layout == "nhwc";
    // Every byte's value in each channel, worked out once by the same expression.
    let values: [[f32; 256]; 3] =
        affine.map(|(scale, shift)| std::array::from_fn(|v| f32::from(v as u8) * scale + shift));
    let mut out = vec![0.0f32; 3 * plane];
    for (i, px) in rgb.as_raw().chunks_exact(3).enumerate() {
        for (c, values) in values.iter().enumerate() {
            let source = if bgr { 2 - c } else { c };
            let at = if nhwc { i * 3 + c } else { c * plane + i };
            out[at] = values[usize::from(px[source])];
        }
    }
    Ok(out)
}

pub struct ImageEncoder {
    entry: ModelEntry,
    preprocessing: Preprocessing,
    model: OnnxModel,
    threads: Threads,
}

impl ImageEncoder {
    pub fn from_bytes(entry: &ModelEntry, model: &[u8]) -> Result<ImageEncoder, EncodeError> {
        entry.validate()?;
        if entry.kind != ModelKind::Image {
            return Err(EncodeError::Manifest(format!(
                "model {:?} is not an image model",
                entry.name
            )));
        }
        let preprocessing = entry.preprocessing.clone().ok_or_else(|| {
            EncodeError::Manifest(format!("model {:?} has no preprocessing", entry.name))
        })?;
        check_sha256(&entry.file, model, &entry.sha256)?;
        let size = preprocessing.size as usize;
        let one = if preprocessing.layout == "nhwc" {
            [1, size, size, 3]
        } else {
            [1, 3, size, size]
        };
        let model = OnnxModel::from_bytes(&entry.name, model, Some(&one))?;
        for spec in &entry.inputs {
            model.require_input(&spec.name)?;
        }
        if model.input_names().len() != 1 {
            return Err(EncodeError::Manifest(format!(
                "model {:?} takes {} inputs ({}); an image model takes one",
                entry.name,
                model.input_names().len(),
                model.input_names().join(", ")
            )));
        }
        model.output_index(&entry.embedding_output)?;
        Ok(ImageEncoder {
            entry: entry.clone(),
            preprocessing,
            model,
            threads: Threads::default(),
        })
    }

    /// Runs on `threads` threads from now on (0: one per core; a new encoder uses one).
    /// Several pictures are embedded side by side, one per thread; a single picture has
    /// each of tract's operations split over the threads. Embeddings do not depend on the
    /// count. Natively only: wasm32 has no threads.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn set_threads(&mut self, threads: usize) -> Result<(), EncodeError> {
        self.threads = Threads::new(&self.entry.name, threads)?;
        Ok(())
    }

    /// The threads it runs on.
    pub fn threads(&self) -> usize {
        self.threads.count()
    }

    pub fn entry(&self) -> &ModelEntry {
        &self.entry
    }

    pub fn dim(&self) -> usize {
        self.entry.embedding_dim
    }

    /// The embedding of each image (one normalised row each).
    pub fn embed(&self, images: &[RgbaImage]) -> Result<Matrix, EncodeError> {
        let name = self.entry.embedding_output.clone();
        let mut out = self.embed_outputs(images, &[name.as_str()])?;
        Ok(out.remove(0))
    }

    /// Several outputs at once, e.g. `image_embeds` and the pooled `features`. The
    /// embedding output is normalised if the manifest says so; other outputs are raw.
    pub fn embed_outputs(
        &self,
        images: &[RgbaImage],
        outputs: &[&str],
    ) -> Result<Vec<Matrix>, EncodeError> {
        if images.is_empty() {
            return Err(EncodeError::NothingToEncode("image"));
        }
        let indices = outputs
            .iter()
            .map(|name| self.model.output_index(name))
            .collect::<Result<Vec<_>, _>>()?;
        let size = self.preprocessing.size as usize;
        let shape = if self.preprocessing.layout == "nhwc" {
            [1, size, size, 3]
        } else {
            [1, 3, size, size]
        };
        // one picture per run: the plan is optimised for a batch of one (see from_bytes)
        let one = |index: usize, image: &RgbaImage| -> Result<Vec<Output>, EncodeError> {
            check_image(index, image)?;
            let pixels = preprocess(&self.preprocessing, image)?;
            let tensor =
                Tensor::from_shape(&shape, &pixels).map_err(|e| EncodeError::Inference {
                    what: self.entry.name.clone(),
                    message: format!("{e:#}"),
                })?;
            self.model.run(vec![tensor], &indices)
        };
        // Several pictures: side by side, one thread each (no hand-off between the threads
        // inside a run, and the small late layers, which split poorly, keep every thread
        // busy too); one picture: its operations split over the threads.
        let each: Vec<Result<Vec<Output>, EncodeError>> = match images {
            [image] => vec![self.threads.split_ops(|| one(0, image))],
            _ => self.threads.map(images, one),
        };
        let mut results: Vec<Output> = vec![(Vec::new(), Vec::new()); outputs.len()];
        for (index, picture) in each.into_iter().enumerate() {
            for (all, (one_shape, values)) in results.iter_mut().zip(picture?) {
                if one_shape.first() != Some(&1) {
                    return Err(EncodeError::Inference {
                        what: self.entry.name.clone(),
                        message: format!("an output has shape {one_shape:?} for one image"),
                    });
                }
                all.0 = one_shape;
                all.0[0] = index + 1;
                all.1.extend(values);
            }
        }
        results
            .into_iter()
            .zip(outputs)
            .map(|((shape, values), name)| {
                let rows = images.len();
                let cols = values.len().checked_div(rows).unwrap_or(0);
                if shape.first() != Some(&rows) || cols * rows != values.len() {
                    return Err(EncodeError::Inference {
                        what: self.entry.name.clone(),
                        message: format!("output {name:?} has shape {shape:?} for {rows} images"),
                    });
                }
                let mut m = Matrix {
                    rows,
                    cols,
                    data: values,
                };
                if *name == self.entry.embedding_output {
                    if cols != self.entry.embedding_dim {
                        return Err(EncodeError::Manifest(format!(
                            "model {:?}: {name:?} has {cols} dimensions, the manifest says {}",
                            self.entry.name, self.entry.embedding_dim
                        )));
                    }
                    if self.entry.normalize {
                        m.normalize_rows();
                    }
                }
                Ok(m)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG of `width` × `height` with every pixel distinct, written by the `image` crate.
    fn png(width: u32, height: u32) -> (Vec<u8>, Vec<u8>) {
        let pixels: Vec<u8> = (0..width * height * 4)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut bytes = Vec::new();
        image::RgbaImage::from_raw(width, height, pixels.clone())
            .unwrap()
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .unwrap();
        (bytes, pixels)
    }

    #[test]
    fn decode_image_gives_the_pixels_back_and_names_what_it_refuses() {
        let (bytes, pixels) = png(5, 3);
        let decoded = decode_image("tiny.png", &bytes).unwrap();
        assert_eq!((decoded.width, decoded.height), (5, 3));
        assert_eq!(decoded.data, pixels);

        let junk = decode_image("notes.txt", b"hello").unwrap_err().to_string();
        assert_eq!(
            junk,
            "notes.txt cannot be decoded as a picture: 5 bytes that are neither PNG nor JPEG"
        );
        let cut = decode_image("cut.png", &bytes[..bytes.len() / 2])
            .unwrap_err()
            .to_string();
        assert!(
            cut.starts_with("cut.png cannot be decoded as a picture: "),
            "{cut}"
        );

        // The header says 20,000 × 20,000 (the IHDR chunk's CRC made right); the 5 × 3 pixels follow.
        let mut forged = bytes.clone();
        forged[16..20].copy_from_slice(&20_000u32.to_be_bytes());
        forged[20..24].copy_from_slice(&20_000u32.to_be_bytes());
        let crc = crc32(&forged[12..29]);
        forged[29..33].copy_from_slice(&crc.to_be_bytes());
        let huge = decode_image("forged.png", &forged).unwrap_err().to_string();
        assert_eq!(
            huge,
            "forged.png cannot be decoded as a picture: 20000×20000 is more than 67108864 pixels"
        );
    }

    /// PNG's CRC-32 (the test writes one header by hand).
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn letterbox() -> Preprocessing {
        Preprocessing {
            size: 4,
            resize: ResizeMode::Letterbox,
            background: [255, 255, 255],
            filter: Filter::Bilinear,
            scale: Some(1.0 / 128.0),
            offset: Some(-127.0),
            mean: None,
            std: None,
            formula: None,
            channel_order: "rgb".into(),
            layout: "nchw".into(),
        }
    }

    fn solid(width: u32, height: u32, rgba: [u8; 4]) -> RgbaImage {
        RgbaImage {
            width,
            height,
            data: rgba.repeat((width * height) as usize),
        }
    }

    #[test]
    fn letterbox_pads_with_the_background() {
        let out = resized_rgb(&letterbox(), &solid(8, 4, [0, 0, 0, 255])).unwrap();
        // 8×4 → 4×2, centred: rows 0 and 3 are white bars.
        assert_eq!(out.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(out.get_pixel(0, 1).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(3, 2).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(3, 3).0, [255, 255, 255]);
    }

    #[test]
    fn transparency_composites_over_the_background() {
        let out = resized_rgb(&letterbox(), &solid(4, 4, [0, 0, 0, 0])).unwrap();
        assert_eq!(out.get_pixel(1, 1).0, [255, 255, 255]);
    }

    #[test]
    fn center_crop_and_normalisation() {
        let mut p = letterbox();
        p.resize = ResizeMode::CenterCrop;
        let tensor = preprocess(&p, &solid(8, 4, [255, 127, 0, 255])).unwrap();
        assert_eq!(tensor.len(), 3 * 16);
        assert!((tensor[0] - 1.0).abs() < 1e-6); // (255 − 127) / 128
        assert!(tensor[16].abs() < 1e-6); // (127 − 127) / 128
        assert!((tensor[32] + 127.0 / 128.0).abs() < 1e-6);
        p.mean = Some([0.5; 3]);
        p.std = Some([0.5; 3]);
        p.scale = None;
        p.offset = None;
        p.channel_order = "bgr".into();
        let tensor = preprocess(&p, &solid(4, 4, [255, 0, 0, 255])).unwrap();
        assert!((tensor[0] + 1.0).abs() < 1e-6); // blue channel first: (0 − .5) / .5
        assert!((tensor[32] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn every_decoded_layout_spreads_to_the_rgba_that_to_rgba8_gives() {
        let (w, h) = (7u32, 5u32);
        let bytes = |channels: u32| -> Vec<u8> {
            (0..w * h * channels)
                .map(|i| (i * 37 % 256) as u8)
                .collect()
        };
        let layouts = [
            image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, bytes(3)).unwrap()),
            image::DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, bytes(1)).unwrap()),
            image::DynamicImage::ImageLumaA8(
                image::GrayAlphaImage::from_raw(w, h, bytes(2)).unwrap(),
            ),
            image::DynamicImage::ImageRgba8(image::RgbaImage::from_raw(w, h, bytes(4)).unwrap()),
        ];
        for layout in layouts {
            let want = layout.to_rgba8();
            assert_eq!(into_rgba(layout.clone()), want, "{:?}", layout.color());
        }
    }

    #[test]
    fn opaque_pixels_and_looked_up_values_are_what_the_formulas_give() {
        // Every alpha, and every byte of every channel, through flatten and preprocess.
        let (w, h) = (256u32, 3u32);
        let data: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let v = (i % 256) as u8;
                [v, 255 - v, v.wrapping_mul(7), if i < 256 { 255 } else { v }]
            })
            .collect();
        let image = RgbaImage {
            width: w,
            height: h,
            data: data.clone(),
        };
        let background = [255, 10, 128];
        let flat = flatten(&image, background);
        for (px, rgb) in data.chunks_exact(4).zip(flat.as_raw().chunks_exact(3)) {
            let alpha = u32::from(px[3]);
            for c in 0..3 {
                let v = u32::from(px[c]) * alpha + u32::from(background[c]) * (255 - alpha);
                assert_eq!(u32::from(rgb[c]), (v + 127) / 255, "{px:?}");
            }
        }
        let mut p = letterbox();
        p.size = 16;
        p.resize = ResizeMode::Stretch;
        p.filter = Filter::Nearest;
        let (scale, shift) = (1.0 / 128.0, -127.0 / 128.0);
        for layout in ["nchw", "nhwc"] {
            p.layout = layout.into();
            let tensor = preprocess(&p, &image).unwrap();
            let rgb = resized_rgb(&p, &image).unwrap();
            for (i, px) in rgb.pixels().enumerate() {
                for c in 0..3 {
                    let at = if layout == "nhwc" {
                        i * 3 + c
                    } else {
                        c * 256 + i
                    };
                    let want = f32::from(px.0[c]) * scale + shift;
                    assert_eq!(tensor[at].to_bits(), want.to_bits(), "{layout} {i} {c}");
                }
            }
        }
    }

    #[test]
    fn bad_images_are_named() {
        let p = letterbox();
        assert!(matches!(
            preprocess(&p, &solid(0, 0, [0; 4])),
            Err(EncodeError::EmptyImage { .. })
        ));
        let short = RgbaImage {
            width: 2,
            height: 2,
            data: vec![0; 15],
        };
        assert!(matches!(
            preprocess(&p, &short),
            Err(EncodeError::PixelBuffer {
                expected: 16,
                actual: 15,
                ..
            })
        ));
        let huge = RgbaImage {
            width: 100_000,
            height: 100_000,
            data: vec![],
        };
        assert!(matches!(
            preprocess(&p, &huge),
            Err(EncodeError::ImageTooLarge { .. })
        ));
    }
}
