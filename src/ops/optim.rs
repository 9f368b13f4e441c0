//! Regularization and the optimizer: the L2 terms of the loss and their gradient, and
//! Keras's SGD with momentum (plain or Nesterov), applied in place on the GPU.

use bytemuck::{Pod, Zeroable};

use crate::gpu::{Gpu, GpuError, Kernel, Launch, Program, Tensor, WORKGROUP_1D, grid_1d};

/// Elements one workgroup of the first `l2_loss` pass reduces. Weights up to this size take
/// a single pass; 300k weights give 147 partial sums.
const L2_CHUNK: usize = 2048;

/// Params of `l2_loss` (one per pass).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct SumSquaresParams {
    /// Elements of the source.
    pub n: u32,
    /// Elements each workgroup reduces.
    pub chunk: u32,
    /// 1: sum the squares; 0: sum the values.
    pub square: u32,
    /// Workgroup g writes `dst[dst_index + g]`.
    pub dst_index: u32,
    /// Factor on each group's sum.
    pub scale: f32,
    /// Padding to a multiple of 16 bytes.
    pub _pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<SumSquaresParams>() == 32);

/// `reg[slot] = coef * sum(w^2)` (overwritten), the L2 term of one kernel. The sum is a
/// fixed-order reduction (chunks of 2048 per workgroup, then one workgroup over the
/// partial sums), bit-identical run to run.
///
/// # Panics
/// When `slot` is outside `reg`.
pub fn l2_loss(
    gpu: &Gpu,
    coef: f32,
    w: &Tensor,
    reg: &Tensor,
    slot: usize,
) -> Result<Program, GpuError> {
    assert!(
        slot < reg.len(),
        "l2_loss: slot {slot} is outside reg [{}]",
        reg.len()
    );
    let n = w.len();
    assert!(
        n <= u32::MAX as usize,
        "l2_loss: {n} elements exceed the u32 index range"
    );
    let groups = n.div_ceil(L2_CHUNK).max(1);
    let params =
        |n: usize, chunk: usize, square: bool, dst_index: usize, scale: f32| SumSquaresParams {
            n: n as u32,
            chunk: chunk.max(1) as u32,
            square: square as u32,
            dst_index: dst_index as u32,
            scale,
            _pad: [0; 3],
        };
    if groups == 1 {
        let p = params(n, n, true, slot, coef);
        return Ok(Launch::new(gpu, Kernel::L2Loss, &p, &[w, reg], [1, 1, 1])?.into());
    }
    assert!(
        groups <= 65_535,
        "l2_loss: {n} weights need more than 65,535 workgroups"
    );
    let partials = Tensor::new(gpu, &[groups])?;
    let mut prog = Program::new();
    let first = params(n, L2_CHUNK, true, 0, 1.0);
    prog.push(Launch::new(
        gpu,
        Kernel::L2Loss,
        &first,
        &[w, &partials],
        [groups as u32, 1, 1],
    )?);
    let second = params(groups, groups, false, slot, coef);
    prog.push(Launch::new(
        gpu,
        Kernel::L2Loss,
        &second,
        &[&partials, reg],
        [1, 1, 1],
    )?);
    prog.keep(partials);
    Ok(prog)
}

/// Params of `l2_backward`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct L2BackwardParams {
    /// Number of elements.
    pub n: u32,
    /// `2 * coef`.
    pub k: f32,
    /// Padding to the 16-byte uniform size.
    pub _pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<L2BackwardParams>() == 16);

/// `dw += 2 * coef * w`: adds the L2 term's gradient to the kernel's gradient.
///
/// # Panics
/// When `w` and `dw` differ in length.
pub fn l2_backward(gpu: &Gpu, coef: f32, w: &Tensor, dw: &Tensor) -> Result<Program, GpuError> {
    assert_eq!(w.len(), dw.len(), "l2_backward: w and dw sizes differ");
    let n = w.len();
    let p = L2BackwardParams {
        n: n as u32,
        k: 2.0 * coef,
        _pad: [0; 2],
    };
    let wg = grid_1d(n, WORKGROUP_1D);
    Ok(Launch::new(gpu, Kernel::L2Backward, &p, &[w, dw], wg)?.into())
}

/// Params of `sgd_update`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct SgdParams {
    /// Number of elements.
    pub n: u32,
    /// Momentum m.
    pub momentum: f32,
    /// 1 for Nesterov, 0 for plain momentum.
    pub nesterov: u32,
    /// Padding to the 16-byte uniform size.
    pub _pad: u32,
}
const _: () = assert!(std::mem::size_of::<SgdParams>() == 16);

/// One SGD step in place, Keras's rule: `v = m*v - lr*g`; Nesterov: `w += m*v - lr*g`
/// (with the new `v`); plain: `w += v`. The learning rate is the f32 in `lr`, which the
/// host writes before each step, so a schedule needs no rebuild.
///
/// # Shapes
/// `lr` `[1]`; `w`, `v` (velocity, zeros at the start), `g` (gradient) of one length.
///
/// # Panics
/// When `lr` is not `[1]` or `w`, `v`, `g` differ in length.
pub fn sgd_update(
    gpu: &Gpu,
    momentum: f32,
    nesterov: bool,
    lr: &Tensor,
    w: &Tensor,
    v: &Tensor,
    g: &Tensor,
) -> Result<Program, GpuError> {
    assert_eq!(lr.len(), 1, "sgd_update: lr must be a tensor [1]");
    assert_eq!(w.len(), v.len(), "sgd_update: w and v sizes differ");
    assert_eq!(w.len(), g.len(), "sgd_update: w and g sizes differ");
    let n = w.len();
    let p = SgdParams {
        n: n as u32,
        momentum,
        nesterov: nesterov as u32,
        _pad: 0,
    };
    let wg = grid_1d(n, WORKGROUP_1D);
    Ok(Launch::new(gpu, Kernel::SgdUpdate, &p, &[lr, w, v, g], wg)?.into())
}
