//! 2-D convolution, f32, NHWC activations and HWIO (`[KH,KW,C,K]`) kernels: forward with
//! bias, and the gradients with respect to the input and the weights.
//!
//! All three kernels are implicit GEMMs in which every invocation keeps a 4x4 output tile
//! in registers. The forward and input-gradient kernels come in two variants
//! ([`ConvVariant`]): operands read straight from storage (fastest on CPU adapters such as
//! lavapipe, where barriers cost more than they save) or staged through workgroup memory in
//! 32x32 blocks (meant for real GPUs). The weight gradient, register-blocked only, reduces
//! over N*OH*OW terms: it splits that sum into fixed row ranges written to a scratch tensor
//! and adds them in a second, fixed-order pass, so results are bit-identical from run to run.

use bytemuck::{Pod, Zeroable};

use crate::gpu::{Gpu, GpuError, Kernel, Launch, Program, Tensor, WORKGROUP_1D, grid_1d};
use crate::ops::Padding;

/// Invocations per workgroup of the three convolution kernels.
const CONV_WORKGROUP: u32 = 64;

/// Output elements per invocation side: each invocation computes a 4x4 tile.
const TILE: usize = 4;

/// Threads per workgroup of the tiled kernels, and the output block each workgroup covers.
const TILED_WORKGROUP: u32 = 64;
const TILED_BLOCK: usize = 32;

/// Which implementation of the forward and input-gradient kernels to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvVariant {
    /// Each invocation reads its operands from storage buffers; no workgroup memory.
    Registers,
    /// Operands staged through workgroup memory in 32x32 blocks.
    Tiled,
}

impl ConvVariant {
    /// The variant expected to be faster on `gpu`: [`ConvVariant::Registers`] on CPU
    /// adapters, [`ConvVariant::Tiled`] on real GPUs.
    pub fn for_gpu(gpu: &Gpu) -> Self {
        if gpu.is_cpu {
            ConvVariant::Registers
        } else {
            ConvVariant::Tiled
        }
    }
}

/// The shape of one 2-D convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dShape {
    /// Batch size (samples processed; tensors may hold more).
    pub n: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Input channels.
    pub c: usize,
    /// Output channels.
    pub k: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride, the same along both axes.
    pub stride: usize,
    /// 'same' or 'valid'.
    pub padding: Padding,
}

impl Conv2dShape {
    /// Output height.
    ///
    /// # Panics
    /// When a 'valid' window does not fit or the stride is 0.
    pub fn out_h(&self) -> usize {
        self.rows().0
    }

    /// Output width.
    ///
    /// # Panics
    /// When a 'valid' window does not fit or the stride is 0.
    pub fn out_w(&self) -> usize {
        self.cols().0
    }

    /// Forward floating-point operations: 2 * N*OH*OW*K*KH*KW*C (multiply-adds counted as
    /// two, padding taps included, bias not).
    pub fn flops(&self) -> f64 {
        2.0 * (self.n * self.out_h() * self.out_w()) as f64
            * (self.k * self.kh * self.kw * self.c) as f64
    }

    fn rows(&self) -> (usize, usize) {
        assert!(self.stride > 0, "conv2d: stride must be positive: {self:?}");
        self.padding
            .output_and_pad(self.h, self.kh, self.stride)
            .unwrap_or_else(|| panic!("conv2d: the kernel is taller than the input: {self:?}"))
    }

    fn cols(&self) -> (usize, usize) {
        assert!(self.stride > 0, "conv2d: stride must be positive: {self:?}");
        self.padding
            .output_and_pad(self.w, self.kw, self.stride)
            .unwrap_or_else(|| panic!("conv2d: the kernel is wider than the input: {self:?}"))
    }

    fn x_len(&self) -> usize {
        self.n * self.h * self.w * self.c
    }

    fn y_len(&self) -> usize {
        self.n * self.out_h() * self.out_w() * self.k
    }

    fn w_len(&self) -> usize {
        self.kh * self.kw * self.c * self.k
    }

    fn check(&self, op: &str) {
        assert!(
            self.n > 0 && self.h > 0 && self.w > 0 && self.c > 0 && self.k > 0,
            "{op}: every dimension must be positive: {self:?}"
        );
        assert!(
            self.kh > 0 && self.kw > 0,
            "{op}: the kernel must be at least 1x1: {self:?}"
        );
        // Flat indices are u32 in the shaders.
        let biggest = self.x_len().max(self.y_len()).max(self.w_len());
        assert!(
            biggest < u32::MAX as usize / 2,
            "{op}: tensors too large for 32-bit indexing: {self:?}"
        );
    }
}

/// Params of the three convolution kernels (WGSL `Params` in `conv2d_*.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct Conv2dParams {
    /// Batch size.
    pub n: u32,
    /// Input height.
    pub h: u32,
    /// Input width.
    pub w: u32,
    /// Input channels.
    pub c: u32,
    /// Output channels.
    pub k: u32,
    /// Kernel height.
    pub kh: u32,
    /// Kernel width.
    pub kw: u32,
    /// Stride.
    pub stride: u32,
    /// Rows of padding before the input.
    pub pad_h: u32,
    /// Columns of padding before the input.
    pub pad_w: u32,
    /// Output height.
    pub out_h: u32,
    /// Output width.
    pub out_w: u32,
    /// Weight gradient: output rows (n, oh) summed per split.
    pub split_rows: u32,
    /// Weight gradient: number of splits (partial sums).
    pub splits: u32,
    /// Padding to a multiple of 16 bytes.
    pub _pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<Conv2dParams>() == 64);

/// Params of `conv2d_backward_weight_reduce.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ReduceParams {
    /// Elements of dw.
    pub len: u32,
    /// Partial sums per element.
    pub splits: u32,
    /// Padding to 16 bytes.
    pub _pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<ReduceParams>() == 16);

fn params(s: &Conv2dShape, split_rows: usize, splits: usize) -> Conv2dParams {
    let (out_h, pad_h) = s.rows();
    let (out_w, pad_w) = s.cols();
    Conv2dParams {
        n: s.n as u32,
        h: s.h as u32,
        w: s.w as u32,
        c: s.c as u32,
        k: s.k as u32,
        kh: s.kh as u32,
        kw: s.kw as u32,
        stride: s.stride as u32,
        pad_h: pad_h as u32,
        pad_w: pad_w as u32,
        out_h: out_h as u32,
        out_w: out_w as u32,
        split_rows: split_rows as u32,
        splits: splits as u32,
        _pad: [0; 2],
    }
}

/// Workgroups covering `tiles` invocations of 64 (register variant: one 4x4 tile each).
fn tile_grid(tiles: usize) -> [u32; 3] {
    grid_1d(tiles, CONV_WORKGROUP)
}

/// Workgroups for the tiled variant: one per 32x32 output block. The shaders rebuild the
/// block index as `wid.x + wid.y * nwg.x`.
fn block_grid(blocks: usize) -> [u32; 3] {
    grid_1d(blocks * TILED_WORKGROUP as usize, TILED_WORKGROUP)
}

/// `y = conv2d(x, w) + b`, with the variant [`ConvVariant::for_gpu`] picks.
///
/// # Shapes
/// `x` `[N,H,W,C]`, `w` `[KH,KW,C,K]`, `b` `[K]`, `y` `[N,OH,OW,K]` (only the first N
/// samples of `x` and `y` are touched).
///
/// # Panics
/// When a tensor is too small for `s`, or `s` is degenerate.
pub fn conv2d_forward(
    gpu: &Gpu,
    s: &Conv2dShape,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    y: &Tensor,
) -> Result<Program, GpuError> {
    conv2d_forward_variant(gpu, ConvVariant::for_gpu(gpu), s, x, w, b, y)
}

/// [`conv2d_forward`] with a chosen variant (tests and benchmarks run both everywhere).
pub fn conv2d_forward_variant(
    gpu: &Gpu,
    variant: ConvVariant,
    s: &Conv2dShape,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    y: &Tensor,
) -> Result<Program, GpuError> {
    s.check("conv2d_forward");
    assert!(
        x.len() >= s.x_len(),
        "conv2d_forward: x holds {} < {s:?}",
        x.len()
    );
    assert_eq!(
        w.len(),
        s.w_len(),
        "conv2d_forward: w size does not match {s:?}"
    );
    assert_eq!(b.len(), s.k, "conv2d_forward: b size does not match {s:?}");
    assert!(
        y.len() >= s.y_len(),
        "conv2d_forward: y holds {} < {s:?}",
        y.len()
    );
    let m = s.n * s.out_h() * s.out_w();
    let p = params(s, 0, 0);
    let (kernel, grid) = match variant {
        ConvVariant::Registers => (
            Kernel::Conv2dForward,
            tile_grid(m.div_ceil(TILE) * s.k.div_ceil(TILE)),
        ),
        ConvVariant::Tiled => (
            Kernel::Conv2dForwardTiled,
            block_grid(m.div_ceil(TILED_BLOCK) * s.k.div_ceil(TILED_BLOCK)),
        ),
    };
    Ok(Launch::new(gpu, kernel, &p, &[x, w, b, y], grid)?.into())
}

/// `dx` = the gradient of `sum(dy * conv2d(x, w))` with respect to `x`, with the variant
/// [`ConvVariant::for_gpu`] picks. Overwrites `dx`.
///
/// # Shapes
/// `dy` `[N,OH,OW,K]`, `w` `[KH,KW,C,K]`, `dx` `[N,H,W,C]`.
///
/// # Panics
/// When a tensor is too small for `s`, or `s` is degenerate.
pub fn conv2d_backward_input(
    gpu: &Gpu,
    s: &Conv2dShape,
    dy: &Tensor,
    w: &Tensor,
    dx: &Tensor,
) -> Result<Program, GpuError> {
    conv2d_backward_input_variant(gpu, ConvVariant::for_gpu(gpu), s, dy, w, dx)
}

/// [`conv2d_backward_input`] with a chosen variant (tests and benchmarks run both).
pub fn conv2d_backward_input_variant(
    gpu: &Gpu,
    variant: ConvVariant,
    s: &Conv2dShape,
    dy: &Tensor,
    w: &Tensor,
    dx: &Tensor,
) -> Result<Program, GpuError> {
    s.check("conv2d_backward_input");
    assert!(
        dy.len() >= s.y_len(),
        "conv2d_backward_input: dy holds {} < {s:?}",
        dy.len()
    );
    assert_eq!(
        w.len(),
        s.w_len(),
        "conv2d_backward_input: w size does not match {s:?}"
    );
    assert!(
        dx.len() >= s.x_len(),
        "conv2d_backward_input: dx holds {} < {s:?}",
        dx.len()
    );
    let m = s.n * s.h * s.w;
    let p = params(s, 0, 0);
    let (kernel, grid) = match variant {
        ConvVariant::Registers => (
            Kernel::Conv2dBackwardInput,
            tile_grid(m.div_ceil(TILE) * s.c.div_ceil(TILE)),
        ),
        ConvVariant::Tiled => (
            Kernel::Conv2dBackwardInputTiled,
            block_grid(m.div_ceil(TILED_BLOCK) * s.c.div_ceil(TILED_BLOCK)),
        ),
    };
    Ok(Launch::new(gpu, kernel, &p, &[dy, w, dx], grid)?.into())
}

/// How many row ranges the weight gradient's reduction over N*OH rows is cut into: enough
/// invocations to fill the device (few on a CPU adapter, many on a GPU), each still summing
/// a few rows. Depends only on the shape and the adapter kind, so a given device always
/// sums in the same order.
fn weight_splits(gpu: &Gpu, s: &Conv2dShape) -> usize {
    let tiles = s.kh * s.kw * s.c.div_ceil(TILE) * s.k.div_ceil(TILE);
    let target: usize = if gpu.is_cpu { 2048 } else { 65_536 };
    let rows = s.n * s.out_h();
    let min_rows_per_split = 4;
    target
        .div_ceil(tiles)
        .min(rows.div_ceil(min_rows_per_split))
        .max(1)
}

/// `dw` = the gradient of `sum(dy * conv2d(x, w))` with respect to `w`. Overwrites `dw`.
///
/// # Shapes
/// `x` `[N,H,W,C]`, `dy` `[N,OH,OW,K]`, `dw` `[KH,KW,C,K]`.
///
/// # Panics
/// When a tensor is too small for `s`, or `s` is degenerate.
pub fn conv2d_backward_weight(
    gpu: &Gpu,
    s: &Conv2dShape,
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
) -> Result<Program, GpuError> {
    s.check("conv2d_backward_weight");
    assert!(
        x.len() >= s.x_len(),
        "conv2d_backward_weight: x holds {} < {s:?}",
        x.len()
    );
    assert!(
        dy.len() >= s.y_len(),
        "conv2d_backward_weight: dy holds {} < {s:?}",
        dy.len()
    );
    assert_eq!(
        dw.len(),
        s.w_len(),
        "conv2d_backward_weight: dw size does not match {s:?}"
    );
    let rows = s.n * s.out_h();
    let wanted = weight_splits(gpu, s);
    let split_rows = rows.div_ceil(wanted);
    let splits = rows.div_ceil(split_rows);
    let tiles = splits * s.kh * s.kw * s.c.div_ceil(TILE) * s.k.div_ceil(TILE);
    let p = params(s, split_rows, splits);
    if splits == 1 {
        let grid = tile_grid(tiles);
        let launch = Launch::new(gpu, Kernel::Conv2dBackwardWeight, &p, &[x, dy, dw], grid)?;
        return Ok(launch.into());
    }

    let part = Tensor::new(gpu, &[splits, s.kh, s.kw, s.c, s.k])?;
    let mut prog = Program::new();
    prog.push(Launch::new(
        gpu,
        Kernel::Conv2dBackwardWeight,
        &p,
        &[x, dy, &part],
        tile_grid(tiles),
    )?);
    let len = s.w_len();
    let rp = ReduceParams {
        len: len as u32,
        splits: splits as u32,
        _pad: [0; 2],
    };
    prog.push(Launch::new(
        gpu,
        Kernel::Conv2dBackwardWeightReduce,
        &rp,
        &[&part, dw],
        grid_1d(len, WORKGROUP_1D),
    )?);
    prog.keep(part);
    Ok(prog)
}
