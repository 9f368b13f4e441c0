//! CPU reference: batch normalization over x seen as [M,C], in f64, two-pass statistics.

/// Per-channel batch mean and biased variance.
pub fn batch_stats(m: usize, c: usize, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut mean = vec![0.0; c];
    let mut var = vec![0.0; c];
    for ch in 0..c {
        let s: f64 = (0..m).map(|r| x[r * c + ch]).sum();
        mean[ch] = s / m as f64;
        let q: f64 = (0..m).map(|r| (x[r * c + ch] - mean[ch]).powi(2)).sum();
        var[ch] = q / m as f64;
    }
    (mean, var)
}

/// `gamma * (x - mean) / sqrt(var + eps) + beta` with the given per-channel statistics.
#[allow(clippy::too_many_arguments)]
pub fn normalize(
    m: usize,
    c: usize,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    mean: &[f64],
    var: &[f64],
    eps: f64,
) -> Vec<f64> {
    let mut y = vec![0.0; m * c];
    for r in 0..m {
        for ch in 0..c {
            let i = r * c + ch;
            y[i] = gamma[ch] * (x[i] - mean[ch]) / (var[ch] + eps).sqrt() + beta[ch];
        }
    }
    y
}

/// Training forward: normalizes with the batch statistics; returns (y, mean, biased var).
pub fn train_forward(
    m: usize,
    c: usize,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mean, var) = batch_stats(m, c, x);
    (normalize(m, c, x, gamma, beta, &mean, &var, eps), mean, var)
}

/// Moving statistics after one training step (Keras/TF: the variance made unbiased by
/// m / max(m - 1, 1)).
pub fn moving_update(
    m: usize,
    momentum: f64,
    moving_mean: &[f64],
    moving_var: &[f64],
    mean: &[f64],
    var: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let factor = m as f64 / (m.max(2) - 1) as f64;
    let mm = moving_mean
        .iter()
        .zip(mean)
        .map(|(a, b)| a * momentum + b * (1.0 - momentum))
        .collect();
    let mv = moving_var
        .iter()
        .zip(var)
        .map(|(a, b)| a * momentum + b * factor * (1.0 - momentum))
        .collect();
    (mm, mv)
}

/// Training-mode backward by the closed form (used where finite differences would be too
/// slow): returns (dx, dgamma, dbeta).
pub fn train_backward(
    m: usize,
    c: usize,
    x: &[f64],
    dy: &[f64],
    gamma: &[f64],
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mean, var) = batch_stats(m, c, x);
    let mut dgamma = vec![0.0; c];
    let mut dbeta = vec![0.0; c];
    for r in 0..m {
        for ch in 0..c {
            let i = r * c + ch;
            let xhat = (x[i] - mean[ch]) / (var[ch] + eps).sqrt();
            dgamma[ch] += dy[i] * xhat;
            dbeta[ch] += dy[i];
        }
    }
    let mut dx = vec![0.0; m * c];
    for r in 0..m {
        for ch in 0..c {
            let i = r * c + ch;
            let invstd = 1.0 / (var[ch] + eps).sqrt();
            let xhat = (x[i] - mean[ch]) * invstd;
            let mf = m as f64;
            dx[i] = gamma[ch] * invstd * (dy[i] - dbeta[ch] / mf - xhat * dgamma[ch] / mf);
        }
    }
    (dx, dgamma, dbeta)
}
