//! `latentlab xrm …`: XRM (Pezeshki et al.) on a Waterbirds-like data set made here from real
//! pictures — Tux Paint's water and land bird stamps composited onto Tux Paint's ocean and
//! forest photos (Debian `tuxpaint-stamps-default`, `tuxpaint-data`) — embedded with the
//! bundled image encoder. `xrm data` builds and embeds it; `xrm run` discovers environments
//! and compares ERM and GroupDRO with class labels, XRM's groups and the true groups over
//! seeds. One JSON object on stdout.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use image::imageops::{self, FilterType};
use latentlab::core::matrix::Matrix;
use latentlab::core::xrm::{
    discover_environments, erm, group_dro, recovery, Grouped, Labelled, XrmOptions,
};
use latentlab::encode::RgbaImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::common::{emit, progress, Models};
use crate::encode_cmd::ModelArgs;
use crate::npy::{read_labels, read_matrix, write_matrix};

#[derive(Subcommand)]
pub enum XrmCommand {
    /// Composite water and land birds onto water and land backgrounds (the background agrees
    /// with the bird in a chosen share of the training images, half of the others), split by
    /// species, and embed them: DIR/{train,val,test}_{x,y,place}.npy and sample pictures.
    Data(DataArgs),
    /// XRM's environments and the accuracy table (ERM, GroupDRO with class labels, with XRM's
    /// groups, with the true groups) over seeds.
    Run(RunArgs),
}

#[derive(Args)]
pub struct DataArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Tux Paint's folder (stamps/ and templates/ inside).
    #[arg(long, value_name = "DIR", default_value = "/usr/share/tuxpaint")]
    tuxpaint: PathBuf,
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Pictures per split.
    #[arg(long, default_value_t = 800)]
    train: usize,
    #[arg(long, default_value_t = 300)]
    val: usize,
    #[arg(long, default_value_t = 600)]
    test: usize,
    /// Share of training pictures whose background matches the bird (validation and test: 0.5).
    #[arg(long, default_value_t = 0.95)]
    agree: f64,
    /// The bird's longest side as a share of the picture's side.
    #[arg(long, default_value_t = 0.35)]
    bird_scale: f64,
    /// Side of the square pictures, in pixels.
    #[arg(long, default_value_t = 224)]
    size: u32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
pub struct RunArgs {
    /// A folder written by `xrm data`.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// Full-batch steps of every training (the reference's quick_run: 3000).
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    /// Project the features on their first N principal components (fitted on the training
    /// split) first; 0 keeps them all.
    #[arg(long, default_value_t = 64)]
    pca: usize,
    /// Scale each principal component to unit variance (on the training split).
    #[arg(long)]
    whiten: bool,
}

pub fn run(cmd: XrmCommand) -> Result<bool> {
    match cmd {
        XrmCommand::Data(a) => data(a),
        XrmCommand::Run(a) => run_xrm(a),
    }?;
    Ok(true)
}

/// Birds that live on or by water (label 1) and on land (label 0), Tux Paint's stamp names.
const WATER_BIRDS: [&str; 13] = [
    "crowned_crane",
    "drake",
    "duck",
    "gander",
    "heron_greatblue",
    "heron_greatblue_flying",
    "little-penguin",
    "magellanic_penguin",
    "pelican",
    "penguin",
    "pink_flamingo",
    "seagull",
    "silver-gull",
];
const LAND_BIRDS: [&str; 22] = [
    "adelaide-rosella",
    "albino_peahen",
    "blackbird",
    "chicken_profile",
    "crow",
    "cuckoo",
    "guineafowl",
    "helmeted_guineafowl",
    "hen",
    "lark",
    "magpie",
    "nandou",
    "ostrich",
    "owl",
    "peacock",
    "pigeon",
    "quetzal",
    "rainbow-lorikeet",
    "rooster",
    "tucan",
    "turkey",
    "vulture",
];
/// Tux Paint's template photos of water (place 1) and land (place 0).
const WATER_PLACES: [&str; 3] = ["ocean_splash.jpg", "ocean_waves.jpg", "jellyfish.jpg"];
const LAND_PLACES: [&str; 5] = [
    "redwoods_above.jpg",
    "trees_above.jpg",
    "trees_at_dusk.jpg",
    "mossy_log.jpg",
    "sun_behind_leaves.jpg",
];

fn load(path: &Path) -> Result<image::RgbaImage> {
    Ok(image::open(path)
        .with_context(|| {
            format!(
                "cannot read {} (install Debian's tuxpaint-stamps-default and tuxpaint-data, or give --tuxpaint)",
                path.display()
            )
        })?
        .to_rgba8())
}

/// A random square crop of `bg` (half to all of its shorter side), resized to `size`.
fn crop(bg: &image::RgbaImage, size: u32, rng: &mut ChaCha8Rng) -> image::RgbaImage {
    let short = bg.width().min(bg.height());
    let side = ((short as f64) * rng.random_range(0.5..=1.0)) as u32;
    let x = rng.random_range(0..=bg.width() - side);
    let y = rng.random_range(0..=bg.height() - side);
    let view = imageops::crop_imm(bg, x, y, side, side).to_image();
    imageops::resize(&view, size, size, FilterType::Triangle)
}

/// `bird` scaled to `scale`·size (±20 %), maybe mirrored, alpha-blended at a random place.
fn composite(
    canvas: &mut image::RgbaImage,
    bird: &image::RgbaImage,
    scale: f64,
    rng: &mut ChaCha8Rng,
) {
    let size = canvas.width() as f64;
    let longest = bird.width().max(bird.height()) as f64;
    let factor = scale * size * rng.random_range(0.8..=1.2) / longest;
    let (w, h) = (
        ((bird.width() as f64 * factor) as u32).clamp(1, canvas.width()),
        ((bird.height() as f64 * factor) as u32).clamp(1, canvas.height()),
    );
    let mut b = imageops::resize(bird, w, h, FilterType::Triangle);
    if rng.random::<bool>() {
        b = imageops::flip_horizontal(&b);
    }
    let x = rng.random_range(0..=canvas.width() - w) as i64;
    let y = rng.random_range(0..=canvas.height() - h) as i64;
    imageops::overlay(canvas, &b, x, y);
}

fn data(args: DataArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&args.agree) {
        bail!("--agree {}: expected a share in [0, 1]", args.agree);
    }
    if !(args.bird_scale > 0.0 && args.bird_scale <= 1.0) {
        bail!(
            "--bird-scale {}: expected a share in (0, 1]",
            args.bird_scale
        );
    }
    if args.size < 32 {
        bail!("--size {}: expected at least 32 pixels", args.size);
    }
    let birds_dir = args.tuxpaint.join("stamps/animals/birds");
    let places_dir = args.tuxpaint.join("templates");
    let load_all = |dir: &Path, names: &[&str], ext: &str| -> Result<Vec<image::RgbaImage>> {
        names
            .iter()
            .map(|n| load(&dir.join(format!("{n}{ext}"))))
            .collect()
    };
    // species split: every third species (of each kind) is a test species
    let split_species = |names: &[&'static str]| -> (Vec<&'static str>, Vec<&'static str>) {
        let test = names
            .iter()
            .copied()
            .enumerate()
            .filter(|(i, _)| i % 3 == 2)
            .map(|p| p.1)
            .collect();
        let rest = names
            .iter()
            .copied()
            .enumerate()
            .filter(|(i, _)| i % 3 != 2)
            .map(|p| p.1)
            .collect();
        (rest, test)
    };
    let (water_fit, water_test) = split_species(&WATER_BIRDS);
    let (land_fit, land_test) = split_species(&LAND_BIRDS);
    let places = [
        load_all(&places_dir, &LAND_PLACES, "")?,
        load_all(&places_dir, &WATER_PLACES, "")?,
    ];
    let models = Models::open(args.model.models.as_deref())?;
    let (_, image, _, _) = models.image_text_pair(args.model.model.clone())?;
    std::fs::create_dir_all(args.out.join("samples"))
        .with_context(|| format!("--out {}", args.out.display()))?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut summary = serde_json::Map::new();
    for (split, n, agree, (land, water)) in [
        ("train", args.train, args.agree, (&land_fit, &water_fit)),
        ("val", args.val, 0.5, (&land_fit, &water_fit)),
        ("test", args.test, 0.5, (&land_test, &water_test)),
    ] {
        if n == 0 {
            bail!("--{split} 0: every split needs pictures");
        }
        let birds = [
            load_all(&birds_dir, land, ".png")?,
            load_all(&birds_dir, water, ".png")?,
        ];
        let bar = progress(n, &format!("{split} pictures"));
        let (mut ys, mut places_of) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let mut features = Matrix::zeros(0, 0);
        let mut batch = Vec::new();
        for k in 0..n {
            // about a quarter water birds, as in Waterbirds
            let y = usize::from(rng.random::<f64>() < 0.25);
            let place = if rng.random::<f64>() < agree {
                y
            } else {
                1 - y
            };
            let bg = &places[place][rng.random_range(0..places[place].len())];
            let bird = &birds[y][rng.random_range(0..birds[y].len())];
            let mut canvas = crop(bg, args.size, &mut rng);
            composite(&mut canvas, bird, args.bird_scale, &mut rng);
            if k < 12 {
                let name = format!("{split}-{k:02}-y{y}-place{place}.png");
                canvas
                    .save(args.out.join("samples").join(&name))
                    .with_context(|| format!("writing {name}"))?;
            }
            batch.push(RgbaImage {
                width: canvas.width(),
                height: canvas.height(),
                data: canvas.into_raw(),
            });
            ys.push(y as i64);
            places_of.push(place as i64);
            if batch.len() == 16 || k + 1 == n {
                let part = image.embed_outputs(&batch, &["features"])?.remove(0);
                features.append(&part)?;
                bar.inc(batch.len() as u64);
                batch.clear();
            }
        }
        bar.finish_and_clear();
        write_matrix(&args.out.join(format!("{split}_x.npy")), &features)?;
        crate::npy::write_labels(&args.out.join(format!("{split}_y.npy")), &ys)?;
        crate::npy::write_labels(&args.out.join(format!("{split}_place.npy")), &places_of)?;
        let minority = ys.iter().zip(&places_of).filter(|(a, b)| a != b).count();
        summary.insert(
            split.into(),
            json!({"n": n, "water_birds": ys.iter().filter(|&&y| y == 1).count(), "minority": minority,
                   "species": {"land": land, "water": water}}),
        );
    }
    emit(&json!({
        "out": args.out, "agree": args.agree, "bird_scale": args.bird_scale, "size": args.size,
        "splits": summary, "features": image.entry().name,
    }))
}

struct Split {
    x: Vec<f32>,
    y: Vec<usize>,
    place: Vec<usize>,
}

fn read_split(
    dir: &Path,
    name: &str,
    pca: Option<&(Vec<f32>, Vec<f32>, usize)>,
) -> Result<(Split, usize)> {
    let x = read_matrix(
        &dir.join(format!("{name}_x.npy")),
        &format!("--data {name}_x.npy"),
    )?;
    let label = |file: &str| -> Result<Vec<usize>> {
        let v = read_labels(&dir.join(file), &format!("--data {file}"))?;
        v.into_iter()
            .map(|l| usize::try_from(l).with_context(|| format!("{file}: negative label {l}")))
            .collect()
    };
    let y = label(&format!("{name}_y.npy"))?;
    let place = label(&format!("{name}_place.npy"))?;
    if y.len() != x.rows || place.len() != x.rows {
        bail!(
            "--data {}: {name} has {} pictures but {} labels and {} places",
            dir.display(),
            x.rows,
            y.len(),
            place.len()
        );
    }
    let (data, dim) = match pca {
        None => (x.data, x.cols),
        Some((mean, basis, k)) => {
            let mut out = Vec::with_capacity(x.rows * k);
            for r in x.iter_rows() {
                for c in 0..*k {
                    let b = &basis[c * x.cols..(c + 1) * x.cols];
                    out.push(
                        r.iter()
                            .zip(mean)
                            .zip(b)
                            .map(|((v, m), w)| (v - m) * w)
                            .sum(),
                    );
                }
            }
            (out, *k)
        }
    };
    Ok((Split { x: data, y, place }, dim))
}

/// The training features' mean and first `k` principal directions (k × dim, row-major),
/// each divided by its standard deviation when `whiten`.
fn pca_basis(x: &Matrix, k: usize, whiten: bool) -> (Vec<f32>, Vec<f32>, usize) {
    let (n, d) = (x.rows, x.cols);
    let mut mean = vec![0.0f64; d];
    for r in x.iter_rows() {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += *v as f64 / n as f64;
        }
    }
    let mut cov = nalgebra::DMatrix::<f64>::zeros(d, d);
    for r in x.iter_rows() {
        let c: Vec<f64> = r.iter().zip(&mean).map(|(v, m)| *v as f64 - m).collect();
        for i in 0..d {
            for j in i..d {
                cov[(i, j)] += c[i] * c[j];
            }
        }
    }
    for i in 0..d {
        for j in 0..i {
            cov[(i, j)] = cov[(j, i)];
        }
    }
    let eig = nalgebra::SymmetricEigen::new(cov);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let k = k.min(d);
    let mut basis = Vec::with_capacity(k * d);
    for &c in &order[..k] {
        let scale = if whiten {
            1.0 / (eig.eigenvalues[c] / n as f64).max(1e-12).sqrt()
        } else {
            1.0
        };
        basis.extend(
            eig.eigenvectors
                .column(c)
                .iter()
                .map(|v| (*v * scale) as f32),
        );
    }
    (mean.iter().map(|v| *v as f32).collect(), basis, k)
}

fn labelled(s: &Split, dim: usize) -> Labelled<'_> {
    Labelled {
        x: &s.x,
        dim,
        y: &s.y,
    }
}

fn run_xrm(args: RunArgs) -> Result<()> {
    if args.seeds == 0 {
        bail!("--seeds 0: expected at least 1");
    }
    let train_x = read_matrix(&args.data.join("train_x.npy"), "--data train_x.npy")?;
    let pca = (args.pca > 0 && args.pca < train_x.cols)
        .then(|| pca_basis(&train_x, args.pca, args.whiten));
    let (train, dim) = read_split(&args.data, "train", pca.as_ref())?;
    let (val, _) = read_split(&args.data, "val", pca.as_ref())?;
    let (test, _) = read_split(&args.data, "test", pca.as_ref())?;
    let (tr, va, te) = (
        labelled(&train, dim),
        labelled(&val, dim),
        labelled(&test, dim),
    );
    let test_g = Grouped {
        data: te,
        env: &test.place,
    };
    let minority =
        |s: &Split| -> Vec<bool> { s.y.iter().zip(&s.place).map(|(y, p)| y != p).collect() };
    let train_opts = XrmOptions {
        steps: args.steps,
        ..XrmOptions::default()
    };
    let trained = |e_tr: &[usize], e_va: &[usize], dro: bool| {
        let t = Grouped {
            data: tr,
            env: e_tr,
        };
        let v = Grouped {
            data: va,
            env: e_va,
        };
        if dro {
            group_dro(t, v, test_g, &train_opts)
        } else {
            erm(t, v, test_g, &train_opts)
        }
    };
    // ERM and GroupDRO with given groups start from zero and use no randomness: the same for
    // every seed, so trained once
    let (zeros_tr, zeros_va) = (vec![0usize; tr.len()], vec![0usize; va.len()]);
    let erm_r = trained(&zeros_tr, &zeros_va, false)?;
    let classes = trained(&zeros_tr, &zeros_va, true)?;
    let oracle = trained(&train.place, &val.place, true)?;
    let bar = progress(args.seeds as usize, "seeds");
    let mut rows = Vec::new();
    for seed in 0..args.seeds {
        let opts = XrmOptions {
            seed,
            ..train_opts.clone()
        };
        let env = discover_environments(&tr, &va, &opts)?;
        let xrm = trained(&env.train, &env.validation, true)?;
        rows.push(json!({
            "seed": seed, "flip_rate": env.flip_rate, "degenerate": env.degenerate,
            "recovery_train": recovery(&env.train, &minority(&train)),
            "recovery_val": recovery(&env.validation, &minority(&val)),
            "erm": erm_r, "groupdro_classes": classes, "groupdro_xrm": xrm, "groupdro_true": oracle,
        }));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let stat = |path: &[&str]| -> serde_json::Value {
        let vals: Vec<f64> = rows
            .iter()
            .map(|r| {
                path.iter()
                    .fold(r, |v, k| &v[*k])
                    .as_f64()
                    .unwrap_or(f64::NAN)
            })
            .collect();
        let n = vals.len() as f64;
        let mean = vals.iter().sum::<f64>() / n;
        let sd = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
        json!({"mean": mean, "std": sd})
    };
    let mut table = serde_json::Map::new();
    for method in ["erm", "groupdro_classes", "groupdro_xrm", "groupdro_true"] {
        table.insert(
            method.into(),
            json!({
                "test_worst_group": stat(&[method, "test_worst_group"]),
                "test_average": stat(&[method, "test_average"]),
            }),
        );
    }
    emit(&json!({
        "data": args.data, "seeds": args.seeds, "steps": args.steps, "dim": dim,
        "whiten": args.whiten,
        "n": {"train": tr.len(), "val": va.len(), "test": te.len()},
        "recovery": {
            "train_precision": stat(&["recovery_train", "precision"]),
            "train_recall": stat(&["recovery_train", "recall"]),
            "val_precision": stat(&["recovery_val", "precision"]),
            "val_recall": stat(&["recovery_val", "recall"]),
        },
        "table": table,
        "runs": rows,
    }))
}
