//! Op-list parsing (both spellings), the SHA-1 name, arch files, reference-space configs,
//! and a deterministic fuzz loop over the parser and lowering. No GPU.

use naseval::arch::{Arch, ArchConfig, ArchError, LayerSpec, Plan, ReferenceSpace, read_arch_file};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn ops(a: &Arch) -> Vec<&str> {
    a.ops().iter().map(String::as_str).collect()
}

#[test]
fn both_spellings_name_the_same_candidate() {
    let want = ["sep3x3_32", "sc_2", "max_pool3x3", "identity"];
    for text in [
        "sep3x3_32|sc_2|max_pool3x3|identity",
        "input|sep3x3_32|sc_2|max_pool3x3|identity|output",
        "  input | sep3x3_32 |sc_2| max_pool3x3 |identity |output \n",
        "input|sep3x3_32|sc_2|max_pool3x3|identity",
        "sep3x3_32|sc_2|max_pool3x3|identity|output",
        r#"["sep3x3_32", "sc_2", "max_pool3x3", "identity"]"#,
        r#" [ "input", "sep3x3_32", "sc_2", "max_pool3x3", "identity", "output" ] "#,
        "['sep3x3_32', 'sc_2', 'max_pool3x3', 'identity']",
    ] {
        let a = Arch::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(ops(&a), want, "{text:?}");
    }
    let a: Arch = "conv3x3_16|identity".parse().unwrap();
    assert_eq!(a.to_string(), "conv3x3_16|identity");
    assert_eq!(a.hivenas_string(), "input|conv3x3_16|identity|output");
    assert_eq!(Arch::parse(&a.hivenas_string()).unwrap(), a);
    // Only the ends are stripped: `input` inside a list is an op name (and unknown).
    let a = Arch::parse("identity|input|identity").unwrap();
    assert_eq!(ops(&a), ["identity", "input", "identity"]);
}

#[test]
fn sha1_names_match_hivenas() {
    let a = Arch::parse(r#"["conv3x3_16","identity"]"#).unwrap();
    assert_eq!(a.sha1(), "c86e57075d5382690ea25c6afaca429bc5867986");
    let a = Arch::parse("input|sep3x3_32|max_pool3x3|sep3x3_64|output").unwrap();
    assert_eq!(a.sha1(), "58336bdf3e3568af7e169372a7035ebc1207e160");
    // Skip connections are part of the name; stems are not.
    let b = Arch::parse("sep3x3_32|sc_1|max_pool3x3|sep3x3_64").unwrap();
    assert_ne!(a.sha1(), b.sha1());
}

#[test]
fn malformed_candidates_are_refused_with_a_reason() {
    for text in ["", "   ", "input|output", "[]", r#"["input","output"]"#] {
        assert!(
            matches!(Arch::parse(text), Err(ArchError::Empty)),
            "{text:?}"
        );
    }
    let e = Arch::parse("conv3x3_8||identity").unwrap_err().to_string();
    assert!(e.contains("position 1") && e.contains("empty"), "{e}");
    for text in ["[1, 2]", "[", r#"["a", 3]"#, r#"{"a": 1}]"#, r#"["a"] x"#] {
        match Arch::parse(text) {
            Err(ArchError::Syntax { .. }) => {}
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn arch_files_hold_one_candidate_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cands.txt");
    let text = "# candidates\n\ninput|conv3x3_16|identity|output\n  \n[\"sep3x3_32\"]\n";
    std::fs::write(&path, text).unwrap();
    let got = read_arch_file(&path).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, 3);
    assert_eq!(ops(&got[0].1), ["conv3x3_16", "identity"]);
    assert_eq!(got[1].0, 5);
    assert_eq!(ops(&got[1].1), ["sep3x3_32"]);

    std::fs::write(&path, "identity\nidentity||identity\n").unwrap();
    let e = read_arch_file(&path).unwrap_err().to_string();
    assert!(e.contains("cands.txt:2"), "{e}");
    std::fs::write(&path, "# nothing\n\n").unwrap();
    assert!(read_arch_file(&path).is_err());
    let e = read_arch_file(&dir.path().join("missing.txt"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.txt"), "{e}");
}

#[test]
fn the_builtin_space_holds_every_hivenas_name() {
    let space = ReferenceSpace::builtin();
    let mut want: Vec<String> = Vec::new();
    for k in [3, 5] {
        for f in [8, 16] {
            want.push(format!("conv{k}x{k}_{f}"));
        }
        for f in [32, 64, 128] {
            want.push(format!("sep{k}x{k}_{f}"));
        }
    }
    for n in [
        "max_pool3x3",
        "avg_pool3x3",
        "global_avg_pool",
        "batch_norm",
        "dropout",
    ] {
        want.push(n.into());
    }
    want.push("identity".into());
    want.extend(["conv3x3_16bnrelu".into(), "conv3x3_32bnrelu".into()]);
    for f in [64, 128, 256] {
        want.push(format!("conv3x3_{f}bnreluavgpool"));
    }
    for b in [1, 2] {
        for r in [32, 64, 128] {
            for f in [64, 128, 256] {
                want.push(format!("resx{b}reg_{r}_conv3x3_{f}bnrelu"));
            }
        }
    }
    want.sort();
    let got: Vec<&str> = space.names().collect();
    assert_eq!(got, want);
    assert_eq!(
        space.get("dropout"),
        Some(&LayerSpec::Dropout { rate: 0.15 })
    );
    assert_eq!(
        space.get("batch_norm"),
        Some(&LayerSpec::BatchNormalization {
            momentum: 0.99,
            epsilon: 1e-3
        })
    );
}

#[test]
fn a_toml_config_adds_and_overrides_entries_and_stems() {
    let cfg = ArchConfig::from_toml_str(
        r#"
        seed = 42 # keys of the rest of a config are left alone

        [stems]
        input = ["conv7x7_24"]

        [reference_space.conv7x7_24]
        type = "Conv2D"
        filters = 24
        kernel_size = 7
        padding = "same"
        activation = "relu"

        [reference_space.dropout]
        type = "Dropout"
        rate = 0.5
        "#,
    )
    .unwrap();
    assert_eq!(cfg.stems.input, ["conv7x7_24"]);
    assert_eq!(cfg.stems.output, ["global_avg_pool"]);
    assert_eq!(
        cfg.reference_space.get("dropout"),
        Some(&LayerSpec::Dropout { rate: 0.5 })
    );
    // Built-in entries stay.
    assert!(cfg.reference_space.get("sep5x5_128").is_some());
    let plan = Plan::new(&Arch::parse("dropout").unwrap(), &cfg, [28, 28, 1], 10).unwrap();
    // 7x7x1x24 + 24 = 1200; dense 24*10 + 10 = 250.
    assert_eq!(plan.trainable_params(), 1450);
    assert_eq!(plan.nodes[1].name, "stem_in0_conv7x7_24/conv");

    // The whole table survives a round trip through TOML.
    let text = toml::to_string(&cfg).unwrap();
    assert_eq!(ArchConfig::from_toml_str(&text).unwrap(), cfg);
    // And JSON.
    let json = serde_json::to_string(&cfg).unwrap();
    assert_eq!(serde_json::from_str::<ArchConfig>(&json).unwrap(), cfg);
}

#[test]
fn bad_config_entries_name_the_entry_and_the_key() {
    let cases = [
        // (entry text, words the error must hold)
        (
            "type = \"Conv2D\"\nfilters = 8\nkernel_size = 3\nfilter = 2",
            vec!["myop", "filter"],
        ),
        ("type = \"Conv3D\"\nfilters = 8", vec!["myop", "Conv3D"]),
        (
            "type = \"Conv2D\"\nkernel_size = 3",
            vec!["myop", "filters"],
        ),
        (
            "type = \"Conv2D\"\nfilters = 0\nkernel_size = 3",
            vec!["myop", "filters"],
        ),
        ("type = \"Dropout\"\nrate = 1.5", vec!["myop", "rate"]),
        (
            "type = \"MaxPooling2D\"\npool_size = 2\npadding = \"full\"",
            vec!["myop", "full"],
        ),
        ("filters = 3", vec!["myop", "type"]),
        (
            "type = \"GlobalAveragePooling2D\"\nkeepdims = true",
            vec!["myop", "keepdims"],
        ),
    ];
    for (entry, words) in cases {
        let text = format!("[reference_space.myop]\n{entry}\n");
        let e = ArchConfig::from_toml_str(&text).unwrap_err().to_string();
        for w in words {
            assert!(e.contains(w), "{entry:?}: {w:?} not in: {e}");
        }
    }
    for name in ["sc_3", "input", "output"] {
        let text = format!("[reference_space.{name}]\ntype = \"Dropout\"\nrate = 0.1\n");
        let e = ArchConfig::from_toml_str(&text).unwrap_err().to_string();
        assert!(e.contains(name), "{e}");
    }
    let e = ArchConfig::from_toml_str("[stems]\ninputs = []\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("inputs"), "{e}");
}

/// Random text from pieces of real candidates and punctuation; the parser and lowering
/// must answer every one with Ok or a typed error, never a panic.
#[test]
fn fuzz_the_parser_and_lowering_never_panic() {
    let pieces = [
        "|",
        "|",
        "|",
        "[",
        "]",
        "\"",
        "'",
        ",",
        " ",
        "\n",
        "\\",
        "input",
        "output",
        "sc_",
        "sc_1",
        "sc_2",
        "sc_0",
        "sc_99999999999999999999999",
        "0",
        "7",
        "conv3x3_8",
        "conv5x5_16",
        "sep3x3_32",
        "sep5x5_128",
        "max_pool3x3",
        "avg_pool3x3",
        "global_avg_pool",
        "batch_norm",
        "dropout",
        "identity",
        "conv3x3_64bnreluavgpool",
        "conv3x3_256bnreluavgpool",
        "resx2reg_128_conv3x3_256bnrelu",
        "é",
        "\u{0}",
        "{",
        "}",
        ":",
        "null",
        "1e999",
        "-",
    ];
    let names: Vec<String> = ReferenceSpace::builtin()
        .names()
        .map(String::from)
        .collect();
    let cfg = ArchConfig::default();
    let mut rng = StdRng::seed_from_u64(7);
    let (mut parsed, mut lowered) = (0, 0);
    for i in 0..20_000 {
        let n = rng.random_range(0..12);
        let text: String = (0..n)
            .map(|_| pieces[rng.random_range(0..pieces.len())])
            .collect();
        let text = if i % 5 == 0 {
            // Raw bytes, not only pieces.
            let bytes: Vec<u8> = (0..n * 3).map(|_| rng.random()).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            text
        };
        if let Ok(a) = Arch::parse(&text) {
            parsed += 1;
            let _ = Plan::new(&a, &cfg, [28, 28, 1], 10);
        }
    }
    // Well-formed candidates of random real ops on random small inputs.
    for _ in 0..3_000 {
        let n = rng.random_range(1..8);
        let list: Vec<String> = (0..n)
            .map(|_| {
                if rng.random_range(0..4) == 0 {
                    format!("sc_{}", rng.random_range(0..4))
                } else {
                    names[rng.random_range(0..names.len())].clone()
                }
            })
            .collect();
        let text = if rng.random() {
            list.join("|")
        } else {
            serde_json::to_string(&list).unwrap()
        };
        let a = Arch::parse(&text).unwrap();
        let input = [
            rng.random_range(1..40),
            rng.random_range(1..40),
            rng.random_range(1..4),
        ];
        if let Ok(plan) = Plan::new(&a, &cfg, input, rng.random_range(1..20)) {
            lowered += 1;
            let _ = plan.check_memory(rng.random_range(0..1000), rng.random());
        }
    }
    assert!(
        parsed > 1000 && lowered > 300,
        "parsed {parsed}, lowered {lowered}"
    );
}
