//! CPU reference: elementwise (being written).
