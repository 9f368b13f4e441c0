//! A GPU tensor: a pooled storage buffer of 4-byte elements (f32 or u32) and its shape.

use std::sync::Arc;

use crate::gpu::{BufferPool, Gpu, GpuError};

/// A storage buffer of `len()` 4-byte elements with a logical shape (row-major; activations
/// are NHWC). Its buffer goes back to the pool when the tensor is dropped.
pub struct Tensor {
    buffer: Option<wgpu::Buffer>,
    shape: Vec<usize>,
    pool: Arc<BufferPool>,
}

impl Tensor {
    /// An uninitialized tensor of `shape` (contents are whatever the pool held).
    pub fn new(gpu: &Gpu, shape: &[usize]) -> Result<Self, GpuError> {
        let len: usize = shape.iter().product();
        let bytes = (len.max(1) * 4) as u64;
        let limit = gpu.max_binding_bytes();
        if bytes > limit {
            return Err(GpuError::TooLarge {
                what: format!("shape {shape:?}"),
                bytes,
                limit,
            });
        }
        Ok(Self {
            buffer: Some(gpu.pool.take(bytes)),
            shape: shape.to_vec(),
            pool: gpu.pool.clone(),
        })
    }

    /// A tensor holding `data` (f32).
    pub fn from_f32(gpu: &Gpu, shape: &[usize], data: &[f32]) -> Result<Self, GpuError> {
        let t = Self::new(gpu, shape)?;
        t.write_f32(gpu, data);
        Ok(t)
    }

    /// A tensor holding `data` (u32, e.g. labels).
    pub fn from_u32(gpu: &Gpu, shape: &[usize], data: &[u32]) -> Result<Self, GpuError> {
        let t = Self::new(gpu, shape)?;
        t.write_u32(gpu, data);
        Ok(t)
    }

    /// A tensor of zeros.
    pub fn zeros(gpu: &Gpu, shape: &[usize]) -> Result<Self, GpuError> {
        let t = Self::new(gpu, shape)?;
        t.write_f32(gpu, &vec![0.0; t.len()]);
        Ok(t)
    }

    /// The logical shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the logical contents (the buffer may be larger).
    pub fn bytes(&self) -> u64 {
        (self.len().max(1) * 4) as u64
    }

    /// The underlying buffer.
    pub fn buffer(&self) -> &wgpu::Buffer {
        self.buffer
            .as_ref()
            .expect("a live tensor always holds its buffer")
    }

    /// The binding of the logical contents (not the pool's slack).
    pub fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.buffer(),
            offset: 0,
            size: std::num::NonZeroU64::new(self.bytes()),
        })
    }

    /// Queues an upload of `data`; `data.len()` must equal `len()`.
    pub fn write_f32(&self, gpu: &Gpu, data: &[f32]) {
        assert_eq!(
            data.len(),
            self.len(),
            "upload size must match shape {:?}",
            self.shape
        );
        if !data.is_empty() {
            gpu.queue
                .write_buffer(self.buffer(), 0, bytemuck::cast_slice(data));
        }
    }

    /// Queues an upload of `data` as u32; `data.len()` must equal `len()`.
    pub fn write_u32(&self, gpu: &Gpu, data: &[u32]) {
        assert_eq!(
            data.len(),
            self.len(),
            "upload size must match shape {:?}",
            self.shape
        );
        if !data.is_empty() {
            gpu.queue
                .write_buffer(self.buffer(), 0, bytemuck::cast_slice(data));
        }
    }

    /// Reads the contents back as f32. Blocks until the GPU is done: never call inside a
    /// training step.
    pub fn read_f32(&self, gpu: &Gpu) -> Result<Vec<f32>, GpuError> {
        let bytes = self.read_bytes(gpu)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Reads the contents back as u32. Blocks like [`Tensor::read_f32`].
    pub fn read_u32(&self, gpu: &Gpu) -> Result<Vec<u32>, GpuError> {
        let bytes = self.read_bytes(gpu)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    fn read_bytes(&self, gpu: &Gpu) -> Result<Vec<u8>, GpuError> {
        if self.is_empty() {
            return Ok(Vec::new());
        }
        let size = (self.len() * 4) as u64;
        let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(self.buffer(), 0, &staging, 0, size);
        gpu.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        gpu.wait()?;
        let mapped = rx.recv().map_err(|e| GpuError::Device {
            during: "reading a tensor back",
            message: e.to_string(),
        })?;
        mapped.map_err(|e| GpuError::Device {
            during: "mapping a buffer",
            message: e.to_string(),
        })?;
        let view = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| GpuError::Device {
                during: "viewing a mapped buffer",
                message: e.to_string(),
            })?;
        let out = view.to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }
}

impl Drop for Tensor {
    fn drop(&mut self) {
        if let Some(buf) = self.buffer.take() {
            self.pool.give_back(buf);
        }
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor{:?}", self.shape)
    }
}
