// concat_backward: splits dz: [M,C1+C2] into da: [M,C1] (its first C1 channels) and
// db: [M,C2] (the last C2), the gradient of concat_forward.wgsl.
//
// Bindings (group 0):
//   0 uniform            params: Params { m: rows, c1: channels of da, c2: channels of db }
//   1 storage read       dz: array<f32>, [M,C1+C2]
//   2 storage read_write da: array<f32>, [M,C1]
//   3 storage read_write db: array<f32>, [M,C2]
// One invocation per element of dz, each writing exactly one element of da or db;
// workgroup 256, grid as in relu_forward.wgsl.

struct Params {
    m: u32,
    c1: u32,
    c2: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dz: array<f32>;
@group(0) @binding(2) var<storage, read_write> da: array<f32>;
@group(0) @binding(3) var<storage, read_write> db: array<f32>;

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
        da[row * params.c1 + col] = dz[i];
    } else {
        db[row * params.c2 + (col - params.c1)] = dz[i];
    }
}
