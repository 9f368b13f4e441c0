//! `--profile`: GPU timestamps around every launch of a step, gathered without stalling the
//! step loop, and summed per kernel and per kernel family.
//!
//! A [`Profiler`] writes a begin and an end timestamp around each dispatch inside the step's
//! compute pass, and the step's encoder resolves them into the next free slot of a large
//! buffer. Nothing is read back per step: [`Profiler::collect`] copies all filled slots to a
//! mappable buffer and reads them in one go, and the network calls it only where it blocks
//! anyway (when metrics are taken, once per log interval) or when the slots run out.
//! Without `TIMESTAMP_QUERY_INSIDE_PASSES` the profiler records nothing on the GPU and the
//! profile holds host times only.

use std::collections::BTreeMap;
use std::fmt;

use crate::gpu::{Gpu, GpuError, Kernel, Program};

/// Bytes of resolved timestamps held before a collect is forced.
const SLOT_BYTES: u64 = 4 << 20;

/// Kernels listed one by one under the family table.
const TOP_KERNELS: usize = 8;

/// Queries per query set: wgpu's maximum, so that the whole steps of most networks fit one.
const SET_QUERIES: u32 = wgpu::QUERY_SET_MAX_QUERIES;

/// What a kernel does, for the profile's summary. Derived from the kernel's file name, so
/// that new kernels fall into a family without a table to keep up to date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `conv2d_*`: convolutions and their gradients.
    Conv,
    /// `matmul_*`, `bias_backward`: dense layers, 1x1 convolutions.
    Matmul,
    /// `depthwise_*`.
    Depthwise,
    /// Max, average and global average pooling.
    Pool,
    /// `batch_norm_*`.
    BatchNorm,
    /// Activations, adds, concatenation, dropout, accumulation.
    Elementwise,
    /// Softmax cross-entropy and the metric accumulator.
    LossMetrics,
    /// L2 regularization terms and their gradients.
    L2,
    /// The optimizer update.
    Sgd,
}

impl Family {
    /// Every family, in the order the profile table lists them.
    pub const ALL: [Family; 9] = [
        Family::Conv,
        Family::Matmul,
        Family::Depthwise,
        Family::Pool,
        Family::BatchNorm,
        Family::Elementwise,
        Family::LossMetrics,
        Family::L2,
        Family::Sgd,
    ];

    /// The family of `kernel`, from its shader's file name.
    pub fn of(kernel: Kernel) -> Family {
        let name = kernel.file_name();
        if name.starts_with("conv2d") {
            Family::Conv
        } else if name.starts_with("matmul") || name.starts_with("bias") {
            Family::Matmul
        } else if name.starts_with("depthwise") {
            Family::Depthwise
        } else if name.contains("pool") {
            Family::Pool
        } else if name.starts_with("batch_norm") {
            Family::BatchNorm
        } else if name.starts_with("softmax") || name.starts_with("metrics") {
            Family::LossMetrics
        } else if name.starts_with("l2_") {
            Family::L2
        } else if name.starts_with("sgd") {
            Family::Sgd
        } else {
            Family::Elementwise
        }
    }

    /// A short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Family::Conv => "conv",
            Family::Matmul => "matmul",
            Family::Depthwise => "depthwise",
            Family::Pool => "pool",
            Family::BatchNorm => "batch_norm",
            Family::Elementwise => "elementwise",
            Family::LossMetrics => "loss/metrics",
            Family::L2 => "l2",
            Family::Sgd => "sgd",
        }
    }
}

/// Launches counted and GPU seconds spent in them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KernelTime {
    /// Launches timed.
    pub count: u64,
    /// Seconds between each launch's begin and end timestamps, summed.
    pub seconds: f64,
}

impl KernelTime {
    fn add(&mut self, other: KernelTime) {
        self.count += other.count;
        self.seconds += other.seconds;
    }
}

/// What profiling measured over some steps: GPU time per kernel (when the adapter has
/// timestamp queries) and host times of the training steps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    /// Whether GPU timestamps were taken; `false` leaves only host times.
    pub timestamps: bool,
    /// GPU time per kernel, training and inference steps together.
    pub kernels: BTreeMap<Kernel, KernelTime>,
    /// Training steps profiled.
    pub train_steps: u64,
    /// Inference (validation, test) steps profiled.
    pub eval_steps: u64,
    /// GPU seconds inside the kernels of training steps.
    pub train_kernel_seconds: f64,
    /// GPU seconds from each training step's first begin to its last end timestamp: the
    /// kernels plus the gaps between dispatches.
    pub train_pass_seconds: f64,
    /// GPU seconds inside the kernels of inference steps.
    pub eval_kernel_seconds: f64,
    /// Host wall-clock seconds of the training steps: from each step's start to the next
    /// one's, and from the last step of a log interval until its work had finished on the
    /// GPU. Covers batch preparation, upload, recording, submission and waiting.
    pub train_wall_seconds: f64,
    /// Host seconds spent inside the training-step calls (checks, upload, recording,
    /// submission).
    pub train_host_seconds: f64,
}

impl Profile {
    /// GPU time per kernel family; only families with launches appear.
    pub fn families(&self) -> BTreeMap<Family, KernelTime> {
        let mut out: BTreeMap<Family, KernelTime> = BTreeMap::new();
        for (&k, &t) in &self.kernels {
            out.entry(Family::of(k)).or_default().add(t);
        }
        out
    }

    /// GPU seconds in all kernels, training and inference.
    pub fn kernel_seconds(&self) -> f64 {
        self.kernels.values().map(|t| t.seconds).sum()
    }

    /// Share of the training steps' wall time spent in GPU kernels; `None` without
    /// timestamps or training steps.
    pub fn kernel_share(&self) -> Option<f64> {
        (self.timestamps && self.train_wall_seconds > 0.0)
            .then(|| self.train_kernel_seconds / self.train_wall_seconds)
    }

    /// Adds `other`'s counts and times to this profile.
    pub fn merge(&mut self, other: &Profile) {
        self.timestamps |= other.timestamps;
        for (&k, &t) in &other.kernels {
            self.kernels.entry(k).or_default().add(t);
        }
        self.train_steps += other.train_steps;
        self.eval_steps += other.eval_steps;
        self.train_kernel_seconds += other.train_kernel_seconds;
        self.train_pass_seconds += other.train_pass_seconds;
        self.eval_kernel_seconds += other.eval_kernel_seconds;
        self.train_wall_seconds += other.train_wall_seconds;
        self.train_host_seconds += other.train_host_seconds;
    }
}

/// A table for people: per family, then the totals and the kernel share of step time.
impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |s: f64| s * 1e3;
        let per_step = |s: f64| {
            if self.train_steps > 0 {
                ms(s) / self.train_steps as f64
            } else {
                0.0
            }
        };
        writeln!(
            f,
            "profile: {} training steps, {} inference steps",
            self.train_steps, self.eval_steps
        )?;
        if self.timestamps {
            let total = self.kernel_seconds().max(1e-12);
            writeln!(
                f,
                "  {:<14} {:>9} {:>11} {:>9} {:>7}",
                "family", "launches", "GPU ms", "ms/launch", "share"
            )?;
            for (fam, t) in self.families() {
                writeln!(
                    f,
                    "  {:<14} {:>9} {:>11.1} {:>9.3} {:>6.1}%",
                    fam.name(),
                    t.count,
                    ms(t.seconds),
                    ms(t.seconds) / t.count.max(1) as f64,
                    100.0 * t.seconds / total
                )?;
            }
            let mut top: Vec<(&Kernel, &KernelTime)> = self.kernels.iter().collect();
            top.sort_by(|a, b| b.1.seconds.total_cmp(&a.1.seconds));
            writeln!(f, "  slowest kernels:")?;
            for (k, t) in top.into_iter().take(TOP_KERNELS) {
                writeln!(
                    f,
                    "    {:<34} {:>7} {:>11.1} {:>9.3} {:>6.1}%",
                    k.file_name().trim_end_matches(".wgsl"),
                    t.count,
                    ms(t.seconds),
                    ms(t.seconds) / t.count.max(1) as f64,
                    100.0 * t.seconds / total
                )?;
            }
            writeln!(
                f,
                "  GPU kernels, all steps:    {:>10.1} ms",
                ms(self.kernel_seconds())
            )?;
            writeln!(
                f,
                "  GPU kernels, training:     {:>10.1} ms ({:.2} ms/step)",
                ms(self.train_kernel_seconds),
                per_step(self.train_kernel_seconds)
            )?;
            writeln!(
                f,
                "  GPU pass span, training:   {:>10.1} ms ({:.2} ms/step, kernels + gaps)",
                ms(self.train_pass_seconds),
                per_step(self.train_pass_seconds)
            )?;
            writeln!(
                f,
                "  GPU kernels, inference:    {:>10.1} ms",
                ms(self.eval_kernel_seconds)
            )?;
        } else {
            writeln!(
                f,
                "  this adapter has no timestamp queries inside compute passes: host times only"
            )?;
        }
        writeln!(
            f,
            "  host wall, training steps: {:>10.1} ms ({:.2} ms/step)",
            ms(self.train_wall_seconds),
            per_step(self.train_wall_seconds)
        )?;
        writeln!(
            f,
            "  host in train_step calls:  {:>10.1} ms ({:.2} ms/step)",
            ms(self.train_host_seconds),
            per_step(self.train_host_seconds)
        )?;
        if let Some(share) = self.kernel_share() {
            writeln!(
                f,
                "  kernels / training wall:   {:>9.1}% (target >= 90%)",
                100.0 * share
            )?;
        }
        Ok(())
    }
}

/// One step whose timestamps wait in the slot buffer.
struct PendingStep {
    /// Byte offset of its first timestamp.
    offset: u64,
    /// The timed launches' kernels, in recording order (two timestamps each).
    kernels: Vec<Kernel>,
    train: bool,
}

/// Timestamp queries, the slot buffer they are resolved into and its readback copy.
struct Queries {
    sets: Vec<wgpu::QuerySet>,
    slots: wgpu::Buffer,
    readback: wgpu::Buffer,
    capacity: u64,
    /// Bytes of `slots` in use.
    used: u64,
    pending: Vec<PendingStep>,
    /// The step being recorded: its kernels so far.
    current: Vec<Kernel>,
    /// Nanoseconds per timestamp tick.
    period_ns: f64,
}

/// Records timestamps around the launches of steps and turns them into a [`Profile`].
///
/// Per step: [`Profiler::begin_step`] (before the encoder's pass), [`Profiler::record`] for
/// each program inside the pass, [`Profiler::end_step`] on the encoder after the pass.
pub struct Profiler {
    gpu: Gpu,
    /// `None` where the adapter cannot write timestamps inside passes.
    queries: Option<Queries>,
    profile: Profile,
}

impl Profiler {
    /// A profiler on `gpu`; GPU times only if the device has
    /// `TIMESTAMP_QUERY_INSIDE_PASSES` enabled.
    pub fn new(gpu: &Gpu) -> Self {
        let wanted =
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
        let queries = gpu.features.contains(wanted).then(|| {
            let (slots, readback) = slot_buffers(gpu, SLOT_BYTES);
            Queries {
                sets: Vec::new(),
                slots,
                readback,
                capacity: SLOT_BYTES,
                used: 0,
                pending: Vec::new(),
                current: Vec::new(),
                period_ns: gpu.queue.get_timestamp_period() as f64,
            }
        });
        if queries.is_none() {
            log::warn!(
                "adapter {:?} has no timestamp queries inside compute passes: the profile \
                 holds host times only",
                gpu.adapter.name
            );
        }
        Self {
            gpu: gpu.clone(),
            profile: Profile {
                timestamps: queries.is_some(),
                ..Default::default()
            },
            queries,
        }
    }

    /// Whether GPU timestamps are taken.
    pub fn has_timestamps(&self) -> bool {
        self.queries.is_some()
    }

    /// Prepares for a step of at most `launches` launches: makes room for its timestamps,
    /// collecting (and so waiting for) earlier steps only when the slot buffer is full.
    pub fn begin_step(&mut self, launches: usize) -> Result<(), GpuError> {
        let Some(q) = &mut self.queries else {
            return Ok(());
        };
        let queries = 2 * launches as u64;
        let bytes = aligned(queries * wgpu::QUERY_SIZE as u64);
        if q.used + bytes > q.capacity {
            self.collect()?;
        }
        let q = self.queries.as_mut().expect("checked above");
        if bytes > q.capacity {
            let capacity = bytes.next_power_of_two();
            (q.slots, q.readback) = slot_buffers(&self.gpu, capacity);
            q.capacity = capacity;
        }
        let sets_needed = queries.div_ceil(SET_QUERIES as u64) as usize;
        while q.sets.len() < sets_needed {
            q.sets
                .push(self.gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("profile timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: SET_QUERIES,
                }));
        }
        q.current.clear();
        Ok(())
    }

    /// Records `program` into `pass` with a timestamp before and after each dispatch.
    /// Records it plainly when the adapter has no timestamps.
    pub fn record(&mut self, program: &Program, pass: &mut wgpu::ComputePass<'_>) {
        let Some(q) = &mut self.queries else {
            program.record(pass);
            return;
        };
        for launch in &program.launches {
            if launch.is_empty() {
                continue;
            }
            let at = 2 * q.current.len() as u32;
            let (set, i) = ((at / SET_QUERIES) as usize, at % SET_QUERIES);
            pass.write_timestamp(&q.sets[set], i);
            launch.record(pass);
            let (set, i) = (((at + 1) / SET_QUERIES) as usize, (at + 1) % SET_QUERIES);
            pass.write_timestamp(&q.sets[set], i);
            q.current.push(launch.kernel);
        }
    }

    /// Resolves the step's timestamps into its slot (recorded on `enc` after the pass) and
    /// counts the step. `train` tells training from inference steps.
    pub fn end_step(&mut self, enc: &mut wgpu::CommandEncoder, train: bool) {
        if train {
            self.profile.train_steps += 1;
        } else {
            self.profile.eval_steps += 1;
        }
        let Some(q) = &mut self.queries else {
            return;
        };
        let queries = 2 * q.current.len() as u32;
        let offset = q.used;
        let mut first = 0;
        for set in &q.sets {
            if first >= queries {
                break;
            }
            let n = (queries - first).min(SET_QUERIES);
            // Full sets take 32 KiB, a multiple of the resolve alignment, so the step's
            // timestamps lie contiguous in the slot buffer.
            let at = offset + first as u64 * wgpu::QUERY_SIZE as u64;
            enc.resolve_query_set(set, 0..n, &q.slots, at);
            first += n;
        }
        q.used += aligned(queries as u64 * wgpu::QUERY_SIZE as u64);
        q.pending.push(PendingStep {
            offset,
            kernels: std::mem::take(&mut q.current),
            train,
        });
    }

    /// Adds host seconds spent inside a training-step call.
    pub fn add_train_host(&mut self, seconds: f64) {
        self.profile.train_host_seconds += seconds;
    }

    /// Adds host wall-clock seconds of training steps.
    pub fn add_train_wall(&mut self, seconds: f64) {
        self.profile.train_wall_seconds += seconds;
    }

    /// Reads back the timestamps of every step recorded so far (one copy, one wait) and adds
    /// them to the profile.
    pub fn collect(&mut self) -> Result<(), GpuError> {
        let Some(q) = &mut self.queries else {
            return Ok(());
        };
        if q.pending.is_empty() {
            return Ok(());
        }
        let used = q.used;
        let mut enc = self.gpu.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&q.slots, 0, &q.readback, 0, used);
        self.gpu.queue.submit([enc.finish()]);
        let slice = q.readback.slice(..used);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.gpu.wait()?;
        let mapped = rx.recv().map_err(|e| GpuError::Device {
            during: "reading profile timestamps",
            message: e.to_string(),
        })?;
        mapped.map_err(|e| GpuError::Device {
            during: "mapping the profile timestamps",
            message: e.to_string(),
        })?;
        let ticks: Vec<u64> = {
            let view = slice.get_mapped_range().map_err(|e| GpuError::Device {
                during: "viewing the profile timestamps",
                message: e.to_string(),
            })?;
            bytemuck::pod_collect_to_vec(&view)
        };
        q.readback.unmap();

        let to_s = q.period_ns * 1e-9;
        let p = &mut self.profile;
        for step in q.pending.drain(..) {
            let base = (step.offset / wgpu::QUERY_SIZE as u64) as usize;
            let mut kernels = 0.0;
            for (j, &k) in step.kernels.iter().enumerate() {
                let (begin, end) = (ticks[base + 2 * j], ticks[base + 2 * j + 1]);
                // A clock that went backwards (or wrapped) counts as nothing.
                let s = end.saturating_sub(begin) as f64 * to_s;
                kernels += s;
                p.kernels.entry(k).or_default().add(KernelTime {
                    count: 1,
                    seconds: s,
                });
            }
            let n = step.kernels.len();
            let span = if n > 0 {
                ticks[base + 2 * n - 1].saturating_sub(ticks[base]) as f64 * to_s
            } else {
                0.0
            };
            if step.train {
                p.train_kernel_seconds += kernels;
                p.train_pass_seconds += span;
            } else {
                p.eval_kernel_seconds += kernels;
            }
        }
        q.used = 0;
        Ok(())
    }

    /// Collects what is outstanding and returns the profile so far, starting a new one.
    pub fn take(&mut self) -> Result<Profile, GpuError> {
        self.collect()?;
        let fresh = Profile {
            timestamps: self.queries.is_some(),
            ..Default::default()
        };
        Ok(std::mem::replace(&mut self.profile, fresh))
    }
}

/// Rounds up to the alignment resolve destinations need.
fn aligned(bytes: u64) -> u64 {
    bytes.div_ceil(wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT) * wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT
}

/// The slot buffer timestamps are resolved into and the mappable copy it is read through.
fn slot_buffers(gpu: &Gpu, bytes: u64) -> (wgpu::Buffer, wgpu::Buffer) {
    let slots = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("profile slots"),
        size: bytes,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let readback = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("profile readback"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    (slots, readback)
}

#[cfg(test)]
mod tests {
    use super::{Family, Kernel};

    #[test]
    fn every_kernel_has_the_expected_family() {
        assert_eq!(Family::of(Kernel::Conv2dBackwardWeightReduce), Family::Conv);
        assert_eq!(Family::of(Kernel::MatmulSumPartials), Family::Matmul);
        assert_eq!(Family::of(Kernel::BiasBackward), Family::Matmul);
        assert_eq!(Family::of(Kernel::DepthwiseForward), Family::Depthwise);
        assert_eq!(Family::of(Kernel::GlobalAvgPoolBackward), Family::Pool);
        assert_eq!(Family::of(Kernel::BatchNormStatsCombine), Family::BatchNorm);
        assert_eq!(Family::of(Kernel::ConcatBackward), Family::Elementwise);
        assert_eq!(Family::of(Kernel::MetricsAccumulate), Family::LossMetrics);
        assert_eq!(Family::of(Kernel::SoftmaxXentForward), Family::LossMetrics);
        assert_eq!(Family::of(Kernel::L2Backward), Family::L2);
        assert_eq!(Family::of(Kernel::SgdUpdate), Family::Sgd);
    }
}
