// l2_backward: dw += k * w with k = 2 * coef, the gradient of the L2 term coef * sum(w^2)
// added to the gradient the kernel's backward already wrote.
//
// Bindings (group 0):
//   0 uniform            params: Params { n: element count, k: 2 * coef }
//   1 storage read       w: array<f32>, [n]
//   2 storage read_write dw: array<f32>, [n]
// One invocation per element, workgroup 256, grid as in relu_forward.wgsl.

struct Params {
    n: u32,
    k: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= params.n) {
        return;
    }
    dw[i] = dw[i] + params.k * w[i];
}
