//! What a trained candidate's checkpoint holds, mapped onto the container: the
//! architecture and settings (to rebuild the network), every tensor (to restore it), and
//! the optimizer, schedule and RNG state and history (to continue training where it
//! stopped). Also the HiveNAS-style file names, `<sha1>.ckpt` and `<sha1>.full.ckpt`.
//!
//! Layout inside the file (paths from the root):
//! - `/` attributes: `kind`, `schema`, `naseval_version`, `sha1`, `ops`, `input_stem`,
//!   `output_stem`, `dataset`, `input_shape`, `classes`, `epochs_trained`.
//! - `meta/{config,reference_space,history,momentum_record,last_metrics}`: JSON documents
//!   as scalar string datasets.
//! - `train` attributes: `optimizer_step`, `initial_lr`, `final_lr`, `schedule_epochs`,
//!   `steps_per_epoch`, `rng_state`.
//! - `model/...` and `optimizer/...`: every tensor, f32, at its own path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha1::{Digest, Sha1};

use super::read::CheckpointFile;
use super::tree::{Dataset, Group};
use super::{Attr, CheckpointError, Data};

/// The root `kind` attribute of a model checkpoint.
pub const MODEL_KIND: &str = "naseval-model";

/// The newest model layout this build writes and reads (root `schema` attribute). Adding
/// an optional field keeps it; renaming or reinterpreting one bumps it.
pub const MODEL_SCHEMA: u32 = 1;

/// The file name extension of checkpoints.
pub const EXTENSION: &str = "ckpt";

/// The top-level groups tensors may live under.
const TENSOR_ROOTS: [&str; 2] = ["model", "optimizer"];

const JSON_FIELDS: [&str; 5] = [
    "config",
    "reference_space",
    "history",
    "momentum_record",
    "last_metrics",
];

/// A tensor by path: a parameter, a batch-norm moving statistic or an optimizer velocity.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedArray {
    /// Where it lives, e.g. `model/L3_sep3x3_64/pointwise/kernel` or
    /// `optimizer/velocity/L3_sep3x3_64/pointwise/kernel`.
    pub path: String,
    /// Its dimensions.
    pub shape: Vec<usize>,
    /// Its elements, row-major.
    pub data: Vec<f32>,
}

/// The learning-rate schedule's state: enough to recompute the rate of any step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LrSchedule {
    /// Rate at the first step.
    pub initial_lr: f64,
    /// Rate at the last step.
    pub final_lr: f64,
    /// Epochs the schedule spans.
    pub epochs: u64,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: u64,
}

/// Everything needed to rebuild a trained candidate and continue training it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelCheckpoint {
    /// The candidate's op names (stems excluded); its SHA-1 names the file.
    pub ops: Vec<String>,
    /// Input stem op names.
    pub input_stem: Vec<String>,
    /// Output stem op names.
    pub output_stem: Vec<String>,
    /// The reference-space entries the ops use (op name -> layer description).
    pub reference_space: Value,
    /// Dataset name, e.g. "mnist".
    pub dataset: String,
    /// Input shape `[H, W, C]`.
    pub input_shape: [usize; 3],
    /// Number of classes.
    pub classes: usize,
    /// The run's settings (the evaluation config).
    pub config: Value,
    /// Every tensor; paths start with `model/` or `optimizer/`. [`load`](Self::load)
    /// returns them sorted by path.
    pub tensors: Vec<NamedArray>,
    /// Optimizer steps taken so far.
    pub optimizer_step: u64,
    /// Learning-rate schedule state.
    pub schedule: LrSchedule,
    /// RNG state (e.g. seed and epochs completed), as the training loop defines it.
    pub rng_state: Vec<u64>,
    /// Training history (per-epoch metrics).
    pub history: Value,
    /// Momentum-training record.
    pub momentum_record: Value,
    /// Epochs trained so far.
    pub epochs_trained: u64,
    /// The latest metrics (e.g. validation and test accuracy).
    pub last_metrics: Value,
    /// The naseval version that wrote the file; set by [`load`](Self::load), ignored by
    /// [`save`](Self::save) (which writes its own version).
    pub written_by: String,
    /// The file it was loaded from, for error messages; `None` when built in memory.
    pub origin: Option<PathBuf>,
}

impl ModelCheckpoint {
    /// The SHA-1 hex digest of the op list: the file's base name.
    pub fn sha1(&self) -> String {
        sha1_hex(&self.ops)
    }

    /// The file name this checkpoint gets: `<sha1>.ckpt`, or `<sha1>.full.ckpt` after full
    /// training.
    pub fn file_name(&self, full: bool) -> String {
        checkpoint_file_name(&self.ops, full)
    }

    /// Writes it to `path` atomically (see [`write_atomic`](super::write_atomic)).
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        super::write_atomic(path, &self.to_group()?)
    }

    /// Reads and validates the model checkpoint at `path`.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        Self::from_file(&CheckpointFile::open(path)?)
    }

    /// The container tree holding this checkpoint.
    pub fn to_group(&self) -> Result<Group, CheckpointError> {
        let mut root = Group::new();
        let strs = |v: &[String]| Attr::Array(Data::Str(v.to_vec()));
        root.set_attr("kind", MODEL_KIND);
        root.set_attr("schema", MODEL_SCHEMA);
        root.set_attr("naseval_version", env!("CARGO_PKG_VERSION"));
        root.set_attr("sha1", self.sha1());
        root.set_attr("ops", strs(&self.ops));
        root.set_attr("input_stem", strs(&self.input_stem));
        root.set_attr("output_stem", strs(&self.output_stem));
        root.set_attr("dataset", self.dataset.as_str());
        root.set_attr("input_shape", self.input_shape.map(|d| d as u64).to_vec());
        root.set_attr("classes", self.classes as u64);
        root.set_attr("epochs_trained", self.epochs_trained);

        let docs = [
            &self.config,
            &self.reference_space,
            &self.history,
            &self.momentum_record,
            &self.last_metrics,
        ];
        for (name, doc) in JSON_FIELDS.iter().zip(docs) {
            let ds = Dataset::string(doc.to_string()).with_attr("content_type", "json");
            root.insert(&format!("meta/{name}"), ds)?;
        }

        let train = root.group_mut("train")?;
        train.set_attr("optimizer_step", self.optimizer_step);
        train.set_attr("initial_lr", self.schedule.initial_lr);
        train.set_attr("final_lr", self.schedule.final_lr);
        train.set_attr("schedule_epochs", self.schedule.epochs);
        train.set_attr("steps_per_epoch", self.schedule.steps_per_epoch);
        train.set_attr("rng_state", self.rng_state.clone());

        for t in &self.tensors {
            let top = t.path.split('/').next().unwrap_or_default();
            if !TENSOR_ROOTS.contains(&top) {
                return Err(CheckpointError::InvalidTree {
                    path: t.path.clone(),
                    what: "tensor paths must start with `model/` or `optimizer/`".to_string(),
                });
            }
            root.insert(&t.path, Dataset::new(t.shape.clone(), t.data.clone())?)?;
        }
        Ok(root)
    }

    /// Interprets a validated container as a model checkpoint, checking every field's
    /// presence and type, and that the stored SHA-1 matches the op list.
    pub fn from_file(f: &CheckpointFile) -> Result<Self, CheckpointError> {
        let file = f.file().to_path_buf();
        let root = f.root();
        let a = Attrs {
            file: f.file(),
            path: "",
            attrs: root.attrs(),
        };
        let kind = a.str("kind")?;
        if kind != MODEL_KIND {
            return Err(CheckpointError::WrongType {
                file,
                path: "/@kind".to_string(),
                expected: format!("{MODEL_KIND:?} (a model checkpoint)"),
                found: format!("{kind:?}"),
            });
        }
        let schema = a.u64("schema")?;
        if schema > u64::from(MODEL_SCHEMA) {
            return Err(CheckpointError::WrongType {
                file,
                path: "/@schema".to_string(),
                expected: format!("model schema {MODEL_SCHEMA} or older; upgrade naseval"),
                found: format!("schema {schema}"),
            });
        }
        let ops = a.strs("ops")?;
        let sha1 = a.str("sha1")?;
        if sha1 != sha1_hex(&ops) {
            return Err(CheckpointError::Corrupt {
                file,
                path: "/@sha1".to_string(),
                what: format!("{sha1} is not the SHA-1 of the op list {ops:?}"),
            });
        }
        let shape = a.u64s("input_shape")?;
        let input_shape: [usize; 3] = match shape.as_slice() {
            &[h, w, c] => [h, w, c].map(|d| d as usize),
            _ => {
                return Err(a.wrong("input_shape", "u64[3]", &format!("u64[{}]", shape.len())));
            }
        };

        let mut docs = Vec::with_capacity(JSON_FIELDS.len());
        for name in JSON_FIELDS {
            let path = format!("meta/{name}");
            let ds = f.dataset(&path)?;
            let text = match ds.strings()?.as_slice() {
                [t] if ds.shape().is_empty() => *t,
                _ => {
                    return Err(CheckpointError::WrongType {
                        file,
                        path,
                        expected: "one string".to_string(),
                        found: format!("{} {:?}", ds.dtype(), ds.shape()),
                    });
                }
            };
            let doc = serde_json::from_str(text).map_err(|source| CheckpointError::Json {
                file: file.clone(),
                path: path.clone(),
                source,
            })?;
            docs.push(doc);
        }
        let [
            config,
            reference_space,
            history,
            momentum_record,
            last_metrics,
        ]: [Value; 5] = match docs.try_into() {
            Ok(d) => d,
            Err(_) => unreachable!("one document per JSON field"),
        };

        let train_entry = f.get("train").ok_or_else(|| CheckpointError::Missing {
            file: file.clone(),
            path: "train".to_string(),
            what: "group".to_string(),
        })?;
        let t = Attrs {
            file: f.file(),
            path: "train",
            attrs: train_entry.attrs(),
        };

        let mut tensors = Vec::new();
        for top in TENSOR_ROOTS {
            let Some(start) = f.get(top) else { continue };
            let mut stack = vec![start];
            while let Some(e) = stack.pop() {
                match e.as_dataset() {
                    Some(ds) => {
                        let data = ds.view::<f32>()?;
                        tensors.push(NamedArray {
                            path: ds.path(),
                            shape: ds.shape().to_vec(),
                            data: data.to_vec(),
                        });
                    }
                    None => stack.extend(e.children()),
                }
            }
        }
        tensors.sort_by(|x, y| x.path.cmp(&y.path));

        Ok(ModelCheckpoint {
            input_stem: a.strs("input_stem")?,
            output_stem: a.strs("output_stem")?,
            reference_space,
            dataset: a.str("dataset")?.to_string(),
            input_shape,
            classes: a.u64("classes")? as usize,
            config,
            tensors,
            optimizer_step: t.u64("optimizer_step")?,
            schedule: LrSchedule {
                initial_lr: t.f64("initial_lr")?,
                final_lr: t.f64("final_lr")?,
                epochs: t.u64("schedule_epochs")?,
                steps_per_epoch: t.u64("steps_per_epoch")?,
            },
            rng_state: t.u64s("rng_state")?,
            history,
            momentum_record,
            epochs_trained: a.u64("epochs_trained")?,
            last_metrics,
            written_by: a.str("naseval_version")?.to_string(),
            origin: Some(file.clone()),
            ops,
        })
    }

    /// Checks that the tensors are exactly `expected` (path and shape each, in any order),
    /// as the architecture being restored lays them out. The error names the first
    /// tensor that is missing, misshapen or unexpected.
    pub fn check_tensors(&self, expected: &[(String, Vec<usize>)]) -> Result<(), CheckpointError> {
        let file = self
            .origin
            .clone()
            .unwrap_or_else(|| PathBuf::from("<memory>"));
        let have: BTreeMap<&str, &[usize]> = self
            .tensors
            .iter()
            .map(|t| (t.path.as_str(), t.shape.as_slice()))
            .collect();
        for (path, shape) in expected {
            match have.get(path.as_str()) {
                None => {
                    return Err(CheckpointError::Missing {
                        file,
                        path: path.clone(),
                        what: format!("tensor of shape {shape:?}"),
                    });
                }
                Some(found) if *found != shape.as_slice() => {
                    return Err(CheckpointError::ShapeMismatch {
                        file,
                        path: path.clone(),
                        expected: shape.clone(),
                        found: found.to_vec(),
                    });
                }
                Some(_) => {}
            }
        }
        let wanted: std::collections::HashSet<&str> =
            expected.iter().map(|(p, _)| p.as_str()).collect();
        if let Some(extra) = self
            .tensors
            .iter()
            .find(|t| !wanted.contains(t.path.as_str()))
        {
            return Err(CheckpointError::UnexpectedTensor {
                file,
                path: extra.path.clone(),
            });
        }
        Ok(())
    }
}

/// Typed attribute lookups whose errors name the file and `path@attr`.
struct Attrs<'a> {
    file: &'a Path,
    path: &'a str,
    attrs: &'a BTreeMap<String, Attr>,
}

impl<'a> Attrs<'a> {
    fn at(&self, name: &str) -> String {
        format!(
            "{}@{name}",
            if self.path.is_empty() { "/" } else { self.path }
        )
    }

    fn wrong(&self, name: &str, expected: &str, found: &str) -> CheckpointError {
        CheckpointError::WrongType {
            file: self.file.to_path_buf(),
            path: self.at(name),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    fn get(&self, name: &str) -> Result<&'a Attr, CheckpointError> {
        self.attrs
            .get(name)
            .ok_or_else(|| CheckpointError::Missing {
                file: self.file.to_path_buf(),
                path: if self.path.is_empty() { "/" } else { self.path }.to_string(),
                what: format!("attribute `{name}`"),
            })
    }

    fn str(&self, name: &str) -> Result<&'a str, CheckpointError> {
        let v = self.get(name)?;
        v.as_str()
            .ok_or_else(|| self.wrong(name, "str", &v.type_name()))
    }

    fn u64(&self, name: &str) -> Result<u64, CheckpointError> {
        let v = self.get(name)?;
        v.as_u64()
            .ok_or_else(|| self.wrong(name, "unsigned integer", &v.type_name()))
    }

    fn f64(&self, name: &str) -> Result<f64, CheckpointError> {
        let v = self.get(name)?;
        v.as_f64()
            .ok_or_else(|| self.wrong(name, "float", &v.type_name()))
    }

    fn strs(&self, name: &str) -> Result<Vec<String>, CheckpointError> {
        match self.get(name)? {
            Attr::Array(Data::Str(v)) => Ok(v.clone()),
            v => Err(self.wrong(name, "str array", &v.type_name())),
        }
    }

    fn u64s(&self, name: &str) -> Result<Vec<u64>, CheckpointError> {
        match self.get(name)? {
            Attr::Array(Data::U64(v)) => Ok(v.clone()),
            v => Err(self.wrong(name, "u64 array", &v.type_name())),
        }
    }
}

/// The SHA-1 hex digest (40 lowercase hex digits) of the op names joined with no
/// separator, stems excluded, as HiveNAS names its weight files.
pub fn sha1_hex<S: AsRef<str>>(ops: &[S]) -> String {
    let mut h = Sha1::new();
    for op in ops {
        h.update(op.as_ref().as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `<sha1>.ckpt` (evaluation) or `<sha1>.full.ckpt` (full training).
pub fn file_name_for_sha1(sha1: &str, full: bool) -> String {
    if full {
        format!("{sha1}.full.{EXTENSION}")
    } else {
        format!("{sha1}.{EXTENSION}")
    }
}

/// The checkpoint file name of an op list; see [`file_name_for_sha1`].
pub fn checkpoint_file_name<S: AsRef<str>>(ops: &[S], full: bool) -> String {
    file_name_for_sha1(&sha1_hex(ops), full)
}

/// Whether `name` is a checkpoint file name (`<40 hex>.ckpt` or `<40 hex>.full.ckpt`).
/// Temporary files of interrupted writes never are.
pub fn is_checkpoint_file_name(name: &str) -> bool {
    let stem = name
        .strip_suffix(".full.ckpt")
        .or_else(|| name.strip_suffix(".ckpt"));
    stem.is_some_and(|s| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether `name` is a temporary file left by an interrupted
/// [`write_atomic`](super::write_atomic) (`.<name>.<pid>.<n>.tmp`), safe to delete once
/// no writer runs.
pub fn is_temp_file_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}
