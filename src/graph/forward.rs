//! Forward programs: every node's kernel in plan order, the L2 terms, the loss and the
//! metrics, in training mode (batch statistics, dropout) or inference mode.

use crate::arch::NodeKind;
use crate::gpu::{Gpu, GpuError, Program};
use crate::graph::build::{Graph, Saved};
use crate::ops::conv::{self, Conv2dShape};
use crate::ops::depthwise::{self, DepthwiseShape};
use crate::ops::norm::{self, BatchNormShape};
use crate::ops::pool::{self, PoolShape};
use crate::ops::{elementwise as ew, loss, matmul, optim};

impl Graph {
    /// Forward of every node for the first `n` samples, then the L2 terms, the loss (which
    /// also writes the logits' gradient) and the metrics.
    pub fn forward(&self, gpu: &Gpu, n: usize, train: bool) -> Result<Program, GpuError> {
        let mut prog = Program::new();
        for i in 1..self.plan.nodes.len() {
            prog.extend(self.forward_node(gpu, i, n, train)?);
        }
        for p in &self.params {
            if let (Some(slot), Some(coef)) = (p.reg_slot, p.spec.l2) {
                prog.extend(optim::l2_loss(gpu, coef, &p.value, &self.reg, slot)?);
            }
        }
        let last = self.plan.nodes.len() - 1;
        prog.extend(loss::softmax_xent_forward(
            gpu,
            n,
            self.plan.classes,
            self.act(last, train),
            &self.labels,
            self.grad(last),
            &self.loss,
            &self.correct,
        )?);
        prog.extend(loss::metrics_accumulate(
            gpu,
            n,
            &self.loss,
            &self.correct,
            &self.reg,
            &self.metrics,
        )?);
        Ok(prog)
    }

    fn forward_node(
        &self,
        gpu: &Gpu,
        i: usize,
        n: usize,
        train: bool,
    ) -> Result<Program, GpuError> {
        let node = &self.plan.nodes[i];
        let x = || self.act(node.inputs[0], train);
        let y = self.act(i, true);
        let (h, w, c) = self.hwc(node.inputs.first().copied().unwrap_or(0));
        Ok(match node.kind {
            NodeKind::Input => Program::new(),
            NodeKind::Conv2d {
                filters,
                kernel,
                stride,
                padding,
                ..
            } => {
                let (wt, b) = (&self.param(i, "kernel").value, &self.param(i, "bias").value);
                if kernel == 1 && stride == 1 {
                    matmul::matmul_forward(gpu, n * h * w, c, filters, x(), wt, b, y)?
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
                    conv::conv2d_forward(gpu, &s, x(), wt, b, y)?
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
                depthwise::depthwise_forward(gpu, &s, x(), wt, y)?
            }
            NodeKind::Dense { units } => {
                let (wt, b) = (&self.param(i, "kernel").value, &self.param(i, "bias").value);
                matmul::matmul_forward(gpu, n, h * w * c, units, x(), wt, b, y)?
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
                pool::max_pool_forward(gpu, &s, x(), y, argmax)?
            }
            NodeKind::AvgPool {
                size,
                stride,
                padding,
            } => {
                let s = pool_shape(n, (h, w, c), size, stride, padding);
                pool::avg_pool_forward(gpu, &s, x(), y)?
            }
            NodeKind::GlobalAvgPool => pool::global_avg_pool_forward(gpu, n, h, w, c, x(), y)?,
            NodeKind::BatchNorm { momentum, epsilon } => {
                let s = BatchNormShape { m: n * h * w, c };
                let gamma = &self.param(i, "gamma").value;
                let beta = &self.param(i, "beta").value;
                let mean = &self.param(i, "moving_mean").value;
                let var = &self.param(i, "moving_variance").value;
                if train {
                    let Saved::BatchNorm {
                        mean: saved_mean,
                        invstd,
                    } = &self.saved[i]
                    else {
                        unreachable!("batch-norm nodes save their statistics")
                    };
                    norm::batch_norm_train_forward(
                        gpu,
                        &s,
                        momentum,
                        epsilon,
                        x(),
                        gamma,
                        beta,
                        mean,
                        var,
                        saved_mean,
                        invstd,
                        y,
                    )?
                } else {
                    norm::batch_norm_infer_forward(
                        gpu,
                        &s,
                        epsilon,
                        x(),
                        gamma,
                        beta,
                        mean,
                        var,
                        y,
                    )?
                }
            }
            NodeKind::Relu => ew::relu_forward(gpu, x(), y)?,
            NodeKind::Dropout { rate } => {
                if train {
                    let seed = self.dropout_seeds[i];
                    ew::dropout_forward(gpu, rate, seed, &self.step, x(), y)?
                } else {
                    // Consumers read the input directly (see `Graph::act`).
                    Program::new()
                }
            }
            NodeKind::Add => {
                let b = self.act(node.inputs[1], train);
                ew::add_forward(gpu, x(), b, y)?
            }
            NodeKind::Concat => {
                let (_, _, c2) = self.hwc(node.inputs[1]);
                let b = self.act(node.inputs[1], train);
                ew::concat_forward(gpu, n * h * w, c, c2, x(), b, y)?
            }
        })
    }
}

/// The pooling shape of a node whose input is `h x w x c`.
pub(super) fn pool_shape(
    n: usize,
    (h, w, c): (usize, usize, usize),
    size: usize,
    stride: usize,
    padding: crate::ops::Padding,
) -> PoolShape {
    PoolShape {
        n,
        h,
        w,
        c,
        size,
        stride,
        padding,
    }
}
