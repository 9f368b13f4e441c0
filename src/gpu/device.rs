//! Adapter discovery and device creation on any backend wgpu reaches.

use std::sync::Arc;

use crate::gpu::{BufferPool, KernelCache};

/// What went wrong while acquiring or using the GPU.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No adapter matched the request.
    #[error(
        "no GPU adapter found{filter}. Install a Vulkan driver; on a machine without a GPU, \
         Mesa's software driver lavapipe: `apt-get install -y mesa-vulkan-drivers libvulkan1` \
         (Debian/Ubuntu). `naseval info` lists what wgpu can see."
    )]
    NoAdapter {
        /// A description of the backend/adapter filter in force, or empty.
        filter: String,
    },
    /// Adapters exist, but none matches `--adapter`.
    #[error(
        "no adapter matches --adapter {want:?}; give an index or part of a name from: {}",
        available.join("; ")
    )]
    NoMatch {
        /// The filter given.
        want: String,
        /// The adapters there are, as `[index] name (backend)`.
        available: Vec<String>,
    },
    /// The adapter refused to give a device.
    #[error("the adapter {adapter:?} refused to create a device: {source}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// wgpu's reason.
        #[source]
        source: wgpu::RequestDeviceError,
    },
    /// An unknown name was given for `--backend` / `NASEVAL_BACKEND`.
    #[error("unknown backend {0:?}: use one of vulkan, metal, dx12, gl, all")]
    UnknownBackend(String),
    /// A shader failed to compile or validate on this device.
    #[error("kernel {kernel} failed to build on this device: {message}")]
    Pipeline {
        /// The shader file.
        kernel: &'static str,
        /// wgpu's validation message.
        message: String,
    },
    /// Waiting on the device or mapping a buffer failed (device lost, out of memory...).
    #[error("GPU device error while {during}: {message}")]
    Device {
        /// What naseval was doing.
        during: &'static str,
        /// The underlying message.
        message: String,
    },
    /// A tensor would not fit in one storage binding of this device.
    #[error(
        "a tensor of {bytes} bytes ({what}) exceeds this device's storage binding limit of \
         {limit} bytes; use a smaller batch size"
    )]
    TooLarge {
        /// Which tensor.
        what: String,
        /// Its size.
        bytes: u64,
        /// The device limit.
        limit: u64,
    },
}

/// How to choose the adapter.
#[derive(Clone, Debug, Default)]
pub struct DeviceOptions {
    /// Restrict to these backends (default: all). From `--backend` or `NASEVAL_BACKEND`.
    pub backends: Option<wgpu::Backends>,
    /// Case-insensitive substring of the adapter name, or its index in `naseval info`'s list.
    /// From `--adapter` or `NASEVAL_ADAPTER`.
    pub adapter: Option<String>,
}

impl DeviceOptions {
    /// Options read from `NASEVAL_BACKEND` and `NASEVAL_ADAPTER`.
    pub fn from_env() -> Result<Self, GpuError> {
        let backends = match std::env::var("NASEVAL_BACKEND") {
            Ok(s) if !s.is_empty() => Some(parse_backend(&s)?),
            _ => None,
        };
        let adapter = std::env::var("NASEVAL_ADAPTER")
            .ok()
            .filter(|s| !s.is_empty());
        Ok(Self { backends, adapter })
    }
}

/// Parses a backend name as given on the command line.
pub fn parse_backend(name: &str) -> Result<wgpu::Backends, GpuError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "vulkan" | "vk" => wgpu::Backends::VULKAN,
        "metal" => wgpu::Backends::METAL,
        "dx12" | "d3d12" => wgpu::Backends::DX12,
        "gl" | "gles" | "opengl" => wgpu::Backends::GL,
        "all" => wgpu::Backends::all(),
        _ => return Err(GpuError::UnknownBackend(name.to_string())),
    })
}

/// One adapter as `naseval info` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterSummary {
    /// Position in the enumeration (usable as `--adapter`).
    pub index: usize,
    /// Adapter name.
    pub name: String,
    /// Vulkan, Metal, Dx12, Gl.
    pub backend: String,
    /// DiscreteGpu, IntegratedGpu, Cpu, ...
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
}

fn summarize(index: usize, info: &wgpu::AdapterInfo) -> AdapterSummary {
    AdapterSummary {
        index,
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: format!("{} {}", info.driver, info.driver_info)
            .trim()
            .to_string(),
    }
}

fn instance(backends: Option<wgpu::Backends>) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if let Some(b) = backends {
        desc.backends = b;
    }
    wgpu::Instance::new(desc)
}

/// Every adapter wgpu can see with these options' backends.
pub fn list_adapters(opts: &DeviceOptions) -> Vec<AdapterSummary> {
    let inst = instance(opts.backends);
    let adapters = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
    adapters
        .iter()
        .enumerate()
        .map(|(i, a)| summarize(i, &a.get_info()))
        .collect()
}

/// Ranks adapters so that a real GPU beats a software one and Vulkan beats GL.
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (kind, backend)
}

/// The device, its queue, the kernel cache and the buffer pool: everything a launch needs.
///
/// Cheap to clone: every part is reference-counted.
#[derive(Clone)]
pub struct Gpu {
    /// The wgpu device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// The chosen adapter, as listed by `naseval info`.
    pub adapter: AdapterSummary,
    /// The device's limits (the adapter's own, not WebGPU's defaults).
    pub limits: wgpu::Limits,
    /// Features enabled on the device.
    pub features: wgpu::Features,
    /// Whether the adapter is a CPU rasterizer (lavapipe, WARP, SwiftShader): kernel variants
    /// are chosen on this.
    pub is_cpu: bool,
    /// Pipelines, built once per kernel.
    pub kernels: Arc<KernelCache>,
    /// Reusable storage buffers.
    pub pool: Arc<BufferPool>,
}

impl Gpu {
    /// Picks an adapter by `opts` (best real GPU first) and creates a device with the
    /// adapter's own limits.
    pub fn new(opts: &DeviceOptions) -> Result<Self, GpuError> {
        let inst = instance(opts.backends);
        let adapters = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
        let available: Vec<String> = adapters
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let info = a.get_info();
                format!("[{i}] {} ({:?})", info.name, info.backend)
            })
            .collect();
        let mut candidates: Vec<(usize, wgpu::Adapter)> =
            adapters.into_iter().enumerate().collect();
        if let Some(want) = &opts.adapter {
            let want_lc = want.to_ascii_lowercase();
            candidates.retain(|(i, a)| {
                want.parse::<usize>().ok() == Some(*i)
                    || a.get_info().name.to_ascii_lowercase().contains(&want_lc)
            });
        }
        candidates.sort_by_key(|(i, a)| (rank(&a.get_info()), *i));
        let Some((index, adapter)) = candidates.into_iter().next() else {
            if let (Some(want), false) = (&opts.adapter, available.is_empty()) {
                return Err(GpuError::NoMatch {
                    want: want.clone(),
                    available,
                });
            }
            let mut filter = String::new();
            if let Some(b) = opts.backends {
                filter += &format!(" for backends {b:?}");
            }
            if let Some(a) = &opts.adapter {
                filter += &format!(" matching {a:?}");
            }
            return Err(GpuError::NoAdapter { filter });
        };
        let info = adapter.get_info();
        let limits = adapter.limits();
        // Timestamp queries serve `--profile`; everything else stays at the WebGPU core set
        // so that kernels run alike everywhere.
        let wanted = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
        let features = adapter.features() & wanted;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("naseval"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|source| GpuError::RequestDevice {
            adapter: info.name.clone(),
            source,
        })?;
        log::info!(
            "using adapter {:?} ({:?}, {:?})",
            info.name,
            info.backend,
            info.device_type
        );
        Ok(Self {
            kernels: Arc::new(KernelCache::new(device.clone())),
            pool: Arc::new(BufferPool::new(device.clone())),
            device,
            queue,
            adapter: summarize(index, &info),
            limits,
            features,
            is_cpu: info.device_type == wgpu::DeviceType::Cpu,
        })
    }

    /// Blocks until all submitted work has finished.
    pub fn wait(&self) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| GpuError::Device {
                during: "waiting for the GPU",
                message: e.to_string(),
            })
    }

    /// Records `programs` into one compute pass, submits it, and returns without waiting.
    pub fn submit(&self, programs: &[&Program]) {
        let mut enc = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for p in programs {
                p.record(&mut pass);
            }
        }
        self.queue.submit([enc.finish()]);
    }

    /// The largest tensor (in bytes) one storage binding may hold on this device.
    pub fn max_binding_bytes(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// The memory a network may take, where it can be known, and where it is. A CPU
    /// adapter (lavapipe) allocates from system memory, so a network larger than what is
    /// available would be killed by the OS rather than refused; nine tenths of Linux's
    /// MemAvailable is the budget. wgpu does not report a GPU's free memory: `None`.
    pub fn memory_budget(&self) -> Option<(u64, String)> {
        if !self.is_cpu {
            return None;
        }
        let info = std::fs::read_to_string("/proc/meminfo").ok()?;
        let kib: u64 = info
            .lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some((
            kib * 1024 / 10 * 9,
            format!(
                "system memory free for the CPU adapter {:?}",
                self.adapter.name
            ),
        ))
    }
}

use crate::gpu::Program;
