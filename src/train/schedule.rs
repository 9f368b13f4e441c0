//! The pieces of HiveNAS's training procedure that are plain arithmetic: the staircase
//! learning-rate schedule, ACT's early-termination threshold, and the momentum record.

/// Exponential staircase decay, HiveNAS's schedule (HIVENAS.md section 3.6):
/// `lr(step) = initial * r^floor(step / steps_per_epoch)` with
/// `r = (final / initial)^(1 / epochs)`.
///
/// `steps_per_epoch` is `floor(N_train_total / batch)`, the size of the whole training set
/// (validation part included) as HiveNAS computes it. `step` is the optimizer's counter,
/// which carries over into continued training. `epochs` is the horizon of the run at hand:
/// the epochs already behind the optimizer plus those of this run. HiveNAS reuses the
/// evaluation's 5 epochs in full training, so over 50 more epochs its rate collapses towards
/// 1e-8; with this horizon every run, fresh or continued, ends at `final_lr`.
///
/// The rate never falls below `final_lr`: the stairs stop at the horizon. Without that
/// stop, continuing a checkpoint on a smaller training set (fewer steps per stair) than it
/// was trained on would count far more stairs than epochs and train at a rate near 0.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LrSchedule {
    /// Rate at step 0.
    pub initial_lr: f64,
    /// Rate after `epochs` epochs' worth of steps; 0 (or a 0 initial rate) means constant.
    pub final_lr: f64,
    /// Epochs over which the rate decays from initial to final.
    pub epochs: usize,
    /// Steps between two decays.
    pub steps_per_epoch: u64,
}

impl LrSchedule {
    /// The rate at the optimizer's global `step`.
    pub fn lr(&self, step: u64) -> f64 {
        if self.initial_lr <= 0.0 || self.final_lr <= 0.0 || self.epochs == 0 {
            return self.initial_lr;
        }
        let r = (self.final_lr / self.initial_lr).powf(1.0 / self.epochs as f64);
        let stairs = (step / self.steps_per_epoch.max(1)).min(self.epochs as u64);
        self.initial_lr * r.powf(stairs as f64)
    }
}

/// ACT's threshold after epoch `e` (1-based) for `classes` classes, factor `beta` and
/// diminishing factor `zeta` (HIVENAS.md section 3.8). Training stops when the validation
/// accuracy falls below it; `beta <= 0` disables ACT (the threshold is then 0).
pub fn act_threshold(epoch: usize, classes: usize, beta: f64, zeta: f64) -> f64 {
    if beta <= 0.0 {
        return 0.0;
    }
    let n = classes as f64;
    let base = 1.0 / n + beta * (1.0 - 1.0 / n);
    base + (1.0 - base) - 1.0 / (1.0 / (1.0 - base) + zeta * (epoch as f64 - 1.0))
}

/// The momentum record: `(accuracy, momentum)` per epoch from the validation accuracies
/// (HIVENAS.md section 3.9). Momentum is the accuracy itself for the first two epochs, then
/// the ratio of the last two improvements, 0 where the earlier improvement is 0.
pub fn momentum_record(val_accuracy: &[f64]) -> Vec<(f64, f64)> {
    val_accuracy
        .iter()
        .enumerate()
        .map(|(e, &a)| {
            let mu = if e < 2 {
                a
            } else {
                let den = val_accuracy[e - 1] - val_accuracy[e - 2];
                if den == 0.0 {
                    0.0
                } else {
                    (a - val_accuracy[e - 1]) / den
                }
            };
            (a, mu)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn act_thresholds_match_hivenas_comment() {
        // HiveNAS lists 0.325, 0.422, 0.495, 0.552, 0.597 for epochs 1-5 (n=10, beta=zeta=0.25).
        let want = [0.325, 0.422, 0.495, 0.552, 0.597];
        for (e, w) in want.iter().enumerate() {
            let t = act_threshold(e + 1, 10, 0.25, 0.25);
            assert!((t - w).abs() < 1e-3, "epoch {}: {t} vs {w}", e + 1);
        }
        assert_eq!(act_threshold(3, 10, 0.0, 0.25), 0.0);
    }

    #[test]
    fn staircase_steps_once_per_epoch_of_the_whole_training_set() {
        // CIFAR-10: 50,000 / 128 = 390 steps between decays; 5 epochs from 0.08 to 0.01.
        let s = LrSchedule {
            initial_lr: 0.08,
            final_lr: 0.01,
            epochs: 5,
            steps_per_epoch: 390,
        };
        let r = (0.01f64 / 0.08).powf(0.2);
        assert_eq!(s.lr(0), 0.08);
        assert_eq!(s.lr(389), 0.08);
        assert!((s.lr(390) - 0.08 * r).abs() < 1e-15);
        assert!((s.lr(5 * 390) - 0.01).abs() < 1e-12);
        // Continued for 2 more epochs: the horizon is 7, and the run ends at final_lr.
        let cont = LrSchedule { epochs: 7, ..s };
        assert!((cont.lr(7 * 390) - 0.01).abs() < 1e-12);
        assert!(cont.lr(5 * 390) > 0.01);
        // Past the horizon (a continued run counting stairs of a smaller training set),
        // the rate stays at final_lr.
        assert!((s.lr(100 * 390) - 0.01).abs() < 1e-12);
        assert!((s.lr(6 * 390 - 1) - 0.01).abs() < 1e-12);
        let constant = LrSchedule { final_lr: 0.0, ..s };
        assert_eq!(constant.lr(10_000), 0.08);
    }

    #[test]
    fn momentum_follows_the_ratio_of_improvements() {
        let rec = momentum_record(&[0.5, 0.6, 0.7, 0.7, 0.75]);
        assert_eq!(rec[0], (0.5, 0.5));
        assert_eq!(rec[1], (0.6, 0.6));
        assert!((rec[2].1 - 1.0).abs() < 1e-9);
        assert_eq!(rec[3].1, 0.0);
        assert_eq!(rec[4].1, 0.0); // the earlier improvement was 0
    }
}
