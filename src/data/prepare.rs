//! Preparation (HIVENAS.md section 3, step 1): per-channel standardization with the training
//! set's statistics, and the validation part split off the training set.

use std::sync::Arc;

use super::{DataError, Dataset, ValidationRule, class_counts};

/// Per-channel standardization `(x - mean[c]) / std[c]`, fitted on the training set.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    /// Mean per channel, in pixel units (0..255).
    pub mean: Vec<f32>,
    /// Population standard deviation per channel; a constant channel gets 1 (see `fit`).
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Fits the statistics over all images and pixels of `images` (NHWC, `channels` last).
    /// HiveNAS divides by the raw standard deviation, so a constant channel turns into NaN;
    /// here such a channel is divided by 1 (it becomes all zeros) and a warning is logged.
    pub fn fit(images: &[u8], channels: usize) -> Self {
        assert!(
            channels > 0 && images.len().is_multiple_of(channels),
            "images not a whole NHWC"
        );
        let count = (images.len() / channels).max(1) as f64;
        let mut sum = vec![0f64; channels];
        for px in images.chunks_exact(channels) {
            for (s, &v) in sum.iter_mut().zip(px) {
                *s += v as f64;
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
        let mut sq = vec![0f64; channels];
        for px in images.chunks_exact(channels) {
            for c in 0..channels {
                let d = px[c] as f64 - mean[c];
                sq[c] += d * d;
            }
        }
        let std = sq
            .iter()
            .enumerate()
            .map(|(c, s)| {
                let sd = (s / count).sqrt();
                if sd > 0.0 {
                    sd as f32
                } else {
                    log::warn!(
                        "channel {c} is constant ({}) over the training set; dividing it by \
                         1 instead of its standard deviation 0",
                        mean[c]
                    );
                    1.0
                }
            })
            .collect();
        Standardizer {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        }
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Standardizes `pixels` (NHWC, any count) into `out` (same length).
    pub fn apply(&self, pixels: &[u8], out: &mut [f32]) {
        assert_eq!(pixels.len(), out.len(), "standardize: length mismatch");
        let c = self.channels();
        for (o, p) in out.chunks_exact_mut(c).zip(pixels.chunks_exact(c)) {
            for k in 0..c {
                o[k] = (p[k] as f32 - self.mean[k]) / self.std[k];
            }
        }
    }

    /// Standardizes values already in pixel units (0..255, possibly out of range after
    /// augmentation), in place.
    pub fn apply_f32(&self, values: &mut [f32]) {
        let c = self.channels();
        for px in values.chunks_exact_mut(c) {
            for ((v, m), sd) in px.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / sd;
            }
        }
    }

    /// The inverse: standardized values back to pixel units, in place (for viewing).
    pub fn unapply(&self, values: &mut [f32]) {
        let c = self.channels();
        for px in values.chunks_exact_mut(c) {
            for ((v, m), sd) in px.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = *v * sd + m;
            }
        }
    }
}

/// One part of a dataset: `u8` images NHWC and their labels.
#[derive(Clone, Debug, Default)]
pub struct Split {
    /// Pixels, `[N, H, W, C]`.
    pub images: Vec<u8>,
    /// Labels, `N` values.
    pub labels: Vec<u32>,
    /// `[H, W, C]`.
    pub shape: [usize; 3],
}

impl Split {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per image, `H*W*C`.
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[i * n..(i + 1) * n]
    }

    /// All images standardized, `[N, H, W, C]` f32 (for callers that want the whole array
    /// at once; the batch iterators standardize batch by batch).
    pub fn standardized(&self, st: &Standardizer) -> Vec<f32> {
        let mut out = vec![0f32; self.images.len()];
        st.apply(&self.images, &mut out);
        out
    }

    fn pick(&self, keep: &[bool], want: bool) -> Split {
        let n = self.image_len();
        let mut images = Vec::new();
        let mut labels = Vec::new();
        for (i, _) in keep.iter().enumerate().filter(|(_, k)| **k == want) {
            images.extend_from_slice(&self.images[i * n..(i + 1) * n]);
            labels.push(self.labels[i]);
        }
        Split {
            images,
            labels,
            shape: self.shape,
        }
    }
}

/// A dataset ready for training: statistics fitted, the validation part split off.
/// Images stay `u8`; [`BatchStream`](super::BatchStream) and
/// [`EvalBatches`](super::EvalBatches) hand out standardized f32 batches.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The part trained on (shuffled and augmented each epoch).
    pub train: Arc<Split>,
    /// The validation part (never augmented).
    pub validation: Arc<Split>,
    /// The test set (never augmented).
    pub test: Arc<Split>,
    /// Statistics of the whole training set (validation part included, as HiveNAS).
    pub standardizer: Standardizer,
    /// `[H, W, C]`.
    pub shape: [usize; 3],
    /// Number of classes (from the dataset, not from the labels present).
    pub classes: usize,
    /// One name per class.
    pub class_names: Vec<String>,
    /// Size of the whole training set before the split (HiveNAS's `steps_per_epoch` uses
    /// it, HIVENAS.md section 3 step 6).
    pub n_train_total: usize,
    /// Where the data came from.
    pub source: String,
}

impl Prepared {
    /// Fits the standardization on the whole training set and splits off the validation
    /// part: the first `validation_split` of the training set, or of each class for image
    /// folders (see [`ValidationRule`]). `validation_split` must lie in `[0, 1)`.
    pub fn new(ds: Dataset, validation_split: f64) -> Result<Self, DataError> {
        if !(0.0..1.0).contains(&validation_split) {
            return Err(DataError::BadOption {
                what: "validation split".into(),
                message: format!("{validation_split}; expected a fraction in [0, 1), e.g. 0.2"),
            });
        }
        let standardizer = Standardizer::fit(&ds.train_images, ds.shape[2]);
        let n = ds.n_train();
        let in_validation: Vec<bool> = match ds.validation_rule {
            ValidationRule::Prefix => {
                let n_val = (n as f64 * validation_split) as usize;
                (0..n).map(|i| i < n_val).collect()
            }
            ValidationRule::PerClassPrefix => {
                let counts = class_counts(&ds.train_labels, ds.classes);
                let n_val: Vec<usize> = counts
                    .iter()
                    .map(|&c| (c as f64 * validation_split) as usize)
                    .collect();
                let mut seen = vec![0usize; ds.classes];
                ds.train_labels
                    .iter()
                    .map(|&l| {
                        let rank = seen[l as usize];
                        seen[l as usize] += 1;
                        rank < n_val[l as usize]
                    })
                    .collect()
            }
        };
        let all = Split {
            images: ds.train_images,
            labels: ds.train_labels,
            shape: ds.shape,
        };
        let validation = all.pick(&in_validation, true);
        let train = all.pick(&in_validation, false);
        if train.is_empty() || (validation_split > 0.0 && validation.is_empty()) {
            return Err(DataError::BadOption {
                what: "training set size".into(),
                message: format!(
                    "{n} training images leave {} to train on and {} to validate on with a \
                     validation split of {validation_split}; use a larger --subset",
                    train.len(),
                    validation.len()
                ),
            });
        }
        log::info!(
            "{}: {} train, {} validation, {} test, shape {:?}, mean {:?}, std {:?}",
            ds.source,
            train.len(),
            validation.len(),
            ds.test_labels.len(),
            ds.shape,
            standardizer.mean,
            standardizer.std
        );
        let test = Split {
            images: ds.test_images,
            labels: ds.test_labels,
            shape: ds.shape,
        };
        Ok(Prepared {
            train: Arc::new(train),
            validation: Arc::new(validation),
            test: Arc::new(test),
            standardizer,
            shape: ds.shape,
            classes: ds.classes,
            class_names: ds.class_names,
            n_train_total: n,
            source: ds.source,
        })
    }
}
