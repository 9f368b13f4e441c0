//! Criterion benchmarks of the kernels on HiveNAS's shapes (the same cases as
//! `naseval bench`). Each iteration submits the kernel and waits for the device.
//!
//! `NASEVAL_BENCH_BATCH` sets the batch (default 128; smaller runs faster on CPU drivers).

use criterion::{Criterion, criterion_group, criterion_main};
use naseval::bench;
use naseval::gpu::{DeviceOptions, Gpu};

fn kernels(c: &mut Criterion) {
    let opts = DeviceOptions::from_env().expect("NASEVAL_BACKEND is invalid");
    let gpu = Gpu::new(&opts).unwrap_or_else(|e| panic!("benchmarks need a GPU adapter: {e}"));
    let batch = std::env::var("NASEVAL_BENCH_BATCH")
        .ok()
        .and_then(|s| s.parse().ok());
    let mut group = c.benchmark_group("kernels");
    group.sample_size(10);
    let mut all = vec![bench::ceiling_case()];
    all.extend(bench::cases(batch.unwrap_or(128)));
    for case in &all {
        let built = case.build(&gpu).expect("benchmark case builds");
        group.bench_function(format!("{} {}", case.kernel, case.shape), |b| {
            b.iter(|| built.run_once(&gpu).expect("kernel runs"))
        });
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
