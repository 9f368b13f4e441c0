//! Pooling kernels against the CPU reference, and their backward against finite
//! differences of the reference forward.

mod common;
#[allow(unused)]
mod reference;

use common::*;
use naseval::gpu::{Gpu, Tensor};
use naseval::ops::Padding;
use naseval::ops::pool::{self, PoolShape};
use rand::seq::SliceRandom;
use reference::pool::{self as rp, Pool};

const N: usize = 3;
const H: usize = 7;
const W: usize = 9;
const C: usize = 5;

/// Every odd-size case: window 2 and 3, stride 1 and 2, both paddings.
fn cases() -> Vec<(PoolShape, Pool)> {
    let mut out = Vec::new();
    for size in [2, 3] {
        for stride in [1, 2] {
            for padding in [Padding::Same, Padding::Valid] {
                let s = PoolShape {
                    n: N,
                    h: H,
                    w: W,
                    c: C,
                    size,
                    stride,
                    padding,
                };
                let p = Pool {
                    n: N,
                    h: H,
                    w: W,
                    c: C,
                    k: size,
                    stride,
                    same: padding == Padding::Same,
                };
                out.push((s, p));
            }
        }
    }
    out
}

fn u32_poisoned(gpu: &Gpu, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_u32(gpu, shape, &vec![u32::MAX; n]).expect("test tensor fits")
}

/// Distinct values 0.01 apart in random order: no ties, and a step of 1e-3 cannot change
/// any window's argmax, so finite differences of max pooling are meaningful.
fn distinct(seed: u64, n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) * 0.01).collect();
    v.shuffle(&mut rng(seed));
    v
}

#[test]
fn output_sizes_follow_keras() {
    let s = |size, stride, padding| PoolShape {
        n: 1,
        h: 7,
        w: 8,
        c: 1,
        size,
        stride,
        padding,
    };
    // 'same': ceil(in / stride); 'valid': (in - size) / stride + 1.
    assert_eq!(
        (
            s(3, 2, Padding::Same).out_h(),
            s(3, 2, Padding::Same).out_w()
        ),
        (4, 4)
    );
    assert_eq!(
        (
            s(3, 2, Padding::Valid).out_h(),
            s(3, 2, Padding::Valid).out_w()
        ),
        (3, 3)
    );
    assert_eq!(
        (
            s(2, 1, Padding::Valid).out_h(),
            s(2, 1, Padding::Valid).out_w()
        ),
        (6, 7)
    );
}

#[test]
fn max_pool_forward_matches_reference_and_argmax() {
    let gpu = gpu();
    let x = uniform(&mut rng(10), N * H * W * C, -1.0, 1.0);
    let xt = upload(&gpu, &[N, H, W, C], &x);
    for (s, p) in cases() {
        let oshape = [N, s.out_h(), s.out_w(), C];
        let (yt, at) = (poisoned(&gpu, &oshape), u32_poisoned(&gpu, &oshape));
        run(
            &gpu,
            &[&pool::max_pool_forward(&gpu, &s, &xt, &yt, &at).unwrap()],
        );
        let (want_y, want_arg) = rp::max_pool(&p, &f64s(&x));
        // A maximum is a copy of an input: exact.
        let exact = Tol {
            abs: 0.0,
            rel: 0.0,
            total_rel: 0.0,
        };
        assert_close(
            &format!("max_pool_forward {s:?}"),
            &read(&gpu, &yt),
            &want_y,
            exact,
        );
        assert_eq!(at.read_u32(&gpu).unwrap(), want_arg, "argmax {s:?}");
    }
}

#[test]
fn max_pool_ties_pick_the_first_cell_in_scan_order() {
    let gpu = gpu();
    // A constant image: every window is a tie, so each picks its top-left real cell.
    let x = vec![0.5f32; N * H * W * C];
    let xt = upload(&gpu, &[N, H, W, C], &x);
    for (s, p) in cases() {
        let oshape = [N, s.out_h(), s.out_w(), C];
        let (yt, at) = (poisoned(&gpu, &oshape), u32_poisoned(&gpu, &oshape));
        run(
            &gpu,
            &[&pool::max_pool_forward(&gpu, &s, &xt, &yt, &at).unwrap()],
        );
        let (_, want_arg) = rp::max_pool(&p, &f64s(&x));
        assert_eq!(at.read_u32(&gpu).unwrap(), want_arg, "tied argmax {s:?}");
    }
}

#[test]
fn max_pool_backward_matches_finite_differences() {
    let gpu = gpu();
    let n_in = N * H * W * C;
    let x = distinct(11, n_in);
    let xt = upload(&gpu, &[N, H, W, C], &x);
    for (i, (s, p)) in cases().into_iter().enumerate() {
        let oshape = [N, s.out_h(), s.out_w(), C];
        let g = uniform(&mut rng(100 + i as u64), oshape.iter().product(), -1.0, 1.0);
        let (yt, at, gt) = (
            poisoned(&gpu, &oshape),
            u32_poisoned(&gpu, &oshape),
            upload(&gpu, &oshape, &g),
        );
        let dxt = poisoned(&gpu, &[N, H, W, C]);
        let fwd = pool::max_pool_forward(&gpu, &s, &xt, &yt, &at).unwrap();
        let bwd = pool::max_pool_backward(&gpu, &s, &gt, &at, &dxt).unwrap();
        run(&gpu, &[&fwd, &bwd]);
        let gd = f64s(&g);
        let f = |x: &[f64]| dot(&rp::max_pool(&p, x).0, &gd);
        let want = numeric_grad(&f, &f64s(&x), 1e-3);
        assert_close(
            &format!("max_pool_backward {s:?}"),
            &read(&gpu, &dxt),
            &want,
            FD_TOL,
        );
    }
}

#[test]
fn avg_pool_forward_matches_reference() {
    let gpu = gpu();
    let x = uniform(&mut rng(12), N * H * W * C, -1.0, 1.0);
    let xt = upload(&gpu, &[N, H, W, C], &x);
    for (s, p) in cases() {
        let yt = poisoned(&gpu, &[N, s.out_h(), s.out_w(), C]);
        run(
            &gpu,
            &[&pool::avg_pool_forward(&gpu, &s, &xt, &yt).unwrap()],
        );
        let want = rp::avg_pool(&p, &f64s(&x));
        assert_close(
            &format!("avg_pool_forward {s:?}"),
            &read(&gpu, &yt),
            &want,
            F32_TOL,
        );
    }
}

#[test]
fn avg_pool_backward_matches_finite_differences() {
    let gpu = gpu();
    let x = uniform(&mut rng(13), N * H * W * C, -1.0, 1.0);
    for (i, (s, p)) in cases().into_iter().enumerate() {
        let oshape = [N, s.out_h(), s.out_w(), C];
        let g = uniform(&mut rng(200 + i as u64), oshape.iter().product(), -1.0, 1.0);
        let (gt, dxt) = (upload(&gpu, &oshape, &g), poisoned(&gpu, &[N, H, W, C]));
        run(
            &gpu,
            &[&pool::avg_pool_backward(&gpu, &s, &gt, &dxt).unwrap()],
        );
        let gd = f64s(&g);
        let f = |x: &[f64]| dot(&rp::avg_pool(&p, x), &gd);
        let want = numeric_grad(&f, &f64s(&x), 1e-3);
        assert_close(
            &format!("avg_pool_backward {s:?}"),
            &read(&gpu, &dxt),
            &want,
            FD_TOL,
        );
    }
}

#[test]
fn global_avg_pool_forward_and_backward() {
    let gpu = gpu();
    let mut r = rng(14);
    let x = uniform(&mut r, N * H * W * C, -1.0, 1.0);
    let g = uniform(&mut r, N * C, -1.0, 1.0);
    let (xt, yt) = (upload(&gpu, &[N, H, W, C], &x), poisoned(&gpu, &[N, C]));
    let (gt, dxt) = (upload(&gpu, &[N, C], &g), poisoned(&gpu, &[N, H, W, C]));
    let fwd = pool::global_avg_pool_forward(&gpu, N, H, W, C, &xt, &yt).unwrap();
    let bwd = pool::global_avg_pool_backward(&gpu, N, H, W, C, &gt, &dxt).unwrap();
    run(&gpu, &[&fwd, &bwd]);
    let want = rp::global_avg_pool(N, H * W, C, &f64s(&x));
    assert_close("global_avg_pool_forward", &read(&gpu, &yt), &want, F32_TOL);
    let gd = f64s(&g);
    let f = |x: &[f64]| dot(&rp::global_avg_pool(N, H * W, C, x), &gd);
    let want = numeric_grad(&f, &f64s(&x), 1e-3);
    assert_close("global_avg_pool_backward", &read(&gpu, &dxt), &want, FD_TOL);
}

#[test]
fn wide_rows_and_many_rows_cover_the_grid() {
    let gpu = gpu();
    // Rows of W*C = 143 elements span three 64-wide workgroups; 40,000 samples of 2x1
    // give 80,000 input rows, more than one grid dimension holds.
    for (n, h, w, c) in [(2, 5, 11, 13), (40_000, 2, 1, 1)] {
        let size = h.min(3);
        let s = PoolShape {
            n,
            h,
            w,
            c,
            size,
            stride: 2,
            padding: Padding::Same,
        };
        let p = Pool {
            n,
            h,
            w,
            c,
            k: size,
            stride: 2,
            same: true,
        };
        let oshape = [n, s.out_h(), s.out_w(), c];
        let x = distinct(21, n * h * w * c);
        let g = uniform(&mut rng(22), oshape.iter().product(), -1.0, 1.0);
        let xt = upload(&gpu, &[n, h, w, c], &x);
        let gt = upload(&gpu, &oshape, &g);
        let (yt, at) = (poisoned(&gpu, &oshape), u32_poisoned(&gpu, &oshape));
        let (ayt, dxt) = (poisoned(&gpu, &oshape), poisoned(&gpu, &[n, h, w, c]));
        let adxt = poisoned(&gpu, &[n, h, w, c]);
        let programs = [
            pool::max_pool_forward(&gpu, &s, &xt, &yt, &at).unwrap(),
            pool::max_pool_backward(&gpu, &s, &gt, &at, &dxt).unwrap(),
            pool::avg_pool_forward(&gpu, &s, &xt, &ayt).unwrap(),
            pool::avg_pool_backward(&gpu, &s, &gt, &adxt).unwrap(),
        ];
        run(&gpu, &programs.iter().collect::<Vec<_>>());
        let xd = f64s(&x);
        let (want_y, want_arg) = rp::max_pool(&p, &xd);
        assert_close("max_pool wide", &read(&gpu, &yt), &want_y, F32_TOL);
        assert_eq!(at.read_u32(&gpu).unwrap(), want_arg, "argmax wide {s:?}");
        assert_close(
            "avg_pool wide",
            &read(&gpu, &ayt),
            &rp::avg_pool(&p, &xd),
            F32_TOL,
        );
        // Both backward passes are linear in g: scatter it through the reference windows.
        let mut want_dx = vec![0.0; x.len()];
        for (o, &a) in want_arg.iter().enumerate() {
            want_dx[a as usize] += g[o] as f64;
        }
        assert_close(
            "max_pool_backward wide",
            &read(&gpu, &dxt),
            &want_dx,
            F32_TOL,
        );
        let mut want_adx = vec![0.0; x.len()];
        for (o, cells) in p.windows().iter().enumerate() {
            for &i in cells {
                want_adx[i] += g[o] as f64 / cells.len() as f64;
            }
        }
        let got = read(&gpu, &adxt);
        assert_close("avg_pool_backward wide", &got, &want_adx, F32_TOL);
    }
}

#[test]
fn launchers_for_a_smaller_batch_leave_the_rest_alone() {
    let gpu = gpu();
    // Tensors sized for batch 3, launchers built for batch 2 (a last partial batch).
    let (s, p) = cases()[1];
    let s2 = PoolShape { n: 2, ..s };
    let p2 = Pool { n: 2, ..p };
    let (oh, ow) = (s.out_h(), s.out_w());
    let x = uniform(&mut rng(15), N * H * W * C, -1.0, 1.0);
    let g = uniform(&mut rng(16), N * oh * ow * C, -1.0, 1.0);
    let xt = upload(&gpu, &[N, H, W, C], &x);
    let gt = upload(&gpu, &[N, oh, ow, C], &g);
    let (yt, at) = (
        poisoned(&gpu, &[N, oh, ow, C]),
        u32_poisoned(&gpu, &[N, oh, ow, C]),
    );
    let (ayt, dxt) = (
        poisoned(&gpu, &[N, oh, ow, C]),
        poisoned(&gpu, &[N, H, W, C]),
    );
    let gyt = poisoned(&gpu, &[N, C]);
    let programs = [
        pool::max_pool_forward(&gpu, &s2, &xt, &yt, &at).unwrap(),
        pool::avg_pool_forward(&gpu, &s2, &xt, &ayt).unwrap(),
        pool::avg_pool_backward(&gpu, &s2, &gt, &dxt).unwrap(),
        pool::global_avg_pool_forward(&gpu, 2, H, W, C, &xt, &gyt).unwrap(),
    ];
    run(&gpu, &programs.iter().collect::<Vec<_>>());
    let (out2, in2) = (2 * oh * ow * C, 2 * H * W * C);
    let xd = f64s(&x[..in2]);
    let y = read(&gpu, &yt);
    assert_close(
        "max_pool n=2",
        &y[..out2],
        &rp::max_pool(&p2, &xd).0,
        F32_TOL,
    );
    assert!(
        y[out2..].iter().all(|v| v.is_nan()),
        "max_pool wrote past batch 2"
    );
    let ay = read(&gpu, &ayt);
    assert_close(
        "avg_pool n=2",
        &ay[..out2],
        &rp::avg_pool(&p2, &xd),
        F32_TOL,
    );
    assert!(
        ay[out2..].iter().all(|v| v.is_nan()),
        "avg_pool wrote past batch 2"
    );
    let dx = read(&gpu, &dxt);
    assert!(
        dx[..in2].iter().all(|v| v.is_finite()),
        "avg_pool_backward missed cells"
    );
    assert!(
        dx[in2..].iter().all(|v| v.is_nan()),
        "avg_pool_backward wrote past batch 2"
    );
    let gy = read(&gpu, &gyt);
    let want = rp::global_avg_pool(2, H * W, C, &xd);
    assert_close("global_avg_pool n=2", &gy[..2 * C], &want, F32_TOL);
    assert!(
        gy[2 * C..].iter().all(|v| v.is_nan()),
        "global pool wrote past batch 2"
    );
}

#[test]
fn backward_passes_are_bit_for_bit_repeatable() {
    let gpu = gpu();
    // Overlapping windows, so that cells gather from several outputs.
    let s = PoolShape {
        n: N,
        h: H,
        w: W,
        c: C,
        size: 3,
        stride: 1,
        padding: Padding::Same,
    };
    let (oh, ow) = (s.out_h(), s.out_w());
    let x = uniform(&mut rng(17), N * H * W * C, -1.0, 1.0);
    let g = uniform(&mut rng(18), N * oh * ow * C, -1.0, 1.0);
    let xt = upload(&gpu, &[N, H, W, C], &x);
    let gt = upload(&gpu, &[N, oh, ow, C], &g);
    let (yt, at) = (
        poisoned(&gpu, &[N, oh, ow, C]),
        u32_poisoned(&gpu, &[N, oh, ow, C]),
    );
    let (d1, d2) = (poisoned(&gpu, &[N, H, W, C]), poisoned(&gpu, &[N, H, W, C]));
    let fwd = pool::max_pool_forward(&gpu, &s, &xt, &yt, &at).unwrap();
    let b1 = pool::max_pool_backward(&gpu, &s, &gt, &at, &d1).unwrap();
    let b2 = pool::avg_pool_backward(&gpu, &s, &gt, &d2).unwrap();
    let mut first = Vec::new();
    for round in 0..2 {
        for d in [&d1, &d2] {
            d.write_f32(&gpu, &vec![f32::NAN; N * H * W * C]);
        }
        run(&gpu, &[&fwd, &b1, &b2]);
        let bits: Vec<u32> = [read(&gpu, &d1), read(&gpu, &d2)]
            .concat()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        if round == 0 {
            first = bits;
        } else {
            assert_eq!(first, bits, "pool backward differs between identical runs");
        }
    }
}
