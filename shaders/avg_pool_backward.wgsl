// avg_pool_backward: gradient of KxK average pooling, as a gather: each input cell sums
// dy / count over the windows that cover it, count being that window's number of real
// (unpadded) cells. No atomics; windows are visited in a fixed order.
//
// Bindings (group 0):
//   0 uniform            params: Params (below)
//   1 storage read       dy: array<f32>, [N,OH,OW,C]
//   2 storage read_write dx: array<f32>, [N,H,W,C], overwritten
// Params: n, h, w, c (input), oh, ow (output), size (window side), stride, pad_top,
// pad_left (padding before), rows = N*H.
// Grid (row_grid in src/ops/pool.rs): one workgroup row per input row (n, iy), row =
// workgroup_id.y + workgroup_id.z * num_workgroups.y; within it one invocation per
// (ix, c), j = global_invocation_id.x, workgroup 64. Divisions go through div_near
// (no integer division).

struct Params {
    n: u32,
    h: u32,
    w: u32,
    c: u32,
    oh: u32,
    ow: u32,
    size: u32,
    stride: u32,
    pad_top: u32,
    pad_left: u32,
    rows: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

// The output positions whose windows cover input position `p` (padded coordinate
// p + pad): o*stride <= p + pad <= o*stride + size - 1, clipped to [0, out).
fn covering(p: u32, pad: u32, out: u32) -> vec2<u32> {
    let q = p + pad;
    let lo = div_near(max(q + params.stride, params.size) - params.size, params.stride);
    let hi = min(div_near(q, params.stride) + 1u, out);
    return vec2<u32>(lo, max(hi, lo));
}

// Real cells of window `o` along one axis of length `len`.
fn real_cells(o: u32, pad: u32, len: u32) -> u32 {
    let start = i32(o * params.stride) - i32(pad);
    let lo = max(start, 0);
    let hi = min(start + i32(params.size), i32(len));
    return u32(max(hi - lo, 1));
}

// floor(v / d) for v < 2^20 (the launcher checks that N*H and W*C stay below), without an
// integer division: CPU drivers (lavapipe) run vector integer divisions one lane at a
// time, float divisions eight lanes at once. The f32 quotient of exact operands (error
// <= 2.5 ulp) is off by at most one, which the integer checks correct.
fn div_near(v: u32, d: u32) -> u32 {
    var q = u32(f32(v) / f32(d));
    q -= select(0u, 1u, q * d > v);
    q += select(0u, 1u, (q + 1u) * d <= v);
    return q;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wid.y + wid.z * nwg.y;
    let j = gid.x;
    if (row >= params.rows || j >= params.w * params.c) {
        return;
    }
    let n = div_near(row, params.h);
    let iy = row - n * params.h;
    let ix = div_near(j, params.c);
    let c = j - ix * params.c;
    let i = row * params.w * params.c + j;

    let ry = covering(iy, params.pad_top, params.oh);
    let rx = covering(ix, params.pad_left, params.ow);
    var acc = 0.0;
    for (var oy = ry.x; oy < ry.y; oy++) {
        let cells_y = real_cells(oy, params.pad_top, params.h);
        let base = (n * params.oh + oy) * params.ow;
        for (var ox = rx.x; ox < rx.y; ox++) {
            let count = cells_y * real_cells(ox, params.pad_left, params.w);
            acc += dy[(base + ox) * params.c + c] / f32(count);
        }
    }
    dx[i] = acc;
}
