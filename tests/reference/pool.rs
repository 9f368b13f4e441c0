//! CPU reference: KxK max and average pooling and global average pooling over NHWC
//! arrays, in f64, with Keras's 'same' padding (smaller half before).

/// Output size and padding before along one axis. `same`: out = ceil(in / stride), total
/// padding max((out-1)*stride + k - in, 0) split with the smaller half first; otherwise
/// 'valid': out = (in - k) / stride + 1, no padding.
pub fn out_and_pad(input: usize, k: usize, stride: usize, same: bool) -> (usize, usize) {
    if same {
        let out = input.div_ceil(stride);
        let need = (out - 1) * stride + k;
        let total = need.saturating_sub(input);
        (out, total / 2)
    } else {
        assert!(
            input >= k,
            "reference: 'valid' window {k} larger than input {input}"
        );
        ((input - k) / stride + 1, 0)
    }
}

/// Geometry of one pooling case.
#[derive(Clone, Copy, Debug)]
pub struct Pool {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub k: usize,
    pub stride: usize,
    pub same: bool,
}

impl Pool {
    pub fn out(&self) -> (usize, usize) {
        (
            out_and_pad(self.h, self.k, self.stride, self.same).0,
            out_and_pad(self.w, self.k, self.stride, self.same).0,
        )
    }

    /// For each output element (NHWC order), the flat indices of the real input cells of
    /// its window, rows first.
    pub fn windows(&self) -> Vec<Vec<usize>> {
        let (oh, pt) = out_and_pad(self.h, self.k, self.stride, self.same);
        let (ow, pl) = out_and_pad(self.w, self.k, self.stride, self.same);
        let mut all = Vec::with_capacity(self.n * oh * ow * self.c);
        for b in 0..self.n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for ch in 0..self.c {
                        let mut cells = Vec::new();
                        for dy in 0..self.k {
                            for dx in 0..self.k {
                                let iy = (oy * self.stride + dy) as isize - pt as isize;
                                let ix = (ox * self.stride + dx) as isize - pl as isize;
                                let inside = iy >= 0
                                    && ix >= 0
                                    && (iy as usize) < self.h
                                    && (ix as usize) < self.w;
                                if inside {
                                    let (iy, ix) = (iy as usize, ix as usize);
                                    cells.push(((b * self.h + iy) * self.w + ix) * self.c + ch);
                                }
                            }
                        }
                        all.push(cells);
                    }
                }
            }
        }
        all
    }
}

/// Max pooling: values and the flat index of the first maximum of each window.
pub fn max_pool(p: &Pool, x: &[f64]) -> (Vec<f64>, Vec<u32>) {
    let mut y = Vec::new();
    let mut arg = Vec::new();
    for cells in p.windows() {
        let mut best = cells[0];
        for &i in &cells[1..] {
            if x[i] > x[best] {
                best = i;
            }
        }
        y.push(x[best]);
        arg.push(best as u32);
    }
    (y, arg)
}

/// Average pooling over the real cells of each window.
pub fn avg_pool(p: &Pool, x: &[f64]) -> Vec<f64> {
    p.windows()
        .iter()
        .map(|cells| cells.iter().map(|&i| x[i]).sum::<f64>() / cells.len() as f64)
        .collect()
}

/// Global average pooling: [N,H,W,C] -> [N,C].
pub fn global_avg_pool(n: usize, hw: usize, c: usize, x: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; n * c];
    for b in 0..n {
        for p in 0..hw {
            for ch in 0..c {
                y[b * c + ch] += x[(b * hw + p) * c + ch];
            }
        }
    }
    y.iter().map(|v| v / hw as f64).collect()
}
