//! Augmentation and batches: identities, bounds, determinism, finiteness, the epoch
//! shuffle, the configuration's strictness, and the constant-channel guard.

use naseval::data::{
    AugmentConfig, Augmenter, Batch, Dataset, EvalBatches, Prepared, Standardizer, ValidationRule,
    epoch_order, flip_horizontal,
};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// A random dataset of `n` images of `shape`, labels cycling over 3 classes.
fn random_dataset(n: usize, shape: [usize; 3], seed: u64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let len: usize = shape.iter().product();
    let img = |rng: &mut StdRng, k| (0..k * len).map(|_| rng.random::<u8>()).collect();
    Dataset {
        train_images: img(&mut rng, n),
        train_labels: (0..n as u32).map(|i| i % 3).collect(),
        test_images: img(&mut rng, 4),
        test_labels: vec![0, 1, 2, 0],
        shape,
        classes: 3,
        class_names: vec!["a".into(), "b".into(), "c".into()],
        source: "random".into(),
        validation_rule: ValidationRule::Prefix,
    }
}

fn prepared(n: usize, shape: [usize; 3], seed: u64) -> Prepared {
    Prepared::new(random_dataset(n, shape, seed), 0.2).unwrap()
}

fn zero_ranges() -> AugmentConfig {
    AugmentConfig {
        affine: true,
        rotation_deg: 0.0,
        width_shift: 0.0,
        height_shift: 0.0,
        shear_deg: 0.0,
        zoom: [1.0, 1.0],
        horizontal_flip: 0.0,
        contrast: 1.0,
        contrast_factor: [1.0, 1.0],
        saturation: 1.0,
        saturation_factor: [1.0, 1.0],
        cutout: 1.0,
        cutout_size: [0.0, 0.0],
    }
}

fn collect(p: &Prepared, cfg: &AugmentConfig, bs: usize, epoch: u64, seed: u64) -> Vec<Batch> {
    let aug = p.augmenter(cfg).unwrap();
    p.train_batches(&aug, bs, epoch, seed).collect()
}

#[test]
fn all_ranges_zero_is_identity() {
    for shape in [[7, 9, 3], [6, 5, 1]] {
        let p = prepared(40, shape, 1);
        let aug = p.augmenter(&zero_ranges()).unwrap();
        let len = p.train.image_len();
        let mut out = vec![f32::NAN; len];
        let mut expected = vec![0f32; len];
        for i in 0..p.train.len() {
            aug.augment(p.train.image(i), 1234 + i as u64, &mut out);
            p.standardizer.apply(p.train.image(i), &mut expected);
            assert_eq!(out, expected, "image {i} of shape {shape:?} changed");
        }
    }
}

#[test]
fn flip_twice_is_identity_and_flip_mirrors() {
    let shape = [3, 5, 2];
    let orig: Vec<f32> = (0..30).map(|v| v as f32).collect();
    let mut v = orig.clone();
    flip_horizontal(&mut v, shape);
    // Row 0, column 0 now holds what column 4 held.
    assert_eq!(v[..2], orig[8..10]);
    assert_ne!(v, orig);
    flip_horizontal(&mut v, shape);
    assert_eq!(v, orig);

    // Through the augmenter: a flip with probability 1 mirrors the standardized image.
    let p = prepared(10, [4, 7, 3], 2);
    let cfg = AugmentConfig {
        horizontal_flip: 1.0,
        ..AugmentConfig::none()
    };
    let aug = p.augmenter(&cfg).unwrap();
    let mut out = vec![0f32; p.train.image_len()];
    aug.augment(p.train.image(0), 9, &mut out);
    flip_horizontal(&mut out, p.shape);
    let mut expected = vec![0f32; out.len()];
    p.standardizer.apply(p.train.image(0), &mut expected);
    assert_eq!(out, expected);
}

#[test]
fn cutout_area_within_bounds() {
    let shape = [30, 40, 3];
    let p = prepared(10, shape, 3);
    let cfg = AugmentConfig {
        cutout: 1.0,
        ..AugmentConfig::none()
    };
    let aug = p.augmenter(&cfg).unwrap();
    // Image 0 of a constant 200 so that no pixel but the patch's standardizes to 0.
    let src = vec![200u8; 30 * 40 * 3];
    let mut out = vec![0f32; src.len()];
    for seed in 0..200 {
        aug.augment(&src, seed, &mut out);
        let zero: Vec<(usize, usize)> = (0..30 * 40)
            .filter(|&i| out[i * 3..i * 3 + 3].iter().all(|&v| v == 0.0))
            .map(|i| (i / 40, i % 40))
            .collect();
        let rows =
            zero.iter().map(|z| z.0).max().unwrap() - zero.iter().map(|z| z.0).min().unwrap();
        let cols =
            zero.iter().map(|z| z.1).max().unwrap() - zero.iter().map(|z| z.1).min().unwrap();
        let (ph, pw) = (rows + 1, cols + 1);
        // A filled rectangle, 10-20% of each side (rounded).
        assert_eq!(
            zero.len(),
            ph * pw,
            "seed {seed}: the patch is not a rectangle"
        );
        assert!(
            (3..=6).contains(&ph) && (4..=8).contains(&pw),
            "seed {seed}: {ph}x{pw}"
        );
    }
}

#[test]
fn same_seed_same_batches_and_finite_values() {
    let p = prepared(300, [32, 32, 3], 4);
    let cfg = AugmentConfig::default();
    let a = collect(&p, &cfg, 64, 3, 42);
    let b = collect(&p, &cfg, 64, 3, 42);
    assert_eq!(a, b, "the same seed and epoch gave different batches");
    // 240 training images: 3 full batches and a last partial one of 48.
    let sizes: Vec<usize> = a.iter().map(|b| b.n).collect();
    assert_eq!(sizes, [64, 64, 64, 48]);
    for batch in &a {
        assert_eq!(batch.images.len(), batch.n * 32 * 32 * 3);
        assert_eq!(batch.labels.len(), batch.n);
        assert!(batch.images.iter().all(|v| v.is_finite()));
        // Standardized data stays within a sane range even after contrast x2.
        assert!(batch.images.iter().all(|v| v.abs() < 20.0));
    }
    // Another epoch or seed: another order and other draws.
    let c = collect(&p, &cfg, 64, 4, 42);
    let d = collect(&p, &cfg, 64, 3, 43);
    assert_ne!(a[0].labels, c[0].labels);
    assert_ne!(a[0].images, d[0].images);

    // Grayscale too (saturation skipped), and batch sizes that do not divide.
    let g = prepared(50, [28, 28, 1], 5);
    let e = collect(&g, &cfg, 7, 0, 1);
    assert_eq!(e.iter().map(|b| b.n).sum::<usize>(), 40);
    assert_eq!(e.last().unwrap().n, 5);
    assert!(e.iter().all(|b| b.images.iter().all(|v| v.is_finite())));
}

#[test]
fn batches_cover_the_epoch_as_shuffled() {
    let p = prepared(100, [4, 4, 1], 6);
    let order = epoch_order(p.train.len(), 7, 2);
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted, (0..80).collect::<Vec<_>>());
    assert_ne!(order, sorted);
    // Without augmentation a batch is exactly the standardized images in that order.
    let batches = collect(&p, &AugmentConfig::none(), 32, 2, 7);
    let all: Vec<f32> = batches.iter().flat_map(|b| b.images.clone()).collect();
    let labels: Vec<u32> = batches.iter().flat_map(|b| b.labels.clone()).collect();
    let mut expected = vec![0f32; 16];
    for (k, &i) in order.iter().enumerate() {
        p.standardizer.apply(p.train.image(i), &mut expected);
        assert_eq!(all[k * 16..(k + 1) * 16], expected[..]);
        assert_eq!(labels[k], p.train.labels[i]);
    }
    // Dropping a stream half-way stops its worker (the test would hang otherwise).
    let aug = p.augmenter(&AugmentConfig::default()).unwrap();
    let mut s = p.train_batches(&aug, 1, 0, 0);
    assert_eq!(s.len(), 80);
    s.next();
    drop(s);
}

#[test]
fn eval_batches_are_in_order_and_unaugmented() {
    let p = prepared(100, [5, 3, 3], 8);
    let b: Vec<Batch> = p.validation_batches(6).collect();
    assert_eq!(b.iter().map(|b| b.n).collect::<Vec<_>>(), [6, 6, 6, 2]);
    let flat: Vec<f32> = b.iter().flat_map(|b| b.images.clone()).collect();
    assert_eq!(flat, p.validation.standardized(&p.standardizer));
    let t: Vec<Batch> = EvalBatches::new(&p.test, &p.standardizer, 128).collect();
    assert_eq!((t.len(), t[0].labels.clone()), (1, vec![0, 1, 2, 0]));
}

#[test]
fn standardized_training_data_has_mean_0_std_1() {
    let p = prepared(500, [8, 8, 3], 9);
    let all = [
        p.validation.standardized(&p.standardizer),
        p.train.standardized(&p.standardizer),
    ]
    .concat();
    for c in 0..3 {
        let v: Vec<f64> = all.iter().skip(c).step_by(3).map(|&x| x as f64).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(
            mean.abs() < 1e-5 && (var.sqrt() - 1.0).abs() < 1e-5,
            "c{c}: {mean} {var}"
        );
    }
}

#[test]
fn constant_channel_is_not_nan() {
    // Channel 1 is constant: HiveNAS would divide by 0; here it becomes 0.
    let mut ds = random_dataset(20, [2, 2, 3], 10);
    for px in ds.train_images.chunks_exact_mut(3) {
        px[1] = 77;
    }
    let p = Prepared::new(ds, 0.2).unwrap();
    assert_eq!(p.standardizer.std[1], 1.0);
    assert_eq!(p.standardizer.mean[1], 77.0);
    let v = p.train.standardized(&p.standardizer);
    assert!(v.iter().all(|x| x.is_finite()));
    assert!(v.iter().skip(1).step_by(3).all(|&x| x == 0.0));
}

#[test]
fn config_is_strict_and_checked() {
    let cfg: AugmentConfig = toml::from_str("cutout = 0.25\nzoom = [0.9, 1.0]").unwrap();
    assert_eq!(
        (cfg.cutout, cfg.zoom, cfg.contrast),
        (0.25, [0.9, 1.0], 0.75)
    );
    let err = toml::from_str::<AugmentConfig>("cutuot = 0.5").unwrap_err();
    assert!(err.to_string().contains("cutuot"), "{err}");
    let json = serde_json::to_string(&AugmentConfig::default()).unwrap();
    let back: AugmentConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, AugmentConfig::default());

    let st = Standardizer {
        mean: vec![0.0],
        std: vec![1.0],
    };
    for bad in [
        AugmentConfig {
            cutout: 1.5,
            ..AugmentConfig::default()
        },
        AugmentConfig {
            zoom: [1.1, 0.8],
            ..AugmentConfig::default()
        },
        AugmentConfig {
            rotation_deg: f32::NAN,
            ..AugmentConfig::default()
        },
    ] {
        let err = Augmenter::new(bad, [4, 4, 1], st.clone()).unwrap_err();
        assert!(err.to_string().contains("augmentation setting"), "{err}");
    }
    let hn = AugmentConfig::hivenas(false, 0.5, 0.0, 0.0);
    assert!(!hn.affine && hn.horizontal_flip == 0.0 && hn.any());
    assert!(!AugmentConfig::none().any());
}
