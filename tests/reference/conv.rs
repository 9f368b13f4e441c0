//! CPU reference: conv (being written).
