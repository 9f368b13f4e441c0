//! CPU reference: the L2 term and its gradient, and Keras's SGD with momentum, in f64.

/// `coef * sum(w^2)`.
pub fn l2(coef: f64, w: &[f64]) -> f64 {
    coef * w.iter().map(|v| v * v).sum::<f64>()
}

/// `2 * coef * w`, the derivative of [`l2`].
pub fn l2_grad(coef: f64, w: &[f64]) -> Vec<f64> {
    w.iter().map(|v| 2.0 * coef * v).collect()
}

/// One SGD step in place: `v <- m v - lr g`; Nesterov `w <- w + m v - lr g` with the new
/// `v`, plain `w <- w + v`.
pub fn sgd_step(momentum: f64, nesterov: bool, lr: f64, w: &mut [f64], v: &mut [f64], g: &[f64]) {
    for i in 0..w.len() {
        v[i] = momentum * v[i] - lr * g[i];
        w[i] += if nesterov {
            momentum * v[i] - lr * g[i]
        } else {
            v[i]
        };
    }
}
