// depthwise_backward_weight, stage 1 of 2: partial[s,ky,kx,c] = sum over the output rows r
// of chunk s, and ox in order, of
// x[b, oy*stride - pad_top + ky, ox*stride - pad_left + kx, c] * dy[b,oy,ox,c],
// where r = b*OH + oy runs over s*rows .. min((s+1)*rows, N*OH) in order.
// With a single chunk the output is dw itself; otherwise matmul_sum_partials adds the
// chunks in order s = 0, 1, ... (no atomics): bit-identical from run to run.
//
// Bindings (group 0):
//   0 uniform            params: Params { n, h, w, c, oh, ow, kh, kw, stride, pad_top,
//                        pad_left, rows: output rows per chunk, parts: S }
//   1 storage read       x: array<f32>, [N,H,W,C]
//   2 storage read       dy: array<f32>, [N,OH,OW,C]
//   3 storage read_write partial: array<f32>, [S,KH,KW,C]
// One invocation per partial element, flat index e = s*KH*KW*C + (ky*KW + kx)*C + c
// (neighbours read neighbouring channels), workgroup 256. The grid is split over x and y
// (grid_1d in src/gpu/launch.rs): e = gid.x + gid.y * num_workgroups.x * 256.

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
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * 256u;
    let c = params.c;
    let taps = params.kh * params.kw * c;
    if (e >= taps * params.parts) {
        return;
    }
    let s = e / taps;
    let j = e % taps;
    let ch = j % c;
    let kx = (j / c) % params.kw;
    let ky = j / (c * params.kw);
    let stride = params.stride;
    let first = s * params.rows;
    let last = min(first + params.rows, params.n * params.oh);

    // Output columns whose tap kx lands inside the input: ox in ox_lo .. ox_hi, where
    // ix = ox*stride + kx - pad_left.
    let pl = params.pad_left;
    var ox_lo = 0u;
    if (pl > kx) {
        ox_lo = (pl - kx + stride - 1u) / stride;
    }
    var ox_hi = 0u;
    if (params.w + pl > kx) {
        ox_hi = min(params.ow, (params.w - 1u + pl - kx) / stride + 1u);
    }

    // Walk the chunk's output rows with running coordinates instead of dividing each time.
    var oy = first % params.oh;
    var b = first / params.oh;
    var sum = 0.0;
    for (var r = first; r < last; r++) {
        let iy = i32(oy * stride + ky) - i32(params.pad_top);
        if (iy >= 0 && iy < i32(params.h)) {
            let xrow = (b * params.h + u32(iy)) * params.w;
            let dyrow = r * params.ow;
            for (var ox = ox_lo; ox < ox_hi; ox++) {
                let ix = ox * stride + kx - pl;
                sum += x[(xrow + ix) * c + ch] * dy[(dyrow + ox) * c + ch];
            }
        }
        oy += 1u;
        if (oy == params.oh) {
            oy = 0u;
            b += 1u;
        }
    }
    partial[e] = sum;
}
