//! Elementwise kernels against CPU references, and their backward against finite
//! differences.

mod common;
#[allow(unused)]
mod reference;

use common::*;
use naseval::gpu::{Gpu, Tensor};
use naseval::ops::elementwise as ew;
use reference::elementwise as re;

/// The odd NHWC shape most tests use: 945 elements, not a multiple of the workgroup.
const SHAPE: [usize; 4] = [3, 7, 9, 5];
const N: usize = 3 * 7 * 9 * 5;

#[test]
fn relu_forward_matches_reference() {
    let gpu = gpu();
    let shape = [3, 7, 9, 5];
    let n = 3 * 7 * 9 * 5;
    let x = uniform(&mut rng(1), n, -1.0, 1.0);
    let xt = upload(&gpu, &shape, &x);
    let yt = poisoned(&gpu, &shape);
    run(&gpu, &[&ew::relu_forward(&gpu, &xt, &yt).unwrap()]);
    let want: Vec<f64> = x.iter().map(|&v| (v as f64).max(0.0)).collect();
    assert_close("relu_forward", &read(&gpu, &yt), &want, F32_TOL);
}

#[test]
fn relu_backward_matches_finite_differences() {
    let gpu = gpu();
    let shape = [3, 7, 9, 5];
    let n = 3 * 7 * 9 * 5;
    let mut r = rng(2);
    // Keep inputs away from the kink at 0, where the difference quotient is meaningless.
    let x: Vec<f32> = uniform(&mut r, n, 0.05, 1.0)
        .iter()
        .zip(uniform(&mut r, n, -1.0, 1.0))
        .map(|(m, s)| m * s.signum())
        .collect();
    let g = uniform(&mut r, n, -1.0, 1.0);
    let y: Vec<f32> = x.iter().map(|&v| v.max(0.0)).collect();
    let (yt, gt, dxt) = (
        upload(&gpu, &shape, &y),
        upload(&gpu, &shape, &g),
        poisoned(&gpu, &shape),
    );
    run(&gpu, &[&ew::relu_backward(&gpu, &yt, &gt, &dxt).unwrap()]);
    let gd = f64s(&g);
    let f = |x: &[f64]| dot(&x.iter().map(|v| v.max(0.0)).collect::<Vec<_>>(), &gd);
    let want = numeric_grad(&f, &f64s(&x), 1e-3);
    assert_close("relu_backward", &read(&gpu, &dxt), &want, FD_TOL);
}

#[test]
fn add_forward_matches_reference() {
    let gpu = gpu();
    let mut r = rng(3);
    let (a, b) = (uniform(&mut r, N, -1.0, 1.0), uniform(&mut r, N, -1.0, 1.0));
    let (at, bt, zt) = (
        upload(&gpu, &SHAPE, &a),
        upload(&gpu, &SHAPE, &b),
        poisoned(&gpu, &SHAPE),
    );
    run(&gpu, &[&ew::add_forward(&gpu, &at, &bt, &zt).unwrap()]);
    // One f32 rounding of an exact f64 sum: well inside F32_TOL.
    let want = re::add(&f64s(&a), &f64s(&b));
    assert_close("add_forward", &read(&gpu, &zt), &want, F32_TOL);
}

#[test]
fn accumulate_adds_into_destination() {
    let gpu = gpu();
    let mut r = rng(4);
    let (src, dst) = (uniform(&mut r, N, -1.0, 1.0), uniform(&mut r, N, -1.0, 1.0));
    let (st, dt) = (upload(&gpu, &SHAPE, &src), upload(&gpu, &SHAPE, &dst));
    let prog = ew::accumulate(&gpu, &st, &dt).unwrap();
    run(&gpu, &[&prog, &prog]);
    // Recorded twice: dst + 2 src (two f32 roundings).
    let want: Vec<f64> = re::add(&re::add(&f64s(&dst), &f64s(&src)), &f64s(&src));
    assert_close("accumulate x2", &read(&gpu, &dt), &want, F32_TOL);
}

#[test]
fn concat_forward_matches_reference_and_leaves_unused_rows() {
    let gpu = gpu();
    let (m, c1, c2) = (63, 5, 3);
    // Tensors sized for 70 rows, launcher for 63: the last rows must stay untouched.
    let rows = 70;
    let mut r = rng(5);
    let (a, b) = (
        uniform(&mut r, rows * c1, -1.0, 1.0),
        uniform(&mut r, rows * c2, -1.0, 1.0),
    );
    let (at, bt, zt) = (
        upload(&gpu, &[rows, c1], &a),
        upload(&gpu, &[rows, c2], &b),
        poisoned(&gpu, &[rows, c1 + c2]),
    );
    run(
        &gpu,
        &[&ew::concat_forward(&gpu, m, c1, c2, &at, &bt, &zt).unwrap()],
    );
    let z = read(&gpu, &zt);
    let want = re::concat(m, c1, c2, &f64s(&a), &f64s(&b));
    // A copy: exact.
    let exact = Tol {
        abs: 0.0,
        rel: 0.0,
        total_rel: 0.0,
    };
    assert_close("concat_forward", &z[..m * (c1 + c2)], &want, exact);
    assert!(
        z[m * (c1 + c2)..].iter().all(|v| v.is_nan()),
        "concat_forward wrote rows past m"
    );
}

#[test]
fn concat_backward_matches_finite_differences() {
    let gpu = gpu();
    let (m, c1, c2) = (63, 5, 3);
    let mut r = rng(6);
    let a = f64s(&uniform(&mut r, m * c1, -1.0, 1.0));
    let b = f64s(&uniform(&mut r, m * c2, -1.0, 1.0));
    let g = uniform(&mut r, m * (c1 + c2), -1.0, 1.0);
    let (gt, dat, dbt) = (
        upload(&gpu, &[m, c1 + c2], &g),
        poisoned(&gpu, &[m, c1]),
        poisoned(&gpu, &[m, c2]),
    );
    run(
        &gpu,
        &[&ew::concat_backward(&gpu, m, c1, c2, &gt, &dat, &dbt).unwrap()],
    );
    // d/d(a,b) of sum(concat(a, b) * g): the split of g.
    let gd = f64s(&g);
    let ab: Vec<f64> = a.iter().chain(&b).cloned().collect();
    let f = |x: &[f64]| {
        let (xa, xb) = x.split_at(m * c1);
        dot(&re::concat(m, c1, c2, xa, xb), &gd)
    };
    let want = numeric_grad(&f, &ab, 1e-3);
    let (want_a, want_b) = want.split_at(m * c1);
    assert_close("concat_backward da", &read(&gpu, &dat), want_a, FD_TOL);
    assert_close("concat_backward db", &read(&gpu, &dbt), want_b, FD_TOL);
    // And the split itself is an exact copy.
    let (sa, sb) = re::split(m, c1, c2, &gd);
    let exact = Tol {
        abs: 0.0,
        rel: 0.0,
        total_rel: 0.0,
    };
    assert_close("concat_backward da = split", &read(&gpu, &dat), &sa, exact);
    assert_close("concat_backward db = split", &read(&gpu, &dbt), &sb, exact);
}

/// Runs dropout forward over `x` and returns `y`.
fn dropout_run(gpu: &Gpu, rate: f32, seed: u32, step: &Tensor, x: &[f32]) -> Vec<f32> {
    let xt = upload(gpu, &[x.len()], x);
    let yt = poisoned(gpu, &[x.len()]);
    run(
        gpu,
        &[&ew::dropout_forward(gpu, rate, seed, step, &xt, &yt).unwrap()],
    );
    read(gpu, &yt)
}

/// Inputs away from 0, so that `y == 0` means dropped.
fn nonzero(seed: u64, n: usize) -> Vec<f32> {
    let mut r = rng(seed);
    uniform(&mut r, n, 0.1, 1.0)
        .iter()
        .zip(uniform(&mut r, n, -1.0, 1.0))
        .map(|(m, s)| m * s.signum())
        .collect()
}

#[test]
fn dropout_forward_drops_rate_and_scales_kept() {
    let gpu = gpu();
    let n = 1 << 20;
    let x = nonzero(7, n);
    let step = Tensor::from_u32(&gpu, &[1], &[12_345]).unwrap();
    for rate in [0.15f32, 0.5] {
        let y = dropout_run(&gpu, rate, 42, &step, &x);
        let keep: Vec<bool> = y.iter().map(|&v| v != 0.0).collect();
        let dropped = keep.iter().filter(|&&k| !k).count() as f64 / n as f64;
        // Binomial std sqrt(p(1-p)/n) <= 5e-4 at n = 2^20; 3e-3 is over 6 sigma.
        assert!(
            (dropped - rate as f64).abs() < 3e-3,
            "rate {rate}: dropped fraction {dropped}"
        );
        // Neighbours independent: both of a pair dropped with probability rate^2.
        let pairs = keep.windows(2).filter(|w| !w[0] && !w[1]).count() as f64 / (n - 1) as f64;
        let p2 = (rate * rate) as f64;
        assert!(
            (pairs - p2).abs() < 3e-3,
            "rate {rate}: pair drops {pairs} vs {p2}"
        );
        // Kept values are x / (1 - rate): one f32 rounding each.
        let want = re::dropout(&f64s(&x), &keep, rate as f64);
        assert_close("dropout_forward", &y, &want, F32_TOL);
    }
}

#[test]
fn dropout_rate_zero_is_identity() {
    let gpu = gpu();
    let x = uniform(&mut rng(8), N, -1.0, 1.0);
    let step = Tensor::from_u32(&gpu, &[1], &[3]).unwrap();
    let y = dropout_run(&gpu, 0.0, 1, &step, &x);
    assert_eq!(y, x, "rate 0 must copy x bit for bit");
}

#[test]
fn dropout_mask_depends_on_seed_and_step_only() {
    let gpu = gpu();
    let n = 1 << 16;
    let x = nonzero(9, n);
    let rate = 0.15f32;
    let step = Tensor::from_u32(&gpu, &[1], &[7]).unwrap();
    let first = dropout_run(&gpu, rate, 42, &step, &x);
    let again = dropout_run(&gpu, rate, 42, &step, &x);
    assert!(
        first
            .iter()
            .zip(&again)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "same seed and step must give a bit-identical output"
    );
    // Two independent masks disagree on a fraction 2 p (1 - p) = 0.255 of the elements.
    let differ = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .filter(|(u, v)| (**u == 0.0) != (**v == 0.0))
            .count() as f64
            / n as f64
    };
    step.write_u32(&gpu, &[8]);
    let next_step = dropout_run(&gpu, rate, 42, &step, &x);
    let d = differ(&first, &next_step);
    assert!((d - 0.255).abs() < 0.01, "step 7 vs 8: masks differ on {d}");
    step.write_u32(&gpu, &[7]);
    let other_seed = dropout_run(&gpu, rate, 43, &step, &x);
    let d = differ(&first, &other_seed);
    assert!(
        (d - 0.255).abs() < 0.01,
        "seed 42 vs 43: masks differ on {d}"
    );
    let back = dropout_run(&gpu, rate, 42, &step, &x);
    assert_eq!(back, first, "returning to step 7 must reproduce its mask");
}

#[test]
fn dropout_backward_uses_forward_mask_and_matches_finite_differences() {
    let gpu = gpu();
    let rate = 0.15f32;
    let x = nonzero(10, N);
    let g = uniform(&mut rng(11), N, -1.0, 1.0);
    let step = Tensor::from_u32(&gpu, &[1], &[99]).unwrap();
    let (xt, yt, gt, dxt) = (
        upload(&gpu, &SHAPE, &x),
        poisoned(&gpu, &SHAPE),
        upload(&gpu, &SHAPE, &g),
        poisoned(&gpu, &SHAPE),
    );
    // Built once, as training does; the host rewrites the step between runs.
    let fwd = ew::dropout_forward(&gpu, rate, 5, &step, &xt, &yt).unwrap();
    let bwd = ew::dropout_backward(&gpu, rate, 5, &step, &gt, &dxt).unwrap();
    for s in [99u32, 100, u32::MAX] {
        step.write_u32(&gpu, &[s]);
        run(&gpu, &[&fwd, &bwd]);
        let keep: Vec<bool> = read(&gpu, &yt).iter().map(|&v| v != 0.0).collect();
        let kept = keep.iter().filter(|&&k| k).count();
        assert!(
            kept > 0 && kept < N,
            "step {s}: degenerate mask ({kept} kept)"
        );
        // With the mask fixed, dropout is linear: d/dx sum(dropout(x) * g) = g * keep / (1-p).
        let gd = f64s(&g);
        let f = |x: &[f64]| dot(&re::dropout(x, &keep, rate as f64), &gd);
        let want = numeric_grad(&f, &f64s(&x), 1e-3);
        assert_close(
            &format!("dropout_backward step {s}"),
            &read(&gpu, &dxt),
            &want,
            FD_TOL,
        );
    }
}
