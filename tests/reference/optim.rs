//! CPU reference: optim (being written).
