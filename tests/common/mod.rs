//! Shared test support: the GPU, seeded random data, NaN-poisoned outputs, and comparisons
//! that print where and by how much a kernel is off.
//!
//! The CPU references live in `tests/reference/`: plain f64 loops written apart from the
//! kernels, sharing no code with `src/`.

#![allow(dead_code)]

use naseval::gpu::{DeviceOptions, Gpu, Program, Tensor};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// The GPU the tests run on. Fails (never skips) when there is none, saying what to install.
pub fn gpu() -> Gpu {
    let opts = DeviceOptions::from_env().expect("NASEVAL_BACKEND is invalid");
    match Gpu::new(&opts) {
        Ok(g) => g,
        Err(e) => panic!(
            "GPU tests need a wgpu adapter and found none: {e}\n\
             On Debian without a GPU: apt-get install -y mesa-vulkan-drivers libvulkan1"
        ),
    }
}

/// A seeded generator; every test names its seed so a failure can be replayed.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// `n` uniform values in `[lo, hi)`.
pub fn uniform(rng: &mut StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// Widens to f64 for the references.
pub fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// A tensor filled with NaN, so that any element a kernel fails to write shows up.
pub fn poisoned(gpu: &Gpu, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_f32(gpu, shape, &vec![f32::NAN; n]).expect("test tensor fits")
}

/// A tensor holding `data`.
pub fn upload(gpu: &Gpu, shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::from_f32(gpu, shape, data).expect("test tensor fits")
}

/// Submits the programs in order and waits.
pub fn run(gpu: &Gpu, programs: &[&Program]) {
    gpu.submit(programs);
    gpu.wait().expect("GPU wait");
}

/// Reads a tensor back.
pub fn read(gpu: &Gpu, t: &Tensor) -> Vec<f32> {
    t.read_f32(gpu).expect("readback")
}

/// Tolerances of one comparison: each element must satisfy
/// `|got - want| <= abs + rel * |want|`, and the whole output
/// `||got - want||_2 <= total_rel * ||want||_2` (plus `abs`, for all-zero references).
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub abs: f64,
    pub rel: f64,
    pub total_rel: f64,
}

/// f32 kernels against f64 references over sums of up to a few thousand terms.
pub const F32_TOL: Tol = Tol {
    abs: 1e-5,
    rel: 1e-4,
    total_rel: 1e-5,
};

/// Backward kernels against central finite differences (step 1e-3 in f64): the error is
/// the difference quotient's O(h^2) term plus f32 rounding in the kernel.
pub const FD_TOL: Tol = Tol {
    abs: 1e-4,
    rel: 1e-3,
    total_rel: 1e-4,
};

/// Compares `got` (GPU) with `want` (reference). On failure prints the first mismatches
/// with their index and both values, the largest difference, and the total relative error.
#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f64], tol: Tol) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length {} vs reference {}",
        got.len(),
        want.len()
    );
    let mut bad = Vec::new();
    let (mut max_diff, mut max_at) = (0.0f64, 0usize);
    let (mut err2, mut ref2) = (0.0f64, 0.0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let g = g as f64;
        let d = (g - w).abs();
        if !g.is_finite() || d > tol.abs + tol.rel * w.abs() {
            bad.push(i);
        }
        // A NaN difference must win, so that unwritten (poisoned) elements are reported.
        if d.is_nan() || d > max_diff {
            max_diff = d;
            max_at = i;
        }
        err2 += (g - w) * (g - w);
        ref2 += w * w;
    }
    let total = err2.sqrt() / ref2.sqrt().max(1e-30);
    let total_ok = err2.sqrt() <= tol.total_rel * ref2.sqrt() + tol.abs;
    if !bad.is_empty() || !total_ok {
        let mut msg = format!(
            "{what}: {} of {} elements out of tolerance {tol:?}; max |diff| {max_diff:.3e} at \
             [{max_at}]; total relative error {total:.3e}\n",
            bad.len(),
            got.len()
        );
        for &i in bad.iter().take(8) {
            msg += &format!("  [{i}] got {:e} want {:e}\n", got[i], want[i]);
        }
        panic!("{msg}");
    }
}

/// Central finite difference of `f` at `x` along coordinate `i`, step `h`.
pub fn central_diff(f: &dyn Fn(&[f64]) -> f64, x: &[f64], i: usize, h: f64) -> f64 {
    let mut xp = x.to_vec();
    xp[i] += h;
    let fp = f(&xp);
    xp[i] = x[i] - h;
    let fm = f(&xp);
    (fp - fm) / (2.0 * h)
}

/// The gradient of `f` at `x` by central differences, every coordinate.
pub fn numeric_grad(f: &dyn Fn(&[f64]) -> f64, x: &[f64], h: f64) -> Vec<f64> {
    (0..x.len()).map(|i| central_diff(f, x, i, h)).collect()
}

/// `sum(a * b)`: turns a tensor-valued reference into the scalar whose gradient a backward
/// kernel computes when `b` is the upstream gradient.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
