//! Depthwise convolution kernels against an f64 CPU reference and central finite
//! differences: N=3, H=7, W=9, C=5, kernels 3x3 and 5x5, strides 1 and 2, both paddings.

mod common;
#[allow(unused)]
mod reference;

use common::*;
use naseval::ops::Padding;
use naseval::ops::depthwise::{self as dw, DepthwiseShape};
use reference::depthwise::{Geom, depthwise};

/// Every combination the tests cover, as (kernel size, stride, padding).
fn cases() -> Vec<(usize, usize, Padding)> {
    let mut v = Vec::new();
    for k in [3, 5] {
        for stride in [1, 2] {
            for padding in [Padding::Same, Padding::Valid] {
                v.push((k, stride, padding));
            }
        }
    }
    v
}

fn shapes(n: usize, k: usize, stride: usize, padding: Padding) -> (DepthwiseShape, Geom) {
    let (h, w, c) = (7, 9, 5);
    let s = DepthwiseShape {
        n,
        h,
        w,
        c,
        kh: k,
        kw: k,
        stride,
        padding,
    };
    let g = Geom {
        n,
        h,
        w,
        c,
        kh: k,
        kw: k,
        stride,
        same: padding == Padding::Same,
    };
    (s, g)
}

#[test]
fn forward_matches_reference() {
    let gpu = gpu();
    for (i, (k, stride, padding)) in cases().into_iter().enumerate() {
        let (s, g) = shapes(3, k, stride, padding);
        let (oh, ow) = g.out_hw();
        assert_eq!((s.out_h(), s.out_w()), (oh, ow), "{s:?}");
        let mut r = rng(600 + i as u64);
        let x = uniform(&mut r, 3 * 7 * 9 * 5, -1.0, 1.0);
        let w = uniform(&mut r, k * k * 5, -1.0, 1.0);
        let want = depthwise(&g, &f64s(&x), &f64s(&w));
        let (xt, wt, yt) = (
            upload(&gpu, &[3, 7, 9, 5], &x),
            upload(&gpu, &[k, k, 5], &w),
            poisoned(&gpu, &[3, oh, ow, 5]),
        );
        run(
            &gpu,
            &[&dw::depthwise_forward(&gpu, &s, &xt, &wt, &yt).unwrap()],
        );
        // At most 25 products per output: F32_TOL covers f32 rounding.
        assert_close(
            &format!("depthwise_forward {s:?}"),
            &read(&gpu, &yt),
            &want,
            F32_TOL,
        );
    }
}

#[test]
fn backward_input_matches_finite_differences() {
    let gpu = gpu();
    for (i, (k, stride, padding)) in cases().into_iter().enumerate() {
        let (s, g) = shapes(3, k, stride, padding);
        let (oh, ow) = g.out_hw();
        let mut r = rng(700 + i as u64);
        let x = f64s(&uniform(&mut r, 3 * 7 * 9 * 5, -1.0, 1.0));
        let w = uniform(&mut r, k * k * 5, -1.0, 1.0);
        let gr = uniform(&mut r, 3 * oh * ow * 5, -1.0, 1.0);
        let (wd, gd) = (f64s(&w), f64s(&gr));
        // L(x) = sum(g * depthwise(x, w)).
        let f = |xv: &[f64]| dot(&depthwise(&g, xv, &wd), &gd);
        let want = numeric_grad(&f, &x, 1e-3);
        let (gt, wt, dxt) = (
            upload(&gpu, &[3, oh, ow, 5], &gr),
            upload(&gpu, &[k, k, 5], &w),
            poisoned(&gpu, &[3, 7, 9, 5]),
        );
        run(
            &gpu,
            &[&dw::depthwise_backward_input(&gpu, &s, &gt, &wt, &dxt).unwrap()],
        );
        let what = format!("depthwise_backward_input {s:?}");
        assert_close(&what, &read(&gpu, &dxt), &want, FD_TOL);
    }
}

#[test]
fn backward_weight_matches_finite_differences() {
    let gpu = gpu();
    for (i, (k, stride, padding)) in cases().into_iter().enumerate() {
        let (s, g) = shapes(3, k, stride, padding);
        let (oh, ow) = g.out_hw();
        let mut r = rng(800 + i as u64);
        let x = uniform(&mut r, 3 * 7 * 9 * 5, -1.0, 1.0);
        let w = f64s(&uniform(&mut r, k * k * 5, -1.0, 1.0));
        let gr = uniform(&mut r, 3 * oh * ow * 5, -1.0, 1.0);
        let (xd, gd) = (f64s(&x), f64s(&gr));
        // L(w) = sum(g * depthwise(x, w)).
        let f = |wv: &[f64]| dot(&depthwise(&g, &xd, wv), &gd);
        let want = numeric_grad(&f, &w, 1e-3);
        let (xt, gt, dwt) = (
            upload(&gpu, &[3, 7, 9, 5], &x),
            upload(&gpu, &[3, oh, ow, 5], &gr),
            poisoned(&gpu, &[k, k, 5]),
        );
        run(
            &gpu,
            &[&dw::depthwise_backward_weight(&gpu, &s, &xt, &gt, &dwt).unwrap()],
        );
        let what = format!("depthwise_backward_weight {s:?}");
        assert_close(&what, &read(&gpu, &dwt), &want, FD_TOL);
    }
}

#[test]
fn backward_weight_two_stage_matches_and_is_deterministic() {
    // 40 samples: 80 to 280 output rows, so 64-row chunks give 2 to 5 partial sums.
    let gpu = gpu();
    let n = 40;
    for (i, (k, stride, padding)) in cases().into_iter().enumerate() {
        let (s, g) = shapes(n, k, stride, padding);
        let (oh, ow) = g.out_hw();
        let mut r = rng(900 + i as u64);
        let x = uniform(&mut r, n * 7 * 9 * 5, -1.0, 1.0);
        let w = f64s(&uniform(&mut r, k * k * 5, -1.0, 1.0));
        let gr = uniform(&mut r, n * oh * ow * 5, -1.0, 1.0);
        let (xd, gd) = (f64s(&x), f64s(&gr));
        let f = |wv: &[f64]| dot(&depthwise(&g, &xd, wv), &gd);
        let want = numeric_grad(&f, &w, 1e-3);
        let (xt, gt) = (
            upload(&gpu, &[n, 7, 9, 5], &x),
            upload(&gpu, &[n, oh, ow, 5], &gr),
        );
        let mut runs = Vec::new();
        for _ in 0..2 {
            let dwt = poisoned(&gpu, &[k, k, 5]);
            let p = dw::depthwise_backward_weight(&gpu, &s, &xt, &gt, &dwt).unwrap();
            assert_eq!(p.launches.len(), 2, "two stages expected for {s:?}");
            run(&gpu, &[&p]);
            let got = read(&gpu, &dwt);
            // Sums of up to 40*63 products: FD_TOL's relative part covers f32 rounding.
            assert_close(
                &format!("depthwise_backward_weight {s:?}"),
                &got,
                &want,
                FD_TOL,
            );
            runs.push(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
        assert_eq!(
            runs[0], runs[1],
            "two runs on the same inputs differ for {s:?}"
        );
    }
}

#[test]
fn smaller_batch_uses_only_the_first_samples() {
    // Tensors for 3 samples, launchers for 2: the third sample of y stays untouched.
    let gpu = gpu();
    let (s2, g2) = shapes(2, 3, 2, Padding::Same);
    let (oh, ow) = g2.out_hw();
    let mut r = rng(950);
    let x = uniform(&mut r, 3 * 7 * 9 * 5, -1.0, 1.0);
    let w = uniform(&mut r, 3 * 3 * 5, -1.0, 1.0);
    let want = depthwise(&g2, &f64s(&x[..2 * 7 * 9 * 5]), &f64s(&w));
    let (xt, wt, yt) = (
        upload(&gpu, &[3, 7, 9, 5], &x),
        upload(&gpu, &[3, 3, 5], &w),
        poisoned(&gpu, &[3, oh, ow, 5]),
    );
    run(
        &gpu,
        &[&dw::depthwise_forward(&gpu, &s2, &xt, &wt, &yt).unwrap()],
    );
    let got = read(&gpu, &yt);
    let used = 2 * oh * ow * 5;
    assert_close("depthwise_forward N=2 of 3", &got[..used], &want, F32_TOL);
    assert!(
        got[used..].iter().all(|v| v.is_nan()),
        "wrote past sample N"
    );
    assert!(s2.flops() > 0.0);
}
