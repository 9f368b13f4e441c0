// softmax_xent_forward: softmax fused with sparse categorical cross-entropy, over the
// first N rows of logits: [N,K]. For row r with label t:
//   p = softmax(logits[r])              (the row max is subtracted before exp)
//   loss[r] = -log p[t] = log(sum_j exp(l_j - max)) - (l_t - max)
//   dlogits[r] = (p - onehot(t)) / N    (gradient of the batch MEAN loss, as Keras)
//   correct[r] = 1.0 if argmax(logits[r]) == t else 0.0, the first maximum winning ties
// A label >= K reads no logit: its row gets correct 0, loss +inf (p[t] = 0 for a class the
// model does not have) and dlogits = p / N (no target term), so bad data shows up in the
// metrics instead of reading out of bounds.
//
// Bindings (group 0):
//   0 uniform            params: Params { n: rows N, classes: K }
//   1 storage read       logits: array<f32>, [N,K]
//   2 storage read       labels: array<u32>, [N]
//   3 storage read_write dlogits: array<f32>, [N,K]
//   4 storage read_write loss: array<f32>, [N]
//   5 storage read_write correct: array<f32>, [N]
// One invocation per row (K is small: 10 classes), workgroup 64, grid as in
// relu_forward.wgsl with 64 per group.

struct Params {
    n: u32,
    classes: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> correct: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= params.n) {
        return;
    }
    let k = params.classes;
    let base = r * k;

    // Row max and its first index (strict > keeps the first of equal maxima).
    var mx = logits[base];
    var arg = 0u;
    for (var j = 1u; j < k; j++) {
        let v = logits[base + j];
        if (v > mx) {
            mx = v;
            arg = j;
        }
    }

    var sum = 0.0;
    for (var j = 0u; j < k; j++) {
        sum += exp(logits[base + j] - mx);
    }
    let log_sum = log(sum);

    let t = labels[r];
    let valid = t < k;
    let nf = f32(params.n);
    for (var j = 0u; j < k; j++) {
        let p = exp(logits[base + j] - mx) / sum;
        let target_p = select(0.0, 1.0, valid && j == t);
        dlogits[base + j] = (p - target_p) / nf;
    }

    if (valid) {
        loss[r] = log_sum - (logits[base + t] - mx);
    } else {
        loss[r] = bitcast<f32>(0x7f800000u);
    }
    correct[r] = select(0.0, 1.0, valid && arg == t);
}
