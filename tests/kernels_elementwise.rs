//! Elementwise kernels against CPU references, and their backward against finite
//! differences.

mod common;
#[allow(unused)]
mod reference;

use common::*;
use naseval::ops::elementwise as ew;

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
