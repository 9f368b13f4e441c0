// conv2d_backward_weight: the gradient of conv2d_forward's y with respect to w,
// dw[ky,kx,c,k] = sum over (n,oh,ow) of x[n, oh*stride - pad_h + ky, ow*stride - pad_w + kx, c]
// * dy[n,oh,ow,k], summed over one split of the N*OH output rows.
//
// Bindings (group 0):
//   0 uniform            params: Params (same struct as conv2d_forward)
//   1 storage read       x: array<f32>, [N,H,W,C]
//   2 storage read       dy: array<f32>, [N,OH,OW,K]
//   3 storage read_write part: array<f32>, [SPLITS,KH,KW,C,K]; dw itself when SPLITS = 1,
//                        else partial sums that conv2d_backward_weight_reduce adds up
// Params: n, h, w, c, k, kh, kw, stride, pad_h, pad_w (padding before), out_h, out_w,
// split_rows (output rows (n,oh) per split), splits, two padding words.
//
// Implicit GEMM, dw seen as [KH*KW*C, K], reduction over N*OH*OW. Each invocation keeps a
// 4 input channel x 4 output channel tile in registers, no workgroup memory, and sums rows
// split*split_rows .. (split+1)*split_rows in order: deterministic, no atomics. Flat index
// t = gid.x + gid.y * nwg.x * 64 = ((split*KH*KW + ky*KW + kx)*ceil(C/4) + c tile)*ceil(K/4)
// + k tile. Workgroup 64.

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
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 64u;
    let kk = params.k;
    let cc = params.c;
    let tiles_k = (kk + 3u) / 4u;
    let tiles_c = (cc + 3u) / 4u;
    let taps = params.kh * params.kw;
    let k0 = (t % tiles_k) * 4u;
    let r1 = t / tiles_k;
    let c0 = (r1 % tiles_c) * 4u;
    let r2 = r1 / tiles_c;
    let tap = r2 % taps;
    let split = r2 / taps;
    if (split >= params.splits) {
        return;
    }
    let ky = tap / params.kw;
    let kx = tap % params.kw;

    // Edge tiles read clamped (valid) indices and skip their stores.
    let kc = min(vec4<u32>(k0, k0 + 1u, k0 + 2u, k0 + 3u), vec4<u32>(kk - 1u));
    let ch = min(vec4<u32>(c0, c0 + 1u, c0 + 2u, c0 + 3u), vec4<u32>(cc - 1u));
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let rows = params.n * params.out_h;
    let r_lo = split * params.split_rows;
    let r_hi = min(r_lo + params.split_rows, rows);
    for (var r = r_lo; r < r_hi; r++) {
        let oh = r % params.out_h;
        let img = r / params.out_h;
        let ih = i32(oh * params.stride + ky) - i32(params.pad_h);
        if (ih < 0 || ih >= i32(params.h)) {
            continue;
        }
        let xrow = (img * params.h + u32(ih)) * params.w;
        // Output columns whose input column ow*stride - pad_w + kx lies inside the image.
        let lead = i32(params.pad_w) - i32(kx);
        var ow_lo = 0u;
        if (lead > 0) {
            ow_lo = (u32(lead) + params.stride - 1u) / params.stride;
        }
        let tail = i32(params.w + params.pad_w) - i32(kx);
        var ow_hi = 0u;
        if (tail > 0) {
            ow_hi = min(params.out_w, (u32(tail) + params.stride - 1u) / params.stride);
        }
        for (var ow = ow_lo; ow < ow_hi; ow++) {
            let iw = ow * params.stride + kx - params.pad_w;
            let xb = (xrow + iw) * cc;
            let db = (r * params.out_w + ow) * kk;
            let dv = vec4<f32>(dy[db + kc.x], dy[db + kc.y], dy[db + kc.z], dy[db + kc.w]);
            acc0 += x[xb + ch.x] * dv;
            acc1 += x[xb + ch.y] * dv;
            acc2 += x[xb + ch.z] * dv;
            acc3 += x[xb + ch.w] * dv;
        }
    }

    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    let out0 = (split * taps + tap) * cc * kk;
    for (var i = 0u; i < 4u; i++) {
        if (c0 + i >= cc) {
            break;
        }
        for (var j = 0u; j < 4u; j++) {
            if (k0 + j < kk) {
                part[out0 + (c0 + i) * kk + k0 + j] = accs[i][j];
            }
        }
    }
}
