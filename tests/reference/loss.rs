//! CPU reference: softmax with sparse categorical cross-entropy, and the epoch metrics
//! sums, in f64.

/// Per row of `logits` `[N,K]`: the softmax probabilities.
pub fn softmax(n: usize, k: usize, logits: &[f64]) -> Vec<f64> {
    let mut p = vec![0.0; n * k];
    for r in 0..n {
        let row = &logits[r * k..(r + 1) * k];
        let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|v| (v - mx).exp()).sum();
        for j in 0..k {
            p[r * k + j] = (row[j] - mx).exp() / sum;
        }
    }
    p
}

/// Per-sample cross-entropy `-log p[label]`.
pub fn xent(n: usize, k: usize, logits: &[f64], labels: &[u32]) -> Vec<f64> {
    (0..n)
        .map(|r| {
            let row = &logits[r * k..(r + 1) * k];
            let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = mx + row.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
            lse - row[labels[r] as usize]
        })
        .collect()
}

/// The batch's mean cross-entropy (the scalar whose gradient `dlogits` is).
pub fn mean_xent(n: usize, k: usize, logits: &[f64], labels: &[u32]) -> f64 {
    xent(n, k, logits, labels).iter().sum::<f64>() / n as f64
}

/// `(softmax - onehot) / n`, written out from the derivative of the mean loss.
pub fn xent_grad(n: usize, k: usize, logits: &[f64], labels: &[u32]) -> Vec<f64> {
    let mut g = softmax(n, k, logits);
    for r in 0..n {
        g[r * k + labels[r] as usize] -= 1.0;
    }
    g.iter().map(|v| v / n as f64).collect()
}

/// 1.0 where the first largest logit of the row is at the label, else 0.0.
pub fn correct(n: usize, k: usize, logits: &[f64], labels: &[u32]) -> Vec<f64> {
    (0..n)
        .map(|r| {
            let row = &logits[r * k..(r + 1) * k];
            let mut best = 0;
            for j in 1..k {
                if row[j] > row[best] {
                    best = j;
                }
            }
            if best == labels[r] as usize { 1.0 } else { 0.0 }
        })
        .collect()
}

/// One batch's contribution to the metrics: (sum(loss) + n*sum(reg), sum(correct), n).
pub fn metrics_batch(n: usize, loss: &[f64], correct: &[f64], reg: &[f64]) -> [f64; 3] {
    let reg_sum: f64 = reg.iter().sum();
    [
        loss[..n].iter().sum::<f64>() + n as f64 * reg_sum,
        correct[..n].iter().sum(),
        n as f64,
    ]
}
