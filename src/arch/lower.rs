//! Lowering: op names -> reference-space specs -> primitive nodes, with shape inference and
//! every check that can refuse a candidate before the GPU is touched.
//!
//! Names: a candidate op at position p is layer `L{p}_{op}`; stem entries are
//! `stem_in{i}_{op}` and `stem_out{i}_{op}`; the classifier is `head`; the skip connection
//! opened by `sc_N` at position p and closed after the op at position q is `sc_L{p}_L{q}`.
//! Nodes inside a layer are `{layer}/conv`, `/bn`, `/relu`, `/depthwise`, `/pointwise`,
//! `/max_pool`, `/avg_pool`, `/global_avg_pool`, `/dropout`, `/reduce`, `/block{b}/conv`
//! (b from 1), `/concat`, `/projection`, `/add`, `/dense`.

use super::plan::{Init, NodeKind, ParamSpec, Plan, PlanNode};
use super::space::skip_span;
use super::{Activation, Arch, ArchConfig, ArchError, LayerSpec, ReferenceSpace, Site, shape_str};
use crate::ops::Padding;

/// Largest accepted input side and channel count, and class count; far above any real
/// dataset, low enough that no count overflows.
const MAX_INPUT_DIM: usize = 1 << 16;
const MAX_CLASSES: usize = 1 << 20;
/// Largest accepted tensor (per-sample activation or parameter) and parameter total, in
/// elements: the size of the largest accepted input. Residual cells concatenate their
/// input, so channels grow with every cell and no per-op bound caps a plan's sizes; this
/// one keeps every size, sum and product over a plan within a `usize`.
const MAX_ELEMENTS: u128 = 1 << 48;

/// One candidate entry after name resolution.
enum Entry<'a> {
    Skip(usize),
    Layer(&'a LayerSpec),
}

/// Lowers `arch` (with the stems and reference space of `config`) on per-sample input
/// `[H, W, C]` to a [`Plan`] ending in Dense(`classes`). Every name is resolved before any
/// shape is inferred, so an unknown op is reported first.
pub fn lower(
    arch: &Arch,
    config: &ArchConfig,
    input: [usize; 3],
    classes: usize,
) -> Result<Plan, ArchError> {
    if input.iter().any(|&d| d == 0 || d > MAX_INPUT_DIM) {
        return Err(ArchError::BadInput(format!(
            "input shape {} is not usable: every dimension must be between 1 and \
             {MAX_INPUT_DIM}. Give it as HxWxC, e.g. 32x32x3",
            shape_str(&input)
        )));
    }
    if classes == 0 || classes > MAX_CLASSES {
        return Err(ArchError::BadInput(format!(
            "{classes} classes is not usable: give between 1 and {MAX_CLASSES}"
        )));
    }
    if arch.ops().is_empty() {
        return Err(ArchError::Empty);
    }
    let space = &config.reference_space;

    // Resolve every name first.
    let stem_in = resolve_stem(space, &config.stems.input, Site::InputStem)?;
    let stem_out = resolve_stem(space, &config.stems.output, Site::OutputStem)?;
    let mut entries = Vec::with_capacity(arch.ops().len());
    for (p, op) in arch.ops().iter().enumerate() {
        entries.push(match skip_span(op) {
            Some(n) => Entry::Skip(n),
            None => Entry::Layer(resolve(space, op, Site::Candidate(p))?),
        });
    }
    for (p, e) in entries.iter().enumerate() {
        if let Entry::Skip(n) = *e {
            let op = arch.ops()[p].clone();
            let site = Site::Candidate(p);
            if n == 0 {
                return Err(ArchError::SkipZero { op, site });
            }
            let left = entries[p + 1..]
                .iter()
                .filter(|e| matches!(e, Entry::Layer(_)))
                .count();
            if left < n {
                return Err(ArchError::SkipPastEnd {
                    op,
                    site,
                    needed: n,
                    left,
                });
            }
        }
    }

    // Then infer shapes, stem to head.
    let mut b = Builder { nodes: Vec::new() };
    let mut cur = b.push(
        Ctx::new("input".into(), "input".into(), None, Site::Head),
        "",
        NodeKind::Input,
        vec![],
        input.to_vec(),
        vec![],
    );
    for (i, (op, spec)) in stem_in.iter().enumerate() {
        let ctx = Ctx::new(
            format!("stem_in{i}_{op}"),
            op.clone(),
            None,
            Site::InputStem(i),
        );
        cur = b.layer(&ctx, spec, cur)?;
    }

    let mut open: Vec<OpenSkip> = Vec::new();
    let mut history: Vec<Step> = Vec::new();
    for (p, e) in entries.iter().enumerate() {
        let op = &arch.ops()[p];
        match *e {
            Entry::Skip(n) => open.push(OpenSkip {
                op: op.clone(),
                position: p,
                from: cur,
                left: n,
            }),
            Entry::Layer(spec) => {
                let before = b.nodes[cur].shape.clone();
                let ctx = Ctx::new(
                    format!("L{p}_{op}"),
                    op.clone(),
                    Some(p),
                    Site::Candidate(p),
                );
                cur = b.layer(&ctx, spec, cur)?;
                history.push(Step {
                    position: p,
                    op: op.clone(),
                    before,
                    after: b.nodes[cur].shape.clone(),
                });
                for s in &mut open {
                    s.left -= 1;
                }
                // Connections closing here are added in the order they were opened.
                let (done, still): (Vec<_>, Vec<_>) = open.into_iter().partition(|s| s.left == 0);
                open = still;
                for s in done {
                    cur = b.skip(&s, p, cur, &history)?;
                }
            }
        }
    }

    for (i, (op, spec)) in stem_out.iter().enumerate() {
        let ctx = Ctx::new(
            format!("stem_out{i}_{op}"),
            op.clone(),
            None,
            Site::OutputStem(i),
        );
        cur = b.layer(&ctx, spec, cur)?;
    }

    let shape = b.nodes[cur].shape.clone();
    let &[c] = shape.as_slice() else {
        return Err(ArchError::HeadNotFlat {
            shape: shape_str(&shape),
        });
    };
    let head = Ctx::new("head".into(), "dense".into(), None, Site::Head);
    let params = vec![
        param(
            &head.layer,
            "dense/kernel",
            vec![c, classes],
            glorot(c, classes),
            true,
            None,
        ),
        param(
            &head.layer,
            "dense/bias",
            vec![classes],
            Init::Zeros,
            true,
            None,
        ),
    ];
    b.push(
        head,
        "dense",
        NodeKind::Dense { units: classes },
        vec![cur],
        vec![classes],
        params,
    );
    check_sizes(&b.nodes)?;

    Ok(Plan {
        ops: arch.ops().to_vec(),
        sha1: arch.sha1(),
        input,
        classes,
        nodes: b.nodes,
    })
}

/// Refuses a plan with a tensor or a parameter total over [`MAX_ELEMENTS`], naming the
/// node where the limit is crossed.
fn check_sizes(nodes: &[PlanNode]) -> Result<(), ArchError> {
    let elements = |shape: &[usize]| {
        let mut n: u128 = 1;
        for &d in shape {
            n = n.saturating_mul(d as u128);
        }
        n
    };
    let mut params: u128 = 0;
    for n in nodes {
        let output = elements(&n.shape);
        for p in &n.params {
            params = params.saturating_add(elements(&p.shape));
        }
        let (what, size) = if output > MAX_ELEMENTS {
            ("its output", output)
        } else if params > MAX_ELEMENTS {
            ("the parameters up to it", params)
        } else {
            continue;
        };
        return Err(ArchError::BadInput(format!(
            "the network is too large: at node {:?} {what} holds {size} elements, over \
             the limit of {MAX_ELEMENTS}. Use fewer or smaller layers (each residual cell \
             adds its filters to the channels it is given) or a smaller input",
            n.name
        )));
    }
    Ok(())
}

fn resolve<'a>(
    space: &'a ReferenceSpace,
    op: &str,
    site: Site,
) -> Result<&'a LayerSpec, ArchError> {
    let spec = space.get(op).ok_or_else(|| ArchError::UnknownOp {
        op: op.to_string(),
        site,
        suggestion: space.closest(op).map(str::to_string),
        known: space.names().map(str::to_string).collect(),
    })?;
    spec.validate().map_err(|reason| ArchError::BadLayer {
        op: op.to_string(),
        site,
        reason,
    })?;
    Ok(spec)
}

fn resolve_stem<'a>(
    space: &'a ReferenceSpace,
    ops: &[String],
    site: fn(usize) -> Site,
) -> Result<Vec<(String, &'a LayerSpec)>, ArchError> {
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            if skip_span(op).is_some() {
                return Err(ArchError::Config(format!(
                    "{} is the skip connection {op:?}; stems hold layers only. Remove it \
                     from [stems]",
                    site(i)
                )));
            }
            Ok((op.clone(), resolve(space, op, site(i))?))
        })
        .collect()
}

/// A skip connection waiting for its span to end.
struct OpenSkip {
    op: String,
    position: usize,
    from: usize,
    left: usize,
}

/// A candidate layer's shapes, for naming the culprit of an unmatched skip connection.
struct Step {
    position: usize,
    op: String,
    before: Vec<usize>,
    after: Vec<usize>,
}

/// The layer being lowered.
struct Ctx {
    layer: String,
    op: String,
    position: Option<usize>,
    site: Site,
}

impl Ctx {
    fn new(layer: String, op: String, position: Option<usize>, site: Site) -> Self {
        Self {
            layer,
            op,
            position,
            site,
        }
    }
}

fn glorot(fan_in: usize, fan_out: usize) -> Init {
    Init::GlorotUniform { fan_in, fan_out }
}

fn param(
    layer: &str,
    rest: &str,
    shape: Vec<usize>,
    init: Init,
    trainable: bool,
    l2: Option<f32>,
) -> ParamSpec {
    ParamSpec {
        path: format!("{layer}/{rest}"),
        shape,
        init,
        trainable,
        l2,
    }
}

struct Builder {
    nodes: Vec<PlanNode>,
}

impl Builder {
    /// Appends a node named `{layer}/{sub}` (or `{layer}` when `sub` is empty).
    fn push(
        &mut self,
        ctx: Ctx,
        sub: &str,
        kind: NodeKind,
        inputs: Vec<usize>,
        shape: Vec<usize>,
        params: Vec<ParamSpec>,
    ) -> usize {
        let name = if sub.is_empty() {
            ctx.layer.clone()
        } else {
            format!("{}/{sub}", ctx.layer)
        };
        self.nodes.push(PlanNode {
            kind,
            inputs,
            shape,
            name,
            layer: ctx.layer,
            op: ctx.op,
            position: ctx.position,
            params,
        });
        self.nodes.len() - 1
    }

    fn sub(&mut self, ctx: &Ctx, sub: &str, kind: NodeKind, x: usize, shape: Vec<usize>) -> usize {
        let ctx = Ctx::new(ctx.layer.clone(), ctx.op.clone(), ctx.position, ctx.site);
        self.push(ctx, sub, kind, vec![x], shape, vec![])
    }

    /// The [H, W, C] shape of node `x`, or the error for an op that needs one.
    fn spatial(&self, ctx: &Ctx, x: usize) -> Result<[usize; 3], ArchError> {
        match self.nodes[x].shape.as_slice() {
            &[h, w, c] => Ok([h, w, c]),
            s => Err(ArchError::AfterGlobalPool {
                op: ctx.op.clone(),
                site: ctx.site,
                channels: s.iter().product(),
            }),
        }
    }

    /// Output H and W of a window op, or the error naming why it does not fit.
    fn window(
        &self,
        ctx: &Ctx,
        x: usize,
        what: &str,
        k: usize,
        stride: usize,
        padding: Padding,
    ) -> Result<[usize; 3], ArchError> {
        let [h, w, c] = self.spatial(ctx, x)?;
        let out = |n| padding.output_and_pad(n, k, stride).map(|(o, _)| o);
        match (out(h), out(w)) {
            (Some(oh), Some(ow)) if oh >= 1 && ow >= 1 => Ok([oh, ow, c]),
            _ => Err(ArchError::WindowTooLarge {
                op: ctx.op.clone(),
                site: ctx.site,
                kernel: k,
                input: shape_str(&[h, w, c]),
                why: format!("the {what} would go below 1x1"),
            }),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        ctx: &Ctx,
        sub: &str,
        x: usize,
        filters: usize,
        k: usize,
        stride: usize,
        padding: Padding,
        l2: Option<f32>,
    ) -> Result<usize, ArchError> {
        let [oh, ow, _] =
            self.window(ctx, x, &format!("{k}x{k} convolution"), k, stride, padding)?;
        let c = self.spatial(ctx, x)?[2];
        let base = format!("{}/{sub}", ctx.layer);
        let params = vec![
            param(
                &base,
                "kernel",
                vec![k, k, c, filters],
                glorot(k * k * c, k * k * filters),
                true,
                l2,
            ),
            param(&base, "bias", vec![filters], Init::Zeros, true, None),
        ];
        let kind = NodeKind::Conv2d {
            filters,
            kernel: k,
            stride,
            padding,
            l2,
        };
        let ctx = Ctx::new(ctx.layer.clone(), ctx.op.clone(), ctx.position, ctx.site);
        Ok(self.push(ctx, sub, kind, vec![x], vec![oh, ow, filters], params))
    }

    fn bn(&mut self, ctx: &Ctx, sub: &str, x: usize, momentum: f32, epsilon: f32) -> usize {
        let shape = self.nodes[x].shape.clone();
        let c = shape.last().copied().unwrap_or(1);
        let base = format!("{}/{sub}", ctx.layer);
        let params = vec![
            param(&base, "gamma", vec![c], Init::Ones, true, None),
            param(&base, "beta", vec![c], Init::Zeros, true, None),
            param(&base, "moving_mean", vec![c], Init::Zeros, false, None),
            param(&base, "moving_variance", vec![c], Init::Ones, false, None),
        ];
        let ctx = Ctx::new(ctx.layer.clone(), ctx.op.clone(), ctx.position, ctx.site);
        self.push(
            ctx,
            sub,
            NodeKind::BatchNorm { momentum, epsilon },
            vec![x],
            shape,
            params,
        )
    }

    fn relu(&mut self, ctx: &Ctx, sub: &str, x: usize) -> usize {
        let shape = self.nodes[x].shape.clone();
        self.sub(ctx, sub, NodeKind::Relu, x, shape)
    }

    fn activation(&mut self, ctx: &Ctx, x: usize, a: Activation) -> usize {
        match a {
            Activation::Linear => x,
            Activation::Relu => self.relu(ctx, "relu", x),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn conv_bn_relu(
        &mut self,
        ctx: &Ctx,
        prefix: &str,
        x: usize,
        filters: usize,
        k: usize,
        l2: f32,
        momentum: f32,
        epsilon: f32,
    ) -> Result<usize, ArchError> {
        let y = self.conv(
            ctx,
            &format!("{prefix}conv"),
            x,
            filters,
            k,
            1,
            Padding::Same,
            Some(l2),
        )?;
        let y = self.bn(ctx, &format!("{prefix}bn"), y, momentum, epsilon);
        Ok(self.relu(ctx, &format!("{prefix}relu"), y))
    }

    fn pool(
        &mut self,
        ctx: &Ctx,
        x: usize,
        max: bool,
        size: usize,
        stride: usize,
        padding: Padding,
    ) -> Result<usize, ArchError> {
        let what = format!("{size}x{size} pool");
        let out = self.window(ctx, x, &what, size, stride, padding)?;
        let (sub, kind) = if max {
            (
                "max_pool",
                NodeKind::MaxPool {
                    size,
                    stride,
                    padding,
                },
            )
        } else {
            (
                "avg_pool",
                NodeKind::AvgPool {
                    size,
                    stride,
                    padding,
                },
            )
        };
        Ok(self.sub(ctx, sub, kind, x, out.to_vec()))
    }

    /// Lowers one reference-space entry on node `x`; returns the layer's output node.
    fn layer(&mut self, ctx: &Ctx, spec: &LayerSpec, x: usize) -> Result<usize, ArchError> {
        match *spec {
            LayerSpec::Conv2D {
                filters,
                kernel_size,
                strides,
                padding,
                activation,
                l2,
            } => {
                let y = self.conv(ctx, "conv", x, filters, kernel_size, strides, padding, l2)?;
                Ok(self.activation(ctx, y, activation))
            }
            LayerSpec::SeparableConv2D {
                filters,
                kernel_size: k,
                strides,
                padding,
                activation,
            } => {
                let [oh, ow, c] = self.window(
                    ctx,
                    x,
                    &format!("{k}x{k} depthwise convolution"),
                    k,
                    strides,
                    padding,
                )?;
                let base = format!("{}/depthwise", ctx.layer);
                let kind = NodeKind::Depthwise {
                    kernel: k,
                    stride: strides,
                    padding,
                };
                let dw_params = vec![param(
                    &base,
                    "depthwise_kernel",
                    vec![k, k, c],
                    glorot(k * k * c, k * k),
                    true,
                    None,
                )];
                let dctx = Ctx::new(ctx.layer.clone(), ctx.op.clone(), ctx.position, ctx.site);
                let y = self.push(dctx, "depthwise", kind, vec![x], vec![oh, ow, c], dw_params);
                let y = self.conv(ctx, "pointwise", y, filters, 1, 1, Padding::Valid, None)?;
                Ok(self.activation(ctx, y, activation))
            }
            LayerSpec::MaxPooling2D {
                pool_size,
                strides,
                padding,
            } => self.pool(
                ctx,
                x,
                true,
                pool_size,
                strides.unwrap_or(pool_size),
                padding,
            ),
            LayerSpec::AveragePooling2D {
                pool_size,
                strides,
                padding,
            } => self.pool(
                ctx,
                x,
                false,
                pool_size,
                strides.unwrap_or(pool_size),
                padding,
            ),
            LayerSpec::GlobalAveragePooling2D {} => {
                let [_, _, c] = self.spatial(ctx, x)?;
                Ok(self.sub(ctx, "global_avg_pool", NodeKind::GlobalAvgPool, x, vec![c]))
            }
            LayerSpec::BatchNormalization { momentum, epsilon } => {
                Ok(self.bn(ctx, "bn", x, momentum, epsilon))
            }
            LayerSpec::Dropout { rate } => {
                let shape = self.nodes[x].shape.clone();
                Ok(self.sub(ctx, "dropout", NodeKind::Dropout { rate }, x, shape))
            }
            LayerSpec::Activation { activation } => Ok(self.activation(ctx, x, activation)),
            LayerSpec::ConvBnReLU {
                filters,
                kernel_size,
                strides,
                l2,
                momentum,
                epsilon,
            } => {
                warn_stride(ctx, strides);
                self.conv_bn_relu(ctx, "", x, filters, kernel_size, l2, momentum, epsilon)
            }
            LayerSpec::ConvBnReLUAvgPool {
                filters,
                kernel_size,
                strides,
                l2,
                momentum,
                epsilon,
            } => {
                warn_stride(ctx, strides);
                let y =
                    self.conv_bn_relu(ctx, "", x, filters, kernel_size, l2, momentum, epsilon)?;
                self.pool(ctx, y, false, 2, 2, Padding::Same)
            }
            LayerSpec::ResidualConvBnReLU {
                blocks,
                reduction_filters,
                filters,
                kernel_size,
                l2,
                momentum,
                epsilon,
            } => {
                let [h, w, c] = self.spatial(ctx, x)?;
                let mut y = self.conv(
                    ctx,
                    "reduce",
                    x,
                    reduction_filters,
                    1,
                    1,
                    Padding::Same,
                    Some(l2),
                )?;
                for blk in 1..=blocks {
                    let prefix = format!("block{blk}/");
                    y = self.conv_bn_relu(
                        ctx,
                        &prefix,
                        y,
                        filters,
                        kernel_size,
                        l2,
                        momentum,
                        epsilon,
                    )?;
                }
                let cctx = Ctx::new(ctx.layer.clone(), ctx.op.clone(), ctx.position, ctx.site);
                Ok(self.push(
                    cctx,
                    "concat",
                    NodeKind::Concat,
                    vec![x, y],
                    vec![h, w, c + filters],
                    vec![],
                ))
            }
        }
    }

    /// Closes skip connection `s` after the op at position `q`: a 1x1 projection of the
    /// remembered node, strided when the span shrank H and W, added to `cur`.
    fn skip(
        &mut self,
        s: &OpenSkip,
        q: usize,
        cur: usize,
        history: &[Step],
    ) -> Result<usize, ArchError> {
        let from = self.nodes[s.from].shape.clone();
        let to = self.nodes[cur].shape.clone();
        let fail = |why: String| {
            let culprits: Vec<String> = history
                .iter()
                .filter(|st| st.position > s.position && st.position <= q)
                .filter(|st| {
                    st.before.len() != st.after.len()
                        || st.before[..st.before.len() - 1] != st.after[..st.after.len() - 1]
                })
                .map(|st| {
                    format!(
                        "{:?} at position {} ({} -> {})",
                        st.op,
                        st.position,
                        shape_str(&st.before),
                        shape_str(&st.after)
                    )
                })
                .collect();
            let culprit = if culprits.is_empty() {
                "the ops that change the size".to_string()
            } else {
                culprits.join(", ")
            };
            ArchError::SkipShape {
                op: s.op.clone(),
                site: Site::Candidate(s.position),
                why: format!(
                    "it cannot join its {} start to its {} end: {why}",
                    shape_str(&from),
                    shape_str(&to)
                ),
                culprit,
            }
        };
        let (&[hr, wr, cr], &[hc, wc, cc]) = (from.as_slice(), to.as_slice()) else {
            let why = "a skip connection needs HxWxC tensors at both ends, and global pooling \
                       flattened one";
            return Err(fail(why.into()));
        };
        let Some(stride) =
            (1..=hr.max(wr)).find(|&st| hr.div_ceil(st) == hc && wr.div_ceil(st) == wc)
        else {
            return Err(fail(format!(
                "no 1x1 projection stride s gives ceil({hr}/s) = {hc} and ceil({wr}/s) = {wc}"
            )));
        };
        let layer = format!("sc_L{}_L{q}", s.position);
        let ctx = Ctx::new(
            layer.clone(),
            s.op.clone(),
            None,
            Site::Candidate(s.position),
        );
        let base = format!("{layer}/projection");
        let params = vec![
            param(
                &base,
                "kernel",
                vec![1, 1, cr, cc],
                glorot(cr, cc),
                true,
                None,
            ),
            param(&base, "bias", vec![cc], Init::Zeros, true, None),
        ];
        let kind = NodeKind::Conv2d {
            filters: cc,
            kernel: 1,
            stride,
            padding: Padding::Same,
            l2: None,
        };
        let proj = self.push(
            ctx,
            "projection",
            kind,
            vec![s.from],
            vec![hc, wc, cc],
            params,
        );
        let ctx = Ctx::new(layer, s.op.clone(), None, Site::Candidate(s.position));
        Ok(self.push(
            ctx,
            "add",
            NodeKind::Add,
            vec![cur, proj],
            to.clone(),
            vec![],
        ))
    }
}

fn warn_stride(ctx: &Ctx, strides: usize) {
    if strides != 1 {
        log::warn!(
            "op {:?} at {}: strides = {strides} is ignored in HiveNAS cells (always 1)",
            ctx.op,
            ctx.site
        );
    }
}
