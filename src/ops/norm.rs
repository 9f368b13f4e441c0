//! Batch normalization over the rows of x seen as [M,C] (M = N*H*W), forward in training
//! and inference mode, and backward.
//!
//! Per-channel reductions run in two deterministic stages: partial results per chunk of
//! [`CHUNK_ROWS`] rows go to a scratch tensor kept in the [`Program`], then one workgroup
//! per channel combines them in a fixed order. Statistics use a shifted two-pass chunk
//! variance merged with Chan's formula, so values like 100 +- 0.01 keep their variance.

use bytemuck::{Pod, Zeroable};

use crate::gpu::{Gpu, GpuError, Kernel, Launch, Program, Tensor, WORKGROUP_1D, grid_1d};

/// Rows of x one invocation of a first-stage reduction covers.
pub const CHUNK_ROWS: usize = 128;

/// A batch norm over M rows and C channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchNormShape {
    /// Rows, N*H*W (the launchers process only the first `m` rows).
    pub m: usize,
    /// Channels.
    pub c: usize,
}

impl BatchNormShape {
    /// Row chunks of the first reduction stage, the last one possibly partial.
    pub fn chunks(&self) -> usize {
        self.m.div_ceil(CHUNK_ROWS)
    }

    fn check(&self, what: &str) {
        assert!(
            self.m >= 1 && self.c >= 1,
            "{what}: empty batch norm {self:?}"
        );
        assert!(
            self.m * self.c <= u32::MAX as usize,
            "{what}: {self:?} has more elements than 32-bit indices reach"
        );
        assert!(
            self.c <= 65_535,
            "{what}: {} channels exceed the 65,535 combine workgroups one dispatch has",
            self.c
        );
    }

    fn params(&self, momentum: f32, epsilon: f32, mode: u32) -> BatchNormParams {
        BatchNormParams {
            m: self.m as u32,
            c: self.c as u32,
            chunk_rows: CHUNK_ROWS as u32,
            chunks: self.chunks() as u32,
            total: (self.m * self.c) as u32,
            mode,
            momentum,
            epsilon,
        }
    }
}

/// Params shared by every batch-norm kernel (each reads the fields it needs).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BatchNormParams {
    /// Rows M.
    pub m: u32,
    /// Channels C.
    pub c: u32,
    /// Rows per first-stage chunk.
    pub chunk_rows: u32,
    /// Number of chunks, ceil(M / chunk_rows).
    pub chunks: u32,
    /// Elements M*C.
    pub total: u32,
    /// `batch_norm_forward`: 0 = its statistics are (mean, invstd), 1 = (mean, variance).
    pub mode: u32,
    /// Moving-average momentum (training statistics only).
    pub momentum: f32,
    /// Added to the variance before the square root.
    pub epsilon: f32,
}
const _: () = assert!(std::mem::size_of::<BatchNormParams>() == 32);

const FORWARD_USES_INVSTD: u32 = 0;
const FORWARD_USES_VARIANCE: u32 = 1;

fn check_len(what: &str, name: &str, t: &Tensor, want: usize) {
    assert!(
        t.len() >= want,
        "{what}: {name} has {} elements, needs {want}",
        t.len()
    );
}

fn check_channels(what: &str, name: &str, t: &Tensor, c: usize) {
    assert_eq!(
        t.len(),
        c,
        "{what}: {name} must have one element per channel"
    );
}

/// Training forward: batch mean and biased variance per channel,
/// `y = gamma * (x - mean) * invstd + beta` with `invstd = 1 / sqrt(var + epsilon)`;
/// writes `saved_mean` and `saved_invstd` for the backward pass and updates the moving
/// statistics in place: `moving = moving * momentum + batch * (1 - momentum)`, the batch
/// variance made unbiased by `m / max(m - 1, 1)`.
///
/// # Shapes
/// `x`, `y` [M,C]; `gamma`, `beta`, `moving_mean`, `moving_var`, `saved_mean`,
/// `saved_invstd` [C]. `x` and `y` must be different tensors.
///
/// # Panics
/// When a tensor is too small, a per-channel tensor is not [C], or M or C is 0.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_forward(
    gpu: &Gpu,
    s: &BatchNormShape,
    momentum: f32,
    epsilon: f32,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    moving_mean: &Tensor,
    moving_var: &Tensor,
    saved_mean: &Tensor,
    saved_invstd: &Tensor,
    y: &Tensor,
) -> Result<Program, GpuError> {
    const WHAT: &str = "batch_norm_train_forward";
    s.check(WHAT);
    check_len(WHAT, "x", x, s.m * s.c);
    check_len(WHAT, "y", y, s.m * s.c);
    for (name, t) in [
        ("gamma", gamma),
        ("beta", beta),
        ("moving_mean", moving_mean),
        ("moving_var", moving_var),
        ("saved_mean", saved_mean),
        ("saved_invstd", saved_invstd),
    ] {
        check_channels(WHAT, name, t, s.c);
    }
    let partial = Tensor::new(gpu, &[2, s.chunks(), s.c])?;
    let mut program = Program::new();

    // Stage 1: mean and sum of squared deviations of each (chunk, channel).
    let p = s.params(momentum, epsilon, FORWARD_USES_INVSTD);
    let wg = grid_1d(s.chunks() * s.c, WORKGROUP_1D);
    program.push(Launch::new(
        gpu,
        Kernel::BatchNormStats,
        &p,
        &[x, &partial],
        wg,
    )?);

    // Stage 2: one workgroup per channel merges the chunks and updates the moving stats.
    let tensors = [&partial, moving_mean, moving_var, saved_mean, saved_invstd];
    let wg = [s.c as u32, 1, 1];
    program.push(Launch::new(
        gpu,
        Kernel::BatchNormStatsCombine,
        &p,
        &tensors,
        wg,
    )?);

    let tensors = [x, gamma, beta, saved_mean, saved_invstd, y];
    let wg = grid_1d(s.m * s.c, WORKGROUP_1D);
    program.push(Launch::new(
        gpu,
        Kernel::BatchNormForward,
        &p,
        &tensors,
        wg,
    )?);
    program.keep(partial);
    Ok(program)
}

/// Inference forward with the moving statistics:
/// `y = gamma * (x - moving_mean) / sqrt(moving_var + epsilon) + beta`.
///
/// # Shapes
/// `x`, `y` [M,C]; `gamma`, `beta`, `moving_mean`, `moving_var` [C].
///
/// # Panics
/// When a tensor is too small, a per-channel tensor is not [C], or M or C is 0.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_infer_forward(
    gpu: &Gpu,
    s: &BatchNormShape,
    epsilon: f32,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    moving_mean: &Tensor,
    moving_var: &Tensor,
    y: &Tensor,
) -> Result<Program, GpuError> {
    const WHAT: &str = "batch_norm_infer_forward";
    s.check(WHAT);
    check_len(WHAT, "x", x, s.m * s.c);
    check_len(WHAT, "y", y, s.m * s.c);
    for (name, t) in [
        ("gamma", gamma),
        ("beta", beta),
        ("moving_mean", moving_mean),
        ("moving_var", moving_var),
    ] {
        check_channels(WHAT, name, t, s.c);
    }
    let p = s.params(0.0, epsilon, FORWARD_USES_VARIANCE);
    let tensors = [x, gamma, beta, moving_mean, moving_var, y];
    let wg = grid_1d(s.m * s.c, WORKGROUP_1D);
    Ok(Launch::new(gpu, Kernel::BatchNormForward, &p, &tensors, wg)?.into())
}

/// Backward of the training forward (the batch statistics depend on x):
/// `dgamma = sum(dy * xhat)`, `dbeta = sum(dy)` over the M rows, and
/// `dx = gamma * invstd * (dy - dbeta / m - xhat * dgamma / m)` with
/// `xhat = (x - saved_mean) * saved_invstd`. Overwrites `dx`, `dgamma` and `dbeta`.
///
/// # Shapes
/// `x`, `dy`, `dx` [M,C]; `gamma`, `saved_mean`, `saved_invstd`, `dgamma`, `dbeta` [C].
///
/// # Panics
/// When a tensor is too small, a per-channel tensor is not [C], or M or C is 0.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    gpu: &Gpu,
    s: &BatchNormShape,
    x: &Tensor,
    dy: &Tensor,
    gamma: &Tensor,
    saved_mean: &Tensor,
    saved_invstd: &Tensor,
    dx: &Tensor,
    dgamma: &Tensor,
    dbeta: &Tensor,
) -> Result<Program, GpuError> {
    const WHAT: &str = "batch_norm_backward";
    s.check(WHAT);
    check_len(WHAT, "x", x, s.m * s.c);
    check_len(WHAT, "dy", dy, s.m * s.c);
    check_len(WHAT, "dx", dx, s.m * s.c);
    for (name, t) in [
        ("gamma", gamma),
        ("saved_mean", saved_mean),
        ("saved_invstd", saved_invstd),
        ("dgamma", dgamma),
        ("dbeta", dbeta),
    ] {
        check_channels(WHAT, name, t, s.c);
    }
    let partial = Tensor::new(gpu, &[2, s.chunks(), s.c])?;
    let mut program = Program::new();
    let p = s.params(0.0, 0.0, FORWARD_USES_INVSTD);

    // Stage 1: sum(dy) and sum(dy * xhat) of each (chunk, channel).
    let tensors = [x, dy, saved_mean, saved_invstd, &partial];
    let wg = grid_1d(s.chunks() * s.c, WORKGROUP_1D);
    program.push(Launch::new(
        gpu,
        Kernel::BatchNormBackwardReduce,
        &p,
        &tensors,
        wg,
    )?);

    // Stage 2: one workgroup per channel adds the chunks up in a fixed order.
    let tensors = [&partial, dgamma, dbeta];
    let wg = [s.c as u32, 1, 1];
    program.push(Launch::new(
        gpu,
        Kernel::BatchNormBackwardCombine,
        &p,
        &tensors,
        wg,
    )?);

    let tensors = [x, dy, gamma, saved_mean, saved_invstd, dgamma, dbeta, dx];
    let wg = grid_1d(s.m * s.c, WORKGROUP_1D);
    program.push(Launch::new(
        gpu,
        Kernel::BatchNormBackward,
        &p,
        &tensors,
        wg,
    )?);
    program.keep(partial);
    Ok(program)
}
