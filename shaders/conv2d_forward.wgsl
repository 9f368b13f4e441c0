// conv2d_forward: y = conv2d(x, w) + b. NHWC activations, HWIO weights, any KH x KW,
// any stride, padding given as the rows/columns added before (after is implied by out_h).
//
// Bindings (group 0):
//   0 uniform            params: Params (below)
//   1 storage read       x: array<f32>, [N,H,W,C]
//   2 storage read       w: array<f32>, [KH,KW,C,K]
//   3 storage read       b: array<f32>, [K]
//   4 storage read_write y: array<f32>, [N,OH,OW,K]
// Params: n, h, w, c, k, kh, kw, stride, pad_h, pad_w (padding before), out_h, out_w,
// split_rows and splits (unused here), two padding words.
//
// Implicit GEMM, y seen as [M = N*OH*OW, K], reduction over KH*KW*C. Each invocation keeps
// a 4 pixel x 4 channel tile of y in registers and reads no workgroup memory: on CPU
// adapters (lavapipe) barriers cost more than they save. Flat tile index
// t = gid.x + gid.y * nwg.x * 64; channel tile t % ceil(K/4), pixel tile t / ceil(K/4), so
// neighbouring invocations share their x loads. Workgroup 64.

struct Params {
    n: u32,
    h: u32,
    w: u32,
    c: u32,
    k: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad_h: u32,
    pad_w: u32,
    out_h: u32,
    out_w: u32,
    split_rows: u32,
    splits: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    let kk = params.k;
    let cc = params.c;
    let tiles_k = (kk + 3u) / 4u;
    let m_total = params.n * params.out_h * params.out_w;
    let m0 = (t / tiles_k) * 4u;
    let k0 = (t % tiles_k) * 4u;
    if (m0 >= m_total) {
        return;
    }

    // Edge tiles read clamped (valid) indices and skip their stores.
    let kc = min(vec4<u32>(k0, k0 + 1u, k0 + 2u, k0 + 3u), vec4<u32>(kk - 1u));
    var img: vec4<u32>;
    var ih0: vec4<i32>;
    var iw0: vec4<i32>;
    for (var i = 0u; i < 4u; i++) {
        let m = min(m0 + i, m_total - 1u);
        let ow = m % params.out_w;
        let r = m / params.out_w;
        let oh = r % params.out_h;
        img[i] = (r / params.out_h) * params.h * params.w * cc;
        ih0[i] = i32(oh * params.stride) - i32(params.pad_h);
        iw0[i] = i32(ow * params.stride) - i32(params.pad_w);
    }

    let bias = vec4<f32>(b[kc.x], b[kc.y], b[kc.z], b[kc.w]);
    var acc0 = bias;
    var acc1 = bias;
    var acc2 = bias;
    var acc3 = bias;
    let hi_h = vec4<i32>(i32(params.h));
    let hi_w = vec4<i32>(i32(params.w));
    for (var ky = 0u; ky < params.kh; ky++) {
        let ih = ih0 + vec4<i32>(i32(ky));
        let ok_h = (ih >= vec4<i32>(0)) & (ih < hi_h);
        for (var kx = 0u; kx < params.kw; kx++) {
            let iw = iw0 + vec4<i32>(i32(kx));
            let ok = ok_h & (iw >= vec4<i32>(0)) & (iw < hi_w);
            if (!any(ok)) {
                continue;
            }
            let pos = (vec4<u32>(ih) * params.w + vec4<u32>(iw)) * cc + img;
            let base = select(vec4<u32>(0u), pos, ok);
            var wo = (ky * params.kw + kx) * cc * kk;
            for (var ci = 0u; ci < cc; ci++) {
                let wv = vec4<f32>(w[wo + kc.x], w[wo + kc.y], w[wo + kc.z], w[wo + kc.w]);
                acc0 += select(0.0, x[base.x + ci], ok.x) * wv;
                acc1 += select(0.0, x[base.y + ci], ok.y) * wv;
                acc2 += select(0.0, x[base.z + ci], ok.z) * wv;
                acc3 += select(0.0, x[base.w + ci], ok.w) * wv;
                wo += kk;
            }
        }
    }

    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + i;
        if (m >= m_total) {
            break;
        }
        for (var j = 0u; j < 4u; j++) {
            if (k0 + j < kk) {
                y[m * kk + k0 + j] = accs[i][j];
            }
        }
    }
}
