//! Kernel benchmarks on the shapes of HiveNAS's default candidates, shared by
//! `naseval bench` and `benches/kernels.rs`.
//!
//! Each case builds its tensors and [`Program`] once, then times submit-and-wait (the
//! device is waited on inside the timed region) and reports the median. The project's best
//! matrix multiply on 1024^3 is measured in the same run as the device's ceiling, and every
//! compute-bound kernel is given as a ratio to it: these machines are shared and noisy, so
//! only ratios within one run compare.

use std::time::Instant;

use crate::gpu::{Gpu, GpuError, Program, Tensor};
use crate::ops::{self, Padding};

/// One timed kernel on one shape.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Measurement {
    /// Kernel name, e.g. `conv2d_forward`.
    pub kernel: String,
    /// Shape, e.g. `n128 32x32 c32->64 k3 s1 same`.
    pub shape: String,
    /// Median milliseconds per launch (submit and wait).
    pub ms: f64,
    /// Useful GFLOP/s (2 per multiply-add); `None` for memory-bound kernels.
    pub gflops: Option<f64>,
    /// GB/s of compulsory traffic (each input read once, each output written once).
    pub gbps: f64,
    /// `gflops` over the same run's matmul ceiling; `None` where `gflops` is.
    pub ratio_to_ceiling: Option<f64>,
}

/// A benchmark case: a name, a shape, how to build it, and its work.
pub struct Case {
    /// Kernel name.
    pub kernel: &'static str,
    /// Human-readable shape.
    pub shape: String,
    /// FLOPs per launch, 0 for memory-bound kernels.
    pub flops: f64,
    /// Compulsory bytes moved per launch.
    pub bytes: f64,
    build: Builder,
}

/// Creates a case's tensors and program on a device.
type Builder = Box<dyn Fn(&Gpu) -> Result<Built, GpuError>>;

/// A built case: the program and the tensors it binds.
pub struct Built {
    program: Program,
    _tensors: Vec<Tensor>,
}

fn tensor(gpu: &Gpu, shape: &[usize], seed: u32) -> Result<Tensor, GpuError> {
    // A cheap deterministic fill in [-1, 1): benchmark data only needs to be finite.
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    let data: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::from_f32(gpu, shape, &data)
}

fn conv_shape(n: usize, hw: usize, c: usize, k: usize, ks: usize) -> ops::conv::Conv2dShape {
    ops::conv::Conv2dShape {
        n,
        h: hw,
        w: hw,
        c,
        k,
        kh: ks,
        kw: ks,
        stride: 1,
        padding: Padding::Same,
    }
}

/// The matmul whose GFLOP/s is the ceiling: 1024 x 1024 x 1024.
pub fn ceiling_case() -> Case {
    let m = 1024;
    Case {
        kernel: "matmul_forward",
        shape: "1024x1024x1024 (ceiling)".into(),
        flops: 2.0 * (m * m * m) as f64,
        bytes: 4.0 * (3 * m * m) as f64,
        build: Box::new(move |gpu| {
            let (x, w) = (tensor(gpu, &[m, m], 1)?, tensor(gpu, &[m, m], 2)?);
            let (b, y) = (Tensor::zeros(gpu, &[m])?, Tensor::new(gpu, &[m, m])?);
            let program = ops::matmul::matmul_forward(gpu, m, m, m, &x, &w, &b, &y)?;
            Ok(Built {
                program,
                _tensors: vec![x, w, b, y],
            })
        }),
    }
}

/// Every case at batch `n` (HiveNAS trains at 128).
pub fn cases(n: usize) -> Vec<Case> {
    let mut out = Vec::new();
    // Convolutions where HiveNAS's cells put them: 32->64 at full size, 64->128 after one
    // 2x2 reduction, 128->256 after two; 28x28 for MNIST-sized inputs.
    let conv_shapes = [(32, 32, 64), (28, 32, 64), (16, 64, 128), (8, 128, 256)];
    for (hw, c, k) in conv_shapes {
        for ks in [3, 5] {
            let s = conv_shape(n, hw, c, k, ks);
            let name = format!("n{n} {hw}x{hw} c{c}->{k} k{ks} s1 same");
            let (xs, ys, ws) = ([n, hw, hw, c], [n, hw, hw, k], [ks, ks, c, k]);
            let io = 4.0 * (n * hw * hw * (c + k) + ks * ks * c * k) as f64;
            out.push(Case {
                kernel: "conv2d_forward",
                shape: name.clone(),
                flops: s.flops(),
                bytes: io,
                build: Box::new(move |gpu| {
                    let (x, w) = (tensor(gpu, &xs, 1)?, tensor(gpu, &ws, 2)?);
                    let (b, y) = (tensor(gpu, &[k], 3)?, Tensor::new(gpu, &ys)?);
                    let program = ops::conv::conv2d_forward(gpu, &s, &x, &w, &b, &y)?;
                    Ok(Built {
                        program,
                        _tensors: vec![x, w, b, y],
                    })
                }),
            });
            out.push(Case {
                kernel: "conv2d_backward_input",
                shape: name.clone(),
                flops: s.flops(),
                bytes: io,
                build: Box::new(move |gpu| {
                    let (dy, w) = (tensor(gpu, &ys, 1)?, tensor(gpu, &ws, 2)?);
                    let dx = Tensor::new(gpu, &xs)?;
                    let program = ops::conv::conv2d_backward_input(gpu, &s, &dy, &w, &dx)?;
                    Ok(Built {
                        program,
                        _tensors: vec![dy, w, dx],
                    })
                }),
            });
            out.push(Case {
                kernel: "conv2d_backward_weight",
                shape: name,
                flops: s.flops(),
                bytes: io,
                build: Box::new(move |gpu| {
                    let (x, dy) = (tensor(gpu, &xs, 1)?, tensor(gpu, &ys, 2)?);
                    let dw = Tensor::new(gpu, &ws)?;
                    let program = ops::conv::conv2d_backward_weight(gpu, &s, &x, &dy, &dw)?;
                    Ok(Built {
                        program,
                        _tensors: vec![x, dy, dw],
                    })
                }),
            });
        }
    }

    // Pointwise (1x1) convolutions of the separable ops run as matrix multiplies.
    for (hw, c, k) in [(32, 32, 64), (16, 64, 128)] {
        let m = n * hw * hw;
        out.push(Case {
            kernel: "matmul_forward",
            shape: format!("pointwise n{n} {hw}x{hw} c{c}->{k}"),
            flops: 2.0 * (m * c * k) as f64,
            bytes: 4.0 * (m * (c + k) + c * k) as f64,
            build: Box::new(move |gpu| {
                let (x, w) = (tensor(gpu, &[m, c], 1)?, tensor(gpu, &[c, k], 2)?);
                let (b, y) = (tensor(gpu, &[k], 3)?, Tensor::new(gpu, &[m, k])?);
                let program = ops::matmul::matmul_forward(gpu, m, c, k, &x, &w, &b, &y)?;
                Ok(Built {
                    program,
                    _tensors: vec![x, w, b, y],
                })
            }),
        });
    }

    // Depthwise convolutions of the separable ops.
    for (hw, c) in [(32, 32), (32, 64), (16, 128)] {
        for ks in [3, 5] {
            let s = ops::depthwise::DepthwiseShape {
                n,
                h: hw,
                w: hw,
                c,
                kh: ks,
                kw: ks,
                stride: 1,
                padding: Padding::Same,
            };
            let xs = [n, hw, hw, c];
            out.push(Case {
                kernel: "depthwise_forward",
                shape: format!("n{n} {hw}x{hw} c{c} k{ks}"),
                flops: s.flops(),
                bytes: 4.0 * (2 * n * hw * hw * c + ks * ks * c) as f64,
                build: Box::new(move |gpu| {
                    let (x, w) = (tensor(gpu, &xs, 1)?, tensor(gpu, &[ks, ks, c], 2)?);
                    let y = Tensor::new(gpu, &xs)?;
                    let program = ops::depthwise::depthwise_forward(gpu, &s, &x, &w, &y)?;
                    Ok(Built {
                        program,
                        _tensors: vec![x, w, y],
                    })
                }),
            });
        }
    }

    // Memory-bound kernels: GB/s is their figure.
    let (hw, c) = (32, 32);
    let m = n * hw * hw;
    out.push(Case {
        kernel: "batch_norm_train_forward",
        shape: format!("n{n} {hw}x{hw} c{c}"),
        flops: 0.0,
        bytes: 4.0 * (2 * m * c) as f64,
        build: Box::new(move |gpu| {
            let s = ops::norm::BatchNormShape { m, c };
            let x = tensor(gpu, &[m, c], 1)?;
            let (g, b) = (
                Tensor::from_f32(gpu, &[c], &vec![1.0; c])?,
                Tensor::zeros(gpu, &[c])?,
            );
            let (mm, mv) = (
                Tensor::zeros(gpu, &[c])?,
                Tensor::from_f32(gpu, &[c], &vec![1.0; c])?,
            );
            let (sm, si, y) = (
                Tensor::new(gpu, &[c])?,
                Tensor::new(gpu, &[c])?,
                Tensor::new(gpu, &[m, c])?,
            );
            let program = ops::norm::batch_norm_train_forward(
                gpu, &s, 0.9, 1e-5, &x, &g, &b, &mm, &mv, &sm, &si, &y,
            )?;
            Ok(Built {
                program,
                _tensors: vec![x, g, b, mm, mv, sm, si, y],
            })
        }),
    });
    out.push(Case {
        kernel: "max_pool_forward",
        shape: format!("n{n} {hw}x{hw} c{c} 3x3 s1 same"),
        flops: 0.0,
        bytes: 4.0 * (3 * m * c) as f64,
        build: Box::new(move |gpu| {
            let s = ops::pool::PoolShape {
                n,
                h: hw,
                w: hw,
                c,
                size: 3,
                stride: 1,
                padding: Padding::Same,
            };
            let x = tensor(gpu, &[n, hw, hw, c], 1)?;
            let (y, arg) = (
                Tensor::new(gpu, &[n, hw, hw, c])?,
                Tensor::new(gpu, &[n, hw, hw, c])?,
            );
            let program = ops::pool::max_pool_forward(gpu, &s, &x, &y, &arg)?;
            Ok(Built {
                program,
                _tensors: vec![x, y, arg],
            })
        }),
    });
    out.push(Case {
        kernel: "relu_forward",
        shape: format!("n{n} {hw}x{hw} c{c}"),
        flops: 0.0,
        bytes: 4.0 * (2 * m * c) as f64,
        build: Box::new(move |gpu| {
            let (x, y) = (tensor(gpu, &[m, c], 1)?, Tensor::new(gpu, &[m, c])?);
            let program = ops::elementwise::relu_forward(gpu, &x, &y)?;
            Ok(Built {
                program,
                _tensors: vec![x, y],
            })
        }),
    });
    out
}

impl Case {
    /// Builds the case on `gpu`.
    pub fn build(&self, gpu: &Gpu) -> Result<Built, GpuError> {
        (self.build)(gpu)
    }
}

impl Built {
    /// Submits the program once and waits for it.
    pub fn run_once(&self, gpu: &Gpu) -> Result<(), GpuError> {
        gpu.submit(&[&self.program]);
        gpu.wait()
    }
}

/// Times `case`: one untimed warm-up, then `reps` timed submit-and-wait runs; the median.
pub fn time_case(gpu: &Gpu, case: &Case, reps: usize) -> Result<f64, GpuError> {
    let built = case.build(gpu)?;
    built.run_once(gpu)?;
    let mut ms: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            built.run_once(gpu).map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_, _>>()?;
    ms.sort_by(f64::total_cmp);
    Ok(ms[ms.len() / 2])
}

/// Measures the ceiling and every case whose kernel or shape contains `filter`, calling
/// `report` after each (so a caller can print as results arrive).
pub fn run(
    gpu: &Gpu,
    batch: usize,
    reps: usize,
    filter: Option<&str>,
    mut report: impl FnMut(&Measurement),
) -> Result<Vec<Measurement>, GpuError> {
    let ceiling = ceiling_case();
    let ceiling_ms = time_case(gpu, &ceiling, reps)?;
    let ceiling_gflops = ceiling.flops / ceiling_ms / 1e6;
    let mut out = Vec::new();
    let mut push = |case: &Case, ms: f64, out: &mut Vec<Measurement>| {
        let gflops = (case.flops > 0.0).then(|| case.flops / ms / 1e6);
        let m = Measurement {
            kernel: case.kernel.to_string(),
            shape: case.shape.clone(),
            ms,
            gflops,
            gbps: case.bytes / ms / 1e6,
            ratio_to_ceiling: gflops.map(|g| g / ceiling_gflops),
        };
        report(&m);
        out.push(m);
    };
    push(&ceiling, ceiling_ms, &mut out);
    for case in cases(batch) {
        let wanted = filter.is_none_or(|f| case.kernel.contains(f) || case.shape.contains(f));
        if wanted {
            let ms = time_case(gpu, &case, reps)?;
            push(&case, ms, &mut out);
        }
    }
    Ok(out)
}
