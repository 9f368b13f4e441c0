//! A pool of storage buffers, so that networks built one after another reuse memory
//! instead of allocating it, and a training step allocates nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Usage of every pooled buffer: kernels read and write them, the host uploads into them
/// and reads back from them.
pub const POOL_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// Free buffers keyed by size class.
pub struct BufferPool {
    device: wgpu::Device,
    free: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
    created: AtomicU64,
}

/// Rounds a request up to its size class: powers of two split into quarters, so that at
/// most a quarter of a buffer is slack while different shapes still share buffers.
pub fn size_class(bytes: u64) -> u64 {
    let bytes = bytes.max(256);
    let top = 63 - bytes.leading_zeros() as u64; // 2^top <= bytes
    let quarter = (1u64 << top) / 4;
    bytes.div_ceil(quarter) * quarter
}

impl BufferPool {
    pub(crate) fn new(device: wgpu::Device) -> Self {
        Self {
            device,
            free: Mutex::new(HashMap::new()),
            created: AtomicU64::new(0),
        }
    }

    /// A buffer of at least `bytes` bytes, reused when one of its class is free. Its contents
    /// are whatever its last user left.
    pub fn take(&self, bytes: u64) -> wgpu::Buffer {
        let class = size_class(bytes);
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(buf) = free.get_mut(&class).and_then(|v| v.pop()) {
            return buf;
        }
        drop(free);
        self.created.fetch_add(class, Ordering::Relaxed);
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("pooled"),
            size: class,
            usage: POOL_USAGE,
            mapped_at_creation: false,
        })
    }

    /// Returns a buffer taken from this pool.
    pub fn give_back(&self, buf: wgpu::Buffer) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.entry(buf.size()).or_default().push(buf);
    }

    /// Bytes of every buffer this pool has created (pooled buffers are never destroyed
    /// while the pool lives, so this is its footprint).
    pub fn created_bytes(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    /// Bytes held by free buffers.
    pub fn free_bytes(&self) -> u64 {
        let free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.iter().map(|(k, v)| k * v.len() as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_cover_requests_with_little_slack() {
        for bytes in [1u64, 255, 256, 257, 1000, 4096, 4097, 123_457, 1 << 27] {
            let c = size_class(bytes);
            assert!(c >= bytes, "{bytes} -> {c}");
            assert!(c <= (bytes.max(256) * 5).div_ceil(4) + 1, "{bytes} -> {c}");
        }
    }
}
