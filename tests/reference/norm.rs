//! CPU reference: norm (being written).
