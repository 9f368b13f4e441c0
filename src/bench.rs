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

impl Case {
    /// Whether `--filter` text selects this case: part of its kernel name or its shape.
    pub fn matches(&self, filter: &str) -> bool {
        self.kernel.contains(filter) || self.shape.contains(filter)
    }
}

/// Creates a case's tensors and program on a device.
type Builder = Box<dyn Fn(&Gpu) -> Result<Built, GpuError>>;

/// A built case: the program and the tensors it binds.
pub struct Built {
    program: Program,
    _tensors: Vec<Tensor>,
}

/// What a case's tensor starts with, and how it counts toward the compulsory bytes.
#[derive(Clone, Copy)]
enum Fill {
    /// Read once: values in [-1, 1).
    In,
    /// Read once: values in (0, 1] (variances, the learning rate).
    Pos,
    /// Read once: u32 values below the bound (labels, the dropout step).
    U32(u32),
    /// Written once; starts with whatever the buffer pool held.
    Out,
    /// Read and written once each (in-place updates).
    InOut,
    /// Only used to set up the timed kernel's inputs (a forward before its backward); not
    /// counted.
    Setup,
}

/// Runs a case's kernel on the tensors made from its specs, in their order.
type Make = dyn Fn(&Gpu, &[Tensor]) -> Result<Program, GpuError>;

fn fill(gpu: &Gpu, shape: &[usize], how: Fill, seed: u32) -> Result<Tensor, GpuError> {
    // A cheap deterministic xorshift fill: benchmark data only needs to be finite.
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        s
    };
    let unit = |v: u32| v as f32 / u32::MAX as f32;
    // The device tensor first: it checks the size against the device's limits before the
    // host fill allocates anything of that size.
    let t = Tensor::new(gpu, shape)?;
    match how {
        Fill::Out => {}
        Fill::U32(bound) => {
            let data: Vec<u32> = (0..n).map(|_| next() % bound.max(1)).collect();
            t.write_u32(gpu, &data);
        }
        Fill::Pos => {
            let data: Vec<f32> = (0..n).map(|_| unit(next()).max(1e-3)).collect();
            t.write_f32(gpu, &data);
        }
        Fill::In | Fill::InOut | Fill::Setup => {
            let data: Vec<f32> = (0..n).map(|_| unit(next()) * 2.0 - 1.0).collect();
            t.write_f32(gpu, &data);
        }
    }
    Ok(t)
}

/// The cases on one shape: its name, and the FLOPs of its compute-bound kernels.
struct On {
    shape: String,
    flops: f64,
}

impl On {
    fn new(shape: String, flops: f64) -> Self {
        Self { shape, flops }
    }

    fn memory_bound(shape: String) -> Self {
        Self::new(shape, 0.0)
    }

    /// A case doing the shape's FLOPs (GFLOP/s and the ratio to the ceiling count).
    fn compute(
        &self,
        kernel: &'static str,
        specs: &[(&[usize], Fill)],
        make: impl Fn(&Gpu, &[Tensor]) -> Result<Program, GpuError> + 'static,
    ) -> Case {
        Self::case(
            kernel,
            self.shape.clone(),
            self.flops,
            specs,
            Box::new(make),
        )
    }

    /// A memory-bound case (GB/s only).
    fn memory(
        &self,
        kernel: &'static str,
        specs: &[(&[usize], Fill)],
        make: impl Fn(&Gpu, &[Tensor]) -> Result<Program, GpuError> + 'static,
    ) -> Case {
        Self::case(kernel, self.shape.clone(), 0.0, specs, Box::new(make))
    }

    /// A case whose tensors are made from `specs` (shape and fill, in the order `make`
    /// takes them); the compulsory bytes follow from the specs.
    fn case(
        kernel: &'static str,
        shape: String,
        flops: f64,
        specs: &[(&[usize], Fill)],
        make: Box<Make>,
    ) -> Case {
        let specs: Vec<(Vec<usize>, Fill)> = specs.iter().map(|(s, f)| (s.to_vec(), *f)).collect();
        let bytes = specs
            .iter()
            .map(|(s, f)| {
                let touches = match f {
                    Fill::Setup => 0,
                    Fill::InOut => 2,
                    _ => 1,
                };
                4.0 * (touches * s.iter().product::<usize>()) as f64
            })
            .sum();
        Case {
            kernel,
            shape,
            flops,
            bytes,
            build: Box::new(move |gpu| {
                let tensors = specs
                    .iter()
                    .zip(1..)
                    .map(|((s, f), seed)| fill(gpu, s, *f, seed))
                    .collect::<Result<Vec<_>, _>>()?;
                let program = make(gpu, &tensors)?;
                Ok(Built {
                    program,
                    _tensors: tensors,
                })
            }),
        }
    }
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
    let specs: [(&[usize], Fill); 4] = [
        (&[m, m], Fill::In),
        (&[m, m], Fill::In),
        (&[m], Fill::In),
        (&[m, m], Fill::Out),
    ];
    On::new(
        "1024x1024x1024 (ceiling)".into(),
        ops::matmul::matmul_flops(m, m, m),
    )
    .compute("matmul_forward", &specs, move |g, t| {
        ops::matmul::matmul_forward(g, m, m, m, &t[0], &t[1], &t[2], &t[3])
    })
}

/// Every case at batch `n` (HiveNAS trains at 128).
pub fn cases(n: usize) -> Vec<Case> {
    use Fill::{In, InOut, Out, Pos, Setup, U32};
    use ops::{conv, depthwise as dw, elementwise as ew, loss, matmul as mm, norm, optim, pool};
    let mut out = Vec::new();

    // Convolutions where HiveNAS's cells put them: 32->64 at full size, 64->128 after one
    // 2x2 reduction, 128->256 after two; 28x28 for MNIST-sized inputs.
    for (hw, c, k) in [(32, 32, 64), (28, 32, 64), (16, 64, 128), (8, 128, 256)] {
        for ks in [3, 5] {
            let s = conv_shape(n, hw, c, k, ks);
            let on = On::new(format!("n{n} {hw}x{hw} c{c}->{k} k{ks} s1 same"), s.flops());
            let (x, y, w): (&[usize], &[usize], &[usize]) =
                (&[n, hw, hw, c], &[n, hw, hw, k], &[ks, ks, c, k]);
            out.extend([
                on.compute(
                    "conv2d_forward",
                    &[(x, In), (w, In), (&[k], In), (y, Out)],
                    move |g, t| conv::conv2d_forward(g, &s, &t[0], &t[1], &t[2], &t[3]),
                ),
                on.compute(
                    "conv2d_backward_input",
                    &[(y, In), (w, In), (x, Out)],
                    move |g, t| conv::conv2d_backward_input(g, &s, &t[0], &t[1], &t[2]),
                ),
                on.compute(
                    "conv2d_backward_weight",
                    &[(x, In), (y, In), (w, Out)],
                    move |g, t| conv::conv2d_backward_weight(g, &s, &t[0], &t[1], &t[2]),
                ),
            ]);
        }
    }

    // Pointwise (1x1) convolutions of the separable ops and the residual cells run as
    // matrix multiplies over N*H*W rows; the dense head maps the pooled channels to 10
    // classes.
    let pointwise = [(32, 32, 64), (16, 64, 128), (8, 128, 256)].map(|(hw, c, k)| {
        let name = format!("pointwise n{n} {hw}x{hw} c{c}->{k}");
        (n * hw * hw, c, k, name)
    });
    let head = (n, 256, 10, format!("dense head n{n} 256->10"));
    for (m, c, k, name) in pointwise.into_iter().chain([head]) {
        let on = On::new(name, mm::matmul_flops(m, c, k));
        let (x, y, w): (&[usize], &[usize], &[usize]) = (&[m, c], &[m, k], &[c, k]);
        out.extend([
            on.compute(
                "matmul_forward",
                &[(x, In), (w, In), (&[k], In), (y, Out)],
                move |g, t| mm::matmul_forward(g, m, c, k, &t[0], &t[1], &t[2], &t[3]),
            ),
            on.compute(
                "matmul_backward_input",
                &[(y, In), (w, In), (x, Out)],
                move |g, t| mm::matmul_backward_input(g, m, c, k, &t[0], &t[1], &t[2]),
            ),
            on.compute(
                "matmul_backward_weight",
                &[(x, In), (y, In), (w, Out)],
                move |g, t| mm::matmul_backward_weight(g, m, c, k, &t[0], &t[1], &t[2]),
            ),
            // The bias gradient of a convolution or dense layer: a column sum of dy.
            on.memory("bias_backward", &[(y, In), (&[k], Out)], move |g, t| {
                mm::bias_backward(g, m, k, &t[0], &t[1])
            }),
        ]);
    }

    // Depthwise convolutions of the separable ops.
    for (hw, c) in [(32, 32), (32, 64), (16, 128)] {
        for ks in [3, 5] {
            let s = dw::DepthwiseShape {
                n,
                h: hw,
                w: hw,
                c,
                kh: ks,
                kw: ks,
                stride: 1,
                padding: Padding::Same,
            };
            let on = On::new(format!("n{n} {hw}x{hw} c{c} k{ks}"), s.flops());
            let (x, w): (&[usize], &[usize]) = (&[n, hw, hw, c], &[ks, ks, c]);
            out.extend([
                on.compute(
                    "depthwise_forward",
                    &[(x, In), (w, In), (x, Out)],
                    move |g, t| dw::depthwise_forward(g, &s, &t[0], &t[1], &t[2]),
                ),
                on.compute(
                    "depthwise_backward_input",
                    &[(x, In), (w, In), (x, Out)],
                    move |g, t| dw::depthwise_backward_input(g, &s, &t[0], &t[1], &t[2]),
                ),
                on.compute(
                    "depthwise_backward_weight",
                    &[(x, In), (x, In), (w, Out)],
                    move |g, t| dw::depthwise_backward_weight(g, &s, &t[0], &t[1], &t[2]),
                ),
            ]);
        }
    }

    // Memory-bound kernels from here on: GB/s is their figure.

    // Pools: the 3x3 stride-1 pooling ops, and the 2x2 stride-2 reduction after a cell.
    for (size, stride, hw, c) in [(3, 1, 32, 32), (2, 2, 32, 64)] {
        let s = pool::PoolShape {
            n,
            h: hw,
            w: hw,
            c,
            size,
            stride,
            padding: Padding::Same,
        };
        let on = On::memory_bound(format!("n{n} {hw}x{hw} c{c} {size}x{size} s{stride} same"));
        let (x, y): (&[usize], &[usize]) = (&[n, hw, hw, c], &[n, s.out_h(), s.out_w(), c]);
        out.extend([
            on.memory(
                "max_pool_forward",
                &[(x, In), (y, Out), (y, Out)],
                move |g, t| pool::max_pool_forward(g, &s, &t[0], &t[1], &t[2]),
            ),
            // The forward runs once first so that the argmax is real.
            on.memory(
                "max_pool_backward",
                &[(x, Setup), (y, Setup), (y, In), (y, In), (x, Out)],
                move |g, t| {
                    let forward = pool::max_pool_forward(g, &s, &t[0], &t[1], &t[3])?;
                    g.submit(&[&forward]);
                    g.wait()?;
                    pool::max_pool_backward(g, &s, &t[2], &t[3], &t[4])
                },
            ),
            on.memory("avg_pool_forward", &[(x, In), (y, Out)], move |g, t| {
                pool::avg_pool_forward(g, &s, &t[0], &t[1])
            }),
            on.memory("avg_pool_backward", &[(y, In), (x, Out)], move |g, t| {
                pool::avg_pool_backward(g, &s, &t[0], &t[1])
            }),
        ]);
    }
    for (hw, c) in [(32, 64), (8, 256)] {
        let on = On::memory_bound(format!("n{n} {hw}x{hw} c{c}"));
        let (x, y): (&[usize], &[usize]) = (&[n, hw, hw, c], &[n, c]);
        out.extend([
            on.memory(
                "global_avg_pool_forward",
                &[(x, In), (y, Out)],
                move |g, t| pool::global_avg_pool_forward(g, n, hw, hw, c, &t[0], &t[1]),
            ),
            on.memory(
                "global_avg_pool_backward",
                &[(y, In), (x, Out)],
                move |g, t| pool::global_avg_pool_backward(g, n, hw, hw, c, &t[0], &t[1]),
            ),
        ]);
    }

    // Batch norm after the stem and after a 32->64 convolution.
    for (hw, c) in [(32, 32), (32, 64)] {
        let s = norm::BatchNormShape { m: n * hw * hw, c };
        let on = On::memory_bound(format!("n{n} {hw}x{hw} c{c}"));
        let (x, v): (&[usize], &[usize]) = (&[s.m, c], &[c]);
        out.extend([
            on.memory(
                "batch_norm_train_forward",
                &[
                    (x, In),
                    (v, Pos),
                    (v, In),
                    (v, InOut),
                    (v, InOut),
                    (v, Out),
                    (v, Out),
                    (x, Out),
                ],
                move |g, t| {
                    let [x, gamma, beta, mean, var, saved_mean, saved_invstd, y] = t else {
                        unreachable!("eight tensors")
                    };
                    norm::batch_norm_train_forward(
                        g,
                        &s,
                        0.9,
                        1e-5,
                        x,
                        gamma,
                        beta,
                        mean,
                        var,
                        saved_mean,
                        saved_invstd,
                        y,
                    )
                },
            ),
            on.memory(
                "batch_norm_infer_forward",
                &[(x, In), (v, Pos), (v, In), (v, In), (v, Pos), (x, Out)],
                move |g, t| {
                    let (x, gamma, beta, mean, var, y) = (&t[0], &t[1], &t[2], &t[3], &t[4], &t[5]);
                    norm::batch_norm_infer_forward(g, &s, 1e-5, x, gamma, beta, mean, var, y)
                },
            ),
            on.memory(
                "batch_norm_backward",
                &[
                    (x, In),
                    (x, In),
                    (v, Pos),
                    (v, In),
                    (v, Pos),
                    (x, Out),
                    (v, Out),
                    (v, Out),
                ],
                move |g, t| {
                    let [x, dy, gamma, mean, invstd, dx, dgamma, dbeta] = t else {
                        unreachable!("eight tensors")
                    };
                    norm::batch_norm_backward(g, &s, x, dy, gamma, mean, invstd, dx, dgamma, dbeta)
                },
            ),
        ]);
    }

    // Elementwise kernels on the activations of the stem and of a 32->64 convolution.
    for c in [32, 64] {
        let on = On::memory_bound(format!("n{n} 32x32 c{c}"));
        let x: &[usize] = &[n, 32, 32, c];
        let (rate, seed) = (0.15, 7);
        out.extend([
            on.memory("relu_forward", &[(x, In), (x, Out)], |g, t| {
                ew::relu_forward(g, &t[0], &t[1])
            }),
            on.memory("relu_backward", &[(x, In), (x, In), (x, Out)], |g, t| {
                ew::relu_backward(g, &t[0], &t[1], &t[2])
            }),
            on.memory("add_forward", &[(x, In), (x, In), (x, Out)], |g, t| {
                ew::add_forward(g, &t[0], &t[1], &t[2])
            }),
            on.memory("accumulate", &[(x, In), (x, InOut)], |g, t| {
                ew::accumulate(g, &t[0], &t[1])
            }),
            on.memory(
                "dropout_forward",
                &[(&[1], U32(1)), (x, In), (x, Out)],
                move |g, t| ew::dropout_forward(g, rate, seed, &t[0], &t[1], &t[2]),
            ),
            on.memory(
                "dropout_backward",
                &[(&[1], U32(1)), (x, In), (x, Out)],
                move |g, t| ew::dropout_backward(g, rate, seed, &t[0], &t[1], &t[2]),
            ),
        ]);
    }

    // The residual cells' concatenation of the cell input and the block output.
    for (hw, c1, c2) in [(32, 32, 64), (16, 64, 128)] {
        let m = n * hw * hw;
        let on = On::memory_bound(format!("n{n} {hw}x{hw} c{c1}+{c2}"));
        let (a, b, z): (&[usize], &[usize], &[usize]) = (&[m, c1], &[m, c2], &[m, c1 + c2]);
        out.extend([
            on.memory(
                "concat_forward",
                &[(a, In), (b, In), (z, Out)],
                move |g, t| ew::concat_forward(g, m, c1, c2, &t[0], &t[1], &t[2]),
            ),
            on.memory(
                "concat_backward",
                &[(z, In), (a, Out), (b, Out)],
                move |g, t| ew::concat_backward(g, m, c1, c2, &t[0], &t[1], &t[2]),
            ),
        ]);
    }

    // The loss on 10 classes, and the per-batch metrics sum.
    let classes = 10;
    let (logits, rows): (&[usize], &[usize]) = (&[n, classes], &[n]);
    let on = On::memory_bound(format!("n{n} x {classes}"));
    out.extend([
        on.memory(
            "softmax_xent_forward",
            &[
                (logits, In),
                (rows, U32(classes as u32)),
                (logits, Out),
                (rows, Out),
                (rows, Out),
            ],
            move |g, t| {
                loss::softmax_xent_forward(g, n, classes, &t[0], &t[1], &t[2], &t[3], &t[4])
            },
        ),
        On::memory_bound(format!("n{n}, 8 L2 terms")).memory(
            "metrics_accumulate",
            &[(rows, In), (rows, In), (&[8], In), (&[4], InOut)],
            move |g, t| loss::metrics_accumulate(g, n, &t[0], &t[1], &t[2], &t[3]),
        ),
    ]);

    // Regularization and the optimizer on a 3x3 64->128 kernel.
    let w: &[usize] = &[3, 3, 64, 128];
    let on = On::memory_bound("w 3x3x64x128".into());
    out.extend([
        on.memory("l2_loss", &[(w, In), (&[1], Out)], |g, t| {
            optim::l2_loss(g, 1e-4, &t[0], &t[1], 0)
        }),
        on.memory("l2_backward", &[(w, In), (w, InOut)], |g, t| {
            optim::l2_backward(g, 1e-4, &t[0], &t[1])
        }),
        on.memory(
            "sgd_update",
            &[(&[1], Pos), (w, InOut), (w, InOut), (w, In)],
            |g, t| optim::sgd_update(g, 0.9, true, &t[0], &t[1], &t[2], &t[3]),
        ),
    ]);
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
        let wanted = filter.is_none_or(|f| case.matches(f));
        if wanted {
            let ms = time_case(gpu, &case, reps)?;
            push(&case, ms, &mut out);
        }
    }
    Ok(out)
}
