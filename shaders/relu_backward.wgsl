// relu_backward: dx = dy where y > 0, else 0 (y is relu_forward's output, so y > 0
// exactly where x > 0).
//
// Bindings (group 0):
//   0 uniform            params: Params { n: element count }
//   1 storage read       y: array<f32>, [n]
//   2 storage read       dy: array<f32>, [n]
//   3 storage read_write dx: array<f32>, [n]
// One invocation per element, workgroup 256, grid as in relu_forward.wgsl.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= params.n) {
        return;
    }
    dx[i] = select(0.0, dy[i], y[i] > 0.0);
}
