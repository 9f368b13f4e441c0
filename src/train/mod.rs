//! Training: the epoch loop, the learning-rate schedule, ACT early termination, the
//! momentum record and the history.

mod schedule;

pub use schedule::{LrSchedule, act_threshold, momentum_record};
