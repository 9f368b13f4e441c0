//! Image folders as Keras's `flow_from_directory` users keep them: `ROOT/train/<class>/*`
//! and `ROOT/test/<class>/*`, classes sorted by name, decoded once on all cores.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{DataError, Dataset, LoadOptions, ValidationRule, read_file};

const EXTENSIONS: [&str; 8] = ["png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp"];

/// Parses `--resize HxW` (e.g. `32x32`).
pub fn parse_resize(text: &str) -> Result<(u32, u32), DataError> {
    let bad = || DataError::BadOption {
        what: "--resize".into(),
        message: format!("{text:?}; expected HxW with sides from 1 to 4096, e.g. 32x32"),
    };
    let (h, w) = text.split_once(['x', 'X']).ok_or_else(bad)?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    // Larger sides would size the decoded dataset before any device limit is checked.
    if h == 0 || w == 0 || h > 4096 || w > 4096 {
        return Err(bad());
    }
    Ok((h, w))
}

/// Sorted names of the entries of `dir` for which `keep` holds; hidden entries skipped.
fn sorted_entries(
    dir: &Path,
    keep: impl Fn(&Path) -> bool,
) -> Result<Vec<(String, PathBuf)>, DataError> {
    let rd = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !name.starts_with('.') && keep(&path) {
            out.push((name, path));
        }
    }
    out.sort();
    Ok(out)
}

fn is_image(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Lists one split: class names and, per class, its image files sorted by name.
fn list_split(dir: &Path) -> Result<(Vec<String>, Vec<Vec<PathBuf>>), DataError> {
    let classes = sorted_entries(dir, Path::is_dir)?;
    if classes.is_empty() {
        return Err(DataError::MissingDir {
            path: dir.join("<class>"),
            fix: format!(
                "{} holds no class folders; put each class's images in a folder of its own",
                dir.display()
            ),
        });
    }
    let mut names = Vec::new();
    let mut files = Vec::new();
    for (name, path) in classes {
        let imgs: Vec<PathBuf> = sorted_entries(&path, is_image)?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        if imgs.is_empty() {
            return Err(DataError::EmptyClass { dir: path });
        }
        names.push(name);
        files.push(imgs);
    }
    Ok((names, files))
}

/// Round-robin over the classes (files in name order within each), so that every prefix
/// holds every class.
fn interleave(files: &[Vec<PathBuf>]) -> Vec<(&Path, u32)> {
    let longest = files.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Vec::with_capacity(files.iter().map(Vec::len).sum());
    for i in 0..longest {
        for (c, class_files) in files.iter().enumerate() {
            if let Some(p) = class_files.get(i) {
                out.push((p.as_path(), c as u32));
            }
        }
    }
    out
}

/// One decoded image: `(height, width)`, whether it is grayscale, its pixels (HWC).
struct Decoded {
    hw: (u32, u32),
    gray: bool,
    pixels: Vec<u8>,
}

fn decode(path: &Path, resize: Option<(u32, u32)>) -> Result<Decoded, DataError> {
    let bytes = read_file(path)?;
    let img = image::load_from_memory(&bytes).map_err(|e| DataError::Decode {
        path: path.to_path_buf(),
        reason: e.to_string().trim_end().to_string(),
    })?;
    let gray = !img.color().has_color();
    let filter = image::imageops::FilterType::Triangle;
    let (hw, pixels) = if gray {
        let mut b = img.to_luma8();
        if let Some((h, w)) = resize {
            b = image::imageops::resize(&b, w, h, filter);
        }
        ((b.height(), b.width()), b.into_raw())
    } else {
        let mut b = img.to_rgb8();
        if let Some((h, w)) = resize {
            b = image::imageops::resize(&b, w, h, filter);
        }
        ((b.height(), b.width()), b.into_raw())
    };
    Ok(Decoded { hw, gray, pixels })
}

/// Decodes the files of one split in parallel.
fn decode_all(
    files: &[(&Path, u32)],
    resize: Option<(u32, u32)>,
) -> Result<Vec<Decoded>, DataError> {
    files.par_iter().map(|(p, _)| decode(p, resize)).collect()
}

/// Reads an image-folder dataset. `name` labels it in `source` (e.g. `cifar10`).
pub(super) fn read_folder(
    root: &Path,
    opts: &LoadOptions,
    name: Option<&str>,
) -> Result<Dataset, DataError> {
    let layout = "expected ROOT/train/<class>/*.png|jpg|... and ROOT/test/<class>/*";
    if !root.is_dir() {
        return Err(DataError::MissingDir {
            path: root.to_path_buf(),
            fix: format!("give --data-dir an existing directory ({layout})"),
        });
    }
    for split in ["train", "test"] {
        if !root.join(split).is_dir() {
            let idx = root.join("train-images-idx3-ubyte.gz").is_file()
                || root.join("train-images-idx3-ubyte").is_file();
            let hint = if idx {
                "; this directory holds IDX files: add --dataset mnist or fashion_mnist"
            } else {
                ""
            };
            return Err(DataError::MissingDir {
                path: root.join(split),
                fix: format!("{layout}{hint}"),
            });
        }
    }
    let (train_classes, train_files) = list_split(&root.join("train"))?;
    let (test_classes, test_files) = list_split(&root.join("test"))?;
    if train_classes != test_classes {
        return Err(DataError::ClassMismatch {
            root: root.to_path_buf(),
            train: train_classes,
            test: test_classes,
        });
    }

    // Only the images kept by --subset/--test-subset are decoded.
    let mut train_order = interleave(&train_files);
    let mut test_order = interleave(&test_files);
    let (n_train_all, n_test_all) = (train_order.len(), test_order.len());
    train_order.truncate(opts.subset.unwrap_or(usize::MAX));
    test_order.truncate(opts.test_subset.unwrap_or(usize::MAX));
    let train = decode_all(&train_order, opts.resize)?;
    let test = decode_all(&test_order, opts.resize)?;

    // One size and one channel count for all: RGB wins when both kinds are present.
    let all: Vec<(&Path, &Decoded)> = train_order
        .iter()
        .zip(&train)
        .chain(test_order.iter().zip(&test))
        .map(|((p, _), d)| (*p, d))
        .collect();
    let (first_path, first) = all[0];
    if let Some((p, d)) = all.iter().find(|(_, d)| d.hw != first.hw) {
        let txt = |hw: (u32, u32)| format!("{}x{}", hw.0, hw.1);
        return Err(DataError::SizeMismatch {
            first: first_path.to_path_buf(),
            first_size: txt(first.hw),
            second: p.to_path_buf(),
            second_size: txt(d.hw),
        });
    }
    let channels = if all.iter().all(|(_, d)| d.gray) {
        1
    } else {
        3
    };
    let (h, w) = (first.hw.0 as usize, first.hw.1 as usize);
    let gather = |decoded: Vec<Decoded>| -> Vec<u8> {
        let mut out = Vec::with_capacity(decoded.len() * h * w * channels);
        for d in decoded {
            if d.gray && channels == 3 {
                out.extend(d.pixels.iter().flat_map(|&v| [v, v, v]));
            } else {
                out.extend_from_slice(&d.pixels);
            }
        }
        out
    };
    let train_labels = train_order.iter().map(|(_, l)| *l).collect();
    let test_labels = test_order.iter().map(|(_, l)| *l).collect();
    let mut source = format!(
        "{} (image folder) from {}",
        name.unwrap_or("images"),
        root.display()
    );
    if train_order.len() < n_train_all {
        source.push_str(&format!(
            "; first {} of {n_train_all} training images (class-interleaved)",
            train_order.len()
        ));
    }
    if test_order.len() < n_test_all {
        source.push_str(&format!(
            "; first {} of {n_test_all} test images",
            test_order.len()
        ));
    }
    if let Some((rh, rw)) = opts.resize {
        source.push_str(&format!("; resized to {rh}x{rw}"));
    }
    Ok(Dataset {
        train_images: gather(train),
        train_labels,
        test_images: gather(test),
        test_labels,
        shape: [h, w, channels],
        classes: train_classes.len(),
        class_names: train_classes,
        source,
        validation_rule: ValidationRule::PerClassPrefix,
    })
}
