//! The network: GPU tensors and kernel programs built from a [`Plan`], the training step
//! (forward, loss, backward, L2, SGD recorded into one command encoder), inference steps,
//! metrics kept on the GPU until asked for, and the state a checkpoint carries.
//!
//! Everything a step touches (tensors, pipelines, bind groups) is created by
//! [`Network::new`]; the programs of a smaller batch (the last, partial batch of an epoch,
//! validation batches) are built the first time that size is seen and cached. A step only
//! uploads its batch and records what was built.
//!
//! Files: `build` checks the plan, allocates tensors and initializes parameters; `forward`
//! and `backward` turn nodes into kernel programs (the backward rules are one exhaustive
//! match); `network` holds the public API. Gradient checks use the diagnostic hooks
//! [`Network::compute_gradients`], [`Network::read_gradient`] and
//! [`Network::read_activation`].
//!
//! [`Plan`]: crate::arch::Plan

mod backward;
mod build;
mod forward;
mod network;

pub use network::Network;

use crate::gpu::GpuError;

/// SGD settings (Keras's rule): `v = m*v - lr*g`, then `w += m*v - lr*g` (Nesterov) or
/// `w += v`. The learning rate is given per step.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OptimizerConfig {
    /// Momentum `m` (HiveNAS: 0.9).
    pub momentum: f32,
    /// Nesterov momentum (HiveNAS: true).
    pub nesterov: bool,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            momentum: 0.9,
            nesterov: true,
        }
    }
}

/// Loss and accuracy accumulated on the GPU since the last [`Network::take_metrics`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    /// Mean over samples of the cross-entropy plus the L2 terms (Keras's reported loss);
    /// 0 when no sample was seen.
    pub loss_mean: f64,
    /// Fraction of samples whose arg-max logit is the label; 0 when no sample was seen.
    pub accuracy: f64,
    /// Samples seen.
    pub count: u64,
}

/// One named array of a network's state (a parameter, a batch-norm moving statistic or
/// an optimizer velocity), as checkpoints store it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NamedArray {
    /// `model/<param path>` or `optimizer/velocity/<param path>`.
    pub path: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// The values, `shape.iter().product()` of them.
    pub data: Vec<f32>,
}

/// What went wrong while building or running a network.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// A device or kernel problem.
    #[error(transparent)]
    Gpu(#[from] GpuError),
    /// The plan is not one the graph can build (arch should have refused it).
    #[error(
        "plan node {node:?} cannot be built: {message}; the plan is malformed, rebuild it \
             from the op list with `naseval summary` to see where"
    )]
    Plan {
        /// The node's name.
        node: String,
        /// What is wrong with it.
        message: String,
    },
    /// A batch given to a step does not fit the network.
    #[error("bad batch: {0}")]
    Batch(String),
    /// A state array the network needs is not in the given state.
    #[error(
        "the state has no array {path:?}; the checkpoint was made for another \
             architecture or is incomplete"
    )]
    MissingState {
        /// The missing path.
        path: String,
    },
    /// The given state holds an array this network does not have.
    #[error(
        "the state holds {path:?}, which this network does not have; the checkpoint was \
             made for another architecture"
    )]
    UnexpectedState {
        /// The unknown path.
        path: String,
    },
    /// A state array has the wrong shape or length.
    #[error(
        "state array {path:?} has shape {found:?} ({len} values), the network needs \
             {expected:?}; the checkpoint was made for another architecture or input shape"
    )]
    StateShape {
        /// The array's path.
        path: String,
        /// The shape the network needs.
        expected: Vec<usize>,
        /// The shape found.
        found: Vec<usize>,
        /// Values found.
        len: usize,
    },
    /// An unknown name given to a diagnostic read.
    #[error("no {what} named {name:?} in this network")]
    UnknownName {
        /// "parameter" or "node".
        what: &'static str,
        /// The name asked for.
        name: String,
    },
}
