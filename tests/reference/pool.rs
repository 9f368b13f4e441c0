//! CPU reference: pool (being written).
