//! CPU reference: loss (being written).
