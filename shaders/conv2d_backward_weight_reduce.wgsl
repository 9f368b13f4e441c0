// conv2d_backward_weight_reduce: dw[i] = sum over s of part[s*len + i], s in increasing
// order, so the sum is the same on every run. Second stage of conv2d_backward_weight.
//
// Bindings (group 0):
//   0 uniform            params: Params { len: elements of dw, splits: partial sums }
//   1 storage read       part: array<f32>, [SPLITS,KH,KW,C,K]
//   2 storage read_write dw: array<f32>, [KH,KW,C,K]
// One invocation per element of dw, workgroup 256. The grid is split over x and y
// (grid_1d in src/gpu/launch.rs): flat index = gid.x + gid.y * num_workgroups.x * 256.

struct Params {
    len: u32,
    splits: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= params.len) {
        return;
    }
    var sum = 0.0;
    for (var s = 0u; s < params.splits; s++) {
        sum += part[s * params.len + i];
    }
    dw[i] = sum;
}
