// PLACEHOLDER (params only) until this kernel is written; registered so the crate builds.
struct Params { n: u32, _pad0: u32, _pad1: u32, _pad2: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@compute @workgroup_size(1)
fn main() { _ = params.n; }
