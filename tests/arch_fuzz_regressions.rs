//! The `parse_arch` fuzz target's checks on naseval itself: every seed in
//! fuzz/seeds/parse_arch/ and every regression input in fuzz/regressions/parse_arch/ goes
//! through `fuzz/include/arch_check.rs`, the code the fuzzer runs, against the real crate.
//! Also checks that the fuzz build's copy of `ops::Padding` still matches the real one.
//! No GPU.

use std::fs;
use std::path::{Path, PathBuf};

// arch_check.rs reaches the arch module as `crate::arch`.
use naseval::arch;
use naseval::ops::Padding;

#[path = "../fuzz/include/arch_check.rs"]
mod arch_check;

#[path = "../fuzz/include/ops_padding.rs"]
mod ops_padding;

/// The input files of one folder (README.md excluded), sorted.
fn inputs(folder: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a readable folder entry").path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    files.sort();
    files
}

fn run(path: &Path) -> arch_check::Outcome {
    let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    arch_check::check(&data)
}

/// Seeds must keep reaching the code they were written for: a `refused_*` seed parses and
/// is refused by every lowering; any other seed gives at least one plan.
#[test]
fn fuzz_seeds_reach_the_lowering() {
    let seeds = inputs("fuzz/seeds/parse_arch");
    assert!(seeds.len() >= 8, "only {} seeds", seeds.len());
    for path in seeds {
        let out = run(&path);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("refused_") {
            assert_eq!(out.plans, 0, "{name}: {out:?}");
        } else {
            assert!(out.parsed && out.plans > 0, "{name}: {out:?}");
        }
    }
}

/// Inputs that once made the target fail must now pass its checks.
#[test]
fn fuzz_regressions() {
    for path in inputs("fuzz/regressions/parse_arch") {
        run(&path);
    }
}

#[test]
fn fuzz_padding_copy_matches_ops_padding() {
    let pairs = [
        (Padding::Same, ops_padding::Padding::Same),
        (Padding::Valid, ops_padding::Padding::Valid),
    ];
    for (real, copy) in pairs {
        assert_eq!(
            serde_json::to_string(&real).unwrap(),
            serde_json::to_string(&copy).unwrap()
        );
        for input in 1..=40 {
            for kernel in 1..=12 {
                for stride in 1..=6 {
                    assert_eq!(
                        real.output_and_pad(input, kernel, stride),
                        copy.output_and_pad(input, kernel, stride),
                        "{real:?} input {input} kernel {kernel} stride {stride}"
                    );
                }
            }
        }
    }
}
