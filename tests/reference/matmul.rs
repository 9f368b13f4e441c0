//! CPU reference: matmul (being written).
