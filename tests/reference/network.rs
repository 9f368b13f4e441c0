//! CPU reference: a whole network run in f64 straight from its plan, node by node, with
//! plain loops (NHWC activations, HWIO kernels), and its loss: mean cross-entropy plus
//! the L2 terms. Written apart from `src/graph` and the kernels; the gradient check
//! differentiates `loss` by central differences.

use std::collections::HashMap;

use naseval::arch::{NodeKind, Plan, PlanNode};
use naseval::ops::Padding;

/// Parameter values by parameter path (without `model/`).
pub type Params = HashMap<String, Vec<f64>>;

/// Dropout multipliers per node index, one per element of the node's `[n, ..]` output
/// (0 or 1/(1-rate)); nodes without an entry keep everything.
pub type Masks = HashMap<usize, Vec<f64>>;

/// Output size and padding before, per Keras: 'same' gives ceil(in/stride) with the
/// smaller half of the padding first; 'valid' gives floor((in-k)/stride)+1.
pub fn out_and_pad(input: usize, k: usize, stride: usize, padding: Padding) -> (usize, usize) {
    match padding {
        Padding::Same => {
            let out = input.div_ceil(stride);
            let need = (out - 1) * stride + k;
            let total = need.saturating_sub(input);
            (out, total / 2)
        }
        Padding::Valid => ((input - k) / stride + 1, 0),
    }
}

fn param<'a>(params: &'a Params, node: &PlanNode, role: &str) -> &'a [f64] {
    let spec = node
        .params
        .iter()
        .find(|p| p.path.rsplit('/').next() == Some(role))
        .unwrap_or_else(|| panic!("{} has no {role}", node.name));
    &params[&spec.path]
}

fn hwc(shape: &[usize]) -> (usize, usize, usize) {
    match *shape {
        [h, w, c] => (h, w, c),
        [c] => (1, 1, c),
        _ => panic!("shape {shape:?}"),
    }
}

/// Sliding window over an NHWC input: for each output (b, oy, ox) and tap (ky, kx) that
/// falls inside the input, calls `f(b, oy, ox, ky, kx, input row index of (b, iy, ix))`.
#[allow(clippy::too_many_arguments)]
fn windows(
    n: usize,
    (h, w): (usize, usize),
    k: usize,
    stride: usize,
    padding: Padding,
    mut f: impl FnMut(usize, usize, usize, usize, usize, usize),
) -> (usize, usize) {
    let (oh, pt) = out_and_pad(h, k, stride, padding);
    let (ow, pl) = out_and_pad(w, k, stride, padding);
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ky in 0..k {
                    for kx in 0..k {
                        let iy = (oy * stride + ky) as isize - pt as isize;
                        let ix = (ox * stride + kx) as isize - pl as isize;
                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                            continue;
                        }
                        let row = (b * h + iy as usize) * w + ix as usize;
                        f(b, oy, ox, ky, kx, row);
                    }
                }
            }
        }
    }
    (oh, ow)
}

/// Every node's output for the first `n` samples. `train`: batch statistics in batch
/// norm and dropout masks; otherwise moving statistics and no dropout.
pub fn forward(
    plan: &Plan,
    params: &Params,
    images: &[f64],
    n: usize,
    masks: &Masks,
    train: bool,
) -> Vec<Vec<f64>> {
    let mut acts: Vec<Vec<f64>> = Vec::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        let (oh, ow, oc) = hwc(&node.shape);
        let out_len = n * oh * ow * oc;
        let input = |j: usize| &acts[node.inputs[j]];
        let (h, w, c) = node
            .inputs
            .first()
            .map(|&j| hwc(&plan.nodes[j].shape))
            .unwrap_or((0, 0, 0));
        let y = match node.kind {
            NodeKind::Input => images[..out_len].to_vec(),
            NodeKind::Conv2d {
                filters,
                kernel,
                stride,
                padding,
                ..
            } => {
                let (x, wt, bias) = (
                    input(0),
                    param(params, node, "kernel"),
                    param(params, node, "bias"),
                );
                let mut y = vec![0.0; out_len];
                for (o, v) in y.iter_mut().enumerate() {
                    *v = bias[o % filters];
                }
                windows(
                    n,
                    (h, w),
                    kernel,
                    stride,
                    padding,
                    |b, oy, ox, ky, kx, row| {
                        let out = ((b * oh + oy) * ow + ox) * filters;
                        for ci in 0..c {
                            let xv = x[row * c + ci];
                            for f in 0..filters {
                                y[out + f] += xv * wt[((ky * kernel + kx) * c + ci) * filters + f];
                            }
                        }
                    },
                );
                y
            }
            NodeKind::Depthwise {
                kernel,
                stride,
                padding,
            } => {
                let (x, wt) = (input(0), param(params, node, "depthwise_kernel"));
                let mut y = vec![0.0; out_len];
                windows(
                    n,
                    (h, w),
                    kernel,
                    stride,
                    padding,
                    |b, oy, ox, ky, kx, row| {
                        let out = ((b * oh + oy) * ow + ox) * c;
                        for ci in 0..c {
                            y[out + ci] += x[row * c + ci] * wt[(ky * kernel + kx) * c + ci];
                        }
                    },
                );
                y
            }
            NodeKind::Dense { units } => {
                let (x, wt, bias) = (
                    input(0),
                    param(params, node, "kernel"),
                    param(params, node, "bias"),
                );
                let k = h * w * c;
                let mut y = vec![0.0; out_len];
                for b in 0..n {
                    for u in 0..units {
                        let mut s = bias[u];
                        for j in 0..k {
                            s += x[b * k + j] * wt[j * units + u];
                        }
                        y[b * units + u] = s;
                    }
                }
                y
            }
            NodeKind::MaxPool {
                size,
                stride,
                padding,
            } => {
                let x = input(0);
                let mut y = vec![f64::NEG_INFINITY; out_len];
                windows(n, (h, w), size, stride, padding, |b, oy, ox, _, _, row| {
                    let out = ((b * oh + oy) * ow + ox) * c;
                    for ci in 0..c {
                        y[out + ci] = y[out + ci].max(x[row * c + ci]);
                    }
                });
                y
            }
            NodeKind::AvgPool {
                size,
                stride,
                padding,
            } => {
                let x = input(0);
                let mut y = vec![0.0; out_len];
                let mut count = vec![0usize; n * oh * ow];
                windows(n, (h, w), size, stride, padding, |b, oy, ox, _, _, row| {
                    let cell = (b * oh + oy) * ow + ox;
                    count[cell] += 1;
                    for ci in 0..c {
                        y[cell * c + ci] += x[row * c + ci];
                    }
                });
                for (o, v) in y.iter_mut().enumerate() {
                    *v /= count[o / c] as f64;
                }
                y
            }
            NodeKind::GlobalAvgPool => {
                let x = input(0);
                let mut y = vec![0.0; out_len];
                for b in 0..n {
                    for p in 0..h * w {
                        for ci in 0..c {
                            y[b * c + ci] += x[(b * h * w + p) * c + ci] / (h * w) as f64;
                        }
                    }
                }
                y
            }
            NodeKind::BatchNorm { epsilon, .. } => {
                let x = input(0);
                let gamma = param(params, node, "gamma");
                let beta = param(params, node, "beta");
                let m = out_len / c;
                let (mean, var) = if train {
                    let mut mean = vec![0.0; c];
                    let mut var = vec![0.0; c];
                    for (j, v) in x[..out_len].iter().enumerate() {
                        mean[j % c] += v / m as f64;
                    }
                    for (j, v) in x[..out_len].iter().enumerate() {
                        var[j % c] += (v - mean[j % c]).powi(2) / m as f64;
                    }
                    (mean, var)
                } else {
                    let mean = param(params, node, "moving_mean").to_vec();
                    (mean, param(params, node, "moving_variance").to_vec())
                };
                (0..out_len)
                    .map(|j| {
                        let ci = j % c;
                        let inv = 1.0 / (var[ci] + epsilon as f64).sqrt();
                        gamma[ci] * (x[j] - mean[ci]) * inv + beta[ci]
                    })
                    .collect()
            }
            NodeKind::Relu => input(0)[..out_len].iter().map(|v| v.max(0.0)).collect(),
            NodeKind::Dropout { .. } => {
                let x = &input(0)[..out_len];
                match masks.get(&i) {
                    Some(mask) if train => x.iter().zip(mask).map(|(v, m)| v * m).collect(),
                    _ => x.to_vec(),
                }
            }
            NodeKind::Add => (0..out_len).map(|j| input(0)[j] + input(1)[j]).collect(),
            NodeKind::Concat => {
                let (c1, c2) = (c, hwc(&plan.nodes[node.inputs[1]].shape).2);
                let mut y = Vec::with_capacity(out_len);
                for r in 0..n * h * w {
                    y.extend_from_slice(&input(0)[r * c1..(r + 1) * c1]);
                    y.extend_from_slice(&input(1)[r * c2..(r + 1) * c2]);
                }
                y
            }
        };
        assert_eq!(y.len(), out_len, "reference output of {}", node.name);
        acts.push(y);
    }
    acts
}

/// Mean over the `n` samples of -log softmax(logits)[label].
pub fn cross_entropy(logits: &[f64], labels: &[u32], classes: usize) -> f64 {
    let n = labels.len();
    let mut total = 0.0;
    for (b, &l) in labels.iter().enumerate() {
        let row = &logits[b * classes..(b + 1) * classes];
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        total += lse - row[l as usize];
    }
    total / n as f64
}

/// The sum of `l2 * sum(w^2)` over the trainable parameters that carry an L2 coefficient.
pub fn l2_terms(plan: &Plan, params: &Params) -> f64 {
    let mut total = 0.0;
    for spec in plan.nodes.iter().flat_map(|n| &n.params) {
        if let (Some(coef), true) = (spec.l2, spec.trainable) {
            total += coef as f64 * params[&spec.path].iter().map(|v| v * v).sum::<f64>();
        }
    }
    total
}

/// The training loss (Keras's): mean cross-entropy of the first `labels.len()` samples
/// plus the L2 terms.
pub fn loss(
    plan: &Plan,
    params: &Params,
    images: &[f64],
    labels: &[u32],
    masks: &Masks,
    train: bool,
) -> f64 {
    let acts = forward(plan, params, images, labels.len(), masks, train);
    let logits = acts.last().expect("a plan has nodes");
    cross_entropy(logits, labels, plan.classes) + l2_terms(plan, params)
}
