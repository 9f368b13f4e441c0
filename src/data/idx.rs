//! The IDX format of MNIST and Fashion-MNIST: a big-endian header (magic, dimensions) and
//! then the bytes, gzip-compressed or raw.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{DataError, Dataset, DatasetName, ValidationRule, read_file};

const IMAGES_MAGIC: u32 = 2051;
const LABELS_MAGIC: u32 = 2049;

const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Reads a file, decompressing it when its name ends in `.gz`. The decompressed size is
/// bounded by the data actually present, never by a header field.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = read_file(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::with_capacity(raw.len() * 4);
        let mut dec = flate2::read::GzDecoder::new(raw.as_slice());
        if let Err(source) = dec.read_to_end(&mut out) {
            return Err(DataError::Gzip {
                path: path.to_path_buf(),
                offset: out.len(),
                source,
            });
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Checks the magic number and the dimension count, returns the dimensions and the offset
/// of the data.
fn header(
    path: &Path,
    bytes: &[u8],
    magic: u32,
    what: &'static str,
    ndims: usize,
) -> Result<(Vec<usize>, usize), DataError> {
    let head = 4 + 4 * ndims;
    if bytes.len() < 4 {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: "the IDX magic number".into(),
            expected: 4,
            found: bytes.len() as u64,
        });
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            what,
            found,
            expected: magic,
        });
    }
    if bytes.len() < head {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: format!("the IDX {what} header ({ndims} dimensions)"),
            expected: head as u64,
            found: bytes.len() as u64,
        });
    }
    let dims = (0..ndims)
        .map(|i| be_u32(bytes, 4 + 4 * i) as usize)
        .collect();
    Ok((dims, head))
}

/// Checks that `bytes` holds exactly `head + product(dims)` bytes.
fn check_len(
    path: &Path,
    bytes: &[u8],
    head: usize,
    dims: &[usize],
    what: &str,
) -> Result<usize, DataError> {
    let body = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let expected = body.and_then(|b| b.checked_add(head));
    let Some(expected) = expected else {
        return Err(DataError::BadHeader {
            path: path.to_path_buf(),
            message: format!(
                "the header announces {what} of dimensions {dims:?}, too large to exist; \
                 the file is corrupt, download it again"
            ),
        });
    };
    if bytes.len() < expected {
        let dims_txt: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: format!("{} {what} (header at offset 4)", dims_txt.join("x")),
            expected: expected as u64,
            found: bytes.len() as u64,
        });
    }
    if bytes.len() > expected {
        return Err(DataError::BadHeader {
            path: path.to_path_buf(),
            message: format!(
                "{} bytes follow the {expected} bytes the header announces for {what} \
                 {dims:?} (from byte offset {expected}); the file is corrupt or not IDX",
                bytes.len() - expected
            ),
        });
    }
    Ok(expected)
}

/// Reads an IDX image file (magic 2051): returns the `u8` pixels, `[N, H, W]` row-major,
/// and `[N, H, W]`.
pub fn read_idx_images(path: &Path) -> Result<(Vec<u8>, [usize; 3]), DataError> {
    let bytes = read_maybe_gz(path)?;
    let (dims, head) = header(path, &bytes, IMAGES_MAGIC, "images", 3)?;
    if dims[1] == 0 || dims[2] == 0 {
        return Err(DataError::BadHeader {
            path: path.to_path_buf(),
            message: format!(
                "the header announces images of {}x{} pixels; expected both sides > 0",
                dims[1], dims[2]
            ),
        });
    }
    check_len(path, &bytes, head, &dims, "images")?;
    let mut bytes = bytes;
    bytes.drain(..head);
    Ok((bytes, [dims[0], dims[1], dims[2]]))
}

/// Reads an IDX label file (magic 2049), checking every label is below `classes`.
pub fn read_idx_labels(path: &Path, classes: usize) -> Result<Vec<u32>, DataError> {
    let bytes = read_maybe_gz(path)?;
    let (dims, head) = header(path, &bytes, LABELS_MAGIC, "labels", 1)?;
    check_len(path, &bytes, head, &dims, "labels")?;
    bytes[head..]
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            if (l as usize) < classes {
                Ok(l as u32)
            } else {
                Err(DataError::LabelOutOfRange {
                    path: path.to_path_buf(),
                    record: i,
                    offset: (head + i) as u64,
                    label: l as u32,
                    classes,
                })
            }
        })
        .collect()
}

/// Finds `stem` in `dir` as `stem.gz`, `stem`, or with the last `-` before `idx` written
/// as `.` (some mirrors use `train-images.idx3-ubyte`).
fn find(dir: &Path, stem: &str) -> Option<PathBuf> {
    let dotted = stem.replacen("-idx", ".idx", 1);
    [
        format!("{stem}.gz"),
        stem.to_string(),
        format!("{dotted}.gz"),
        dotted,
    ]
    .into_iter()
    .map(|n| dir.join(n))
    .find(|p| p.is_file())
}

/// Reads one split (images and labels), checking that they agree.
/// Pixels, labels and `[H, W]` of one split.
type IdxSplit = (Vec<u8>, Vec<u32>, [usize; 2]);

fn read_split(dir: &Path, prefix: &str) -> Option<Result<IdxSplit, DataError>> {
    let images = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    Some((|| {
        let (pixels, [n, h, w]) = read_idx_images(&images)?;
        let labs = read_idx_labels(&labels, 10)?;
        if labs.len() != n {
            return Err(DataError::CountMismatch {
                images,
                labels,
                n_images: n,
                n_labels: labs.len(),
            });
        }
        Ok((pixels, labs, [h, w]))
    })())
}

/// Reads MNIST or Fashion-MNIST from the first directory of `dirs` (each with where it came
/// from, for the message) that holds all four files.
pub(super) fn read_idx_dataset(
    name: DatasetName,
    dirs: &[(PathBuf, &str)],
    fix: &str,
) -> Result<Dataset, DataError> {
    for (dir, _) in dirs {
        let (Some(train), Some(test)) = (read_split(dir, "train"), read_split(dir, "t10k")) else {
            continue;
        };
        let (train_images, train_labels, train_hw) = train?;
        let (test_images, test_labels, test_hw) = test?;
        if train_hw != test_hw {
            return Err(DataError::BadHeader {
                path: dir.clone(),
                message: format!(
                    "training images are {}x{} but test images {}x{}; both splits must \
                     come from the same dataset",
                    train_hw[0], train_hw[1], test_hw[0], test_hw[1]
                ),
            });
        }
        let class_names = match name {
            DatasetName::FashionMnist => FASHION_CLASSES.iter().map(|s| s.to_string()).collect(),
            _ => (0..10).map(|d| d.to_string()).collect(),
        };
        return Ok(Dataset {
            train_images,
            train_labels,
            test_images,
            test_labels,
            shape: [train_hw[0], train_hw[1], 1],
            classes: 10,
            class_names,
            source: format!("{} (IDX) from {}", name.as_str(), dir.display()),
            validation_rule: ValidationRule::Prefix,
        });
    }
    Err(DataError::NotFound {
        what: name.as_str().into(),
        looked_for: "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]".into(),
        tried: dirs
            .iter()
            .map(|(d, origin)| format!("{} ({origin})", d.display()))
            .collect::<Vec<_>>()
            .join(", "),
        fix: fix.into(),
    })
}
