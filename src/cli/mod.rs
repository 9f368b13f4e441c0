//! Subcommands, output formatting and exit codes: 0 success, 2 bad input (arch, config,
//! data, checkpoint), 1 anything else.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod augment_preview;
mod bench;
mod info;
mod inspect;
mod run;
mod summary;

/// Builds, trains and scores neural-network candidates for architecture search.
#[derive(Parser)]
#[command(name = "naseval", version, about, long_about = None)]
struct Cli {
    /// Backend to use: vulkan, metal, dx12, gl or all.
    #[arg(long, global = true, env = "NASEVAL_BACKEND")]
    backend: Option<String>,
    /// Adapter to use: its index in `naseval info` or part of its name.
    #[arg(long, global = true, env = "NASEVAL_ADAPTER")]
    adapter: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a candidate from op names, train it, and report its fitness (test accuracy).
    Evaluate(run::EvaluateArgs),
    /// Train a candidate (fresh, or continuing a checkpoint) for full_train_epochs.
    FullTrain(run::FullTrainArgs),
    /// Continue training an evaluation's checkpoint for N more epochs.
    Momentum(run::MomentumArgs),
    /// List GPU adapters and the chosen one's limits.
    Info(info::Args),
    /// Show a candidate's layers, shapes, parameter counts, SHA-1 name and FLOPs (no GPU).
    Summary(summary::Args),
    /// Write a PNG grid of augmented training samples (what the network sees).
    AugmentPreview(augment_preview::Args),
    /// Print a checkpoint's tree (like h5ls -r) and its model summary.
    Inspect(inspect::Args),
    /// Time every kernel on HiveNAS's shapes against the device's matmul ceiling.
    Bench(bench::Args),
}

/// A failure and the exit code it maps to.
pub struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    /// Bad input from the user: exit code 2.
    pub fn bad_input(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 2,
            error: error.into(),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self {
            code: 1,
            error: e.into(),
        }
    }
}

/// A device error and its exit code: a device choice the user can fix is bad input.
pub fn gpu_failure(e: naseval::gpu::GpuError) -> Failure {
    use naseval::gpu::GpuError as G;
    match e {
        G::NoMatch { .. } | G::UnknownBackend(_) | G::TooLarge { .. } => Failure::bad_input(e),
        e => Failure::from(e),
    }
}

/// Device options from the global flags (which clap already merged with the environment).
fn device_options(cli: &Cli) -> Result<naseval::gpu::DeviceOptions, Failure> {
    let backends = match &cli.backend {
        Some(b) if !b.is_empty() => {
            Some(naseval::gpu::parse_backend(b).map_err(Failure::bad_input)?)
        }
        _ => None,
    };
    Ok(naseval::gpu::DeviceOptions {
        backends,
        adapter: cli.adapter.clone(),
    })
}

/// Parses arguments, runs the subcommand and maps its outcome to an exit code.
pub fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Evaluate(args) => device_options(&cli).and_then(|o| run::evaluate(&o, args)),
        Command::FullTrain(args) => device_options(&cli).and_then(|o| run::full_train(&o, args)),
        Command::Momentum(args) => device_options(&cli).and_then(|o| run::momentum(&o, args)),
        Command::Info(args) => device_options(&cli).and_then(|opts| info::run(&opts, args)),
        Command::Summary(args) => summary::run(args),
        Command::AugmentPreview(args) => augment_preview::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Bench(args) => device_options(&cli).and_then(|opts| bench::run(&opts, args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            // Most messages already quote their cause; add only causes not yet said.
            let mut msg = f.error.to_string();
            for cause in f.error.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg = format!("{msg}: {c}");
                }
            }
            eprintln!("error: {msg}");
            ExitCode::from(f.code)
        }
    }
}
