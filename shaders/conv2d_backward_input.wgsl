// conv2d_backward_input: dx = the gradient of conv2d_forward's y with respect to x, as a
// gather: dx[n,ih,iw,c] = sum over (ky,kx,k) of dy[n,oh,ow,k] * w[ky,kx,c,k] where
// oh*stride - pad_h + ky = ih and ow*stride - pad_w + kx = iw. Overwrites dx.
//
// Bindings (group 0):
//   0 uniform            params: Params (same struct as conv2d_forward)
//   1 storage read       dy: array<f32>, [N,OH,OW,K]
//   2 storage read       w: array<f32>, [KH,KW,C,K]
//   3 storage read_write dx: array<f32>, [N,H,W,C]
// Params: n, h, w, c, k, kh, kw, stride, pad_h, pad_w (padding before), out_h, out_w,
// split_rows and splits (unused here), two padding words.
//
// Implicit GEMM, dx seen as [M = N*H*W, C], reduction over KH*KW*K. Each invocation keeps a
// 4 pixel x 4 channel tile of dx in registers, no workgroup memory. Flat tile index
// t = gid.x + gid.y * nwg.x * 64; channel tile t % ceil(C/4), pixel tile t / ceil(C/4).
// Workgroup 64.

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
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    let kk = params.k;
    let cc = params.c;
    let s = i32(params.stride);
    let tiles_c = (cc + 3u) / 4u;
    let m_total = params.n * params.h * params.w;
    let m0 = (t / tiles_c) * 4u;
    let c0 = (t % tiles_c) * 4u;
    if (m0 >= m_total) {
        return;
    }

    // Edge tiles read clamped (valid) indices and skip their stores.
    let ch = min(vec4<u32>(c0, c0 + 1u, c0 + 2u, c0 + 3u), vec4<u32>(cc - 1u));
    var img: vec4<u32>;
    var oh0: vec4<i32>;
    var ow0: vec4<i32>;
    for (var i = 0u; i < 4u; i++) {
        let m = min(m0 + i, m_total - 1u);
        let iw = m % params.w;
        let r = m / params.w;
        let ih = r % params.h;
        img[i] = (r / params.h) * params.out_h * params.out_w * kk;
        oh0[i] = i32(ih + params.pad_h);
        ow0[i] = i32(iw + params.pad_w);
    }

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let vs = vec4<i32>(s);
    let hi_h = vec4<i32>(i32(params.out_h));
    let hi_w = vec4<i32>(i32(params.out_w));
    for (var ky = 0u; ky < params.kh; ky++) {
        // oh*stride = ih + pad_h - ky must be a non-negative multiple of the stride.
        let nh = oh0 - vec4<i32>(i32(ky));
        let oh = nh / vs;
        let ok_h = (nh >= vec4<i32>(0)) & (oh * vs == nh) & (oh < hi_h);
        for (var kx = 0u; kx < params.kw; kx++) {
            let nw = ow0 - vec4<i32>(i32(kx));
            let ow = nw / vs;
            let ok = ok_h & (nw >= vec4<i32>(0)) & (ow * vs == nw) & (ow < hi_w);
            if (!any(ok)) {
                continue;
            }
            let pos = (vec4<u32>(oh) * params.out_w + vec4<u32>(ow)) * kk + img;
            let base = select(vec4<u32>(0u), pos, ok);
            let wb = (ky * params.kw + kx) * cc * kk;
            let wr = ch * kk + vec4<u32>(wb);
            for (var k = 0u; k < kk; k++) {
                let wv = vec4<f32>(w[wr.x + k], w[wr.y + k], w[wr.z + k], w[wr.w + k]);
                acc0 += select(0.0, dy[base.x + k], ok.x) * wv;
                acc1 += select(0.0, dy[base.y + k], ok.y) * wv;
                acc2 += select(0.0, dy[base.z + k], ok.z) * wv;
                acc3 += select(0.0, dy[base.w + k], ok.w) * wv;
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
            if (c0 + j < cc) {
                dx[m * cc + c0 + j] = accs[i][j];
            }
        }
    }
}
