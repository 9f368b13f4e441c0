// matmul_forward_tiled (workgroup-memory tiles, for real GPUs):
// y[M,N] = x[M,K] w[K,N] + b[N], row-major. Same bindings and params as matmul_forward.
//
// Bindings (group 0):
//   0 uniform            params: Params { m, k, n }
//   1 storage read       x: array<f32>, [M,K]
//   2 storage read       w: array<f32>, [K,N]
//   3 storage read       b: array<f32>, [N]
//   4 storage read_write y: array<f32>, [M,N]
// A workgroup of 16x16 invocations computes a 64x64 tile of y, tile column workgroup_id.x
// and tile row workgroup_id.y + workgroup_id.z * num_workgroups.y. It walks K in steps of
// 16, staging a 64x16 slice of x and a 16x64 slice of w in workgroup memory (zeros past the
// edges). Invocation (lx, ly) owns rows ly + 16*i and columns lx + 16*j of the tile
// (i, j in 0..4), so neighbouring invocations read neighbouring words. Each output sums
// over K in increasing order: bit-identical from run to run.

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

const TILE: u32 = 64u;
const STEP: u32 = 16u;

// Staged x slice, [STEP][TILE] (l-major, so the inner loop reads a row of rows).
var<workgroup> tile_x: array<f32, 1024>;
// Staged w slice, [STEP][TILE].
var<workgroup> tile_w: array<f32, 1024>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let m = params.m;
    let k = params.k;
    let n = params.n;
    let tile_col = wid.x * TILE;
    let tile_row = (wid.y + wid.z * nwg.y) * TILE;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var t = 0u; t < k; t += STEP) {
        // Each of the 256 invocations stages 4 words of each slice.
        for (var q = 0u; q < 4u; q++) {
            let e = li + 256u * q;
            let xr = tile_row + e / STEP;
            let xl = t + e % STEP;
            var xv = 0.0;
            if (xr < m && xl < k) {
                xv = x[xr * k + xl];
            }
            tile_x[(e % STEP) * TILE + e / STEP] = xv;
            let wl = t + e / TILE;
            let wc = tile_col + e % TILE;
            var wv = 0.0;
            if (wl < k && wc < n) {
                wv = w[wl * n + wc];
            }
            tile_w[e] = wv;
        }
        workgroupBarrier();

        for (var l = 0u; l < STEP; l++) {
            let o = l * TILE;
            let a = vec4<f32>(tile_x[o + lid.y], tile_x[o + lid.y + 16u],
                              tile_x[o + lid.y + 32u], tile_x[o + lid.y + 48u]);
            let bv = vec4<f32>(tile_w[o + lid.x], tile_w[o + lid.x + 16u],
                               tile_w[o + lid.x + 32u], tile_w[o + lid.x + 48u]);
            acc0 += a.x * bv;
            acc1 += a.y * bv;
            acc2 += a.z * bv;
            acc3 += a.w * bv;
        }
        workgroupBarrier();
    }

    let r = tile_row + lid.y;
    let c = tile_col + lid.x;
    store_row(r, c, acc0);
    store_row(r + 16u, c, acc1);
    store_row(r + 32u, c, acc2);
    store_row(r + 48u, c, acc3);
}

// Stores columns c, c+16, c+32, c+48 of one row, with the bias, where inside y.
fn store_row(row: u32, c: u32, v: vec4<f32>) {
    if (row >= params.m) {
        return;
    }
    let base = row * params.n;
    for (var j = 0u; j < 4u; j++) {
        let col = c + 16u * j;
        if (col < params.n) {
            y[base + col] = v[j] + b[col];
        }
    }
}
