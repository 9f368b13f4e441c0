//! Batches for the training loop: a shuffled, augmented stream built by worker threads
//! ahead of the consumer, and plain in-order batches for validation and test.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use rayon::prelude::*;

use super::augment::{SampleRng, mix64};
use super::{Augmenter, DataError, Prepared, Split, Standardizer};

/// How many finished batches the worker may hold ready ahead of the consumer.
pub const PREFETCH: usize = 4;

/// One batch: standardized images NHWC `[n, H, W, C]` and their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `n * H * W * C` values.
    pub images: Vec<f32>,
    /// `n` labels.
    pub labels: Vec<u32>,
    /// Number of images (the last batch of an epoch may be smaller).
    pub n: usize,
}

/// The order of the training images in `epoch` (0-based): a Fisher-Yates shuffle seeded
/// from `(seed, epoch)` only.
pub fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = SampleRng::new(mix64(
        mix64(seed) ^ epoch.wrapping_mul(0xA24B_AED4_963E_E407),
    ));
    for i in (1..n).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

/// The augmentation seed of training image `index` (its position in the training split)
/// in `epoch`.
fn sample_seed(seed: u64, epoch: u64, index: usize) -> u64 {
    mix64(mix64(mix64(seed ^ 0x5EED) ^ epoch) ^ index as u64)
}

/// One epoch of shuffled, augmented training batches. A worker thread builds them ahead
/// of the consumer (at most [`PREFETCH`] waiting), spreading each batch's images over
/// rayon's threads. The batches depend only on the data, the augmenter, the batch size,
/// the seed and the epoch, never on thread timing. The last partial batch is included.
/// Dropping the stream early stops the worker.
pub struct BatchStream {
    rx: Option<Receiver<Batch>>,
    worker: Option<JoinHandle<()>>,
    remaining: usize,
}

impl BatchStream {
    /// Starts the worker for `epoch` of a run seeded with `seed`.
    ///
    /// # Panics
    /// If `batch_size` is 0 or the augmenter was built for another image shape.
    pub fn new(
        train: Arc<Split>,
        augmenter: Arc<Augmenter>,
        batch_size: usize,
        epoch: u64,
        seed: u64,
    ) -> Self {
        assert!(batch_size > 0, "batch size must be > 0");
        let n_batches = train.len().div_ceil(batch_size);
        let (tx, rx) = sync_channel(PREFETCH);
        let worker = std::thread::Builder::new()
            .name(format!("naseval-batches-e{epoch}"))
            .spawn(move || produce(&train, &augmenter, batch_size, epoch, seed, tx))
            .expect("the OS refused to start the batch worker thread");
        BatchStream {
            rx: Some(rx),
            worker: Some(worker),
            remaining: n_batches,
        }
    }

    /// Batches not yet handed out.
    pub fn remaining(&self) -> usize {
        self.remaining
    }
}

fn produce(
    train: &Split,
    augmenter: &Augmenter,
    batch_size: usize,
    epoch: u64,
    seed: u64,
    tx: SyncSender<Batch>,
) {
    let order = epoch_order(train.len(), seed, epoch);
    let len = train.image_len();
    for idx in order.chunks(batch_size) {
        let mut images = vec![0f32; idx.len() * len];
        images
            .par_chunks_mut(len)
            .zip(idx.par_iter())
            .for_each(|(out, &i)| {
                augmenter.augment(train.image(i), sample_seed(seed, epoch, i), out)
            });
        let labels = idx.iter().map(|&i| train.labels[i]).collect();
        let batch = Batch {
            images,
            labels,
            n: idx.len(),
        };
        if tx.send(batch).is_err() {
            return; // The consumer dropped the stream.
        }
    }
}

impl Iterator for BatchStream {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.remaining == 0 {
            return None;
        }
        match self.rx.as_ref()?.recv() {
            Ok(b) => {
                self.remaining -= 1;
                Some(b)
            }
            Err(_) => {
                // The worker ended early: only a panic does that; pass it on.
                if let Some(Err(p)) = self.worker.take().map(JoinHandle::join) {
                    std::panic::resume_unwind(p);
                }
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for BatchStream {}

impl Drop for BatchStream {
    fn drop(&mut self) {
        // Closing the channel first makes a blocked worker's `send` fail, so it returns.
        self.rx.take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// In-order, unaugmented, standardized batches of a split (validation and test).
pub struct EvalBatches<'a> {
    split: &'a Split,
    standardizer: &'a Standardizer,
    batch_size: usize,
    next: usize,
}

impl<'a> EvalBatches<'a> {
    /// Batches of `batch_size` (the last one may be smaller).
    ///
    /// # Panics
    /// If `batch_size` is 0.
    pub fn new(split: &'a Split, standardizer: &'a Standardizer, batch_size: usize) -> Self {
        assert!(batch_size > 0, "batch size must be > 0");
        EvalBatches {
            split,
            standardizer,
            batch_size,
            next: 0,
        }
    }
}

impl Iterator for EvalBatches<'_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let total = self.split.len();
        if self.next >= total {
            return None;
        }
        let end = (self.next + self.batch_size).min(total);
        let len = self.split.image_len();
        let pixels = &self.split.images[self.next * len..end * len];
        let mut images = vec![0f32; pixels.len()];
        self.standardizer.apply(pixels, &mut images);
        let batch = Batch {
            images,
            labels: self.split.labels[self.next..end].to_vec(),
            n: end - self.next,
        };
        self.next = end;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.split.len() - self.next).div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl ExactSizeIterator for EvalBatches<'_> {}

impl Prepared {
    /// An augmenter for this dataset's shape and statistics.
    pub fn augmenter(&self, config: &super::AugmentConfig) -> Result<Arc<Augmenter>, DataError> {
        Augmenter::new(config.clone(), self.shape, self.standardizer.clone()).map(Arc::new)
    }

    /// The shuffled, augmented training batches of `epoch` (see [`BatchStream`]).
    pub fn train_batches(
        &self,
        augmenter: &Arc<Augmenter>,
        batch_size: usize,
        epoch: u64,
        seed: u64,
    ) -> BatchStream {
        BatchStream::new(
            self.train.clone(),
            augmenter.clone(),
            batch_size,
            epoch,
            seed,
        )
    }

    /// The validation part in order, unaugmented.
    pub fn validation_batches(&self, batch_size: usize) -> EvalBatches<'_> {
        EvalBatches::new(&self.validation, &self.standardizer, batch_size)
    }

    /// The test set in order, unaugmented.
    pub fn test_batches(&self, batch_size: usize) -> EvalBatches<'_> {
        EvalBatches::new(&self.test, &self.standardizer, batch_size)
    }
}
