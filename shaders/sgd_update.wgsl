// sgd_update: SGD with momentum, Keras's rule, in place:
//   v = m * v - lr * g
//   nesterov: w = w + (m * v - lr * g)   (with the new v)
//   plain:    w = w + v
// lr is read from a tensor the host writes each step, so a schedule needs no rebuild.
//
// Bindings (group 0):
//   0 uniform            params: Params { n: element count, momentum: m,
//                        nesterov: 1 for Nesterov, 0 for plain }
//   1 storage read       lr: array<f32>, [1]
//   2 storage read_write w: array<f32>, [n], the weights
//   3 storage read_write v: array<f32>, [n], the velocity (zeros at the start)
//   4 storage read       g: array<f32>, [n], the gradient
// One invocation per element, workgroup 256, grid as in relu_forward.wgsl.

struct Params {
    n: u32,
    momentum: f32,
    nesterov: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> lr: array<f32>;
@group(0) @binding(2) var<storage, read_write> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= params.n) {
        return;
    }
    let step = lr[0] * g[i];
    let vel = params.momentum * v[i] - step;
    v[i] = vel;
    if (params.nesterov != 0u) {
        w[i] = w[i] + (params.momentum * vel - step);
    } else {
        w[i] = w[i] + vel;
    }
}
