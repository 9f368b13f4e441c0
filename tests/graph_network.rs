//! The network against the f64 reference interpreter: the whole-network gradient check
//! (every node kind, a projected skip connection, a concatenation), training mode and
//! inference mode losses, partial batches, SGD reducing the loss, determinism, and
//! checkpoint state round trips.
//!
//! Plans are built by hand here (not by `arch`'s parser) so that the graph is tested on
//! its own contract, PLAN.md.

mod common;
#[allow(unused)]
mod reference;

use common::*;
use naseval::arch::{Arch, ArchConfig, Init, NodeKind, ParamSpec, Plan, PlanNode};
use naseval::gpu::Gpu;
use naseval::graph::{GraphError, NamedArray, Network, OptimizerConfig};
use naseval::ops::Padding;
use rand::Rng;
use reference::network as refnet;

/// Builds plans node by node, computing shapes and parameter specs as arch would.
struct Builder {
    nodes: Vec<PlanNode>,
}

fn glorot(path: String, shape: Vec<usize>, fan_in: usize, fan_out: usize) -> ParamSpec {
    let init = Init::GlorotUniform { fan_in, fan_out };
    ParamSpec {
        path,
        shape,
        init,
        trainable: true,
        l2: None,
    }
}

fn plain(path: String, shape: Vec<usize>, init: Init, trainable: bool) -> ParamSpec {
    ParamSpec {
        path,
        shape,
        init,
        trainable,
        l2: None,
    }
}

impl Builder {
    fn new(input: [usize; 3]) -> Self {
        let mut b = Self { nodes: Vec::new() };
        b.push("input", NodeKind::Input, vec![], input.to_vec(), vec![]);
        b
    }

    fn push(
        &mut self,
        name: &str,
        kind: NodeKind,
        inputs: Vec<usize>,
        shape: Vec<usize>,
        params: Vec<ParamSpec>,
    ) -> usize {
        self.nodes.push(PlanNode {
            kind,
            inputs,
            shape,
            name: name.to_string(),
            layer: name.split('/').next().unwrap_or(name).to_string(),
            op: name.to_string(),
            position: None,
            params,
        });
        self.nodes.len() - 1
    }

    fn hwc(&self, i: usize) -> (usize, usize, usize) {
        match *self.nodes[i].shape {
            [h, w, c] => (h, w, c),
            ref s => panic!("node {i} has shape {s:?}"),
        }
    }

    fn spatial(&self, i: usize, k: usize, stride: usize, pad: Padding) -> (usize, usize) {
        let (h, w, _) = self.hwc(i);
        (
            refnet::out_and_pad(h, k, stride, pad).0,
            refnet::out_and_pad(w, k, stride, pad).0,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        name: &str,
        from: usize,
        filters: usize,
        kernel: usize,
        stride: usize,
        padding: Padding,
        l2: Option<f32>,
    ) -> usize {
        let (_, _, c) = self.hwc(from);
        let (oh, ow) = self.spatial(from, kernel, stride, padding);
        let mut k = glorot(
            format!("{name}/kernel"),
            vec![kernel, kernel, c, filters],
            kernel * kernel * c,
            kernel * kernel * filters,
        );
        k.l2 = l2;
        let b = plain(format!("{name}/bias"), vec![filters], Init::Zeros, true);
        let kind = NodeKind::Conv2d {
            filters,
            kernel,
            stride,
            padding,
            l2,
        };
        self.push(name, kind, vec![from], vec![oh, ow, filters], vec![k, b])
    }

    fn depthwise(&mut self, name: &str, from: usize, kernel: usize, stride: usize) -> usize {
        let (_, _, c) = self.hwc(from);
        let (oh, ow) = self.spatial(from, kernel, stride, Padding::Same);
        let k = glorot(
            format!("{name}/depthwise_kernel"),
            vec![kernel, kernel, c],
            kernel * kernel * c,
            kernel * kernel,
        );
        let kind = NodeKind::Depthwise {
            kernel,
            stride,
            padding: Padding::Same,
        };
        self.push(name, kind, vec![from], vec![oh, ow, c], vec![k])
    }

    fn pool(&mut self, name: &str, from: usize, max: bool, size: usize, stride: usize) -> usize {
        let (_, _, c) = self.hwc(from);
        let (oh, ow) = self.spatial(from, size, stride, Padding::Same);
        let kind = if max {
            NodeKind::MaxPool {
                size,
                stride,
                padding: Padding::Same,
            }
        } else {
            NodeKind::AvgPool {
                size,
                stride,
                padding: Padding::Same,
            }
        };
        self.push(name, kind, vec![from], vec![oh, ow, c], vec![])
    }

    fn batch_norm(&mut self, name: &str, from: usize) -> usize {
        let c = *self.nodes[from].shape.last().unwrap();
        let p =
            |role: &str, init, trainable| plain(format!("{name}/{role}"), vec![c], init, trainable);
        let params = vec![
            p("gamma", Init::Ones, true),
            p("beta", Init::Zeros, true),
            p("moving_mean", Init::Zeros, false),
            p("moving_variance", Init::Ones, false),
        ];
        let kind = NodeKind::BatchNorm {
            momentum: 0.9,
            epsilon: 1e-3,
        };
        let shape = self.nodes[from].shape.clone();
        self.push(name, kind, vec![from], shape, params)
    }

    fn unary(&mut self, name: &str, kind: NodeKind, from: usize) -> usize {
        let shape = self.nodes[from].shape.clone();
        self.push(name, kind, vec![from], shape, vec![])
    }

    fn add(&mut self, name: &str, a: usize, b: usize) -> usize {
        let shape = self.nodes[a].shape.clone();
        self.push(name, NodeKind::Add, vec![a, b], shape, vec![])
    }

    fn concat(&mut self, name: &str, a: usize, b: usize) -> usize {
        let (h, w, c1) = self.hwc(a);
        let c2 = self.hwc(b).2;
        self.push(
            name,
            NodeKind::Concat,
            vec![a, b],
            vec![h, w, c1 + c2],
            vec![],
        )
    }

    fn gap(&mut self, name: &str, from: usize) -> usize {
        let c = self.hwc(from).2;
        self.push(name, NodeKind::GlobalAvgPool, vec![from], vec![c], vec![])
    }

    fn dense(mut self, name: &str, from: usize, classes: usize) -> Plan {
        let [c] = *self.nodes[from].shape else {
            panic!("dense on a non-flat input")
        };
        let params = vec![
            glorot(format!("{name}/kernel"), vec![c, classes], c, classes),
            plain(format!("{name}/bias"), vec![classes], Init::Zeros, true),
        ];
        self.push(
            name,
            NodeKind::Dense { units: classes },
            vec![from],
            vec![classes],
            params,
        );
        let [h, w, ch] = *self.nodes[0].shape else {
            unreachable!()
        };
        Plan {
            ops: vec!["hand_built".into()],
            sha1: "0".repeat(40),
            input: [h, w, ch],
            classes,
            nodes: self.nodes,
        }
    }
}

/// Every node kind on 7x9x2 images, 3 classes: a 3x3 conv with L2, batch norm, ReLU, a
/// depthwise conv, a 1x1 conv (the matmul path), a stride-2 max pool, a stride-2 1x1
/// projection of the ReLU output added back (a projected `sc_N`), dropout, a 'same' conv
/// concatenated with the dropout output (a residual cell), a 'valid' conv, a stride-1 and
/// a stride-2 average pool (partial windows), batch norm, global pooling and the dense
/// classifier. The ReLU and dropout outputs each feed two consumers.
fn every_kind_plan(dropout: f32) -> Plan {
    let mut b = Builder::new([7, 9, 2]);
    let l2 = Some(1e-2);
    let conv = b.conv("stem/conv", 0, 4, 3, 1, Padding::Same, l2);
    let bn = b.batch_norm("stem/bn", conv);
    let relu = b.unary("stem/relu", NodeKind::Relu, bn);
    let dw = b.depthwise("L0_sep3x3_6/depthwise", relu, 3, 1);
    let pw = b.conv("L0_sep3x3_6/pointwise", dw, 6, 1, 1, Padding::Same, None);
    let mp = b.pool("L1_max_pool3x3/pool", pw, true, 3, 2);
    let proj = b.conv("sc_0_1/projection", relu, 6, 1, 2, Padding::Same, None);
    let add = b.add("sc_0_1/add", mp, proj);
    let drop = b.unary(
        "L2_dropout/dropout",
        NodeKind::Dropout { rate: dropout },
        add,
    );
    let cell = b.conv("L3_res/conv", drop, 3, 3, 1, Padding::Same, l2);
    let cat = b.concat("L3_res/concat", drop, cell);
    let valid = b.conv("L4_conv3x3_4/conv", cat, 4, 3, 1, Padding::Valid, None);
    let ap = b.pool("L5_avg_pool3x3/pool", valid, false, 3, 1);
    let ap2 = b.pool("L6_avg_pool/pool", ap, false, 2, 2);
    let bn2 = b.batch_norm("L7_batch_norm/bn", ap2);
    let gap = b.gap("global_avg_pool", bn2);
    b.dense("head/dense", gap, 3)
}

fn net(gpu: &Gpu, plan: &Plan, batch: usize, seed: u64) -> Network {
    Network::new(gpu, plan, batch, seed, OptimizerConfig::default()).expect("network builds")
}

fn batch_data(seed: u64, n: usize, plan: &Plan) -> (Vec<f32>, Vec<u32>) {
    let mut r = rng(seed);
    let [h, w, c] = plan.input;
    let images = uniform(&mut r, n * h * w * c, -1.0, 1.0);
    let labels = (0..n)
        .map(|_| r.random_range(0..plan.classes as u32))
        .collect();
    (images, labels)
}

fn params_f64(state: &[NamedArray]) -> refnet::Params {
    state
        .iter()
        .filter_map(|a| Some((a.path.strip_prefix("model/")?.to_string(), f64s(&a.data))))
        .collect()
}

/// Moves every trainable parameter away from its initial value (zero biases, unit gammas
/// make some gradients special) by importing a perturbed state.
fn perturb(net: &mut Network, seed: u64) {
    let mut r = rng(seed);
    let mut state = net.export_state().unwrap();
    for a in &mut state {
        let moving = a.path.ends_with("moving_mean") || a.path.ends_with("moving_variance");
        if a.path.starts_with("model/") && !moving {
            for v in &mut a.data {
                *v += r.random_range(-0.3..0.3);
            }
        }
    }
    net.import_state(&state).unwrap();
}

/// The dropout multipliers the GPU drew in the last training step, read off the layer's
/// output: 0 where it is 0. Where the input itself is 0 (after a ReLU) the mask is unknown
/// but irrelevant, since that element contributes nothing either way.
fn dropout_masks(net: &Network, plan: &Plan, n: usize) -> refnet::Masks {
    let mut masks = refnet::Masks::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        if let NodeKind::Dropout { rate } = node.kind {
            let y = net.read_activation(&node.name).unwrap();
            let len = n * node.shape.iter().product::<usize>();
            let scale = 1.0 / (1.0 - rate as f64);
            let mask = (0..len)
                .map(|j| if y[j] == 0.0 { 0.0 } else { scale })
                .collect();
            masks.insert(i, mask);
        }
    }
    masks
}

/// Gradients of the loss on the first `n` samples w.r.t. a sample of every trainable
/// parameter: the GPU's against central differences of the f64 reference.
fn check_gradients(plan: &Plan, batch: usize, n: usize, picks: usize) {
    let gpu = gpu();
    let mut net = net(&gpu, plan, batch, 11);
    perturb(&mut net, 12);
    // A full batch of other data first, so that state a step fails to reset shows up.
    let (other, other_labels) = batch_data(14, batch, plan);
    net.compute_gradients(&other, &other_labels, batch, 4)
        .unwrap();
    net.take_metrics().unwrap();
    let (images, labels) = batch_data(13, n, plan);
    net.compute_gradients(&images, &labels, n, 5).unwrap();
    let masks = dropout_masks(&net, plan, n);
    let params = params_f64(&net.export_state().unwrap());
    let x = f64s(&images);

    // The forward and the loss first: the GPU's metrics against the reference loss.
    let want_loss = refnet::loss(plan, &params, &x, &labels, &masks, true);
    let m = net.take_metrics().unwrap();
    assert_eq!(m.count, n as u64);
    assert!(
        (m.loss_mean - want_loss).abs() <= 1e-4 * (1.0 + want_loss.abs()),
        "training loss: GPU {} vs reference {want_loss}",
        m.loss_mean
    );

    // d(loss)/d(w) by central differences; h is small because the reference is exact f64
    // and ReLU/max-pool kinks must not fall inside the step.
    let h = 1e-5;
    let mut worst = (0.0f64, String::new());
    for spec in plan
        .nodes
        .iter()
        .flat_map(|node| &node.params)
        .filter(|p| p.trainable)
    {
        let got = net.read_gradient(&spec.path).unwrap();
        let len = got.len();
        let picks: Vec<usize> = if len <= picks {
            (0..len).collect()
        } else {
            (0..picks).map(|k| k * (len - 1) / (picks - 1)).collect()
        };
        let mut got_s = Vec::new();
        let mut want_s = Vec::new();
        for &j in &picks {
            let mut p = params.clone();
            let at = |p: &mut refnet::Params, v: f64| p.get_mut(&spec.path).unwrap()[j] = v;
            let v0 = params[&spec.path][j];
            at(&mut p, v0 + h);
            let up = refnet::loss(plan, &p, &x, &labels, &masks, true);
            at(&mut p, v0 - h);
            let down = refnet::loss(plan, &p, &x, &labels, &masks, true);
            want_s.push((up - down) / (2.0 * h));
            got_s.push(got[j]);
        }
        for (g, w) in got_s.iter().zip(&want_s) {
            let rel = (*g as f64 - w).abs() / (1e-3 + w.abs());
            if rel > worst.0 {
                worst = (rel, spec.path.clone());
            }
        }
        // f32 kernels through ~15 layers (two batch norms over few rows) against exact
        // f64 differences.
        let tol = Tol {
            abs: 2e-4,
            rel: 2e-3,
            total_rel: 2e-3,
        };
        assert_close(
            &format!("d loss / d {} (n={n})", spec.path),
            &got_s,
            &want_s,
            tol,
        );
    }
    eprintln!(
        "gradient check n={n}: worst |got-want|/(1e-3+|want|) = {:.2e} at {}",
        worst.0, worst.1
    );
}

#[test]
fn every_layer_gradient_matches_finite_differences_of_the_reference() {
    check_gradients(&every_kind_plan(0.3), 3, 3, 8);
}

#[test]
fn partial_batch_gradient_matches_the_reference() {
    // A network for batch 3 given 2 samples: programs built for n=2 on the same tensors.
    check_gradients(&every_kind_plan(0.3), 3, 2, 8);
}

#[test]
fn hivenas_plan_gradient_matches_the_reference() {
    // A plan lowered by arch from an op list: the default stems, a separable conv, an
    // `sc_2` over a pool (stride-1 projection), an `sc_1` over a stride-2 pooling cell
    // (stride-2 projection), a residual cell with its concatenation, L2 on cell kernels.
    let ops = "sep3x3_32|sc_2|max_pool3x3|identity|sc_1|conv3x3_64bnreluavgpool|\
               resx1reg_32_conv3x3_64bnrelu|dropout";
    let arch = Arch::parse(ops).unwrap();
    let plan = Plan::new(&arch, &ArchConfig::default(), [5, 5, 1], 10).unwrap();
    let has = |f: &dyn Fn(&NodeKind) -> bool| plan.nodes.iter().any(|n| f(&n.kind));
    assert!(has(&|k| matches!(
        k,
        NodeKind::Conv2d {
            kernel: 1,
            stride: 2,
            ..
        }
    )));
    assert!(has(&|k| matches!(k, NodeKind::Concat)));
    assert!(has(&|k| matches!(k, NodeKind::Depthwise { .. })));
    check_gradients(&plan, 2, 2, 5);
}

#[test]
fn inference_loss_matches_the_reference_after_training() {
    let gpu = gpu();
    let plan = every_kind_plan(0.3);
    let mut net = net(&gpu, &plan, 4, 21);
    let (images, labels) = batch_data(22, 4, &plan);
    for step in 0..3 {
        net.train_step(&images, &labels, 4, 0.05, step).unwrap();
    }
    net.take_metrics().unwrap();
    // Inference uses the moving statistics the three steps left and no dropout.
    net.eval_step(&images[..3 * 7 * 9 * 2], &labels[..3], 3)
        .unwrap();
    let m = net.take_metrics().unwrap();
    let params = params_f64(&net.export_state().unwrap());
    let x = f64s(&images);
    let want = refnet::loss(&plan, &params, &x, &labels[..3], &Default::default(), false);
    assert_eq!(m.count, 3);
    assert!(
        (m.loss_mean - want).abs() <= 1e-4 * (1.0 + want.abs()),
        "inference loss: GPU {} vs reference {want}",
        m.loss_mean
    );
}

#[test]
fn sgd_steps_reduce_the_loss_and_allocate_nothing() {
    let gpu = gpu();
    let plan = every_kind_plan(0.0);
    let mut net = net(&gpu, &plan, 6, 31);
    let (images, labels) = batch_data(32, 6, &plan);
    net.train_step(&images, &labels, 6, 0.05, 0).unwrap();
    let first = net.take_metrics().unwrap();
    // Steps only record what `new` built: the buffer pool neither gives nor takes.
    let pooled = gpu.pool.free_bytes();
    for step in 1..25 {
        net.train_step(&images, &labels, 6, 0.05, step).unwrap();
        if step == 23 {
            net.take_metrics().unwrap();
        }
    }
    let last = net.take_metrics().unwrap();
    assert_eq!(gpu.pool.free_bytes(), pooled);
    assert_eq!((first.count, last.count), (6, 6));
    assert!(
        last.loss_mean < 0.7 * first.loss_mean,
        "loss went from {} to {} in 24 steps",
        first.loss_mean,
        last.loss_mean
    );
    assert!(last.accuracy >= first.accuracy);
}

#[test]
fn same_seed_gives_bit_identical_parameters_after_three_steps() {
    let gpu = gpu();
    let plan = every_kind_plan(0.3);
    let (images, labels) = batch_data(41, 4, &plan);
    let run_three = |seed| {
        let mut net = net(&gpu, &plan, 4, seed);
        for step in 0..3 {
            // The last step is a partial batch.
            let n = if step == 2 { 3 } else { 4 };
            let m = n * 7 * 9 * 2;
            net.train_step(&images[..m], &labels[..n], n, 0.05, step)
                .unwrap();
        }
        net.export_state().unwrap()
    };
    let (a, b, other) = (run_three(5), run_three(5), run_three(6));
    let bits = |s: &[NamedArray]| -> Vec<u32> {
        s.iter()
            .flat_map(|x| x.data.iter().map(|v| v.to_bits()))
            .collect()
    };
    assert_eq!(a.len(), b.len());
    assert!(
        bits(&a) == bits(&b),
        "same seed, same steps, different parameters"
    );
    assert!(
        bits(&a) != bits(&other),
        "a different seed gave the same parameters"
    );
    assert!(a.iter().all(|x| x.data.iter().all(|v| v.is_finite())));
}

#[test]
fn initial_parameters_follow_keras() {
    let gpu = gpu();
    let plan = every_kind_plan(0.3);
    let state = net(&gpu, &plan, 2, 51).export_state().unwrap();
    let find = |path: &str| state.iter().find(|a| a.path == path).unwrap();
    let conv = find("model/L3_res/conv/kernel");
    let limit = (6.0f32 / (3.0 * 3.0 * 6.0 + 3.0 * 3.0 * 3.0)).sqrt();
    assert!(conv.data.iter().all(|v| v.abs() <= limit));
    assert!(
        conv.data.iter().any(|v| v.abs() > 0.8 * limit),
        "draws fill [-l, l]"
    );
    assert!(
        find("model/L3_res/conv/bias")
            .data
            .iter()
            .all(|&v| v == 0.0)
    );
    assert!(find("model/stem/bn/gamma").data.iter().all(|&v| v == 1.0));
    assert!(find("model/stem/bn/beta").data.iter().all(|&v| v == 0.0));
    assert!(
        find("model/stem/bn/moving_mean")
            .data
            .iter()
            .all(|&v| v == 0.0)
    );
    assert!(
        find("model/stem/bn/moving_variance")
            .data
            .iter()
            .all(|&v| v == 1.0)
    );
    let vel = find("optimizer/velocity/head/dense/kernel");
    assert_eq!(vel.shape, vec![4, 3]);
    assert!(vel.data.iter().all(|&v| v == 0.0));
    assert!(
        !state
            .iter()
            .any(|a| a.path == "optimizer/velocity/stem/bn/moving_mean")
    );
}

#[test]
fn state_round_trips_and_mismatches_name_the_array() {
    let gpu = gpu();
    let plan = every_kind_plan(0.3);
    let (images, labels) = batch_data(61, 3, &plan);
    let mut a = net(&gpu, &plan, 3, 62);
    a.train_step(&images, &labels, 3, 0.05, 0).unwrap();
    a.train_step(&images, &labels, 3, 0.05, 1).unwrap();
    let saved = a.export_state().unwrap();
    assert!(
        saved
            .iter()
            .any(|s| s.path.starts_with("optimizer/velocity/"))
    );
    assert!(
        saved
            .iter()
            .any(|s| s.data.iter().any(|&v| v != 0.0) && s.path.contains("velocity"))
    );

    let mut b = net(&gpu, &plan, 3, 63);
    b.import_state(&saved).unwrap();
    assert_eq!(b.export_state().unwrap(), saved);

    let mut missing = saved.clone();
    let gone = missing.remove(5).path;
    match b.import_state(&missing) {
        Err(GraphError::MissingState { path }) => assert_eq!(path, gone),
        other => panic!("expected MissingState, got {other:?}"),
    }
    let mut bent = saved.clone();
    bent[2].shape.push(1);
    let err = b.import_state(&bent).unwrap_err();
    assert!(err.to_string().contains(&bent[2].path), "{err}");
    let mut extra = saved.clone();
    extra.push(NamedArray {
        path: "model/nope".into(),
        shape: vec![1],
        data: vec![0.0],
    });
    assert!(matches!(
        b.import_state(&extra),
        Err(GraphError::UnexpectedState { .. })
    ));
}

#[test]
fn bad_batches_and_plans_are_errors() {
    let gpu = gpu();
    let plan = every_kind_plan(0.3);
    let mut n = net(&gpu, &plan, 2, 71);
    let (images, labels) = batch_data(72, 3, &plan);
    assert!(matches!(
        n.train_step(&images, &labels, 3, 0.1, 0),
        Err(GraphError::Batch(_))
    ));
    let bad_labels = [0, 7];
    let e = n.eval_step(&images[..2 * 126], &bad_labels, 2).unwrap_err();
    assert!(e.to_string().contains("label 7"), "{e}");

    let mut broken = plan.clone();
    broken.nodes[4].shape[2] += 1;
    let e = Network::new(&gpu, &broken, 2, 0, OptimizerConfig::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains(&broken.nodes[4].name), "{e}");

    // The skip projection's output left unused: it would never get a gradient.
    let mut dead = plan.clone();
    assert_eq!(dead.nodes[8].name, "sc_0_1/add");
    dead.nodes[8].inputs = vec![6, 6];
    let e = Network::new(&gpu, &dead, 2, 0, OptimizerConfig::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("sc_0_1/projection"), "{e}");
}

#[test]
fn a_training_step_applies_keras_nesterov_sgd_to_the_gradients() {
    let gpu = gpu();
    let plan = every_kind_plan(0.3);
    let mut net = net(&gpu, &plan, 3, 81);
    let (images, labels) = batch_data(82, 3, &plan);
    net.compute_gradients(&images, &labels, 3, 9).unwrap();
    let before = net.export_state().unwrap();
    let grads: Vec<(String, Vec<f32>)> = plan
        .nodes
        .iter()
        .flat_map(|node| &node.params)
        .filter(|p| p.trainable)
        .map(|p| (p.path.clone(), net.read_gradient(&p.path).unwrap()))
        .collect();
    // Same batch, same step (same dropout mask): the same gradients, then the update.
    let lr = 0.1;
    net.train_step(&images, &labels, 3, lr, 9).unwrap();
    let after = net.export_state().unwrap();
    let find =
        |s: &[NamedArray], path: &str| s.iter().find(|a| a.path == path).unwrap().data.clone();
    for (path, g) in &grads {
        // Velocity 0: v = -lr*g, w += m*v - lr*g = w - (1 + m)*lr*g.
        let w0 = find(&before, &format!("model/{path}"));
        let want: Vec<f64> = w0
            .iter()
            .zip(g)
            .map(|(&w, &g)| w as f64 - 1.9 * lr as f64 * g as f64)
            .collect();
        let got = find(&after, &format!("model/{path}"));
        assert_close(&format!("{path} after one step"), &got, &want, F32_TOL);
        let v: Vec<f64> = g.iter().map(|&g| -(lr as f64) * g as f64).collect();
        let got_v = find(&after, &format!("optimizer/velocity/{path}"));
        assert_close(&format!("{path} velocity"), &got_v, &v, F32_TOL);
    }
}

#[test]
fn memory_estimate_bounds_what_a_network_allocates() {
    // The estimate refuses networks too big for the device before anything is allocated,
    // so it must not be below what a network really takes, nor wildly above it.
    let cases: [(&str, [usize; 3], usize); 4] = [
        ("conv3x3_16bnrelu|max_pool3x3|sep3x3_32", [28, 28, 1], 16),
        ("sep3x3_32|max_pool3x3|sep5x5_64", [32, 32, 3], 8),
        (
            "conv3x3_8|sc_2|dropout|sep3x3_32|avg_pool3x3",
            [19, 23, 3],
            5,
        ),
        ("resx2reg_32_conv3x3_64bnrelu|conv5x5_16", [16, 16, 3], 7),
    ];
    for (text, input, batch) in cases {
        // A fresh device per case, so its pool holds only this network.
        let gpu = gpu();
        let arch = Arch::parse(text).unwrap();
        let plan = Plan::new(&arch, &ArchConfig::default(), input, 10).unwrap();
        let opt = OptimizerConfig {
            momentum: 0.9,
            nesterov: true,
        };
        let net = Network::new(&gpu, &plan, batch, 3, opt).unwrap();
        let used = gpu.pool.created_bytes() as u128;
        let estimate = plan.memory_estimate(batch);
        eprintln!("{text} {input:?} batch {batch}: allocated {used}, estimated {estimate}");
        assert!(
            estimate >= used,
            "{text}: estimate {estimate} < allocated {used}"
        );
        assert!(
            estimate <= 3 * used,
            "{text}: estimate {estimate} is over 3x what was allocated ({used})"
        );
        drop(net);
    }
}
