//! The readers on the real datasets of ../shared/data: counts, per-class counts, known
//! labels, the class-interleaved order of image folders, standardization and the split.

use std::path::{Path, PathBuf};

use naseval::data::{self, Dataset, EvalBatches, LoadOptions, Prepared, ValidationRule};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

fn shared(rel: &str) -> PathBuf {
    Path::new(SHARED).join(rel)
}

fn load(name: Option<&str>, dir: Option<&Path>, opts: &LoadOptions) -> Dataset {
    data::load(name, dir, opts).unwrap_or_else(|e| panic!("loading {name:?} {dir:?}: {e}"))
}

/// Per-channel mean and standard deviation of a standardized split, in f64.
fn moments(split: &data::Split, st: &data::Standardizer) -> (Vec<f64>, Vec<f64>) {
    let c = split.shape[2];
    let (mut sum, mut sq, mut n) = (vec![0f64; c], vec![0f64; c], 0f64);
    for b in EvalBatches::new(split, st, 4096) {
        for px in b.images.chunks_exact(c) {
            for k in 0..c {
                sum[k] += px[k] as f64;
                sq[k] += (px[k] as f64).powi(2);
            }
            n += 1.0;
        }
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let std = sq
        .iter()
        .zip(&mean)
        .map(|(q, m)| (q / n - m * m).sqrt())
        .collect();
    (mean, std)
}

#[test]
fn mnist_counts_labels_and_standardization() {
    let dir = shared("mnist");
    let ds = load(Some("MNIST"), Some(&dir), &LoadOptions::default());
    assert_eq!((ds.n_train(), ds.n_test()), (60_000, 10_000));
    assert_eq!(ds.shape, [28, 28, 1]);
    assert_eq!(ds.classes, 10);
    assert_eq!(
        ds.train_class_counts(),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(ds.test_labels[..10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    assert_eq!(ds.validation_rule, ValidationRule::Prefix);

    // Standardization over the whole training set; the validation part is its first 20%.
    let first_train_label = ds.train_labels[12_000];
    let p = Prepared::new(ds, 0.2).unwrap();
    assert_eq!(
        (p.train.len(), p.validation.len(), p.test.len()),
        (48_000, 12_000, 10_000)
    );
    assert_eq!(p.train.labels[0], first_train_label);
    assert_eq!(p.n_train_total, 60_000);
    assert!(
        (p.standardizer.mean[0] - 33.318).abs() < 0.01,
        "{:?}",
        p.standardizer
    );
    assert!(
        (p.standardizer.std[0] - 78.567).abs() < 0.01,
        "{:?}",
        p.standardizer
    );
    for part in [&p.train, &p.validation] {
        let counts = data_class_counts(&part.labels, 10);
        assert!(
            counts.iter().all(|&c| c > 0),
            "a class is missing: {counts:?}"
        );
    }
    // Over train + validation together the standardized data has mean 0, std 1.
    let whole = data::Split {
        images: [p.validation.images.clone(), p.train.images.clone()].concat(),
        labels: [p.validation.labels.clone(), p.train.labels.clone()].concat(),
        shape: p.shape,
    };
    let (mean, std) = moments(&whole, &p.standardizer);
    assert!(
        mean[0].abs() < 1e-4 && (std[0] - 1.0).abs() < 1e-4,
        "{mean:?} {std:?}"
    );
}

fn data_class_counts(labels: &[u32], classes: usize) -> Vec<usize> {
    let mut c = vec![0; classes];
    for &l in labels {
        c[l as usize] += 1;
    }
    c
}

#[test]
fn builtin_mnist_and_subsets() {
    // The copy shipped in the repository (unless NASEVAL_DATA_DIR points elsewhere).
    let opts = LoadOptions {
        subset: Some(1000),
        test_subset: None,
        resize: None,
    };
    let ds = load(None, None, &opts);
    assert_eq!((ds.n_train(), ds.n_test()), (1000, 10_000));
    assert_eq!(ds.train_images.len(), 1000 * 784);
    assert_eq!(ds.test_labels[..4], [7, 2, 1, 0]);
    assert!(ds.source.contains("first 1000"), "{}", ds.source);

    let opts = LoadOptions {
        subset: None,
        test_subset: Some(10),
        resize: None,
    };
    let ds = load(Some("mnist"), Some(&shared("mnist")), &opts);
    assert_eq!((ds.n_train(), ds.n_test()), (60_000, 10));
    assert_eq!(ds.test_labels, [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
}

#[test]
fn fashion_mnist_has_6000_per_class() {
    let ds = load(
        Some("FASHION_MNIST"),
        Some(&shared("fashion-mnist")),
        &LoadOptions::default(),
    );
    assert_eq!((ds.n_train(), ds.n_test()), (60_000, 10_000));
    assert_eq!(ds.train_class_counts(), [6000; 10]);
    assert_eq!(ds.test_class_counts(), [1000; 10]);
    assert_eq!(ds.class_names[9], "Ankle boot");
}

#[test]
fn cifar10_binary_sample_labels() {
    let path = shared("cifar10-sample/test_batch_first20.bin");
    let (pixels, labels) = data::read_cifar_batch(&path).unwrap();
    assert_eq!(
        labels,
        [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6]
    );
    assert_eq!(pixels.len(), 20 * 32 * 32 * 3);
    // NHWC: pixel (0, 0) of record 0 gathers bytes 1, 1025 and 2049 of the file.
    let raw = std::fs::read(&path).unwrap();
    assert_eq!(pixels[..3], [raw[1], raw[1 + 1024], raw[1 + 2048]]);
    let names = data::read_cifar_meta(&shared("cifar10-sample/batches.meta.txt")).unwrap();
    assert_eq!(names, data::CIFAR10_CLASSES);
}

#[test]
fn cifar10_binary_folder_with_some_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = shared("cifar10-sample/test_batch_first20.bin");
    std::fs::copy(&sample, tmp.path().join("data_batch_2.bin")).unwrap();
    std::fs::copy(&sample, tmp.path().join("test_batch.bin")).unwrap();
    let ds = load(Some("CIFAR10"), Some(tmp.path()), &LoadOptions::default());
    assert_eq!((ds.n_train(), ds.n_test(), ds.shape), (20, 20, [32, 32, 3]));
    assert!(
        ds.source.contains("missing data_batch_1.bin"),
        "{}",
        ds.source
    );
}

#[test]
fn cifar10_image_folder_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = shared("cifar10-jpg/cifar10-jpg.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&tar)
        .arg("-C")
        .arg(tmp.path())
        .status()
        .expect("running tar");
    assert!(status.success(), "tar xzf {} failed", tar.display());

    let start = std::time::Instant::now();
    let ds = load(Some("cifar10"), Some(tmp.path()), &LoadOptions::default());
    eprintln!(
        "decoded 60,000 JPEGs in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!((ds.n_train(), ds.n_test()), (50_000, 10_000));
    assert_eq!(ds.shape, [32, 32, 3]);
    assert_eq!(ds.train_class_counts(), [5000; 10]);
    assert_eq!(ds.test_class_counts(), [1000; 10]);
    assert_eq!(ds.class_names, data::CIFAR10_CLASSES);
    assert_eq!(ds.validation_rule, ValidationRule::PerClassPrefix);
    // Class-interleaved: round-robin over the classes, so every prefix holds every class.
    let expected: Vec<u32> = (0..30).map(|i| i % 10).collect();
    assert_eq!(ds.train_labels[..30], expected[..]);

    // Per-class validation: the first 20% of each class's files, sorted by name.
    let first_airplane = ds.train_images[..3072].to_vec();
    let p = Prepared::new(ds, 0.2).unwrap();
    assert_eq!((p.train.len(), p.validation.len()), (40_000, 10_000));
    assert_eq!(data_class_counts(&p.validation.labels, 10), [1000; 10]);
    assert_eq!(data_class_counts(&p.train.labels, 10), [4000; 10]);
    assert_eq!(p.validation.image(0), &first_airplane[..]);
    let (mean, std) = moments(&p.test, &p.standardizer);
    for c in 0..3 {
        // The test set is standardized with the training statistics: close to, not exactly,
        // mean 0 and std 1.
        assert!(
            mean[c].abs() < 0.05 && (std[c] - 1.0).abs() < 0.05,
            "{mean:?} {std:?}"
        );
    }

    // A subset decodes only its prefix, and the folder alone (no name) reads the same.
    let opts = LoadOptions {
        subset: Some(25),
        test_subset: Some(5),
        resize: Some((16, 20)),
    };
    let small = load(None, Some(tmp.path()), &opts);
    assert_eq!(
        (small.n_train(), small.n_test(), small.shape),
        (25, 5, [16, 20, 3])
    );
    assert_eq!(small.train_class_counts(), [3, 3, 3, 3, 3, 2, 2, 2, 2, 2]);
}
