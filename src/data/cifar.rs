//! CIFAR-10's binary release: records of 3,073 bytes (a label byte, then the 1,024 red,
//! 1,024 green and 1,024 blue bytes of a 32x32 image, each plane row-major).

use std::path::Path;

use super::{DataError, Dataset, ValidationRule, path_list, read_file};

const SIDE: usize = 32;
const PLANE: usize = SIDE * SIDE;
const RECORD: usize = 1 + 3 * PLANE;

/// CIFAR-10's class names, in label order.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Reads one CIFAR-10 binary batch: the pixels as NHWC `[N, 32, 32, 3]` and the labels.
pub fn read_cifar_batch(path: &Path) -> Result<(Vec<u8>, Vec<u32>), DataError> {
    // Check the size before reading, so a wrong file is refused without loading it.
    let size = std::fs::metadata(path)
        .map_err(|e| DataError::io(path, e))?
        .len();
    let rest = size % RECORD as u64;
    if rest != 0 || size == 0 {
        let whole = size / RECORD as u64;
        return Err(DataError::CifarSize {
            path: path.to_path_buf(),
            size,
            whole,
            rest,
            offset: whole * RECORD as u64,
        });
    }
    let bytes = read_file(path)?;
    if bytes.len() as u64 != size {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: "the CIFAR-10 records (the file changed while being read)".into(),
            expected: size,
            found: bytes.len() as u64,
        });
    }
    let n = bytes.len() / RECORD;
    let mut pixels = vec![0u8; n * 3 * PLANE];
    let mut labels = Vec::with_capacity(n);
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        let label = rec[0] as u32;
        if label as usize >= CIFAR10_CLASSES.len() {
            return Err(DataError::LabelOutOfRange {
                path: path.to_path_buf(),
                record: i,
                offset: (i * RECORD) as u64,
                label,
                classes: CIFAR10_CLASSES.len(),
            });
        }
        labels.push(label);
        let out = &mut pixels[i * 3 * PLANE..(i + 1) * 3 * PLANE];
        for c in 0..3 {
            let plane = &rec[1 + c * PLANE..1 + (c + 1) * PLANE];
            for (p, &v) in plane.iter().enumerate() {
                out[p * 3 + c] = v;
            }
        }
    }
    Ok((pixels, labels))
}

/// Reads `batches.meta.txt`: one class name a line, blank lines ignored; it must name 10.
pub fn read_cifar_meta(path: &Path) -> Result<Vec<String>, DataError> {
    let bytes = read_file(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if names.len() != CIFAR10_CLASSES.len() {
        return Err(DataError::BadHeader {
            path: path.to_path_buf(),
            message: format!(
                "names {} classes, expected 10 (one name a line); fix or delete the file \
                 (the standard names are then used)",
                names.len()
            ),
        });
    }
    Ok(names)
}

/// Reads the binary release from `dir` or `dir/cifar-10-batches-bin`. Missing training
/// batches are tolerated (with a warning, noted in `source`); the test batch is required.
pub(super) fn read_cifar_dataset(dir: &Path, fix: &str) -> Result<Dataset, DataError> {
    let candidates = [dir.to_path_buf(), dir.join("cifar-10-batches-bin")];
    let names: Vec<String> = (1..=5).map(|i| format!("data_batch_{i}.bin")).collect();
    let Some(root) = candidates
        .iter()
        .find(|d| d.join("test_batch.bin").is_file() || names.iter().any(|n| d.join(n).is_file()))
    else {
        let what = if dir.is_dir() {
            "CIFAR-10"
        } else {
            "CIFAR-10 (the directory does not exist)"
        };
        return Err(DataError::NotFound {
            what: what.into(),
            looked_for: "data_batch_1..5.bin and test_batch.bin, or train/<class>/ folders".into(),
            tried: path_list(&candidates),
            fix: fix.into(),
        });
    };

    let mut train_images = Vec::new();
    let mut train_labels = Vec::new();
    let mut present = Vec::new();
    let mut missing = Vec::new();
    for name in &names {
        let path = root.join(name);
        if !path.is_file() {
            missing.push(name.clone());
            continue;
        }
        let (px, labels) = read_cifar_batch(&path)?;
        train_images.extend_from_slice(&px);
        train_labels.extend_from_slice(&labels);
        present.push(name.clone());
    }
    if present.is_empty() {
        return Err(DataError::NotFound {
            what: "CIFAR-10 training batches".into(),
            looked_for: names.join(", "),
            tried: root.display().to_string(),
            fix: fix.into(),
        });
    }
    let test_path = root.join("test_batch.bin");
    if !test_path.is_file() {
        return Err(DataError::NotFound {
            what: "CIFAR-10 test batch".into(),
            looked_for: "test_batch.bin".into(),
            tried: root.display().to_string(),
            fix: fix.into(),
        });
    }
    let (test_images, test_labels) = read_cifar_batch(&test_path)?;

    let meta = root.join("batches.meta.txt");
    let class_names = if meta.is_file() {
        read_cifar_meta(&meta)?
    } else {
        CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect()
    };
    let mut source = format!("cifar10 (binary) from {}", root.display());
    if !missing.is_empty() {
        log::warn!(
            "CIFAR-10 in {}: {} missing; training on {} ({} images)",
            root.display(),
            missing.join(", "),
            present.join(", "),
            train_labels.len()
        );
        source.push_str(&format!(
            "; only {} (missing {})",
            present.join(", "),
            missing.join(", ")
        ));
    }
    Ok(Dataset {
        train_images,
        train_labels,
        test_images,
        test_labels,
        shape: [SIDE, SIDE, 3],
        classes: CIFAR10_CLASSES.len(),
        class_names,
        source,
        validation_rule: ValidationRule::Prefix,
    })
}
