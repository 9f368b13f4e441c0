//! `naseval inspect FILE [--json]`: the tree of a checkpoint, like `h5ls -r`, under a
//! header summarizing the model when the file is a model checkpoint.

use std::path::PathBuf;

use naseval::checkpoint::{Attr, CheckpointFile, Data, EntryKind, MODEL_KIND, ModelCheckpoint};
use serde_json::{Value, json};

use super::Failure;

/// Flags of `naseval inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// The checkpoint file.
    file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Validates the file, then prints its summary and tree. A corrupt or foreign file is bad
/// input (exit code 2).
pub fn run(args: &Args) -> Result<(), Failure> {
    let f = CheckpointFile::open(&args.file).map_err(Failure::bad_input)?;
    let is_model = f.root().attr("kind").and_then(Attr::as_str) == Some(MODEL_KIND);
    let model = if is_model {
        Some(ModelCheckpoint::from_file(&f).map_err(Failure::bad_input)?)
    } else {
        None
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&f, model.as_ref()))?
        );
        return Ok(());
    }

    println!(
        "{}: naseval checkpoint, format version {}, {} bytes",
        args.file.display(),
        f.version(),
        f.len()
    );
    if let Some(m) = &model {
        println!("  ops:            {}", m.ops.join(" "));
        println!("  sha1:           {}", m.sha1());
        println!(
            "  stems:          [{}] ... [{}]",
            m.input_stem.join(" "),
            m.output_stem.join(" ")
        );
        println!(
            "  dataset:        {} {:?}, {} classes",
            m.dataset, m.input_shape, m.classes
        );
        println!("  epochs trained: {}", m.epochs_trained);
        println!("  last metrics:   {}", m.last_metrics);
        println!("  written by:     naseval {}", m.written_by);
    }
    println!();
    let rows: Vec<(String, String)> = f
        .walk()
        .into_iter()
        .map(|e| {
            let what = match e.as_dataset() {
                Some(d) => format!(
                    "Dataset {{{} {:?}, {}}}",
                    d.dtype(),
                    d.shape(),
                    human_bytes(d.bytes().len())
                ),
                None => "Group".to_string(),
            };
            (format!("/{}", e.path()), what)
        })
        .collect();
    let width = rows.iter().map(|(p, _)| p.len()).max().unwrap_or(0).min(60);
    for (e, (path, what)) in f.walk().into_iter().zip(rows) {
        println!("{path:<width$}  {what}");
        for (name, value) in e.attrs() {
            println!("{:width$}    @{name} = {}", "", short(value));
        }
    }
    Ok(())
}

/// An attribute for one line: long arrays and strings are cut.
fn short(a: &Attr) -> String {
    let s = a.to_string();
    if s.chars().count() > 120 {
        let cut: String = s.chars().take(117).collect();
        format!("{cut}...")
    } else {
        s
    }
}

fn human_bytes(n: usize) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn attr_json(a: &Attr) -> Value {
    match a {
        Attr::U8(v) => json!(v),
        Attr::I32(v) => json!(v),
        Attr::U32(v) => json!(v),
        Attr::I64(v) => json!(v),
        Attr::U64(v) => json!(v),
        Attr::F32(v) => json!(v),
        Attr::F64(v) => json!(v),
        Attr::Str(v) => json!(v),
        Attr::Array(d) => match d {
            Data::U8(v) => json!(v),
            Data::I32(v) => json!(v),
            Data::U32(v) => json!(v),
            Data::I64(v) => json!(v),
            Data::U64(v) => json!(v),
            Data::F32(v) => json!(v),
            Data::F64(v) => json!(v),
            Data::Str(v) => json!(v),
        },
    }
}

fn to_json(f: &CheckpointFile, model: Option<&ModelCheckpoint>) -> Value {
    let nodes: Vec<Value> = f
        .walk()
        .into_iter()
        .map(|e| {
            let attrs: serde_json::Map<String, Value> = e
                .attrs()
                .iter()
                .map(|(k, v)| (k.clone(), attr_json(v)))
                .collect();
            let mut node = json!({
                "path": format!("/{}", e.path()),
                "kind": match e.kind() {
                    EntryKind::Group => "group",
                    EntryKind::Dataset => "dataset",
                },
                "attrs": attrs,
            });
            if let Some(d) = e.as_dataset() {
                node["dtype"] = json!(d.dtype().name());
                node["shape"] = json!(d.shape());
                node["bytes"] = json!(d.bytes().len());
            }
            node
        })
        .collect();
    let header = model.map(|m| {
        json!({
            "ops": m.ops,
            "sha1": m.sha1(),
            "input_stem": m.input_stem,
            "output_stem": m.output_stem,
            "dataset": m.dataset,
            "input_shape": m.input_shape,
            "classes": m.classes,
            "epochs_trained": m.epochs_trained,
            "last_metrics": m.last_metrics,
            "naseval_version": m.written_by,
        })
    });
    json!({
        "file": f.file().display().to_string(),
        "format_version": f.version(),
        "bytes": f.len(),
        "model": header,
        "nodes": nodes,
    })
}
