//! CPU reference: elementwise and layout ops (add, channel concatenation and its split,
//! dropout with a given mask), in f64.

/// `a + b`.
pub fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// Concatenates the rows of `a` `[M,C1]` and `b` `[M,C2]` into `[M,C1+C2]`.
pub fn concat(m: usize, c1: usize, c2: usize, a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut z = Vec::with_capacity(m * (c1 + c2));
    for r in 0..m {
        z.extend_from_slice(&a[r * c1..(r + 1) * c1]);
        z.extend_from_slice(&b[r * c2..(r + 1) * c2]);
    }
    z
}

/// Splits `z` `[M,C1+C2]` back into `([M,C1], [M,C2])`.
pub fn split(m: usize, c1: usize, c2: usize, z: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for row in z.chunks(c1 + c2).take(m) {
        a.extend_from_slice(&row[..c1]);
        b.extend_from_slice(&row[c1..]);
    }
    (a, b)
}

/// Inverted dropout with a fixed mask: `x / (1 - rate)` where `keep`, else 0.
pub fn dropout(x: &[f64], keep: &[bool], rate: f64) -> Vec<f64> {
    assert_eq!(x.len(), keep.len());
    x.iter()
        .zip(keep)
        .map(|(&v, &k)| if k { v / (1.0 - rate) } else { 0.0 })
        .collect()
}
