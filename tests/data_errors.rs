//! Bad files and bad names: each gives a clear error (the file, where, what was expected,
//! a fix) and never a panic.

use std::io::Write;
use std::path::{Path, PathBuf};

use naseval::data::{self, DataError, LoadOptions};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

/// An IDX file: magic, dimensions, then `body`.
fn idx(magic: u32, dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(body);
    out
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Writes a small valid IDX dataset (4x3 images, `n_train`/`n_test` records) into `dir`.
fn write_idx_set(dir: &Path, n_train: u32, n_test: u32) {
    for (prefix, n) in [("train", n_train), ("t10k", n_test)] {
        let px: Vec<u8> = (0..n * 12).map(|i| i as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let images = gz(&idx(2051, &[n, 4, 3], &px));
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte.gz")), images).unwrap();
        let labels = gz(&idx(2049, &[n], &labels));
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte.gz")), labels).unwrap();
    }
}

fn load_err(name: Option<&str>, dir: &Path) -> DataError {
    match data::load(name, Some(dir), &LoadOptions::default()) {
        Ok(ds) => panic!("expected an error, read {}", ds.source),
        Err(e) => e,
    }
}

fn assert_mentions(err: &DataError, parts: &[&str]) {
    let msg = err.to_string();
    for p in parts {
        assert!(msg.contains(p), "message lacks {p:?}: {msg}");
    }
}

#[test]
fn a_valid_small_idx_set_reads() {
    let tmp = tempfile::tempdir().unwrap();
    write_idx_set(tmp.path(), 7, 3);
    let ds = data::load(Some("mnist"), Some(tmp.path()), &LoadOptions::default()).unwrap();
    assert_eq!((ds.n_train(), ds.n_test(), ds.shape), (7, 3, [4, 3, 1]));
    assert_eq!(ds.train_images[12..15], [12, 13, 14]);
}

#[test]
fn truncated_idx() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("train-images-idx3-ubyte");
    // A header announcing 60,000 images with 100 pixel bytes present: refused before any
    // allocation of the announced size.
    std::fs::write(&path, idx(2051, &[60_000, 28, 28], &[0; 100])).unwrap();
    let err = data::read_idx_images(&path).unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err:?}");
    assert_mentions(
        &err,
        &[
            "train-images-idx3-ubyte",
            "47040016",
            "116",
            "download it again",
        ],
    );

    // A header cut short.
    std::fs::write(&path, &idx(2051, &[5], &[])[..6]).unwrap();
    let err = data::read_idx_images(&path).unwrap_err();
    assert_mentions(&err, &["truncated", "header"]);

    // A header whose dimensions overflow.
    std::fs::write(&path, idx(2051, &[u32::MAX, u32::MAX, u32::MAX], &[])).unwrap();
    let err = data::read_idx_images(&path).unwrap_err();
    assert_mentions(&err, &["too large", "corrupt"]);

    // A truncated gzip stream.
    let gz_path = tmp.path().join("t10k-labels-idx1-ubyte.gz");
    let full = gz(&idx(2049, &[1000], &[1; 1000]));
    std::fs::write(&gz_path, &full[..full.len() / 2]).unwrap();
    let err = data::read_idx_labels(&gz_path, 10).unwrap_err();
    assert!(matches!(err, DataError::Gzip { .. }), "{err:?}");
    assert_mentions(&err, &["t10k-labels-idx1-ubyte.gz", "gzip"]);
}

#[test]
fn wrong_magic() {
    let tmp = tempfile::tempdir().unwrap();
    write_idx_set(tmp.path(), 4, 2);
    // Labels where the images should be.
    let labels = tmp.path().join("train-labels-idx1-ubyte.gz");
    std::fs::copy(&labels, tmp.path().join("train-images-idx3-ubyte.gz")).unwrap();
    let err = load_err(Some("mnist"), tmp.path());
    assert!(
        matches!(
            err,
            DataError::BadMagic {
                found: 2049,
                expected: 2051,
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(
        &err,
        &["train-images-idx3-ubyte.gz", "2049", "2051", "offset 0"],
    );
}

#[test]
fn label_image_count_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    write_idx_set(tmp.path(), 5, 2);
    let labels = gz(&idx(2049, &[4], &[0, 1, 2, 3]));
    std::fs::write(tmp.path().join("train-labels-idx1-ubyte.gz"), labels).unwrap();
    let err = load_err(Some("fashion_mnist"), tmp.path());
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                n_images: 5,
                n_labels: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(
        &err,
        &["5 images", "4 labels", "train-labels-idx1-ubyte.gz"],
    );
}

#[test]
fn label_out_of_range() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("labels");
    std::fs::write(&path, idx(2049, &[3], &[1, 12, 2])).unwrap();
    let err = data::read_idx_labels(&path, 10).unwrap_err();
    assert!(matches!(
        err,
        DataError::LabelOutOfRange {
            record: 1,
            offset: 9,
            ..
        }
    ));
    assert_mentions(&err, &["record 1", "offset 9", "label 12", "0..10"]);
}

#[test]
fn cifar_size_not_a_multiple_of_3073() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = std::fs::read(Path::new(SHARED).join("cifar10-sample/test_batch_first20.bin"));
    let mut bytes = sample.unwrap();
    bytes.truncate(3 * 3073 + 100);
    let path = tmp.path().join("data_batch_1.bin");
    std::fs::write(&path, &bytes).unwrap();
    let err = data::read_cifar_batch(&path).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CifarSize {
                whole: 3,
                rest: 100,
                offset: 9219,
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(&err, &["data_batch_1.bin", "3,073", "9219"]);
    // Through the dataset loader too.
    std::fs::write(tmp.path().join("test_batch.bin"), &bytes[..3073]).unwrap();
    let err = load_err(Some("cifar10"), tmp.path());
    assert!(matches!(err, DataError::CifarSize { .. }), "{err:?}");
}

/// A tiny image folder: `classes` x `per_class` 4x4 PNGs in train/ and test/.
fn write_folder(root: &Path, classes: &[&str], per_class: usize) {
    for split in ["train", "test"] {
        for (c, name) in classes.iter().enumerate() {
            let dir = root.join(split).join(name);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..per_class {
                let img = image::RgbImage::from_pixel(4, 4, image::Rgb([c as u8 * 40, i as u8, 7]));
                img.save(dir.join(format!("{i:03}.png"))).unwrap();
            }
        }
    }
}

#[test]
fn image_folder_valid_then_corrupt_jpeg() {
    let tmp = tempfile::tempdir().unwrap();
    write_folder(tmp.path(), &["b_cat", "a_dog"], 3);
    let ds = data::load(None, Some(tmp.path()), &LoadOptions::default()).unwrap();
    assert_eq!(ds.class_names, ["a_dog", "b_cat"]);
    assert_eq!((ds.n_train(), ds.shape), (6, [4, 4, 3]));
    assert_eq!(ds.train_labels, [0, 1, 0, 1, 0, 1]);

    let bad: PathBuf = tmp.path().join("train/b_cat/001.jpg");
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend_from_slice(b"this is not really a jpeg");
    std::fs::write(&bad, bytes).unwrap();
    let err = load_err(None, tmp.path());
    assert!(matches!(err, DataError::Decode { .. }), "{err:?}");
    assert_mentions(&err, &["001.jpg", "cannot decode", "replace or delete"]);
}

#[test]
fn image_folder_empty_class() {
    let tmp = tempfile::tempdir().unwrap();
    write_folder(tmp.path(), &["cat", "dog"], 2);
    std::fs::create_dir_all(tmp.path().join("train/emu")).unwrap();
    std::fs::write(tmp.path().join("train/emu/notes.txt"), "no images here").unwrap();
    let err = load_err(None, tmp.path());
    assert!(matches!(err, DataError::EmptyClass { .. }), "{err:?}");
    assert_mentions(&err, &["train/emu", "holds no images"]);
}

#[test]
fn image_folder_sizes_and_classes_must_agree() {
    let tmp = tempfile::tempdir().unwrap();
    write_folder(tmp.path(), &["cat", "dog"], 2);
    let odd = tmp.path().join("test/dog/zz.png");
    image::GrayImage::new(5, 4).save(&odd).unwrap();
    let err = load_err(None, tmp.path());
    assert!(matches!(err, DataError::SizeMismatch { .. }), "{err:?}");
    assert_mentions(&err, &["zz.png", "4x5", "4x4", "--resize"]);

    // --resize makes them agree; a grayscale image joins the RGB ones as RGB.
    let opts = LoadOptions {
        resize: Some((3, 2)),
        ..LoadOptions::default()
    };
    let ds = data::load(None, Some(tmp.path()), &opts).unwrap();
    assert_eq!((ds.shape, ds.n_test()), ([3, 2, 3], 5));

    std::fs::create_dir_all(tmp.path().join("test/eel")).unwrap();
    image::RgbImage::new(4, 4)
        .save(tmp.path().join("test/eel/a.png"))
        .unwrap();
    let err = load_err(None, tmp.path());
    assert!(matches!(err, DataError::ClassMismatch { .. }), "{err:?}");
}

#[test]
fn missing_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let nowhere = tmp.path().join("nowhere");
    for name in [None, Some("mnist"), Some("fashion_mnist"), Some("cifar10")] {
        let err = load_err(name, &nowhere);
        assert_mentions(&err, &["nowhere"]);
    }
    // A folder without train/.
    let err = load_err(None, tmp.path());
    assert!(matches!(err, DataError::MissingDir { .. }), "{err:?}");
    assert_mentions(&err, &["train", "ROOT/train/<class>"]);
    // IDX files without a dataset name: the message says to add one.
    write_idx_set(tmp.path(), 2, 2);
    assert_mentions(&load_err(None, tmp.path()), &["--dataset mnist"]);
}

#[test]
fn bad_names_and_options() {
    let err = data::load(Some("imagenet"), None, &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::UnknownDataset(_)), "{err:?}");
    assert_mentions(&err, &["imagenet", "mnist, fashion_mnist or cifar10"]);
    let err = data::load(Some("cifar10"), None, &LoadOptions::default()).unwrap_err();
    assert_mentions(&err, &["--data-dir"]);
    for bad in ["32", "0x4", "ax3", "3x"] {
        assert!(data::parse_resize(bad).is_err(), "{bad}");
    }
    assert_eq!(data::parse_resize("28x32").unwrap(), (28, 32));
    let opts = LoadOptions {
        subset: Some(0),
        ..LoadOptions::default()
    };
    assert!(data::load(None, None, &opts).is_err());
}

#[test]
fn grayscale_folder_stays_one_channel() {
    let tmp = tempfile::tempdir().unwrap();
    for split in ["train", "test"] {
        for class in ["x", "y", "z"] {
            let dir = tmp.path().join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..4u8 {
                let img = image::GrayImage::from_pixel(6, 5, image::Luma([i * 50]));
                img.save(dir.join(format!("{i}.png"))).unwrap();
            }
        }
    }
    let ds = data::load(None, Some(tmp.path()), &LoadOptions::default()).unwrap();
    assert_eq!((ds.shape, ds.n_train(), ds.classes), ([5, 6, 1], 12, 3));
    assert_eq!(ds.train_images[..30], [0; 30]);
    assert_eq!(ds.train_images[3 * 30], 50);
}
