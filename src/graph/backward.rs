//! Backward programs: the backward rule of every node kind, in one exhaustive match, run in
//! reverse plan order; then the L2 gradients. Parameter gradients are overwritten (each
//! parameter has one producer); input gradients follow the routes of `build`.

use crate::arch::NodeKind;
use crate::gpu::{Gpu, GpuError, Program, Tensor};
use crate::graph::build::{Graph, Route, Saved};
use crate::graph::forward::pool_shape;
use crate::ops::conv::{self, Conv2dShape};
use crate::ops::depthwise::{self, DepthwiseShape};
use crate::ops::norm::{self, BatchNormShape};
use crate::ops::{elementwise as ew, matmul, optim, pool};

impl Graph {
    /// Backward of every node (reverse order) for the first `n` samples, from the logits'
    /// gradient that the loss wrote; leaves every trainable parameter's gradient, L2 term
    /// included, in its `grad`.
    pub fn backward(&self, gpu: &Gpu, n: usize) -> Result<Program, GpuError> {
        let mut prog = Program::new();
        for i in (1..self.plan.nodes.len()).rev() {
            if !self.needs_grad[i] {
                continue;
            }
            prog.extend(self.backward_node(gpu, i, n)?);
            for &p in &self.node_params[i] {
                let p = &self.params[p];
                if let (Some(_), Some(coef), Some(g)) = (p.reg_slot, p.spec.l2, &p.grad) {
                    prog.extend(optim::l2_backward(gpu, coef, &p.value, g)?);
                }
            }
        }
        Ok(prog)
    }

    /// Where the gradient of node `i`'s input `slot` goes: `None` when nobody needs it.
    fn sink(&self, i: usize, slot: usize) -> Option<&Tensor> {
        let input = self.plan.nodes[i].inputs[slot];
        match self.routes[i][slot] {
            Route::Skip => None,
            Route::Write => Some(self.grad(input)),
            Route::Accumulate | Route::Discard => Some(self.scratch(input)),
        }
    }

    /// Adds a contribution written to the scratch of input `slot` into its gradient.
    fn settle(&self, gpu: &Gpu, i: usize, slot: usize) -> Result<Program, GpuError> {
        let input = self.plan.nodes[i].inputs[slot];
        match self.routes[i][slot] {
            Route::Accumulate => ew::accumulate(gpu, self.scratch(input), self.grad(input)),
            Route::Skip | Route::Write | Route::Discard => Ok(Program::new()),
        }
    }

    /// One kernel-computed input gradient: `write(dx)` into the sink, then settle.
    fn input_grad(
        &self,
        gpu: &Gpu,
        i: usize,
        slot: usize,
        write: impl FnOnce(&Tensor) -> Result<Program, GpuError>,
    ) -> Result<Program, GpuError> {
        let mut prog = Program::new();
        if let Some(dx) = self.sink(i, slot) {
            prog.extend(write(dx)?);
            prog.extend(self.settle(gpu, i, slot)?);
        }
        Ok(prog)
    }

    fn backward_node(&self, gpu: &Gpu, i: usize, n: usize) -> Result<Program, GpuError> {
        let node = &self.plan.nodes[i];
        let dy = self.grad(i);
        let x = || self.act(node.inputs[0], true);
        let (h, w, c) = self.hwc(node.inputs.first().copied().unwrap_or(0));
        let grad_of = |role: &str| {
            self.param(i, role)
                .grad
                .as_ref()
                .expect("trainable parameters have gradients")
        };
        let mut prog = Program::new();
        match node.kind {
            NodeKind::Input => {}
            NodeKind::Conv2d {
                filters,
                kernel,
                stride,
                padding,
                ..
            } => {
                let wt = &self.param(i, "kernel").value;
                let (oh, ow, _) = self.hwc(i);
                prog.extend(matmul::bias_backward(
                    gpu,
                    n * oh * ow,
                    filters,
                    dy,
                    grad_of("bias"),
                )?);
                if kernel == 1 && stride == 1 {
                    let m = n * h * w;
                    let dw = grad_of("kernel");
                    prog.extend(matmul::matmul_backward_weight(
                        gpu,
                        m,
                        c,
                        filters,
                        x(),
                        dy,
                        dw,
                    )?);
                    prog.extend(self.input_grad(gpu, i, 0, |dx| {
                        matmul::matmul_backward_input(gpu, m, c, filters, dy, wt, dx)
                    })?);
                } else {
                    let s = Conv2dShape {
                        n,
                        h,
                        w,
                        c,
                        k: filters,
                        kh: kernel,
                        kw: kernel,
                        stride,
                        padding,
                    };
                    let dw = grad_of("kernel");
                    prog.extend(conv::conv2d_backward_weight(gpu, &s, x(), dy, dw)?);
                    prog.extend(self.input_grad(gpu, i, 0, |dx| {
                        conv::conv2d_backward_input(gpu, &s, dy, wt, dx)
                    })?);
                }
            }
            NodeKind::Depthwise {
                kernel,
                stride,
                padding,
            } => {
                let s = DepthwiseShape {
                    n,
                    h,
                    w,
                    c,
                    kh: kernel,
                    kw: kernel,
                    stride,
                    padding,
                };
                let wt = &self.param(i, "depthwise_kernel").value;
                let dw = grad_of("depthwise_kernel");
                prog.extend(depthwise::depthwise_backward_weight(gpu, &s, x(), dy, dw)?);
                prog.extend(self.input_grad(gpu, i, 0, |dx| {
                    depthwise::depthwise_backward_input(gpu, &s, dy, wt, dx)
                })?);
            }
            NodeKind::Dense { units } => {
                let k = h * w * c;
                let wt = &self.param(i, "kernel").value;
                prog.extend(matmul::bias_backward(gpu, n, units, dy, grad_of("bias"))?);
                let dw = grad_of("kernel");
                prog.extend(matmul::matmul_backward_weight(
                    gpu,
                    n,
                    k,
                    units,
                    x(),
                    dy,
                    dw,
                )?);
                prog.extend(self.input_grad(gpu, i, 0, |dx| {
                    matmul::matmul_backward_input(gpu, n, k, units, dy, wt, dx)
                })?);
            }
            NodeKind::MaxPool {
                size,
                stride,
                padding,
            } => {
                let Saved::MaxPool { argmax } = &self.saved[i] else {
                    unreachable!("max-pool nodes save their argmax")
                };
                let s = pool_shape(n, (h, w, c), size, stride, padding);
                prog.extend(self.input_grad(gpu, i, 0, |dx| {
                    pool::max_pool_backward(gpu, &s, dy, argmax, dx)
                })?);
            }
            NodeKind::AvgPool {
                size,
                stride,
                padding,
            } => {
                let s = pool_shape(n, (h, w, c), size, stride, padding);
                prog.extend(
                    self.input_grad(gpu, i, 0, |dx| pool::avg_pool_backward(gpu, &s, dy, dx))?,
                );
            }
            NodeKind::GlobalAvgPool => {
                prog.extend(self.input_grad(gpu, i, 0, |dx| {
                    pool::global_avg_pool_backward(gpu, n, h, w, c, dy, dx)
                })?);
            }
            NodeKind::BatchNorm { .. } => {
                let Saved::BatchNorm { mean, invstd } = &self.saved[i] else {
                    unreachable!("batch-norm nodes save their statistics")
                };
                let s = BatchNormShape { m: n * h * w, c };
                let gamma = &self.param(i, "gamma").value;
                let (dgamma, dbeta) = (grad_of("gamma"), grad_of("beta"));
                // The kernel computes dx with the parameter gradients; a Discard route gives
                // it a scratch to write when the input's gradient is not needed.
                let dx = self.sink(i, 0).expect("batch norm always has a dx target");
                prog.extend(norm::batch_norm_backward(
                    gpu,
                    &s,
                    x(),
                    dy,
                    gamma,
                    mean,
                    invstd,
                    dx,
                    dgamma,
                    dbeta,
                )?);
                prog.extend(self.settle(gpu, i, 0)?);
            }
            NodeKind::Relu => {
                let y = self.act(i, true);
                prog.extend(self.input_grad(gpu, i, 0, |dx| ew::relu_backward(gpu, y, dy, dx))?);
            }
            NodeKind::Dropout { rate } => {
                let seed = self.dropout_seeds[i];
                prog.extend(self.input_grad(gpu, i, 0, |dx| {
                    ew::dropout_backward(gpu, rate, seed, &self.step, dy, dx)
                })?);
            }
            NodeKind::Add => {
                // Both inputs receive dy unchanged; a first contribution adds into a
                // gradient cleared before the step.
                for (slot, &input) in node.inputs.iter().enumerate() {
                    if self.routes[i][slot] != Route::Skip {
                        prog.extend(ew::accumulate(gpu, dy, self.grad(input))?);
                    }
                }
            }
            NodeKind::Concat => {
                let (_, _, c2) = self.hwc(node.inputs[1]);
                let da = self.sink(i, 0).expect("a needed concat writes both inputs");
                let db = self.sink(i, 1).expect("a needed concat writes both inputs");
                prog.extend(ew::concat_backward(gpu, n * h * w, c, c2, dy, da, db)?);
                prog.extend(self.settle(gpu, i, 0)?);
                prog.extend(self.settle(gpu, i, 1)?);
            }
        }
        Ok(prog)
    }
}
