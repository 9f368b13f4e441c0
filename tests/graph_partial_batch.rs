//! A partial batch (the last, smaller batch of an epoch) run on a network built for a
//! larger batch must give the same gradients as a network built for exactly that batch.

mod common;

use common::*;
use naseval::arch::{Arch, ArchConfig, Plan};
use naseval::graph::{Network, OptimizerConfig};

#[test]
fn partial_batch_gradients_match_a_network_of_that_batch() {
    let gpu = gpu();
    let arch: Arch = "conv3x3_16bnrelu|max_pool3x3|sep3x3_32".parse().unwrap();
    let plan = Plan::new(&arch, &ArchConfig::default(), [28, 28, 1], 10).unwrap();
    let n = 64;
    let mut r = rng(7);
    let images = uniform(&mut r, n * 28 * 28, -1.0, 1.0);
    let labels: Vec<u32> = (0..n as u32).map(|i| (i * 7) % 10).collect();
    let opt = OptimizerConfig::default();
    let mut big = Network::new(&gpu, &plan, 128, 42, opt).unwrap();
    let mut exact = Network::new(&gpu, &plan, n, 42, opt).unwrap();
    // Fill the big network's batch-sized buffers with a full batch first, so that stale
    // rows past `n` hold real data when the partial batch runs.
    let full = uniform(&mut r, 128 * 28 * 28, -1.0, 1.0);
    let full_labels: Vec<u32> = (0..128u32).map(|i| i % 10).collect();
    big.compute_gradients(&full, &full_labels, 128, 0).unwrap();
    big.compute_gradients(&images, &labels, n, 0).unwrap();
    exact.compute_gradients(&images, &labels, n, 0).unwrap();
    for p in plan.params().filter(|p| p.trainable) {
        let a = big.read_gradient(&p.path).unwrap();
        let b = exact.read_gradient(&p.path).unwrap();
        let want: Vec<f64> = b.iter().map(|&v| v as f64).collect();
        assert_close(&format!("gradient of {}", p.path), &a, &want, F32_TOL);
    }

    // A whole training step (BN moving statistics, SGD) agrees as well, from one state.
    exact.import_state(&big.export_state().unwrap()).unwrap();
    big.train_step(&images, &labels, n, 0.01, 1).unwrap();
    exact.train_step(&images, &labels, n, 0.01, 1).unwrap();
    let (sa, sb) = (big.export_state().unwrap(), exact.export_state().unwrap());
    for (a, b) in sa.iter().zip(&sb) {
        assert_eq!(a.path, b.path);
        let want: Vec<f64> = b.data.iter().map(|&v| v as f64).collect();
        assert_close(
            &format!("after a step: {}", a.path),
            &a.data,
            &want,
            F32_TOL,
        );
    }
}

#[test]
fn inference_steps_of_any_size_leave_the_state_alone() {
    let gpu = gpu();
    let arch: Arch = "conv3x3_16bnrelu|max_pool3x3|sep3x3_32".parse().unwrap();
    let plan = Plan::new(&arch, &ArchConfig::default(), [28, 28, 1], 10).unwrap();
    let mut net = Network::new(&gpu, &plan, 128, 42, OptimizerConfig::default()).unwrap();
    let mut r = rng(9);
    let full = uniform(&mut r, 128 * 28 * 28, -1.0, 1.0);
    let labels: Vec<u32> = (0..128u32).map(|i| i % 10).collect();
    net.train_step(&full, &labels, 128, 0.05, 0).unwrap();
    let before = net.export_state().unwrap();
    for n in [64, 16, 104, 128] {
        net.eval_step(&full[..n * 28 * 28], &labels[..n], n)
            .unwrap();
    }
    net.take_metrics().unwrap();
    let after = net.export_state().unwrap();
    for (a, b) in after.iter().zip(&before) {
        assert!(
            a.data == b.data,
            "{} changed during inference steps",
            a.path
        );
    }
}
