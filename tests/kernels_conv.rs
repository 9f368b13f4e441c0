//! Convolution kernels against the f64 reference, and their backward against central
//! finite differences of the reference forward. Both variants of the forward and input
//! gradient kernels (register-blocked and workgroup-tiled) run on every adapter.
//!
//! Tolerances: the forward and the direct backward comparisons use F32_TOL (sums of at most
//! a few thousand f32 products); the finite-difference checks use FD_TOL. The loss
//! L = sum(g * conv(x, w)) is linear in x and in w, so the difference quotient is exact up
//! to f64 rounding and all the error left is the kernels' f32 rounding.

mod common;
#[allow(unused)]
mod reference;

use common::*;
use naseval::gpu::Gpu;
use naseval::ops::Padding;
use naseval::ops::conv::{self, Conv2dShape, ConvVariant};
use reference::conv as cref;

/// (n, h, w, c, k, kh, kw, stride, padding)
type Case = (
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    Padding,
);

fn shape(case: Case) -> Conv2dShape {
    let (n, h, w, c, k, kh, kw, stride, padding) = case;
    Conv2dShape {
        n,
        h,
        w,
        c,
        k,
        kh,
        kw,
        stride,
        padding,
    }
}

fn reference(s: &Conv2dShape) -> cref::Conv {
    cref::Conv {
        n: s.n,
        h: s.h,
        w: s.w,
        c: s.c,
        k: s.k,
        kh: s.kh,
        kw: s.kw,
        stride: s.stride,
        same: s.padding == Padding::Same,
    }
}

fn x_shape(s: &Conv2dShape) -> [usize; 4] {
    [s.n, s.h, s.w, s.c]
}

fn y_shape(s: &Conv2dShape) -> [usize; 4] {
    [s.n, s.out_h(), s.out_w(), s.k]
}

fn w_shape(s: &Conv2dShape) -> [usize; 4] {
    [s.kh, s.kw, s.c, s.k]
}

fn len(shape: &[usize]) -> usize {
    shape.iter().product()
}

const VARIANTS: [ConvVariant; 2] = [ConvVariant::Registers, ConvVariant::Tiled];

/// Runs the forward kernel on fresh random inputs (seeded) and returns x, w, b and y.
fn run_forward(
    gpu: &Gpu,
    v: ConvVariant,
    s: &Conv2dShape,
    seed: u64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut r = rng(seed);
    let x = uniform(&mut r, len(&x_shape(s)), -1.0, 1.0);
    let w = uniform(&mut r, len(&w_shape(s)), -1.0, 1.0);
    let b = uniform(&mut r, s.k, -1.0, 1.0);
    let (xt, wt, bt) = (
        upload(gpu, &x_shape(s), &x),
        upload(gpu, &w_shape(s), &w),
        upload(gpu, &[s.k], &b),
    );
    let yt = poisoned(gpu, &y_shape(s));
    let prog = conv::conv2d_forward_variant(gpu, v, s, &xt, &wt, &bt, &yt).unwrap();
    run(gpu, &[&prog]);
    (x, w, b, read(gpu, &yt))
}

fn run_backward_input(
    gpu: &Gpu,
    v: ConvVariant,
    s: &Conv2dShape,
    dy: &[f32],
    w: &[f32],
) -> Vec<f32> {
    let (dyt, wt) = (upload(gpu, &y_shape(s), dy), upload(gpu, &w_shape(s), w));
    let dxt = poisoned(gpu, &x_shape(s));
    let prog = conv::conv2d_backward_input_variant(gpu, v, s, &dyt, &wt, &dxt).unwrap();
    run(gpu, &[&prog]);
    read(gpu, &dxt)
}

fn run_backward_weight(gpu: &Gpu, s: &Conv2dShape, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (xt, dyt) = (upload(gpu, &x_shape(s), x), upload(gpu, &y_shape(s), dy));
    let dwt = poisoned(gpu, &w_shape(s));
    run(
        gpu,
        &[&conv::conv2d_backward_weight(gpu, s, &xt, &dyt, &dwt).unwrap()],
    );
    read(gpu, &dwt)
}

const SAME: Padding = Padding::Same;
const VALID: Padding = Padding::Valid;

/// Odd sizes, kernels 1, 3, 5 and 3x5, strides 1 and 2, both paddings, channel counts that
/// are not multiples of the 4x4 register tile and span several tiles (and, once, several of
/// the tiled variant's 32-channel blocks), inputs smaller than
/// the kernel ('same'), and even sizes where 'same' pads only after.
const CASES: &[Case] = &[
    (3, 7, 9, 5, 3, 3, 3, 1, SAME),
    (3, 7, 9, 5, 3, 3, 3, 2, SAME),
    (3, 7, 9, 5, 3, 3, 3, 1, VALID),
    (3, 7, 9, 5, 3, 3, 3, 2, VALID),
    (3, 7, 9, 5, 5, 5, 5, 1, SAME),
    (3, 7, 9, 5, 5, 5, 5, 2, SAME),
    (3, 7, 9, 5, 5, 5, 5, 2, VALID),
    (3, 7, 9, 5, 3, 1, 1, 1, SAME),
    (3, 7, 9, 5, 3, 1, 1, 2, VALID),
    (2, 8, 6, 3, 4, 3, 5, 1, SAME),
    (2, 8, 6, 3, 4, 3, 5, 2, VALID),
    (2, 8, 10, 4, 8, 3, 3, 2, SAME),
    (2, 6, 7, 9, 11, 3, 3, 1, SAME),
    (2, 6, 7, 13, 10, 3, 3, 2, SAME),
    (1, 5, 6, 35, 37, 3, 3, 1, SAME),
    (1, 2, 1, 3, 5, 5, 5, 1, SAME),
    (1, 1, 1, 2, 3, 3, 3, 2, SAME),
];

#[test]
fn forward_matches_reference() {
    let gpu = gpu();
    for v in VARIANTS {
        for (i, &case) in CASES.iter().enumerate() {
            let s = shape(case);
            let (x, w, b, y) = run_forward(&gpu, v, &s, 100 + i as u64);
            let want = cref::conv2d_forward(&reference(&s), &f64s(&x), &f64s(&w), &f64s(&b));
            assert_close(&format!("conv2d_forward {v:?} {s:?}"), &y, &want, F32_TOL);
        }
    }
}

#[test]
fn backward_matches_direct_reference() {
    let gpu = gpu();
    for (i, &case) in CASES.iter().enumerate() {
        let s = shape(case);
        let rs = reference(&s);
        let mut r = rng(200 + i as u64);
        let x = uniform(&mut r, rs.x_len(), -1.0, 1.0);
        let w = uniform(&mut r, rs.w_len(), -1.0, 1.0);
        let dy = uniform(&mut r, rs.y_len(), -1.0, 1.0);
        let want = cref::conv2d_backward_input(&rs, &f64s(&dy), &f64s(&w));
        for v in VARIANTS {
            let dx = run_backward_input(&gpu, v, &s, &dy, &w);
            assert_close(
                &format!("conv2d_backward_input {v:?} {s:?}"),
                &dx,
                &want,
                F32_TOL,
            );
        }
        let dw = run_backward_weight(&gpu, &s, &x, &dy);
        let want = cref::conv2d_backward_weight(&rs, &f64s(&x), &f64s(&dy));
        assert_close(
            &format!("conv2d_backward_weight {s:?}"),
            &dw,
            &want,
            F32_TOL,
        );
    }
}

/// Small shapes, so that the finite-difference loops (two reference forwards per
/// coordinate) stay fast.
const FD_CASES: &[Case] = &[
    (2, 5, 6, 3, 5, 3, 3, 1, SAME),
    (2, 5, 6, 3, 5, 3, 3, 2, SAME),
    (2, 5, 6, 3, 5, 3, 3, 2, VALID),
    (2, 6, 5, 2, 3, 5, 3, 1, SAME),
    (1, 7, 7, 2, 3, 5, 5, 2, VALID),
    (2, 5, 5, 6, 5, 1, 1, 2, SAME),
];

#[test]
fn backward_input_matches_finite_differences() {
    let gpu = gpu();
    for (i, &case) in FD_CASES.iter().enumerate() {
        let s = shape(case);
        let rs = reference(&s);
        let mut r = rng(300 + i as u64);
        let x = uniform(&mut r, rs.x_len(), -1.0, 1.0);
        let w = uniform(&mut r, rs.w_len(), -1.0, 1.0);
        let g = uniform(&mut r, rs.y_len(), -1.0, 1.0);
        let (wd, gd, bd) = (f64s(&w), f64s(&g), vec![0.0; s.k]);
        // dL/dx for L = sum(g * conv(x, w)).
        let f = |xv: &[f64]| dot(&cref::conv2d_forward(&rs, xv, &wd, &bd), &gd);
        let want = numeric_grad(&f, &f64s(&x), 1e-3);
        for v in VARIANTS {
            let dx = run_backward_input(&gpu, v, &s, &g, &w);
            assert_close(
                &format!("conv2d_backward_input {v:?} {s:?}"),
                &dx,
                &want,
                FD_TOL,
            );
        }
    }
}

#[test]
fn backward_weight_matches_finite_differences() {
    let gpu = gpu();
    for (i, &case) in FD_CASES.iter().enumerate() {
        let s = shape(case);
        let rs = reference(&s);
        let mut r = rng(400 + i as u64);
        let x = uniform(&mut r, rs.x_len(), -1.0, 1.0);
        let w = uniform(&mut r, rs.w_len(), -1.0, 1.0);
        let g = uniform(&mut r, rs.y_len(), -1.0, 1.0);
        let dw = run_backward_weight(&gpu, &s, &x, &g);
        let (xd, gd, bd) = (f64s(&x), f64s(&g), vec![0.0; s.k]);
        // dL/dw for L = sum(g * conv(x, w)).
        let f = |wv: &[f64]| dot(&cref::conv2d_forward(&rs, &xd, wv, &bd), &gd);
        let want = numeric_grad(&f, &f64s(&w), 1e-3);
        assert_close(&format!("conv2d_backward_weight {s:?}"), &dw, &want, FD_TOL);
    }
}

/// The weight gradient's reduction is split over rows once the batch is large enough; a
/// batch of 40 at 9x11 forces several splits with a ragged last one, and the result must
/// still match the reference.
#[test]
fn backward_weight_with_many_splits_matches_reference() {
    let gpu = gpu();
    let s = shape((40, 9, 11, 6, 7, 3, 3, 1, SAME));
    let rs = reference(&s);
    let mut r = rng(500);
    let x = uniform(&mut r, rs.x_len(), -1.0, 1.0);
    let dy = uniform(&mut r, rs.y_len(), -1.0, 1.0);
    let dw = run_backward_weight(&gpu, &s, &x, &dy);
    let want = cref::conv2d_backward_weight(&rs, &f64s(&x), &f64s(&dy));
    assert_close("conv2d_backward_weight, split", &dw, &want, F32_TOL);
}

/// Same inputs, same bits: no atomics, fixed summation order.
#[test]
fn kernels_are_deterministic() {
    let gpu = gpu();
    let s = shape((6, 9, 7, 6, 9, 3, 3, 1, SAME));
    let rs = reference(&s);
    let mut r = rng(600);
    let x = uniform(&mut r, rs.x_len(), -1.0, 1.0);
    let w = uniform(&mut r, rs.w_len(), -1.0, 1.0);
    let dy = uniform(&mut r, rs.y_len(), -1.0, 1.0);
    let bits = |v: Vec<f32>| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for v in VARIANTS {
        let first = (
            bits(run_forward(&gpu, v, &s, 601).3),
            bits(run_backward_input(&gpu, v, &s, &dy, &w)),
        );
        let second = (
            bits(run_forward(&gpu, v, &s, 601).3),
            bits(run_backward_input(&gpu, v, &s, &dy, &w)),
        );
        assert!(
            first.0 == second.0,
            "conv2d_forward {v:?} differs between runs"
        );
        assert!(
            first.1 == second.1,
            "conv2d_backward_input {v:?} differs between runs"
        );
    }
    let dw = bits(run_backward_weight(&gpu, &s, &x, &dy));
    assert!(
        dw == bits(run_backward_weight(&gpu, &s, &x, &dy)),
        "conv2d_backward_weight differs between runs"
    );
}

/// A launcher built for a smaller batch than its tensors hold touches only the first n
/// samples: the rest of the (poisoned) outputs stays NaN, and the gradients ignore the
/// extra samples of x and dy.
#[test]
fn partial_batch_touches_only_the_first_samples() {
    let gpu = gpu();
    for v in VARIANTS {
        partial_batch(&gpu, v);
    }
}

fn partial_batch(gpu: &Gpu, v: ConvVariant) {
    let full = shape((3, 5, 6, 3, 5, 3, 3, 2, SAME));
    let s = Conv2dShape { n: 2, ..full };
    let (rf, rs) = (reference(&full), reference(&s));
    let mut r = rng(700);
    let x = uniform(&mut r, rf.x_len(), -1.0, 1.0);
    let w = uniform(&mut r, rf.w_len(), -1.0, 1.0);
    let b = uniform(&mut r, full.k, -1.0, 1.0);
    let dy = uniform(&mut r, rf.y_len(), -1.0, 1.0);
    let (xt, wt, bt, dyt) = (
        upload(gpu, &x_shape(&full), &x),
        upload(gpu, &w_shape(&full), &w),
        upload(gpu, &[full.k], &b),
        upload(gpu, &y_shape(&full), &dy),
    );
    let (yt, dxt, dwt) = (
        poisoned(gpu, &y_shape(&full)),
        poisoned(gpu, &x_shape(&full)),
        poisoned(gpu, &w_shape(&full)),
    );
    let progs = [
        conv::conv2d_forward_variant(gpu, v, &s, &xt, &wt, &bt, &yt).unwrap(),
        conv::conv2d_backward_input_variant(gpu, v, &s, &dyt, &wt, &dxt).unwrap(),
        conv::conv2d_backward_weight(gpu, &s, &xt, &dyt, &dwt).unwrap(),
    ];
    run(gpu, &progs.iter().collect::<Vec<_>>());
    let (xs, dys) = (&x[..rs.x_len()], &dy[..rs.y_len()]);

    let y = read(gpu, &yt);
    let want = cref::conv2d_forward(&rs, &f64s(xs), &f64s(&w), &f64s(&b));
    assert_close(
        &format!("conv2d_forward {v:?}, partial batch"),
        &y[..rs.y_len()],
        &want,
        F32_TOL,
    );
    assert!(
        y[rs.y_len()..].iter().all(|v| v.is_nan()),
        "forward wrote past sample n"
    );

    let dx = read(gpu, &dxt);
    let want = cref::conv2d_backward_input(&rs, &f64s(dys), &f64s(&w));
    assert_close(
        &format!("conv2d_backward_input {v:?}, partial"),
        &dx[..rs.x_len()],
        &want,
        F32_TOL,
    );
    assert!(
        dx[rs.x_len()..].iter().all(|v| v.is_nan()),
        "dx written past sample n"
    );

    let want = cref::conv2d_backward_weight(&rs, &f64s(xs), &f64s(dys));
    assert_close(
        "conv2d_backward_weight, partial",
        &read(gpu, &dwt),
        &want,
        F32_TOL,
    );
}
