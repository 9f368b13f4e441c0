//! The kernel registry: one enum variant per WGSL file, sources embedded at compile time,
//! each compute pipeline built once per device and cached.
//!
//! Every shader has one entry point, `main`, and one bind group: binding 0 is its params
//! uniform, bindings 1.. its storage buffers in the order its header lists them.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::gpu::GpuError;

macro_rules! kernels {
    ($($variant:ident => $file:literal,)*) => {
        /// Every compute kernel naseval has, named after its shader file.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kernel {
            $(
                #[doc = concat!("`shaders/", $file, "`")]
                $variant,
            )*
        }

        impl Kernel {
            /// All kernels, in registry order.
            pub const ALL: &'static [Kernel] = &[$(Kernel::$variant,)*];

            /// The shader's file name under `shaders/`.
            pub fn file_name(self) -> &'static str {
                match self {
                    $(Kernel::$variant => $file,)*
                }
            }

            /// The WGSL source, embedded from `shaders/`.
            pub fn source(self) -> &'static str {
                match self {
                    $(Kernel::$variant => include_str!(concat!("../../shaders/", $file)),)*
                }
            }
        }
    };
}

kernels! {
    // Convolution (implicit GEMM), NHWC activations, HWIO kernels.
    Conv2dForward => "conv2d_forward.wgsl",
    Conv2dForwardTiled => "conv2d_forward_tiled.wgsl",
    Conv2dBackwardInput => "conv2d_backward_input.wgsl",
    Conv2dBackwardInputTiled => "conv2d_backward_input_tiled.wgsl",
    Conv2dBackwardWeight => "conv2d_backward_weight.wgsl",
    Conv2dBackwardWeightReduce => "conv2d_backward_weight_reduce.wgsl",
    // Matrix multiply: dense layers and 1x1 convolutions.
    MatmulForward => "matmul_forward.wgsl",
    MatmulForwardVec4 => "matmul_forward_vec4.wgsl",
    MatmulForwardTiled => "matmul_forward_tiled.wgsl",
    MatmulBackwardInput => "matmul_backward_input.wgsl",
    MatmulBackwardInputTiled => "matmul_backward_input_tiled.wgsl",
    MatmulBackwardWeight => "matmul_backward_weight.wgsl",
    MatmulSumPartials => "matmul_sum_partials.wgsl",
    BiasBackward => "bias_backward.wgsl",
    // Depthwise convolution, multiplier 1.
    DepthwiseForward => "depthwise_forward.wgsl",
    DepthwiseBackwardInput => "depthwise_backward_input.wgsl",
    DepthwiseBackwardWeight => "depthwise_backward_weight.wgsl",
    // Pooling.
    MaxPoolForward => "max_pool_forward.wgsl",
    MaxPoolBackward => "max_pool_backward.wgsl",
    AvgPoolForward => "avg_pool_forward.wgsl",
    AvgPoolBackward => "avg_pool_backward.wgsl",
    GlobalAvgPoolForward => "global_avg_pool_forward.wgsl",
    GlobalAvgPoolBackward => "global_avg_pool_backward.wgsl",
    // Batch normalization.
    BatchNormStats => "batch_norm_stats.wgsl",
    BatchNormStatsCombine => "batch_norm_stats_combine.wgsl",
    BatchNormForward => "batch_norm_forward.wgsl",
    BatchNormBackwardReduce => "batch_norm_backward_reduce.wgsl",
    BatchNormBackwardCombine => "batch_norm_backward_combine.wgsl",
    BatchNormBackward => "batch_norm_backward.wgsl",
    // Elementwise and layout.
    ReluForward => "relu_forward.wgsl",
    ReluBackward => "relu_backward.wgsl",
    AddForward => "add_forward.wgsl",
    Accumulate => "accumulate.wgsl",
    ConcatForward => "concat_forward.wgsl",
    ConcatBackward => "concat_backward.wgsl",
    DropoutForward => "dropout_forward.wgsl",
    DropoutBackward => "dropout_backward.wgsl",
    // Loss, metrics, regularization, optimizer.
    SoftmaxXentForward => "softmax_xent_forward.wgsl",
    MetricsAccumulate => "metrics_accumulate.wgsl",
    L2Loss => "l2_loss.wgsl",
    L2Backward => "l2_backward.wgsl",
    SgdUpdate => "sgd_update.wgsl",
}

/// Compiled pipelines, one per kernel, built on first use and kept for the device's life.
pub struct KernelCache {
    device: wgpu::Device,
    pipelines: Mutex<HashMap<Kernel, wgpu::ComputePipeline>>,
}

impl KernelCache {
    pub(crate) fn new(device: wgpu::Device) -> Self {
        Self {
            device,
            pipelines: Mutex::new(HashMap::new()),
        }
    }

    /// The pipeline of `kernel`, compiling it on first use. A shader that fails validation
    /// on this device is an error naming the shader, not a panic inside wgpu.
    pub fn pipeline(&self, kernel: Kernel) -> Result<wgpu::ComputePipeline, GpuError> {
        let mut map = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = map.get(&kernel) {
            return Ok(p.clone());
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(kernel.file_name()),
                source: wgpu::ShaderSource::Wgsl(kernel.source().into()),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(kernel.file_name()),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Pipeline {
                kernel: kernel.file_name(),
                message: err.to_string(),
            });
        }
        map.insert(kernel, pipeline.clone());
        Ok(pipeline)
    }

    /// Builds every pipeline now, so that the first training step pays no compile.
    pub fn warm_up(&self, kernels: &[Kernel]) -> Result<(), GpuError> {
        for &k in kernels {
            self.pipeline(k)?;
        }
        Ok(())
    }
}

impl Kernel {
    /// Parses and validates the shader with naga, without a device. Device limits are not
    /// checked here; building the pipeline does that.
    pub fn validate(self) -> Result<(), String> {
        let module = naga::front::wgsl::parse_str(self.source())
            .map_err(|e| e.emit_to_string_with_path(self.source(), self.file_name()))?;
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .map_err(|e| e.emit_to_string_with_path(self.source(), self.file_name()))?;
        Ok(())
    }
}
