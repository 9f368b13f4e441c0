// matmul_backward_input: dx[M,K] = dy[M,N] w^T, i.e. dx[i,j] = sum_l dy[i,l] w[j,l].
// Overwrites dx.
//
// Bindings (group 0):
//   0 uniform            params: Params { m, k, n }
//   1 storage read       dy: array<f32>, [M,N]
//   2 storage read       w: array<f32>, [K,N]
//   3 storage read_write dx: array<f32>, [M,K]
// Each invocation computes a 4x4 block of dx: rows 4*r .. 4*r+3, columns 4*c .. 4*c+3, where
// c = workgroup_id.x * 8 + local_id.x and r = (workgroup_id.y + workgroup_id.z *
// num_workgroups.y) * 8 + local_id.y. Workgroup 8x8 (32x32 outputs), no workgroup memory.
// Rows and columns past the end are clamped for loads and skipped for stores. Each output
// sums over N in increasing order: bit-identical from run to run.

struct Params {
    m: u32,
    k: u32,
    n: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let m = params.m;
    let k = params.k;
    let n = params.n;
    let col0 = (wid.x * 8u + lid.x) * 4u;
    let row0 = ((wid.y + wid.z * nwg.y) * 8u + lid.y) * 4u;
    if (col0 >= k || row0 >= m) {
        return;
    }

    // Row offsets into w (one per dx column) and dy (one per dx row), clamped in bounds.
    let w0 = col0 * n;
    let w1 = min(col0 + 1u, k - 1u) * n;
    let w2 = min(col0 + 2u, k - 1u) * n;
    let w3 = min(col0 + 3u, k - 1u) * n;
    let g0 = row0 * n;
    let g1 = min(row0 + 1u, m - 1u) * n;
    let g2 = min(row0 + 2u, m - 1u) * n;
    let g3 = min(row0 + 3u, m - 1u) * n;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var l = 0u; l < n; l++) {
        let bv = vec4<f32>(w[w0 + l], w[w1 + l], w[w2 + l], w[w3 + l]);
        acc0 += dy[g0 + l] * bv;
        acc1 += dy[g1 + l] * bv;
        acc2 += dy[g2 + l] * bv;
        acc3 += dy[g3 + l] * bv;
    }

    store_row(row0, col0, acc0);
    store_row(row0 + 1u, col0, acc1);
    store_row(row0 + 2u, col0, acc2);
    store_row(row0 + 3u, col0, acc3);
}

fn store_row(row: u32, col0: u32, v: vec4<f32>) {
    if (row >= params.m) {
        return;
    }
    let base = row * params.k + col0;
    let left = params.k - col0;
    dx[base] = v.x;
    if (left > 1u) {
        dx[base + 1u] = v.y;
    }
    if (left > 2u) {
        dx[base + 2u] = v.z;
    }
    if (left > 3u) {
        dx[base + 3u] = v.w;
    }
}
