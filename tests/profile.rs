//! Profiling (`--profile`): a profiled network times the kernel families its steps use and
//! no others, profiling changes no result, and a network that is not profiled keeps no
//! profile. No assertion depends on how fast anything ran.

mod common;

use common::*;
use naseval::arch::{Arch, ArchConfig, Plan};
use naseval::gpu::{Family, Gpu, Profile};
use naseval::graph::{NamedArray, Network, OptimizerConfig};

/// Small images so that a step is quick on lavapipe; odd sizes as everywhere.
const INPUT: [usize; 3] = [9, 9, 1];
const CLASSES: usize = 3;
const BATCH: usize = 5;

/// A candidate with a convolution (plus batch norm and ReLU), a max pool, the default
/// stems (a 7x7 convolution in, global average pooling and a dense layer out); no
/// depthwise convolution.
fn network(gpu: &Gpu) -> Network {
    let arch = Arch::parse("conv3x3_16bnrelu|max_pool3x3").expect("arch");
    let plan = Plan::new(&arch, &ArchConfig::default(), INPUT, CLASSES).expect("plan");
    Network::new(gpu, &plan, BATCH, 7, OptimizerConfig::default()).expect("network")
}

/// Two training steps (the second one a partial batch), a metrics read in between, and
/// one inference step; returns the final state.
fn run_steps(net: &mut Network) -> Vec<NamedArray> {
    let mut r = rng(11);
    let [h, w, c] = INPUT;
    let images = uniform(&mut r, BATCH * h * w * c, -1.0, 1.0);
    let labels: Vec<u32> = (0..BATCH as u32).map(|i| i % CLASSES as u32).collect();
    net.train_step(&images, &labels, BATCH, 0.05, 0)
        .expect("step 1");
    net.take_metrics().expect("metrics");
    let n = BATCH - 2;
    net.train_step(&images[..n * h * w * c], &labels[..n], n, 0.05, 1)
        .expect("step 2");
    net.take_metrics().expect("metrics");
    net.eval_step(&images, &labels, BATCH).expect("eval step");
    net.take_metrics().expect("metrics");
    net.export_state().expect("state")
}

#[test]
fn profiled_steps_time_the_families_they_use() {
    let gpu = gpu();
    let mut net = network(&gpu);
    net.enable_profiling();
    assert!(net.is_profiling());
    run_steps(&mut net);
    let p: Profile = net
        .take_profile()
        .expect("profile")
        .expect("profiling is on");

    assert_eq!(p.train_steps, 2);
    assert_eq!(p.eval_steps, 1);
    assert!(p.train_wall_seconds > 0.0 && p.train_host_seconds > 0.0);
    let timestamps = gpu
        .features
        .contains(wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES);
    assert_eq!(p.timestamps, timestamps);
    if !timestamps {
        // Host times only: no kernel was timed.
        assert!(p.kernels.is_empty() && p.kernel_share().is_none());
        return;
    }

    let families = p.families();
    let present = [
        Family::Conv,
        Family::Matmul,
        Family::Pool,
        Family::BatchNorm,
        Family::Elementwise,
        Family::LossMetrics,
        Family::L2,
        Family::Sgd,
    ];
    for f in present {
        let t = families.get(&f).copied().unwrap_or_default();
        assert!(
            t.count > 0 && t.seconds > 0.0,
            "family {} has {} launches, {} s",
            f.name(),
            t.count,
            t.seconds
        );
    }
    assert!(
        !families.contains_key(&Family::Depthwise),
        "no depthwise op, yet {:?}",
        families.get(&Family::Depthwise)
    );
    // The SGD update runs in training steps only, once per trainable array each time.
    let sgd = families[&Family::Sgd].count;
    assert!(
        sgd > 0 && sgd.is_multiple_of(2),
        "{sgd} SGD launches over 2 steps"
    );

    // Kernel times lie inside the passes they belong to.
    assert!(p.train_kernel_seconds > 0.0 && p.eval_kernel_seconds > 0.0);
    assert!(p.train_kernel_seconds <= p.train_pass_seconds * (1.0 + 1e-9));
    let sum = p.train_kernel_seconds + p.eval_kernel_seconds;
    assert!((p.kernel_seconds() - sum).abs() <= 1e-9 * sum.max(1.0));
    assert!(p.kernel_share().is_some_and(|s| s > 0.0));
    assert!(p.to_string().contains("batch_norm"));

    // Taking the profile starts a new one.
    let again = net
        .take_profile()
        .expect("profile")
        .expect("still profiling");
    assert_eq!(again.train_steps + again.eval_steps, 0);
    assert!(again.kernels.is_empty());
}

#[test]
fn profiling_off_keeps_no_profile_and_changes_no_result() {
    let gpu = gpu();
    let mut plain = network(&gpu);
    let state = run_steps(&mut plain);
    assert!(!plain.is_profiling());
    assert!(plain.take_profile().expect("no profile").is_none());

    // The same steps with timestamps written around every launch end bit-identical.
    let mut profiled = network(&gpu);
    profiled.enable_profiling();
    let profiled_state = run_steps(&mut profiled);
    assert_eq!(state.len(), profiled_state.len());
    for (a, b) in state.iter().zip(&profiled_state) {
        assert_eq!(a.path, b.path);
        let same = a
            .data
            .iter()
            .zip(&b.data)
            .all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "{} differs when profiled", a.path);
    }
}

#[test]
fn profiles_merge_by_adding() {
    let mut a = Profile {
        timestamps: true,
        train_steps: 2,
        train_wall_seconds: 1.0,
        train_kernel_seconds: 0.5,
        ..Default::default()
    };
    let b = Profile {
        train_steps: 3,
        train_wall_seconds: 3.0,
        train_kernel_seconds: 2.5,
        ..Default::default()
    };
    a.merge(&b);
    assert!(a.timestamps);
    assert_eq!(a.train_steps, 5);
    assert_eq!(a.kernel_share(), Some(0.75));
}
