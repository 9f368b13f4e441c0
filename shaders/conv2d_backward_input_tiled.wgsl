// conv2d_backward_input_tiled: dx = the gradient of conv2d_forward's y with respect to x,
// the variant for real GPUs: operand tiles are staged in workgroup memory. Same results as
// conv2d_backward_input up to summation order. Overwrites dx.
//
// Bindings (group 0):
//   0 uniform            params: Params (same struct as conv2d_forward)
//   1 storage read       dy: array<f32>, [N,OH,OW,K]
//   2 storage read       w: array<f32>, [KH,KW,C,K]
//   3 storage read_write dx: array<f32>, [N,H,W,C]
// Params: n, h, w, c, k, kh, kw, stride, pad_h, pad_w (padding before), out_h, out_w,
// split_rows and splits (unused here), two padding words.
//
// Implicit GEMM, dx seen as [M = N*H*W, C], reduction index r = (ky*KW + kx)*K + k over the
// taps whose output position oh*stride - pad_h + ky = ih (and likewise for columns) exists.
// A workgroup of 64 (8x8) computes a 32 pixel x 32 channel block; each invocation a 4x4
// tile of it. The reduction runs in chunks of 16: the workgroup stages 16x32 gathered dy
// values (0 where no output position matches) and 16x32 weights, then every invocation
// multiplies from workgroup memory. Block index = wid.x + wid.y * nwg.x; channel block
// index % ceil(C/32), pixel block index / ceil(C/32).

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

const BM: u32 = 32u;
const BN: u32 = 32u;
const BK: u32 = 16u;

// [BK][BM] gathered output gradients and [BK][BN] weights of the current chunk.
var<workgroup> ds: array<f32, 512>;
var<workgroup> ws: array<f32, 512>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let kk = params.k;
    let cc = params.c;
    let s = i32(params.stride);
    let blocks_n = (cc + BN - 1u) / BN;
    let m_total = params.n * params.h * params.w;
    let block = wid.x + wid.y * nwg.x;
    let m_base = (block / blocks_n) * BM;
    let c_base = (block % blocks_n) * BN;
    // Uniform per workgroup, so every invocation leaves before any barrier.
    if (m_base >= m_total) {
        return;
    }
    let r_total = params.kh * params.kw * kk;

    // The input pixel this invocation gathers for the staging of ds, fixed over the chunks.
    let lp = lid % BM;
    let lr = lid / BM;
    let gm = m_base + lp;
    let m_ok = gm < m_total;
    let mc = min(gm, m_total - 1u);
    let iw = mc % params.w;
    let irow = mc / params.w;
    let img = (irow / params.h) * params.out_h * params.out_w * kk;
    let nh0 = i32(irow % params.h + params.pad_h);
    let nw0 = i32(iw + params.pad_w);

    let tx = lid % 8u;
    let ty = lid / 8u;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    for (var r0 = 0u; r0 < r_total; r0 += BK) {
        for (var i = 0u; i < BK * BM / 64u; i++) {
            let r_local = lr + i * (64u / BM);
            let r = r0 + r_local;
            var v = 0.0;
            if (m_ok && r < r_total) {
                let tap = r / kk;
                // oh*stride = ih + pad_h - ky must be a non-negative multiple of the stride.
                let nh = nh0 - i32(tap / params.kw);
                let nw = nw0 - i32(tap % params.kw);
                let oh = nh / s;
                let ow = nw / s;
                if (nh >= 0 && nw >= 0 && oh * s == nh && ow * s == nw
                    && oh < i32(params.out_h) && ow < i32(params.out_w)) {
                    v = dy[img + (u32(oh) * params.out_w + u32(ow)) * kk + r % kk];
                }
            }
            ds[r_local * BM + lp] = v;
        }
        for (var i = 0u; i < BK * BN / 64u; i++) {
            let e = lid + i * 64u;
            let r = r0 + e / BN;
            let cn = c_base + e % BN;
            var v = 0.0;
            if (r < r_total && cn < cc) {
                v = w[((r / kk) * cc + cn) * kk + r % kk];
            }
            ws[e] = v;
        }
        workgroupBarrier();
        for (var r = 0u; r < BK; r++) {
            let wv = vec4<f32>(ws[r * BN + tx * 4u], ws[r * BN + tx * 4u + 1u],
                               ws[r * BN + tx * 4u + 2u], ws[r * BN + tx * 4u + 3u]);
            let d_o = r * BM + ty * 4u;
            acc0 += ds[d_o] * wv;
            acc1 += ds[d_o + 1u] * wv;
            acc2 += ds[d_o + 2u] * wv;
            acc3 += ds[d_o + 3u] * wv;
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
            let cn = c_base + tx * 4u + j;
            if (cn < cc) {
                dx[m * cc + cn] = accs[i][j];
            }
        }
    }
}
