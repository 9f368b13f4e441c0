// batch_norm_stats_combine: second stage of the batch statistics. One workgroup per
// channel merges the per-chunk (mean, M2) pairs with Chan's formula in a fixed order
// (thread t takes chunks t, t+64, ...; then a fixed tree over the 64 threads), then
// writes the batch mean and 1/sqrt(biased var + epsilon) and updates the moving
// statistics: moving = moving*momentum + batch*(1-momentum), the variance made unbiased
// by m/max(m-1,1) (so m = 1 moves the moving variance towards 0).
//
// Bindings (group 0):
//   0 uniform            params: Params (below)
//   1 storage read       partial: array<f32>, [2,CHUNKS,C] from batch_norm_stats
//   2 storage read_write moving_mean: array<f32>, [C], updated in place
//   3 storage read_write moving_var: array<f32>, [C], updated in place
//   4 storage read_write saved_mean: array<f32>, [C], written
//   5 storage read_write saved_invstd: array<f32>, [C], written
// Params: m, c, chunk_rows, chunks, momentum, epsilon; total and mode are unused here.
// Workgroup 64 (one per channel: workgroup_id.x = channel).

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
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> moving_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> moving_var: array<f32>;
@group(0) @binding(4) var<storage, read_write> saved_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> saved_invstd: array<f32>;

var<workgroup> w_count: array<f32, 64>;
var<workgroup> w_mean: array<f32, 64>;
var<workgroup> w_m2: array<f32, 64>;

// Merges (nb, mb, qb) into (na, ma, qa): counts, means, sums of squared deviations.
fn merge(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
    if (b.x == 0.0) {
        return a;
    }
    if (a.x == 0.0) {
        return b;
    }
    let n = a.x + b.x;
    let d = b.y - a.y;
    return vec3<f32>(n, a.y + d * (b.x / n), a.z + b.z + d * d * (a.x * b.x / n));
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = wid.x;
    let t = lid.x;
    var acc = vec3<f32>(0.0, 0.0, 0.0);
    for (var k = t; k < params.chunks; k += 64u) {
        let rows = min(params.chunk_rows, params.m - k * params.chunk_rows);
        let at = k * params.c + c;
        acc = merge(acc, vec3<f32>(f32(rows), partial[at],
                                   partial[params.chunks * params.c + at]));
    }
    w_count[t] = acc.x;
    w_mean[t] = acc.y;
    w_m2[t] = acc.z;
    workgroupBarrier();
    for (var span = 32u; span > 0u; span >>= 1u) {
        if (t < span) {
            let a = vec3<f32>(w_count[t], w_mean[t], w_m2[t]);
            let b = vec3<f32>(w_count[t + span], w_mean[t + span], w_m2[t + span]);
            let r = merge(a, b);
            w_count[t] = r.x;
            w_mean[t] = r.y;
            w_m2[t] = r.z;
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        let mean = w_mean[0];
        let m = f32(params.m);
        let var_biased = w_m2[0] / m;
        let var_unbiased = w_m2[0] / max(m - 1.0, 1.0);
        saved_mean[c] = mean;
        saved_invstd[c] = 1.0 / sqrt(var_biased + params.epsilon);
        let keep = params.momentum;
        moving_mean[c] = moving_mean[c] * keep + mean * (1.0 - keep);
        moving_var[c] = moving_var[c] * keep + var_unbiased * (1.0 - keep);
    }
}
