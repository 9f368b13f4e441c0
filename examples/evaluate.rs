//! NasEval embedded in a program: evaluate one candidate on a small part of the built-in
//! MNIST and print HiveNAS's result as JSON.
//!
//! cargo run --release --example evaluate [-- "op|op|..."]

use naseval::arch::Arch;
use naseval::config::EvalConfig;
use naseval::eval::NasEval;
use naseval::gpu::DeviceOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let text = std::env::args().nth(1);
    let arch = Arch::parse(
        text.as_deref()
            .unwrap_or("conv3x3_16bnrelu|max_pool3x3|sep3x3_32"),
    )?;

    // HiveNAS's defaults, cut down so that the example finishes in a minute or two
    // without a GPU; ACT is off, as two short epochs rarely clear its thresholds.
    let config = EvalConfig {
        subset: Some(3000),
        test_subset: Some(1000),
        epochs: 2,
        augment: false,
        termination_threshold_factor: 0.0,
        results: std::env::temp_dir().join("naseval-example"),
        ..EvalConfig::default()
    };
    let mut nas = NasEval::new(config, &DeviceOptions::from_env()?)?;
    let result = nas.evaluate(&arch)?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
