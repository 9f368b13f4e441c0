//! Matrix multiply for dense layers and 1x1 stride-1 convolutions (an NHWC activation seen
//! as `[N*H*W, C]`), its input and weight gradients, and the bias gradient.
//!
//! The forward pass has two variants: register blocking without workgroup memory, fastest
//! on CPU adapters (lavapipe), and workgroup-memory tiles for real GPUs. Reductions over
//! the rows (weight and bias gradients) run in two deterministic stages: partial sums per
//! chunk of rows into a scratch tensor, then a fixed-order sum of the chunks.

use bytemuck::{Pod, Zeroable};

use crate::gpu::{Gpu, GpuError, Kernel, Launch, Program, Tensor, WORKGROUP_1D, grid_1d};

/// Params of `matmul_forward*`, `matmul_backward_input` and `matmul_backward_weight`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MatmulParams {
    /// Rows M of x and y.
    pub m: u32,
    /// Inner dimension K.
    pub k: u32,
    /// Columns N of w and y.
    pub n: u32,
    /// Rows per chunk (backward weight only; 0 elsewhere).
    pub rows: u32,
}
const _: () = assert!(std::mem::size_of::<MatmulParams>() == 16);

/// Params of `bias_backward`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BiasParams {
    /// Rows M of dy.
    pub m: u32,
    /// Columns N of dy.
    pub n: u32,
    /// Rows per chunk.
    pub rows: u32,
    /// Number of chunks S.
    pub parts: u32,
}
const _: () = assert!(std::mem::size_of::<BiasParams>() == 16);

/// Params of `matmul_sum_partials`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct SumPartialsParams {
    /// Length L of one partial (and of the output).
    pub len: u32,
    /// Number of partials S.
    pub parts: u32,
    /// Padding to the 16-byte uniform size.
    pub _pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<SumPartialsParams>() == 16);

/// Which forward kernel computes `y = x w + b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulVariant {
    /// 4x4 outputs per invocation, scalar loads, no workgroup memory
    /// (`matmul_forward.wgsl`): any sizes; for CPU adapters, where barriers cost more than
    /// they save.
    Registers,
    /// As [`MatmulVariant::Registers`] with vec4 loads and stores
    /// (`matmul_forward_vec4.wgsl`): K and N multiples of 4 only; about a quarter faster on
    /// lavapipe.
    RegistersVec4,
    /// 64x64 tiles staged in workgroup memory (`matmul_forward_tiled.wgsl`): any sizes; for
    /// real GPUs.
    Tiled,
}

impl MatmulVariant {
    /// The variant [`matmul_forward`] uses on `gpu` for a `[.,K] x [K,N]` product: tiles on
    /// real GPUs; on CPU adapters, vec4 register blocking where K and N allow it.
    pub fn choose(gpu: &Gpu, k: usize, n: usize) -> Self {
        if !gpu.is_cpu {
            MatmulVariant::Tiled
        } else if k.is_multiple_of(4) && n.is_multiple_of(4) {
            MatmulVariant::RegistersVec4
        } else {
            MatmulVariant::Registers
        }
    }
}

/// Floating-point operations of one `[M,K] x [K,N]` product (2 per multiply-add), the bias
/// not counted.
pub fn matmul_flops(m: usize, k: usize, n: usize) -> f64 {
    2.0 * m as f64 * k as f64 * n as f64
}

/// Largest dimension of a dispatch.
const MAX_GROUPS: u64 = 65_535;

/// Splits `blocks` workgroups over y and z so neither exceeds the dispatch limit; shaders
/// rebuild the block as `workgroup_id.y + workgroup_id.z * num_workgroups.y`.
fn split_yz(blocks: usize) -> (u32, u32) {
    let blocks = blocks as u64;
    if blocks <= MAX_GROUPS {
        (blocks as u32, 1)
    } else {
        let z = blocks.div_ceil(MAX_GROUPS);
        (blocks.div_ceil(z) as u32, z as u32)
    }
}

/// Scratch elements a two-stage reduction may use, at most (16 MiB): every layer keeps its
/// own scratch, so it must stay small.
const MAX_PARTIAL_ELEMS: usize = 4 << 20;

/// Invocations stage 1 of a reduction aims for: enough to fill a large GPU.
const TARGET_INVOCATIONS: usize = 1 << 16;

/// How a reduction over `total` rows, producing `len` sums with `per_part` invocations per
/// chunk, is cut into chunks: rows per chunk and the number of chunks. Enough chunks to
/// reach [`TARGET_INVOCATIONS`], but no more than about sqrt(total) (chunks of at least 64
/// rows), so that stage 2's serial sums stay as short as stage 1's; capped by scratch
/// memory, the device's binding limit and the dispatch limit.
pub(crate) fn split_rows(gpu: &Gpu, total: usize, len: usize, per_part: usize) -> (usize, usize) {
    let balanced = total.div_ceil(((total as f64).sqrt().ceil() as usize).max(64));
    let limit = (gpu.max_binding_bytes() / 4) as usize;
    let memory = (MAX_PARTIAL_ELEMS.min(limit) / len.max(1)).min(MAX_GROUPS as usize);
    let wanted = TARGET_INVOCATIONS.div_ceil(per_part.max(1));
    let parts = wanted.min(balanced).min(memory).max(1);
    let rows = total.div_ceil(parts).max(1);
    (rows, total.div_ceil(rows).max(1))
}

/// Stage 2 of a two-stage reduction: `out[j] = sum_s partial[s, j]` in order of `s`.
pub(crate) fn sum_partials(
    gpu: &Gpu,
    len: usize,
    parts: usize,
    partial: &Tensor,
    out: &Tensor,
) -> Result<Launch, GpuError> {
    let params = SumPartialsParams {
        len: len as u32,
        parts: parts as u32,
        _pad: [0; 2],
    };
    Launch::new(
        gpu,
        Kernel::MatmulSumPartials,
        &params,
        &[partial, out],
        grid_1d(len, WORKGROUP_1D),
    )
}

fn check_u32(what: &str, elems: usize) {
    assert!(
        elems <= u32::MAX as usize,
        "{what}: {elems} elements exceed the kernels' 32-bit indexing"
    );
}

/// `y = x w + b` with the variant suited to `gpu` and the sizes ([`MatmulVariant::choose`]).
///
/// # Shapes
/// x `[M,K]`, w `[K,N]`, b `[N]`, y `[M,N]`; x and y may hold more rows than `m`.
///
/// # Panics
/// When a tensor is smaller than its shape says (w and b must match exactly).
#[allow(clippy::too_many_arguments)]
pub fn matmul_forward(
    gpu: &Gpu,
    m: usize,
    k: usize,
    n: usize,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    y: &Tensor,
) -> Result<Program, GpuError> {
    matmul_forward_variant(gpu, MatmulVariant::choose(gpu, k, n), m, k, n, x, w, b, y)
}

/// [`matmul_forward`] with a chosen kernel variant (for tests and benchmarks).
///
/// # Panics
/// As [`matmul_forward`], and for [`MatmulVariant::RegistersVec4`] when K or N is not a
/// multiple of 4.
#[allow(clippy::too_many_arguments)]
pub fn matmul_forward_variant(
    gpu: &Gpu,
    variant: MatmulVariant,
    m: usize,
    k: usize,
    n: usize,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    y: &Tensor,
) -> Result<Program, GpuError> {
    assert!(
        k > 0 && n > 0,
        "matmul_forward: K={k} and N={n} must be positive"
    );
    assert!(
        x.len() >= m * k,
        "matmul_forward: x holds {} < M*K = {m}*{k}",
        x.len()
    );
    assert_eq!(
        w.len(),
        k * n,
        "matmul_forward: w must be [K,N] = [{k},{n}]"
    );
    assert_eq!(b.len(), n, "matmul_forward: b must be [N] = [{n}]");
    assert!(
        y.len() >= m * n,
        "matmul_forward: y holds {} < M*N = {m}*{n}",
        y.len()
    );
    check_u32("matmul_forward", (m * k).max(m * n));

    let params = MatmulParams {
        m: m as u32,
        k: k as u32,
        n: n as u32,
        rows: 0,
    };
    let (kernel, tile) = match variant {
        MatmulVariant::Registers => (Kernel::MatmulForward, 32),
        MatmulVariant::RegistersVec4 => {
            assert!(
                k.is_multiple_of(4) && n.is_multiple_of(4),
                "matmul_forward: the vec4 variant needs K={k} and N={n} to be multiples of 4"
            );
            (Kernel::MatmulForwardVec4, 32)
        }
        MatmulVariant::Tiled => (Kernel::MatmulForwardTiled, 64),
    };
    let (gy, gz) = split_yz(m.div_ceil(tile));
    let groups = [n.div_ceil(tile) as u32, gy, gz];
    Ok(Launch::new(gpu, kernel, &params, &[x, w, b, y], groups)?.into())
}

/// `dx = dy w^T` (overwrites dx): workgroup-memory tiles on real GPUs, register blocking
/// on CPU adapters.
///
/// # Shapes
/// dy `[M,N]`, w `[K,N]`, dx `[M,K]`; dy and dx may hold more rows than `m`.
///
/// # Panics
/// When a tensor is smaller than its shape says (w must match exactly).
pub fn matmul_backward_input(
    gpu: &Gpu,
    m: usize,
    k: usize,
    n: usize,
    dy: &Tensor,
    w: &Tensor,
    dx: &Tensor,
) -> Result<Program, GpuError> {
    let variant = if gpu.is_cpu {
        MatmulVariant::Registers
    } else {
        MatmulVariant::Tiled
    };
    matmul_backward_input_variant(gpu, variant, m, k, n, dy, w, dx)
}

/// [`matmul_backward_input`] with a chosen kernel (for tests and benchmarks):
/// `matmul_backward_input.wgsl` for the register variants (there is no vec4 form; it runs
/// as [`MatmulVariant::Registers`]), `matmul_backward_input_tiled.wgsl` for
/// [`MatmulVariant::Tiled`].
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward_input_variant(
    gpu: &Gpu,
    variant: MatmulVariant,
    m: usize,
    k: usize,
    n: usize,
    dy: &Tensor,
    w: &Tensor,
    dx: &Tensor,
) -> Result<Program, GpuError> {
    assert!(
        k > 0 && n > 0,
        "matmul_backward_input: K={k} and N={n} must be positive"
    );
    assert!(
        dy.len() >= m * n,
        "matmul_backward_input: dy holds {} < M*N = {m}*{n}",
        dy.len()
    );
    assert_eq!(
        w.len(),
        k * n,
        "matmul_backward_input: w must be [K,N] = [{k},{n}]"
    );
    assert!(
        dx.len() >= m * k,
        "matmul_backward_input: dx holds {} < M*K = {m}*{k}",
        dx.len()
    );
    check_u32("matmul_backward_input", (m * k).max(m * n));

    let params = MatmulParams {
        m: m as u32,
        k: k as u32,
        n: n as u32,
        rows: 0,
    };
    let (kernel, tile) = match variant {
        MatmulVariant::Registers | MatmulVariant::RegistersVec4 => {
            (Kernel::MatmulBackwardInput, 32)
        }
        MatmulVariant::Tiled => (Kernel::MatmulBackwardInputTiled, 64),
    };
    let (gy, gz) = split_yz(m.div_ceil(tile));
    let groups = [k.div_ceil(tile) as u32, gy, gz];
    Ok(Launch::new(gpu, kernel, &params, &[dy, w, dx], groups)?.into())
}

/// `dw = x^T dy` (overwrites dw), reduced over M in two deterministic stages.
///
/// # Shapes
/// x `[M,K]`, dy `[M,N]`, dw `[K,N]`; x and dy may hold more rows than `m`.
///
/// # Panics
/// When a tensor is smaller than its shape says (dw must match exactly).
pub fn matmul_backward_weight(
    gpu: &Gpu,
    m: usize,
    k: usize,
    n: usize,
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
) -> Result<Program, GpuError> {
    assert!(
        k > 0 && n > 0,
        "matmul_backward_weight: K={k} and N={n} must be positive"
    );
    assert!(
        x.len() >= m * k,
        "matmul_backward_weight: x holds {} < M*K",
        x.len()
    );
    assert!(
        dy.len() >= m * n,
        "matmul_backward_weight: dy holds {} < M*N",
        dy.len()
    );
    assert_eq!(
        dw.len(),
        k * n,
        "matmul_backward_weight: dw must be [K,N] = [{k},{n}]"
    );
    assert!(
        k.div_ceil(32) as u64 <= MAX_GROUPS && n.div_ceil(32) as u64 <= MAX_GROUPS,
        "matmul_backward_weight: K={k} or N={n} too large for one dispatch"
    );
    check_u32("matmul_backward_weight", (m * k).max(m * n));

    let (rows, parts) = split_rows(gpu, m, k * n, k.div_ceil(4) * n.div_ceil(4));
    let params = MatmulParams {
        m: m as u32,
        k: k as u32,
        n: n as u32,
        rows: rows as u32,
    };
    let groups = [n.div_ceil(32) as u32, k.div_ceil(32) as u32, parts as u32];
    if parts == 1 {
        return Ok(Launch::new(
            gpu,
            Kernel::MatmulBackwardWeight,
            &params,
            &[x, dy, dw],
            groups,
        )?
        .into());
    }
    let partial = Tensor::new(gpu, &[parts, k, n])?;
    let mut prog = Program::new();
    prog.push(Launch::new(
        gpu,
        Kernel::MatmulBackwardWeight,
        &params,
        &[x, dy, &partial],
        groups,
    )?);
    prog.push(sum_partials(gpu, k * n, parts, &partial, dw)?);
    prog.keep(partial);
    Ok(prog)
}

/// `db[j] = sum_i dy[i, j]`, the bias gradient (overwrites db), reduced over M in two
/// deterministic stages. A convolution's bias gradient is this over dy seen as
/// `[N*OH*OW, K]`.
///
/// # Shapes
/// dy `[M,N]` (may hold more rows than `m`), db `[N]`.
///
/// # Panics
/// When dy is smaller than `m*n` or db is not `[N]`.
pub fn bias_backward(
    gpu: &Gpu,
    m: usize,
    n: usize,
    dy: &Tensor,
    db: &Tensor,
) -> Result<Program, GpuError> {
    assert!(n > 0, "bias_backward: N must be positive");
    assert!(
        dy.len() >= m * n,
        "bias_backward: dy holds {} < M*N = {m}*{n}",
        dy.len()
    );
    assert_eq!(db.len(), n, "bias_backward: db must be [N] = [{n}]");
    check_u32("bias_backward", m * n);

    let (rows, parts) = split_rows(gpu, m, n, n);
    let params = BiasParams {
        m: m as u32,
        n: n as u32,
        rows: rows as u32,
        parts: parts as u32,
    };
    let groups = grid_1d(parts * n, WORKGROUP_1D);
    if parts == 1 {
        return Ok(Launch::new(gpu, Kernel::BiasBackward, &params, &[dy, db], groups)?.into());
    }
    let partial = Tensor::new(gpu, &[parts, n])?;
    let mut prog = Program::new();
    prog.push(Launch::new(
        gpu,
        Kernel::BiasBackward,
        &params,
        &[dy, &partial],
        groups,
    )?);
    prog.push(sum_partials(gpu, n, parts, &partial, db)?);
    prog.keep(partial);
    Ok(prog)
}
