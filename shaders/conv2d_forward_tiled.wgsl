// conv2d_forward_tiled: y = conv2d(x, w) + b, the variant for real GPUs: operand tiles are
// staged in workgroup memory. Same results as conv2d_forward up to summation order.
//
// Bindings (group 0):
//   0 uniform            params: Params (same struct as conv2d_forward)
//   1 storage read       x: array<f32>, [N,H,W,C]
//   2 storage read       w: array<f32>, [KH,KW,C,K], read as a matrix [KH*KW*C, K]
//   3 storage read       b: array<f32>, [K]
//   4 storage read_write y: array<f32>, [N,OH,OW,K]
// Params: n, h, w, c, k, kh, kw, stride, pad_h, pad_w (padding before), out_h, out_w,
// split_rows and splits (unused here), two padding words.
//
// Implicit GEMM, y seen as [M = N*OH*OW, K], reduction index r = (ky*KW + kx)*C + c. A
// workgroup of 64 (8x8) computes a 32 pixel x 32 channel block; each invocation a 4x4 tile
// of it. The reduction runs in chunks of 16: the workgroup stages 16x32 input values
// (gathered through the padding) and 16x32 weights, then every invocation multiplies from
// workgroup memory. Block index = wid.x + wid.y * nwg.x; channel block index % ceil(K/32),
// pixel block index / ceil(K/32).

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

const BM: u32 = 32u;
const BN: u32 = 32u;
const BK: u32 = 16u;

// [BK][BM] gathered inputs and [BK][BN] weights of the current chunk.
var<workgroup> xs: array<f32, 512>;
var<workgroup> ws: array<f32, 512>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let kk = params.k;
    let cc = params.c;
    let blocks_n = (kk + BN - 1u) / BN;
    let m_total = params.n * params.out_h * params.out_w;
    let block = wid.x + wid.y * nwg.x;
    let m_base = (block / blocks_n) * BM;
    let k_base = (block % blocks_n) * BN;
    // Uniform per workgroup, so every invocation leaves before any barrier.
    if (m_base >= m_total) {
        return;
    }
    let r_total = params.kh * params.kw * cc;

    // The pixel this invocation gathers for the staging of xs, fixed over the chunks.
    let lp = lid % BM;
    let lr = lid / BM;
    let gm = m_base + lp;
    let m_ok = gm < m_total;
    let mc = min(gm, m_total - 1u);
    let ow = mc % params.out_w;
    let orow = mc / params.out_w;
    let img = (orow / params.out_h) * params.h * params.w * cc;
    let ih0 = i32((orow % params.out_h) * params.stride) - i32(params.pad_h);
    let iw0 = i32(ow * params.stride) - i32(params.pad_w);

    let tx = lid % 8u;
    let ty = lid / 8u;
    let kc = min(vec4<u32>(k_base + tx * 4u) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(kk - 1u));
    let bias = vec4<f32>(b[kc.x], b[kc.y], b[kc.z], b[kc.w]);
    var acc0 = bias;
    var acc1 = bias;
    var acc2 = bias;
    var acc3 = bias;

    for (var r0 = 0u; r0 < r_total; r0 += BK) {
        for (var i = 0u; i < BK * BM / 64u; i++) {
            let r_local = lr + i * (64u / BM);
            let r = r0 + r_local;
            var v = 0.0;
            if (m_ok && r < r_total) {
                let tap = r / cc;
                let ih = ih0 + i32(tap / params.kw);
                let iw = iw0 + i32(tap % params.kw);
                if (ih >= 0 && ih < i32(params.h) && iw >= 0 && iw < i32(params.w)) {
                    v = x[img + (u32(ih) * params.w + u32(iw)) * cc + r % cc];
                }
            }
            xs[r_local * BM + lp] = v;
        }
        for (var i = 0u; i < BK * BN / 64u; i++) {
            let e = lid + i * 64u;
            let r = r0 + e / BN;
            let kn = k_base + e % BN;
            var v = 0.0;
            if (r < r_total && kn < kk) {
                v = w[r * kk + kn];
            }
            ws[e] = v;
        }
        workgroupBarrier();
        for (var r = 0u; r < BK; r++) {
            let wv = vec4<f32>(ws[r * BN + tx * 4u], ws[r * BN + tx * 4u + 1u],
                               ws[r * BN + tx * 4u + 2u], ws[r * BN + tx * 4u + 3u]);
            let xo = r * BM + ty * 4u;
            acc0 += xs[xo] * wv;
            acc1 += xs[xo + 1u] * wv;
            acc2 += xs[xo + 2u] * wv;
            acc3 += xs[xo + 3u] * wv;
        }
        workgroupBarrier();
    }

    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let m = m_base + ty * 4u + i;
        if (m >= m_total) {
            break;
        }
        for (var j = 0u; j < 4u; j++) {
            let kn = k_base + tx * 4u + j;
            if (kn < kk) {
                y[m * kk + kn] = accs[i][j];
            }
        }
    }
}
