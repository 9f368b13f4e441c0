// batch_norm_forward: y = gamma * (x - mean) * invstd + beta per channel of x seen as
// [M,C]. In training mode (mode 0) the statistics are the batch's (mean, invstd) from
// batch_norm_stats_combine; in inference mode (mode 1) they are the moving (mean,
// variance) and invstd = 1/sqrt(variance + epsilon).
//
// Bindings (group 0):
//   0 uniform            params: Params (below)
//   1 storage read       x: array<f32>, [M,C]
//   2 storage read       gamma: array<f32>, [C]
//   3 storage read       beta: array<f32>, [C]
//   4 storage read       mean: array<f32>, [C]
//   5 storage read       stat: array<f32>, [C], invstd (mode 0) or variance (mode 1)
//   6 storage read_write y: array<f32>, [M,C]
// Params: c, total = M*C, mode, epsilon; the others are unused here.
// One invocation per element, workgroup 256, grid split over x and y (grid_1d):
// flat index = gid.x + gid.y * num_workgroups.x * 256.

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
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read> mean: array<f32>;
@group(0) @binding(5) var<storage, read> stat: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= params.total) {
        return;
    }
    let c = i % params.c;
    var invstd = stat[c];
    if (params.mode == 1u) {
        invstd = 1.0 / sqrt(stat[c] + params.epsilon);
    }
    // Centre first: x*scale + (beta - mean*scale) would cancel badly when |mean| >> std.
    y[i] = (x[i] - mean[c]) * invstd * gamma[c] + beta[c];
}
