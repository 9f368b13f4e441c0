//! The fused softmax cross-entropy, the epoch metrics, the L2 terms and SGD against CPU
//! references; the gradients against finite differences.

mod common;
#[allow(unused)]
mod reference;

use common::*;
use naseval::gpu::{Gpu, Tensor};
use naseval::ops::{loss, optim};
use reference::{loss as rl, optim as ro};

const K: usize = 10;

/// Random logits in [-4, 4) with a few hard rows: row 0 is shifted by +100 (exp overflows
/// f32 unless the row max is subtracted), row 1 has a tie for the max at classes 2 and 7
/// with label 7 (wrong: the first max wins), row 2 the same tie with label 2 (right).
fn logits_and_labels(seed: u64, n: usize) -> (Vec<f32>, Vec<u32>) {
    let mut r = rng(seed);
    let mut x = uniform(&mut r, n * K, -4.0, 4.0);
    let mut labels: Vec<u32> = uniform(&mut r, n, 0.0, K as f32)
        .iter()
        .map(|v| (*v as u32).min(K as u32 - 1))
        .collect();
    for v in &mut x[..K] {
        *v += 100.0;
    }
    if n > 2 {
        for row in [1, 2] {
            x[row * K + 2] = 5.0;
            x[row * K + 7] = 5.0;
        }
        labels[1] = 7;
        labels[2] = 2;
    }
    (x, labels)
}

struct XentOut {
    dlogits: Vec<f32>,
    loss: Vec<f32>,
    correct: Vec<f32>,
}

/// Runs the fused kernel for `n` rows over tensors allocated for `rows >= n` rows.
fn xent_run(gpu: &Gpu, n: usize, rows: usize, logits: &[f32], labels: &[u32]) -> XentOut {
    let lt = upload(gpu, &[rows, K], logits);
    let yt = Tensor::from_u32(gpu, &[rows], labels).unwrap();
    let (dt, losst, ct) = (
        poisoned(gpu, &[rows, K]),
        poisoned(gpu, &[rows]),
        poisoned(gpu, &[rows]),
    );
    let prog = loss::softmax_xent_forward(gpu, n, K, &lt, &yt, &dt, &losst, &ct).unwrap();
    run(gpu, &[&prog]);
    XentOut {
        dlogits: read(gpu, &dt),
        loss: read(gpu, &losst),
        correct: read(gpu, &ct),
    }
}

#[test]
fn softmax_xent_matches_reference() {
    let gpu = gpu();
    for (seed, n) in [(20, 3), (21, 64), (22, 130)] {
        let (x, labels) = logits_and_labels(seed, n);
        let out = xent_run(&gpu, n, n, &x, &labels);
        let xd = f64s(&x);
        // Losses are O(1) and probabilities <= 1: a handful of f32 roundings each.
        assert_close(
            &format!("loss n={n}"),
            &out.loss,
            &rl::xent(n, K, &xd, &labels),
            F32_TOL,
        );
        assert_close(
            &format!("dlogits n={n}"),
            &out.dlogits,
            &rl::xent_grad(n, K, &xd, &labels),
            F32_TOL,
        );
        let want = rl::correct(n, K, &xd, &labels);
        assert_eq!(
            out.correct,
            want.iter().map(|&v| v as f32).collect::<Vec<_>>()
        );
        assert_eq!(
            &out.correct[1..3],
            &[0.0, 1.0],
            "the first of tied maxima must win"
        );
    }
}

#[test]
fn softmax_xent_gradient_matches_finite_differences_of_mean_loss() {
    let gpu = gpu();
    for (seed, n) in [(23, 3), (24, 37)] {
        let (x, labels) = logits_and_labels(seed, n);
        let out = xent_run(&gpu, n, n, &x, &labels);
        let f = |z: &[f64]| rl::mean_xent(n, K, z, &labels);
        let want = numeric_grad(&f, &f64s(&x), 1e-3);
        assert_close(&format!("dlogits vs FD n={n}"), &out.dlogits, &want, FD_TOL);
    }
}

#[test]
fn softmax_xent_partial_batch_uses_first_rows_and_divides_by_n() {
    let gpu = gpu();
    let (rows, n) = (130, 61);
    let (x, labels) = logits_and_labels(25, rows);
    let out = xent_run(&gpu, n, rows, &x, &labels);
    let xd = f64s(&x);
    assert_close(
        "partial dlogits",
        &out.dlogits[..n * K],
        &rl::xent_grad(n, K, &xd[..n * K], &labels[..n]),
        F32_TOL,
    );
    assert_close(
        "partial loss",
        &out.loss[..n],
        &rl::xent(n, K, &xd, &labels),
        F32_TOL,
    );
    assert!(out.dlogits[n * K..].iter().all(|v| v.is_nan()));
    assert!(out.loss[n..].iter().all(|v| v.is_nan()));
    assert!(out.correct[n..].iter().all(|v| v.is_nan()));
}

#[test]
fn softmax_xent_out_of_range_label_counts_as_wrong() {
    let gpu = gpu();
    let n = 4;
    let (x, mut labels) = logits_and_labels(26, n);
    labels[1] = K as u32;
    labels[2] = u32::MAX;
    let out = xent_run(&gpu, n, n, &x, &labels);
    let p = rl::softmax(n, K, &f64s(&x));
    for r in [1, 2] {
        assert_eq!(out.correct[r], 0.0, "row {r}");
        assert_eq!(out.loss[r], f32::INFINITY, "row {r}");
        // No target term: dlogits = p / n.
        let want: Vec<f64> = p[r * K..(r + 1) * K].iter().map(|v| v / n as f64).collect();
        assert_close(
            &format!("dlogits row {r}"),
            &out.dlogits[r * K..(r + 1) * K],
            &want,
            F32_TOL,
        );
    }
    // The valid rows are unaffected.
    let valid = [0usize, 3];
    for r in valid {
        let row = &x[r * K..(r + 1) * K];
        let want = rl::xent(1, K, &f64s(row), &labels[r..r + 1]);
        assert_close(
            &format!("loss row {r}"),
            &out.loss[r..r + 1],
            &want,
            F32_TOL,
        );
    }
}

#[test]
fn metrics_accumulate_sums_batches_with_reg_terms() {
    let gpu = gpu();
    // Tensors sized for a full batch of 300 (more than the 256 threads), then batches of
    // 300, 300 and a last partial 37; the L2 terms change between batches.
    let rows = 300;
    let batches = [(300usize, 30u64), (300, 31), (37, 32)];
    let run_epoch = |reg_len: usize| -> (Vec<f32>, [f64; 3]) {
        let lt = poisoned(&gpu, &[rows]);
        let ct = poisoned(&gpu, &[rows]);
        let rt = poisoned(&gpu, &[reg_len]);
        let mt = upload(&gpu, &[4], &[0.0, 0.0, 0.0, 7.5]);
        let mut want = [0.0f64; 3];
        for &(n, seed) in &batches {
            let mut r = rng(seed);
            let l = uniform(&mut r, rows, 0.0, 5.0);
            let c: Vec<f32> = uniform(&mut r, rows, 0.0, 1.0)
                .iter()
                .map(|v| (*v > 0.4) as u32 as f32)
                .collect();
            let reg = uniform(&mut r, reg_len, 0.0, 0.01);
            lt.write_f32(&gpu, &l);
            ct.write_f32(&gpu, &c);
            rt.write_f32(&gpu, &reg);
            let prog = loss::metrics_accumulate(&gpu, n, &lt, &ct, &rt, &mt).unwrap();
            run(&gpu, &[&prog]);
            let b = rl::metrics_batch(n, &f64s(&l), &f64s(&c), &f64s(&reg));
            for i in 0..3 {
                want[i] += b[i];
            }
        }
        (read(&gpu, &mt), want)
    };
    for reg_len in [3, 0] {
        let (got, want) = run_epoch(reg_len);
        // Sums of up to 637 terms of size <= 5: F32_TOL's relative bound covers the f32
        // rounding; the counts are exact.
        assert_close(&format!("metrics R={reg_len}"), &got[..3], &want, F32_TOL);
        assert_eq!(got[1], want[1] as f32, "correct count is exact");
        assert_eq!(got[2], 637.0, "sample count is exact");
        assert_eq!(got[3], 7.5, "metrics[3] must be left alone");
        let (again, _) = run_epoch(reg_len);
        assert_eq!(
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            again.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "metrics must be bit-identical run to run"
        );
    }
}

#[test]
fn l2_loss_matches_reference_and_is_deterministic() {
    let gpu = gpu();
    let coef = 1e-4f32;
    // One chunk, chunk edges, and a 3x3x128x256 kernel (294,912 weights, 144 chunks).
    let sizes = [1usize, 945, 2048, 2049, 3 * 3 * 128 * 256];
    let reg = poisoned(&gpu, &[sizes.len() + 1]);
    let mut ws = Vec::new();
    let mut progs = Vec::new();
    for (slot, &n) in sizes.iter().enumerate() {
        let w = uniform(&mut rng(40 + slot as u64), n, -0.1, 0.1);
        let wt = upload(&gpu, &[n], &w);
        progs.push(optim::l2_loss(&gpu, coef, &wt, &reg, slot).unwrap());
        ws.push((w, wt));
    }
    let refs: Vec<&_> = progs.iter().collect();
    run(&gpu, &refs);
    let got = read(&gpu, &reg);
    let want: Vec<f64> = ws
        .iter()
        .map(|(w, _)| ro::l2(coef as f64, &f64s(w)))
        .collect();
    // Up to ~1,200 sequential f32 additions per thread, then a tree: well inside 1e-4
    // relative; abs is 0 because terms are as small as 1e-6.
    let tol = Tol {
        abs: 0.0,
        ..F32_TOL
    };
    assert_close("l2_loss", &got[..sizes.len()], &want, tol);
    assert!(got[sizes.len()].is_nan(), "l2_loss wrote outside its slots");
    // Overwrites (does not accumulate) and is bit-identical on a rerun.
    run(&gpu, &refs);
    let again = read(&gpu, &reg);
    assert_eq!(
        got[..sizes.len()]
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>(),
        again[..sizes.len()]
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>(),
    );
}

#[test]
fn l2_backward_matches_finite_differences() {
    let gpu = gpu();
    let n = 3 * 7 * 9 * 5;
    let mut r = rng(50);
    let w = uniform(&mut r, n, -1.0, 1.0);
    let g0 = uniform(&mut r, n, -1.0, 1.0);
    // A large coefficient so that the L2 part dominates the check.
    for coef in [0.25f32, 1e-4] {
        let (wt, dwt) = (upload(&gpu, &[n], &w), upload(&gpu, &[n], &g0));
        run(&gpu, &[&optim::l2_backward(&gpu, coef, &wt, &dwt).unwrap()]);
        // dw starts at g0 (the kernel's own gradient): d/dw [coef sum(w^2) + w.g0].
        let g0d = f64s(&g0);
        let f = |x: &[f64]| ro::l2(coef as f64, x) + dot(x, &g0d);
        let want = numeric_grad(&f, &f64s(&w), 1e-3);
        assert_close(
            &format!("l2_backward coef {coef}"),
            &read(&gpu, &dwt),
            &want,
            FD_TOL,
        );
        let exact: Vec<f64> = ro::l2_grad(coef as f64, &f64s(&w))
            .iter()
            .zip(&g0d)
            .map(|(a, b)| a + b)
            .collect();
        assert_close(
            &format!("l2_backward ref coef {coef}"),
            &read(&gpu, &dwt),
            &exact,
            F32_TOL,
        );
    }
}

#[test]
fn sgd_update_matches_keras_rule_over_steps_with_lr_changes() {
    let gpu = gpu();
    let n = 3 * 7 * 9 * 5;
    let lrs = [0.08f32, 0.08, 0.05, 0.01, 0.2];
    for nesterov in [true, false] {
        let mut r = rng(60);
        let w0 = uniform(&mut r, n, -1.0, 1.0);
        let (wt, vt, gt) = (
            upload(&gpu, &[n], &w0),
            upload(&gpu, &[n], &vec![0.0; n]),
            upload(&gpu, &[n], &vec![0.0; n]),
        );
        let lr = upload(&gpu, &[1], &[0.0]);
        // Built once; the host rewrites lr and g each step.
        let prog = optim::sgd_update(&gpu, 0.9, nesterov, &lr, &wt, &vt, &gt).unwrap();
        let (mut w, mut v) = (f64s(&w0), vec![0.0; n]);
        for &step_lr in &lrs {
            let g = uniform(&mut r, n, -1.0, 1.0);
            gt.write_f32(&gpu, &g);
            lr.write_f32(&gpu, &[step_lr]);
            run(&gpu, &[&prog]);
            ro::sgd_step(0.9, nesterov, step_lr as f64, &mut w, &mut v, &f64s(&g));
        }
        // Five steps of a few f32 roundings on O(1) values.
        let what = if nesterov { "nesterov" } else { "plain" };
        assert_close(&format!("sgd w ({what})"), &read(&gpu, &wt), &w, F32_TOL);
        assert_close(&format!("sgd v ({what})"), &read(&gpu, &vt), &v, F32_TOL);
    }
}

#[test]
fn loss_step_chains_on_gpu_and_reads_back_once() {
    // softmax_xent -> l2_loss -> metrics in one submission, as a training step records them.
    let gpu = gpu();
    let n = 37;
    let (x, labels) = logits_and_labels(70, n);
    let w = uniform(&mut rng(71), 5000, -0.1, 0.1);
    let lt = upload(&gpu, &[n, K], &x);
    let yt = Tensor::from_u32(&gpu, &[n], &labels).unwrap();
    let (dt, losst, ct) = (
        poisoned(&gpu, &[n, K]),
        poisoned(&gpu, &[n]),
        poisoned(&gpu, &[n]),
    );
    let wt = upload(&gpu, &[5000], &w);
    let reg = upload(&gpu, &[2], &[0.0, 0.0]);
    let mt = upload(&gpu, &[4], &[0.0; 4]);
    let progs = [
        loss::softmax_xent_forward(&gpu, n, K, &lt, &yt, &dt, &losst, &ct).unwrap(),
        optim::l2_loss(&gpu, 1e-4, &wt, &reg, 1).unwrap(),
        loss::metrics_accumulate(&gpu, n, &losst, &ct, &reg, &mt).unwrap(),
    ];
    run(&gpu, &progs.iter().collect::<Vec<_>>());
    let xd = f64s(&x);
    let reg_want = [0.0, ro::l2(1e-4, &f64s(&w))];
    let b = rl::metrics_batch(
        n,
        &rl::xent(n, K, &xd, &labels),
        &rl::correct(n, K, &xd, &labels),
        &reg_want,
    );
    assert_close("chained metrics", &read(&gpu, &mt)[..3], &b, F32_TOL);
}
