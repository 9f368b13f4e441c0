// max_pool_forward: KxK max pooling over NHWC activations, 'same' or 'valid' padding.
// Padding never wins; within a window the first maximum in scan order (rows, then
// columns) wins and its flat index into x is recorded for the backward pass.
//
// Bindings (group 0):
//   0 uniform            params: Params (below)
//   1 storage read       x: array<f32>, [N,H,W,C]
//   2 storage read_write y: array<f32>, [N,OH,OW,C]
//   3 storage read_write argmax: array<u32>, [N,OH,OW,C], flat index into x
// Params: n, h, w, c (input), oh, ow (output), size (window side), stride, pad_top,
// pad_left (padding before), rows = N*OH.
// Grid (row_grid in src/ops/pool.rs): one workgroup row per output row (n, oy), row =
// workgroup_id.y + workgroup_id.z * num_workgroups.y; within it one invocation per
// (ox, c), j = global_invocation_id.x, workgroup 64. Divisions go through div_near
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
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>;

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
    if (row >= params.rows || j >= params.ow * params.c) {
        return;
    }
    let n = div_near(row, params.oh);
    let oy = row - n * params.oh;
    let ox = div_near(j, params.c);
    let c = j - ox * params.c;
    let i = row * params.ow * params.c + j;

    // The window clipped to the real cells; 'same' padding leaves at least one inside.
    let y0 = i32(oy * params.stride) - i32(params.pad_top);
    let x0 = i32(ox * params.stride) - i32(params.pad_left);
    let ylo = u32(max(y0, 0));
    let yhi = u32(min(y0 + i32(params.size), i32(params.h)));
    let xlo = u32(max(x0, 0));
    let xhi = u32(min(x0 + i32(params.size), i32(params.w)));

    var best = -3.4028235e38;
    var best_at = 0xffffffffu;
    for (var iy = ylo; iy < yhi; iy++) {
        let line = (n * params.h + iy) * params.w;
        for (var ix = xlo; ix < xhi; ix++) {
            let at = (line + ix) * params.c + c;
            let v = x[at];
            // Strictly greater keeps the first maximum; the first cell is always taken so
            // that an all -inf (or NaN) window still names a real cell.
            if (best_at == 0xffffffffu || v > best) {
                best = v;
                best_at = at;
            }
        }
    }
    y[i] = best;
    argmax[i] = best_at;
}
