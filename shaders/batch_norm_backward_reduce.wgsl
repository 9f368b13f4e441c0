// batch_norm_backward_reduce: first stage of the batch-norm parameter gradients. For
// each chunk of chunk_rows rows of x and dy (seen as [M,C]) and each channel: sum(dy)
// and sum(dy * xhat), xhat = (x - saved_mean) * saved_invstd.
//
// Bindings (group 0):
//   0 uniform            params: Params (below)
//   1 storage read       x: array<f32>, [M,C]
//   2 storage read       dy: array<f32>, [M,C]
//   3 storage read       saved_mean: array<f32>, [C]
//   4 storage read       saved_invstd: array<f32>, [C]
//   5 storage read_write partial: array<f32>, [2,CHUNKS,C]: [0] sum(dy), [1] sum(dy*xhat)
// Params: m, c, chunk_rows, chunks = ceil(m / chunk_rows); the others are unused here.
// One invocation per (chunk, channel), channel fastest, workgroup 256, grid split over x
// and y (grid_1d): flat index = gid.x + gid.y * num_workgroups.x * 256.

struct Params {
    m: u32,
    c: u32,
    chunk_rows: u32,
    chunks: u32,
    total: u32,
    mode: u32,
    momentum: f32,
    epsilon: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> saved_mean: array<f32>;
@group(0) @binding(4) var<storage, read> saved_invstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> partial: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= params.chunks * params.c) {
        return;
    }
    let c = i % params.c;
    let k = i / params.c;
    let r0 = k * params.chunk_rows;
    let r1 = min(r0 + params.chunk_rows, params.m);
    let mean = saved_mean[c];
    let invstd = saved_invstd[c];
    var sum_dy = 0.0;
    var sum_dy_xhat = 0.0;
    for (var r = r0; r < r1; r++) {
        let at = r * params.c + c;
        let g = dy[at];
        sum_dy += g;
        sum_dy_xhat += g * ((x[at] - mean) * invstd);
    }
    partial[i] = sum_dy;
    partial[params.chunks * params.c + i] = sum_dy_xhat;
}
