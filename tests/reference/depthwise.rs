//! CPU reference: depthwise 2-D convolution (multiplier 1, no bias), NHWC, in f64.

/// Geometry, spelled out so the reference shares nothing with `naseval::ops`.
#[derive(Clone, Copy, Debug)]
pub struct Geom {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    /// 'same' (true) or 'valid'.
    pub same: bool,
}

/// Output size and padding before, by TensorFlow's rule (smaller half of the padding
/// before the input).
pub fn out_and_pad(input: usize, k: usize, stride: usize, same: bool) -> (usize, usize) {
    if same {
        let out = input.div_ceil(stride);
        let need = (out - 1) * stride + k;
        let total = need.saturating_sub(input);
        (out, total / 2)
    } else {
        ((input - k) / stride + 1, 0)
    }
}

impl Geom {
    pub fn out_hw(&self) -> (usize, usize) {
        (
            out_and_pad(self.h, self.kh, self.stride, self.same).0,
            out_and_pad(self.w, self.kw, self.stride, self.same).0,
        )
    }
}

/// `y[b,oy,ox,c] = sum_{ky,kx} x[b, oy*s - pt + ky, ox*s - pl + kx, c] * w[ky,kx,c]`, taps
/// outside the input skipped. x `[n,h,w,c]`, w `[kh,kw,c]`.
pub fn depthwise(g: &Geom, x: &[f64], w: &[f64]) -> Vec<f64> {
    let (oh, pt) = out_and_pad(g.h, g.kh, g.stride, g.same);
    let (ow, pl) = out_and_pad(g.w, g.kw, g.stride, g.same);
    let mut y = vec![0.0; g.n * oh * ow * g.c];
    for b in 0..g.n {
        for oy in 0..oh {
            for ox in 0..ow {
                for c in 0..g.c {
                    let mut acc = 0.0;
                    for ky in 0..g.kh {
                        for kx in 0..g.kw {
                            let iy = (oy * g.stride + ky) as isize - pt as isize;
                            let ix = (ox * g.stride + kx) as isize - pl as isize;
                            if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                continue;
                            }
                            let xi = ((b * g.h + iy as usize) * g.w + ix as usize) * g.c + c;
                            acc += x[xi] * w[(ky * g.kw + kx) * g.c + c];
                        }
                    }
                    y[((b * oh + oy) * ow + ox) * g.c + c] = acc;
                }
            }
        }
    }
    y
}
