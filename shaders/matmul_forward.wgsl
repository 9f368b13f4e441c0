// matmul_forward (register-blocked): y[M,N] = x[M,K] w[K,N] + b[N], row-major.
//
// Bindings (group 0):
//   0 uniform            params: Params { m, k, n }
//   1 storage read       x: array<f32>, [M,K]
//   2 storage read       w: array<f32>, [K,N]
//   3 storage read       b: array<f32>, [N]
//   4 storage read_write y: array<f32>, [M,N]
// Each invocation computes a 4x4 block of y: rows 4*r .. 4*r+3, columns 4*c .. 4*c+3, where
// c = workgroup_id.x * 8 + local_id.x and r = (workgroup_id.y + workgroup_id.z *
// num_workgroups.y) * 8 + local_id.y. Workgroup 8x8, so one workgroup covers 32x32 outputs.
// No workgroup memory: on CPU adapters (lavapipe) barriers cost more than they save.
// Rows and columns past the end are clamped for loads and skipped for stores. Each output
// sums over K in increasing order, so results are bit-identical from run to run.

struct Params {
    m: u32,
    k: u32,
    n: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let m = params.m;
    let k = params.k;
    let n = params.n;
    let col0 = (wid.x * 8u + lid.x) * 4u;
    let row0 = ((wid.y + wid.z * nwg.y) * 8u + lid.y) * 4u;
    if (col0 >= n || row0 >= m) {
        return;
    }

    // Clamped indices keep every load in bounds without branches in the inner loop.
    let c1 = min(col0 + 1u, n - 1u);
    let c2 = min(col0 + 2u, n - 1u);
    let c3 = min(col0 + 3u, n - 1u);
    let x0 = row0 * k;
    let x1 = min(row0 + 1u, m - 1u) * k;
    let x2 = min(row0 + 2u, m - 1u) * k;
    let x3 = min(row0 + 3u, m - 1u) * k;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var wr = 0u;
    for (var l = 0u; l < k; l++) {
        let bv = vec4<f32>(w[wr + col0], w[wr + c1], w[wr + c2], w[wr + c3]);
        acc0 += x[x0 + l] * bv;
        acc1 += x[x1 + l] * bv;
        acc2 += x[x2 + l] * bv;
        acc3 += x[x3 + l] * bv;
        wr += n;
    }

    let bias = vec4<f32>(b[col0], b[c1], b[c2], b[c3]);
    store_row(row0, col0, acc0 + bias);
    store_row(row0 + 1u, col0, acc1 + bias);
    store_row(row0 + 2u, col0, acc2 + bias);
    store_row(row0 + 3u, col0, acc3 + bias);
}

fn store_row(row: u32, col0: u32, v: vec4<f32>) {
    if (row >= params.m) {
        return;
    }
    let base = row * params.n + col0;
    let left = params.n - col0;
    y[base] = v.x;
    if (left > 1u) {
        y[base + 1u] = v.y;
    }
    if (left > 2u) {
        y[base + 2u] = v.z;
    }
    if (left > 3u) {
        y[base + 3u] = v.w;
    }
}
