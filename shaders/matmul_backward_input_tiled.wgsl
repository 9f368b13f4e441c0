// matmul_backward_input_tiled (workgroup-memory tiles, for real GPUs):
// dx[M,K] = dy[M,N] w^T, i.e. dx[i,j] = sum_l dy[i,l] w[j,l]. Overwrites dx. Same bindings
// and params as matmul_backward_input.
//
// Bindings (group 0):
//   0 uniform            params: Params { m, k, n }
//   1 storage read       dy: array<f32>, [M,N]
//   2 storage read       w: array<f32>, [K,N]
//   3 storage read_write dx: array<f32>, [M,K]
// A workgroup of 16x16 invocations computes a 64x64 tile of dx, tile column workgroup_id.x
// and tile row workgroup_id.y + workgroup_id.z * num_workgroups.y. It walks N in steps of
// 16, staging a 64x16 slice of dy and of w (rows of w are dx's columns) in workgroup
// memory, zeros past the edges. Invocation (lx, ly) owns rows ly + 16*i and columns
// lx + 16*j of the tile (i, j in 0..4). Each output sums over N in increasing order:
// bit-identical from run to run.

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

const TILE: u32 = 64u;
const STEP: u32 = 16u;

// Staged dy slice, [STEP][TILE] (l-major, so the inner loop reads a row of rows).
var<workgroup> tile_x: array<f32, 1024>;
// Staged w slice, [STEP][TILE] (transposed while staging).
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
    for (var t = 0u; t < n; t += STEP) {
        // Each of the 256 invocations stages 4 words of each slice.
        for (var q = 0u; q < 4u; q++) {
            let e = li + 256u * q;
            let l = t + e % STEP;
            let slot = (e % STEP) * TILE + e / STEP;
            let gr = tile_row + e / STEP;
            var gv = 0.0;
            if (gr < m && l < n) {
                gv = dy[gr * n + l];
            }
            tile_x[slot] = gv;
            let wr = tile_col + e / STEP;
            var wv = 0.0;
            if (wr < k && l < n) {
                wv = w[wr * n + l];
            }
            tile_w[slot] = wv;
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

// Stores columns c, c+16, c+32, c+48 of one row, where inside dx.
fn store_row(row: u32, c: u32, v: vec4<f32>) {
    if (row >= params.m) {
        return;
    }
    let base = row * params.k;
    for (var j = 0u; j < 4u; j++) {
        let col = c + 16u * j;
        if (col < params.k) {
            dx[base + col] = v[j];
        }
    }
}
