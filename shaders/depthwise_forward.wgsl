// depthwise_forward (multiplier 1, no bias):
// y[b,oy,ox,c] = sum over ky, kx of x[b, oy*stride - pad_top + ky, ox*stride - pad_left + kx, c]
//                * w[ky,kx,c], with taps outside the input contributing nothing.
//
// Bindings (group 0):
//   0 uniform            params: Params { n, h, w, c, oh, ow, kh, kw, stride, pad_top,
//                        pad_left } (rows, parts unused here)
//   1 storage read       x: array<f32>, [N,H,W,C]
//   2 storage read       wt: array<f32>, [KH,KW,C]
//   3 storage read_write y: array<f32>, [N,OH,OW,C]
// One invocation per output row and channel, flat index e = (b*OH + oy)*C + c (neighbours
// read neighbouring channels); it walks ox = 0 .. OW-1, which spreads its index
// arithmetic over a whole row. Workgroup 256. The grid is split over x and y (grid_1d in
// src/gpu/launch.rs): e = gid.x + gid.y * num_workgroups.x * 256.

struct Params {
    n: u32,
    h: u32,
    w: u32,
    c: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    stride: u32,
    pad_top: u32,
    pad_left: u32,
    rows: u32,
    parts: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * 256u;
    let c = params.c;
    if (e >= params.n * params.oh * c) {
        return;
    }
    let ch = e % c;
    let row = e / c;
    let oy = row % params.oh;
    let b = row / params.oh;

    // Rows of the window inside the input: ky in ky_lo .. ky_hi.
    let iy0 = i32(oy * params.stride) - i32(params.pad_top);
    let ky_lo = u32(max(-iy0, 0));
    let ky_hi = u32(clamp(i32(params.h) - iy0, 0, i32(params.kh)));
    let x_img = b * params.h;
    var yo = row * params.ow * c + ch;
    for (var ox = 0u; ox < params.ow; ox++) {
        let ix0 = i32(ox * params.stride) - i32(params.pad_left);
        let kx_lo = u32(max(-ix0, 0));
        let kx_hi = u32(clamp(i32(params.w) - ix0, 0, i32(params.kw)));
        var sum = 0.0;
        for (var ky = ky_lo; ky < ky_hi; ky++) {
            let xrow = (x_img + u32(iy0 + i32(ky))) * params.w;
            let wrow = ky * params.kw;
            for (var kx = kx_lo; kx < kx_hi; kx++) {
                let xi = (xrow + u32(ix0 + i32(kx))) * c + ch;
                sum += x[xi] * wt[(wrow + kx) * c + ch];
            }
        }
        y[yo] = sum;
        yo += c;
    }
}
