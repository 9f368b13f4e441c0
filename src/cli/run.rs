//! `naseval evaluate`, `naseval full-train` and `naseval momentum`: training runs with a
//! Keras-like progress display on stderr and the result on stdout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use naseval::arch::Arch;
use naseval::config::EvalConfig;
use naseval::eval::{EvalResult, NasEval, TrainFrom};
use naseval::gpu::DeviceOptions;
use naseval::train::Event;

use super::Failure;

/// Settings shared by every training subcommand; each overrides the config file.
#[derive(clap::Args)]
pub struct RunFlags {
    /// TOML config (HiveNAS's settings, reference space, stems); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// mnist (built in), fashion_mnist or cifar10. Leave it out and give only --data-dir
    /// for an image folder (DIR/train/<class>/*, DIR/test/<class>/*).
    #[arg(long)]
    dataset: Option<String>,
    /// Folder holding the dataset's files.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Training batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Train on the first N training images only.
    #[arg(long, value_name = "N")]
    subset: Option<usize>,
    /// Test on the first N test images only.
    #[arg(long, value_name = "N")]
    test_subset: Option<usize>,
    /// Resize every image of an image folder to HxW (e.g. 32x32).
    #[arg(long, value_name = "HxW")]
    resize: Option<String>,
    /// Seed of initialization, data order, augmentation and dropout.
    #[arg(long)]
    seed: Option<u64>,
    /// Train on unaugmented batches.
    #[arg(long)]
    no_augment: bool,
    /// ACT early-termination factor beta; 0 disables ACT.
    #[arg(long, value_name = "BETA")]
    act_beta: Option<f64>,
    /// Results folder (weights/, training_history/, evaluations.jsonl).
    #[arg(long, value_name = "DIR")]
    results: Option<PathBuf>,
    /// Print only the result, as one JSON object per candidate, on stdout.
    #[arg(long)]
    json: bool,
    /// No progress display.
    #[arg(long)]
    quiet: bool,
    /// Time every kernel launch on the GPU (timestamp queries) and the training steps on
    /// the host; print time per kernel family on stderr at the end.
    #[arg(long)]
    profile: bool,
}

impl RunFlags {
    /// The config file (or defaults) with these flags on top.
    fn config(&self) -> Result<EvalConfig, Failure> {
        let mut c = match &self.config {
            Some(p) => EvalConfig::from_toml_file(p).map_err(Failure::bad_input)?,
            None => EvalConfig::default(),
        };
        if let Some(d) = &self.dataset {
            c.dataset = d.clone();
        }
        if let Some(d) = &self.data_dir {
            c.data_dir = Some(d.clone());
            if self.dataset.is_none() && self.config.is_none() {
                // A folder alone is an image-folder dataset, not the built-in MNIST.
                c.dataset.clear();
            }
        }
        if let Some(v) = self.batch_size {
            c.batch_size = v;
        }
        if self.subset.is_some() {
            c.subset = self.subset;
        }
        if self.test_subset.is_some() {
            c.test_subset = self.test_subset;
        }
        if self.resize.is_some() {
            c.resize = self.resize.clone();
        }
        if let Some(v) = self.seed {
            c.seed = v;
        }
        if self.no_augment {
            c.augment = false;
        }
        if let Some(v) = self.act_beta {
            c.termination_threshold_factor = v;
        }
        if let Some(v) = &self.results {
            c.results = v.clone();
        }
        Ok(c)
    }
}

/// Flags of `naseval evaluate`.
#[derive(clap::Args)]
pub struct EvaluateArgs {
    /// The candidate: `op|op|...` or a JSON list of op names.
    #[arg(required_unless_present = "arch_file", conflicts_with = "arch_file")]
    arch: Option<String>,
    /// One candidate a line; each is evaluated in turn, skipping those whose result with
    /// the same settings is already in the results folder.
    #[arg(long, value_name = "FILE")]
    arch_file: Option<PathBuf>,
    /// Epochs to train.
    #[arg(long)]
    epochs: Option<usize>,
    /// Epochs of momentum training (records the momentum of validation accuracy).
    #[arg(long, value_name = "N")]
    momentum_epochs: Option<usize>,
    /// Do not save the checkpoint.
    #[arg(long)]
    no_save: bool,
    /// Continue an unfinished evaluation of the same candidate and settings from its
    /// checkpoint (written after every epoch).
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    run: RunFlags,
}

/// Flags of `naseval full-train`.
#[derive(clap::Args)]
pub struct FullTrainArgs {
    /// The candidate to train from scratch (instead of --checkpoint).
    #[arg(required_unless_present = "checkpoint", conflicts_with = "checkpoint")]
    arch: Option<String>,
    /// A checkpoint to continue.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Epochs to train (default: full_train_epochs, 50).
    #[arg(long)]
    epochs: Option<usize>,
    #[command(flatten)]
    run: RunFlags,
}

/// Flags of `naseval momentum`.
#[derive(clap::Args)]
pub struct MomentumArgs {
    /// The checkpoint to continue; it is overwritten.
    #[arg(long, value_name = "FILE")]
    checkpoint: PathBuf,
    /// Epochs to train.
    #[arg(long)]
    epochs: usize,
    #[command(flatten)]
    run: RunFlags,
}

fn parse_arch(text: &str) -> Result<Arch, Failure> {
    Arch::parse(text).map_err(Failure::bad_input)
}

fn start(config: EvalConfig, opts: &DeviceOptions, flags: &RunFlags) -> Result<NasEval, Failure> {
    let mut ev = NasEval::new(config, opts).map_err(failure)?;
    if !flags.quiet {
        ev.set_observer(Progress::default().into_observer());
    }
    ev.set_profiling(flags.profile);
    Ok(ev)
}

/// The profile of the runs so far on stderr, when `--profile` asked for it.
fn print_profile(ev: &NasEval) {
    if let Some(p) = ev.profile() {
        eprint!("{p}");
    }
}

/// Maps a library error to its exit code.
pub fn failure(e: naseval::Error) -> Failure {
    if e.is_bad_input() {
        Failure::bad_input(e)
    } else {
        Failure::from(e)
    }
}

/// Prints a result; `checkpoint` is where its checkpoint would be, shown in full when it
/// exists (the JSON keeps HiveNAS's bare file name).
fn print_result(arch: &Arch, r: &EvalResult, json: bool, checkpoint: &Path) -> Result<(), Failure> {
    if json {
        println!("{}", serde_json::to_string(r)?);
    } else {
        println!("candidate: {arch}");
        println!("  fitness (test accuracy): {:.4}", r.fitness);
        println!("  test loss:               {:.4}", r.test_loss);
        println!("  epochs:                  {}", r.epochs);
        println!("  trainable params:        {}", r.params);
        if checkpoint.is_file() {
            println!("  checkpoint:              {}", checkpoint.display());
        } else {
            println!("  checkpoint:              {} (not saved)", r.filename);
        }
        if let Some(h) = &r.history {
            println!("  history:                 {}", h.display());
        }
        if !r.momentum.is_empty() {
            let m: Vec<String> = r
                .momentum
                .iter()
                .map(|(e, [a, m])| format!("{e}: [{a:.4}, {m:.4}]"))
                .collect();
            println!("  momentum:                {{{}}}", m.join(", "));
        }
        if r.diverged {
            println!("  diverged:                yes (a non-finite loss stopped training)");
        }
        println!("  seconds:                 {:.1}", r.seconds);
    }
    Ok(())
}

pub fn evaluate(opts: &DeviceOptions, args: &EvaluateArgs) -> Result<(), Failure> {
    let mut config = args.run.config()?;
    if let Some(e) = args.epochs {
        config.epochs = e;
    }
    if let Some(m) = args.momentum_epochs {
        config.momentum_epochs = m;
    }
    if args.no_save {
        config.save_weights = false;
    }
    // Each candidate with where it came from, for error messages: `FILE:LINE` or itself.
    let mut candidates: Vec<(String, Arch)> = match (&args.arch, &args.arch_file) {
        (Some(a), _) => {
            let arch = parse_arch(a)?;
            vec![(arch.to_string(), arch)]
        }
        (None, Some(f)) => naseval::arch::read_arch_file(f)
            .map_err(Failure::bad_input)?
            .into_iter()
            .map(|(line, a)| (format!("{}:{line} ({a})", f.display()), a))
            .collect(),
        (None, None) => unreachable!("clap requires ARCH or --arch-file"),
    };
    let mut ev = start(config, opts, &args.run)?;
    let mut bad = 0;
    let batch = candidates.len() > 1;
    // Impossible candidates of a batch are reported before anything trains, not hours in.
    if batch {
        candidates.retain(|(origin, arch)| match ev.plan(arch) {
            Err(e) if e.is_bad_input() => {
                eprintln!("error: {origin}: {e}");
                bad += 1;
                false
            }
            _ => true,
        });
    }
    for (origin, arch) in &candidates {
        if args.arch_file.is_some() {
            if let Some(done) = ev.existing_result(arch) {
                if !args.run.quiet {
                    eprintln!("skipping {arch}: already evaluated with these settings");
                }
                let at = ev.weights_dir().join(&done.filename);
                print_result(arch, &done, args.run.json, &at)?;
                continue;
            }
        }
        if !args.run.quiet && batch {
            eprintln!("evaluating {arch}");
        }
        match ev.evaluate_with(arch, args.resume) {
            Ok(r) => {
                // With --no-save, a file of that name is an older run's, not this one's.
                let at = if args.no_save {
                    PathBuf::new()
                } else {
                    ev.weights_dir().join(&r.filename)
                };
                print_result(arch, &r, args.run.json, &at)?
            }
            // In a batch, a bad candidate is reported and the rest go on.
            Err(e) if batch && e.is_bad_input() => {
                eprintln!("error: {origin}: {e}");
                bad += 1;
            }
            Err(e) => return Err(failure(e)),
        }
    }
    print_profile(&ev);
    if bad > 0 {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "{bad} candidate(s) could not be evaluated"
        )));
    }
    Ok(())
}

pub fn full_train(opts: &DeviceOptions, args: &FullTrainArgs) -> Result<(), Failure> {
    let mut config = args.run.config()?;
    if let Some(e) = args.epochs {
        config.full_train_epochs = e;
    }
    let from = match (&args.arch, &args.checkpoint) {
        (Some(a), _) => TrainFrom::Arch(parse_arch(a)?),
        (None, Some(p)) => TrainFrom::Checkpoint(p.clone()),
        (None, None) => unreachable!("clap requires ARCH or --checkpoint"),
    };
    let mut ev = start(config, opts, &args.run)?;
    let r = ev.fully_train(from).map_err(failure)?;
    print_profile(&ev);
    let arch = ev
        .last_arch()
        .cloned()
        .unwrap_or_else(|| Arch::new(Vec::new()));
    let at = ev.weights_dir().join(&r.filename);
    print_result(&arch, &r, args.run.json, &at)
}

pub fn momentum(opts: &DeviceOptions, args: &MomentumArgs) -> Result<(), Failure> {
    let config = args.run.config()?;
    if args.epochs == 0 {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "--epochs 0: train at least 1 epoch"
        )));
    }
    let mut ev = start(config, opts, &args.run)?;
    let r = ev
        .momentum_training(&args.checkpoint, args.epochs)
        .map_err(failure)?;
    print_profile(&ev);
    let arch = ev
        .last_arch()
        .cloned()
        .unwrap_or_else(|| Arch::new(Vec::new()));
    print_result(&arch, &r, args.run.json, &args.checkpoint)
}

/// Draws a bar per epoch like Keras's `fit(verbose=1)`.
#[derive(Default)]
struct Progress {
    bar: Option<ProgressBar>,
    epoch: usize,
    epochs: usize,
}

impl Progress {
    fn into_observer(mut self) -> impl FnMut(Event<'_>) + 'static {
        move |e| self.on(e)
    }

    fn on(&mut self, e: Event<'_>) {
        match e {
            Event::EpochStart {
                epoch,
                epochs,
                steps,
            } => {
                self.epoch = epoch;
                self.epochs = epochs;
                let bar = ProgressBar::new(steps as u64);
                let style = ProgressStyle::with_template(
                    "Epoch {prefix} [{bar:30}] {pos}/{len} ETA {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(format!("{epoch}/{epochs}"));
                bar.enable_steady_tick(Duration::from_millis(500));
                self.bar = Some(bar);
            }
            Event::Progress {
                step,
                loss,
                accuracy,
                images_per_second,
                ..
            } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(step as u64);
                    bar.set_message(format!(
                        "loss: {loss:.4} - accuracy: {accuracy:.4} - {images_per_second:.0} img/s"
                    ));
                }
            }
            Event::EpochEnd(r) => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                eprintln!(
                    "Epoch {}/{} - {:.1}s - loss: {:.4} - accuracy: {:.4} - val_loss: {:.4} - \
                     val_accuracy: {:.4} - lr: {:.5} - {:.0} img/s",
                    self.epoch,
                    self.epochs,
                    r.seconds,
                    r.loss,
                    r.accuracy,
                    r.val_loss,
                    r.val_accuracy,
                    r.lr,
                    r.images_per_second
                );
            }
            Event::Stopped { reason } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                eprintln!("stopped: {reason}");
            }
        }
    }
}
