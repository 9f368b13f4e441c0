//! [`Network`]: the public face of the graph; steps, metrics and state.

use std::collections::HashMap;
use std::time::Instant;

use crate::arch::Plan;
use crate::gpu::{Gpu, Profile, Profiler, Program, Tensor};
use crate::graph::build::Graph;
use crate::graph::{GraphError, Metrics, NamedArray, OptimizerConfig};
use crate::ops::optim;

/// A network built from a [`Plan`] on a [`Gpu`] for a maximum batch size: every tensor
/// (parameters, gradients, velocities, activations, saved forward state, loss and metric
/// buffers) and every program is created by [`Network::new`]. Steps then only upload their
/// batch and record what was built: no allocation, no pipeline or bind group, no wait.
///
/// Smaller batches (the last partial batch of an epoch, validation batches) reuse the same
/// tensors; their programs are built the first time that size is seen, then cached.
///
/// With [`Network::enable_profiling`], steps also time every launch on the GPU and
/// themselves on the host; [`Network::take_profile`] returns what was measured.
pub struct Network {
    gpu: Gpu,
    graph: Graph,
    /// Forward (+ loss, + backward in training) programs by (batch size, training).
    steps: HashMap<(usize, bool), Program>,
    /// SGD on every trainable parameter; independent of the batch size.
    update: Program,
    /// Set while profiling; `None` costs the steps nothing.
    profiler: Option<Profiler>,
    /// While profiling: when the current stretch of training steps was last accounted for
    /// (the start of the latest training step, or the end of the latest wait).
    train_clock: Option<Instant>,
}

/// Paths of checkpoint arrays.
const MODEL: &str = "model/";
const VELOCITY: &str = "optimizer/velocity/";

impl Network {
    /// Allocates everything, initializes parameters as Keras does (Glorot-uniform kernels
    /// drawn from one generator seeded with `seed`, in plan order; zero biases; batch-norm
    /// gamma 1, beta 0, moving mean 0, moving variance 1), velocities 0, and builds (and so
    /// compiles) the training and inference programs for `batch`.
    pub fn new(
        gpu: &Gpu,
        plan: &Plan,
        batch: usize,
        seed: u64,
        opt: OptimizerConfig,
    ) -> Result<Self, GraphError> {
        // Only the kernels this plan's programs use are compiled (by building the programs
        // below): kernel variants depend on the device and the channel counts, not on the
        // batch size, so the programs of a smaller final batch find their pipelines cached.
        // Compiling the whole registry up front cost seconds per process on lavapipe.
        let started = Instant::now();
        let graph = Graph::new(gpu, plan, batch, seed)?;
        let mut update = Program::new();
        for p in &graph.params {
            if let (Some(v), Some(g)) = (&p.velocity, &p.grad) {
                update.extend(optim::sgd_update(
                    gpu,
                    opt.momentum,
                    opt.nesterov,
                    &graph.lr,
                    &p.value,
                    v,
                    g,
                )?);
            }
        }
        let mut net = Self {
            gpu: gpu.clone(),
            graph,
            steps: HashMap::new(),
            update,
            profiler: None,
            train_clock: None,
        };
        net.prepare(batch, true)?;
        net.prepare(batch, false)?;
        log::info!(
            "network {}: {} nodes, {} parameter arrays, batch {batch}, built with its \
             pipelines in {:.2} s",
            plan.sha1,
            plan.nodes.len(),
            net.graph.params.len(),
            started.elapsed().as_secs_f64()
        );
        Ok(net)
    }

    /// Starts profiling: from now on every step writes GPU timestamps around each launch
    /// (where the adapter supports timestamps inside compute passes) and measures its host
    /// time. Nothing is read back per step; the timestamps are collected when metrics are
    /// taken and by [`Network::take_profile`]. A no-op when already profiling.
    pub fn enable_profiling(&mut self) {
        if self.profiler.is_none() {
            self.profiler = Some(Profiler::new(&self.gpu));
        }
    }

    /// Whether [`Network::enable_profiling`] was called.
    pub fn is_profiling(&self) -> bool {
        self.profiler.is_some()
    }

    /// The profile measured since profiling began or since the last call, or `None` when
    /// not profiling. Blocks until the GPU has finished the submitted steps.
    pub fn take_profile(&mut self) -> Result<Option<Profile>, GraphError> {
        if self.profiler.is_none() {
            return Ok(None);
        }
        self.gpu.wait()?;
        self.account_train_wall();
        let Some(p) = &mut self.profiler else {
            return Ok(None);
        };
        Ok(Some(p.take()?))
    }

    /// After a wait: adds the time since the training clock's last mark to the training
    /// wall time and restarts the clock, so that the host work before the next training
    /// step (preparing its batch) counts too.
    fn account_train_wall(&mut self) {
        if let (Some(p), Some(t)) = (&mut self.profiler, self.train_clock) {
            let now = Instant::now();
            p.add_train_wall((now - t).as_secs_f64());
            self.train_clock = Some(now);
        }
    }

    /// The plan the network was built from.
    pub fn plan(&self) -> &Plan {
        &self.graph.plan
    }

    /// The largest batch a step accepts.
    pub fn batch(&self) -> usize {
        self.graph.batch
    }

    /// Uploads a batch (NHWC f32 images `[n, H, W, C]`, u32 labels `[n]`, `n <= batch`)
    /// and records forward (training mode), loss, backward, L2 and SGD into one command
    /// encoder, submits it and returns without waiting. `lr` goes into the learning-rate
    /// tensor; `step` (the global optimizer step) seeds this step's dropout masks.
    pub fn train_step(
        &mut self,
        images: &[f32],
        labels: &[u32],
        n: usize,
        lr: f32,
        step: u64,
    ) -> Result<(), GraphError> {
        let started = self.start_train_clock();
        self.upload(images, labels, n, Some((lr, step)))?;
        self.submit(n, true, true, started)
    }

    /// While profiling, starts the host clock of a training step; returns its start.
    fn start_train_clock(&mut self) -> Option<Instant> {
        let p = self.profiler.as_mut()?;
        let now = Instant::now();
        if let Some(t) = self.train_clock {
            p.add_train_wall((now - t).as_secs_f64());
        }
        self.train_clock = Some(now);
        Some(now)
    }

    /// Inference-mode forward and loss metrics (moving batch-norm statistics, no dropout)
    /// for validation or test batches; no wait.
    pub fn eval_step(
        &mut self,
        images: &[f32],
        labels: &[u32],
        n: usize,
    ) -> Result<(), GraphError> {
        // Inference between training steps is not training time.
        self.train_clock = None;
        self.upload(images, labels, n, None)?;
        self.submit(n, false, false, None)
    }

    /// Reads the metrics accumulated since the last call and resets them. Blocks until the
    /// GPU has finished the submitted steps: call it once per epoch or log interval.
    /// Training and evaluation steps add to the same accumulator, so take the training
    /// metrics before running validation batches.
    pub fn take_metrics(&mut self) -> Result<Metrics, GraphError> {
        let m = self.graph.metrics.read_f32(&self.gpu)?;
        self.graph.metrics.write_f32(&self.gpu, &[0.0; 4]);
        if self.profiler.is_some() {
            // The read above waited for every submitted step, so collecting the profile's
            // timestamps adds one small copy, not a stall.
            self.account_train_wall();
            if let Some(p) = &mut self.profiler {
                p.collect()?;
            }
        }
        let count = m[2] as f64;
        let per = |x: f32| if count > 0.0 { x as f64 / count } else { 0.0 };
        Ok(Metrics {
            loss_mean: per(m[0]),
            accuracy: per(m[1]),
            count: m[2] as u64,
        })
    }

    /// Every parameter and batch-norm moving statistic (`model/<param path>`), then every
    /// velocity (`optimizer/velocity/<param path>`), read back (blocking).
    pub fn export_state(&self) -> Result<Vec<NamedArray>, GraphError> {
        let mut out = Vec::new();
        for (path, shape, t) in self.state_tensors() {
            out.push(NamedArray {
                path,
                shape: shape.to_vec(),
                data: t.read_f32(&self.gpu)?,
            });
        }
        Ok(out)
    }

    /// Loads a state made by [`Network::export_state`] of the same architecture. Every
    /// path and shape is checked before anything is written; an error names the first
    /// missing, unknown or misshapen array.
    pub fn import_state(&mut self, state: &[NamedArray]) -> Result<(), GraphError> {
        let tensors = self.state_tensors();
        let wanted: HashMap<&str, (&[usize], &Tensor)> = tensors
            .iter()
            .map(|(path, shape, t)| (path.as_str(), (*shape, *t)))
            .collect();
        let mut given: HashMap<&str, &NamedArray> = HashMap::new();
        for a in state {
            let Some((shape, _)) = wanted.get(a.path.as_str()) else {
                return Err(GraphError::UnexpectedState {
                    path: a.path.clone(),
                });
            };
            if a.shape != *shape || a.data.len() != shape.iter().product::<usize>() {
                return Err(GraphError::StateShape {
                    path: a.path.clone(),
                    expected: shape.to_vec(),
                    found: a.shape.clone(),
                    len: a.data.len(),
                });
            }
            given.insert(&a.path, a);
        }
        if let Some((path, _, _)) = tensors
            .iter()
            .find(|(p, _, _)| !given.contains_key(p.as_str()))
        {
            return Err(GraphError::MissingState { path: path.clone() });
        }
        for (path, _, t) in &tensors {
            t.write_f32(&self.gpu, &given[path.as_str()].data);
        }
        Ok(())
    }

    /// Diagnostic hook (gradient checks): like [`Network::train_step`] without the SGD
    /// update, so that [`Network::read_gradient`] then sees the gradients of this batch's
    /// loss (mean cross-entropy plus L2 terms). Metrics accumulate as in a training step.
    pub fn compute_gradients(
        &mut self,
        images: &[f32],
        labels: &[u32],
        n: usize,
        step: u64,
    ) -> Result<(), GraphError> {
        let started = self.start_train_clock();
        self.upload(images, labels, n, Some((0.0, step)))?;
        self.submit(n, true, false, started)
    }

    /// Diagnostic hook: the current gradient of the trainable parameter at `path` (a
    /// [`ParamSpec`](crate::arch::ParamSpec) path, without `model/`). Blocks.
    pub fn read_gradient(&self, path: &str) -> Result<Vec<f32>, GraphError> {
        let grad = self
            .graph
            .params
            .iter()
            .find(|p| p.spec.path == path)
            .and_then(|p| p.grad.as_ref())
            .ok_or_else(|| GraphError::UnknownName {
                what: "trainable parameter",
                name: path.to_string(),
            })?;
        Ok(grad.read_f32(&self.gpu)?)
    }

    /// Diagnostic hook: the training-mode output of the node named `name`, all `batch`
    /// samples (rows past the last step's `n` hold stale values). Blocks.
    pub fn read_activation(&self, name: &str) -> Result<Vec<f32>, GraphError> {
        let i = self
            .graph
            .plan
            .nodes
            .iter()
            .position(|node| node.name == name)
            .ok_or_else(|| GraphError::UnknownName {
                what: "node",
                name: name.to_string(),
            })?;
        Ok(self.graph.act(i, true).read_f32(&self.gpu)?)
    }

    /// Every state array in checkpoint order: parameters and moving statistics under
    /// `model/`, then velocities under `optimizer/velocity/`.
    fn state_tensors(&self) -> Vec<(String, &[usize], &Tensor)> {
        let params = &self.graph.params;
        let model = params.iter().map(|p| {
            (
                format!("{MODEL}{}", p.spec.path),
                &p.spec.shape[..],
                &p.value,
            )
        });
        let velocities = params.iter().filter_map(|p| {
            let v = p.velocity.as_ref()?;
            Some((format!("{VELOCITY}{}", p.spec.path), &p.spec.shape[..], v))
        });
        model.chain(velocities).collect()
    }

    /// Checks a batch and queues its upload (and the learning rate and step, if training).
    fn upload(
        &mut self,
        images: &[f32],
        labels: &[u32],
        n: usize,
        train: Option<(f32, u64)>,
    ) -> Result<(), GraphError> {
        let g = &self.graph;
        let [h, w, c] = g.plan.input;
        if n == 0 || n > g.batch {
            return Err(GraphError::Batch(format!(
                "{n} samples given, the network takes 1 to {} per step",
                g.batch
            )));
        }
        if images.len() != n * h * w * c || labels.len() != n {
            return Err(GraphError::Batch(format!(
                "{n} samples of {h}x{w}x{c} need {} image values and {n} labels, got {} and {}",
                n * h * w * c,
                images.len(),
                labels.len()
            )));
        }
        if let Some(i) = labels.iter().position(|&l| l as usize >= g.plan.classes) {
            return Err(GraphError::Batch(format!(
                "label {} of sample {i} is out of range for {} classes",
                labels[i], g.plan.classes
            )));
        }
        let queue = &self.gpu.queue;
        queue.write_buffer(g.images.buffer(), 0, bytemuck::cast_slice(images));
        queue.write_buffer(g.labels.buffer(), 0, bytemuck::cast_slice(labels));
        if let Some((lr, step)) = train {
            queue.write_buffer(g.lr.buffer(), 0, bytemuck::bytes_of(&lr));
            // Dropout masks hash the step's low 32 bits.
            queue.write_buffer(g.step.buffer(), 0, bytemuck::bytes_of(&(step as u32)));
        }
        self.prepare(n, train.is_some())
    }

    /// Builds (once) the programs of batch size `n` in the given mode.
    fn prepare(&mut self, n: usize, train: bool) -> Result<(), GraphError> {
        if !self.steps.contains_key(&(n, train)) {
            let mut prog = self.graph.forward(&self.gpu, n, train)?;
            if train {
                prog.extend(self.graph.backward(&self.gpu, n)?);
            }
            self.steps.insert((n, train), prog);
        }
        Ok(())
    }

    /// Records the step's programs into one encoder and one compute pass and submits.
    /// While profiling, each launch is timed on the GPU, and a training step that began at
    /// `started` on the host.
    fn submit(
        &mut self,
        n: usize,
        train: bool,
        update: bool,
        started: Option<Instant>,
    ) -> Result<(), GraphError> {
        let prog = &self.steps[&(n, train)];
        let mut enc = self
            .gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some(if train { "train step" } else { "eval step" }),
            });
        if train {
            for &i in &self.graph.clears {
                enc.clear_buffer(self.graph.grad(i).buffer(), 0, None);
            }
        }
        if let Some(p) = &mut self.profiler {
            let launches = prog.launches.len() + self.update.launches.len();
            p.begin_step(launches)?;
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
                p.record(prog, &mut pass);
                if update {
                    p.record(&self.update, &mut pass);
                }
            }
            p.end_step(&mut enc, train);
        } else {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            prog.record(&mut pass);
            if update {
                self.update.record(&mut pass);
            }
        }
        self.gpu.queue.submit([enc.finish()]);
        if let (Some(p), Some(t)) = (&mut self.profiler, started) {
            p.add_train_host(t.elapsed().as_secs_f64());
        }
        Ok(())
    }
}
