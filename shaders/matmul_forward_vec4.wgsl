// matmul_forward_vec4 (register-blocked, vec4 loads; K and N multiples of 4):
// y[M,N] = x[M,K] w[K,N] + b[N], row-major, every buffer read as vec4 words.
//
// Bindings (group 0):
//   0 uniform            params: Params { m, k, n }
//   1 storage read       x: array<vec4<f32>>, [M,K/4]
//   2 storage read       w: array<vec4<f32>>, [K,N/4]
//   3 storage read       b: array<vec4<f32>>, [N/4]
//   4 storage read_write y: array<vec4<f32>>, [M,N/4]
// Each invocation computes a 4x4 block of y: rows 4*r .. 4*r+3 and the vec4 column c, where
// c = workgroup_id.x * 8 + local_id.x and r = (workgroup_id.y + workgroup_id.z *
// num_workgroups.y) * 8 + local_id.y. Workgroup 8x8 (32x32 outputs), no workgroup memory:
// the fastest form on CPU adapters (lavapipe), where 4x4 accumulators fill the vector
// registers and a vec4 load costs about what a scalar one does. Rows past M are clamped
// for loads and skipped for stores. Each output sums over K in increasing order, in steps
// of 4: bit-identical from run to run (though not to matmul_forward's rounding).

struct Params {
    m: u32,
    k: u32,
    n: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<vec4<f32>>;

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let m = params.m;
    let k4 = params.k / 4u;
    let n4 = params.n / 4u;
    let c = wid.x * 8u + lid.x;
    let row0 = ((wid.y + wid.z * nwg.y) * 8u + lid.y) * 4u;
    if (c >= n4 || row0 >= m) {
        return;
    }
    let x0 = row0 * k4;
    let x1 = min(row0 + 1u, m - 1u) * k4;
    let x2 = min(row0 + 2u, m - 1u) * k4;
    let x3 = min(row0 + 3u, m - 1u) * k4;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var wr = c;
    for (var l = 0u; l < k4; l++) {
        // Rows 4l .. 4l+3 of w, at this invocation's four columns.
        let b0 = w[wr];
        let b1 = w[wr + n4];
        let b2 = w[wr + 2u * n4];
        let b3 = w[wr + 3u * n4];
        let a0 = x[x0 + l];
        let a1 = x[x1 + l];
        let a2 = x[x2 + l];
        let a3 = x[x3 + l];
        acc0 += a0.x * b0 + a0.y * b1 + a0.z * b2 + a0.w * b3;
        acc1 += a1.x * b0 + a1.y * b1 + a1.z * b2 + a1.w * b3;
        acc2 += a2.x * b0 + a2.y * b1 + a2.z * b2 + a2.w * b3;
        acc3 += a3.x * b0 + a3.y * b1 + a3.z * b2 + a3.w * b3;
        wr += 4u * n4;
    }

    let bias = b[c];
    y[row0 * n4 + c] = acc0 + bias;
    if (row0 + 1u < m) {
        y[(row0 + 1u) * n4 + c] = acc1 + bias;
    }
    if (row0 + 2u < m) {
        y[(row0 + 2u) * n4 + c] = acc2 + bias;
    }
    if (row0 + 3u < m) {
        y[(row0 + 3u) * n4 + c] = acc3 + bias;
    }
}
