//! The evaluation config: HiveNAS's `config_default.yaml` settings (HIVENAS.md section 3),
//! read from TOML, with command-line flags layered on top by the CLI.

use std::path::{Path, PathBuf};

use crate::arch::{ArchConfig, ReferenceSpace, Stems};
use crate::data::AugmentConfig;

/// Every setting of an evaluation. Defaults are HiveNAS's, except the dataset: the built-in
/// MNIST. Unknown keys and wrong types are errors naming the key.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// `mnist` (built in), `fashion_mnist` or `cifar10` (HiveNAS's upper-case spellings are
    /// accepted); empty with `data_dir` set means an image folder.
    pub dataset: String,
    /// Where the dataset's files are.
    pub data_dir: Option<PathBuf>,
    /// Train on the first N training images only.
    pub subset: Option<usize>,
    /// Test on the first N test images only.
    pub test_subset: Option<usize>,
    /// Resize every image of an image folder to `HxW` (e.g. "32x32").
    pub resize: Option<String>,
    /// Fraction of the training set held out (from its start) for validation.
    pub validation_split: f64,
    /// Epochs of an evaluation.
    pub epochs: usize,
    /// Epochs of full training.
    pub full_train_epochs: usize,
    /// Epochs of momentum training after an evaluation (0: off, and no momentum record).
    pub momentum_epochs: usize,
    /// Learning rate at the first step.
    pub initial_lr: f64,
    /// Learning rate the staircase decay reaches at the end of a run (0: constant rate).
    pub final_lr: f64,
    /// Training batch size (validation uses half).
    pub batch_size: usize,
    /// SGD momentum.
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// ACT factor beta; 0 disables early termination.
    pub termination_threshold_factor: f64,
    /// ACT diminishing factor zeta.
    pub termination_diminishing_factor: f64,
    /// Seed of initialization, data order, augmentation and dropout.
    pub seed: u64,
    /// Augment training batches at all.
    pub augment: bool,
    /// Which augmentations, with their probabilities and ranges.
    pub augmentation: AugmentConfig,
    /// Results folder: `weights/`, `training_history/`, `evaluations.jsonl`.
    pub results: PathBuf,
    /// Save the checkpoint of every evaluation (needed for momentum and full training).
    pub save_weights: bool,
    /// Read metrics back every this many training steps (progress and divergence checks).
    pub log_every: usize,
    /// Op name -> layers: the built-in table plus these entries.
    pub reference_space: ReferenceSpace,
    /// Ops around every candidate.
    pub stems: Stems,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            dataset: "mnist".into(),
            data_dir: None,
            subset: None,
            test_subset: None,
            resize: None,
            validation_split: 0.2,
            epochs: 5,
            full_train_epochs: 50,
            momentum_epochs: 0,
            initial_lr: 0.08,
            final_lr: 0.01,
            batch_size: 128,
            momentum: 0.9,
            nesterov: true,
            termination_threshold_factor: 0.25,
            termination_diminishing_factor: 0.25,
            seed: 42,
            augment: true,
            augmentation: AugmentConfig::default(),
            results: PathBuf::from("results"),
            save_weights: true,
            log_every: 10,
            reference_space: ReferenceSpace::default(),
            stems: Stems::default(),
        }
    }
}

/// A config file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key, or a value of the wrong type.
    #[error("config file {path}: {message}\nSee README.md (Configuration) for the keys")]
    Parse {
        /// The file.
        path: String,
        /// toml's message, which names the key and line.
        message: String,
    },
    /// A value is out of its range.
    #[error("config: {key} = {value} is not usable: {why}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Its value.
        value: String,
        /// What is allowed.
        why: &'static str,
    },
}

impl EvalConfig {
    /// Parses a TOML document (`path` only names it in errors).
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Ok(cfg)
    }

    /// Reads a TOML file.
    pub fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Checks ranges that serde's types do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, value: String, why| Err(ConfigError::Invalid { key, value, why });
        if self.epochs == 0 {
            return bad("epochs", "0".into(), "train at least 1 epoch");
        }
        if self.full_train_epochs == 0 {
            return bad("full_train_epochs", "0".into(), "train at least 1 epoch");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "0".into(), "it must be at least 1");
        }
        if !(0.0..1.0).contains(&self.validation_split) {
            return bad(
                "validation_split",
                self.validation_split.to_string(),
                "use [0, 1)",
            );
        }
        if !(self.initial_lr.is_finite() && self.initial_lr >= 0.0) {
            return bad("initial_lr", self.initial_lr.to_string(), "use a rate >= 0");
        }
        if !(self.final_lr.is_finite() && self.final_lr >= 0.0) {
            return bad("final_lr", self.final_lr.to_string(), "use a rate >= 0");
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", self.momentum.to_string(), "use [0, 1)");
        }
        if !(0.0..1.0).contains(&self.termination_threshold_factor) {
            let v = self.termination_threshold_factor.to_string();
            return bad(
                "termination_threshold_factor",
                v,
                "use [0, 1); 0 disables ACT",
            );
        }
        if self.log_every == 0 {
            return bad("log_every", "0".into(), "it must be at least 1");
        }
        Ok(())
    }

    /// The reference space and stems, as lowering takes them.
    pub fn arch_config(&self) -> ArchConfig {
        ArchConfig {
            reference_space: self.reference_space.clone(),
            stems: self.stems.clone(),
        }
    }
}
