//! Checking a plan, allocating every tensor of a network and initializing its parameters.

use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::arch::{Init, NodeKind, ParamSpec, Plan, PlanNode};
use crate::gpu::{Gpu, Tensor};
use crate::graph::GraphError;

/// One parameter (or batch-norm moving statistic) and its training state.
pub(super) struct Param {
    pub spec: ParamSpec,
    pub value: Tensor,
    /// Gradient, for trainable parameters.
    pub grad: Option<Tensor>,
    /// SGD velocity, for trainable parameters.
    pub velocity: Option<Tensor>,
    /// Slot of its L2 term in the `reg` tensor, for trainable parameters with `l2`.
    pub reg_slot: Option<usize>,
}

/// What a node's forward keeps for its backward, besides its input and output.
pub(super) enum Saved {
    None,
    BatchNorm { mean: Tensor, invstd: Tensor },
    MaxPool { argmax: Tensor },
}

/// How one consumer's gradient reaches one of its inputs. Gradients are summed over
/// consumers: in backward (reverse) order the first contribution overwrites the input's
/// gradient and the later ones are written to its scratch and then accumulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// No parameter lies upstream of the input: its gradient is never computed.
    Skip,
    /// The first contribution: overwrite the gradient.
    Write,
    /// A later contribution: write the scratch, then add it to the gradient.
    Accumulate,
    /// The kernel writes an input gradient that nobody needs (batch norm and concat
    /// compute theirs together with others): write the scratch and drop it.
    Discard,
}

/// A network's tensors and the facts about its plan that programs are built from.
pub(super) struct Graph {
    pub plan: Plan,
    /// The largest batch the tensors hold.
    pub batch: usize,
    /// NHWC f32 images `[batch, H, W, C]`: node 0's output.
    pub images: Tensor,
    /// u32 `[batch]`.
    pub labels: Tensor,
    /// Each node's output `[batch, shape..]` (None for node 0, which is `images`).
    pub acts: Vec<Option<Tensor>>,
    /// `d_` of each node's output, where a parameter lies upstream.
    pub grads: Vec<Option<Tensor>>,
    /// Where later gradient contributions (and discarded ones) are written first.
    pub scratch: Vec<Option<Tensor>>,
    pub saved: Vec<Saved>,
    pub params: Vec<Param>,
    /// Indices into `params`, per node.
    pub node_params: Vec<Vec<usize>>,
    /// Per node, per input slot.
    pub routes: Vec<Vec<Route>>,
    /// Whether the gradient of the node's output is needed.
    pub needs_grad: Vec<bool>,
    /// Gradients that the first contribution accumulates into (an `Add` passes its own
    /// gradient on unchanged), so they are cleared before each training step.
    pub clears: Vec<usize>,
    /// Per node, the seed of its dropout mask.
    pub dropout_seeds: Vec<u32>,
    /// Per-sample cross-entropy `[batch]`, correctness `[batch]`, L2 terms `[max(R, 1)]`,
    /// metrics `[4]` (loss sum, correct count, samples, unused).
    pub loss: Tensor,
    pub correct: Tensor,
    pub reg: Tensor,
    pub metrics: Tensor,
    /// Learning rate f32 `[1]` and optimizer step u32 `[1]`, written by the host per step.
    pub lr: Tensor,
    pub step: Tensor,
}

/// Parameter roles ("kernel", "gamma", ...) and the shapes a node needs for them.
type ParamShapes = Vec<(&'static str, Vec<usize>)>;

/// The output shape `node` must have given its inputs' shapes, and the parameter shapes it
/// needs, or why it cannot be built.
fn expected_shapes(
    node: &PlanNode,
    inputs: &[&[usize]],
) -> Result<(Vec<usize>, ParamShapes), String> {
    let arity = match node.kind {
        NodeKind::Input => 0,
        NodeKind::Add | NodeKind::Concat => 2,
        _ => 1,
    };
    if inputs.len() != arity {
        return Err(format!(
            "it has {} inputs, its kind takes {arity}",
            inputs.len()
        ));
    }
    let image = |s: &[usize]| -> Result<(usize, usize, usize), String> {
        match *s {
            [h, w, c] => Ok((h, w, c)),
            _ => Err(format!("its input has shape {s:?}, it needs [H, W, C]")),
        }
    };
    let window = |h: usize, w: usize, k: usize, stride: usize, pad: crate::ops::Padding| {
        let oh = pad.output_and_pad(h, k, stride);
        let ow = pad.output_and_pad(w, k, stride);
        match (oh, ow, stride) {
            (Some((oh, _)), Some((ow, _)), 1..) if k >= 1 => Ok((oh, ow)),
            _ => Err(format!(
                "a {k}x{k} window with stride {stride} and {pad:?} padding does not fit \
                 {h}x{w}"
            )),
        }
    };
    Ok(match node.kind {
        NodeKind::Input => (node.shape.clone(), vec![]),
        NodeKind::Conv2d {
            filters,
            kernel,
            stride,
            padding,
            ..
        } => {
            let (h, w, c) = image(inputs[0])?;
            let (oh, ow) = window(h, w, kernel, stride, padding)?;
            let params = vec![
                ("kernel", vec![kernel, kernel, c, filters]),
                ("bias", vec![filters]),
            ];
            (vec![oh, ow, filters], params)
        }
        NodeKind::Depthwise {
            kernel,
            stride,
            padding,
        } => {
            let (h, w, c) = image(inputs[0])?;
            let (oh, ow) = window(h, w, kernel, stride, padding)?;
            (
                vec![oh, ow, c],
                vec![("depthwise_kernel", vec![kernel, kernel, c])],
            )
        }
        NodeKind::Dense { units } => {
            let [c] = *inputs[0] else {
                return Err(format!("its input has shape {:?}, it needs [C]", inputs[0]));
            };
            let params = vec![("kernel", vec![c, units]), ("bias", vec![units])];
            (vec![units], params)
        }
        NodeKind::MaxPool {
            size,
            stride,
            padding,
        }
        | NodeKind::AvgPool {
            size,
            stride,
            padding,
        } => {
            let (h, w, c) = image(inputs[0])?;
            let (oh, ow) = window(h, w, size, stride, padding)?;
            (vec![oh, ow, c], vec![])
        }
        NodeKind::GlobalAvgPool => {
            let (_, _, c) = image(inputs[0])?;
            (vec![c], vec![])
        }
        NodeKind::BatchNorm { .. } => {
            let c = *inputs[0].last().ok_or("its input has no channels")?;
            let stats = ["gamma", "beta", "moving_mean", "moving_variance"];
            (inputs[0].to_vec(), stats.map(|s| (s, vec![c])).to_vec())
        }
        NodeKind::Relu | NodeKind::Dropout { .. } => (inputs[0].to_vec(), vec![]),
        NodeKind::Add => {
            if inputs[0] != inputs[1] {
                return Err(format!(
                    "it adds shapes {:?} and {:?}",
                    inputs[0], inputs[1]
                ));
            }
            (inputs[0].to_vec(), vec![])
        }
        NodeKind::Concat => {
            if node.inputs[0] == node.inputs[1] {
                return Err("it concatenates a tensor with itself".into());
            }
            let (h, w, c1) = image(inputs[0])?;
            let (h2, w2, c2) = image(inputs[1])?;
            if (h, w) != (h2, w2) {
                return Err(format!("it concatenates {h}x{w} with {h2}x{w2}"));
            }
            (vec![h, w, c1 + c2], vec![])
        }
    })
}

/// The last component of a parameter path ("kernel", "gamma", ...).
pub(super) fn role(spec: &ParamSpec) -> &str {
    spec.path.rsplit('/').next().unwrap_or(&spec.path)
}

/// Checks that every node can be built: node 0 is the only input, inputs come earlier,
/// shapes follow from the inputs, parameters have the paths and shapes their kind needs,
/// and the last node is the classifier.
pub(super) fn check_plan(plan: &Plan) -> Result<(), GraphError> {
    let fail = |node: &PlanNode, message: String| GraphError::Plan {
        node: node.name.clone(),
        message,
    };
    let Some(first) = plan.nodes.first() else {
        return Err(GraphError::Plan {
            node: String::new(),
            message: "the plan has no nodes".into(),
        });
    };
    if first.kind != NodeKind::Input || first.shape != plan.input {
        return Err(fail(
            first,
            "node 0 must be the Input of the plan's shape".into(),
        ));
    }
    for (i, node) in plan.nodes.iter().enumerate() {
        if i > 0 && node.kind == NodeKind::Input {
            return Err(fail(node, "only node 0 may be an Input".into()));
        }
        if let Some(&j) = node.inputs.iter().find(|&&j| j >= i) {
            return Err(fail(node, format!("input {j} does not come before it")));
        }
        let inputs: Vec<&[usize]> = node
            .inputs
            .iter()
            .map(|&j| plan.nodes[j].shape.as_slice())
            .collect();
        let (shape, params) = expected_shapes(node, &inputs).map_err(|m| fail(node, m))?;
        if shape != node.shape {
            return Err(fail(
                node,
                format!("shape {:?}, expected {shape:?}", node.shape),
            ));
        }
        if shape.iter().product::<usize>() == 0 {
            return Err(fail(node, format!("empty output shape {shape:?}")));
        }
        if node.params.len() != params.len() {
            return Err(fail(
                node,
                format!("{} params, expected {}", node.params.len(), params.len()),
            ));
        }
        for (name, pshape) in params {
            let Some(spec) = node.params.iter().find(|p| role(p) == name) else {
                return Err(fail(node, format!("no parameter named .../{name}")));
            };
            if spec.shape != pshape {
                let msg = format!(
                    "parameter {} has shape {:?}, expected {pshape:?}",
                    spec.path, spec.shape
                );
                return Err(fail(node, msg));
            }
        }
    }
    // A node nobody reads would never receive a gradient, and SGD would apply garbage.
    let count = plan.nodes.len();
    for (i, node) in plan.nodes.iter().enumerate().take(count - 1) {
        if !plan.nodes.iter().any(|c| c.inputs.contains(&i)) {
            return Err(fail(node, "its output is never used".into()));
        }
    }
    let last = plan.nodes.last().unwrap_or(first);
    if last.kind
        != (NodeKind::Dense {
            units: plan.classes,
        })
    {
        return Err(fail(
            last,
            format!("the last node must be Dense({})", plan.classes),
        ));
    }
    if plan
        .nodes
        .iter()
        .any(|n| n.inputs.contains(&(plan.nodes.len() - 1)))
    {
        return Err(fail(
            last,
            "the classifier's output must feed only the loss".into(),
        ));
    }
    Ok(())
}

/// Keras's initial values: Glorot-uniform `U(-l, l)`, `l = sqrt(6 / (fan_in + fan_out))`.
fn initial_values(spec: &ParamSpec, rng: &mut StdRng) -> Vec<f32> {
    let len: usize = spec.shape.iter().product();
    match spec.init {
        Init::GlorotUniform { fan_in, fan_out } => {
            let limit = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt() as f32;
            (0..len).map(|_| rng.random_range(-limit..=limit)).collect()
        }
        Init::Zeros => vec![0.0; len],
        Init::Ones => vec![1.0; len],
    }
}

/// A 32-bit seed per dropout node, mixed from the network seed and the node index
/// (splitmix64's finalizer), so that two dropout layers draw different masks.
fn mix_seed(seed: u64, node: usize) -> u32 {
    let mut z = seed ^ (node as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as u32
}

impl Graph {
    /// Allocates every tensor for `batch` and initializes the parameters from `seed`.
    pub fn new(gpu: &Gpu, plan: &Plan, batch: usize, seed: u64) -> Result<Self, GraphError> {
        check_plan(plan)?;
        if batch == 0 {
            return Err(GraphError::Batch(
                "the batch size must be at least 1".into(),
            ));
        }
        let nodes = &plan.nodes;
        let count = nodes.len();
        let batched = |shape: &[usize]| [&[batch][..], shape].concat();

        // A node's gradient matters when a trainable parameter lies at or above it.
        let mut needs_grad = vec![false; count];
        for (i, node) in nodes.iter().enumerate() {
            needs_grad[i] = node.params.iter().any(|p| p.trainable)
                || node.inputs.iter().any(|&j| needs_grad[j]);
        }

        // Routes, in backward order: the first contribution to an input writes its gradient.
        let mut seen = vec![0usize; count];
        let mut routes: Vec<Vec<Route>> = nodes
            .iter()
            .map(|n| vec![Route::Skip; n.inputs.len()])
            .collect();
        let mut clears = Vec::new();
        for c in (1..count).rev() {
            if !needs_grad[c] {
                continue;
            }
            for (slot, &i) in nodes[c].inputs.iter().enumerate() {
                routes[c][slot] = if needs_grad[i] {
                    seen[i] += 1;
                    if seen[i] == 1 {
                        if nodes[c].kind == NodeKind::Add {
                            clears.push(i);
                        }
                        Route::Write
                    } else {
                        Route::Accumulate
                    }
                } else if matches!(nodes[c].kind, NodeKind::BatchNorm { .. } | NodeKind::Concat) {
                    Route::Discard
                } else {
                    Route::Skip
                };
            }
        }

        let mut acts = vec![None];
        let mut grads = vec![None];
        let mut scratch: Vec<Option<Tensor>> = (0..count).map(|_| None).collect();
        let mut saved = vec![Saved::None];
        for (i, node) in nodes.iter().enumerate().skip(1) {
            let shape = batched(&node.shape);
            acts.push(Some(Tensor::new(gpu, &shape)?));
            grads.push(if needs_grad[i] {
                Some(Tensor::new(gpu, &shape)?)
            } else {
                None
            });
            saved.push(match node.kind {
                NodeKind::BatchNorm { .. } => {
                    let c = node.shape[node.shape.len() - 1];
                    Saved::BatchNorm {
                        mean: Tensor::new(gpu, &[c])?,
                        invstd: Tensor::new(gpu, &[c])?,
                    }
                }
                NodeKind::MaxPool { .. } => Saved::MaxPool {
                    argmax: Tensor::new(gpu, &shape)?,
                },
                _ => Saved::None,
            });
        }
        for (c, node) in nodes.iter().enumerate() {
            for (slot, &i) in node.inputs.iter().enumerate() {
                let r = routes[c][slot];
                let uses_scratch =
                    r == Route::Discard || (r == Route::Accumulate && node.kind != NodeKind::Add);
                if uses_scratch && scratch[i].is_none() {
                    scratch[i] = Some(Tensor::new(gpu, &batched(&nodes[i].shape))?);
                }
            }
        }

        // Parameters in plan order, all drawn from one generator.
        let mut rng = StdRng::seed_from_u64(seed);
        let mut params = Vec::new();
        let mut node_params = Vec::new();
        let mut reg_slots = 0;
        for node in nodes {
            let mut mine = Vec::new();
            for spec in &node.params {
                let value = Tensor::from_f32(gpu, &spec.shape, &initial_values(spec, &mut rng))?;
                let (grad, velocity) = if spec.trainable {
                    (
                        Some(Tensor::new(gpu, &spec.shape)?),
                        Some(Tensor::zeros(gpu, &spec.shape)?),
                    )
                } else {
                    (None, None)
                };
                let reg_slot = match spec.l2 {
                    Some(_) if spec.trainable => {
                        reg_slots += 1;
                        Some(reg_slots - 1)
                    }
                    _ => None,
                };
                mine.push(params.len());
                params.push(Param {
                    spec: spec.clone(),
                    value,
                    grad,
                    velocity,
                    reg_slot,
                });
            }
            node_params.push(mine);
        }

        let [h, w, c] = plan.input;
        Ok(Self {
            images: Tensor::new(gpu, &[batch, h, w, c])?,
            labels: Tensor::from_u32(gpu, &[batch], &vec![0; batch])?,
            acts,
            grads,
            scratch,
            saved,
            params,
            node_params,
            routes,
            needs_grad,
            clears,
            dropout_seeds: (0..count).map(|i| mix_seed(seed, i)).collect(),
            loss: Tensor::new(gpu, &[batch])?,
            correct: Tensor::new(gpu, &[batch])?,
            reg: Tensor::zeros(gpu, &[reg_slots.max(1)])?,
            metrics: Tensor::zeros(gpu, &[4])?,
            lr: Tensor::zeros(gpu, &[1])?,
            step: Tensor::from_u32(gpu, &[1], &[0])?,
            plan: plan.clone(),
            batch,
        })
    }

    /// Node `i`'s output as the given mode sees it: in inference, dropout is the identity
    /// and its consumers read its input directly.
    pub fn act(&self, i: usize, train: bool) -> &Tensor {
        let node = &self.plan.nodes[i];
        match (&node.kind, self.acts[i].as_ref()) {
            (NodeKind::Dropout { .. }, _) if !train => self.act(node.inputs[0], train),
            (_, Some(t)) => t,
            (_, None) => &self.images,
        }
    }

    /// The gradient of node `i`'s output (allocated wherever `needs_grad[i]`).
    pub fn grad(&self, i: usize) -> &Tensor {
        self.grads[i]
            .as_ref()
            .expect("gradients exist wherever a route or backward uses them")
    }

    /// Node `i`'s scratch (allocated wherever a route needs it).
    pub fn scratch(&self, i: usize) -> &Tensor {
        self.scratch[i]
            .as_ref()
            .expect("scratch exists wherever a route needs it")
    }

    /// Node `node`'s parameter whose path ends in `/role` (check_plan guarantees it).
    pub fn param(&self, node: usize, role_name: &str) -> &Param {
        self.node_params[node]
            .iter()
            .map(|&p| &self.params[p])
            .find(|p| role(&p.spec) == role_name)
            .expect("check_plan verified every parameter's presence")
    }

    /// `[H, W, C]` of node `i`'s output (a `[C]` output reads as 1x1xC).
    pub fn hwc(&self, i: usize) -> (usize, usize, usize) {
        match *self.plan.nodes[i].shape {
            [h, w, c] => (h, w, c),
            [c] => (1, 1, c),
            _ => unreachable!("check_plan allows only [H, W, C] and [C] shapes"),
        }
    }
}
