// l2_loss: a deterministic sum of squares, the L2 term coef * sum(w^2) of one kernel.
// Generic over its two passes (the launcher in src/ops/optim.rs builds them):
//   pass 1: src = w, dst = partials, square 1, scale 1: partials[g] = sum over chunk g of w^2
//   pass 2: src = partials, dst = reg, square 0, scale coef, one group: reg[slot] = coef*sum
// A small w (one chunk) takes a single pass: src = w, dst = reg, square 1, scale coef.
// Workgroup g reduces src[g*chunk .. min((g+1)*chunk, n)]: thread t sums elements
// start+t, start+t+256, ... in order, then a fixed-shape tree in workgroup memory combines
// the threads, so the result is bit-identical run to run. No atomics.
//
// Bindings (group 0):
//   0 uniform            params: Params { n: elements of src, chunk: elements per group,
//                        square: 1 to square each element, dst_index: where group g
//                        writes (dst_index + g), scale: factor on each group's sum }
//   1 storage read       src: array<f32>, [n]
//   2 storage read_write dst: array<f32>, [dst_index + groups]
// One workgroup of 256 invocations per chunk, grid ceil(n/chunk) along x.

struct Params {
    n: u32,
    chunk: u32,
    square: u32,
    dst_index: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32,
        @builtin(workgroup_id) wid: vec3<u32>) {
    let g = wid.x;
    let start = g * params.chunk;
    let end = min(start + params.chunk, params.n);
    var acc = 0.0;
    for (var i = start + t; i < end; i += 256u) {
        let v = src[i];
        acc += select(v, v * v, params.square != 0u);
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
        dst[params.dst_index + g] = params.scale * part[0];
    }
}
