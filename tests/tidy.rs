//! Conventions checked on every `cargo test`: the kernel registry and `shaders/` agree,
//! every shader validates with naga and opens with its bindings, and lines stay within
//! 100 columns.

use std::collections::BTreeSet;
use std::path::Path;

use naseval::gpu::Kernel;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_shader_file_is_registered_and_every_kernel_has_a_file() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(root().join("shaders"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    let registered: BTreeSet<String> = Kernel::ALL
        .iter()
        .map(|k| k.file_name().to_string())
        .collect();
    let unregistered: Vec<_> = on_disk.difference(&registered).collect();
    let missing: Vec<_> = registered.difference(&on_disk).collect();
    assert!(
        unregistered.is_empty(),
        "shaders not in the Kernel registry: {unregistered:?}"
    );
    assert!(
        missing.is_empty(),
        "registered kernels without a file: {missing:?}"
    );
}

#[test]
fn every_shader_validates_with_naga() {
    let failures: Vec<String> = Kernel::ALL
        .iter()
        .filter_map(|k| k.validate().err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_shader_opens_with_its_bindings() {
    for k in Kernel::ALL {
        let src = k.source();
        let header: String = src
            .lines()
            .take_while(|l| l.starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            !header.is_empty(),
            "{} does not open with a comment",
            k.file_name()
        );
        for line in src.lines().filter(|l| l.contains("@binding(")) {
            let name = line
                .split(':')
                .next()
                .unwrap()
                .split_whitespace()
                .last()
                .unwrap();
            assert!(
                header.contains(name),
                "{}: binding `{name}` is not described in the header comment",
                k.file_name()
            );
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if matches!(p.extension().and_then(|s| s.to_str()), Some("rs" | "wgsl")) {
            out.push(p);
        }
    }
}

#[test]
fn lines_fit_in_100_columns() {
    let mut files = Vec::new();
    for d in ["src", "shaders", "tests", "benches", "examples"] {
        walk(&root().join(d), &mut files);
    }
    let mut wide = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.chars().count() > 100 {
                wide.push(format!(
                    "{}:{}",
                    f.strip_prefix(root()).unwrap().display(),
                    i + 1
                ));
            }
        }
    }
    assert!(wide.is_empty(), "lines over 100 columns: {wide:?}");
}

#[test]
fn no_bare_todo_marks() {
    let mut files = Vec::new();
    walk(&root().join("src"), &mut files);
    walk(&root().join("shaders"), &mut files);
    let mut bare = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.contains("TODO") && !line.contains("TODO(") {
                bare.push(format!("{}:{}", f.display(), i + 1));
            }
        }
    }
    assert!(
        bare.is_empty(),
        "bare TODO marks (write `TODO(topic): what and when`): {bare:?}"
    );
}
