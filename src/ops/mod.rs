//! Typed launchers for every kernel: each checks shapes, fills the kernel's params struct
//! (a Pod mirror of the WGSL struct, size-asserted) and returns a [`Launch`].
//!
//! Launchers are built once when a network is built; training records them every step.
//! Shape misuse here is a programming error of the caller and panics with a clear message;
//! impossible user input is caught earlier, by shape inference in `arch`.
//!
//! [`Launch`]: crate::gpu::Launch

pub mod conv;
pub mod depthwise;
pub mod elementwise;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod optim;
pub mod pool;

/// 'same' or 'valid' padding, with Keras/TensorFlow's rules.
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

#[cfg(test)]
mod tests {
    use super::Padding;

    #[test]
    fn same_padding_puts_the_smaller_half_before() {
        // 7 wide, k=3, stride 2: out 4, total pad (3*2+3-7)=2 -> 1 before, 1 after.
        assert_eq!(Padding::Same.output_and_pad(7, 3, 2), Some((4, 1)));
        // 8 wide, k=3, stride 2: out 4, total pad 1 -> 0 before, 1 after.
        assert_eq!(Padding::Same.output_and_pad(8, 3, 2), Some((4, 0)));
        // 9 wide, k=5, stride 1: out 9, total 4 -> 2 before.
        assert_eq!(Padding::Same.output_and_pad(9, 5, 1), Some((9, 2)));
        assert_eq!(Padding::Valid.output_and_pad(9, 5, 2), Some((3, 0)));
        assert_eq!(Padding::Valid.output_and_pad(2, 3, 1), None);
    }
}
