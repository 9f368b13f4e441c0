//! Matrix multiply kernels (both forward variants, input and weight gradients, bias
//! gradient) against f64 CPU references and central finite differences, on odd sizes that
//! leave partial tiles in every direction.

mod common;
#[allow(unused)]
mod reference;

use common::*;
use naseval::ops::matmul::{self as mm, MatmulVariant};
use reference::matmul as cpu;

/// (M, K, N) triples: single elements, one partial tile, several tiles with tails.
const SIZES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (3, 7, 9),
    (33, 65, 9),
    (65, 130, 7),
    (130, 33, 65),
    (130, 65, 130),
];

/// (M, K, N) triples for the vec4 variant: K and N multiples of 4, M odd.
const VEC4_SIZES: &[(usize, usize, usize)] = &[(1, 4, 4), (3, 8, 12), (33, 68, 36), (131, 132, 68)];

const VARIANTS: [MatmulVariant; 3] = [
    MatmulVariant::Registers,
    MatmulVariant::RegistersVec4,
    MatmulVariant::Tiled,
];

fn supports(variant: MatmulVariant, k: usize, n: usize) -> bool {
    variant != MatmulVariant::RegistersVec4 || (k.is_multiple_of(4) && n.is_multiple_of(4))
}

#[test]
fn forward_matches_reference_every_variant() {
    let gpu = gpu();
    for (seed, &(m, k, n)) in SIZES.iter().chain(VEC4_SIZES).enumerate() {
        let mut r = rng(100 + seed as u64);
        let x = uniform(&mut r, m * k, -1.0, 1.0);
        let w = uniform(&mut r, k * n, -1.0, 1.0);
        let b = uniform(&mut r, n, -1.0, 1.0);
        let want = cpu::matmul(m, k, n, &f64s(&x), &f64s(&w), &f64s(&b));
        let (xt, wt, bt) = (
            upload(&gpu, &[m, k], &x),
            upload(&gpu, &[k, n], &w),
            upload(&gpu, &[n], &b),
        );
        for variant in VARIANTS.into_iter().filter(|&v| supports(v, k, n)) {
            let yt = poisoned(&gpu, &[m, n]);
            let p = mm::matmul_forward_variant(&gpu, variant, m, k, n, &xt, &wt, &bt, &yt).unwrap();
            run(&gpu, &[&p]);
            // Sums of up to 132 products of values in [-1, 1]: F32_TOL covers f32 rounding.
            let what = format!("matmul_forward {variant:?} M={m} K={k} N={n}");
            assert_close(&what, &read(&gpu, &yt), &want, F32_TOL);
        }
    }
}

#[test]
fn forward_uses_only_the_first_m_rows() {
    // Tensors sized for 40 rows, launcher built for 33: rows 33.. of y stay untouched.
    let gpu = gpu();
    let (m, cap, k, n) = (33, 40, 12, 8);
    let mut r = rng(110);
    let x = uniform(&mut r, cap * k, -1.0, 1.0);
    let w = uniform(&mut r, k * n, -1.0, 1.0);
    let b = uniform(&mut r, n, -1.0, 1.0);
    let want = cpu::matmul(m, k, n, &f64s(&x[..m * k]), &f64s(&w), &f64s(&b));
    let (xt, wt, bt) = (
        upload(&gpu, &[cap, k], &x),
        upload(&gpu, &[k, n], &w),
        upload(&gpu, &[n], &b),
    );
    for variant in VARIANTS {
        let yt = poisoned(&gpu, &[cap, n]);
        let p = mm::matmul_forward_variant(&gpu, variant, m, k, n, &xt, &wt, &bt, &yt).unwrap();
        run(&gpu, &[&p]);
        let got = read(&gpu, &yt);
        assert_close(
            &format!("{variant:?} first rows"),
            &got[..m * n],
            &want,
            F32_TOL,
        );
        assert!(
            got[m * n..].iter().all(|v| v.is_nan()),
            "{variant:?} wrote past row M"
        );
    }
}

#[test]
fn forward_default_variant_follows_the_adapter_and_sizes() {
    let gpu = gpu();
    let (odd, even) = if gpu.is_cpu {
        (MatmulVariant::Registers, MatmulVariant::RegistersVec4)
    } else {
        (MatmulVariant::Tiled, MatmulVariant::Tiled)
    };
    assert_eq!(MatmulVariant::choose(&gpu, 7, 8), odd);
    assert_eq!(MatmulVariant::choose(&gpu, 8, 9), odd);
    assert_eq!(MatmulVariant::choose(&gpu, 8, 12), even);
    assert_eq!(mm::matmul_flops(2, 3, 5), 60.0);
}

/// FD sizes: M = 130 makes the weight gradient run its two-stage reduction (chunks of 64
/// rows); K = 67 leaves a partial 64-wide tile in the tiled input gradient.
const FD_SIZES: &[(usize, usize, usize)] = &[(3, 7, 9), (33, 9, 65), (130, 9, 33), (65, 67, 17)];

#[test]
fn backward_input_matches_finite_differences() {
    let gpu = gpu();
    for (seed, &(m, k, n)) in FD_SIZES.iter().enumerate() {
        let mut r = rng(200 + seed as u64);
        let x = f64s(&uniform(&mut r, m * k, -1.0, 1.0));
        let w = uniform(&mut r, k * n, -1.0, 1.0);
        let b = f64s(&uniform(&mut r, n, -1.0, 1.0));
        let g = uniform(&mut r, m * n, -1.0, 1.0);
        let (wd, gd) = (f64s(&w), f64s(&g));
        // L(x) = sum(g * (x w + b)); dL/dx = g w^T.
        let f = |xv: &[f64]| dot(&cpu::matmul(m, k, n, xv, &wd, &b), &gd);
        let want = numeric_grad(&f, &x, 1e-3);
        let (gt, wt) = (upload(&gpu, &[m, n], &g), upload(&gpu, &[k, n], &w));
        for variant in [MatmulVariant::Registers, MatmulVariant::Tiled] {
            let dxt = poisoned(&gpu, &[m, k]);
            let p =
                mm::matmul_backward_input_variant(&gpu, variant, m, k, n, &gt, &wt, &dxt).unwrap();
            run(&gpu, &[&p]);
            let what = format!("matmul_backward_input {variant:?} M={m} K={k} N={n}");
            assert_close(&what, &read(&gpu, &dxt), &want, FD_TOL);
        }
    }
}

#[test]
fn backward_weight_matches_finite_differences() {
    let gpu = gpu();
    for (seed, &(m, k, n)) in FD_SIZES.iter().enumerate() {
        let mut r = rng(300 + seed as u64);
        let x = uniform(&mut r, m * k, -1.0, 1.0);
        let w = f64s(&uniform(&mut r, k * n, -1.0, 1.0));
        let b = f64s(&uniform(&mut r, n, -1.0, 1.0));
        let g = uniform(&mut r, m * n, -1.0, 1.0);
        let (xd, gd) = (f64s(&x), f64s(&g));
        // L(w) = sum(g * (x w + b)); dL/dw = x^T g.
        let f = |wv: &[f64]| dot(&cpu::matmul(m, k, n, &xd, wv, &b), &gd);
        let want = numeric_grad(&f, &w, 1e-3);
        let (xt, gt, dwt) = (
            upload(&gpu, &[m, k], &x),
            upload(&gpu, &[m, n], &g),
            poisoned(&gpu, &[k, n]),
        );
        run(
            &gpu,
            &[&mm::matmul_backward_weight(&gpu, m, k, n, &xt, &gt, &dwt).unwrap()],
        );
        let what = format!("matmul_backward_weight M={m} K={k} N={n}");
        assert_close(&what, &read(&gpu, &dwt), &want, FD_TOL);
    }
}

#[test]
fn bias_backward_matches_finite_differences_and_column_sums() {
    let gpu = gpu();
    // 5000 rows: 71 chunks of 71 rows, the last one short.
    for (seed, &(m, n)) in [(1, 1), (3, 9), (130, 7), (5000, 7)].iter().enumerate() {
        let mut r = rng(400 + seed as u64);
        let g = uniform(&mut r, m * n, -1.0, 1.0);
        let gd = f64s(&g);
        let (gt, dbt) = (upload(&gpu, &[m, n], &g), poisoned(&gpu, &[n]));
        run(&gpu, &[&mm::bias_backward(&gpu, m, n, &gt, &dbt).unwrap()]);
        let got = read(&gpu, &dbt);
        let what = format!("bias_backward M={m} N={n}");
        // Column sums of up to 5000 values in [-1, 1].
        let tol = Tol {
            abs: 1e-4,
            rel: 1e-4,
            total_rel: 1e-5,
        };
        assert_close(&what, &got, &cpu::column_sums(m, n, &gd), tol);
        if m <= 130 {
            // L(b) = sum(g * (x w + b)) with x w dropped (constant in b); dL/db = column
            // sums of g.
            let f = |bv: &[f64]| {
                let y: Vec<f64> = (0..m * n).map(|e| bv[e % n]).collect();
                dot(&y, &gd)
            };
            let want = numeric_grad(&f, &vec![0.5; n], 1e-3);
            assert_close(&format!("{what} vs FD"), &got, &want, FD_TOL);
        }
    }
}

#[test]
fn reductions_are_bit_identical_across_runs() {
    let gpu = gpu();
    let (m, k, n) = (4099, 13, 11);
    let mut r = rng(500);
    let x = uniform(&mut r, m * k, -1.0, 1.0);
    let g = uniform(&mut r, m * n, -1.0, 1.0);
    let (xt, gt) = (upload(&gpu, &[m, k], &x), upload(&gpu, &[m, n], &g));
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (dwt, dbt) = (poisoned(&gpu, &[k, n]), poisoned(&gpu, &[n]));
        let pw = mm::matmul_backward_weight(&gpu, m, k, n, &xt, &gt, &dwt).unwrap();
        let pb = mm::bias_backward(&gpu, m, n, &gt, &dbt).unwrap();
        assert!(
            pw.launches.len() == 2 && pb.launches.len() == 2,
            "two stages expected"
        );
        run(&gpu, &[&pw, &pb]);
        let bits = |v: Vec<f32>| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        runs.push((bits(read(&gpu, &dwt)), bits(read(&gpu, &dbt))));
    }
    assert_eq!(runs[0], runs[1], "two runs on the same inputs differ");
}
