// dropout_forward: inverted dropout, y = x * scale where the element is kept, else 0,
// with scale = 1/(1-rate). The mask is never stored: it is a hash of (seed, step, flat
// element index), so dropout_backward.wgsl and any rerun of the same step rebuild it.
// The hash below must stay identical to the one in dropout_backward.wgsl.
//
// Bindings (group 0):
//   0 uniform            params: Params { n: element count, seed: per-layer key,
//                        threshold: round(rate * 2^24), scale: 1/(1-rate) }
//   1 storage read       step: array<u32>, [1], the training step, written by the host
//   2 storage read       x: array<f32>, [n]
//   3 storage read_write y: array<f32>, [n]
// An element is kept when the top 24 bits of its hash are >= threshold, so it is kept with
// probability 1 - threshold/2^24 (threshold 0: everything kept, y = x).
// One invocation per element, workgroup 256, grid as in relu_forward.wgsl.

struct Params {
    n: u32,
    seed: u32,
    threshold: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// PCG hash (Jarzynski and Olano, "Hash Functions for GPU Rendering", 2020): one LCG step
// then PCG's RXS-M-XS output permutation. A bijection on u32.
fn pcg(v: u32) -> u32 {
    let s = v * 747796405u + 2891336453u;
    let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    return (w >> 22u) ^ w;
}

// The key is a bijection of the step for a fixed seed, so two steps of one layer never
// share a key; the index is hashed before the key enters, so neighbours are decorrelated.
fn kept(seed: u32, t: u32, i: u32) -> bool {
    let key = pcg(seed ^ pcg(t));
    return (pcg(pcg(i) ^ key) >> 8u) >= params.threshold;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= params.n) {
        return;
    }
    y[i] = select(0.0, x[i] * params.scale, kept(params.seed, step[0], i));
}
