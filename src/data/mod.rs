//! Datasets for training candidates: readers (IDX, CIFAR-10 binary, image folders),
//! standardization and the validation split, augmentation, and the batch prefetcher.
//!
//! Pixels stay `u8` in memory (a quarter of the f32 size: 150 MB for CIFAR-10 instead of
//! 600 MB); batches come out standardized f32, NHWC, built on worker threads.

mod augment;
mod batches;
mod cifar;
mod folder;
mod idx;
mod prepare;

use std::path::{Path, PathBuf};

pub use augment::{AugmentConfig, Augmenter, flip_horizontal};
pub use batches::{Batch, BatchStream, EvalBatches, epoch_order};
pub use cifar::{CIFAR10_CLASSES, read_cifar_batch, read_cifar_meta};
pub use folder::parse_resize;
pub use idx::{read_idx_images, read_idx_labels};
pub use prepare::{Prepared, Split, Standardizer};

/// The built-in MNIST copy shipped in the repository, found at compile time so that
/// `cargo run` and the built binary work from a fresh clone.
pub const BUILTIN_MNIST_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist");

/// Where Debian's package `dataset-fashion-mnist` installs Fashion-MNIST.
pub const DEBIAN_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The environment variable that overrides where the built-in MNIST is read from.
pub const DATA_DIR_ENV: &str = "NASEVAL_DATA_DIR";

/// What went wrong while reading or preparing a dataset. Every message names the file,
/// where in it (byte offset or record) the problem is, what was expected, and a fix.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}; check that it exists and is readable")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A `.gz` file did not decompress.
    #[error(
        "{path}: gzip data is corrupt after {offset} decompressed bytes ({source}); \
         download the file again, or give the uncompressed file instead"
    )]
    Gzip {
        /// The file.
        path: PathBuf,
        /// How many decompressed bytes came out before the failure.
        offset: usize,
        /// The decoder's reason.
        #[source]
        source: std::io::Error,
    },
    /// A file ended before the data its header announced.
    #[error(
        "{path}: truncated: {what} needs {expected} bytes, the file holds {found} \
         (it ends at byte offset {found}); the file is incomplete, download it again"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What the bytes were for.
        what: String,
        /// Bytes needed.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// An IDX file did not start with the expected magic number.
    #[error(
        "{path}: magic number {found} (0x{found:08x}) at byte offset 0, expected {expected} \
         for an IDX {what} file; this is not an IDX {what} file (swapped images and labels, \
         or a different format?)"
    )]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// "images" or "labels".
        what: &'static str,
        /// The magic number read.
        found: u32,
        /// The magic number expected.
        expected: u32,
    },
    /// A header field is out of range.
    #[error("{path}: {message}")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The image and label files of one split disagree on the number of records.
    #[error(
        "{images} holds {n_images} images but {labels} holds {n_labels} labels; the two \
         files must come from the same release (download both again)"
    )]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// The label file.
        labels: PathBuf,
        /// Images announced.
        n_images: usize,
        /// Labels announced.
        n_labels: usize,
    },
    /// A label is not a valid class index.
    #[error(
        "{path}: record {record} (byte offset {offset}) has label {label}, expected 0..{classes}; \
         the file is corrupt or belongs to another dataset"
    )]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// Record index.
        record: usize,
        /// Byte offset of the label.
        offset: u64,
        /// The label read.
        label: u32,
        /// The number of classes.
        classes: usize,
    },
    /// A CIFAR-10 binary file whose size is not a whole number of records.
    #[error(
        "{path}: {size} bytes is not a multiple of the 3,073-byte CIFAR-10 record (1 label \
         byte + 3,072 pixel bytes): {whole} whole records, then {rest} stray bytes from byte \
         offset {offset}; the file is truncated or not a CIFAR-10 binary batch, download it \
         again"
    )]
    CifarSize {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// Whole records it holds.
        whole: u64,
        /// Bytes left over.
        rest: u64,
        /// Where the incomplete record starts.
        offset: u64,
    },
    /// An image in an image folder did not decode.
    #[error("{path}: cannot decode the image ({reason}); replace or delete the file")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's reason.
        reason: String,
    },
    /// A class folder with no image files.
    #[error(
        "class folder {dir} holds no images (png, jpg, jpeg, bmp, gif, tif, tiff, webp); add \
         images or remove the folder"
    )]
    EmptyClass {
        /// The class folder.
        dir: PathBuf,
    },
    /// A directory that must exist does not.
    #[error("{path} does not exist or is not a directory; {fix}")]
    MissingDir {
        /// The path.
        path: PathBuf,
        /// What to do.
        fix: String,
    },
    /// Images of different sizes in one image folder.
    #[error(
        "images differ in size: {first} is {first_size} (HxW) but {second} is {second_size}; \
         pass --resize HxW (e.g. --resize {first_size}) to resize all of them"
    )]
    SizeMismatch {
        /// The first file.
        first: PathBuf,
        /// Its size, `HxW`.
        first_size: String,
        /// A file of another size.
        second: PathBuf,
        /// Its size, `HxW`.
        second_size: String,
    },
    /// The train and test folders name different classes.
    #[error(
        "{root}: train/ and test/ hold different class folders (train: {train:?}; test: \
         {test:?}); both must hold one folder per class, with the same names"
    )]
    ClassMismatch {
        /// The dataset root.
        root: PathBuf,
        /// Train class names.
        train: Vec<String>,
        /// Test class names.
        test: Vec<String>,
    },
    /// A dataset could not be found in any of the places looked at.
    #[error("{what} not found; looked for {looked_for} in: {tried}. {fix}")]
    NotFound {
        /// The dataset.
        what: String,
        /// The file names searched for.
        looked_for: String,
        /// The directories tried, in order.
        tried: String,
        /// What to do.
        fix: String,
    },
    /// An unknown dataset name.
    #[error(
        "unknown dataset {0:?}: use mnist, fashion_mnist or cifar10 (or MNIST, FASHION_MNIST, \
         CIFAR10), or give only --data-dir for a folder of images per class"
    )]
    UnknownDataset(String),
    /// An invalid option value (subset, split, resize, augmentation config).
    #[error("invalid {what}: {message}")]
    BadOption {
        /// The option.
        what: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl DataError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn option(what: &str, message: impl Into<String>) -> Self {
        DataError::BadOption {
            what: what.to_string(),
            message: message.into(),
        }
    }
}

/// How the validation part is taken from the training set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidationRule {
    /// The first `split` fraction of the whole training set (HiveNAS on arrays).
    Prefix,
    /// The first `split` fraction of each class, files sorted by name (Keras's
    /// `flow_from_directory`).
    PerClassPrefix,
}

/// A dataset as read from disk: `u8` pixels, NHWC, row-major, and `u32` labels.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Training images, `[N_train, H, W, C]`.
    pub train_images: Vec<u8>,
    /// Training labels, `N_train` values in `0..classes`.
    pub train_labels: Vec<u32>,
    /// Test images, `[N_test, H, W, C]`.
    pub test_images: Vec<u8>,
    /// Test labels.
    pub test_labels: Vec<u32>,
    /// `[H, W, C]` of one image.
    pub shape: [usize; 3],
    /// Number of classes (from the dataset, not from the labels present).
    pub classes: usize,
    /// One name per class.
    pub class_names: Vec<String>,
    /// Where the data came from and what was left out, for logs and reports.
    pub source: String,
    /// How the validation part is taken.
    pub validation_rule: ValidationRule,
}

impl Dataset {
    /// Number of values in one image, `H*W*C`.
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Number of training images.
    pub fn n_train(&self) -> usize {
        self.train_labels.len()
    }

    /// Number of test images.
    pub fn n_test(&self) -> usize {
        self.test_labels.len()
    }

    /// Images per class in the training set.
    pub fn train_class_counts(&self) -> Vec<usize> {
        class_counts(&self.train_labels, self.classes)
    }

    /// Images per class in the test set.
    pub fn test_class_counts(&self) -> Vec<usize> {
        class_counts(&self.test_labels, self.classes)
    }

    /// Keeps the first `n` training images (those are read first, so for image folders
    /// every class appears in any prefix).
    fn keep_train(&mut self, n: usize) {
        let len = self.image_len();
        self.train_labels.truncate(n);
        self.train_images.truncate(n * len);
    }

    /// Keeps the first `n` test images.
    fn keep_test(&mut self, n: usize) {
        let len = self.image_len();
        self.test_labels.truncate(n);
        self.test_images.truncate(n * len);
    }
}

/// Counts labels per class; labels are already checked to be `< classes`.
pub(crate) fn class_counts(labels: &[u32], classes: usize) -> Vec<usize> {
    let mut counts = vec![0; classes];
    for &l in labels {
        counts[l as usize] += 1;
    }
    counts
}

/// The datasets naseval knows by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatasetName {
    /// MNIST, 28x28x1, IDX files.
    Mnist,
    /// Fashion-MNIST, 28x28x1, IDX files.
    FashionMnist,
    /// CIFAR-10, 32x32x3, binary batches or an image folder.
    Cifar10,
}

impl DatasetName {
    /// Parses `mnist`, `fashion_mnist`, `cifar10` and HiveNAS's `MNIST`, `FASHION_MNIST`,
    /// `CIFAR10` (also `fashion-mnist`, `cifar-10`).
    pub fn parse(name: &str) -> Result<Self, DataError> {
        let key: String = name
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match key.as_str() {
            "mnist" => Ok(DatasetName::Mnist),
            "fashionmnist" => Ok(DatasetName::FashionMnist),
            "cifar10" => Ok(DatasetName::Cifar10),
            _ => Err(DataError::UnknownDataset(name.to_string())),
        }
    }

    /// The canonical lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::FashionMnist => "fashion_mnist",
            DatasetName::Cifar10 => "cifar10",
        }
    }
}

/// Options that change what is read.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Keep only the first N training images (`--subset`).
    pub subset: Option<usize>,
    /// Keep only the first N test images (`--test-subset`).
    pub test_subset: Option<usize>,
    /// Resize every image of an image folder to `(H, W)` (`--resize HxW`).
    pub resize: Option<(u32, u32)>,
}

/// Reads a dataset by name and/or directory:
/// - `mnist` (or no name and no directory): `data_dir`, else `$NASEVAL_DATA_DIR`, else the
///   copy shipped in the repository ([`BUILTIN_MNIST_DIR`]);
/// - `fashion_mnist`: `data_dir`, else Debian's [`DEBIAN_FASHION_MNIST_DIR`];
/// - `cifar10`: `data_dir` holding the binary batches or `train/`/`test/` class folders;
/// - no name, a directory: an image folder `DIR/train/<class>/*`, `DIR/test/<class>/*`.
pub fn load(
    name: Option<&str>,
    data_dir: Option<&Path>,
    opts: &LoadOptions,
) -> Result<Dataset, DataError> {
    if opts.subset == Some(0) {
        return Err(DataError::option(
            "--subset",
            "0 images; give at least 5 (the default split validates on one in five)",
        ));
    }
    if opts.test_subset == Some(0) {
        return Err(DataError::option(
            "--test-subset",
            "0 images; give at least 1",
        ));
    }
    let name = name.map(DatasetName::parse).transpose()?;
    let mut ds = match (name, data_dir) {
        (None, Some(dir)) => folder::read_folder(dir, opts, None)?,
        (None | Some(DatasetName::Mnist), dir) => {
            let env = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty());
            let tried = match (dir, env) {
                (Some(d), _) => (d.to_path_buf(), "--data-dir"),
                (None, Some(e)) => (PathBuf::from(e), DATA_DIR_ENV),
                (None, None) => (PathBuf::from(BUILTIN_MNIST_DIR), "the built-in copy"),
            };
            idx::read_idx_dataset(DatasetName::Mnist, &[tried], MNIST_FIX)?
        }
        (Some(DatasetName::FashionMnist), dir) => {
            let tried = match dir {
                Some(d) => (d.to_path_buf(), "--data-dir"),
                None => (PathBuf::from(DEBIAN_FASHION_MNIST_DIR), "Debian's package"),
            };
            idx::read_idx_dataset(DatasetName::FashionMnist, &[tried], FASHION_FIX)?
        }
        (Some(DatasetName::Cifar10), None) => {
            return Err(DataError::NotFound {
                what: "CIFAR-10".into(),
                looked_for: "a data directory".into(),
                tried: "nowhere (no --data-dir given)".into(),
                fix: CIFAR_FIX.into(),
            });
        }
        (Some(DatasetName::Cifar10), Some(dir)) => {
            if dir.join("train").is_dir() {
                folder::read_folder(dir, opts, Some("cifar10"))?
            } else {
                cifar::read_cifar_dataset(dir, CIFAR_FIX)?
            }
        }
    };

    if ds.classes < 2 {
        return Err(DataError::BadOption {
            what: "dataset".into(),
            message: format!(
                "{} has {} class; a classifier needs at least 2 (an image folder needs one \
                 sub-folder per class under train/ and test/)",
                ds.source, ds.classes
            ),
        });
    }
    if opts.resize.is_some() && ds.validation_rule != ValidationRule::PerClassPrefix {
        log::warn!(
            "--resize applies to image folders only; {} is read as is",
            ds.source
        );
    }
    if let Some(n) = opts.subset {
        if n < ds.n_train() {
            ds.keep_train(n);
            ds.source.push_str(&format!("; first {n} training images"));
        } else if n > ds.n_train() {
            log::warn!(
                "--subset {n}: the training set has only {} images; using all",
                ds.n_train()
            );
        }
    }
    if let Some(n) = opts.test_subset {
        if n < ds.n_test() {
            ds.keep_test(n);
            ds.source.push_str(&format!("; first {n} test images"));
        } else if n > ds.n_test() {
            log::warn!(
                "--test-subset {n}: the test set has only {} images; using all",
                ds.n_test()
            );
        }
    }
    Ok(ds)
}

const MNIST_FIX: &str = "Pass --data-dir DIR with the four MNIST files \
    (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, \
    t10k-labels-idx1-ubyte.gz, gzipped or not), or set NASEVAL_DATA_DIR; a clone of the \
    repository ships them in data/mnist";

const FASHION_FIX: &str = "Install Debian's package dataset-fashion-mnist \
    (apt-get install dataset-fashion-mnist) or pass --data-dir DIR with the four \
    Fashion-MNIST IDX files";

const CIFAR_FIX: &str = "Pass --data-dir DIR holding CIFAR-10's binary release \
    (data_batch_1.bin .. data_batch_5.bin, test_batch.bin, optionally batches.meta.txt, \
    directly or in cifar-10-batches-bin/) or a folder of images per class \
    (DIR/train/<class>/*.png|jpg, DIR/test/<class>/*)";

/// Reads a whole file, with the path in the error.
fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

/// Joins paths for messages.
fn path_list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
