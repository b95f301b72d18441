//! # balms
//!
//! A reproducibility harness for *Balanced Meta-Softmax for Long-Tailed Visual Recognition*
//! (Ren et al., NeurIPS 2020). The pipeline, one module per stage:
//!
//! ```text
//! experiments/*.toml --config--> MatrixFile --matrix--> Plan (cells x seeds)
//!        |                                               |
//!        |          data (pool, long-tailed subset) -----+--> runner --> train (model, loss, sampler)
//!        |                                                       |
//!        +------------------------------------------- store (results/<matrix>/<cell>/seed-k)
//!                                                                |
//!                                                  report (mean, s.e., 95% t-interval) --> paper/
//! ```
//!
//! `config`, `matrix`, `seed`, `store` and `report` do not touch tensors.
//!
//! Imports go one way, from later stages to earlier ones, by the layers of CONTRIBUTING.md's
//! table (the vocabulary at the bottom, `cli` at the top), so no two modules, and no two files,
//! import each other; `tests/it/imports.rs` checks it.

pub mod bench;
pub mod bound;
pub mod cli;
pub mod config;
pub mod data;
pub mod device;
pub mod files;
pub mod loss;
pub mod matrix;
pub mod model;
pub mod reference;
pub mod report;
pub mod runner;
pub mod sampler;
pub mod seed;
pub mod store;
pub mod train;
pub mod vocab;

/// The README's code blocks, compiled and run as doc tests (the "add a loss" recipe among them).
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
