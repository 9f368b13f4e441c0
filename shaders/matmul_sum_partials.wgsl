// matmul_sum_partials: out[j] = sum over s = 0, 1, ..., S-1 (in that order) of
// partial[s,j], for j < L. Stage 2 of the deterministic two-stage reductions
// (matmul_backward_weight, bias_backward, depthwise_backward_weight).
//
// Bindings (group 0):
//   0 uniform            params: Params { len: L, parts: S }
//   1 storage read       partial: array<f32>, [S,L]
//   2 storage read_write out: array<f32>, [L]
// One invocation per output element, workgroup 256. The grid is split over x and y
// (grid_1d in src/gpu/launch.rs): j = gid.x + gid.y * num_workgroups.x * 256.

struct Params {
    len: u32,
    parts: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = gid.x + gid.y * nwg.x * 256u;
    if (j >= params.len) {
        return;
    }
    var sum = 0.0;
    var o = j;
    for (var s = 0u; s < params.parts; s++) {
        sum += partial[o];
        o += params.len;
    }
    out[j] = sum;
}
