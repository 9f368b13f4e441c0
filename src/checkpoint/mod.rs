//! The checkpoint file format (being written).
