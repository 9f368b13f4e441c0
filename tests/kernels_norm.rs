//! Batch-norm kernels against the CPU reference: training and inference forward, moving
//! statistics, the backward pass against finite differences of the training forward, and
//! the numerically hard cases (large mean, one row, many chunks).

mod common;
#[allow(unused)]
mod reference;

use common::*;
use naseval::gpu::Gpu;
use naseval::ops::norm::{self, BatchNormShape, CHUNK_ROWS};
use reference::norm as rn;

const MOMENTUM: f32 = 0.99;
const EPS: f32 = 1e-3;

/// Inputs of one batch norm, as uploaded (f32) and as the reference sees them (f64).
struct Case {
    m: usize,
    c: usize,
    x: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    moving_mean: Vec<f32>,
    moving_var: Vec<f32>,
    dy: Vec<f32>,
}

impl Case {
    fn random(seed: u64, m: usize, c: usize, lo: f32, hi: f32) -> Self {
        let mut r = rng(seed);
        Self {
            m,
            c,
            x: uniform(&mut r, m * c, lo, hi),
            gamma: uniform(&mut r, c, 0.5, 1.5),
            beta: uniform(&mut r, c, -0.5, 0.5),
            moving_mean: uniform(&mut r, c, -0.1, 0.1),
            moving_var: uniform(&mut r, c, 0.5, 1.5),
            dy: uniform(&mut r, m * c, -1.0, 1.0),
        }
    }

    fn shape(&self) -> BatchNormShape {
        BatchNormShape {
            m: self.m,
            c: self.c,
        }
    }
}

/// GPU results of one training step (forward then backward), read back.
struct Step {
    y: Vec<f32>,
    saved_mean: Vec<f32>,
    saved_invstd: Vec<f32>,
    moving_mean: Vec<f32>,
    moving_var: Vec<f32>,
    dx: Vec<f32>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
}

/// Runs the training forward and the backward on fresh, NaN-poisoned outputs.
fn train_step(gpu: &Gpu, k: &Case) -> Step {
    let (m, c) = (k.m, k.c);
    let s = k.shape();
    let x = upload(gpu, &[m, c], &k.x);
    let dy = upload(gpu, &[m, c], &k.dy);
    let gamma = upload(gpu, &[c], &k.gamma);
    let beta = upload(gpu, &[c], &k.beta);
    let mm = upload(gpu, &[c], &k.moving_mean);
    let mv = upload(gpu, &[c], &k.moving_var);
    let (sm, si) = (poisoned(gpu, &[c]), poisoned(gpu, &[c]));
    let (y, dx) = (poisoned(gpu, &[m, c]), poisoned(gpu, &[m, c]));
    let (dg, db) = (poisoned(gpu, &[c]), poisoned(gpu, &[c]));
    let fwd = norm::batch_norm_train_forward(
        gpu, &s, MOMENTUM, EPS, &x, &gamma, &beta, &mm, &mv, &sm, &si, &y,
    )
    .unwrap();
    let bwd = norm::batch_norm_backward(gpu, &s, &x, &dy, &gamma, &sm, &si, &dx, &dg, &db).unwrap();
    run(gpu, &[&fwd, &bwd]);
    Step {
        y: read(gpu, &y),
        saved_mean: read(gpu, &sm),
        saved_invstd: read(gpu, &si),
        moving_mean: read(gpu, &mm),
        moving_var: read(gpu, &mv),
        dx: read(gpu, &dx),
        dgamma: read(gpu, &dg),
        dbeta: read(gpu, &db),
    }
}

/// Checks the forward results of `step` against the f64 reference.
fn check_forward(what: &str, k: &Case, step: &Step, y_tol: Tol, stat_tol: Tol) {
    let (m, c) = (k.m, k.c);
    let x = f64s(&k.x);
    let (y, mean, var) = rn::train_forward(m, c, &x, &f64s(&k.gamma), &f64s(&k.beta), EPS as f64);
    let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + EPS as f64).sqrt()).collect();
    let (mm, mv) = rn::moving_update(
        m,
        MOMENTUM as f64,
        &f64s(&k.moving_mean),
        &f64s(&k.moving_var),
        &mean,
        &var,
    );
    assert_close(&format!("{what}: y"), &step.y, &y, y_tol);
    assert_close(
        &format!("{what}: saved_mean"),
        &step.saved_mean,
        &mean,
        stat_tol,
    );
    assert_close(
        &format!("{what}: saved_invstd"),
        &step.saved_invstd,
        &invstd,
        stat_tol,
    );
    assert_close(
        &format!("{what}: moving_mean"),
        &step.moving_mean,
        &mm,
        stat_tol,
    );
    assert_close(
        &format!("{what}: moving_var"),
        &step.moving_var,
        &mv,
        stat_tol,
    );
}

#[test]
fn train_forward_matches_reference() {
    let gpu = gpu();
    // N=3, H=7, W=9: M = 189 rows, one full chunk of 128 and a tail of 61.
    let k = Case::random(1, 3 * 7 * 9, 5, -1.0, 1.0);
    let step = train_step(&gpu, &k);
    check_forward("train_forward", &k, &step, F32_TOL, F32_TOL);
}

#[test]
fn infer_forward_uses_the_moving_statistics() {
    let gpu = gpu();
    let k = Case::random(2, 3 * 7 * 9, 5, -1.0, 1.0);
    let (m, c) = (k.m, k.c);
    let x = upload(&gpu, &[m, c], &k.x);
    let gamma = upload(&gpu, &[c], &k.gamma);
    let beta = upload(&gpu, &[c], &k.beta);
    let mm = upload(&gpu, &[c], &k.moving_mean);
    let mv = upload(&gpu, &[c], &k.moving_var);
    let y = poisoned(&gpu, &[m, c]);
    let s = k.shape();
    let p = norm::batch_norm_infer_forward(&gpu, &s, EPS, &x, &gamma, &beta, &mm, &mv, &y);
    run(&gpu, &[&p.unwrap()]);
    let want = rn::normalize(
        m,
        c,
        &f64s(&k.x),
        &f64s(&k.gamma),
        &f64s(&k.beta),
        &f64s(&k.moving_mean),
        &f64s(&k.moving_var),
        EPS as f64,
    );
    assert_close("infer_forward", &read(&gpu, &y), &want, F32_TOL);
    // Inference leaves the moving statistics alone.
    assert_eq!(
        read(&gpu, &mv),
        k.moving_var,
        "infer_forward changed moving_var"
    );
}

#[test]
fn backward_matches_finite_differences_of_the_training_forward() {
    let gpu = gpu();
    let k = Case::random(3, 3 * 7 * 9, 5, -1.0, 1.0);
    let (m, c) = (k.m, k.c);
    let step = train_step(&gpu, &k);
    let (x, gamma, beta, g) = (f64s(&k.x), f64s(&k.gamma), f64s(&k.beta), f64s(&k.dy));
    let eps = EPS as f64;

    // L = sum(dy * y(x, gamma, beta)), the batch statistics recomputed from x each time.
    let fx = |x: &[f64]| dot(&rn::train_forward(m, c, x, &gamma, &beta, eps).0, &g);
    let want = numeric_grad(&fx, &x, 1e-3);
    assert_close("batch_norm_backward: dx", &step.dx, &want, FD_TOL);
    let fg = |gm: &[f64]| dot(&rn::train_forward(m, c, &x, gm, &beta, eps).0, &g);
    let want = numeric_grad(&fg, &gamma, 1e-3);
    assert_close("batch_norm_backward: dgamma", &step.dgamma, &want, FD_TOL);
    let fb = |b: &[f64]| dot(&rn::train_forward(m, c, &x, &gamma, b, eps).0, &g);
    let want = numeric_grad(&fb, &beta, 1e-3);
    assert_close("batch_norm_backward: dbeta", &step.dbeta, &want, FD_TOL);
}

#[test]
fn a_single_row_outputs_beta_and_moves_the_variance_towards_zero() {
    let gpu = gpu();
    // Batch 1 at 1x1: the biased variance is 0 and TF's factor m/max(m-1,1) is 1.
    let k = Case::random(4, 1, 4, -1.0, 1.0);
    let step = train_step(&gpu, &k);
    check_forward("m=1", &k, &step, F32_TOL, F32_TOL);
    assert_eq!(step.y, k.beta, "m=1: y must equal beta");
    let want: Vec<f32> = k.moving_var.iter().map(|v| v * MOMENTUM).collect();
    assert_close("m=1: moving_var", &step.moving_var, &f64s(&want), F32_TOL);
    // dx = gamma*invstd*(dy - dy - 0) = 0, dgamma = 0, dbeta = dy.
    assert_close("m=1: dx", &step.dx, &[0.0; 4], F32_TOL);
    assert_close("m=1: dgamma", &step.dgamma, &[0.0; 4], F32_TOL);
    assert_close("m=1: dbeta", &step.dbeta, &f64s(&k.dy), F32_TOL);
}

#[test]
fn a_large_mean_keeps_its_small_variance() {
    let gpu = gpu();
    // 100 +- 0.01: E[x^2] - E[x]^2 in f32 would lose every digit of the variance.
    let k = Case::random(5, 1000, 3, 99.99, 100.01);
    let step = train_step(&gpu, &k);
    // The mean is stored in f32 (half an ulp of 100 is 3.8e-6), which moves
    // xhat = (x - mean) * invstd (invstd ~ 173) by up to ~7e-4: the y tolerance.
    let y_tol = Tol {
        abs: 2e-3,
        rel: 0.0,
        total_rel: 1e-3,
    };
    check_forward("large mean", &k, &step, y_tol, F32_TOL);
}

#[test]
fn many_chunks_reduce_in_two_stages() {
    let gpu = gpu();
    // 128 full chunks and a tail of 77 rows: each combine thread merges two or three
    // chunks serially before the tree. A mean of 3 makes the between-chunk terms count.
    let m = 128 * CHUNK_ROWS + 77;
    let k = Case::random(6, m, 3, 2.0, 4.0);
    assert_eq!(k.shape().chunks(), 129);
    let step = train_step(&gpu, &k);
    check_forward("many chunks", &k, &step, F32_TOL, F32_TOL);
    let (dx, dgamma, dbeta) = rn::train_backward(
        m,
        k.c,
        &f64s(&k.x),
        &f64s(&k.dy),
        &f64s(&k.gamma),
        EPS as f64,
    );
    // Sums of 16k terms of either sign: absolute error relative to the terms' scale.
    let sum_tol = Tol {
        abs: 1e-3,
        rel: 1e-4,
        total_rel: 1e-4,
    };
    assert_close("many chunks: dbeta", &step.dbeta, &dbeta, sum_tol);
    assert_close("many chunks: dgamma", &step.dgamma, &dgamma, sum_tol);
    assert_close("many chunks: dx", &step.dx, &dx, F32_TOL);
}

#[test]
fn training_steps_are_bit_for_bit_repeatable() {
    let gpu = gpu();
    let k = Case::random(7, 70 * CHUNK_ROWS + 5, 6, -2.0, 3.0);
    let bits = |s: &Step| -> Vec<u32> {
        [
            &s.y,
            &s.saved_mean,
            &s.saved_invstd,
            &s.moving_mean,
            &s.moving_var,
            &s.dx,
            &s.dgamma,
            &s.dbeta,
        ]
        .iter()
        .flat_map(|v| v.iter().map(|f| f.to_bits()))
        .collect()
    };
    let first = bits(&train_step(&gpu, &k));
    assert_eq!(
        first,
        bits(&train_step(&gpu, &k)),
        "batch norm differs between runs"
    );
}

#[test]
fn launchers_for_fewer_rows_leave_the_rest_alone() {
    let gpu = gpu();
    // Tensors hold 3 samples of 7x9; the launchers cover the first 2 (a partial batch).
    let full = Case::random(8, 3 * 63, 5, -1.0, 1.0);
    let m = 2 * 63;
    let c = full.c;
    let x = upload(&gpu, &[full.m, c], &full.x);
    let dy = upload(&gpu, &[full.m, c], &full.dy);
    let gamma = upload(&gpu, &[c], &full.gamma);
    let beta = upload(&gpu, &[c], &full.beta);
    let mm = upload(&gpu, &[c], &full.moving_mean);
    let mv = upload(&gpu, &[c], &full.moving_var);
    let (sm, si) = (poisoned(&gpu, &[c]), poisoned(&gpu, &[c]));
    let (y, dx) = (poisoned(&gpu, &[full.m, c]), poisoned(&gpu, &[full.m, c]));
    let (dg, db) = (poisoned(&gpu, &[c]), poisoned(&gpu, &[c]));
    let s = BatchNormShape { m, c };
    let fwd = norm::batch_norm_train_forward(
        &gpu, &s, MOMENTUM, EPS, &x, &gamma, &beta, &mm, &mv, &sm, &si, &y,
    )
    .unwrap();
    let bwd =
        norm::batch_norm_backward(&gpu, &s, &x, &dy, &gamma, &sm, &si, &dx, &dg, &db).unwrap();
    run(&gpu, &[&fwd, &bwd]);
    let part = Case {
        m,
        x: full.x[..m * c].to_vec(),
        dy: full.dy[..m * c].to_vec(),
        ..full
    };
    let step = Step {
        y: read(&gpu, &y)[..m * c].to_vec(),
        saved_mean: read(&gpu, &sm),
        saved_invstd: read(&gpu, &si),
        moving_mean: read(&gpu, &mm),
        moving_var: read(&gpu, &mv),
        dx: read(&gpu, &dx)[..m * c].to_vec(),
        dgamma: read(&gpu, &dg),
        dbeta: read(&gpu, &db),
    };
    check_forward("fewer rows", &part, &step, F32_TOL, F32_TOL);
    assert!(
        read(&gpu, &y)[m * c..].iter().all(|v| v.is_nan()),
        "y written past m"
    );
    assert!(
        read(&gpu, &dx)[m * c..].iter().all(|v| v.is_nan()),
        "dx written past m"
    );
    let (want_dx, _, want_db) = rn::train_backward(
        m,
        c,
        &f64s(&part.x),
        &f64s(&part.dy),
        &f64s(&part.gamma),
        EPS as f64,
    );
    assert_close("fewer rows: dx", &step.dx, &want_dx, F32_TOL);
    assert_close("fewer rows: dbeta", &step.dbeta, &want_db, F32_TOL);
}
