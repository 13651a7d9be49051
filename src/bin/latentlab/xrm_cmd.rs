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
use latentlab::core::pca::Pca;
use latentlab::core::xrm::{
    compare, discover_environments_at, select_by_flip_rate, selection_score, AttributedSplit,
    XrmOptions,
};
use latentlab::encode::RgbaImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::common::{emit, progress};
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
    /// Choose XRM's settings as the reference does (phase-1 model selection): run the twins at
    /// one seed for every combination of principal components, whitening and steps, and keep
    /// the largest final flip rate (degenerate runs count 0, first on ties). No group labels
    /// are used.
    Select(SelectArgs),
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
    /// Which animals: Tux Paint's water and land birds, or those plus fish, shellfish and
    /// aquatic mammals against land mammals and marsupials.
    #[arg(long, value_enum, default_value_t = Variant::Birds)]
    variant: Variant,
    /// Side of the square pictures, in pixels.
    #[arg(long, default_value_t = 224)]
    size: u32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write every picture, shrunk to this side, as DIR/pictures/SPLIT-NNNN.jpg (the
    /// site's XRM page shows them); 0 writes none. DIR/pictures.json lists every picture's
    /// label, background and species either way.
    #[arg(long, default_value_t = 0, value_name = "SIDE")]
    thumbnails: u32,
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
    /// Steps of XRM's twins alone (phase 1), when `xrm select` chose them apart from the
    /// baselines' and GroupDRO's; default: --steps.
    #[arg(long, value_name = "N")]
    twin_steps: Option<usize>,
    /// Project the features on their first N principal components (fitted on the training
    /// split) first; 0 keeps them all.
    #[arg(long, default_value_t = 64)]
    pca: usize,
    /// Scale each principal component to unit variance (on the training split).
    #[arg(long)]
    whiten: bool,
}

#[derive(Args)]
pub struct SelectArgs {
    /// A folder written by `xrm data`.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The seed every combination runs at (the reference: 0).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Principal components to try (0: all the features, not whitened).
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,0")]
    pca: Vec<usize>,
    /// Step counts to try (each read off one run of the largest).
    #[arg(long, value_delimiter = ',', default_value = "100,300,1000,3000")]
    steps: Vec<usize>,
}

pub fn run(cmd: XrmCommand) -> Result<bool> {
    match cmd {
        XrmCommand::Data(a) => data(a),
        XrmCommand::Run(a) => run_xrm(a),
        XrmCommand::Select(a) => select(a),
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
#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
pub enum Variant {
    Birds,
    Animals,
}

/// The larger variant's animals of the water (label 1) and of the land (label 0), as paths
/// under Tux Paint's `stamps/animals/`: one pose per species (so no species is in both the
/// training and the test split), semi-aquatic ones (beaver, capybara, hippopotamus) and
/// cartoons left out.
const WATER_ANIMALS: [&str; 18] = [
    "fish/bluegroper",
    "fish/butterflyfish",
    "fish/clownfish",
    "fish/coraltrout",
    "fish/dolphinfish",
    "fish/lionfish",
    "fish/lobster",
    "fish/moonwrasse",
    "fish/seahorse",
    "fish/shrimp",
    "fish/stripedfish",
    "shellfish/abalone",
    "shellfish/murray-mussel",
    "mammals/aquatic/dolphin",
    "mammals/aquatic/orca",
    "mammals/aquatic/otter",
    "mammals/aquatic/sea_lion",
    "mammals/aquatic/whale",
];
const LAND_ANIMALS: [&str; 44] = [
    "mammals/apes/chimp",
    "mammals/apes/gorilla",
    "mammals/apes/tamarin_emperor",
    "mammals/badger",
    "mammals/bears/bear",
    "mammals/bovines/bison",
    "mammals/bovines/bull",
    "mammals/bovines/cow",
    "mammals/bovines/gnu-stand",
    "mammals/bovines/goat",
    "mammals/bovines/indian_blackbuck",
    "mammals/bovines/mountaingoat",
    "mammals/bovines/ram",
    "mammals/bovines/sheep",
    "mammals/bovines/yak",
    "mammals/bovines/zebu",
    "mammals/camel/camel",
    "mammals/camel/dromedary",
    "mammals/cats/lion",
    "mammals/cats/tiger",
    "mammals/deer/caribou",
    "mammals/deer/deer",
    "mammals/deer/wapiti",
    "mammals/dogs/dingo",
    "mammals/dogs/dog",
    "mammals/dogs/fox",
    "mammals/echidna",
    "mammals/elephant",
    "mammals/equines/donkey",
    "mammals/equines/horse",
    "mammals/equines/zebra",
    "mammals/ferret",
    "mammals/giraffe",
    "mammals/hedgehog",
    "mammals/pig",
    "mammals/rhino_black",
    "mammals/rodents/marmot",
    "mammals/rodents/mouse",
    "mammals/rodents/rabbit",
    "mammals/rodents/squirrel",
    "mammals/wildboar",
    "marsupials/kangaroo",
    "marsupials/koala",
    "marsupials/wombat",
];

/// The variant's (water, land) species as paths under `stamps/animals/`.
fn species(variant: Variant) -> (Vec<String>, Vec<String>) {
    let birds =
        |names: &[&str]| -> Vec<String> { names.iter().map(|n| format!("birds/{n}")).collect() };
    let (mut water, mut land) = (birds(&WATER_BIRDS), birds(&LAND_BIRDS));
    if variant == Variant::Animals {
        water.extend(WATER_ANIMALS.iter().map(|s| s.to_string()));
        land.extend(LAND_ANIMALS.iter().map(|s| s.to_string()));
    }
    (water, land)
}

/// Stamps that show one species (two sexes, poses or views), so the split keeps them together.
const SAME_SPECIES: [(&str, &str); 11] = [
    ("birds/drake", "duck"),
    ("birds/duck", "duck"),
    ("birds/heron_greatblue", "heron"),
    ("birds/heron_greatblue_flying", "heron"),
    ("birds/seagull", "gull"),
    ("birds/silver-gull", "gull"),
    ("birds/chicken_profile", "chicken"),
    ("birds/hen", "chicken"),
    ("birds/rooster", "chicken"),
    ("birds/albino_peahen", "peafowl"),
    ("birds/peacock", "peafowl"),
];

/// (training, test) stamps: every third species, in the list's order, is a test species.
fn split_by_species(stamps: Vec<String>) -> (Vec<String>, Vec<String>) {
    let species_of = |stamp: &str| -> String {
        SAME_SPECIES
            .iter()
            .find(|(s, _)| *s == stamp)
            .map_or(stamp.to_string(), |(_, species)| species.to_string())
    };
    let mut order: Vec<String> = Vec::new();
    for stamp in &stamps {
        let sp = species_of(stamp);
        if !order.contains(&sp) {
            order.push(sp);
        }
    }
    stamps.into_iter().partition(|stamp| {
        let sp = species_of(stamp);
        order
            .iter()
            .position(|o| *o == sp)
            .is_some_and(|i| i % 3 != 2)
    })
}

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
    let animals_dir = args.tuxpaint.join("stamps/animals");
    let places_dir = args.tuxpaint.join("templates");
    let load_all = |dir: &Path, names: &[String], ext: &str| -> Result<Vec<image::RgbaImage>> {
        names
            .iter()
            .map(|n| load(&dir.join(format!("{n}{ext}"))))
            .collect()
    };
    // species split: every third species (of each kind) is a test species
    let (water, land) = species(args.variant);
    let (water_fit, water_test) = split_by_species(water);
    let (land_fit, land_test) = split_by_species(land);
    let names = |v: &[&str]| -> Vec<String> { v.iter().map(|s| s.to_string()).collect() };
    let places = [
        load_all(&places_dir, &names(&LAND_PLACES), "")?,
        load_all(&places_dir, &names(&WATER_PLACES), "")?,
    ];
    let models = args.model.open()?;
    let (_, image, _, _) = models.image_text_pair(args.model.model.clone())?;
    std::fs::create_dir_all(args.out.join("samples"))
        .with_context(|| format!("--out {}", args.out.display()))?;
    if args.thumbnails > 0 {
        std::fs::create_dir_all(args.out.join("pictures"))
            .with_context(|| format!("--out {}", args.out.display()))?;
    }
    // training and validation share their species: each stamp is decoded once
    let fit_birds = [
        load_all(&animals_dir, &land_fit, ".png")?,
        load_all(&animals_dir, &water_fit, ".png")?,
    ];
    let test_birds = [
        load_all(&animals_dir, &land_test, ".png")?,
        load_all(&animals_dir, &water_test, ".png")?,
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut summary = serde_json::Map::new();
    let mut listing = serde_json::Map::new();
    for (split, n, agree, (land, water), birds) in [
        (
            "train",
            args.train,
            args.agree,
            (&land_fit, &water_fit),
            &fit_birds,
        ),
        ("val", args.val, 0.5, (&land_fit, &water_fit), &fit_birds),
        (
            "test",
            args.test,
            0.5,
            (&land_test, &water_test),
            &test_birds,
        ),
    ] {
        if n == 0 {
            bail!("--{split} 0: every split needs pictures");
        }
        let bar = progress(n, &format!("{split} pictures"));
        let (mut ys, mut places_of) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let mut pictures = Vec::with_capacity(n);
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
            let bg_index = rng.random_range(0..places[place].len());
            let bird_index = rng.random_range(0..birds[y].len());
            let mut canvas = crop(&places[place][bg_index], args.size, &mut rng);
            composite(
                &mut canvas,
                &birds[y][bird_index],
                args.bird_scale,
                &mut rng,
            );
            let species = &if y == 1 { water } else { land }[bird_index];
            let background = [&LAND_PLACES[..], &WATER_PLACES[..]][place][bg_index];
            let mut picture =
                json!({"y": y, "place": place, "species": species, "background": background});
            if args.thumbnails > 0 {
                let file = format!("pictures/{split}-{k:04}.jpg");
                let side = args.thumbnails.min(args.size);
                let small = imageops::resize(&canvas, side, side, FilterType::Triangle);
                image::DynamicImage::ImageRgba8(small)
                    .to_rgb8()
                    .save(args.out.join(&file))
                    .with_context(|| format!("writing {file}"))?;
                picture["file"] = json!(file);
            }
            pictures.push(picture);
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
        listing.insert(split.into(), json!(pictures));
        let minority = ys.iter().zip(&places_of).filter(|(a, b)| a != b).count();
        summary.insert(
            split.into(),
            json!({"n": n, "water_birds": ys.iter().filter(|&&y| y == 1).count(), "minority": minority,
                   "species": {"land": land, "water": water}}),
        );
    }
    let report = json!({
        "out": args.out, "agree": args.agree, "bird_scale": args.bird_scale, "size": args.size,
        "variant": if args.variant == Variant::Birds { "birds" } else { "animals" },
        "splits": summary, "features": image.entry().name,
    });
    let mut with_pictures = report.clone();
    with_pictures["pictures"] = json!(listing);
    std::fs::write(
        args.out.join("pictures.json"),
        serde_json::to_string(&with_pictures)?,
    )
    .context("writing pictures.json")?;
    emit(&report)
}

#[derive(Clone)]
struct Split {
    x: Matrix,
    y: Vec<usize>,
    place: Vec<usize>,
}

fn read_split(dir: &Path, name: &str) -> Result<Split> {
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
    Ok(Split { x, y, place })
}

fn read_splits(dir: &Path, names: &[&str]) -> Result<Vec<Split>> {
    names.iter().map(|name| read_split(dir, name)).collect()
}

/// The splits on the first `components` principal components of the first split (0: the
/// features as they are), each component scaled to unit variance when `whiten`.
fn project(splits: &[Split], components: usize, whiten: bool) -> Result<Vec<Split>> {
    let dim = splits[0].x.cols;
    if components == 0 || components >= dim {
        if whiten {
            bail!("--whiten needs --pca below the features' {dim} dimensions (whitening scales principal components)");
        }
        return Ok(splits.to_vec());
    }
    let pca = Pca::fit(&splits[0].x, components).context("--data train_x.npy")?;
    splits
        .iter()
        .map(|s| -> Result<Split> {
            Ok(Split {
                x: pca.project_as(&s.x, "features", whiten)?,
                ..s.clone()
            })
        })
        .collect()
}

fn attributed(s: &Split) -> AttributedSplit<'_> {
    AttributedSplit::of(&s.x, &s.y, &s.place)
}

fn run_xrm(args: RunArgs) -> Result<()> {
    if args.seeds == 0 {
        bail!("--seeds 0: expected at least 1");
    }
    let [train, val, test]: [Split; 3] = project(
        &read_splits(&args.data, &["train", "val", "test"])?,
        args.pca,
        args.whiten,
    )?
    .try_into()
    .map_err(|_| anyhow::anyhow!("three splits"))?;
    let dim = train.x.cols;
    let (tr, va, te) = (attributed(&train), attributed(&val), attributed(&test));
    let opts = XrmOptions {
        steps: args.steps,
        twin_steps: args.twin_steps,
        ..XrmOptions::default()
    };
    let bar = progress(3 + args.seeds as usize, "trainings");
    let result = compare(tr, va, te, args.seeds, &opts, |done, _| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    let summary = result.summary();
    let rows: Vec<_> = result
        .runs
        .iter()
        .map(|r| {
            json!({
                "seed": r.seed, "flip_rate": r.environments.flip_rate,
                "flip_rates": r.environments.flip_rates,
                "degenerate": r.environments.degenerate,
                "recovery_train": r.recovery_train, "recovery_val": r.recovery_val,
                "erm": result.erm, "groupdro_classes": result.groupdro_classes,
                "groupdro_xrm": r.groupdro_xrm, "groupdro_true": result.groupdro_true,
            })
        })
        .collect();
    emit(&json!({
        "data": args.data, "seeds": args.seeds, "steps": args.steps,
        "twin_steps": args.twin_steps.unwrap_or(args.steps), "dim": dim,
        "whiten": args.whiten,
        "n": {"train": tr.data.len(), "val": va.data.len(), "test": te.data.len()},
        "recovery": summary.recovery,
        "table": summary.table,
        "runs": rows,
    }))
}

fn select(args: SelectArgs) -> Result<()> {
    if args.pca.is_empty() || args.steps.is_empty() {
        bail!("--pca and --steps need at least one value each");
    }
    let mut steps = args.steps.clone();
    steps.sort_unstable();
    steps.dedup();
    if steps[0] == 0 {
        bail!("--steps 0: expected step counts of at least 1");
    }
    let splits = read_splits(&args.data, &["train", "val"])?;
    let settings: Vec<(usize, bool)> = args
        .pca
        .iter()
        .flat_map(|&p| {
            let whitened = p > 0 && p < splits[0].x.cols;
            std::iter::once((p, false)).chain(whitened.then_some((p, true)))
        })
        .collect();
    let bar = progress(settings.len(), "twin runs");
    let mut rows = Vec::new();
    let mut found = Vec::new();
    for &(components, whiten) in &settings {
        let projected = project(&splits, components, whiten)?;
        let (tr, va) = (attributed(&projected[0]), attributed(&projected[1]));
        let opts = XrmOptions {
            steps: *steps.last().unwrap_or(&3000),
            seed: args.seed,
            ..XrmOptions::default()
        };
        let at = discover_environments_at(&tr.data, &va.data, &opts, &steps)?;
        for (env, &s) in at.into_iter().zip(&steps) {
            rows.push(json!({
                "pca": components, "whiten": whiten, "steps": s, "dim": projected[0].x.cols,
                "flip_rate": env.flip_rate, "degenerate": env.degenerate,
                "score": selection_score(&env),
                "inferred_minority_train": env.train.iter().sum::<usize>(),
            }));
            found.push(env);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let best = select_by_flip_rate(&found).context("no candidate settings")?;
    emit(&json!({
        "data": args.data, "seed": args.seed,
        "rule": "the largest final flip rate at one seed; a degenerate run (a class entirely in one environment) counts 0; the first on ties (the reference's phase-1 selection, utils.find_best_hparams_comb); no group labels",
        "selected": {
            "pca": rows[best]["pca"], "whiten": rows[best]["whiten"], "steps": rows[best]["steps"],
            "flip_rate": rows[best]["flip_rate"],
        },
        "candidates": rows,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_of_one_species_stay_on_one_side_of_the_split() {
        for variant in [Variant::Birds, Variant::Animals] {
            let (water, land) = species(variant);
            for stamps in [water, land] {
                let (fit, test) = split_by_species(stamps.clone());
                assert_eq!(fit.len() + test.len(), stamps.len());
                assert!(!test.is_empty() && fit.len() > test.len());
                for (a, b) in SAME_SPECIES
                    .iter()
                    .flat_map(|x| SAME_SPECIES.iter().map(move |y| (x, y)))
                {
                    if a.1 == b.1 && stamps.iter().any(|s| s == a.0) {
                        assert_eq!(
                            test.iter().any(|s| s == a.0),
                            test.iter().any(|s| s == b.0),
                            "{} and {}",
                            a.0,
                            b.0
                        );
                    }
                }
            }
        }
    }
}
