//! Elementwise and layout kernels: ReLU, add, gradient accumulation, channel
//! concatenation, dropout.

use bytemuck::{Pod, Zeroable};

use crate::gpu::{Gpu, GpuError, Kernel, Launch, Program, Tensor, WORKGROUP_1D, grid_1d};

/// Params of the flat elementwise kernels (`relu_*`, `add_forward`, `accumulate`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ElementwiseParams {
    /// Number of elements.
    pub n: u32,
    /// Padding to the 16-byte uniform size.
    pub _pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<ElementwiseParams>() == 16);

fn flat(n: usize) -> ElementwiseParams {
    ElementwiseParams {
        n: n as u32,
        _pad: [0; 3],
    }
}

/// `y = max(x, 0)`.
pub fn relu_forward(gpu: &Gpu, x: &Tensor, y: &Tensor) -> Result<Program, GpuError> {
    assert_eq!(x.len(), y.len(), "relu_forward: x and y sizes differ");
    let n = x.len();
    Ok(Launch::new(
        gpu,
        Kernel::ReluForward,
        &flat(n),
        &[x, y],
        grid_1d(n, WORKGROUP_1D),
    )?
    .into())
}

/// `dx = dy` where the forward output `y > 0`, else 0.
pub fn relu_backward(gpu: &Gpu, y: &Tensor, dy: &Tensor, dx: &Tensor) -> Result<Program, GpuError> {
    assert_eq!(y.len(), dy.len(), "relu_backward: y and dy sizes differ");
    assert_eq!(y.len(), dx.len(), "relu_backward: y and dx sizes differ");
    let n = y.len();
    let wg = grid_1d(n, WORKGROUP_1D);
    Ok(Launch::new(gpu, Kernel::ReluBackward, &flat(n), &[y, dy, dx], wg)?.into())
}

/// `z = a + b` (the merge of a skip connection).
///
/// # Panics
/// When `a`, `b` and `z` differ in length.
pub fn add_forward(gpu: &Gpu, a: &Tensor, b: &Tensor, z: &Tensor) -> Result<Program, GpuError> {
    assert_eq!(a.len(), b.len(), "add_forward: a and b sizes differ");
    assert_eq!(a.len(), z.len(), "add_forward: a and z sizes differ");
    let n = a.len();
    let wg = grid_1d(n, WORKGROUP_1D);
    Ok(Launch::new(gpu, Kernel::AddForward, &flat(n), &[a, b, z], wg)?.into())
}

/// `dst += src`: sums a second consumer's gradient into the gradient already in `dst`.
///
/// # Panics
/// When `src` and `dst` differ in length.
pub fn accumulate(gpu: &Gpu, src: &Tensor, dst: &Tensor) -> Result<Program, GpuError> {
    assert_eq!(src.len(), dst.len(), "accumulate: src and dst sizes differ");
    let n = src.len();
    let wg = grid_1d(n, WORKGROUP_1D);
    Ok(Launch::new(gpu, Kernel::Accumulate, &flat(n), &[src, dst], wg)?.into())
}

/// Params of `concat_forward` and `concat_backward`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ConcatParams {
    /// Rows M (N*H*W for NHWC activations).
    pub m: u32,
    /// Channels of the first part.
    pub c1: u32,
    /// Channels of the second part.
    pub c2: u32,
    /// Padding to the 16-byte uniform size.
    pub _pad: u32,
}
const _: () = assert!(std::mem::size_of::<ConcatParams>() == 16);

fn concat_params(name: &str, m: usize, c1: usize, c2: usize, parts: [&Tensor; 3]) -> ConcatParams {
    let [a, b, z] = parts;
    assert!(
        a.len() >= m * c1,
        "{name}: the [M,C1] part holds {} elements, needs {m}*{c1}",
        a.len()
    );
    assert!(
        b.len() >= m * c2,
        "{name}: the [M,C2] part holds {} elements, needs {m}*{c2}",
        b.len()
    );
    assert!(
        z.len() >= m * (c1 + c2),
        "{name}: the [M,C1+C2] whole holds {} elements, needs {m}*{}",
        z.len(),
        c1 + c2
    );
    assert!(
        m * (c1 + c2) <= u32::MAX as usize,
        "{name}: {m}x{} elements exceed the u32 index range",
        c1 + c2
    );
    ConcatParams {
        m: m as u32,
        c1: c1 as u32,
        c2: c2 as u32,
        _pad: 0,
    }
}

/// Channel concatenation: `z[r] = [a[r] | b[r]]` for the first `m` rows.
///
/// # Shapes
/// `a` `[M,C1]`, `b` `[M,C2]`, `z` `[M,C1+C2]` (NHWC activations with M = N*H*W); the
/// tensors may be larger (allocated for a bigger batch): only the first `m` rows are used.
///
/// # Panics
/// When a tensor is smaller than its shape.
pub fn concat_forward(
    gpu: &Gpu,
    m: usize,
    c1: usize,
    c2: usize,
    a: &Tensor,
    b: &Tensor,
    z: &Tensor,
) -> Result<Program, GpuError> {
    let p = concat_params("concat_forward", m, c1, c2, [a, b, z]);
    let wg = grid_1d(m * (c1 + c2), WORKGROUP_1D);
    Ok(Launch::new(gpu, Kernel::ConcatForward, &p, &[a, b, z], wg)?.into())
}

/// Gradient of [`concat_forward`]: splits `dz` `[M,C1+C2]` into `da` `[M,C1]` and `db`
/// `[M,C2]` (both overwritten, first `m` rows).
///
/// # Panics
/// When a tensor is smaller than its shape.
pub fn concat_backward(
    gpu: &Gpu,
    m: usize,
    c1: usize,
    c2: usize,
    dz: &Tensor,
    da: &Tensor,
    db: &Tensor,
) -> Result<Program, GpuError> {
    let p = concat_params("concat_backward", m, c1, c2, [da, db, dz]);
    let wg = grid_1d(m * (c1 + c2), WORKGROUP_1D);
    Ok(Launch::new(gpu, Kernel::ConcatBackward, &p, &[dz, da, db], wg)?.into())
}

/// Params of `dropout_forward` and `dropout_backward`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct DropoutParams {
    /// Number of elements.
    pub n: u32,
    /// The layer's key, mixed with the step into the mask hash.
    pub seed: u32,
    /// `round(rate * 2^24)`: an element is dropped when the top 24 bits of its hash fall
    /// below this.
    pub threshold: u32,
    /// `1 / (1 - rate)`, applied to the kept elements.
    pub scale: f32,
}
const _: () = assert!(std::mem::size_of::<DropoutParams>() == 16);

fn dropout_params(name: &str, rate: f32, seed: u32, step: &Tensor, n: usize) -> DropoutParams {
    assert!(
        (0.0..1.0).contains(&rate),
        "{name}: rate {rate} is outside [0, 1)"
    );
    assert_eq!(step.len(), 1, "{name}: step must be a u32 tensor [1]");
    assert!(
        n <= u32::MAX as usize,
        "{name}: {n} elements exceed the u32 index range"
    );
    DropoutParams {
        n: n as u32,
        seed,
        threshold: (rate as f64 * 16_777_216.0).round() as u32,
        scale: 1.0 / (1.0 - rate),
    }
}

/// Inverted dropout: `y = x / (1 - rate)` where kept, 0 where dropped; each element is
/// dropped with probability `rate` (to within 2^-24). The mask is a hash of (`seed`, the
/// u32 in `step`, flat element index): the host writes `step` once per training step, and
/// [`dropout_backward`] with the same `seed` and `step` rebuilds the same mask. Rate 0 is
/// the identity. Give each dropout layer its own `seed`.
///
/// # Panics
/// When `rate` is outside `[0, 1)`, `step` is not `[1]`, or `x` and `y` differ in length.
pub fn dropout_forward(
    gpu: &Gpu,
    rate: f32,
    seed: u32,
    step: &Tensor,
    x: &Tensor,
    y: &Tensor,
) -> Result<Program, GpuError> {
    assert_eq!(x.len(), y.len(), "dropout_forward: x and y sizes differ");
    let p = dropout_params("dropout_forward", rate, seed, step, x.len());
    let wg = grid_1d(x.len(), WORKGROUP_1D);
    Ok(Launch::new(gpu, Kernel::DropoutForward, &p, &[step, x, y], wg)?.into())
}

/// Gradient of [`dropout_forward`]: `dx = dy / (1 - rate)` where the forward with the same
/// `rate`, `seed` and `step` contents kept the element, else 0.
///
/// # Panics
/// As [`dropout_forward`].
pub fn dropout_backward(
    gpu: &Gpu,
    rate: f32,
    seed: u32,
    step: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<Program, GpuError> {
    assert_eq!(
        dy.len(),
        dx.len(),
        "dropout_backward: dy and dx sizes differ"
    );
    let p = dropout_params("dropout_backward", rate, seed, step, dy.len());
    let wg = grid_1d(dy.len(), WORKGROUP_1D);
    Ok(Launch::new(gpu, Kernel::DropoutBackward, &p, &[step, dy, dx], wg)?.into())
}
