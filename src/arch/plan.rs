//! The plan IR: a flat, topologically ordered list of primitive nodes (one per kernel
//! family) with per-sample output shapes and parameter specs. `arch` produces it, the graph
//! builds GPU tensors and programs from it. The contract is brief/PLAN.md.

use super::ArchError;
use crate::ops::Padding;

/// One primitive operation.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum NodeKind {
    /// The image batch, per-sample shape [H, W, C]. Always node 0, no inputs.
    Input,
    /// Convolution with bias (1x1 stride-1 ones are run as matrix multiplies by the graph).
    /// Params: "kernel" [KH, KW, C, filters] GlorotUniform(fan_in KH*KW*C, fan_out
    /// KH*KW*filters), "bias" [filters] Zeros. `l2`: L2 coefficient on the kernel.
    Conv2d {
        /// Output channels K.
        filters: usize,
        /// Window size KH = KW.
        kernel: usize,
        /// Stride in H and W.
        stride: usize,
        /// Padding rule.
        padding: Padding,
        /// L2 coefficient on the kernel.
        l2: Option<f32>,
    },
    /// Depthwise convolution, multiplier 1, no bias. Params: "depthwise_kernel" [KH, KW, C]
    /// GlorotUniform(fan_in KH*KW*C, fan_out KH*KW*1) (Keras shape (kh, kw, C, 1)).
    Depthwise {
        /// Window size KH = KW.
        kernel: usize,
        /// Stride in H and W.
        stride: usize,
        /// Padding rule.
        padding: Padding,
    },
    /// Dense with bias on a [C] input. Params: "kernel" [C, units] GlorotUniform(C, units),
    /// "bias" [units] Zeros. The final classifier; softmax lives in the loss.
    Dense {
        /// Output units.
        units: usize,
    },
    /// Max pooling; padding cells are ignored.
    MaxPool {
        /// Window size.
        size: usize,
        /// Stride.
        stride: usize,
        /// Padding rule.
        padding: Padding,
    },
    /// Divides by the count of real (unpadded) cells.
    AvgPool {
        /// Window size.
        size: usize,
        /// Stride.
        stride: usize,
        /// Padding rule.
        padding: Padding,
    },
    /// [H, W, C] -> [C].
    GlobalAvgPool,
    /// Params: "gamma" Ones, "beta" Zeros (trainable), "moving_mean" Zeros,
    /// "moving_variance" Ones (non-trainable); all [C].
    BatchNorm {
        /// Moving-average momentum.
        momentum: f32,
        /// Added to the variance.
        epsilon: f32,
    },
    /// max(x, 0).
    Relu,
    /// Inverted dropout (training only; identity in inference).
    Dropout {
        /// Fraction dropped.
        rate: f32,
    },
    /// inputs[0] + inputs[1], same shape (skip connections).
    Add,
    /// Channel concatenation of inputs[0] then inputs[1] (same H, W): residual cells.
    Concat,
}

/// How a parameter starts.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Init {
    /// Uniform in +-sqrt(6 / (fan_in + fan_out)).
    GlorotUniform {
        /// Fan-in from the Keras kernel shape.
        fan_in: usize,
        /// Fan-out from the Keras kernel shape.
        fan_out: usize,
    },
    /// All 0.
    Zeros,
    /// All 1.
    Ones,
}

/// One parameter tensor of a node.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ParamSpec {
    /// "<node name>/<param>", e.g. "L3_sep3x3_64/pointwise/kernel" (checkpoint path under
    /// "model/").
    pub path: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its initial values.
    pub init: Init,
    /// Whether SGD updates it (false for BN moving statistics).
    pub trainable: bool,
    /// L2 coefficient (loss += l2 * sum(w^2)), kernels of the HiveNAS cells only.
    pub l2: Option<f32>,
}

impl ParamSpec {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// One node of the plan.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlanNode {
    /// What it computes.
    pub kind: NodeKind,
    /// Indices of earlier nodes (empty for Input; 2 for Add and Concat; else 1).
    pub inputs: Vec<usize>,
    /// Per-sample output shape: [H, W, C] or [C].
    pub shape: Vec<usize>,
    /// Unique node name, e.g. "L3_sep3x3_64/depthwise", "stem_in0_conv3x3_32bnrelu/bn",
    /// "head/dense", "sc_L1_L3/projection".
    pub name: String,
    /// The layer (op) it belongs to, for the summary table, e.g. "L3_sep3x3_64".
    pub layer: String,
    /// The op name, e.g. "sep3x3_64", and its 0-based position in the candidate
    /// (None for stems, head, skip projections).
    pub op: String,
    /// See `op`.
    pub position: Option<usize>,
    /// This node's parameters (empty for parameter-free nodes).
    pub params: Vec<ParamSpec>,
}

/// A lowered, shape-checked candidate.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// The candidate's op names (no stems, no "input"/"output" words).
    pub ops: Vec<String>,
    /// Hex SHA-1 of the op names joined with no separator.
    pub sha1: String,
    /// Per-sample input shape [H, W, C].
    pub input: [usize; 3],
    /// Output units of the Dense head.
    pub classes: usize,
    /// Topological order; node 0 is Input; the last node is the Dense classifier
    /// (shape [classes]).
    pub nodes: Vec<PlanNode>,
}

/// Bytes per element of every tensor (f32).
const ELEMENT_BYTES: u128 = 4;
/// Buffers per activation element in [`Plan::memory_estimate`]: the output, its gradient,
/// and room for scratch (pooling argmax, batch-norm normalized values, partial sums).
const ACTIVATION_COPIES: u128 = 3;
/// Buffers per parameter element: value, gradient, velocity, and reduction scratch.
const PARAM_COPIES: u128 = 4;

impl Plan {
    /// Lowers a candidate; see [`super::lower`].
    pub fn new(
        arch: &super::Arch,
        config: &super::ArchConfig,
        input: [usize; 3],
        classes: usize,
    ) -> Result<Self, ArchError> {
        super::lower(arch, config, input, classes)
    }

    /// Kernels, biases, BN gamma and beta: Keras's `model.trainable_weights` count.
    pub fn trainable_params(&self) -> usize {
        self.param_count(true)
    }

    /// BN moving means and variances.
    pub fn non_trainable_params(&self) -> usize {
        self.param_count(false)
    }

    fn param_count(&self, trainable: bool) -> usize {
        self.params()
            .filter(|p| p.trainable == trainable)
            .map(ParamSpec::numel)
            .sum()
    }

    /// Every parameter, in node order.
    pub fn params(&self) -> impl Iterator<Item = &ParamSpec> {
        self.nodes.iter().flat_map(|n| n.params.iter())
    }

    /// Forward FLOPs per image (estimates, 2 per multiply-add); see [`Plan::node_flops`].
    pub fn flops_forward(&self) -> f64 {
        (0..self.nodes.len()).map(|i| self.node_flops(i).0).sum()
    }

    /// Backward FLOPs per image (estimates); see [`Plan::node_flops`].
    pub fn flops_backward(&self) -> f64 {
        (0..self.nodes.len()).map(|i| self.node_flops(i).1).sum()
    }

    /// Forward and backward FLOPs per image of node `i`. Forward: 2 per multiply-add plus
    /// one per bias add for Conv2d/Depthwise/Dense; one per window cell for pools (plus a
    /// divide per output for average pools); 4 per element for batch norm; one per element
    /// for ReLU, dropout and add; none for concat. Backward: twice the forward for
    /// Conv2d/Depthwise/Dense (input gradient and weight gradient, each one forward's
    /// multiply-adds) except once when fed by the image (no input gradient), twice for
    /// batch norm, once for the rest.
    ///
    /// # Panics
    /// When `i` is out of range.
    pub fn node_flops(&self, i: usize) -> (f64, f64) {
        let node = &self.nodes[i];
        let out: f64 = node.shape.iter().product::<usize>() as f64;
        let in_shape: &[usize] = node.inputs.first().map_or(&[], |&j| &self.nodes[j].shape);
        let in_elems: f64 = in_shape.iter().product::<usize>() as f64;
        let in_channels = in_shape.last().copied().unwrap_or(0) as f64;
        let from_image = node.inputs.first() == Some(&0);
        let weighted = |fwd: f64| (fwd, if from_image { fwd } else { 2.0 * fwd });
        match node.kind {
            NodeKind::Input => (0.0, 0.0),
            NodeKind::Conv2d { kernel, .. } => {
                let k2 = (kernel * kernel) as f64;
                weighted(2.0 * out * k2 * in_channels + out)
            }
            NodeKind::Depthwise { kernel, .. } => weighted(2.0 * out * (kernel * kernel) as f64),
            NodeKind::Dense { .. } => weighted(2.0 * out * in_elems + out),
            NodeKind::MaxPool { size, .. } => {
                let f = out * (size * size) as f64;
                (f, f)
            }
            NodeKind::AvgPool { size, .. } => {
                let f = out * (size * size) as f64 + out;
                (f, f)
            }
            NodeKind::GlobalAvgPool => (in_elems + out, in_elems),
            NodeKind::BatchNorm { .. } => (4.0 * out, 8.0 * out),
            NodeKind::Relu | NodeKind::Dropout { .. } | NodeKind::Add => (out, out),
            NodeKind::Concat => (0.0, 0.0),
        }
    }

    /// Bytes of the largest single activation (or parameter/gradient) tensor at this batch
    /// size; an error naming the node and the largest batch that fits when over `limit`.
    pub fn check_memory(&self, batch: usize, limit_bytes: u64) -> Result<(), ArchError> {
        let (name, bytes) = self.largest_tensor(batch);
        if bytes <= u128::from(limit_bytes) {
            return Ok(());
        }
        let (act_node, per_sample) = self.largest_activation();
        let param_max = self
            .params()
            .map(|p| p.numel() as u128 * ELEMENT_BYTES)
            .max();
        let advice = if param_max.is_some_and(|p| p > u128::from(limit_bytes)) {
            "A parameter tensor alone is over the limit at any batch size; use fewer filters \
             or a smaller input"
                .to_string()
        } else {
            let fit = u128::from(limit_bytes) / (per_sample.max(1) * ELEMENT_BYTES);
            if fit == 0 {
                format!(
                    "Even one image's {act_node:?} tensor is over the limit; use a smaller \
                     input or fewer filters"
                )
            } else {
                format!("The largest batch that fits is {fit}; use --batch-size {fit} or less")
            }
        };
        Err(ArchError::TooLarge {
            node: name,
            bytes,
            batch,
            limit: limit_bytes,
            advice,
        })
    }

    /// An estimate of the memory a network of this plan takes at `batch`, in bytes: every
    /// activation with its gradient and scratch, every parameter with its gradient and
    /// velocity. Checked against allocations in tests/graph_network.rs.
    pub fn memory_estimate(&self, batch: usize) -> u128 {
        let (per_sample, fixed) = self.memory_terms();
        per_sample * batch as u128 + fixed
    }

    /// The bytes per sample and the bytes independent of the batch of
    /// [`Plan::memory_estimate`].
    fn memory_terms(&self) -> (u128, u128) {
        let activations: u128 = self
            .nodes
            .iter()
            .map(|n| n.shape.iter().product::<usize>() as u128)
            .sum();
        let params: u128 = self.params().map(|p| p.numel() as u128).sum();
        (
            activations * ACTIVATION_COPIES * ELEMENT_BYTES,
            params * PARAM_COPIES * ELEMENT_BYTES,
        )
    }

    /// An error when a network of this plan at `batch` would not fit in `budget` bytes,
    /// naming both and the largest batch that fits. `device` says what the budget is.
    pub fn check_total_memory(
        &self,
        batch: usize,
        budget: u64,
        device: &str,
    ) -> Result<(), ArchError> {
        let (per_sample, fixed) = self.memory_terms();
        let need = per_sample * batch as u128 + fixed;
        if need <= u128::from(budget) {
            return Ok(());
        }
        let fit = u128::from(budget).saturating_sub(fixed) / per_sample.max(1);
        let advice = if fit == 0 {
            "Even one image does not fit; use a shorter candidate, fewer filters or a smaller \
             input"
                .to_string()
        } else {
            format!(
                "The largest batch that fits is {fit}; use --batch-size {fit} or less, or a \
                 smaller candidate"
            )
        };
        Err(ArchError::TooLargeTotal {
            bytes: need,
            batch,
            budget,
            device: device.to_string(),
            advice,
        })
    }

    /// The name and size in bytes of the largest activation or parameter tensor at this
    /// batch size.
    pub fn largest_tensor(&self, batch: usize) -> (String, u128) {
        let (node, per_sample) = self.largest_activation();
        let mut best = (node, per_sample * batch as u128 * ELEMENT_BYTES);
        for p in self.params() {
            let bytes = p.numel() as u128 * ELEMENT_BYTES;
            if bytes > best.1 {
                best = (p.path.clone(), bytes);
            }
        }
        best
    }

    /// The node with the most elements per sample, and that count.
    fn largest_activation(&self) -> (String, u128) {
        self.nodes
            .iter()
            .map(|n| {
                (
                    n.name.clone(),
                    n.shape.iter().map(|&d| d as u128).product::<u128>(),
                )
            })
            .fold((String::new(), 0), |a, b| if b.1 > a.1 { b } else { a })
    }
}
