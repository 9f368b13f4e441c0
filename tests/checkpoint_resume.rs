//! Exact resume (issue 5): a 2-epoch evaluation killed with SIGKILL right after its
//! epoch-1 checkpoint and resumed in a new process ends bit-identical to an uninterrupted
//! run: every weight, moving statistic and velocity, the history and the test metrics.
//!
//! Augmentation is on and the candidate has dropout and batch norm, so that every random
//! stream (shuffle, augmentation, dropout masks) and every piece of state has to resume;
//! the momentum record is on, so that it too must span the epochs of both processes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

use naseval::checkpoint::ModelCheckpoint;
use naseval::eval::EvalResult;

const ARCH: &str = "conv3x3_16bnrelu|dropout|max_pool3x3|sep3x3_32";

fn sha1() -> String {
    naseval::arch::sha1_hex(&ARCH.replace('|', ""))
}

/// `naseval evaluate` of the test's run in `results`, plus `extra` flags.
fn evaluate(results: &Path, subset: usize, extra: &[&str]) -> Command {
    let subset = subset.to_string();
    let flags = [
        "evaluate",
        "--subset",
        &subset,
        "--test-subset",
        "300",
        "--batch-size",
        "64",
        "--epochs",
        "2",
        "--act-beta",
        "0",
        "--momentum-epochs",
        "1",
        "--seed",
        "7",
        "--json",
        "--quiet",
        "--results",
    ];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_naseval"));
    cmd.args(flags).arg(results).args(extra).arg(ARCH);
    cmd
}

fn run(mut cmd: Command) -> EvalResult {
    let out = cmd
        .output()
        .expect("the naseval binary could not be started");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "naseval failed ({}):\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).expect("stdout is not UTF-8");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Epochs in the checkpoint at `path`, if one is there and readable. Writes are atomic, so
/// a file that is there is complete.
fn epochs_in(path: &Path) -> Option<u64> {
    ModelCheckpoint::load(path).ok().map(|ck| ck.epochs_trained)
}

/// Starts the run, waits for its epoch-1 checkpoint and kills the process at once. Returns
/// false when the kill came too late (the checkpoint already holds epoch 2).
fn start_and_kill_after_epoch_1(results: &Path, subset: usize, ckpt: &Path) -> bool {
    let mut child = evaluate(results, subset, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the naseval binary could not be started");
    loop {
        if let Some(status) = child.try_wait().expect("cannot wait for naseval") {
            panic!("the run ended ({status}) before it could be killed");
        }
        if epochs_in(ckpt).is_some() {
            break;
        }
        sleep(Duration::from_millis(20));
    }
    // `Child::kill` sends SIGKILL on Unix: no handler runs, nothing is flushed.
    child.kill().expect("cannot kill naseval");
    child.wait().expect("cannot wait for naseval");
    epochs_in(ckpt) == Some(1)
}

/// A history file's text without the lines of the timing fields. Comparing text is
/// stricter than comparing parsed values: the shortest text of an f64 is unique, while
/// two parses may round alike.
fn history_text_without_timing(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.contains("\"seconds\"") && !l.contains("\"images_per_second\""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A history file's records without the timing fields, which differ between any two runs.
fn history_without_timing(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut v: Vec<serde_json::Value> = serde_json::from_str(&text).expect("history is JSON");
    for r in &mut v {
        let r = r.as_object_mut().expect("an epoch record is an object");
        r.remove("seconds").expect("no seconds field");
        r.remove("images_per_second")
            .expect("no images_per_second field");
    }
    v
}

fn weights(results: &Path) -> PathBuf {
    results.join("weights").join(format!("{}.ckpt", sha1()))
}

#[test]
fn killed_after_epoch_1_and_resumed_equals_uninterrupted() {
    let dir = tempfile::tempdir().expect("no temporary folder");
    let killed = dir.path().join("killed");
    let whole = dir.path().join("whole");

    // Kill after epoch 1. An epoch takes seconds and the poll 20 ms, so a late kill is
    // unlikely; should it happen anyway, start over with an epoch twice as long.
    let mut subset = 1500;
    let mut attempts = 0;
    while !start_and_kill_after_epoch_1(&killed, subset, &weights(&killed)) {
        attempts += 1;
        assert!(attempts < 4, "could not kill the run between its epochs");
        std::fs::remove_dir_all(&killed).expect("cannot clear the results folder");
        subset *= 2;
    }
    let history = killed
        .join("training_history")
        .join(format!("{}.json", sha1()));
    assert!(
        !killed.join("evaluations.jsonl").exists(),
        "the killed run finished"
    );

    let resumed = run(evaluate(&killed, subset, &["--resume"]));
    assert_eq!(
        resumed.epochs, 1,
        "the resumed run should train epoch 2 only"
    );
    let uninterrupted = run(evaluate(&whole, subset, &[]));
    assert_eq!(uninterrupted.epochs, 2);

    // Test metrics, exactly.
    assert_eq!(resumed.fitness.to_bits(), uninterrupted.fitness.to_bits());
    assert_eq!(
        resumed.test_loss.to_bits(),
        uninterrupted.test_loss.to_bits()
    );
    assert_eq!(resumed.params, uninterrupted.params);
    assert_eq!(
        resumed.momentum.len(),
        2,
        "the momentum record spans both epochs"
    );
    assert_eq!(resumed.momentum, uninterrupted.momentum);
    assert_eq!(resumed.filename, uninterrupted.filename);

    // Every tensor, bit for bit.
    let a = ModelCheckpoint::load(&weights(&killed)).expect("resumed checkpoint");
    let b = ModelCheckpoint::load(&weights(&whole)).expect("uninterrupted checkpoint");
    assert_eq!(a.epochs_trained, 2);
    assert_eq!(b.epochs_trained, 2);
    assert_eq!(a.optimizer_step, b.optimizer_step);
    assert_eq!(a.tensors.len(), b.tensors.len());
    assert!(
        a.tensors
            .iter()
            .any(|t| t.path.starts_with("optimizer/velocity/"))
    );
    assert!(a.tensors.iter().any(|t| t.path.contains("moving_variance")));
    for (x, y) in a.tensors.iter().zip(&b.tensors) {
        assert_eq!(x.path, y.path);
        assert_eq!(x.shape, y.shape, "{}", x.path);
        let first = x
            .data
            .iter()
            .zip(&y.data)
            .position(|(p, q)| p.to_bits() != q.to_bits());
        if let Some(i) = first {
            panic!(
                "{} differs at element {i}: resumed {} vs uninterrupted {}",
                x.path, x.data[i], y.data[i]
            );
        }
    }

    // The history, but for the timing fields; in the files and in the checkpoints.
    let h_whole = whole
        .join("training_history")
        .join(format!("{}.json", sha1()));
    let h = history_without_timing(&history);
    assert_eq!(h.len(), 2);
    assert_eq!(h, history_without_timing(&h_whole));
    assert_eq!(
        history_text_without_timing(&history),
        history_text_without_timing(&h_whole)
    );
    let strip = |v: &serde_json::Value| {
        let mut v = v.clone();
        for r in v.as_array_mut().expect("history is a list") {
            r.as_object_mut().map(|o| o.remove("seconds"));
            r.as_object_mut().map(|o| o.remove("images_per_second"));
        }
        v
    };
    assert_eq!(strip(&a.history), strip(&b.history));
    assert_eq!(serde_json::to_value(&h).unwrap(), strip(&a.history));

    // Resuming the now finished evaluation trains nothing: the stored result stands and
    // neither the checkpoint nor evaluations.jsonl changes.
    let before = std::fs::read(weights(&killed)).expect("checkpoint");
    let log = killed.join("evaluations.jsonl");
    let lines = std::fs::read_to_string(&log).expect("log").lines().count();
    let again = run(evaluate(&killed, subset, &["--resume"]));
    assert_eq!(again.fitness.to_bits(), resumed.fitness.to_bits());
    assert_eq!(again.epochs, resumed.epochs);
    assert_eq!(std::fs::read(weights(&killed)).expect("checkpoint"), before);
    let after = std::fs::read_to_string(&log).expect("log").lines().count();
    assert_eq!(after, lines, "a finished evaluation was logged again");
}
