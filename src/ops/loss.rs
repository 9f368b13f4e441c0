//! The training loss and the epoch metrics: softmax fused with sparse categorical
//! cross-entropy, and the on-GPU running sums the host reads once per epoch.

use bytemuck::{Pod, Zeroable};

use crate::gpu::{Gpu, GpuError, Kernel, Launch, Program, Tensor, grid_1d};

/// Rows per workgroup of `softmax_xent_forward` (one invocation per row).
const XENT_WORKGROUP: u32 = 64;

/// Params of `softmax_xent_forward`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct XentParams {
    /// Rows (samples) N.
    pub n: u32,
    /// Classes K.
    pub classes: u32,
    /// Padding to the 16-byte uniform size.
    pub _pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<XentParams>() == 16);

/// Softmax and sparse categorical cross-entropy, fused and numerically stable (the row
/// max is subtracted before `exp`), over the first `n` rows. Writes, per row `r` with label
/// `t`:
/// - `dlogits[r] = (softmax(logits[r]) - onehot(t)) / n`, the gradient of the batch's mean
///   loss (Keras's reduction);
/// - `loss[r] = -log softmax(logits[r])[t]`;
/// - `correct[r] = 1.0` when the first maximum of `logits[r]` is at `t`, else `0.0`.
///
/// A label `>= classes` reads no logit: its row gets `correct` 0, `loss` +inf and
/// `dlogits = softmax / n`, so bad labels show up in the metrics rather than corrupting
/// memory. The data layer is expected to reject them earlier.
///
/// # Shapes
/// `logits`, `dlogits` `[N,K]`; `labels` u32 `[N]`; `loss`, `correct` `[N]`. Tensors may be
/// larger (allocated for a bigger batch); only the first `n` rows are used.
///
/// # Panics
/// When `n` or `classes` is 0 or a tensor is smaller than its shape.
// The argument list is OPS.md's launcher contract.
#[allow(clippy::too_many_arguments)]
pub fn softmax_xent_forward(
    gpu: &Gpu,
    n: usize,
    classes: usize,
    logits: &Tensor,
    labels: &Tensor,
    dlogits: &Tensor,
    loss: &Tensor,
    correct: &Tensor,
) -> Result<Program, GpuError> {
    assert!(
        n > 0 && classes > 0,
        "softmax_xent_forward: n ({n}) and classes ({classes}) must be positive"
    );
    assert!(
        n * classes <= u32::MAX as usize,
        "softmax_xent_forward: {n}x{classes} logits exceed the u32 index range"
    );
    for (t, name, want) in [
        (logits, "logits", n * classes),
        (dlogits, "dlogits", n * classes),
        (labels, "labels", n),
        (loss, "loss", n),
        (correct, "correct", n),
    ] {
        assert!(
            t.len() >= want,
            "softmax_xent_forward: {name} holds {} elements, needs {want} (n {n}, classes \
             {classes})",
            t.len()
        );
    }
    let p = XentParams {
        n: n as u32,
        classes: classes as u32,
        _pad: [0; 2],
    };
    Ok(Launch::new(
        gpu,
        Kernel::SoftmaxXentForward,
        &p,
        &[logits, labels, dlogits, loss, correct],
        grid_1d(n, XENT_WORKGROUP),
    )?
    .into())
}

/// Params of `metrics_accumulate`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MetricsParams {
    /// Samples N of the batch.
    pub n: u32,
    /// Number of L2 terms R.
    pub r: u32,
    /// Padding to the 16-byte uniform size.
    pub _pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<MetricsParams>() == 16);

/// Adds one batch to the running metrics, on the GPU and in a fixed order (bit-identical
/// run to run): `metrics[0] += sum(loss) + n * sum(reg)`, `metrics[1] += sum(correct)`,
/// `metrics[2] += n`; `metrics[3]` is left alone. Zero `metrics` at the start of an epoch
/// and read it at the end: mean loss `metrics[0] / metrics[2]` (the cross-entropy plus the
/// L2 terms, as Keras reports it), accuracy `metrics[1] / metrics[2]`.
///
/// # Shapes
/// `loss`, `correct` `[N]` (first `n` used); `reg` `[R]` (every element used, R may be 0);
/// `metrics` `[4]`.
///
/// # Panics
/// When a tensor is smaller than its shape.
pub fn metrics_accumulate(
    gpu: &Gpu,
    n: usize,
    loss: &Tensor,
    correct: &Tensor,
    reg: &Tensor,
    metrics: &Tensor,
) -> Result<Program, GpuError> {
    assert!(
        loss.len() >= n && correct.len() >= n,
        "metrics_accumulate: loss ({}) and correct ({}) must hold n = {n} elements",
        loss.len(),
        correct.len()
    );
    assert_eq!(metrics.len(), 4, "metrics_accumulate: metrics must be [4]");
    assert!(
        n <= u32::MAX as usize && reg.len() <= u32::MAX as usize,
        "metrics_accumulate: sizes exceed the u32 range"
    );
    let p = MetricsParams {
        n: n as u32,
        r: reg.len() as u32,
        _pad: [0; 2],
    };
    Ok(Launch::new(
        gpu,
        Kernel::MetricsAccumulate,
        &p,
        &[loss, correct, reg, metrics],
        [1, 1, 1],
    )?
    .into())
}
