// matmul_backward_weight, stage 1 of 2: partial[s,K,N] = sum over rows i of chunk s of
// x[i,K]^T dy[i,N]. Chunk s holds rows s*rows .. min((s+1)*rows, M). With a single chunk
// the output is dw itself; otherwise matmul_sum_partials adds the chunks in order s = 0,
// 1, ... (a fixed order, no atomics), so dw = x^T dy is bit-identical from run to run.
//
// Bindings (group 0):
//   0 uniform            params: Params { m, k, n, rows: rows per chunk }
//   1 storage read       x: array<f32>, [M,K]
//   2 storage read       dy: array<f32>, [M,N]
//   3 storage read_write partial: array<f32>, [S,K,N] (S = ceil(M / rows))
// Each invocation computes a 4x4 block of one chunk's [K,N] slice: K rows 4*r .. 4*r+3 with
// r = workgroup_id.y * 8 + local_id.y, N columns 4*c .. 4*c+3 with c = workgroup_id.x * 8 +
// local_id.x, chunk s = workgroup_id.z. Workgroup 8x8, no workgroup memory.

struct Params {
    m: u32,
    k: u32,
    n: u32,
    rows: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let k = params.k;
    let n = params.n;
    let col0 = (wid.x * 8u + lid.x) * 4u;
    let row0 = (wid.y * 8u + lid.y) * 4u;
    if (col0 >= n || row0 >= k) {
        return;
    }
    let s = wid.z;
    let first = s * params.rows;
    let last = min(first + params.rows, params.m);

    // Clamped columns of dy and x keep loads in bounds; stores skip them.
    let c1 = min(col0 + 1u, n - 1u);
    let c2 = min(col0 + 2u, n - 1u);
    let c3 = min(col0 + 3u, n - 1u);
    let r1 = min(row0 + 1u, k - 1u);
    let r2 = min(row0 + 2u, k - 1u);
    let r3 = min(row0 + 3u, k - 1u);

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var xo = first * k;
    var go = first * n;
    for (var i = first; i < last; i++) {
        let g = vec4<f32>(dy[go + col0], dy[go + c1], dy[go + c2], dy[go + c3]);
        acc0 += x[xo + row0] * g;
        acc1 += x[xo + r1] * g;
        acc2 += x[xo + r2] * g;
        acc3 += x[xo + r3] * g;
        xo += k;
        go += n;
    }

    let base = s * k * n;
    store_row(base, row0, col0, acc0);
    store_row(base, row0 + 1u, col0, acc1);
    store_row(base, row0 + 2u, col0, acc2);
    store_row(base, row0 + 3u, col0, acc3);
}

fn store_row(base: u32, row: u32, col0: u32, v: vec4<f32>) {
    if (row >= params.k) {
        return;
    }
    let o = base + row * params.n + col0;
    let left = params.n - col0;
    partial[o] = v.x;
    if (left > 1u) {
        partial[o + 1u] = v.y;
    }
    if (left > 2u) {
        partial[o + 2u] = v.z;
    }
    if (left > 3u) {
        partial[o + 3u] = v.w;
    }
}
