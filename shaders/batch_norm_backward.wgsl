// batch_norm_backward: input gradient of the training-mode batch norm,
// dx = gamma * invstd * (dy - dbeta/m - xhat * dgamma/m), xhat = (x - mean) * invstd,
// per channel of x seen as [M,C]; dgamma and dbeta come from batch_norm_backward_combine.
//
// Bindings (group 0):
//   0 uniform            params: Params (below)
//   1 storage read       x: array<f32>, [M,C]
//   2 storage read       dy: array<f32>, [M,C]
//   3 storage read       gamma: array<f32>, [C]
//   4 storage read       saved_mean: array<f32>, [C]
//   5 storage read       saved_invstd: array<f32>, [C]
//   6 storage read       dgamma: array<f32>, [C]
//   7 storage read       dbeta: array<f32>, [C]
//   8 storage read_write dx: array<f32>, [M,C], overwritten
// Params: m, c, total = M*C; the others are unused here.
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
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> saved_mean: array<f32>;
@group(0) @binding(5) var<storage, read> saved_invstd: array<f32>;
@group(0) @binding(6) var<storage, read> dgamma: array<f32>;
@group(0) @binding(7) var<storage, read> dbeta: array<f32>;
@group(0) @binding(8) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= params.total) {
        return;
    }
    let c = i % params.c;
    let invstd = saved_invstd[c];
    let xhat = (x[i] - saved_mean[c]) * invstd;
    let m = f32(params.m);
    dx[i] = gamma[c] * invstd * (dy[i] - dbeta[c] / m - xhat * (dgamma[c] / m));
}
