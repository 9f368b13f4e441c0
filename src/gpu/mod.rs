//! The GPU layer: adapter and device choice, the kernel registry, buffers and launches.
//!
//! Nothing here knows about networks or datasets. Higher layers build [`Launch`]es once
//! (pipelines, bind groups and parameter buffers are created up front) and record them into
//! command encoders as often as they like.

mod device;
mod kernels;
mod launch;
mod pool;
mod profile;
mod tensor;

pub use device::{AdapterSummary, DeviceOptions, Gpu, GpuError, list_adapters, parse_backend};
pub use kernels::{Kernel, KernelCache};
pub use launch::{Launch, Program, WORKGROUP_1D, grid_1d};
pub use pool::BufferPool;
pub use profile::{Family, KernelTime, Profile, Profiler};
pub use tensor::Tensor;
