// batch_norm_backward_combine: second stage of the batch-norm parameter gradients. One
// workgroup per channel adds the per-chunk sums in a fixed order (thread t takes chunks
// t, t+64, ...; then a fixed tree over the 64 threads): dbeta = sum(dy),
// dgamma = sum(dy * xhat).
//
// Bindings (group 0):
//   0 uniform            params: Params (below)
//   1 storage read       partial: array<f32>, [2,CHUNKS,C] from batch_norm_backward_reduce
//   2 storage read_write dgamma: array<f32>, [C], overwritten
//   3 storage read_write dbeta: array<f32>, [C], overwritten
// Params: c, chunks; the others are unused here.
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
@group(0) @binding(2) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> dbeta: array<f32>;

var<workgroup> w_sums: array<vec2<f32>, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = wid.x;
    let t = lid.x;
    var acc = vec2<f32>(0.0, 0.0);
    for (var k = t; k < params.chunks; k += 64u) {
        let at = k * params.c + c;
        acc += vec2<f32>(partial[at], partial[params.chunks * params.c + at]);
    }
    w_sums[t] = acc;
    workgroupBarrier();
    for (var span = 32u; span > 0u; span >>= 1u) {
        if (t < span) {
            w_sums[t] += w_sums[t + span];
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        dbeta[c] = w_sums[0].x;
        dgamma[c] = w_sums[0].y;
    }
}
