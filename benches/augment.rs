//! Throughput of the augmentation pipeline alone (no GPU), everything on (HiveNAS's
//! defaults): images per second through `BatchStream` (worker thread + rayon) and through
//! one `Augmenter::augment` call on one thread, on 28x28x1 and 32x32x3.
//!
//! `cargo bench --bench augment`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use naseval::data::{AugmentConfig, Dataset, Prepared, ValidationRule};

const IMAGES: usize = 2560;
const BATCH: usize = 128;

/// Random images: `IMAGES` training images, of which 80% (2048) are trained on.
fn prepared(shape: [usize; 3]) -> Prepared {
    let len: usize = shape.iter().product();
    let mut state = 0x1234_5678_u32;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as u8
    };
    let ds = Dataset {
        train_images: (0..IMAGES * len).map(|_| next()).collect(),
        train_labels: (0..IMAGES as u32).map(|i| i % 10).collect(),
        test_images: vec![0; len],
        test_labels: vec![0],
        shape,
        classes: 10,
        class_names: (0..10).map(|i| i.to_string()).collect(),
        source: "bench".into(),
        validation_rule: ValidationRule::Prefix,
    };
    Prepared::new(ds, 0.2).expect("bench data")
}

fn bench(c: &mut Criterion) {
    let cfg = AugmentConfig::default();
    for shape in [[28, 28, 1], [32, 32, 3]] {
        let name = format!("{}x{}x{}", shape[0], shape[1], shape[2]);
        let p = prepared(shape);
        let aug = p.augmenter(&cfg).expect("default config is valid");

        let mut group = c.benchmark_group("augment_epoch");
        group.sample_size(10);
        group.throughput(Throughput::Elements(p.train.len() as u64));
        let mut epoch = 0;
        group.bench_function(&name, |b| {
            b.iter(|| {
                epoch += 1;
                p.train_batches(&aug, BATCH, epoch, 42)
                    .map(|b| b.n)
                    .sum::<usize>()
            })
        });
        group.finish();

        let mut group = c.benchmark_group("augment_one_image_one_thread");
        group.throughput(Throughput::Elements(1));
        let mut out = vec![0f32; p.train.image_len()];
        let mut seed = 0;
        group.bench_function(&name, |b| {
            b.iter(|| {
                seed += 1;
                aug.augment(p.train.image(seed as usize % p.train.len()), seed, &mut out);
                out[0]
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
