//! CPU references: plain f64 loops, written apart from the kernels and sharing no code with
//! `src/`. One file per op family; the whole-network gradient check composes them.

#![allow(dead_code)]

pub mod conv;
pub mod depthwise;
pub mod elementwise;
pub mod loss;
pub mod matmul;
pub mod network;
pub mod norm;
pub mod optim;
pub mod pool;
