//! `naseval summary`: a candidate's layers, output shapes, parameter counts, SHA-1 file name
//! and FLOPs, from shape inference alone (no GPU).

use std::io::Write as _;
use std::path::PathBuf;

use naseval::arch::{Arch, ArchConfig, ArchError, Plan, Summary, read_arch_file};

use super::Failure;

/// Flags of `naseval summary`.
#[derive(clap::Args)]
pub struct Args {
    /// The candidate: `op|op|...` (optionally `input|...|output`) or a JSON list of strings.
    #[arg(required_unless_present = "arch_file", conflicts_with = "arch_file")]
    arch: Option<String>,
    /// Read candidates from FILE, one per line (`#` comments and empty lines skipped).
    #[arg(long, value_name = "FILE")]
    arch_file: Option<PathBuf>,
    /// Dataset whose input shape to use: mnist, fashion_mnist (28x28x1) or cifar10
    /// (32x32x3). Default mnist, naseval's built-in dataset.
    #[arg(long, conflicts_with = "input_shape")]
    dataset: Option<String>,
    /// Per-sample input shape as HxWxC, e.g. 32x32x3.
    #[arg(long, value_name = "HxWxC")]
    input_shape: Option<String>,
    /// Classes of the Dense head.
    #[arg(long, default_value_t = 10)]
    classes: usize,
    /// TOML config whose [reference_space.*] and [stems] tables change the op table.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print one JSON object per candidate instead of a table.
    #[arg(long)]
    json: bool,
}

/// The per-sample input shape of a dataset name (naseval's or HiveNAS's spelling).
fn dataset_shape(name: &str) -> Option<[usize; 3]> {
    match name.to_ascii_lowercase().replace('-', "_").as_str() {
        "mnist" | "fashion_mnist" => Some([28, 28, 1]),
        "cifar10" | "cifar_10" => Some([32, 32, 3]),
        _ => None,
    }
}

fn input_shape(args: &Args) -> Result<[usize; 3], Failure> {
    if let Some(text) = &args.input_shape {
        let dims: Vec<Option<usize>> = text
            .split(['x', 'X'])
            .map(|d| d.trim().parse().ok())
            .collect();
        return match dims.as_slice() {
            &[Some(h), Some(w), Some(c)] => Ok([h, w, c]),
            _ => Err(Failure::bad_input(anyhow::anyhow!(
                "--input-shape {text:?} is not HxWxC; write e.g. 32x32x3"
            ))),
        };
    }
    let name = args.dataset.as_deref().unwrap_or("mnist");
    dataset_shape(name).ok_or_else(|| {
        Failure::bad_input(anyhow::anyhow!(
            "unknown dataset {name:?}; use mnist, fashion_mnist or cifar10, or give \
             --input-shape HxWxC"
        ))
    })
}

/// Runs `naseval summary`.
pub fn run(args: &Args) -> Result<(), Failure> {
    if args.classes < 2 {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "--classes {} is too few: a classifier needs at least 2",
            args.classes
        )));
    }
    // The whole config is read and checked, as the training commands do; its dataset
    // gives the input shape unless a flag does.
    let full = match &args.config {
        Some(path) => {
            Some(naseval::config::EvalConfig::from_toml_file(path).map_err(Failure::bad_input)?)
        }
        None => None,
    };
    let input = match &full {
        Some(c) if args.dataset.is_none() && args.input_shape.is_none() => {
            dataset_shape(&c.dataset).map_or_else(|| input_shape(args), Ok)?
        }
        _ => input_shape(args)?,
    };
    let config = full.map_or_else(ArchConfig::default, |c| c.arch_config());
    let candidates: Vec<(Option<usize>, Arch)> = match (&args.arch, &args.arch_file) {
        (_, Some(path)) => read_arch_file(path)
            .map_err(Failure::bad_input)?
            .into_iter()
            .map(|(line, a)| (Some(line), a))
            .collect(),
        (Some(text), None) => vec![(None, Arch::parse(text).map_err(Failure::bad_input)?)],
        (None, None) => {
            return Err(Failure::bad_input(anyhow::anyhow!(
                "give a candidate (ARCH) or --arch-file FILE"
            )));
        }
    };

    // Every candidate is shown; the first impossible one decides the exit code.
    let mut first_error: Option<anyhow::Error> = None;
    for (line, arch) in &candidates {
        match Plan::new(arch, &config, input, args.classes) {
            Ok(plan) => {
                let summary = Summary::new(&plan);
                let text = if args.json {
                    format!("{}\n", serde_json::to_string(&summary.to_json())?)
                } else if candidates.len() > 1 {
                    format!("\n{}", summary.table())
                } else {
                    summary.table()
                };
                // A closed pipe (`| head`) ends the output quietly instead of panicking.
                match std::io::stdout().lock().write_all(text.as_bytes()) {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                    other => other?,
                }
            }
            Err(e) => {
                let e = at_line(e, *line, args);
                if candidates.len() > 1 {
                    eprintln!("error: {e:#}");
                }
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        None => Ok(()),
        Some(_) if candidates.len() > 1 => Err(Failure::bad_input(anyhow::anyhow!(
            "some candidates are impossible (see above)"
        ))),
        Some(e) => Err(Failure::bad_input(e.context("the candidate is impossible"))),
    }
}

fn at_line(e: ArchError, line: Option<usize>, args: &Args) -> anyhow::Error {
    match (line, &args.arch_file) {
        (Some(line), Some(path)) => anyhow::anyhow!("{}:{line}: {e}", path.display()),
        _ => e.into(),
    }
}
