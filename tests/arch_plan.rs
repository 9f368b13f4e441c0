//! Lowering to the plan IR: parameter counts against Keras, node and parameter names,
//! skip connections, every refusal, memory checks, FLOPs and the summary. No GPU.

use std::collections::HashSet;

use naseval::arch::{Arch, ArchConfig, ArchError, Init, NodeKind, Plan, ReferenceSpace, Summary};
use naseval::ops::Padding;

const MNIST: [usize; 3] = [28, 28, 1];
const CIFAR: [usize; 3] = [32, 32, 3];

fn plan(text: &str, input: [usize; 3]) -> Plan {
    plan_with(text, input, &ArchConfig::default())
}

fn plan_with(text: &str, input: [usize; 3], cfg: &ArchConfig) -> Plan {
    let arch = Arch::parse(text).unwrap();
    Plan::new(&arch, cfg, input, 10).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn refusal(text: &str, input: [usize; 3]) -> (ArchError, String) {
    refusal_with(text, input, &ArchConfig::default())
}

fn refusal_with(text: &str, input: [usize; 3], cfg: &ArchConfig) -> (ArchError, String) {
    let arch = Arch::parse(text).unwrap();
    let e = Plan::new(&arch, cfg, input, 10).expect_err(text);
    let msg = e.to_string();
    (e, msg)
}

fn assert_holds(msg: &str, words: &[&str]) {
    for w in words {
        assert!(msg.contains(w), "{w:?} not in: {msg}");
    }
}

/// Plan invariants the graph relies on.
fn check_invariants(p: &Plan) {
    assert_eq!(p.nodes[0].kind, NodeKind::Input);
    assert_eq!(p.nodes[0].shape, p.input.to_vec());
    let last = p.nodes.last().unwrap();
    assert_eq!(last.kind, NodeKind::Dense { units: p.classes });
    assert_eq!(last.shape, [p.classes]);
    let mut names = HashSet::new();
    let mut paths = HashSet::new();
    for (i, n) in p.nodes.iter().enumerate() {
        assert!(
            names.insert(n.name.clone()),
            "duplicate node name {}",
            n.name
        );
        assert!(
            n.inputs.iter().all(|&j| j < i),
            "{} is not topological",
            n.name
        );
        let arity = match n.kind {
            NodeKind::Input => 0,
            NodeKind::Add | NodeKind::Concat => 2,
            _ => 1,
        };
        assert_eq!(n.inputs.len(), arity, "{}", n.name);
        assert!(n.shape.len() == 3 || n.shape.len() == 1, "{}", n.name);
        assert!(n.shape.iter().all(|&d| d >= 1), "{}", n.name);
        assert!(
            n.name.starts_with(&n.layer),
            "{} not in {}",
            n.name,
            n.layer
        );
        for q in &n.params {
            assert!(paths.insert(q.path.clone()), "duplicate param {}", q.path);
            assert!(q.path.starts_with(&format!("{}/", n.name)), "{}", q.path);
        }
    }
}

/// Keras's `model.trainable_weights` count and the BN moving statistics.
fn counts(text: &str, input: [usize; 3]) -> (usize, usize) {
    let p = plan(text, input);
    check_invariants(&p);
    (p.trainable_params(), p.non_trainable_params())
}

// Stem conv3x3_32bnrelu on C input channels: conv 9*C*32 + 32, BN gamma+beta 64 trainable,
// moving mean+variance 64 non-trainable. C=1: 320+64 = 384; C=3: 896+64 = 960.
#[test]
fn parameter_counts_match_keras_for_the_issue_cases() {
    // conv3x3_16 on 32 ch: 9*32*16+16 = 4624; dense 16*10+10 = 170. 384+4624+170.
    assert_eq!(counts("conv3x3_16|identity", MNIST), (5178, 64));
    // sep3x3_32 on 32: dw 9*32 = 288, pw 32*32+32 = 1056; sep5x5_64 on 32: dw 25*32 = 800,
    // pw 32*64+64 = 2112; dense 64*10+10 = 650. 384+1344+2912+650.
    assert_eq!(counts("sep3x3_32|max_pool3x3|sep5x5_64", MNIST), (5290, 64));
    assert_eq!(counts("conv3x3_16|identity", CIFAR), (5754, 64));
    assert_eq!(counts("sep3x3_32|max_pool3x3|sep5x5_64", CIFAR), (5866, 64));
    // conv3x3_16bnrelu on 32: 4624 + BN 32 (+32 moving); sep3x3_32 on 16: 144 + 16*32+32;
    // dense 32*10+10 = 330. 384+4656+688+330.
    assert_eq!(
        counts("conv3x3_16bnrelu|max_pool3x3|sep3x3_32", MNIST),
        (6058, 96)
    );
}

#[test]
fn parameter_counts_match_keras_for_cells_batch_norm_and_skips() {
    // conv3x3_64bnreluavgpool on 32 ch: conv 9*32*64+64 = 18496, BN 128 (+128 moving);
    // dense 64*10+10 = 650. 384+18624+650 = 19658; moving 64+128 = 192.
    assert_eq!(counts("conv3x3_64bnreluavgpool", MNIST), (19658, 192));
    // resx1reg_32_conv3x3_64bnrelu on 32 ch: reduce 1x1 32*32+32 = 1056; block conv
    // 9*32*64+64 = 18496, BN 128 (+128); concat 32+64 = 96 ch; dense 96*10+10 = 970.
    // 384+1056+18624+970 = 21034.
    assert_eq!(counts("resx1reg_32_conv3x3_64bnrelu", MNIST), (21034, 192));
    // resx2reg_64_conv3x3_128bnrelu on 32x32x3: stem 960; reduce 32*64+64 = 2112; block1
    // 9*64*128+128 = 73856 + BN 256; block2 9*128*128+128 = 147584 + BN 256; concat
    // 32+128 = 160 ch; dense 1610. Total 226634; moving 64+256+256 = 576.
    assert_eq!(
        counts("resx2reg_64_conv3x3_128bnrelu", CIFAR),
        (226634, 576)
    );
    // batch_norm on 32 ch: 64 trainable + 64 moving; conv3x3_8: 9*32*8+8 = 2312; dense 90.
    assert_eq!(counts("batch_norm|conv3x3_8", MNIST), (2850, 128));
    // sc_2 over sep3x3_64 and max_pool3x3: sep 288 + 32*64+64 = 2400; projection 1x1
    // 32->64 with bias 2112; dense 650. 384+2400+2112+650 = 5546.
    assert_eq!(counts("sc_2|sep3x3_64|max_pool3x3", MNIST), (5546, 64));
    // Strided projection over conv3x3_64bnreluavgpool: 384+18624+2112+650 = 21770.
    assert_eq!(counts("sc_1|conv3x3_64bnreluavgpool", MNIST), (21770, 192));
    // dropout, identity and pools have no weights: 960 + dense 32*10+10 = 1290.
    assert_eq!(
        counts("dropout|identity|avg_pool3x3|max_pool3x3", CIFAR),
        (1290, 64)
    );
}

#[test]
fn every_builtin_op_lowers_alone_and_after_shrinking() {
    let space = ReferenceSpace::builtin();
    for name in space.names() {
        for input in [MNIST, CIFAR] {
            for text in [
                name.to_string(),
                format!("conv5x5_8|conv5x5_8|{name}|identity"),
            ] {
                let arch = Arch::parse(&text).unwrap();
                let mut cfg = ArchConfig::default();
                if name == "global_avg_pool" {
                    // The output stem would pool a second time.
                    cfg.stems.output.clear();
                }
                let p = Plan::new(&arch, &cfg, input, 10)
                    .unwrap_or_else(|e| panic!("{text} on {input:?}: {e}"));
                check_invariants(&p);
            }
        }
    }
}

#[test]
fn nodes_and_params_carry_checkpoint_names() {
    let p = plan("sep3x3_32|sc_2|max_pool3x3|identity", MNIST);
    let names: Vec<&str> = p.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "input",
            "stem_in0_conv3x3_32bnrelu/conv",
            "stem_in0_conv3x3_32bnrelu/bn",
            "stem_in0_conv3x3_32bnrelu/relu",
            "L0_sep3x3_32/depthwise",
            "L0_sep3x3_32/pointwise",
            "L0_sep3x3_32/relu",
            "L2_max_pool3x3/max_pool",
            "sc_L1_L3/projection",
            "sc_L1_L3/add",
            "stem_out0_global_avg_pool/global_avg_pool",
            "head/dense",
        ]
    );
    let paths: Vec<&str> = p.params().map(|q| q.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "stem_in0_conv3x3_32bnrelu/conv/kernel",
            "stem_in0_conv3x3_32bnrelu/conv/bias",
            "stem_in0_conv3x3_32bnrelu/bn/gamma",
            "stem_in0_conv3x3_32bnrelu/bn/beta",
            "stem_in0_conv3x3_32bnrelu/bn/moving_mean",
            "stem_in0_conv3x3_32bnrelu/bn/moving_variance",
            "L0_sep3x3_32/depthwise/depthwise_kernel",
            "L0_sep3x3_32/pointwise/kernel",
            "L0_sep3x3_32/pointwise/bias",
            "sc_L1_L3/projection/kernel",
            "sc_L1_L3/projection/bias",
            "head/dense/kernel",
            "head/dense/bias",
        ]
    );
    let stem = &p.nodes[1];
    assert_eq!(stem.position, None);
    assert_eq!(stem.op, "conv3x3_32bnrelu");
    assert_eq!(
        stem.kind,
        NodeKind::Conv2d {
            filters: 32,
            kernel: 3,
            stride: 1,
            padding: Padding::Same,
            l2: Some(1e-4)
        }
    );
    assert_eq!(stem.params[0].shape, [3, 3, 1, 32]);
    assert_eq!(
        stem.params[0].init,
        Init::GlorotUniform {
            fan_in: 9,
            fan_out: 288
        }
    );
    assert_eq!(stem.params[0].l2, Some(1e-4));
    assert_eq!(stem.params[1].l2, None);
    assert_eq!(
        p.nodes[2].kind,
        NodeKind::BatchNorm {
            momentum: 0.9,
            epsilon: 1e-5
        }
    );
    assert!(!p.nodes[2].params[2].trainable && !p.nodes[2].params[3].trainable);
    assert_eq!(p.nodes[2].params[3].init, Init::Ones);
    let dw = &p.nodes[4];
    assert_eq!((dw.op.as_str(), dw.position), ("sep3x3_32", Some(0)));
    assert_eq!(
        dw.kind,
        NodeKind::Depthwise {
            kernel: 3,
            stride: 1,
            padding: Padding::Same
        }
    );
    assert_eq!(dw.params[0].shape, [3, 3, 32]);
    assert_eq!(
        dw.params[0].init,
        Init::GlorotUniform {
            fan_in: 288,
            fan_out: 9
        }
    );
    let pw = &p.nodes[5];
    assert_eq!(pw.params[0].shape, [1, 1, 32, 32]);
    assert_eq!(pw.params[0].l2, None);
    assert_eq!(
        p.nodes[7].kind,
        NodeKind::MaxPool {
            size: 3,
            stride: 1,
            padding: Padding::Same
        }
    );
    assert_eq!(
        (p.nodes[7].op.as_str(), p.nodes[7].position),
        ("max_pool3x3", Some(2))
    );
    // The skip starts at the separable conv's output and ends after `identity`, which
    // makes no node: the add sums the pool's output and the projection.
    assert_eq!(p.nodes[8].inputs, [6]);
    assert_eq!(p.nodes[9].inputs, [7, 8]);
    assert_eq!(p.nodes[8].op, "sc_2");
    let head = p.nodes.last().unwrap();
    assert_eq!(head.params[0].shape, [32, 10]);
    assert_eq!(
        head.params[0].init,
        Init::GlorotUniform {
            fan_in: 32,
            fan_out: 10
        }
    );
    assert_eq!(head.layer, "head");

    // The Plan survives JSON (the checkpoint stores it).
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), p);
    assert_eq!(
        p.sha1,
        Arch::parse("sep3x3_32|sc_2|max_pool3x3|identity")
            .unwrap()
            .sha1()
    );
}

#[test]
fn cells_lower_to_their_hivenas_layers() {
    let p = plan(
        "conv3x3_128bnreluavgpool|resx2reg_32_conv3x3_64bnrelu",
        [27, 27, 1],
    );
    let kinds: Vec<(&str, &NodeKind, &[usize])> = p.nodes[4..p.nodes.len() - 2]
        .iter()
        .map(|n| (n.name.as_str(), &n.kind, n.shape.as_slice()))
        .collect();
    let conv = |filters, kernel| NodeKind::Conv2d {
        filters,
        kernel,
        stride: 1,
        padding: Padding::Same,
        l2: Some(1e-4),
    };
    let bn = NodeKind::BatchNorm {
        momentum: 0.9,
        epsilon: 1e-5,
    };
    let pool = NodeKind::AvgPool {
        size: 2,
        stride: 2,
        padding: Padding::Same,
    };
    let l0 = "L0_conv3x3_128bnreluavgpool";
    let l1 = "L1_resx2reg_32_conv3x3_64bnrelu";
    let want: Vec<(String, NodeKind, Vec<usize>)> = vec![
        (format!("{l0}/conv"), conv(128, 3), vec![27, 27, 128]),
        (format!("{l0}/bn"), bn.clone(), vec![27, 27, 128]),
        (format!("{l0}/relu"), NodeKind::Relu, vec![27, 27, 128]),
        // 'same' 2x2 stride 2 on 27: ceil(27/2) = 14.
        (format!("{l0}/avg_pool"), pool, vec![14, 14, 128]),
        (format!("{l1}/reduce"), conv(32, 1), vec![14, 14, 32]),
        (format!("{l1}/block1/conv"), conv(64, 3), vec![14, 14, 64]),
        (format!("{l1}/block1/bn"), bn.clone(), vec![14, 14, 64]),
        (
            format!("{l1}/block1/relu"),
            NodeKind::Relu,
            vec![14, 14, 64],
        ),
        (format!("{l1}/block2/conv"), conv(64, 3), vec![14, 14, 64]),
        (format!("{l1}/block2/bn"), bn, vec![14, 14, 64]),
        (
            format!("{l1}/block2/relu"),
            NodeKind::Relu,
            vec![14, 14, 64],
        ),
        // The cell's input channels first, then the blocks'.
        (
            format!("{l1}/concat"),
            NodeKind::Concat,
            vec![14, 14, 128 + 64],
        ),
    ];
    let got: Vec<(String, NodeKind, Vec<usize>)> = kinds
        .iter()
        .map(|(n, k, s)| (n.to_string(), (*k).clone(), s.to_vec()))
        .collect();
    assert_eq!(got, want);
    let concat = &p.nodes[p.nodes.len() - 3];
    assert_eq!(concat.inputs, [7, 14]);
    // Every cell kernel carries the L2, no bias does.
    for q in p.params().filter(|q| q.path.starts_with("L")) {
        let is_kernel = q.path.ends_with("/kernel");
        assert_eq!(q.l2.is_some(), is_kernel, "{}", q.path);
    }
}

#[test]
fn skip_connections_project_with_the_stride_that_matches() {
    let p = plan("sc_1|conv3x3_64bnreluavgpool", MNIST);
    let proj = p
        .nodes
        .iter()
        .find(|n| n.name == "sc_L0_L1/projection")
        .unwrap();
    assert_eq!(
        proj.kind,
        NodeKind::Conv2d {
            filters: 64,
            kernel: 1,
            stride: 2,
            padding: Padding::Same,
            l2: None
        }
    );
    assert_eq!(proj.shape, [14, 14, 64]);
    assert_eq!(proj.params[0].shape, [1, 1, 32, 64]);
    // Odd sizes: 27 -> 14 is ceil(27/2).
    let p = plan("sc_1|conv3x3_64bnreluavgpool", [27, 25, 1]);
    let proj = p
        .nodes
        .iter()
        .find(|n| n.name == "sc_L0_L1/projection")
        .unwrap();
    assert_eq!(
        (proj.shape.as_slice(), &proj.kind),
        (&[14, 13, 64][..], &proj.kind)
    );
    assert!(matches!(proj.kind, NodeKind::Conv2d { stride: 2, .. }));
    // Two halvings: 28 -> 7 is stride 4.
    let p = plan(
        "sc_2|conv3x3_64bnreluavgpool|conv3x3_64bnreluavgpool",
        MNIST,
    );
    assert!(
        p.nodes.iter().any(|n| n.name == "sc_L0_L2/projection"
            && matches!(n.kind, NodeKind::Conv2d { stride: 4, .. }))
    );
    // Several open at once, closing on the same op in the order they were opened, and
    // nested spans.
    let p = plan("sc_2|sc_1|sep3x3_64|sc_1|identity|identity", MNIST);
    let adds: Vec<(&str, &[usize])> = p
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Add)
        .map(|n| (n.name.as_str(), n.inputs.as_slice()))
        .collect();
    let idx = |name: &str| p.nodes.iter().position(|n| n.name == name).unwrap();
    assert_eq!(adds.len(), 3);
    assert_eq!(
        adds[0],
        (
            "sc_L1_L2/add",
            &[idx("L2_sep3x3_64/relu"), idx("sc_L1_L2/projection")][..]
        )
    );
    assert_eq!(adds[1].0, "sc_L0_L4/add");
    assert_eq!(adds[2].0, "sc_L3_L4/add");
}

#[test]
fn skip_connections_that_no_projection_can_match_are_refused() {
    // conv3x3_8 is 'valid': 28 -> 26, and no stride s has ceil(28/s) = 26.
    let (e, msg) = refusal("conv3x3_16|sc_1|conv3x3_8", MNIST);
    assert!(matches!(e, ArchError::SkipShape { .. }), "{e:?}");
    assert_holds(
        &msg,
        &[
            "\"sc_1\"",
            "position 1",
            "\"conv3x3_8\" at position 2",
            "26x26",
        ],
    );
    // Across a global pooling.
    let mut cfg = ArchConfig::default();
    cfg.stems.output.clear();
    let (e, msg) = refusal_with("sc_1|global_avg_pool", MNIST, &cfg);
    assert!(matches!(e, ArchError::SkipShape { .. }), "{e:?}");
    assert_holds(&msg, &["sc_1", "position 0", "global"]);
}

#[test]
fn skip_connections_past_the_end_or_of_length_zero_are_refused() {
    let (e, msg) = refusal("conv3x3_8|sc_2|identity", MNIST);
    assert!(
        matches!(
            e,
            ArchError::SkipPastEnd {
                needed: 2,
                left: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert_holds(&msg, &["\"sc_2\"", "position 1", "past the end"]);
    // sc entries are not ops: they do not count towards a span.
    let (e, _) = refusal("sc_2|identity|sc_1", MNIST);
    assert!(matches!(e, ArchError::SkipPastEnd { .. }), "{e:?}");
    let (e, msg) = refusal("identity|sc_0|identity", MNIST);
    assert!(matches!(e, ArchError::SkipZero { .. }), "{e:?}");
    assert_holds(&msg, &["\"sc_0\"", "position 1"]);
    let (e, _) = refusal("sc_99999999999999999999999|identity", MNIST);
    assert!(matches!(e, ArchError::SkipPastEnd { .. }), "{e:?}");
}

#[test]
fn unknown_ops_list_the_known_ones_and_suggest_the_closest() {
    let (e, msg) = refusal("identity|sep3x3_23|identity", MNIST);
    let ArchError::UnknownOp {
        known, suggestion, ..
    } = &e
    else {
        panic!("{e:?}");
    };
    let mut sorted = known.clone();
    sorted.sort();
    assert_eq!(known, &sorted);
    assert_eq!(known.len(), ReferenceSpace::builtin().names().count());
    assert_eq!(suggestion.as_deref(), Some("sep3x3_32"));
    assert_holds(
        &msg,
        &[
            "\"sep3x3_23\"",
            "position 1",
            "did you mean \"sep3x3_32\"",
            "avg_pool3x3, ",
        ],
    );
    let (_, msg) = refusal("identity|zzzzzzzzzzzzzzzzzzzz", MNIST);
    assert!(!msg.contains("did you mean"), "{msg}");
    // A bad stem entry is named as such.
    let mut cfg = ArchConfig::default();
    cfg.stems.input = vec!["conv3x3_32bnrel".into()];
    let (_, msg) = refusal_with("identity", MNIST, &cfg);
    assert_holds(&msg, &["input stem entry 0", "conv3x3_32bnrelu"]);
}

#[test]
fn valid_windows_larger_than_their_input_are_refused() {
    // conv5x5 'valid' shrinks by 4: 28 -> 24 -> 20 -> 16 -> 12 -> 8 -> 4, then 4 < 5.
    let text = "conv5x5_8|conv5x5_8|conv5x5_8|conv5x5_8|conv5x5_8|conv5x5_8";
    let p = plan(text, MNIST);
    assert_eq!(p.nodes[p.nodes.len() - 4].shape, [4, 4, 8]);
    let (e, msg) = refusal(&format!("{text}|identity|conv5x5_16"), MNIST);
    assert!(matches!(e, ArchError::WindowTooLarge { .. }), "{e:?}");
    assert_holds(&msg, &["\"conv5x5_16\"", "position 7", "4x4x8", "5x5"]);
    // A valid pool from the config, going below 1x1.
    let cfg = ArchConfig::from_toml_str(
        "[reference_space.max_pool8]\ntype = \"MaxPooling2D\"\npool_size = 8\n",
    )
    .unwrap();
    let p = plan_with("max_pool8", MNIST, &cfg);
    assert_eq!(p.nodes[p.nodes.len() - 3].shape, [3, 3, 32]);
    let (e, msg) = refusal_with("max_pool8|max_pool8", MNIST, &cfg);
    assert!(matches!(e, ArchError::WindowTooLarge { .. }), "{e:?}");
    assert_holds(&msg, &["\"max_pool8\"", "position 1", "pool", "below 1x1"]);
}

#[test]
fn spatial_ops_after_global_pooling_are_refused() {
    // The output stem pools a second time.
    let (e, msg) = refusal("global_avg_pool", MNIST);
    assert!(
        matches!(e, ArchError::AfterGlobalPool { channels: 32, .. }),
        "{e:?}"
    );
    assert_holds(&msg, &["\"global_avg_pool\"", "output stem entry 0"]);
    let (e, msg) = refusal("global_avg_pool|dropout|sep3x3_32", MNIST);
    assert!(matches!(e, ArchError::AfterGlobalPool { .. }), "{e:?}");
    assert_holds(&msg, &["\"sep3x3_32\"", "position 2"]);
    // Ops that accept a flat tensor are fine there.
    let mut cfg = ArchConfig::default();
    cfg.stems.output.clear();
    let p = plan_with("global_avg_pool|batch_norm|dropout|identity", MNIST, &cfg);
    check_invariants(&p);
    assert_eq!(p.trainable_params(), 384 + 64 + 330);
}

#[test]
fn a_dense_head_on_a_spatial_tensor_and_empty_candidates_are_refused() {
    let mut cfg = ArchConfig::default();
    cfg.stems.output.clear();
    let (e, msg) = refusal_with("conv3x3_8", MNIST, &cfg);
    assert!(matches!(e, ArchError::HeadNotFlat { .. }), "{e:?}");
    assert_holds(&msg, &["Dense", "26x26x8", "global_avg_pool"]);
    let e = Plan::new(&Arch::new(vec![]), &ArchConfig::default(), MNIST, 10).unwrap_err();
    assert!(matches!(e, ArchError::Empty), "{e:?}");
    let arch = Arch::parse("identity").unwrap();
    assert!(Plan::new(&arch, &ArchConfig::default(), [0, 28, 1], 10).is_err());
    assert!(Plan::new(&arch, &ArchConfig::default(), MNIST, 0).is_err());
    // No stems at all: the image goes to the Dense head through global pooling only.
    cfg.stems.input.clear();
    let p = plan_with("global_avg_pool", CIFAR, &cfg);
    assert_eq!(p.trainable_params(), 3 * 10 + 10);
}

#[test]
fn memory_checks_name_the_node_and_the_largest_batch_that_fits() {
    let p = plan("sep3x3_128|max_pool3x3", CIFAR);
    // Largest activation: 32x32x128 floats per image = 524288 bytes.
    let (node, bytes) = p.largest_tensor(1);
    assert_eq!((node.as_str(), bytes), ("L0_sep3x3_128/pointwise", 524_288));
    assert!(p.check_memory(128, 128 << 20).is_ok());
    let limit = 10 * 524_288 + 100;
    let e = p.check_memory(128, limit).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ArchError::TooLarge { batch: 128, .. }), "{e:?}");
    assert_holds(
        &msg,
        &["L0_sep3x3_128/pointwise", "largest batch that fits is 10"],
    );
    assert!(p.check_memory(10, limit).is_ok());
    assert!(p.check_memory(11, limit).is_err());
    // 400000 bytes: every parameter fits, one image's 524288-byte activation does not.
    let msg = p.check_memory(1, 400_000).unwrap_err().to_string();
    assert_holds(&msg, &["Even one image"]);
    let msg = p.check_memory(1, 1000).unwrap_err().to_string();
    assert_holds(&msg, &["A parameter tensor alone"]);
}

#[test]
fn flops_follow_the_stated_rule() {
    let p = plan("conv3x3_16|identity", MNIST);
    // Stem conv fed by the image: 2*28*28*32*9*1 + 28*28*32 = 476672, backward once.
    assert_eq!(p.node_flops(1), (476_672.0, 476_672.0));
    // BN: 4 per element forward, twice that backward.
    assert_eq!(p.node_flops(2), (4.0 * 25088.0, 8.0 * 25088.0));
    // conv3x3_16 on 28x28x32 valid -> 26x26x16: 2*10816*9*32 + 10816, backward twice.
    let f = 2.0 * 10816.0 * 288.0 + 10816.0;
    assert_eq!(p.node_flops(4), (f, 2.0 * f));
    // Dense 16 -> 10: 2*160 + 10.
    assert_eq!(p.node_flops(p.nodes.len() - 1), (330.0, 660.0));
    let total: f64 = (0..p.nodes.len()).map(|i| p.node_flops(i).0).sum();
    assert_eq!(p.flops_forward(), total);
    assert!(p.flops_backward() > p.flops_forward());
}

#[test]
fn the_summary_has_keras_rows_totals_and_json_fields() {
    let p = plan("input|sep3x3_32|sc_2|max_pool3x3|identity|output", MNIST);
    let s = Summary::new(&p);
    let rows: Vec<(&str, usize)> = s
        .layers
        .iter()
        .map(|l| (l.name.as_str(), l.trainable_params))
        .collect();
    assert_eq!(
        rows,
        [
            ("input", 0),
            ("stem_in0_conv3x3_32bnrelu", 384),
            ("L0_sep3x3_32", 1344),
            ("L2_max_pool3x3", 0),
            ("sc_L1_L3", 1056),
            ("stem_out0_global_avg_pool", 0),
            ("head", 330),
        ]
    );
    assert_eq!(s.trainable_params, 384 + 1344 + 1056 + 330);
    let j = s.to_json();
    assert_eq!(j["trainable_params"], 3114);
    assert_eq!(j["non_trainable_params"], 64);
    assert_eq!(j["sha1"], p.sha1.as_str());
    assert_eq!(j["layers"].as_array().unwrap().len(), 7);
    assert_eq!(
        j["layers"][2]["output_shape"],
        serde_json::json!([28, 28, 32])
    );
    assert_eq!(j["layers"][2]["nodes"][0]["kind"], "Depthwise");
    let table = s.table();
    assert_holds(
        &table,
        &[
            "L0_sep3x3_32",
            "28x28x32",
            "Trainable params: 3114",
            "Non-trainable params: 64",
        ],
    );
    assert!(table.contains(&p.sha1));
}
