//! CPU reference: dense matrix multiply with bias, and column sums, in f64.

/// `y[i,j] = b[j] + sum_l x[i,l] w[l,j]`, with x `[m,k]`, w `[k,n]`, b `[n]`.
pub fn matmul(m: usize, k: usize, n: usize, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = b[j];
            for l in 0..k {
                acc += x[i * k + l] * w[l * n + j];
            }
            y[i * n + j] = acc;
        }
    }
    y
}

/// `db[j] = sum_i dy[i,j]` over dy `[m,n]`.
pub fn column_sums(m: usize, n: usize, dy: &[f64]) -> Vec<f64> {
    let mut db = vec![0.0; n];
    for i in 0..m {
        for j in 0..n {
            db[j] += dy[i * n + j];
        }
    }
    db
}
