//! Fuzz target for the op-list parser, lowering, the memory check and the summary: any
//! text (optionally with a TOML reference-space part, see `include/arch_check.rs`) must
//! give a plan or a typed error, never a panic or an overflow, and every plan must satisfy
//! the invariants the graph builder and the checkpoint paths rely on.

#![no_main]

use libfuzzer_sys::fuzz_target;

// `src/arch` is compiled alone, as `src/checkpoint` is for `checkpoint_read`, so the
// instrumented build holds neither wgpu nor naga. It imports only `ops::Padding` from
// the rest of naseval; `include/ops_padding.rs` provides it.
#[path = "../../src/arch/mod.rs"]
#[allow(dead_code, unused_imports)]
mod arch;

#[path = "../include/ops_padding.rs"]
mod ops;

#[path = "../include/arch_check.rs"]
mod arch_check;

fuzz_target!(|data: &[u8]| {
    arch_check::check(data);
});
