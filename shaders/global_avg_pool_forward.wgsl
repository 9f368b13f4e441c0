// global_avg_pool_forward: y[n,c] = mean over the H*W cells of x[n,:,:,c].
//
// Bindings (group 0):
//   0 uniform            params: Params { n, hw = H*W, c, total = N*C }
//   1 storage read       x: array<f32>, [N,H,W,C] (seen as [N,HW,C])
//   2 storage read_write y: array<f32>, [N,C]
// One invocation per output element (sums its H*W cells in order), workgroup 256, grid
// split over x and y (grid_1d): flat index = gid.x + gid.y * num_workgroups.x * 256.

struct Params {
    n: u32,
    hw: u32,
    c: u32,
    total: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= params.total) {
        return;
    }
    let c = i % params.c;
    let n = i / params.c;
    let base = n * params.hw * params.c + c;
    var acc = 0.0;
    for (var p = 0u; p < params.hw; p++) {
        acc += x[base + p * params.c];
    }
    y[i] = acc / f32(params.hw);
}
