//! Op lists, the reference space, shape inference and the SHA-1 name (being written).
