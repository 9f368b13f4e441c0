//! Training: the epoch loop, the learning-rate schedule, ACT early termination, the
//! momentum record and the history.

mod fit;
mod schedule;

pub use fit::{EpochRecord, Event, FitOutcome, FitSettings, TrainState, evaluate_batches, fit};
pub use schedule::{LrSchedule, act_threshold, momentum_record};
