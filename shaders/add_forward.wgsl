// add_forward: z = a + b, elementwise over any shape (the merge of a skip connection).
//
// Bindings (group 0):
//   0 uniform            params: Params { n: element count }
//   1 storage read       a: array<f32>, [n]
//   2 storage read       b: array<f32>, [n]
//   3 storage read_write z: array<f32>, [n]
// One invocation per element, workgroup 256, grid as in relu_forward.wgsl.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> z: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= params.n) {
        return;
    }
    z[i] = a[i] + b[i];
}
