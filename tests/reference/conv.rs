//! CPU reference: 2-D convolution over NHWC activations with HWIO kernels, plain f64 loops.
//! 'same' padding follows TensorFlow: out = ceil(in/stride), the smaller half of the total
//! padding before.

/// A convolution's sizes, spelled out independently of `naseval::ops::conv`.
#[derive(Clone, Copy, Debug)]
pub struct Conv {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub k: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub same: bool,
}

/// Output size and padding before along one axis.
fn axis(input: usize, kernel: usize, stride: usize, same: bool) -> (usize, usize) {
    if same {
        let out = input.div_ceil(stride);
        let total = ((out - 1) * stride + kernel).saturating_sub(input);
        (out, total / 2)
    } else {
        assert!(input >= kernel, "valid window does not fit");
        ((input - kernel) / stride + 1, 0)
    }
}

impl Conv {
    pub fn out_h(&self) -> usize {
        axis(self.h, self.kh, self.stride, self.same).0
    }

    pub fn out_w(&self) -> usize {
        axis(self.w, self.kw, self.stride, self.same).0
    }

    pub fn x_len(&self) -> usize {
        self.n * self.h * self.w * self.c
    }

    pub fn w_len(&self) -> usize {
        self.kh * self.kw * self.c * self.k
    }

    pub fn y_len(&self) -> usize {
        self.n * self.out_h() * self.out_w() * self.k
    }

    /// Calls `f(x index, w index, y index)` for every multiply of the convolution that
    /// touches a real (unpadded) input cell.
    fn for_each_tap(&self, mut f: impl FnMut(usize, usize, usize)) {
        let (oh_n, ph) = axis(self.h, self.kh, self.stride, self.same);
        let (ow_n, pw) = axis(self.w, self.kw, self.stride, self.same);
        for n in 0..self.n {
            for oh in 0..oh_n {
                for ow in 0..ow_n {
                    for i in 0..self.kh {
                        let ih = (oh * self.stride + i) as isize - ph as isize;
                        if ih < 0 || ih >= self.h as isize {
                            continue;
                        }
                        for j in 0..self.kw {
                            let iw = (ow * self.stride + j) as isize - pw as isize;
                            if iw < 0 || iw >= self.w as isize {
                                continue;
                            }
                            let xi = ((n * self.h + ih as usize) * self.w + iw as usize) * self.c;
                            let wi = (i * self.kw + j) * self.c * self.k;
                            let yi = ((n * oh_n + oh) * ow_n + ow) * self.k;
                            for ci in 0..self.c {
                                for ko in 0..self.k {
                                    f(xi + ci, wi + ci * self.k + ko, yi + ko);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `y[n,oh,ow,k] = b[k] + sum x[n, oh*s-ph+i, ow*s-pw+j, c] * w[i,j,c,k]`.
pub fn conv2d_forward(s: &Conv, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    assert_eq!(x.len(), s.x_len());
    assert_eq!(w.len(), s.w_len());
    assert_eq!(b.len(), s.k);
    let mut y: Vec<f64> = (0..s.y_len()).map(|i| b[i % s.k]).collect();
    s.for_each_tap(|xi, wi, yi| y[yi] += x[xi] * w[wi]);
    y
}

/// The input gradient by scattering each `dy` back through the taps that produced it.
pub fn conv2d_backward_input(s: &Conv, dy: &[f64], w: &[f64]) -> Vec<f64> {
    assert_eq!(dy.len(), s.y_len());
    let mut dx = vec![0.0; s.x_len()];
    s.for_each_tap(|xi, wi, yi| dx[xi] += dy[yi] * w[wi]);
    dx
}

/// The weight gradient, summed over every tap.
pub fn conv2d_backward_weight(s: &Conv, x: &[f64], dy: &[f64]) -> Vec<f64> {
    assert_eq!(dy.len(), s.y_len());
    let mut dw = vec![0.0; s.w_len()];
    s.for_each_tap(|xi, wi, yi| dw[wi] += x[xi] * dy[yi]);
    dw
}
