//! Stand-in for `naseval::ops` in the fuzz build: only [`Padding`], which is all `src/arch`
//! imports from it. `src/ops/mod.rs` itself cannot be included because its submodules
//! build GPU launchers (wgpu); `tests/arch_fuzz_regressions.rs` checks that this copy
//! agrees with the real one, so a change there fails the test suite, not silently the fuzzer.

/// 'same' or 'valid' padding, with Keras/TensorFlow's rules (a copy of `ops::Padding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// out = ceil(in / stride); total padding max((out-1)*stride + k - in, 0), the smaller
    /// half before.
    Same,
    /// No padding: out = floor((in - k) / stride) + 1, and in >= k.
    Valid,
}

impl Padding {
    /// Output size and padding before, for one spatial dimension; `None` when a 'valid'
    /// window does not fit.
    pub fn output_and_pad(
        self,
        input: usize,
        kernel: usize,
        stride: usize,
    ) -> Option<(usize, usize)> {
        match self {
            Padding::Same => {
                let out = input.div_ceil(stride);
                let total = ((out - 1) * stride + kernel).saturating_sub(input);
                Some((out, total / 2))
            }
            Padding::Valid => {
                if input < kernel {
                    None
                } else {
                    Some(((input - kernel) / stride + 1, 0))
                }
            }
        }
    }
}
