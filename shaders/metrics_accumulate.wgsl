// metrics_accumulate: adds one batch to the running epoch metrics, on the GPU, so that the
// host reads them back once per epoch:
//   metrics[0] += sum(loss[0..N]) + N * sum(reg[0..R])   (reg: the L2 terms of the batch)
//   metrics[1] += sum(correct[0..N])
//   metrics[2] += N
//   metrics[3]    untouched
// Deterministic: a single workgroup; thread t sums elements t, t+256, ... in order, then a
// fixed-shape tree in workgroup memory combines the threads. No atomics.
//
// Bindings (group 0):
//   0 uniform            params: Params { n: samples N, r: number of L2 terms R }
//   1 storage read       loss: array<f32>, [N], per-sample loss
//   2 storage read       correct: array<f32>, [N], 1.0 / 0.0 per sample
//   3 storage read       reg: array<f32>, [R] (R may be 0)
//   4 storage read_write metrics: array<f32>, [4]
// One workgroup of 256 invocations.

struct Params {
    n: u32,
    r: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> loss: array<f32>;
@group(0) @binding(2) var<storage, read> correct: array<f32>;
@group(0) @binding(3) var<storage, read> reg: array<f32>;
@group(0) @binding(4) var<storage, read_write> metrics: array<f32>;

// (loss, correct, reg, unused) partial sums of each thread.
var<workgroup> part: array<vec4<f32>, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32) {
    var acc = vec4<f32>(0.0);
    for (var i = t; i < params.n; i += 256u) {
        acc.x += loss[i];
        acc.y += correct[i];
    }
    for (var i = t; i < params.r; i += 256u) {
        acc.z += reg[i];
    }
    part[t] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (t < s) {
            part[t] += part[t + s];
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        let total = part[0];
        let nf = f32(params.n);
        metrics[0] = metrics[0] + (total.x + nf * total.z);
        metrics[1] = metrics[1] + total.y;
        metrics[2] = metrics[2] + nf;
    }
}
