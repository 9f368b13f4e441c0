//! What the `parse_arch` fuzz target checks on one input, shared with
//! `tests/arch_fuzz_regressions.rs` so that a regression file goes through exactly the
//! code the fuzzer ran. The including crate provides `crate::arch` (naseval's, or
//! `src/arch` compiled alone in the fuzz build).
//!
//! Input: UTF-8 text. Everything up to a line `%%` is a candidate (either spelling);
//! what follows, if present, is a TOML document with `[reference_space.*]` and `[stems]`
//! tables as in a naseval config, plus optional `input = [H, W, C]`, `classes = N`,
//! `batch = N` for one more lowering. Without that part the built-in table and stems are
//! used. Every input must give a value or a typed error, never a panic; what is accepted
//! must satisfy the invariants asserted below.

use std::collections::HashSet;

use crate::arch::{Arch, ArchConfig, LayerSpec, NodeKind, Plan, Summary};

/// Inputs lowered for every candidate: MNIST-like, CIFAR-like, and a 1x1 image that makes
/// every 'valid' window and most skip connections fail.
const INPUTS: [[usize; 3]; 3] = [[28, 28, 1], [32, 32, 3], [1, 1, 1]];

/// The per-binding limit used for the memory check (128 MiB, the wgpu default).
const LIMIT: u64 = 1 << 27;

/// The optional extra keys of the TOML part.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct Extra {
    input: Option<[usize; 3]>,
    classes: Option<usize>,
    batch: Option<usize>,
}

/// How far one input got, for tests that want their seeds to reach the lowering.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The candidate part parsed (and the TOML part, if any, read).
    pub parsed: bool,
    /// Lowerings that gave a plan, out of 3 (4 with an `input` in the TOML part).
    pub plans: usize,
}

/// Runs one input through parsing, lowering, the memory check and the summary; panics
/// when an invariant does not hold.
pub fn check(data: &[u8]) -> Outcome {
    let mut outcome = Outcome::default();
    let Ok(text) = std::str::from_utf8(data) else {
        return outcome;
    };
    let (candidate, toml_part) = match text.split_once("\n%%\n") {
        Some((c, t)) => (c, Some(t)),
        None => (text, None),
    };
    let (config, extra) = match toml_part {
        None => (ArchConfig::default(), Extra::default()),
        Some(t) => {
            let Ok(config) = ArchConfig::from_toml_str(t) else {
                return outcome;
            };
            let Ok(extra) = toml::from_str::<Extra>(t) else {
                return outcome;
            };
            (config, extra)
        }
    };
    let arch = match Arch::parse(candidate) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.to_string();
            return outcome;
        }
    };
    outcome.parsed = true;
    check_arch(&arch);
    let classes = extra.classes.unwrap_or(10);
    let batch = extra.batch.unwrap_or(128);
    for input in INPUTS.iter().copied().chain(extra.input) {
        match Plan::new(&arch, &config, input, classes) {
            Ok(plan) => {
                check_plan(&arch, &plan, input, classes, batch);
                outcome.plans += 1;
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    if outcome.plans > 0 {
        // Every op resolved, so none is `input`/`output` (reserved names): the short
        // spelling and the JSON list must read back as the same candidate.
        assert_eq!(Arch::parse(&arch.to_string()).ok().as_ref(), Some(&arch));
        let json = serde_json::to_string(&arch).expect("an Arch serializes");
        assert_eq!(Arch::parse(&json).ok().as_ref(), Some(&arch), "{json}");
        // Checkpoints store the specs as JSON; they must read back unchanged.
        let space = &config.reference_space;
        let used = arch
            .ops()
            .iter()
            .chain(&config.stems.input)
            .chain(&config.stems.output);
        for spec in used.filter_map(|op| space.get(op)) {
            let v = serde_json::to_value(spec).expect("a spec serializes");
            let back: LayerSpec = serde_json::from_value(v).expect("a spec reads back");
            assert_eq!(&back, spec);
        }
    }
    outcome
}

/// What holds for any parsed candidate.
fn check_arch(arch: &Arch) {
    assert!(!arch.ops().is_empty(), "parse accepted an empty candidate");
    for op in arch.ops() {
        assert!(!op.is_empty(), "parse accepted an empty op");
        assert_eq!(op.trim(), op, "parse kept whitespace around {op:?}");
        assert!(!op.contains('|'), "parse kept a separator in {op:?}");
    }
    // HiveNAS's spelling states both ends, so it always reads back.
    let hivenas = arch.hivenas_string();
    assert_eq!(Arch::parse(&hivenas).ok().as_ref(), Some(arch), "{hivenas}");
    let sha1 = arch.sha1();
    assert!(sha1.len() == 40 && sha1.bytes().all(|b| b.is_ascii_hexdigit()));
}

/// The plan invariants the graph builder and the checkpoint paths rely on.
fn check_plan(arch: &Arch, plan: &Plan, input: [usize; 3], classes: usize, batch: usize) {
    assert_eq!(plan.ops, arch.ops());
    assert_eq!(plan.input, input);
    let first = plan.nodes.first().expect("a plan has nodes");
    assert!(matches!(first.kind, NodeKind::Input) && first.shape == input);
    let last = plan.nodes.last().expect("a plan has nodes");
    assert!(matches!(last.kind, NodeKind::Dense { units } if units == classes));
    assert_eq!(last.shape, [classes]);
    let mut names = HashSet::new();
    let mut paths = HashSet::new();
    for (i, n) in plan.nodes.iter().enumerate() {
        assert!(
            names.insert(n.name.as_str()),
            "node name {:?} twice",
            n.name
        );
        assert!(
            n.shape.len() == 1 || n.shape.len() == 3,
            "node {:?} has shape {:?}",
            n.name,
            n.shape
        );
        assert!(
            n.shape.iter().all(|&d| d >= 1),
            "node {:?}: {:?}",
            n.name,
            n.shape
        );
        assert!(
            n.inputs.iter().all(|&j| j < i),
            "node {:?} reads a later node",
            n.name
        );
        let want_inputs = match n.kind {
            NodeKind::Input => 0,
            NodeKind::Add | NodeKind::Concat => 2,
            _ => 1,
        };
        assert_eq!(n.inputs.len(), want_inputs, "node {:?}", n.name);
        if matches!(n.kind, NodeKind::Add) {
            for &j in &n.inputs {
                assert_eq!(plan.nodes[j].shape, n.shape, "add {:?}", n.name);
            }
        }
        for p in &n.params {
            assert!(
                paths.insert(p.path.as_str()),
                "param path {:?} twice",
                p.path
            );
            assert!(
                p.shape.iter().all(|&d| d >= 1),
                "param {:?}: {:?}",
                p.path,
                p.shape
            );
        }
    }
    // Counted again in u128, so that a count that wraps (release builds do not check
    // overflow) fails here too.
    let exact: u128 = plan.params().map(|p| elements(&p.shape)).sum();
    let counted = plan.trainable_params() as u128 + plan.non_trainable_params() as u128;
    assert_eq!(counted, exact, "parameter count");
    let largest = plan.nodes.iter().map(|n| elements(&n.shape)).max();
    for b in [1, batch] {
        if let Err(e) = plan.check_memory(b, LIMIT) {
            let _ = e.to_string();
        }
    }
    let summary = Summary::new(plan);
    assert_eq!(
        Some(summary.largest_activation_elements as u128),
        largest,
        "largest activation"
    );
    let _ = summary.table();
    let _ = summary.to_json();
}

/// Elements of a shape, saturating rather than wrapping.
fn elements(shape: &[usize]) -> u128 {
    shape
        .iter()
        .fold(1u128, |n, &d| n.saturating_mul(d as u128))
}
