// bias_backward, stage 1 of 2: partial[s,N] = sum over rows i of chunk s of dy[i,N] (column
// sums). Chunk s holds rows s*rows .. min((s+1)*rows, M). With a single chunk the output
// is db itself; otherwise matmul_sum_partials adds the chunks in order s = 0, 1, ... (no
// atomics), so db is bit-identical from run to run.
//
// Bindings (group 0):
//   0 uniform            params: Params { m, n, rows: rows per chunk, parts: S }
//   1 storage read       dy: array<f32>, [M,N]
//   2 storage read_write partial: array<f32>, [S,N] (S = ceil(M / rows))
// One invocation per partial element, flat index e = s*N + j (neighbours read neighbouring
// columns), workgroup 256. The grid is split over x and y (grid_1d in src/gpu/launch.rs):
// e = gid.x + gid.y * num_workgroups.x * 256.

struct Params {
    m: u32,
    n: u32,
    rows: u32,
    parts: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * 256u;
    if (e >= params.n * params.parts) {
        return;
    }
    let n = params.n;
    let s = e / n;
    let j = e % n;
    let first = s * params.rows;
    let last = min(first + params.rows, params.m);
    var sum = 0.0;
    var o = first * n + j;
    for (var i = first; i < last; i++) {
        sum += dy[o];
        o += n;
    }
    partial[e] = sum;
}
