//! `naseval augment-preview`: a PNG grid of augmented training samples, un-standardized,
//! so a user sees what the network is trained on.

use std::path::PathBuf;

use anyhow::Context;
use naseval::data::{self, AugmentConfig, LoadOptions, Prepared};

use super::Failure;

/// Dataset flags, shared by the commands that read a dataset.
#[derive(clap::Args, Clone, Debug)]
pub struct DataFlags {
    /// Dataset: mnist, fashion_mnist or cifar10 (or MNIST, FASHION_MNIST, CIFAR10). Without
    /// it and without --data-dir: the MNIST copy shipped with naseval; with --data-dir
    /// alone: a folder DIR/train/<class>/*, DIR/test/<class>/*.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Directory holding the dataset's files.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Resize the images of an image folder to HxW (e.g. 32x32).
    #[arg(long, value_name = "HxW")]
    pub resize: Option<String>,
    /// Keep only the first N test images.
    #[arg(long, value_name = "N")]
    pub test_subset: Option<usize>,
}

impl DataFlags {
    /// Reads the dataset, keeping the first `subset` training images when given.
    pub fn load(&self, subset: Option<usize>) -> Result<data::Dataset, Failure> {
        let resize = self
            .resize
            .as_deref()
            .map(data::parse_resize)
            .transpose()
            .map_err(Failure::bad_input)?;
        let opts = LoadOptions {
            subset,
            test_subset: self.test_subset,
            resize,
        };
        data::load(self.dataset.as_deref(), self.data_dir.as_deref(), &opts)
            .map_err(Failure::bad_input)
    }
}

/// Flags of `naseval augment-preview`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    data: DataFlags,
    /// Where to write the PNG.
    #[arg(long)]
    out: PathBuf,
    /// Number of samples in the grid.
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Seed of the draws (the epoch is 0).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Training images read (for the statistics and the samples); 0 reads them all.
    #[arg(long, default_value_t = 2000)]
    subset: usize,
    /// A TOML file of augmentation settings (the keys of `AugmentConfig`, at the top or in
    /// the [augmentation] table of a whole config); missing keys keep HiveNAS's defaults.
    #[arg(long, value_name = "FILE")]
    augment: Option<PathBuf>,
    /// Pixels per image pixel in the grid (default: enough for tiles of about 96 pixels).
    #[arg(long)]
    scale: Option<u32>,
}

/// Writes the grid and prints one line saying what it holds.
pub fn run(args: &Args) -> Result<(), Failure> {
    if args.n == 0 || args.n > 4096 {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "--n {}: ask for between 1 and 4096 samples",
            args.n
        )));
    }
    if matches!(args.scale, Some(s) if s == 0 || s > 32) {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "--scale {}: use 1 to 32 pixels per image pixel",
            args.scale.unwrap_or(0)
        )));
    }
    let png = args
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !png {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "--out {}: the grid is written as PNG; give a file name ending in .png",
            args.out.display()
        )));
    }
    let config = match &args.augment {
        None => AugmentConfig::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))
                .map_err(Failure::bad_input)?;
            // Either the settings themselves or a whole config with an [augmentation] table.
            let table: toml::Table = toml::from_str(&text)
                .with_context(|| format!("{}: not TOML", path.display()))
                .map_err(Failure::bad_input)?;
            let settings = match table.get("augmentation") {
                Some(toml::Value::Table(t)) => t.clone(),
                _ => table,
            };
            settings
                .try_into()
                .with_context(|| format!("{}: invalid augmentation settings", path.display()))
                .map_err(Failure::bad_input)?
        }
    };
    let subset = (args.subset > 0).then_some(args.subset);
    let ds = args.data.load(subset)?;
    let prepared = Prepared::new(ds, 0.2).map_err(Failure::bad_input)?;
    let augmenter = prepared.augmenter(&config).map_err(Failure::bad_input)?;

    let [h, w, c] = prepared.shape;
    // No more samples than the training part holds, so nothing is sized past the data.
    let wanted = args.n.min(prepared.train.len().max(1));
    let mut images = Vec::with_capacity(wanted * h * w * c);
    for batch in prepared.train_batches(&augmenter, wanted, 0, args.seed) {
        images.extend_from_slice(&batch.images);
        if images.len() >= args.n * h * w * c {
            break;
        }
    }
    images.truncate(args.n * h * w * c);
    let n = images.len() / (h * w * c);
    prepared.standardizer.unapply(&mut images);

    // Tiles of about 96 pixels, a 2-pixel grey gap between them.
    let scale = args.scale.unwrap_or((96 / h.max(w)).max(1) as u32) as usize;
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let gap = 2;
    let (tile_h, tile_w) = (h * scale, w * scale);
    let gw = cols * (tile_w + gap) + gap;
    let gh = rows * (tile_h + gap) + gap;
    let mut grid = image::RgbImage::from_pixel(gw as u32, gh as u32, image::Rgb([128, 128, 128]));
    for i in 0..n {
        let img = &images[i * h * w * c..(i + 1) * h * w * c];
        let (x0, y0) = (
            gap + (i % cols) * (tile_w + gap),
            gap + (i / cols) * (tile_h + gap),
        );
        for y in 0..tile_h {
            for x in 0..tile_w {
                let p = &img[((y / scale) * w + x / scale) * c..][..c];
                let v = |k: usize| p[k.min(c - 1)].round().clamp(0.0, 255.0) as u8;
                grid.put_pixel(
                    (x0 + x) as u32,
                    (y0 + y) as u32,
                    image::Rgb([v(0), v(1), v(2)]),
                );
            }
        }
    }
    grid.save_with_format(&args.out, image::ImageFormat::Png)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "wrote {}: {n} augmented training samples of {} ({h}x{w}x{c}, {} classes), {cols}x{rows} \
         grid, seed {}",
        args.out.display(),
        prepared.source,
        prepared.classes,
        args.seed
    );
    Ok(())
}
