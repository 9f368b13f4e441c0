//! Depthwise 2-D convolution (channel multiplier 1, no bias) over NHWC activations with
//! `[KH,KW,C]` kernels: forward, input gradient (a gather) and weight gradient (a
//! deterministic two-stage reduction over the output pixels).

use bytemuck::{Pod, Zeroable};

use crate::gpu::{Gpu, GpuError, Kernel, Launch, Program, Tensor, WORKGROUP_1D, grid_1d};
use crate::ops::Padding;
use crate::ops::matmul::{split_rows, sum_partials};

/// The geometry of one depthwise convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepthwiseShape {
    /// Batch size N.
    pub n: usize,
    /// Input height H.
    pub h: usize,
    /// Input width W.
    pub w: usize,
    /// Channels C (input and output).
    pub c: usize,
    /// Kernel height KH.
    pub kh: usize,
    /// Kernel width KW.
    pub kw: usize,
    /// Stride, both directions.
    pub stride: usize,
    /// 'same' or 'valid'.
    pub padding: Padding,
}

impl DepthwiseShape {
    fn rows(&self) -> (usize, usize) {
        self.padding
            .output_and_pad(self.h, self.kh, self.stride)
            .unwrap_or_else(|| panic!("depthwise: a {}-tall window does not fit {self:?}", self.kh))
    }

    fn cols(&self) -> (usize, usize) {
        self.padding
            .output_and_pad(self.w, self.kw, self.stride)
            .unwrap_or_else(|| panic!("depthwise: a {}-wide window does not fit {self:?}", self.kw))
    }

    /// Output height OH.
    ///
    /// # Panics
    /// With 'valid' padding when the kernel is taller than the input.
    pub fn out_h(&self) -> usize {
        self.rows().0
    }

    /// Output width OW.
    ///
    /// # Panics
    /// With 'valid' padding when the kernel is wider than the input.
    pub fn out_w(&self) -> usize {
        self.cols().0
    }

    /// Forward floating-point operations, 2 per multiply-add, counting every tap (padding
    /// taps included, as frameworks usually do).
    pub fn flops(&self) -> f64 {
        2.0 * (self.n * self.out_h() * self.out_w() * self.c * self.kh * self.kw) as f64
    }

    fn params(&self, rows: usize, parts: usize) -> DepthwiseParams {
        assert!(
            self.stride > 0 && self.kh > 0 && self.kw > 0 && self.c > 0,
            "depthwise: stride, kernel size and channels must be positive in {self:?}"
        );
        let (oh, pad_top) = self.rows();
        let (ow, pad_left) = self.cols();
        let biggest = (self.n * self.h * self.w).max(self.n * oh * ow) * self.c;
        assert!(
            biggest <= u32::MAX as usize,
            "depthwise: {self:?} exceeds the kernels' 32-bit indexing"
        );
        DepthwiseParams {
            n: self.n as u32,
            h: self.h as u32,
            w: self.w as u32,
            c: self.c as u32,
            oh: oh as u32,
            ow: ow as u32,
            kh: self.kh as u32,
            kw: self.kw as u32,
            stride: self.stride as u32,
            pad_top: pad_top as u32,
            pad_left: pad_left as u32,
            rows: rows as u32,
            parts: parts as u32,
            _pad: [0; 3],
        }
    }

    fn x_len(&self) -> usize {
        self.n * self.h * self.w * self.c
    }

    fn y_len(&self) -> usize {
        self.n * self.out_h() * self.out_w() * self.c
    }

    fn w_len(&self) -> usize {
        self.kh * self.kw * self.c
    }
}

/// Params of the `depthwise_*` kernels (one struct for all three).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct DepthwiseParams {
    /// Batch N.
    pub n: u32,
    /// Input height H.
    pub h: u32,
    /// Input width W.
    pub w: u32,
    /// Channels C.
    pub c: u32,
    /// Output height OH.
    pub oh: u32,
    /// Output width OW.
    pub ow: u32,
    /// Kernel height KH.
    pub kh: u32,
    /// Kernel width KW.
    pub kw: u32,
    /// Stride.
    pub stride: u32,
    /// Padding rows before the input.
    pub pad_top: u32,
    /// Padding columns before the input.
    pub pad_left: u32,
    /// Output rows (of N*OH) per chunk (weight gradient only).
    pub rows: u32,
    /// Number of chunks (weight gradient only).
    pub parts: u32,
    /// Padding to a multiple of 16 bytes.
    pub _pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<DepthwiseParams>() == 64);

/// `y = depthwise(x, w)`, no bias.
///
/// # Shapes
/// x `[N,H,W,C]`, w `[KH,KW,C]`, y `[N,OH,OW,C]`; x and y may hold a larger batch.
///
/// # Panics
/// When a tensor is smaller than `s` says (w must match exactly), or a 'valid' window
/// does not fit.
pub fn depthwise_forward(
    gpu: &Gpu,
    s: &DepthwiseShape,
    x: &Tensor,
    w: &Tensor,
    y: &Tensor,
) -> Result<Program, GpuError> {
    assert!(
        x.len() >= s.x_len(),
        "depthwise_forward: x holds {} < {s:?}",
        x.len()
    );
    assert_eq!(
        w.len(),
        s.w_len(),
        "depthwise_forward: w must be [KH,KW,C] for {s:?}"
    );
    assert!(
        y.len() >= s.y_len(),
        "depthwise_forward: y holds {} < {s:?}",
        y.len()
    );
    let params = s.params(0, 0);
    // One invocation per output row and channel.
    let groups = grid_1d(s.n * s.out_h() * s.c, WORKGROUP_1D);
    Ok(Launch::new(gpu, Kernel::DepthwiseForward, &params, &[x, w, y], groups)?.into())
}

/// `dx`, the input gradient of [`depthwise_forward`] (overwrites dx).
///
/// # Shapes
/// dy `[N,OH,OW,C]`, w `[KH,KW,C]`, dx `[N,H,W,C]`; dy and dx may hold a larger batch.
///
/// # Panics
/// As [`depthwise_forward`].
pub fn depthwise_backward_input(
    gpu: &Gpu,
    s: &DepthwiseShape,
    dy: &Tensor,
    w: &Tensor,
    dx: &Tensor,
) -> Result<Program, GpuError> {
    assert!(
        dy.len() >= s.y_len(),
        "depthwise_backward_input: dy holds {} < {s:?}",
        dy.len()
    );
    assert_eq!(
        w.len(),
        s.w_len(),
        "depthwise_backward_input: w must be [KH,KW,C] for {s:?}"
    );
    assert!(
        dx.len() >= s.x_len(),
        "depthwise_backward_input: dx holds {} < {s:?}",
        dx.len()
    );
    let params = s.params(0, 0);
    let groups = grid_1d(s.x_len(), WORKGROUP_1D);
    Ok(Launch::new(
        gpu,
        Kernel::DepthwiseBackwardInput,
        &params,
        &[dy, w, dx],
        groups,
    )?
    .into())
}

/// `dw`, the weight gradient of [`depthwise_forward`] (overwrites dw), reduced over the
/// N*OH output rows in two deterministic stages.
///
/// # Shapes
/// x `[N,H,W,C]`, dy `[N,OH,OW,C]` (both may hold a larger batch), dw `[KH,KW,C]`.
///
/// # Panics
/// As [`depthwise_forward`].
pub fn depthwise_backward_weight(
    gpu: &Gpu,
    s: &DepthwiseShape,
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
) -> Result<Program, GpuError> {
    assert!(
        x.len() >= s.x_len(),
        "depthwise_backward_weight: x holds {} < {s:?}",
        x.len()
    );
    assert!(
        dy.len() >= s.y_len(),
        "depthwise_backward_weight: dy holds {} < {s:?}",
        dy.len()
    );
    assert_eq!(
        dw.len(),
        s.w_len(),
        "depthwise_backward_weight: dw must be [KH,KW,C] for {s:?}"
    );

    let taps = s.w_len();
    // Chunks of whole output rows, so that the kernel walks each row without branching,
    // sized like a chunk of pixels would be, so that a chunk's rows stay in cache.
    let (oh, ow) = (s.out_h(), s.out_w());
    let (pixels, _) = split_rows(gpu, s.n * oh * ow, taps, taps);
    let rows = pixels.div_ceil(ow).max(1);
    let parts = (s.n * oh).div_ceil(rows).max(1);
    let params = s.params(rows, parts);
    let groups = grid_1d(parts * taps, WORKGROUP_1D);
    if parts == 1 {
        return Ok(Launch::new(
            gpu,
            Kernel::DepthwiseBackwardWeight,
            &params,
            &[x, dy, dw],
            groups,
        )?
        .into());
    }
    let partial = Tensor::new(gpu, &[parts, s.kh, s.kw, s.c])?;
    let mut prog = Program::new();
    prog.push(Launch::new(
        gpu,
        Kernel::DepthwiseBackwardWeight,
        &params,
        &[x, dy, &partial],
        groups,
    )?);
    prog.push(sum_partials(gpu, taps, parts, &partial, dw)?);
    prog.keep(partial);
    Ok(prog)
}
