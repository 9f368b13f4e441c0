//! A launch: one kernel bound to its tensors and params, built once, recorded many times.

use wgpu::util::DeviceExt;

use crate::gpu::{Gpu, GpuError, Kernel, Tensor};

/// Threads per workgroup of the 1-D elementwise kernels.
pub const WORKGROUP_1D: u32 = 256;

/// Workgroup counts covering `n` items with `per_group` items each. The count is split
/// over x and y so that no dimension exceeds 65,535; shaders rebuild the flat index as
/// `gid.x + gid.y * num_workgroups.x * WORKGROUP` and skip indices past the end.
pub fn grid_1d(n: usize, per_group: u32) -> [u32; 3] {
    let groups = (n as u64).div_ceil(per_group as u64).max(1);
    if groups <= 65_535 {
        [groups as u32, 1, 1]
    } else {
        let y = groups.div_ceil(65_535);
        [groups.div_ceil(y) as u32, y as u32, 1]
    }
}

/// A kernel ready to record: pipeline, bind group (params at binding 0, then the tensors)
/// and workgroup counts.
pub struct Launch {
    /// Which kernel.
    pub kernel: Kernel,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    params: wgpu::Buffer,
    /// Workgroups to dispatch.
    pub workgroups: [u32; 3],
}

impl Launch {
    /// Binds `params` (a Pod mirror of the shader's params struct) and `tensors` (in the
    /// order of the shader's header) to `kernel`.
    pub fn new<P: bytemuck::Pod>(
        gpu: &Gpu,
        kernel: Kernel,
        params: &P,
        tensors: &[&Tensor],
        workgroups: [u32; 3],
    ) -> Result<Self, GpuError> {
        let pipeline = gpu.kernels.pipeline(kernel)?;
        let params_buf = gpu
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(kernel.file_name()),
                contents: bytemuck::bytes_of(params),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            });
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: params_buf.as_entire_binding(),
        }];
        for (i, t) in tensors.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: t.binding(),
            });
        }
        let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.file_name()),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Ok(Self {
            kernel,
            pipeline,
            bind_group,
            params: params_buf,
            workgroups,
        })
    }

    /// Queues new params (same struct type as at creation), e.g. a dropout step counter.
    /// Takes effect for work submitted after this call; does not wait.
    pub fn set_params<P: bytemuck::Pod>(&self, gpu: &Gpu, params: &P) {
        gpu.queue
            .write_buffer(&self.params, 0, bytemuck::bytes_of(params));
    }

    /// Whether the launch dispatches nothing (a zero workgroup count), so that
    /// [`Launch::record`] records nothing.
    pub fn is_empty(&self) -> bool {
        self.workgroups.contains(&0)
    }

    /// Records the dispatch into an open compute pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        if self.is_empty() {
            return;
        }
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(self.workgroups[0], self.workgroups[1], self.workgroups[2]);
    }
}

#[cfg(test)]
mod tests {
    use super::grid_1d;

    #[test]
    fn grid_covers_and_respects_dimension_limit() {
        for n in [
            0usize,
            1,
            255,
            256,
            257,
            65_535 * 256,
            65_535 * 256 + 1,
            40_000_000,
        ] {
            let g = grid_1d(n, 256);
            assert!(g[0] <= 65_535 && g[1] <= 65_535);
            assert!(g[0] as u64 * g[1] as u64 * 256 >= n as u64);
        }
    }
}

/// One op's work: its launches in order and the scratch tensors they share (e.g. partial
/// sums of a two-stage reduction). Built once, recorded every step.
#[derive(Default)]
pub struct Program {
    /// Launches, recorded in order.
    pub launches: Vec<Launch>,
    /// Scratch tensors kept alive for as long as the launches.
    pub scratch: Vec<Tensor>,
}

impl Program {
    /// An empty program.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a launch.
    pub fn push(&mut self, launch: Launch) {
        self.launches.push(launch);
    }

    /// Appends another program's launches and scratch.
    pub fn extend(&mut self, other: Program) {
        self.launches.extend(other.launches);
        self.scratch.extend(other.scratch);
    }

    /// Keeps a scratch tensor alive with the program.
    pub fn keep(&mut self, t: Tensor) {
        self.scratch.push(t);
    }

    /// Records every launch into an open compute pass.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        for l in &self.launches {
            l.record(pass);
        }
    }
}

impl From<Launch> for Program {
    fn from(l: Launch) -> Self {
        Self {
            launches: vec![l],
            scratch: Vec::new(),
        }
    }
}
