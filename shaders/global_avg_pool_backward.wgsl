// global_avg_pool_backward: dx[n,h,w,c] = dy[n,c] / (H*W).
//
// Bindings (group 0):
//   0 uniform            params: Params { n, hw = H*W, c, total = N*H*W*C }
//   1 storage read       dy: array<f32>, [N,C]
//   2 storage read_write dx: array<f32>, [N,H,W,C], overwritten
// One invocation per dx element, workgroup 256, grid split over x and y (grid_1d):
// flat index = gid.x + gid.y * num_workgroups.x * 256.

struct Params {
    n: u32,
    hw: u32,
    c: u32,
    total: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= params.total) {
        return;
    }
    let c = i % params.c;
    let n = i / (params.hw * params.c);
    dx[i] = dy[n * params.c + c] / f32(params.hw);
}
