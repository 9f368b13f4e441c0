// concat_forward: channel concatenation z = [a | b] of a: [M,C1] and b: [M,C2] into
// z: [M,C1+C2] (NHWC activations seen as M = N*H*W rows of channels).
//
// Bindings (group 0):
//   0 uniform            params: Params { m: rows, c1: channels of a, c2: channels of b }
//   1 storage read       a: array<f32>, [M,C1]
//   2 storage read       b: array<f32>, [M,C2]
//   3 storage read_write z: array<f32>, [M,C1+C2]
// One invocation per element of z (gather: each reads the one element it copies),
// workgroup 256, grid as in relu_forward.wgsl.

struct Params {
    m: u32,
    c1: u32,
    c2: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> z: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    let c = params.c1 + params.c2;
    if (i >= params.m * c) {
        return;
    }
    let row = i / c;
    let col = i - row * c;
    if (col < params.c1) {
        z[i] = a[row * params.c1 + col];
    } else {
        z[i] = b[row * params.c2 + (col - params.c1)];
    }
}
