//! `naseval bench`: kernel timings on HiveNAS's shapes, with the matmul ceiling.

use naseval::bench;
use naseval::gpu::{DeviceOptions, Gpu};

use super::Failure;

/// Flags of `naseval bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON array of measurements instead of a table.
    #[arg(long)]
    json: bool,
    /// Only kernels or shapes containing this text (the ceiling is always measured).
    #[arg(long)]
    filter: Option<String>,
    /// Batch size of the shapes (HiveNAS trains at 128; smaller runs faster on CPU drivers).
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Timed repetitions per case (the median is reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
}

pub fn run(opts: &DeviceOptions, args: &Args) -> Result<(), Failure> {
    if args.batch == 0 || args.batch > 4096 {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "--batch {}: use 1 to 4096",
            args.batch
        )));
    }
    if args.reps == 0 {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "--reps 0: time each case at least once"
        )));
    }
    if let Some(f) = &args.filter {
        let cases = bench::cases(args.batch);
        if !cases.iter().any(|c| c.matches(f)) {
            let kernels: Vec<&str> = cases
                .iter()
                .map(|c| c.kernel)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            return Err(Failure::bad_input(anyhow::anyhow!(
                "--filter {f:?} matches no kernel or shape; the kernels are: {}",
                kernels.join(", ")
            )));
        }
    }
    let gpu = Gpu::new(opts).map_err(super::gpu_failure)?;
    if !args.json {
        eprintln!("device: {} ({})", gpu.adapter.name, gpu.adapter.backend);
        println!(
            "{:<26} {:<36} {:>10} {:>9} {:>8} {:>8}",
            "kernel", "shape", "ms", "GFLOP/s", "GB/s", "ratio"
        );
    }
    let json = args.json;
    let fmt = |v: Option<f64>, prec: usize| v.map_or("-".to_string(), |v| format!("{v:.prec$}"));
    let results = bench::run(&gpu, args.batch, args.reps, args.filter.as_deref(), |m| {
        if !json {
            println!(
                "{:<26} {:<36} {:>10.3} {:>9} {:>8.3} {:>8}",
                m.kernel,
                m.shape,
                m.ms,
                fmt(m.gflops, 2),
                m.gbps,
                fmt(m.ratio_to_ceiling, 2)
            );
        }
    })
    .map_err(super::gpu_failure)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(())
}
