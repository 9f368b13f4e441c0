// dropout_backward: dx = dy * scale where dropout_forward.wgsl kept the element, else 0.
// The mask is rebuilt from (seed, step, flat index) with the forward's hash, which must
// stay identical to the one in dropout_forward.wgsl.
//
// Bindings (group 0):
//   0 uniform            params: Params { n: element count, seed: per-layer key,
//                        threshold: round(rate * 2^24), scale: 1/(1-rate) }
//   1 storage read       step: array<u32>, [1], the training step, written by the host
//   2 storage read       dy: array<f32>, [n]
//   3 storage read_write dx: array<f32>, [n]
// One invocation per element, workgroup 256, grid as in relu_forward.wgsl.

struct Params {
    n: u32,
    seed: u32,
    threshold: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> step: array<u32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// See dropout_forward.wgsl.
fn pcg(v: u32) -> u32 {
    let s = v * 747796405u + 2891336453u;
    let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    return (w >> 22u) ^ w;
}

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
    dx[i] = select(0.0, dy[i] * params.scale, kept(params.seed, step[0], i));
}
