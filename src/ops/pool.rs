//! Pooling: KxK max and average pooling ('same' or 'valid'), and global average pooling,
//! forward and backward. Backward passes are gathers (one invocation per input element
//! sums over the windows that cover it), so they need no atomics and are deterministic.

use bytemuck::{Pod, Zeroable};

use crate::gpu::{Gpu, GpuError, Kernel, Launch, Program, Tensor, WORKGROUP_1D, grid_1d};
use crate::ops::Padding;

/// A KxK pooling layer over NHWC activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolShape {
    /// Batch size (the launchers process only the first `n` samples).
    pub n: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Channels.
    pub c: usize,
    /// Window side (the window is `size` x `size`).
    pub size: usize,
    /// Step between windows, in both directions.
    pub stride: usize,
    /// 'same' or 'valid'.
    pub padding: Padding,
}

impl PoolShape {
    /// Output height.
    ///
    /// # Panics
    /// When a 'valid' window does not fit the input, or size or stride is 0.
    pub fn out_h(&self) -> usize {
        self.out_and_pad(self.h, "height").0
    }

    /// Output width.
    ///
    /// # Panics
    /// When a 'valid' window does not fit the input, or size or stride is 0.
    pub fn out_w(&self) -> usize {
        self.out_and_pad(self.w, "width").0
    }

    fn out_and_pad(&self, input: usize, what: &str) -> (usize, usize) {
        assert!(
            self.size > 0 && self.stride > 0,
            "pool: size and stride must be positive, got {self:?}"
        );
        self.padding
            .output_and_pad(input, self.size, self.stride)
            .unwrap_or_else(|| {
                panic!(
                    "pool: a {}x{} 'valid' window does not fit input {what} {input} ({self:?})",
                    self.size, self.size
                )
            })
    }

    fn input_len(&self) -> usize {
        self.n * self.h * self.w * self.c
    }

    fn output_len(&self) -> usize {
        self.n * self.out_h() * self.out_w() * self.c
    }

    fn params(&self, rows: usize) -> PoolParams {
        let (oh, pad_top) = self.out_and_pad(self.h, "height");
        let (ow, pad_left) = self.out_and_pad(self.w, "width");
        PoolParams {
            n: self.n as u32,
            h: self.h as u32,
            w: self.w as u32,
            c: self.c as u32,
            oh: oh as u32,
            ow: ow as u32,
            size: self.size as u32,
            stride: self.stride as u32,
            pad_top: pad_top as u32,
            pad_left: pad_left as u32,
            rows: rows as u32,
            _pad: 0,
        }
    }
}

/// Params of the KxK pooling kernels (`max_pool_*`, `avg_pool_*`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct PoolParams {
    /// Batch size.
    pub n: u32,
    /// Input height.
    pub h: u32,
    /// Input width.
    pub w: u32,
    /// Channels.
    pub c: u32,
    /// Output height.
    pub oh: u32,
    /// Output width.
    pub ow: u32,
    /// Window side.
    pub size: u32,
    /// Stride.
    pub stride: u32,
    /// Padding rows before the first input row.
    pub pad_top: u32,
    /// Padding columns before the first input column.
    pub pad_left: u32,
    /// Image rows the grid covers: N*OH (forward) or N*H (backward).
    pub rows: u32,
    /// Padding to the 16-byte uniform size.
    pub _pad: u32,
}
const _: () = assert!(std::mem::size_of::<PoolParams>() == 48);

/// Params of the global average pooling kernels.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct GlobalPoolParams {
    /// Batch size.
    pub n: u32,
    /// Spatial cells per sample, H*W.
    pub hw: u32,
    /// Channels.
    pub c: u32,
    /// Invocations that write: N*C (forward) or N*H*W*C (backward).
    pub total: u32,
}
const _: () = assert!(std::mem::size_of::<GlobalPoolParams>() == 16);

/// Rows (N*H) and row lengths (W*C) must stay below this: the shaders' division helper
/// (float quotient, integer fix-up) is exact up to it.
const MAX_DIVIDEND: usize = 1 << 20;

/// Threads per workgroup of the row-wise pooling kernels (small, so that narrow rows waste
/// few invocations).
const ROW_WORKGROUP: usize = 64;

/// Workgroups for the row-wise pooling kernels: x covers one image row of `row_len`
/// elements (W*C or OW*C) in groups of [`ROW_WORKGROUP`]; y and z together cover `rows`
/// rows (N*H or N*OH). The shaders read the row as
/// `workgroup_id.y + workgroup_id.z * num_workgroups.y` and skip rows past the end.
fn row_grid(rows: usize, row_len: usize) -> [u32; 3] {
    let x = row_len.div_ceil(ROW_WORKGROUP).max(1);
    let y = rows.clamp(1, 65_535);
    let z = rows.div_ceil(y).max(1);
    assert!(
        x <= 65_535 && z <= 65_535 && rows < MAX_DIVIDEND && row_len < MAX_DIVIDEND,
        "pool: {rows} rows of {row_len} elements: N*H and W*C must stay below {MAX_DIVIDEND}"
    );
    [x as u32, y as u32, z as u32]
}

fn check_u32(what: &str, len: usize) {
    assert!(
        len <= u32::MAX as usize,
        "pool: {what} has {len} elements, more than 32-bit indices reach"
    );
}

/// Max pooling. Padding never wins (it is ignored); within a window the first maximum in
/// scan order (rows, then columns) wins, and its flat index into `x` is written to
/// `argmax` for the backward pass.
///
/// # Shapes
/// `x` [N,H,W,C], `y` [N,OH,OW,C], `argmax` u32 [N,OH,OW,C].
///
/// # Panics
/// When a tensor is smaller than its shape, or a 'valid' window does not fit.
pub fn max_pool_forward(
    gpu: &Gpu,
    s: &PoolShape,
    x: &Tensor,
    y: &Tensor,
    argmax: &Tensor,
) -> Result<Program, GpuError> {
    let (inp, out) = (s.input_len(), s.output_len());
    assert!(
        x.len() >= inp,
        "max_pool_forward: x has {} elements, needs {inp}",
        x.len()
    );
    assert!(
        y.len() >= out,
        "max_pool_forward: y has {} elements, needs {out}",
        y.len()
    );
    assert!(
        argmax.len() >= out,
        "max_pool_forward: argmax has {} elements, needs {out}",
        argmax.len()
    );
    check_u32("x", inp);
    let p = s.params(s.n * s.out_h());
    let wg = row_grid(s.n * s.out_h(), s.out_w() * s.c);
    Ok(Launch::new(gpu, Kernel::MaxPoolForward, &p, &[x, y, argmax], wg)?.into())
}

/// Max pooling backward: `dx[i]` = the sum of `dy` over the windows whose argmax is `i`
/// (0 for cells no window picked). Overwrites `dx`.
///
/// # Shapes
/// `dy` [N,OH,OW,C], `argmax` u32 [N,OH,OW,C] (from [`max_pool_forward`]), `dx` [N,H,W,C].
///
/// # Panics
/// When a tensor is smaller than its shape, or a 'valid' window does not fit.
pub fn max_pool_backward(
    gpu: &Gpu,
    s: &PoolShape,
    dy: &Tensor,
    argmax: &Tensor,
    dx: &Tensor,
) -> Result<Program, GpuError> {
    let (inp, out) = (s.input_len(), s.output_len());
    assert!(
        dy.len() >= out,
        "max_pool_backward: dy has {} elements, needs {out}",
        dy.len()
    );
    assert!(
        argmax.len() >= out,
        "max_pool_backward: argmax has {} elements, needs {out}",
        argmax.len()
    );
    assert!(
        dx.len() >= inp,
        "max_pool_backward: dx has {} elements, needs {inp}",
        dx.len()
    );
    check_u32("dx", inp);
    let p = s.params(s.n * s.h);
    let wg = row_grid(s.n * s.h, s.w * s.c);
    Ok(Launch::new(gpu, Kernel::MaxPoolBackward, &p, &[dy, argmax, dx], wg)?.into())
}

/// Average pooling: the mean over the window's real (unpadded) cells.
///
/// # Shapes
/// `x` [N,H,W,C], `y` [N,OH,OW,C].
///
/// # Panics
/// When a tensor is smaller than its shape, or a 'valid' window does not fit.
pub fn avg_pool_forward(
    gpu: &Gpu,
    s: &PoolShape,
    x: &Tensor,
    y: &Tensor,
) -> Result<Program, GpuError> {
    let (inp, out) = (s.input_len(), s.output_len());
    assert!(
        x.len() >= inp,
        "avg_pool_forward: x has {} elements, needs {inp}",
        x.len()
    );
    assert!(
        y.len() >= out,
        "avg_pool_forward: y has {} elements, needs {out}",
        y.len()
    );
    check_u32("x", inp);
    let p = s.params(s.n * s.out_h());
    let wg = row_grid(s.n * s.out_h(), s.out_w() * s.c);
    Ok(Launch::new(gpu, Kernel::AvgPoolForward, &p, &[x, y], wg)?.into())
}

/// Average pooling backward: `dx[i]` = the sum over the windows covering `i` of `dy`
/// divided by that window's count of real cells. Overwrites `dx`.
///
/// # Shapes
/// `dy` [N,OH,OW,C], `dx` [N,H,W,C].
///
/// # Panics
/// When a tensor is smaller than its shape, or a 'valid' window does not fit.
pub fn avg_pool_backward(
    gpu: &Gpu,
    s: &PoolShape,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<Program, GpuError> {
    let (inp, out) = (s.input_len(), s.output_len());
    assert!(
        dy.len() >= out,
        "avg_pool_backward: dy has {} elements, needs {out}",
        dy.len()
    );
    assert!(
        dx.len() >= inp,
        "avg_pool_backward: dx has {} elements, needs {inp}",
        dx.len()
    );
    check_u32("dx", inp);
    let p = s.params(s.n * s.h);
    let wg = row_grid(s.n * s.h, s.w * s.c);
    Ok(Launch::new(gpu, Kernel::AvgPoolBackward, &p, &[dy, dx], wg)?.into())
}

fn global_params(n: usize, h: usize, w: usize, c: usize, total: usize) -> GlobalPoolParams {
    check_u32("the input", n * h * w * c);
    GlobalPoolParams {
        n: n as u32,
        hw: (h * w) as u32,
        c: c as u32,
        total: total as u32,
    }
}

/// Global average pooling: the mean over all H*W cells of each sample and channel.
///
/// # Shapes
/// `x` [N,H,W,C], `y` [N,C].
///
/// # Panics
/// When a tensor is smaller than its shape or H*W is 0.
pub fn global_avg_pool_forward(
    gpu: &Gpu,
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    x: &Tensor,
    y: &Tensor,
) -> Result<Program, GpuError> {
    let (inp, out) = (n * h * w * c, n * c);
    assert!(h * w > 0, "global_avg_pool_forward: empty image {h}x{w}");
    assert!(
        x.len() >= inp,
        "global_avg_pool_forward: x has {} elements, needs {inp}",
        x.len()
    );
    assert!(
        y.len() >= out,
        "global_avg_pool_forward: y has {} elements, needs {out}",
        y.len()
    );
    let p = global_params(n, h, w, c, out);
    let wg = grid_1d(out, WORKGROUP_1D);
    Ok(Launch::new(gpu, Kernel::GlobalAvgPoolForward, &p, &[x, y], wg)?.into())
}

/// Global average pooling backward: `dx[n,h,w,c] = dy[n,c] / (H*W)`. Overwrites `dx`.
///
/// # Shapes
/// `dy` [N,C], `dx` [N,H,W,C].
///
/// # Panics
/// When a tensor is smaller than its shape or H*W is 0.
pub fn global_avg_pool_backward(
    gpu: &Gpu,
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<Program, GpuError> {
    let (inp, out) = (n * h * w * c, n * c);
    assert!(h * w > 0, "global_avg_pool_backward: empty image {h}x{w}");
    assert!(
        dy.len() >= out,
        "global_avg_pool_backward: dy has {} elements, needs {out}",
        dy.len()
    );
    assert!(
        dx.len() >= inp,
        "global_avg_pool_backward: dx has {} elements, needs {inp}",
        dx.len()
    );
    let p = global_params(n, h, w, c, inp);
    let wg = grid_1d(inp, WORKGROUP_1D);
    Ok(Launch::new(gpu, Kernel::GlobalAvgPoolBackward, &p, &[dy, dx], wg)?.into())
}
