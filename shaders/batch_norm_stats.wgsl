// batch_norm_stats: first stage of the batch statistics. For each chunk of chunk_rows
// rows of x (seen as [M,C]) and each channel: the chunk mean and the sum of squared
// deviations from it (M2). Both come from two passes over the chunk, shifted by its first
// value, so that data with |mean| >> std keeps its variance in f32.
//
// Bindings (group 0):
//   0 uniform            params: Params (below)
//   1 storage read       x: array<f32>, [M,C]
//   2 storage read_write partial: array<f32>, [2,CHUNKS,C]: [0] chunk means, [1] chunk M2
// Params: m, c, chunk_rows, chunks = ceil(m / chunk_rows); total, mode, momentum and
// epsilon are unused here. The last chunk may be partial.
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
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;

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
    let shift = x[r0 * params.c + c];

    var s = 0.0;
    for (var r = r0; r < r1; r++) {
        s += x[r * params.c + c] - shift;
    }
    let d = s / f32(r1 - r0);
    var m2 = 0.0;
    for (var r = r0; r < r1; r++) {
        let e = (x[r * params.c + c] - shift) - d;
        m2 += e * e;
    }
    partial[i] = shift + d;
    partial[params.chunks * params.c + i] = m2;
}
