//! `naseval info`: the adapters wgpu sees and the chosen one's key limits.

use naseval::gpu::{DeviceOptions, Gpu, list_adapters};

use super::Failure;

/// Flags of `naseval info`.
#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(opts: &DeviceOptions, args: &Args) -> Result<(), Failure> {
    let adapters = list_adapters(opts);
    let gpu = Gpu::new(opts).map_err(super::gpu_failure)?;
    let l = &gpu.limits;
    let limits = [
        ("max_buffer_size", l.max_buffer_size),
        (
            "max_storage_buffer_binding_size",
            l.max_storage_buffer_binding_size,
        ),
        (
            "max_storage_buffers_per_shader_stage",
            l.max_storage_buffers_per_shader_stage.into(),
        ),
        (
            "max_compute_workgroup_storage_size",
            l.max_compute_workgroup_storage_size.into(),
        ),
        (
            "max_compute_invocations_per_workgroup",
            l.max_compute_invocations_per_workgroup.into(),
        ),
        (
            "max_compute_workgroups_per_dimension",
            l.max_compute_workgroups_per_dimension.into(),
        ),
    ];
    if args.json {
        let limits: serde_json::Map<_, _> = limits
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
            .collect();
        let obj = serde_json::json!({
            "adapters": adapters,
            "chosen": gpu.adapter,
            "limits": limits,
            "timestamp_queries": gpu.features.contains(wgpu::Features::TIMESTAMP_QUERY),
        });
        println!("{}", serde_json::to_string_pretty(&obj)?);
        return Ok(());
    }
    println!("adapters:");
    for a in &adapters {
        let mark = if a.index == gpu.adapter.index {
            "*"
        } else {
            " "
        };
        println!(
            "{mark} [{}] {} ({}, {}) driver: {}",
            a.index, a.name, a.backend, a.device_type, a.driver
        );
    }
    println!(
        "chosen: [{}] {} ({})",
        gpu.adapter.index, gpu.adapter.name, gpu.adapter.backend
    );
    for (k, v) in limits {
        println!("  {k:<40} {v}");
    }
    let ts = gpu.features.contains(wgpu::Features::TIMESTAMP_QUERY);
    println!(
        "  {:<40} {}",
        "timestamp_queries",
        if ts { "yes" } else { "no" }
    );
    Ok(())
}
