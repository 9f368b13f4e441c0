//! A Keras-like summary of a plan: one row per layer (output shape, parameters, FLOPs),
//! totals, the SHA-1 name. The CLI prints it; the library only builds strings and JSON.

use std::fmt::Write as _;

use super::plan::{NodeKind, Plan};
use super::shape_str;

/// One node inside a summary row.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NodeRow {
    /// Node name.
    pub name: String,
    /// Kind, e.g. "Conv2d".
    pub kind: String,
    /// Per-sample output shape.
    pub output_shape: Vec<usize>,
    /// Trainable plus non-trainable parameter count.
    pub params: usize,
}

/// One layer (candidate op, stem entry, skip connection, input or head).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LayerRow {
    /// Layer name, e.g. "L2_sep5x5_64".
    pub name: String,
    /// Op name.
    pub op: String,
    /// Position in the candidate (None for stems, head, skips, input).
    pub position: Option<usize>,
    /// Per-sample output shape of the layer's last node.
    pub output_shape: Vec<usize>,
    /// Trainable parameters.
    pub trainable_params: usize,
    /// Non-trainable parameters (BN moving statistics).
    pub non_trainable_params: usize,
    /// Forward FLOPs per image.
    pub flops_forward: f64,
    /// The primitive nodes.
    pub nodes: Vec<NodeRow>,
}

/// Everything `naseval summary` shows.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Summary {
    /// The candidate, `a|b|c`.
    pub arch: String,
    /// The op names.
    pub ops: Vec<String>,
    /// Checkpoint name: hex SHA-1 of the op names joined.
    pub sha1: String,
    /// Per-sample input shape.
    pub input: [usize; 3],
    /// Classes of the head.
    pub classes: usize,
    /// Rows, in network order.
    pub layers: Vec<LayerRow>,
    /// Keras's trainable weight count.
    pub trainable_params: usize,
    /// BN moving statistics.
    pub non_trainable_params: usize,
    /// Forward FLOPs per image (estimate).
    pub flops_forward: f64,
    /// Backward FLOPs per image (estimate).
    pub flops_backward: f64,
    /// The node with the largest per-sample activation.
    pub largest_activation: String,
    /// Its elements per sample.
    pub largest_activation_elements: usize,
}

fn kind_name(kind: &NodeKind) -> &'static str {
    match kind {
        NodeKind::Input => "Input",
        NodeKind::Conv2d { .. } => "Conv2d",
        NodeKind::Depthwise { .. } => "Depthwise",
        NodeKind::Dense { .. } => "Dense",
        NodeKind::MaxPool { .. } => "MaxPool",
        NodeKind::AvgPool { .. } => "AvgPool",
        NodeKind::GlobalAvgPool => "GlobalAvgPool",
        NodeKind::BatchNorm { .. } => "BatchNorm",
        NodeKind::Relu => "Relu",
        NodeKind::Dropout { .. } => "Dropout",
        NodeKind::Add => "Add",
        NodeKind::Concat => "Concat",
    }
}

impl Summary {
    /// Builds the summary of a plan. Nodes of one layer are contiguous in a plan, so rows
    /// group runs of equal `layer`.
    pub fn new(plan: &Plan) -> Self {
        let mut layers: Vec<LayerRow> = Vec::new();
        for (i, n) in plan.nodes.iter().enumerate() {
            if layers.last().is_none_or(|l| l.name != n.layer) {
                layers.push(LayerRow {
                    name: n.layer.clone(),
                    op: n.op.clone(),
                    position: n.position,
                    output_shape: vec![],
                    trainable_params: 0,
                    non_trainable_params: 0,
                    flops_forward: 0.0,
                    nodes: vec![],
                });
            }
            let row = layers.last_mut().expect("a row was just pushed");
            row.output_shape = n.shape.clone();
            for p in &n.params {
                if p.trainable {
                    row.trainable_params += p.numel();
                } else {
                    row.non_trainable_params += p.numel();
                }
            }
            row.flops_forward += plan.node_flops(i).0;
            row.nodes.push(NodeRow {
                name: n.name.clone(),
                kind: kind_name(&n.kind).to_string(),
                output_shape: n.shape.clone(),
                params: n.params.iter().map(|p| p.numel()).sum(),
            });
        }
        let (largest, elements) = plan
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.shape.iter().product::<usize>()))
            .fold((String::new(), 0), |a, b| if b.1 > a.1 { b } else { a });
        Self {
            arch: plan.ops.join("|"),
            ops: plan.ops.clone(),
            sha1: plan.sha1.clone(),
            input: plan.input,
            classes: plan.classes,
            layers,
            trainable_params: plan.trainable_params(),
            non_trainable_params: plan.non_trainable_params(),
            flops_forward: plan.flops_forward(),
            flops_backward: plan.flops_backward(),
            largest_activation: largest,
            largest_activation_elements: elements,
        }
    }

    /// The summary as one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a summary holds only plain data")
    }

    /// A Keras-like text table with totals.
    pub fn table(&self) -> String {
        let head = [
            "Layer (op)",
            "Output shape",
            "Param #",
            "Non-trainable",
            "FLOPs fwd",
        ];
        let rows: Vec<[String; 5]> = self
            .layers
            .iter()
            .map(|l| {
                let name = if l.name.contains(&l.op) {
                    l.name.clone()
                } else {
                    format!("{} ({})", l.name, l.op)
                };
                [
                    name,
                    shape_str(&l.output_shape),
                    l.trainable_params.to_string(),
                    l.non_trainable_params.to_string(),
                    human_flops(l.flops_forward),
                ]
            })
            .collect();
        let mut width = head.map(str::len);
        for r in &rows {
            for (w, cell) in width.iter_mut().zip(r) {
                *w = (*w).max(cell.len());
            }
        }
        let total: usize = width.iter().sum::<usize>() + 2 * (width.len() - 1);
        let line = |out: &mut String, cells: &[&str]| {
            let mut s = format!(
                "{:<w0$}  {:<w1$}",
                cells[0],
                cells[1],
                w0 = width[0],
                w1 = width[1]
            );
            for (c, w) in cells[2..].iter().zip(&width[2..]) {
                let _ = write!(s, "  {c:>w$}");
            }
            let _ = writeln!(out, "{}", s.trim_end());
        };
        let mut out = String::new();
        let _ = writeln!(out, "Candidate: {}", self.arch);
        let _ = writeln!(
            out,
            "Input: {}, {} classes",
            shape_str(&self.input),
            self.classes
        );
        let _ = writeln!(out, "{}", "=".repeat(total));
        line(&mut out, &head);
        let _ = writeln!(out, "{}", "=".repeat(total));
        for r in &rows {
            line(&mut out, &r.iter().map(String::as_str).collect::<Vec<_>>());
        }
        let _ = writeln!(out, "{}", "=".repeat(total));
        let _ = writeln!(
            out,
            "Total params: {}",
            self.trainable_params + self.non_trainable_params
        );
        let _ = writeln!(out, "Trainable params: {}", self.trainable_params);
        let _ = writeln!(out, "Non-trainable params: {}", self.non_trainable_params);
        let _ = writeln!(out, "SHA-1 file name: {}", self.sha1);
        let _ = writeln!(
            out,
            "FLOPs per image: forward {}, backward {} (estimates)",
            human_flops(self.flops_forward),
            human_flops(self.flops_backward)
        );
        let _ = writeln!(
            out,
            "Largest activation: {} ({} floats per image)",
            self.largest_activation, self.largest_activation_elements
        );
        out
    }
}

/// `1234567.0` -> `1.23 M`.
pub fn human_flops(f: f64) -> String {
    let units = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")];
    for (scale, unit) in units {
        if f >= scale {
            return format!("{:.2} {unit}", f / scale);
        }
    }
    format!("{f:.0}")
}
