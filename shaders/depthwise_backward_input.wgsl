// depthwise_backward_input: dx[b,iy,ix,c] = sum of dy[b,oy,ox,c] * w[ky,kx,c] over every
// output (oy, ox) and tap (ky, kx) that read x[b,iy,ix,c], i.e. iy = oy*stride - pad_top + ky
// and ix = ox*stride - pad_left + kx. A gather (no atomics); overwrites dx.
//
// Bindings (group 0):
//   0 uniform            params: Params { n, h, w, c, oh, ow, kh, kw, stride, pad_top,
//                        pad_left } (rows, parts unused here)
//   1 storage read       dy: array<f32>, [N,OH,OW,C]
//   2 storage read       wt: array<f32>, [KH,KW,C]
//   3 storage read_write dx: array<f32>, [N,H,W,C]
// One invocation per dx row and channel, flat index e = (b*H + iy)*C + c (neighbours read
// neighbouring channels); it walks ix = 0 .. W-1, stepping the tap arithmetic instead of
// dividing per element. Workgroup 256. The grid is split over x and y (grid_1d in
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
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * 256u;
    let c = params.c;
    if (e >= params.n * params.h * c) {
        return;
    }
    let ch = e % c;
    let row = e / c;
    let iy = row % params.h;
    let b = row / params.h;
    let s = params.stride;

    // Taps that put input row iy in a window: ky = ky0, ky0 + s, ... with output rows
    // qy, qy - 1, ... (ky0 is the smallest ky with iy + pad_top - ky divisible by s).
    let ty = iy + params.pad_top;
    let ky0 = ty % s;
    let qy = i32(ty / s);
    let dy_img = b * params.oh;

    // Same for columns, stepped along ix instead of divided anew: at ix, taps kx = kx0,
    // kx0 + s, ... hit output columns qx, qx - 1, ...
    var kx0 = params.pad_left % s;
    var qx = i32(params.pad_left / s);
    var xo = row * params.w * c + ch;
    for (var ix = 0u; ix < params.w; ix++) {
        var sum = 0.0;
        var ky = ky0;
        var oy = qy;
        while (ky < params.kh && oy >= 0) {
            if (oy < i32(params.oh)) {
                let dyrow = (dy_img + u32(oy)) * params.ow;
                let wrow = ky * params.kw;
                var kx = kx0;
                var ox = qx;
                while (kx < params.kw && ox >= 0) {
                    if (ox < i32(params.ow)) {
                        sum += dy[(dyrow + u32(ox)) * c + ch] * wt[(wrow + kx) * c + ch];
                    }
                    kx += s;
                    ox -= 1;
                }
            }
            ky += s;
            oy -= 1;
        }
        dx[xo] = sum;
        xo += c;
        kx0 += 1u;
        if (kx0 == s) {
            kx0 = 0u;
            qx += 1;
        }
    }
}
