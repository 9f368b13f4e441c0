//! Atomic writes under kill -9: a child process (this test binary, re-executed) rewrites
//! a large checkpoint in a loop; the parent kills it at random moments and checks that the
//! file on disk is always a complete old or new checkpoint, and that the temporary files a
//! killed writer leaves are never taken for checkpoints.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use naseval::checkpoint::{
    ModelCheckpoint, NamedArray, checkpoint_file_name, is_checkpoint_file_name, is_temp_file_name,
};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Set in the child: the folder to write into.
const CHILD_ENV: &str = "NASEVAL_CKPT_KILL_CHILD_DIR";

const OPS: [&str; 2] = ["conv3x3_16", "identity"];

/// A checkpoint of about 8 MB whose every tensor value and `epochs_trained` is `no`,
/// so a mix of two generations would show.
fn generation(no: u64) -> ModelCheckpoint {
    let generation_no = no;
    let tensors = (0..4)
        .map(|i| NamedArray {
            path: format!("model/L{i}/kernel"),
            shape: vec![512, 1024],
            data: vec![generation_no as f32; 512 * 1024],
        })
        .collect();
    ModelCheckpoint {
        ops: OPS.iter().map(|s| s.to_string()).collect(),
        dataset: "mnist".into(),
        input_shape: [28, 28, 1],
        classes: 10,
        tensors,
        epochs_trained: generation_no,
        rng_state: vec![42, generation_no],
        ..Default::default()
    }
}

/// The child's body; a no-op in a normal test run.
#[test]
fn kill_child_writer_loop() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let path = Path::new(&dir).join(checkpoint_file_name(&OPS, false));
    // Continue from the generation on disk so that generations only grow.
    let mut next = ModelCheckpoint::load(&path).map_or(0, |m| m.epochs_trained + 1);
    loop {
        generation(next).save(&path).unwrap();
        next += 1;
    }
}

#[test]
fn kill_minus_9_during_writes_leaves_an_old_or_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(checkpoint_file_name(&OPS, false));
    let exe = std::env::current_exe().unwrap();
    let mut rng = StdRng::seed_from_u64(9);
    let mut last_gen = None;
    let mut seen = std::collections::BTreeSet::new();
    let start = Instant::now();
    // At least 12 rounds, and more (up to 60) on a machine so loaded that fewer than two
    // generations were seen.
    let mut round = 0;
    while round < 12 || (seen.len() < 2 && round < 60) {
        round += 1;
        let mut child = Command::new(&exe)
            .args([
                "kill_child_writer_loop",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(20..250)));
        child.kill().unwrap(); // SIGKILL on Unix.
        child.wait().unwrap();

        // The file is absent only before the first write completed; otherwise it loads,
        // is one whole generation, and is not older than one seen before.
        match ModelCheckpoint::load(&path) {
            Ok(m) => {
                let generation_no = m.epochs_trained;
                for t in &m.tensors {
                    assert!(
                        t.data.iter().all(|&v| v == generation_no as f32),
                        "round {round}: `{}` mixes generations",
                        t.path
                    );
                }
                assert_eq!(m.rng_state, [42, generation_no]);
                assert!(
                    last_gen.is_none_or(|l| generation_no >= l),
                    "round {round}: went back"
                );
                last_gen = Some(generation_no);
                seen.insert(generation_no);
            }
            Err(e) => {
                assert!(last_gen.is_none() && !path.exists(), "round {round}: {e}");
            }
        }

        // Whatever a killed writer left: temporary names, never checkpoint names.
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if name == checkpoint_file_name(&OPS, false) {
                continue;
            }
            assert!(
                is_temp_file_name(&name) && !is_checkpoint_file_name(&name),
                "round {round}: unexpected file {name}"
            );
        }
    }
    assert!(
        seen.len() >= 2,
        "only generations {seen:?} were observed; the writer is too slow for the kill timing"
    );
    // Each temporary file left is a kill that landed inside a write.
    let interrupted = std::fs::read_dir(dir.path()).unwrap().count() - 1;
    eprintln!(
        "kill -9: {round} rounds in {:?}, generations seen {seen:?}, {interrupted} kills \
         inside a write",
        start.elapsed()
    );
}
