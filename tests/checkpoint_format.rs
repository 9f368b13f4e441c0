//! The checkpoint container: round trips of every dtype, nested groups and attributes;
//! corruption (flipped bytes, truncation, newer versions) detected with typed errors; a
//! deterministic mutation fuzzer over the reader; the fuzz seeds and regressions.

use std::path::Path;

use naseval::checkpoint::{
    ALIGN, Attr, CheckpointError, CheckpointFile, Data, Dataset, Dtype, FORMAT_VERSION, Group,
    MAGIC, Node, to_bytes, write_atomic,
};
use rand::{Rng, SeedableRng, rngs::StdRng};

const NAME: &str = "test.ckpt";

fn read(bytes: &[u8]) -> Result<CheckpointFile, CheckpointError> {
    CheckpointFile::from_bytes(Path::new(NAME), bytes)
}

/// A tree with one dataset of every dtype (odd sizes, a scalar, an empty one), nested
/// groups, and attributes of every kind on groups and datasets.
fn sample_tree() -> Group {
    let mut root = Group::new();
    root.set_attr("title", "every dtype");
    root.set_attr("count", 7u64);
    root.set_attr("neg", -3i64);
    root.set_attr("small", 200u8);
    root.set_attr("i", -5i32);
    root.set_attr("u", 5u32);
    root.set_attr("f", 0.1f32);
    root.set_attr("d", -2.5e-300f64);
    root.set_attr("dims", vec![3u64, 5, 7]);
    root.set_attr(
        "names",
        vec!["a".to_string(), String::new(), "ünï".to_string()],
    );
    root.set_attr("floats", vec![1.5f32, f32::INFINITY]);
    root.set_attr("empty", Vec::<i32>::new());
    let ds = |shape: Vec<usize>, data: Data| Dataset::new(shape, data).unwrap();
    root.insert("u8", ds(vec![3, 5], Data::U8((0..15).collect())))
        .unwrap();
    root.insert("ints/i32", ds(vec![7], Data::I32((-3..4).collect())))
        .unwrap();
    root.insert("ints/u32", ds(vec![1, 3], Data::U32(vec![0, 1, u32::MAX])))
        .unwrap();
    root.insert("ints/i64", ds(vec![], Data::I64(vec![i64::MIN])))
        .unwrap();
    root.insert("ints/u64", ds(vec![2, 0], Data::U64(vec![])))
        .unwrap();
    let f: Vec<f32> = (0..3 * 7 * 9 * 5).map(|i| i as f32 * 0.37 - 11.0).collect();
    root.insert(
        "deep/er/still/f32",
        ds(vec![3, 7, 9, 5], Data::F32(f)).with_attr("unit", "m"),
    )
    .unwrap();
    root.insert("f64", ds(vec![2], Data::F64(vec![f64::MIN_POSITIVE, -0.0])))
        .unwrap();
    let strs = vec![
        "hello".to_string(),
        String::new(),
        "{\"json\": [1, 2]}".to_string(),
    ];
    root.insert("text/strs", ds(vec![3], Data::Str(strs)))
        .unwrap();
    root.insert("text/one", Dataset::string("a scalar string"))
        .unwrap();
    root.group_mut("empty/group")
        .unwrap()
        .set_attr("note", "nothing inside");
    root
}

#[test]
fn round_trip_every_dtype_nested_groups_and_attributes() {
    let tree = sample_tree();
    let bytes = to_bytes(&tree).unwrap();
    let f = read(&bytes).unwrap();
    assert_eq!(f.version(), FORMAT_VERSION);
    assert_eq!(f.to_group(), tree);

    // Every dtype is present, and the typed views agree with the owned copies.
    let dtypes: std::collections::HashSet<Dtype> = f
        .walk()
        .iter()
        .filter_map(|e| e.as_dataset().map(|d| d.dtype()))
        .collect();
    assert_eq!(dtypes.len(), Dtype::ALL.len(), "{dtypes:?}");
    let d = f.dataset("deep/er/still/f32").unwrap();
    assert_eq!(d.shape(), &[3, 7, 9, 5]);
    assert_eq!(d.view::<f32>().unwrap()[10], 10.0 * 0.37 - 11.0);
    assert_eq!(d.attrs()["unit"], Attr::Str("m".into()));
    assert_eq!(
        f.dataset("ints/i64").unwrap().view::<i64>().unwrap(),
        &[i64::MIN]
    );
    assert_eq!(
        f.dataset("text/strs").unwrap().strings().unwrap(),
        ["hello", "", "{\"json\": [1, 2]}"]
    );
    assert!(matches!(
        f.dataset("u8").unwrap().view::<f32>(),
        Err(CheckpointError::WrongType { .. })
    ));
    assert!(matches!(
        f.dataset("nope/x"),
        Err(CheckpointError::Missing { .. })
    ));
    assert!(matches!(
        f.dataset("ints"),
        Err(CheckpointError::WrongType { .. })
    ));

    // Views are in place: every payload sits at an aligned offset of an aligned buffer.
    for e in f.walk() {
        if let Some(d) = e.as_dataset() {
            let off = d.bytes().as_ptr() as usize - f.bytes().as_ptr() as usize;
            assert_eq!(off % ALIGN, 0, "{}", e.path());
            assert_eq!(d.bytes().as_ptr() as usize % ALIGN, 0, "{}", e.path());
        }
    }

    // The image is deterministic.
    assert_eq!(to_bytes(&f.to_group()).unwrap(), bytes);
}

#[test]
fn round_trip_through_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.ckpt");
    let tree = sample_tree();
    write_atomic(&path, &tree).unwrap();
    let mut changed = tree.clone();
    changed.set_attr("count", 8u64);
    write_atomic(&path, &changed).unwrap();
    assert_eq!(CheckpointFile::open(&path).unwrap().to_group(), changed);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "temporary files left behind: {left:?}");
}

#[test]
fn writer_rejects_invalid_trees() {
    let mut g = Group::new();
    assert!(Dataset::new(vec![2, 3], vec![1.0f32; 5]).is_err());
    let ok = || Dataset::new(vec![1], vec![1u8]).unwrap();
    for bad in ["a//", "", "x/..", "x/\0"] {
        assert!(g.insert(bad, ok()).is_err(), "{bad:?} accepted");
    }
    g.insert("a/b", ok()).unwrap();
    assert!(g.insert("a/b", ok()).is_err(), "duplicate accepted");
    assert!(g.insert("a/b/c", ok()).is_err(), "dataset used as a group");
    let mut bad_shape = Group::new();
    bad_shape.children.insert(
        "x".into(),
        Node::Dataset(Dataset {
            shape: vec![4],
            data: Data::F32(vec![0.0; 3]),
            attrs: Default::default(),
        }),
    );
    let e = to_bytes(&bad_shape).unwrap_err();
    assert!(e.to_string().contains("`x`"), "{e}");
    // Nesting: 64 levels are fine, 65 are refused by the writer (the reader's limit).
    let deep = |n: usize| vec!["d"; n].join("/");
    let mut g = Group::new();
    g.insert(&deep(64), ok()).unwrap();
    read(&to_bytes(&g).unwrap()).unwrap();
    let mut g = Group::new();
    g.insert(&deep(65), ok()).unwrap();
    assert!(to_bytes(&g).is_err());

    let mut bad_attr = Group::new();
    bad_attr.set_attr("a/b", 1u8);
    assert!(to_bytes(&bad_attr).is_err());
}

/// Where the index and the payloads lie in an image, from the header and the reader.
fn regions(bytes: &[u8]) -> (usize, Vec<(String, usize, usize)>) {
    let f = read(bytes).unwrap();
    let index = u64::from_le_bytes(bytes[24..32].try_into().unwrap()) as usize;
    let base = f.bytes().as_ptr() as usize;
    let data = f
        .walk()
        .iter()
        .filter_map(|e| {
            let d = e.as_dataset()?;
            let off = d.bytes().as_ptr() as usize - base;
            (!d.bytes().is_empty()).then(|| (e.path(), off, d.bytes().len()))
        })
        .collect();
    (index, data)
}

#[test]
fn flipped_bytes_are_detected_in_header_index_and_data() {
    let bytes = to_bytes(&sample_tree()).unwrap();
    let (index, data) = regions(&bytes);
    let flip = |at: usize| {
        let mut b = bytes.clone();
        b[at] ^= 0x10;
        read(&b)
            .err()
            .unwrap_or_else(|| panic!("flip at {at} not detected"))
    };

    // Header: each field, magic and version included.
    for at in 0..64 {
        let e = flip(at);
        match at {
            0..8 => assert!(
                matches!(e, CheckpointError::NotACheckpoint { .. }),
                "{at}: {e}"
            ),
            8..12 => assert!(
                matches!(
                    e,
                    CheckpointError::NewerVersion { .. } | CheckpointError::Checksum { .. }
                ),
                "{at}: {e}"
            ),
            _ => assert!(
                matches!(&e, CheckpointError::Checksum { what, .. } if what == "header"),
                "{at}: {e}"
            ),
        }
    }

    // Index: every byte.
    for at in index..bytes.len() {
        let e = flip(at);
        assert!(
            matches!(&e, CheckpointError::Checksum { what, .. } if what == "index"),
            "{at}: {e}"
        );
    }

    // Data: the first, a middle and the last byte of each payload, and the error names
    // the dataset.
    for (path, off, len) in &data {
        for at in [*off, off + len / 2, off + len - 1] {
            let e = flip(at);
            assert!(
                matches!(&e, CheckpointError::Checksum { what, .. }
                    if what == &format!("dataset `{path}`")),
                "{at}: {e}"
            );
            assert!(e.to_string().contains(NAME), "{e}");
        }
    }

    // Padding between payloads is checked too: every byte of the file is covered.
    let mut covered = vec![false; bytes.len()];
    covered[..64].fill(true);
    covered[index..].fill(true);
    for (_, off, len) in &data {
        covered[*off..off + len].fill(true);
    }
    let pad = covered
        .iter()
        .position(|c| !c)
        .expect("the sample has padding");
    let e = flip(pad);
    assert!(matches!(e, CheckpointError::Corrupt { .. }), "{e}");
}

/// Recomputes the header checksum after a test edited header fields.
fn reseal_header(b: &mut [u8]) {
    let crc = crc32fast::hash(&b[..60]);
    b[60..64].copy_from_slice(&crc.to_le_bytes());
}

/// Recomputes the index and header checksums after a test edited the index.
fn reseal(b: &mut [u8]) {
    let index = u64::from_le_bytes(b[24..32].try_into().unwrap()) as usize;
    if index <= b.len() {
        let crc = crc32fast::hash(&b[index..]);
        b[40..44].copy_from_slice(&crc.to_le_bytes());
    }
    reseal_header(b);
}

#[test]
fn a_newer_format_version_asks_for_an_upgrade() {
    let mut b = to_bytes(&sample_tree()).unwrap();
    b[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    reseal_header(&mut b);
    let e = read(&b).err().unwrap();
    let CheckpointError::NewerVersion {
        found, supported, ..
    } = e
    else {
        panic!("{e}");
    };
    assert_eq!((found, supported), (FORMAT_VERSION + 1, FORMAT_VERSION));
    let msg = e.to_string();
    assert!(
        msg.contains("upgrade naseval") && msg.contains(NAME),
        "{msg}"
    );

    // Version 0 never existed.
    b[8..12].copy_from_slice(&0u32.to_le_bytes());
    reseal_header(&mut b);
    assert!(matches!(read(&b), Err(CheckpointError::Corrupt { .. })));
}

#[test]
fn truncation_and_trailing_bytes_are_detected() {
    let bytes = to_bytes(&sample_tree()).unwrap();
    for cut in 0..bytes.len() {
        let e = read(&bytes[..cut])
            .err()
            .unwrap_or_else(|| panic!("cut {cut} accepted"));
        assert!(
            matches!(
                e,
                CheckpointError::Truncated { .. } | CheckpointError::NotACheckpoint { .. }
            ),
            "cut at {cut}: {e}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        read(&longer),
        Err(CheckpointError::Corrupt { .. })
    ));
    assert!(matches!(
        read(b"PK\x03\x04 a zip file"),
        Err(CheckpointError::NotACheckpoint { .. })
    ));
    assert!(matches!(
        read(&MAGIC[..5]),
        Err(CheckpointError::Truncated { .. })
    ));
}

#[test]
fn structural_lies_behind_valid_checksums_are_typed_errors() {
    // Edits that keep the checksums valid, so only the structural checks can catch them.
    let bytes = to_bytes(&sample_tree()).unwrap();
    let index = u64::from_le_bytes(bytes[24..32].try_into().unwrap()) as usize;
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "huge node count",
            Box::new(move |b| b[index..index + 4].copy_from_slice(&u32::MAX.to_le_bytes())),
        ),
        (
            "root with a parent",
            Box::new(move |b| b[index + 4..index + 8].copy_from_slice(&0u32.to_le_bytes())),
        ),
        (
            "index offset past the end",
            Box::new(|b| b[24..32].copy_from_slice(&u64::MAX.to_le_bytes())),
        ),
        (
            "file length lie",
            Box::new(|b| b[16..24].copy_from_slice(&u64::MAX.to_le_bytes())),
        ),
        ("index cut", Box::new(|b| b.truncate(b.len() - 3))),
    ];
    for (what, edit) in cases {
        let mut b = bytes.clone();
        edit(&mut b);
        if what == "index cut" {
            let len = b.len() as u64;
            b[16..24].copy_from_slice(&len.to_le_bytes());
            let il = len - index as u64;
            b[32..40].copy_from_slice(&il.to_le_bytes());
        }
        reseal(&mut b);
        let e = read(&b).err().unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(
            matches!(
                e,
                CheckpointError::Corrupt { .. } | CheckpointError::Truncated { .. }
            ),
            "{what}: {e}"
        );
    }
}

/// Applies one random mutation; the kinds are picked so that many keep the checksums
/// valid (`reseal`) and reach the structural checks.
fn mutate(
    rng: &mut StdRng,
    valid: &[u8],
    index: usize,
    data: &[(String, usize, usize)],
) -> Vec<u8> {
    let mut b = valid.to_vec();
    let interesting: [u64; 8] = [0, 1, 7, 63, 64, 0xff, u32::MAX as u64, u64::MAX];
    match rng.random_range(0..7) {
        // A few random bytes anywhere.
        0 => {
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..b.len());
                b[at] = rng.random();
            }
        }
        // A truncation.
        1 => b.truncate(rng.random_range(0..b.len())),
        // Index bytes changed, checksums fixed.
        2 => {
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(index..b.len());
                b[at] = rng.random();
            }
            reseal(&mut b);
        }
        // An interesting integer written over the index, checksums fixed.
        3 => {
            let v = interesting[rng.random_range(0..interesting.len())];
            let w = if rng.random() { 4 } else { 8 };
            let at = rng.random_range(index..b.len() - w);
            b[at..at + w].copy_from_slice(&v.to_le_bytes()[..w]);
            reseal(&mut b);
        }
        // Index bytes inserted or removed, lengths and checksums fixed.
        4 => {
            let at = rng.random_range(index + 1..b.len());
            if rng.random() {
                let n = rng.random_range(1..9);
                for _ in 0..n {
                    b.insert(at, rng.random());
                }
            } else {
                let n = rng.random_range(1..9).min(b.len() - at);
                b.drain(at..at + n);
            }
            let len = b.len() as u64;
            b[16..24].copy_from_slice(&len.to_le_bytes());
            b[32..40].copy_from_slice(&(len - index as u64).to_le_bytes());
            reseal(&mut b);
        }
        // A header field replaced, checksum fixed.
        5 => {
            let at = [12, 16, 24, 32, 40][rng.random_range(0..5)];
            let v = interesting[rng.random_range(0..interesting.len())];
            b[at..at + 4].copy_from_slice(&v.to_le_bytes()[..4]);
            reseal_header(&mut b);
        }
        // A payload changed and its checksum fixed (reaches the string checks).
        _ => {
            let (_, off, len) = &data[rng.random_range(0..data.len())];
            let old = crc32fast::hash(&b[*off..off + len]);
            let at = off + rng.random_range(0..*len);
            b[at] = rng.random();
            let new = crc32fast::hash(&b[*off..off + len]);
            let pos = b[index..]
                .windows(4)
                .position(|w| w == old.to_le_bytes())
                .map(|p| p + index);
            if let Some(p) = pos {
                b[p..p + 4].copy_from_slice(&new.to_le_bytes());
            }
            reseal(&mut b);
        }
    }
    b
}

/// Exercises everything a reader offers on a file that validated.
fn exercise(f: &CheckpointFile) {
    for e in f.walk() {
        let _ = e.path();
        if let Some(d) = e.as_dataset() {
            let _ = d.to_data();
            let _ = d.strings();
            let _ = d.view::<f64>();
        }
    }
    let image = to_bytes(&f.to_group()).expect("a validated tree re-serializes");
    read(&image).expect("a re-serialized tree reads");
    let _ = naseval::checkpoint::ModelCheckpoint::from_file(f);
}

#[test]
fn mutation_fuzzer_finds_no_panic() {
    let valid = to_bytes(&sample_tree()).unwrap();
    let (index, data) = regions(&valid);
    // NASEVAL_FUZZ_ITERS and NASEVAL_FUZZ_SEED run a longer campaign.
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let iters = env("NASEVAL_FUZZ_ITERS", 20_000);
    let mut rng = StdRng::seed_from_u64(env("NASEVAL_FUZZ_SEED", 0x5eed));
    let (mut accepted, mut rejected) = (0, 0);
    let start = std::time::Instant::now();
    for i in 0..iters {
        let b = mutate(&mut rng, &valid, index, &data);
        let outcome = std::panic::catch_unwind(|| match read(&b) {
            Ok(f) => {
                exercise(&f);
                true
            }
            Err(e) => {
                assert!(e.to_string().contains(NAME), "error without the file: {e}");
                false
            }
        });
        match outcome {
            Ok(true) => accepted += 1,
            Ok(false) => rejected += 1,
            Err(_) => panic!("mutation {i} panicked; input: {b:?}"),
        }
    }
    eprintln!(
        "mutation fuzzer: {accepted} accepted, {rejected} rejected in {:?}",
        start.elapsed()
    );
    assert!(rejected > 1000);
}

/// Seed files for the cargo-fuzz target live in fuzz/seeds/; they must stay valid. With
/// NASEVAL_WRITE_FUZZ_SEEDS=1 this test (re)writes them.
#[test]
fn fuzz_seeds_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/checkpoint_read");
    if std::env::var_os("NASEVAL_WRITE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        let mut small = Group::new();
        small.set_attr("a", 1u32);
        small
            .insert("g/x", Dataset::new(vec![2], vec![1.0f32, 2.0]).unwrap())
            .unwrap();
        small.insert("s", Dataset::string("text")).unwrap();
        std::fs::write(dir.join("small.ckpt"), to_bytes(&small).unwrap()).unwrap();
        let mut tree = sample_tree();
        tree.children.remove("deep");
        std::fs::write(dir.join("dtypes.ckpt"), to_bytes(&tree).unwrap()).unwrap();
        let model = naseval::checkpoint::ModelCheckpoint {
            ops: vec!["conv3x3_8".into(), "sc_1".into(), "identity".into()],
            input_stem: vec!["conv3x3_32bnrelu".into()],
            output_stem: vec!["global_avg_pool".into()],
            reference_space: serde_json::json!({"conv3x3_8": {"type": "Conv2D"}}),
            dataset: "mnist".into(),
            input_shape: [28, 28, 1],
            classes: 10,
            config: serde_json::json!({"epochs": 1}),
            tensors: vec![naseval::checkpoint::NamedArray {
                path: "model/L0_conv3x3_8/bias".into(),
                shape: vec![8],
                data: vec![0.5; 8],
            }],
            rng_state: vec![42, 1],
            history: serde_json::json!({"loss": [1.0]}),
            last_metrics: serde_json::json!({"val_accuracy": 0.5}),
            ..Default::default()
        };
        let image = to_bytes(&model.to_group().unwrap()).unwrap();
        std::fs::write(dir.join("model.ckpt"), image).unwrap();
    }
    let Ok(entries) = std::fs::read_dir(&dir) else {
        panic!("{} is missing", dir.display());
    };
    for e in entries {
        let p = e.unwrap().path();
        let b = std::fs::read(&p).unwrap();
        read(&b).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}

/// Inputs that once crashed or misbehaved (from the fuzzers), each must give a typed error
/// or a valid file, never a panic.
#[test]
fn fuzz_regressions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/checkpoint_read");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        let b = std::fs::read(&p).unwrap();
        if let Ok(f) = read(&b) {
            exercise(&f);
        }
    }
}

#[test]
fn a_damaged_version_byte_reads_as_damage_not_as_the_future() {
    // Version 254 with the header checksum left as it was: a flipped byte, not a file
    // from a later naseval, so no advice to upgrade.
    let mut b = to_bytes(&sample_tree()).unwrap();
    b[8] = 254;
    let e = read(&b).err().unwrap();
    let msg = e.to_string();
    assert!(
        matches!(e, CheckpointError::Checksum { .. }) && msg.contains("implausible"),
        "{msg}"
    );
    assert!(!msg.contains("upgrade"), "{msg}");
}
