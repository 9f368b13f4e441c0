// relu_forward: y = max(x, 0), elementwise over any shape.
//
// Bindings (group 0):
//   0 uniform            params: Params { n: element count }
//   1 storage read       x: array<f32>, [n]
//   2 storage read_write y: array<f32>, [n]
// One invocation per element, workgroup 256. The grid is split over x and y (grid_1d in
// src/gpu/launch.rs): flat index = gid.x + gid.y * num_workgroups.x * 256.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= params.n) {
        return;
    }
    y[i] = max(x[i], 0.0);
}
