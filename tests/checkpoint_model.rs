//! Model checkpoints: a real-sized round trip, shapes that do not fit the architecture,
//! truncation at every 1/16th, the file names, and `naseval inspect` (text, JSON, exit 2).

use std::path::Path;
use std::process::Command;

use naseval::checkpoint::{
    CheckpointError, CheckpointFile, Dataset, Group, LrSchedule, ModelCheckpoint, NamedArray,
    checkpoint_file_name, file_name_for_sha1, is_checkpoint_file_name, is_temp_file_name, sha1_hex,
    to_bytes, write_atomic,
};
use serde_json::json;

/// The tensors of a CIFAR-10 candidate `[sep3x3_64, resx1reg_R64_conv3x3_128bnrelu]` with
/// the default stems: about 230k parameters, so with velocities a 1.9 MB file.
fn tensor_shapes() -> Vec<(String, Vec<usize>)> {
    let mut t = Vec::new();
    let mut add = |layer: &str, name: &str, shape: &[usize], trainable: bool| {
        t.push((format!("model/{layer}/{name}"), shape.to_vec()));
        if trainable {
            t.push((format!("optimizer/velocity/{layer}/{name}"), shape.to_vec()));
        }
    };
    for (layer, name, shape) in [
        ("S0_conv3x3_32bnrelu", "conv/kernel", &[3, 3, 3, 32][..]),
        ("S0_conv3x3_32bnrelu", "conv/bias", &[32]),
        ("S0_conv3x3_32bnrelu", "bn", &[32]),
        ("L0_sep3x3_64", "depthwise/kernel", &[3, 3, 32]),
        ("L0_sep3x3_64", "pointwise/kernel", &[1, 1, 32, 64]),
        ("L0_sep3x3_64", "pointwise/bias", &[64]),
        ("L1_resx1reg", "reduce/kernel", &[1, 1, 64, 64]),
        ("L1_resx1reg", "reduce/bias", &[64]),
        ("L1_resx1reg", "block0/conv/kernel", &[3, 3, 64, 128]),
        ("L1_resx1reg", "block0/conv/bias", &[128]),
        ("L1_resx1reg", "block0/bn", &[128]),
        ("L1_resx1reg", "block1/conv/kernel", &[3, 3, 128, 128]),
        ("L1_resx1reg", "block1/conv/bias", &[128]),
        ("L1_resx1reg", "block1/bn", &[128]),
        ("dense", "kernel", &[192, 10]),
        ("dense", "bias", &[10]),
    ] {
        if let Some(prefix) = name.strip_suffix("bn") {
            add(layer, &format!("{prefix}bn/gamma"), shape, true);
            add(layer, &format!("{prefix}bn/beta"), shape, true);
            add(layer, &format!("{prefix}bn/moving_mean"), shape, false);
            add(layer, &format!("{prefix}bn/moving_variance"), shape, false);
        } else {
            add(layer, name, shape, true);
        }
    }
    t
}

fn real_model() -> ModelCheckpoint {
    let tensors = tensor_shapes()
        .into_iter()
        .enumerate()
        .map(|(i, (path, shape))| {
            let n: usize = shape.iter().product();
            let data = (0..n)
                .map(|j| ((i * 31 + j) % 997) as f32 * 1e-3 - 0.5)
                .collect();
            NamedArray { path, shape, data }
        })
        .collect();
    ModelCheckpoint {
        ops: vec!["sep3x3_64".into(), "resx1reg_64_conv3x3_128bnrelu".into()],
        input_stem: vec!["conv3x3_32bnrelu".into()],
        output_stem: vec!["global_avg_pool".into()],
        reference_space: json!({
            "sep3x3_64": {"type": "SeparableConv2D", "filters": 64, "kernel_size": 3},
        }),
        dataset: "cifar10".into(),
        input_shape: [32, 32, 3],
        classes: 10,
        config: json!({"epochs": 5, "batch_size": 128, "seed": 42}),
        tensors,
        optimizer_step: 1875,
        schedule: LrSchedule {
            initial_lr: 0.08,
            final_lr: 0.01,
            epochs: 5,
            steps_per_epoch: 313,
        },
        rng_state: vec![42, 3],
        history: json!({"loss": [2.1, 1.7, 1.5], "val_accuracy": [0.31, 0.42, 0.47]}),
        momentum_record: json!({}),
        epochs_trained: 3,
        last_metrics: json!({"val_accuracy": 0.47, "val_loss": 1.52}),
        written_by: String::new(),
        origin: None,
    }
}

#[test]
fn real_sized_model_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let m = real_model();
    let path = dir.path().join(m.file_name(false));
    m.save(&path).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 1_800_000, "{size} bytes");

    let back = ModelCheckpoint::load(&path).unwrap();
    assert_eq!(back.written_by, env!("CARGO_PKG_VERSION"));
    assert_eq!(back.origin.as_deref(), Some(path.as_path()));
    let mut expected = m.clone();
    expected.tensors.sort_by(|a, b| a.path.cmp(&b.path));
    expected.written_by = back.written_by.clone();
    expected.origin = back.origin.clone();
    assert_eq!(back, expected);
    back.check_tensors(&tensor_shapes()).unwrap();
}

#[test]
fn shapes_that_do_not_fit_the_architecture_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.ckpt");
    real_model().save(&path).unwrap();
    let m = ModelCheckpoint::load(&path).unwrap();

    // A conv with 16 filters where the architecture has 32.
    let mut shapes = tensor_shapes();
    shapes[0].1 = vec![3, 3, 3, 16];
    let e = m.check_tensors(&shapes).unwrap_err();
    let CheckpointError::ShapeMismatch {
        path: p,
        expected,
        found,
        ..
    } = &e
    else {
        panic!("{e}");
    };
    assert_eq!(p, "model/S0_conv3x3_32bnrelu/conv/kernel");
    assert_eq!(
        (expected.as_slice(), found.as_slice()),
        (&[3, 3, 3, 16][..], &[3, 3, 3, 32][..])
    );
    let msg = e.to_string();
    assert!(
        msg.contains("m.ckpt") && msg.contains("[3, 3, 3, 16]"),
        "{msg}"
    );

    // A tensor the architecture has and the file lacks.
    let mut shapes = tensor_shapes();
    shapes.push(("model/L2_extra/kernel".into(), vec![3]));
    let e = m.check_tensors(&shapes).unwrap_err();
    assert!(
        matches!(&e, CheckpointError::Missing { path, .. } if path == "model/L2_extra/kernel"),
        "{e}"
    );

    // A tensor the file has and the architecture lacks.
    let mut shapes = tensor_shapes();
    let gone = shapes.pop().unwrap().0;
    let e = m.check_tensors(&shapes).unwrap_err();
    assert!(
        matches!(&e, CheckpointError::UnexpectedTensor { path, .. } if *path == gone),
        "{e}"
    );
}

#[test]
fn truncation_at_every_sixteenth_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.ckpt");
    real_model().save(&full).unwrap();
    let bytes = std::fs::read(&full).unwrap();
    let cut_path = dir.path().join("cut.ckpt");
    for k in 0..16 {
        let cut = bytes.len() * k / 16;
        std::fs::write(&cut_path, &bytes[..cut]).unwrap();
        let e = ModelCheckpoint::load(&cut_path).unwrap_err();
        assert!(
            matches!(
                e,
                CheckpointError::Truncated { .. } | CheckpointError::NotACheckpoint { .. }
            ),
            "cut at {k}/16: {e}"
        );
        assert!(e.to_string().contains("cut.ckpt"), "{e}");
    }
}

#[test]
fn model_level_problems_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.ckpt");

    // A tensor outside model/ and optimizer/ cannot be saved.
    let mut m = real_model();
    m.tensors[0].path = "weights/x".into();
    let e = m.save(&path).unwrap_err();
    assert!(matches!(e, CheckpointError::InvalidTree { .. }), "{e}");

    // A container that is not a model checkpoint.
    let mut g = Group::new();
    g.insert("x", Dataset::string("hi")).unwrap();
    write_atomic(&path, &g).unwrap();
    let e = ModelCheckpoint::load(&path).unwrap_err();
    assert!(
        matches!(&e, CheckpointError::Missing { what, .. } if what.contains("kind")),
        "{e}"
    );

    // A stored SHA-1 that is not the op list's, and a tensor that is not f32.
    let mut g = real_model().to_group().unwrap();
    g.set_attr("sha1", sha1_hex(&["other"]));
    write_atomic(&path, &g).unwrap();
    let e = ModelCheckpoint::load(&path).unwrap_err();
    assert!(
        matches!(&e, CheckpointError::Corrupt { path, .. } if path == "/@sha1"),
        "{e}"
    );
    let mut g = real_model().to_group().unwrap();
    g.insert("model/int", Dataset::new(vec![2], vec![1i32, 2]).unwrap())
        .unwrap();
    write_atomic(&path, &g).unwrap();
    let e = ModelCheckpoint::load(&path).unwrap_err();
    assert!(
        matches!(&e, CheckpointError::WrongType { path, .. } if path == "model/int"),
        "{e}"
    );

    // A newer model schema.
    let mut g = real_model().to_group().unwrap();
    g.set_attr("schema", 99u32);
    write_atomic(&path, &g).unwrap();
    let e = ModelCheckpoint::load(&path).unwrap_err();
    assert!(e.to_string().contains("upgrade naseval"), "{e}");

    // Invalid JSON in a metadata document.
    let mut g = real_model().to_group().unwrap();
    let naseval::checkpoint::Node::Group(meta) = g.children.get_mut("meta").unwrap() else {
        panic!("meta is a group");
    };
    meta.children.insert(
        "history".into(),
        naseval::checkpoint::Node::Dataset(Dataset::string("{not json")),
    );
    write_atomic(&path, &g).unwrap();
    let e = ModelCheckpoint::load(&path).unwrap_err();
    assert!(
        matches!(&e, CheckpointError::Json { path, .. } if path == "meta/history"),
        "{e}"
    );
}

#[test]
fn file_names_follow_hivenas() {
    // sha1("conv3x3_16identity"), computed with Python's hashlib.
    let sha = "c86e57075d5382690ea25c6afaca429bc5867986";
    assert_eq!(sha1_hex(&["conv3x3_16", "identity"]), sha);
    assert_eq!(
        sha1_hex::<&str>(&[]),
        "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    );
    assert_eq!(
        checkpoint_file_name(&["conv3x3_16", "identity"], false),
        format!("{sha}.ckpt")
    );
    assert_eq!(file_name_for_sha1(sha, true), format!("{sha}.full.ckpt"));
    assert!(is_checkpoint_file_name(&format!("{sha}.ckpt")));
    assert!(is_checkpoint_file_name(&format!("{sha}.full.ckpt")));
    let tmp = format!(".{sha}.ckpt.1234.0.tmp");
    assert!(is_temp_file_name(&tmp) && !is_checkpoint_file_name(&tmp));
    assert!(!is_checkpoint_file_name("abc.ckpt"));
    assert!(!is_checkpoint_file_name(&format!("{sha}.h5")));
}

fn naseval(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_naseval"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn inspect_prints_the_tree_and_fails_with_2_on_corrupt_files() {
    let dir = tempfile::tempdir().unwrap();
    let m = real_model();
    let path = dir.path().join(m.file_name(true));
    m.save(&path).unwrap();
    let p = path.to_str().unwrap();

    let (code, out, err) = naseval(&["inspect", p]);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "sep3x3_64 resx1reg_64_conv3x3_128bnrelu",
        &m.sha1(),
        "epochs trained: 3",
        "val_accuracy",
        "/model/S0_conv3x3_32bnrelu/conv/kernel",
        "Dataset {f32 [3, 3, 3, 32], 3.4 KiB}",
        "/optimizer/velocity/dense/kernel",
        "@optimizer_step = 1875",
    ] {
        assert!(out.contains(needle), "`{needle}` not in:\n{out}");
    }

    let (code, out, err) = naseval(&["inspect", "--json", p]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["model"]["sha1"], m.sha1());
    assert_eq!(v["model"]["epochs_trained"], 3);
    let nodes = v["nodes"].as_array().unwrap();
    let kernel = nodes
        .iter()
        .find(|n| n["path"] == "/model/dense/kernel")
        .unwrap();
    assert_eq!(kernel["shape"], json!([192, 10]));
    assert_eq!(kernel["dtype"], "f32");

    // A flipped byte in the middle: the typed error, exit code 2.
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    let bad = dir.path().join("bad.ckpt");
    std::fs::write(&bad, &bytes).unwrap();
    let (code, _, err) = naseval(&["inspect", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("checksum mismatch") && err.contains("bad.ckpt"),
        "{err}"
    );

    // A plain container (not a model) is listed without the model header.
    let mut g = Group::new();
    g.insert("a/b", Dataset::new(vec![2], vec![1u64, 2]).unwrap())
        .unwrap();
    let plain = dir.path().join("plain.ckpt");
    std::fs::write(&plain, to_bytes(&g).unwrap()).unwrap();
    let (code, out, err) = naseval(&["inspect", plain.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("/a/b") && !out.contains("sha1"), "{out}");
    assert!(CheckpointFile::open(Path::new(&plain)).is_ok());

    let (code, _, err) = naseval(&["inspect", dir.path().join("none.ckpt").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
}
