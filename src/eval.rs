//! `NasEval`, the library's front door: HiveNAS's evaluation strategy (evaluate, full
//! training, momentum training) on naseval's engine.
//!
//! A `NasEval` loads and prepares its dataset once and keeps one device, whose pipelines
//! and pooled buffers every candidate reuses.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::Error;
use crate::arch::{Arch, ArchConfig, Plan};
use crate::checkpoint::{self, ModelCheckpoint};
use crate::config::EvalConfig;
use crate::data::{self, AugmentConfig, Augmenter, LoadOptions, Prepared};
use crate::gpu::{DeviceOptions, Gpu, Profile};
use crate::graph::{GraphError, NamedArray, Network, OptimizerConfig};
use crate::train::{self, Event, FitSettings, LrSchedule, TrainState};

/// What an evaluation returns (HiveNAS's result dictionary, plus a few fields of ours).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvalResult {
    /// Test accuracy of the trained network: the fitness.
    pub fitness: f64,
    /// Epochs run in this call (fewer than planned when ACT or divergence stopped it).
    pub epochs: usize,
    /// The checkpoint's file name, `<sha1>.ckpt` (or `<sha1>.full.ckpt`).
    pub filename: String,
    /// Trainable parameters.
    pub params: usize,
    /// Epoch (1-based) -> [validation accuracy, momentum]; empty unless momentum epochs are
    /// configured.
    pub momentum: BTreeMap<usize, [f64; 2]>,
    /// Test loss (cross-entropy plus L2 terms).
    pub test_loss: f64,
    /// Where the training history was written.
    pub history: Option<PathBuf>,
    /// A non-finite loss stopped training.
    pub diverged: bool,
    /// Wall-clock seconds of the call.
    pub seconds: f64,
}

/// Where full training starts from.
#[derive(Clone, Debug)]
pub enum TrainFrom {
    /// Continue a checkpoint.
    Checkpoint(PathBuf),
    /// Train a fresh network.
    Arch(Arch),
}

/// The results folder's log of finished evaluations, one JSON object a line.
pub const EVALUATIONS: &str = "evaluations.jsonl";

/// How far a run goes and what it is called.
struct RunSpec {
    epochs: usize,
    act: bool,
    full: bool,
    record_momentum: bool,
    /// Where the checkpoint goes, when not `<results>/weights/<sha1>[.full].ckpt`.
    save_to: Option<PathBuf>,
}

/// HiveNAS's NASEval on a GPU: one dataset, one device, many candidates.
pub struct NasEval {
    config: EvalConfig,
    gpu: Gpu,
    data: Prepared,
    augmenter: Arc<Augmenter>,
    arch_config: ArchConfig,
    observer: Box<dyn FnMut(Event<'_>)>,
    last_arch: Option<Arch>,
    /// When `new` began, for the time-to-first-step log line.
    created: Instant,
    first_step_logged: bool,
    /// `Some` while profiling: what every run so far measured.
    profile: Option<Profile>,
}

impl NasEval {
    /// Loads and prepares the dataset and acquires the device.
    pub fn new(config: EvalConfig, device: &DeviceOptions) -> Result<Self, Error> {
        let created = Instant::now();
        config.validate()?;
        let dataset_name = (!config.dataset.is_empty()).then_some(config.dataset.as_str());
        let opts = LoadOptions {
            subset: config.subset,
            test_subset: config.test_subset,
            resize: config
                .resize
                .as_deref()
                .map(data::parse_resize)
                .transpose()?,
        };
        let ds = data::load(dataset_name, config.data_dir.as_deref(), &opts)?;
        let data = Prepared::new(ds, config.validation_split)?;
        let aug = if config.augment {
            config.augmentation.clone()
        } else {
            AugmentConfig::none()
        };
        let augmenter = data.augmenter(&aug)?;
        let data_seconds = created.elapsed().as_secs_f64();
        let gpu = Gpu::new(device)?;
        log::info!(
            "start-up: dataset ready in {data_seconds:.2} s, device in {:.2} s more",
            created.elapsed().as_secs_f64() - data_seconds
        );
        log::info!(
            "dataset {} ({} train, {} validation, {} test, {:?}), device {}",
            data.source,
            data.train.len(),
            data.validation.len(),
            data.test.len(),
            data.shape,
            gpu.adapter.name
        );
        Ok(Self {
            arch_config: config.arch_config(),
            config,
            gpu,
            data,
            augmenter,
            observer: Box::new(|_| {}),
            last_arch: None,
            created,
            first_step_logged: false,
            profile: None,
        })
    }

    /// Turns profiling of the following runs on or off: each network times its kernels
    /// on the GPU and its steps on the host (see [`Network::enable_profiling`]), and
    /// [`NasEval::profile`] sums what all runs measured. Turning it on clears the sum.
    pub fn set_profiling(&mut self, on: bool) {
        self.profile = on.then(Profile::default);
    }

    /// What profiling measured over the runs since [`NasEval::set_profiling`]; `None` when
    /// profiling is off.
    pub fn profile(&self) -> Option<&Profile> {
        self.profile.as_ref()
    }

    /// Receives progress events (the CLI draws its bars from them).
    pub fn set_observer(&mut self, observer: impl FnMut(Event<'_>) + 'static) {
        self.observer = Box::new(observer);
    }

    /// The settings in force.
    pub fn config(&self) -> &EvalConfig {
        &self.config
    }

    /// The device in use.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// The candidate of the last run (from a checkpoint, its stored op list).
    pub fn last_arch(&self) -> Option<&Arch> {
        self.last_arch.as_ref()
    }

    /// The prepared dataset.
    pub fn data(&self) -> &Prepared {
        &self.data
    }

    /// The checkpoint file name of `arch`: `<sha1>.ckpt`.
    pub fn weights_filename(&self, arch: &Arch) -> String {
        checkpoint::file_name_for_sha1(&arch.sha1(), false)
    }

    /// The plan of `arch` on this dataset, checked against the device's limits.
    pub fn plan(&self, arch: &Arch) -> Result<Plan, Error> {
        let plan = Plan::new(arch, &self.arch_config, self.data.shape, self.data.classes)?;
        self.check_memory(&plan)?;
        Ok(plan)
    }

    /// Refuses a plan whose largest tensor exceeds a binding, or whose whole network would
    /// not fit in the memory the device has (where that is known).
    fn check_memory(&self, plan: &Plan) -> Result<(), Error> {
        let batch = self.config.batch_size;
        plan.check_memory(batch, self.gpu.max_binding_bytes())?;
        if let Some((budget, device)) = self.gpu.memory_budget() {
            plan.check_total_memory(batch, budget, &device)?;
        }
        Ok(())
    }

    /// Builds `arch` on the device with fresh, Keras-initialized weights.
    pub fn instantiate_network(&self, arch: &Arch) -> Result<Network, Error> {
        let plan = self.plan(arch)?;
        Ok(Network::new(
            &self.gpu,
            &plan,
            self.config.batch_size,
            self.config.seed,
            self.opt(),
        )?)
    }

    fn opt(&self) -> OptimizerConfig {
        OptimizerConfig {
            momentum: self.config.momentum as f32,
            nesterov: self.config.nesterov,
        }
    }

    /// Folder of checkpoints.
    pub fn weights_dir(&self) -> PathBuf {
        self.config.results.join("weights")
    }

    /// Folder of training histories.
    pub fn history_dir(&self) -> PathBuf {
        self.config.results.join("training_history")
    }

    /// Trains `arch` for `epochs` epochs (stopping early on ACT), tests it, saves its
    /// history and checkpoint, and returns HiveNAS's result. With `resume`, a checkpoint of
    /// an unfinished evaluation of the same candidate and settings is continued instead.
    pub fn evaluate(&mut self, arch: &Arch) -> Result<EvalResult, Error> {
        self.evaluate_with(arch, false)
    }

    /// [`NasEval::evaluate`], continuing an unfinished run's checkpoint when `resume` is set.
    pub fn evaluate_with(&mut self, arch: &Arch, resume: bool) -> Result<EvalResult, Error> {
        let started = Instant::now();
        let plan = self.plan(arch)?;
        let path = self.weights_dir().join(self.weights_filename(arch));
        // The checkpoint is judged before a network is built: a finished evaluation needs
        // none. A finished one (tested, so it stores test metrics) is never continued, even
        // when ACT stopped it before the planned epochs.
        let mut resume_from = None;
        if resume && path.exists() {
            let ck = ModelCheckpoint::load(&path)?;
            let same = ck.config == self.settings_json();
            let finished = ck.last_metrics.get("test_accuracy").is_some();
            if same && finished {
                if let Some(done) = self.existing_result(arch) {
                    log::warn!(
                        "{} is a finished evaluation with these settings; its stored result \
                         stands (evaluate without --resume to train it again)",
                        path.display()
                    );
                    return Ok(done);
                }
            }
            if same && !finished && (ck.epochs_trained as usize) < self.config.epochs {
                resume_from = Some(ck);
            } else {
                log::warn!(
                    "not resuming {}: it is finished or was trained with other settings; \
                     starting over (it will be overwritten)",
                    path.display()
                );
            }
        }
        let mut net = Network::new(
            &self.gpu,
            &plan,
            self.config.batch_size,
            self.config.seed,
            self.opt(),
        )?;
        let mut state = TrainState::default();
        if let Some(ck) = resume_from {
            state = restore(&mut net, &ck)?;
            log::info!(
                "resuming {} after epoch {}",
                path.display(),
                state.epochs_done
            );
        }
        let remaining = self.config.epochs.saturating_sub(state.epochs_done);
        let spec = RunSpec {
            epochs: remaining,
            act: true,
            full: false,
            record_momentum: self.config.momentum_epochs > 0,
            save_to: None,
        };
        let save = self.config.save_weights || self.config.momentum_epochs > 0;
        let result = self.run(
            arch,
            &mut net,
            state,
            spec,
            self.config.epochs,
            save,
            started,
        )?;
        self.log_result("evaluate", arch, &result, self.config.epochs)?;
        Ok(result)
    }

    /// The result of an earlier evaluation of `arch` with the same settings recorded in
    /// the results folder's `evaluations.jsonl`, if any: several runs can share a folder,
    /// and a restarted batch skips what is done.
    pub fn existing_result(&self, arch: &Arch) -> Option<EvalResult> {
        let text = std::fs::read_to_string(self.config.results.join(EVALUATIONS)).ok()?;
        let settings = self.key_settings();
        text.lines().rev().find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            let same = v.get("kind")? == "evaluate"
                && v.get("sha1")? == &serde_json::Value::from(arch.sha1())
                && v.get("settings")? == &settings;
            if same {
                serde_json::from_value(v.get("result")?.clone()).ok()
            } else {
                None
            }
        })
    }

    /// The settings that make two evaluations of one candidate comparable.
    fn key_settings(&self) -> serde_json::Value {
        let c = &self.config;
        serde_json::json!({
            "dataset": self.data.source,
            "subset": c.subset,
            "test_subset": c.test_subset,
            "epochs": c.epochs,
            "batch_size": c.batch_size,
            "seed": c.seed,
            "augment": c.augment,
            "initial_lr": c.initial_lr,
            "final_lr": c.final_lr,
            "act_beta": c.termination_threshold_factor,
            "momentum_epochs": c.momentum_epochs,
        })
    }

    /// Appends one line to `evaluations.jsonl` with a single write, so that runs sharing
    /// the folder never interleave within a line.
    ///
    /// `epochs` is what the call was asked to train (the config's `epochs` only for
    /// evaluations).
    fn log_result(
        &self,
        kind: &str,
        arch: &Arch,
        result: &EvalResult,
        epochs: usize,
    ) -> Result<(), Error> {
        let path = self.config.results.join(EVALUATIONS);
        let io = |e: std::io::Error| Error::Io {
            path: path.clone(),
            source: e,
        };
        let mut settings = self.key_settings();
        settings["epochs"] = epochs.into();
        let line = serde_json::json!({
            "kind": kind,
            "arch": arch.ops(),
            "sha1": arch.sha1(),
            "settings": settings,
            "result": result,
        });
        let mut text = serde_json::to_string(&line).map_err(|e| io(e.into()))?;
        text.push('\n');
        std::fs::create_dir_all(&self.config.results).map_err(io)?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        Ok(())
    }

    /// Continues training a checkpoint, or trains `arch` from scratch, for
    /// `full_train_epochs` epochs; tests it and saves it as `<sha1>.full.ckpt`.
    pub fn fully_train(&mut self, from: TrainFrom) -> Result<EvalResult, Error> {
        let started = Instant::now();
        let epochs = self.config.full_train_epochs;
        let (arch, mut net, state) = match from {
            TrainFrom::Arch(arch) => {
                let net = self.instantiate_network(&arch)?;
                (arch, net, TrainState::default())
            }
            TrainFrom::Checkpoint(path) => self.load_checkpoint(&path)?,
        };
        let horizon = state.epochs_done + epochs;
        let spec = RunSpec {
            epochs,
            act: false,
            full: true,
            record_momentum: false,
            save_to: None,
        };
        let result = self.run(&arch, &mut net, state, spec, horizon, true, started)?;
        self.log_result("full_train", &arch, &result, epochs)?;
        Ok(result)
    }

    /// Loads an evaluation's checkpoint, trains it `epochs` more epochs, tests it and
    /// overwrites the checkpoint.
    pub fn momentum_training(&mut self, path: &Path, epochs: usize) -> Result<EvalResult, Error> {
        let started = Instant::now();
        let (arch, mut net, state) = self.load_checkpoint(path)?;
        let horizon = state.epochs_done + epochs;
        let full = path.to_string_lossy().ends_with(".full.ckpt");
        // HiveNAS overwrites the file it was given, wherever it is.
        let spec = RunSpec {
            epochs,
            act: false,
            full,
            record_momentum: false,
            save_to: Some(path.to_path_buf()),
        };
        let result = self.run(&arch, &mut net, state, spec, horizon, true, started)?;
        self.log_result("momentum", &arch, &result, epochs)?;
        Ok(result)
    }

    fn load_checkpoint(&self, path: &Path) -> Result<(Arch, Network, TrainState), Error> {
        let ck = ModelCheckpoint::load(path)?;
        if ck.input_shape != self.data.shape || ck.classes != self.data.classes {
            return Err(Error::Mismatch(format!(
                "{} was trained on {:?} images with {} classes, but the dataset in use has \
                 {:?} and {}; pass the dataset it was trained on (--dataset/--data-dir)",
                path.display(),
                ck.input_shape,
                ck.classes,
                self.data.shape,
                self.data.classes
            )));
        }
        let arch = Arch::new(ck.ops.clone());
        let mut arch_config = self.arch_config.clone();
        arch_config.stems.input = ck.input_stem.clone();
        arch_config.stems.output = ck.output_stem.clone();
        let plan = Plan::new(&arch, &arch_config, self.data.shape, self.data.classes)?;
        self.check_memory(&plan)?;
        let mut net = Network::new(
            &self.gpu,
            &plan,
            self.config.batch_size,
            self.config.seed,
            self.opt(),
        )?;
        let state = restore(&mut net, &ck)?;
        Ok((arch, net, state))
    }

    /// The settings stored in checkpoints and compared on resume.
    fn settings_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).unwrap_or(serde_json::Value::Null)
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        arch: &Arch,
        net: &mut Network,
        mut state: TrainState,
        spec: RunSpec,
        horizon: usize,
        save: bool,
        started: Instant,
    ) -> Result<EvalResult, Error> {
        self.last_arch = Some(arch.clone());
        let cfg = &self.config;
        let settings = FitSettings {
            epochs: spec.epochs,
            batch_size: cfg.batch_size,
            seed: cfg.seed,
            schedule: LrSchedule {
                initial_lr: cfg.initial_lr,
                final_lr: cfg.final_lr,
                epochs: horizon,
                steps_per_epoch: (self.data.n_train_total / cfg.batch_size).max(1) as u64,
            },
            act: (spec.act && cfg.termination_threshold_factor > 0.0).then_some((
                cfg.termination_threshold_factor,
                cfg.termination_diminishing_factor,
            )),
            log_every: cfg.log_every,
        };
        let sha1 = arch.sha1();
        let filename = checkpoint::file_name_for_sha1(&sha1, spec.full);
        let ckpt_path = spec
            .save_to
            .clone()
            .unwrap_or_else(|| self.weights_dir().join(&filename));
        let history_name = if spec.full {
            format!("{sha1}.full.json")
        } else {
            format!("{sha1}.json")
        };
        let history_path = self.history_dir().join(history_name);
        let base = self.checkpoint_base(arch, &settings.schedule);
        if self.profile.is_some() {
            net.enable_profiling();
        }

        let mut on_epoch = |net: &Network, state: &TrainState| -> Result<(), Error> {
            write_json_atomic(&history_path, &state.history)?;
            if save {
                let ck = snapshot(&base, net, state)?;
                ck.save(&ckpt_path)?;
            }
            Ok(())
        };
        // Both folders now, so that an unwritable results folder fails before training
        // rather than losing a finished result.
        let mut dirs = vec![self.history_dir()];
        if save {
            dirs.extend(ckpt_path.parent().map(Path::to_path_buf));
        }
        for dir in dirs {
            std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir, source })?;
        }
        // The first progress event of this NasEval's life follows its first finished step
        // (of a fresh network; else the first log interval's last).
        let created = self.created;
        let logged = &mut self.first_step_logged;
        let observer = &mut self.observer;
        let mut observe = |e: Event<'_>| {
            if let (false, Event::Progress { step, .. }) = (*logged, &e) {
                *logged = true;
                log::info!(
                    "training step {step} finished {:.2} s after start-up began",
                    created.elapsed().as_secs_f64()
                );
            }
            observer(e)
        };
        let outcome = train::fit(
            net,
            &self.data,
            &self.augmenter,
            &settings,
            &mut state,
            &mut observe,
            &mut on_epoch,
        )?;

        let test = train::evaluate_batches(net, self.data.test_batches(self.config.batch_size))?;
        if let (Some(sum), Some(p)) = (&mut self.profile, net.take_profile()?) {
            sum.merge(&p);
        }
        let momentum = if spec.record_momentum {
            // Only evaluations record momentum, and their history starts at their first
            // epoch; a resumed one thus records the epochs of the interrupted process too.
            let accs: Vec<f64> = state.history.iter().map(|r| r.val_accuracy).collect();
            train::momentum_record(&accs)
                .into_iter()
                .enumerate()
                .map(|(e, (a, m))| (e + 1, [a, m]))
                .collect()
        } else {
            BTreeMap::new()
        };
        if state.history.is_empty() {
            // Nothing was trained (0 epochs): still leave a history and checkpoint behind.
            on_epoch(net, &state)?;
        }
        if save {
            // Store the test metrics in the checkpoint as its last metrics.
            let mut ck = snapshot(&base, net, &state)?;
            ck.last_metrics = serde_json::json!({
                "test_accuracy": test.accuracy,
                "test_loss": test.loss_mean,
                "history": state.history.last(),
            });
            ck.momentum_record = serde_json::to_value(&momentum).unwrap_or_default();
            ck.save(&ckpt_path)?;
        }
        Ok(EvalResult {
            fitness: test.accuracy,
            epochs: outcome.epochs_run,
            filename,
            params: net.plan().trainable_params(),
            momentum,
            test_loss: test.loss_mean,
            history: Some(history_path),
            diverged: outcome.diverged,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// The parts of a checkpoint that do not change during a run.
    fn checkpoint_base(&self, arch: &Arch, schedule: &LrSchedule) -> ModelCheckpoint {
        let space: BTreeMap<&str, serde_json::Value> = arch
            .ops()
            .iter()
            .chain(&self.arch_config.stems.input)
            .chain(&self.arch_config.stems.output)
            .filter_map(|op| {
                let spec = self.arch_config.reference_space.get(op)?;
                Some((op.as_str(), serde_json::to_value(spec).ok()?))
            })
            .collect();
        ModelCheckpoint {
            ops: arch.ops().to_vec(),
            input_stem: self.arch_config.stems.input.clone(),
            output_stem: self.arch_config.stems.output.clone(),
            reference_space: serde_json::to_value(space).unwrap_or_default(),
            dataset: self.data.source.clone(),
            input_shape: self.data.shape,
            classes: self.data.classes,
            config: self.settings_json(),
            schedule: checkpoint::LrSchedule {
                initial_lr: schedule.initial_lr,
                final_lr: schedule.final_lr,
                epochs: schedule.epochs as u64,
                steps_per_epoch: schedule.steps_per_epoch,
            },
            ..Default::default()
        }
    }
}

/// A checkpoint of `net` and `state` on top of `base`.
fn snapshot(
    base: &ModelCheckpoint,
    net: &Network,
    state: &TrainState,
) -> Result<ModelCheckpoint, Error> {
    let tensors = net
        .export_state()?
        .into_iter()
        .map(|a| checkpoint::NamedArray {
            path: a.path,
            shape: a.shape,
            data: a.data,
        })
        .collect();
    Ok(ModelCheckpoint {
        tensors,
        optimizer_step: state.step,
        rng_state: vec![state.epochs_done as u64],
        history: serde_json::to_value(&state.history).unwrap_or_default(),
        epochs_trained: state.epochs_done as u64,
        last_metrics: serde_json::to_value(state.history.last()).unwrap_or_default(),
        ..base.clone()
    })
}

/// Loads a checkpoint's tensors into `net` and returns its training state.
fn restore(net: &mut Network, ck: &ModelCheckpoint) -> Result<TrainState, Error> {
    let arrays: Vec<NamedArray> = ck
        .tensors
        .iter()
        .map(|a| NamedArray {
            path: a.path.clone(),
            shape: a.shape.clone(),
            data: a.data.clone(),
        })
        .collect();
    net.import_state(&arrays).map_err(|e| match e {
        GraphError::UnexpectedState { .. }
        | GraphError::StateShape { .. }
        | GraphError::MissingState { .. } => Error::Mismatch(format!(
            "the checkpoint's arrays do not fit the network of its own op list ({e}); it was \
             altered or written by something else"
        )),
        other => other.into(),
    })?;
    let history = serde_json::from_value(ck.history.clone()).map_err(|e| {
        Error::Mismatch(format!(
            "the checkpoint's training history is unreadable: {e}"
        ))
    })?;
    Ok(TrainState {
        step: ck.optimizer_step,
        epochs_done: ck.epochs_trained as usize,
        history,
    })
}

/// Writes `value` as pretty JSON to `path` atomically (temporary file, sync, rename).
pub fn write_json_atomic(path: &Path, value: &impl serde::Serialize) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let text = serde_json::to_vec_pretty(value).map_err(|e| io(e.into()))?;
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(&text).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}
