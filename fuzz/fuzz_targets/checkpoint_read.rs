//! Fuzz target for the checkpoint reader: any bytes must give a validated file or a typed
//! error, never a panic, a hang or an allocation sized by an unchecked field. A file that
//! validates must survive every accessor and re-serialize to an equal image.
//!
//! cargo-fuzz sets `cfg(fuzzing)`, under which the reader skips checksum comparisons so
//! that mutations reach the parser behind them.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

// Compiling the module alone keeps the instrumented build small; it depends on nothing
// else in naseval.
#[path = "../../src/checkpoint/mod.rs"]
#[allow(dead_code, unused_imports)]
mod checkpoint;

use checkpoint::{CheckpointFile, ModelCheckpoint, to_bytes};

fuzz_target!(|data: &[u8]| {
    let name = Path::new("fuzz.ckpt");
    let Ok(f) = CheckpointFile::from_bytes(name, data) else {
        return;
    };
    for e in f.walk() {
        let _ = e.path();
        if let Some(d) = e.as_dataset() {
            let _ = d.to_data();
            let _ = d.strings();
            let _ = d.view::<f32>();
            let _ = d.view::<u64>();
        }
    }
    let g = f.to_group();
    let image = to_bytes(&g).expect("a validated tree re-serializes");
    let again = CheckpointFile::from_bytes(name, &image).expect("a re-serialized tree reads");
    assert_eq!(
        to_bytes(&again.to_group()).expect("re-serializes twice"),
        image,
        "serialization is not a fixed point"
    );
    if let Ok(m) = ModelCheckpoint::from_file(&f) {
        let expected: Vec<(String, Vec<usize>)> = m
            .tensors
            .iter()
            .map(|t| (t.path.clone(), t.shape.clone()))
            .collect();
        m.check_tensors(&expected)
            .expect("a checkpoint fits its own tensor list");
        let g = m.to_group().expect("a loaded model re-serializes");
        let image = to_bytes(&g).expect("a model tree serializes");
        let f2 = CheckpointFile::from_bytes(name, &image).expect("a model image reads");
        ModelCheckpoint::from_file(&f2).expect("a model image loads");
    }
});
