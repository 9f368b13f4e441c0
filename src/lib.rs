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
pub mod data;
pub mod gpu;
pub mod ops;
pub mod train;
