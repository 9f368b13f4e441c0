//! CPU reference: depthwise (being written).
