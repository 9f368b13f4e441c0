//! naseval: builds, trains and scores neural-network candidates for architecture search on
//! any GPU that wgpu reaches (Vulkan, Metal, DX12, GL), with WGSL kernels of its own.
//!
//! The layers, bottom up: [`gpu`] (device, kernel registry, buffers), [`ops`] (typed kernel
//! launchers), [`arch`] (op lists, the reference space, shape inference), [`data`]
//! (datasets, preparation, augmentation), [`checkpoint`] (the file format). See
//! ARCHITECTURE.md for the map and the invariants.

#![warn(missing_docs)]

pub mod arch;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod eval;
pub mod gpu;
pub mod graph;
pub mod ops;
pub mod train;

/// Everything the library can fail with; each source module has its own typed error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Device, adapter or kernel problems.
    #[error(transparent)]
    Gpu(#[from] gpu::GpuError),
    /// An impossible or unknown candidate.
    #[error(transparent)]
    Arch(#[from] arch::ArchError),
    /// Missing or malformed data.
    #[error(transparent)]
    Data(#[from] data::DataError),
    /// A corrupt, truncated or mismatched checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    /// Building or running a network.
    #[error(transparent)]
    Graph(#[from] graph::GraphError),
    /// A bad configuration.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// A results file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint that does not fit the run (other dataset, other architecture).
    #[error("{0}")]
    Mismatch(String),
}

impl Error {
    /// Whether the user can fix this by changing input (exit code 2), as opposed to a
    /// device or system failure (exit code 1).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Arch(_) | Error::Data(_) | Error::Checkpoint(_) | Error::Config(_) => true,
            Error::Mismatch(_) => true,
            Error::Gpu(gpu::GpuError::TooLarge { .. } | gpu::GpuError::NoMatch { .. }) => true,
            Error::Gpu(_) | Error::Graph(_) | Error::Io { .. } => false,
        }
    }
}
