//! The epoch loop: train on shuffled, augmented batches, validate after every epoch, stop
//! early on ACT or a non-finite loss, and keep the history.

use std::sync::Arc;
use std::time::Instant;

use crate::data::{Augmenter, Prepared};
use crate::graph::{GraphError, Metrics, Network};
use crate::train::{LrSchedule, act_threshold};

/// One finished epoch, as the history file stores it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number over the network's whole life (continued training goes on
    /// counting).
    pub epoch: usize,
    /// Mean training loss (cross-entropy plus L2 terms) over the epoch's samples.
    pub loss: f64,
    /// Training accuracy over the epoch's (augmented) samples.
    pub accuracy: f64,
    /// Loss on the unaugmented validation part.
    pub val_loss: f64,
    /// Accuracy on the unaugmented validation part.
    pub val_accuracy: f64,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Wall-clock seconds of training and validation.
    pub seconds: f64,
    /// Training images per second.
    pub images_per_second: f64,
}

/// Training progress that outlives a run: the optimizer's step counter, the epochs behind
/// the network and their records. Checkpoints carry it; data order and augmentation are
/// derived from (seed, epoch), so nothing else is needed to resume exactly.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainState {
    /// The optimizer's step counter (it drives the learning-rate schedule and dropout).
    pub step: u64,
    /// Epochs trained so far.
    pub epochs_done: usize,
    /// One record per epoch trained.
    pub history: Vec<EpochRecord>,
}

/// What one call of [`fit`] does.
#[derive(Clone, Debug)]
pub struct FitSettings {
    /// Epochs to train in this call (fewer if ACT or divergence stops it).
    pub epochs: usize,
    /// Training batch size; validation uses half of it, as HiveNAS does.
    pub batch_size: usize,
    /// Run seed: data order, augmentation and dropout derive from it.
    pub seed: u64,
    /// The learning-rate schedule over the optimizer's step counter.
    pub schedule: LrSchedule,
    /// ACT factor beta (0 disables early termination) and diminishing factor zeta.
    pub act: Option<(f64, f64)>,
    /// Read the metrics back every this many steps (progress display, divergence check).
    pub log_every: usize,
}

/// Progress notifications for a front end; the library itself prints nothing.
#[derive(Clone, Debug)]
pub enum Event<'a> {
    /// An epoch begins: its 1-based number in this run, the run's epochs, and its steps.
    EpochStart {
        /// 1-based epoch of this run.
        epoch: usize,
        /// Epochs planned for this run.
        epochs: usize,
        /// Steps in the epoch.
        steps: usize,
    },
    /// Metrics were read back after `step` of `steps` steps of the current epoch.
    Progress {
        /// Steps done in this epoch.
        step: usize,
        /// Steps in this epoch.
        steps: usize,
        /// Running mean loss over the epoch.
        loss: f64,
        /// Running accuracy over the epoch.
        accuracy: f64,
        /// Training images per second so far in the epoch.
        images_per_second: f64,
    },
    /// An epoch finished and was validated.
    EpochEnd(&'a EpochRecord),
    /// Training stopped before the planned epochs.
    Stopped {
        /// Why, in words.
        reason: String,
    },
}

/// How a call of [`fit`] ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FitOutcome {
    /// Epochs run in this call.
    pub epochs_run: usize,
    /// A non-finite loss stopped training.
    pub diverged: bool,
    /// ACT stopped training.
    pub stopped_early: bool,
}

/// Running sums of metrics read back during an epoch.
#[derive(Default)]
struct Running {
    loss_sum: f64,
    correct: f64,
    count: u64,
}

impl Running {
    fn add(&mut self, m: &Metrics) {
        self.loss_sum += m.loss_mean * m.count as f64;
        self.correct += m.accuracy * m.count as f64;
        self.count += m.count;
    }
    fn loss(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.loss_sum / self.count as f64
        }
    }
    fn accuracy(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.correct / self.count as f64
        }
    }
}

/// Loss and accuracy of `net` in inference mode over a split's batches.
pub fn evaluate_batches(
    net: &mut Network,
    batches: impl Iterator<Item = crate::data::Batch>,
) -> Result<Metrics, GraphError> {
    net.take_metrics()?; // Start from zero whatever came before.
    for b in batches {
        net.eval_step(&b.images, &b.labels, b.n)?;
    }
    net.take_metrics()
}

/// Trains `net` for `settings.epochs` epochs from `state`, validating after each. Calls
/// `on_epoch` after every epoch (the caller saves a checkpoint there, so a crash loses at
/// most one epoch) and `observe` with progress.
pub fn fit(
    net: &mut Network,
    data: &Prepared,
    augmenter: &Arc<Augmenter>,
    settings: &FitSettings,
    state: &mut TrainState,
    observe: &mut dyn FnMut(Event<'_>),
    on_epoch: &mut dyn FnMut(&Network, &TrainState) -> Result<(), crate::Error>,
) -> Result<FitOutcome, crate::Error> {
    let mut outcome = FitOutcome::default();
    let steps = data.train.len().div_ceil(settings.batch_size);
    let log_every = settings.log_every.max(1);
    for e in 1..=settings.epochs {
        observe(Event::EpochStart {
            epoch: e,
            epochs: settings.epochs,
            steps,
        });
        let started = Instant::now();
        let mut running = Running::default();
        let mut lr = settings.schedule.lr(state.step);
        net.take_metrics()?;
        let stream = data.train_batches(
            augmenter,
            settings.batch_size,
            state.epochs_done as u64,
            settings.seed,
        );
        let mut images = 0usize;
        for (i, batch) in stream.enumerate() {
            lr = settings.schedule.lr(state.step);
            let first_ever = state.step == 0;
            net.train_step(&batch.images, &batch.labels, batch.n, lr as f32, state.step)?;
            state.step += 1;
            images += batch.n;
            let done = i + 1;
            // A fresh network's first step is read back too: early feedback, and a measure
            // of the time to the first finished step.
            if done % log_every == 0 || done == steps || first_ever {
                // The only readback of the step loop: once per logging interval.
                running.add(&net.take_metrics()?);
                let elapsed = started.elapsed().as_secs_f64();
                observe(Event::Progress {
                    step: done,
                    steps,
                    loss: running.loss(),
                    accuracy: running.accuracy(),
                    images_per_second: images as f64 / elapsed.max(1e-9),
                });
                if !running.loss().is_finite() {
                    outcome.diverged = true;
                    break;
                }
            }
        }
        let train_seconds = started.elapsed().as_secs_f64();
        let val = evaluate_batches(
            net,
            data.validation_batches((settings.batch_size / 2).max(1)),
        )?;
        state.epochs_done += 1;
        outcome.epochs_run += 1;
        let record = EpochRecord {
            epoch: state.epochs_done,
            loss: running.loss(),
            accuracy: running.accuracy(),
            val_loss: val.loss_mean,
            val_accuracy: val.accuracy,
            lr,
            seconds: started.elapsed().as_secs_f64(),
            images_per_second: images as f64 / train_seconds.max(1e-9),
        };
        state.history.push(record.clone());
        observe(Event::EpochEnd(&record));
        on_epoch(net, state)?;
        if outcome.diverged {
            let reason = format!(
                "the training loss became {} in epoch {}: training diverged (try a lower \
                 learning rate)",
                record.loss, record.epoch
            );
            log::warn!("{reason}");
            observe(Event::Stopped { reason });
            break;
        }
        if let Some((beta, zeta)) = settings.act {
            // The epoch over the network's life, not of this call: a resumed evaluation
            // judges its epochs by the thresholds the uninterrupted run would use.
            let threshold = act_threshold(record.epoch, data.classes, beta, zeta);
            if e < settings.epochs && record.val_accuracy < threshold {
                outcome.stopped_early = true;
                observe(Event::Stopped {
                    reason: format!(
                        "ACT: validation accuracy {:.4} is below the threshold {threshold:.4} \
                         of epoch {}",
                        record.val_accuracy, record.epoch
                    ),
                });
                break;
            }
        }
    }
    Ok(outcome)
}
