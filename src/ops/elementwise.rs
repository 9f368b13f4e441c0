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
