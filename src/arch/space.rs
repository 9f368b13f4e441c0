//! The reference space as data: op name -> [`LayerSpec`], HiveNAS's default table built in,
//! entries added or overridden from a TOML config, and the stems around every candidate.
//!
//! Config format (every key of an entry but `type` has the default shown in [`LayerSpec`]):
//!
//! ```toml
//! [stems]
//! input = ["conv3x3_32bnrelu"]
//! output = ["global_avg_pool"]
//!
//! [reference_space.conv7x7_24]
//! type = "Conv2D"
//! filters = 24
//! kernel_size = 7
//! padding = "same"
//! activation = "relu"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ArchError;
use crate::ops::Padding;

/// An activation applied after a layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// No activation.
    #[default]
    Linear,
    /// max(x, 0).
    Relu,
}

fn one() -> usize {
    1
}
fn three() -> usize {
    3
}
fn valid() -> Padding {
    Padding::Valid
}
fn keras_bn_momentum() -> f32 {
    0.99
}
fn keras_bn_epsilon() -> f32 {
    1e-3
}
fn cell_momentum() -> f32 {
    0.9
}
fn cell_epsilon() -> f32 {
    1e-5
}
fn cell_l2() -> f32 {
    1e-4
}

/// One reference-space entry: a Keras layer type (or a HiveNAS cell) and its arguments.
/// Kernels and pools are square; sizes are single integers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum LayerSpec {
    /// Convolution with bias. Defaults: strides 1, padding valid, activation linear, no L2.
    Conv2D {
        /// Output channels.
        filters: usize,
        /// Window size.
        kernel_size: usize,
        /// Stride.
        #[serde(default = "one")]
        strides: usize,
        /// Padding.
        #[serde(default = "valid")]
        padding: Padding,
        /// Activation after the bias.
        #[serde(default)]
        activation: Activation,
        /// L2 coefficient on the kernel.
        #[serde(default)]
        l2: Option<f32>,
    },
    /// Depthwise (multiplier 1, no bias, given stride) then pointwise 1x1 with bias.
    /// Defaults: strides 1, padding valid, activation linear.
    SeparableConv2D {
        /// Output channels of the pointwise step.
        filters: usize,
        /// Depthwise window size.
        kernel_size: usize,
        /// Depthwise stride.
        #[serde(default = "one")]
        strides: usize,
        /// Depthwise padding.
        #[serde(default = "valid")]
        padding: Padding,
        /// Activation after the bias.
        #[serde(default)]
        activation: Activation,
    },
    /// Max pooling. Defaults: strides = pool_size, padding valid (Keras's).
    MaxPooling2D {
        /// Window size.
        pool_size: usize,
        /// Stride; the window size when absent.
        #[serde(default)]
        strides: Option<usize>,
        /// Padding.
        #[serde(default = "valid")]
        padding: Padding,
    },
    /// Average pooling (a 'same' window divides by its real cells). Defaults as MaxPooling2D.
    AveragePooling2D {
        /// Window size.
        pool_size: usize,
        /// Stride; the window size when absent.
        #[serde(default)]
        strides: Option<usize>,
        /// Padding.
        #[serde(default = "valid")]
        padding: Padding,
    },
    /// Mean over H and W: [H, W, C] -> [C].
    GlobalAveragePooling2D {},
    /// Batch normalization. Defaults: Keras's momentum 0.99, epsilon 1e-3.
    BatchNormalization {
        /// Moving-average momentum.
        #[serde(default = "keras_bn_momentum")]
        momentum: f32,
        /// Added to the variance.
        #[serde(default = "keras_bn_epsilon")]
        epsilon: f32,
    },
    /// Inverted dropout.
    Dropout {
        /// Fraction of units dropped in training, in [0, 1).
        rate: f32,
    },
    /// An activation on its own; `linear` is the identity and produces no node.
    Activation {
        /// The function.
        activation: Activation,
    },
    /// HiveNAS cell: Conv2D (same padding, bias, L2 on the kernel), BatchNorm, ReLU.
    /// Defaults: kernel_size 3, l2 1e-4, momentum 0.9, epsilon 1e-5. `strides` is accepted
    /// and ignored, as HiveNAS ignores it (always 1).
    ConvBnReLU {
        /// Output channels.
        filters: usize,
        /// Window size.
        #[serde(default = "three")]
        kernel_size: usize,
        /// Ignored (HiveNAS always uses 1).
        #[serde(default = "one")]
        strides: usize,
        /// L2 coefficient on the conv kernel.
        #[serde(default = "cell_l2")]
        l2: f32,
        /// Batch-norm momentum.
        #[serde(default = "cell_momentum")]
        momentum: f32,
        /// Batch-norm epsilon.
        #[serde(default = "cell_epsilon")]
        epsilon: f32,
    },
    /// HiveNAS cell: ConvBnReLU then 2x2 average pooling, stride 2, same padding.
    ConvBnReLUAvgPool {
        /// Output channels.
        filters: usize,
        /// Window size.
        #[serde(default = "three")]
        kernel_size: usize,
        /// Ignored (HiveNAS always uses 1).
        #[serde(default = "one")]
        strides: usize,
        /// L2 coefficient on the conv kernel.
        #[serde(default = "cell_l2")]
        l2: f32,
        /// Batch-norm momentum.
        #[serde(default = "cell_momentum")]
        momentum: f32,
        /// Batch-norm epsilon.
        #[serde(default = "cell_epsilon")]
        epsilon: f32,
    },
    /// HiveNAS cell: 1x1 conv to `reduction_filters` (bias, L2), then `blocks` ConvBnReLU
    /// (`kernel_size`, `filters`), then the channel concatenation of the cell's input and
    /// the blocks' output (C_in + filters channels).
    ResidualConvBnReLU {
        /// ConvBnReLU blocks after the reduction.
        blocks: usize,
        /// Output channels of the 1x1 reduction.
        reduction_filters: usize,
        /// Output channels of each block.
        filters: usize,
        /// Block window size.
        #[serde(default = "three")]
        kernel_size: usize,
        /// L2 coefficient on every conv kernel of the cell.
        #[serde(default = "cell_l2")]
        l2: f32,
        /// Batch-norm momentum.
        #[serde(default = "cell_momentum")]
        momentum: f32,
        /// Batch-norm epsilon.
        #[serde(default = "cell_epsilon")]
        epsilon: f32,
    },
}

/// Upper bounds that keep every count and shape product far from overflow.
const MAX_CHANNELS: usize = 1 << 16;
const MAX_WINDOW: usize = 255;

impl LayerSpec {
    /// The Keras type name, as written after `type =`.
    pub fn type_name(&self) -> &'static str {
        match self {
            LayerSpec::Conv2D { .. } => "Conv2D",
            LayerSpec::SeparableConv2D { .. } => "SeparableConv2D",
            LayerSpec::MaxPooling2D { .. } => "MaxPooling2D",
            LayerSpec::AveragePooling2D { .. } => "AveragePooling2D",
            LayerSpec::GlobalAveragePooling2D {} => "GlobalAveragePooling2D",
            LayerSpec::BatchNormalization { .. } => "BatchNormalization",
            LayerSpec::Dropout { .. } => "Dropout",
            LayerSpec::Activation { .. } => "Activation",
            LayerSpec::ConvBnReLU { .. } => "ConvBnReLU",
            LayerSpec::ConvBnReLUAvgPool { .. } => "ConvBnReLUAvgPool",
            LayerSpec::ResidualConvBnReLU { .. } => "ResidualConvBnReLU",
        }
    }

    /// Checks the arguments' ranges; the error says which key and why.
    pub fn validate(&self) -> Result<(), String> {
        let channels = |key: &str, v: usize| {
            if (1..=MAX_CHANNELS).contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "`{key}` = {v} must be between 1 and {MAX_CHANNELS}"
                ))
            }
        };
        let window = |key: &str, v: usize| {
            if (1..=MAX_WINDOW).contains(&v) {
                Ok(())
            } else {
                Err(format!("`{key}` = {v} must be between 1 and {MAX_WINDOW}"))
            }
        };
        let bn = |momentum: f32, epsilon: f32| {
            if !(0.0..=1.0).contains(&momentum) {
                Err(format!("`momentum` = {momentum} must be in [0, 1]"))
            } else if !(epsilon > 0.0 && epsilon.is_finite()) {
                Err(format!("`epsilon` = {epsilon} must be positive"))
            } else {
                Ok(())
            }
        };
        let l2_ok = |l2: f32| {
            if l2 >= 0.0 && l2.is_finite() {
                Ok(())
            } else {
                Err(format!("`l2` = {l2} must be a finite number >= 0"))
            }
        };
        match *self {
            LayerSpec::Conv2D {
                filters,
                kernel_size,
                strides,
                l2,
                ..
            } => {
                channels("filters", filters)?;
                window("kernel_size", kernel_size)?;
                window("strides", strides)?;
                l2.map_or(Ok(()), l2_ok)
            }
            LayerSpec::SeparableConv2D {
                filters,
                kernel_size,
                strides,
                ..
            } => {
                channels("filters", filters)?;
                window("kernel_size", kernel_size)?;
                window("strides", strides)
            }
            LayerSpec::MaxPooling2D {
                pool_size, strides, ..
            }
            | LayerSpec::AveragePooling2D {
                pool_size, strides, ..
            } => {
                window("pool_size", pool_size)?;
                strides.map_or(Ok(()), |s| window("strides", s))
            }
            LayerSpec::GlobalAveragePooling2D {} | LayerSpec::Activation { .. } => Ok(()),
            LayerSpec::BatchNormalization { momentum, epsilon } => bn(momentum, epsilon),
            LayerSpec::Dropout { rate } => {
                if (0.0..1.0).contains(&rate) {
                    Ok(())
                } else {
                    Err(format!("`rate` = {rate} must be in [0, 1)"))
                }
            }
            LayerSpec::ConvBnReLU {
                filters,
                kernel_size,
                strides,
                l2,
                momentum,
                epsilon,
            }
            | LayerSpec::ConvBnReLUAvgPool {
                filters,
                kernel_size,
                strides,
                l2,
                momentum,
                epsilon,
            } => {
                channels("filters", filters)?;
                window("kernel_size", kernel_size)?;
                window("strides", strides)?;
                l2_ok(l2)?;
                bn(momentum, epsilon)
            }
            LayerSpec::ResidualConvBnReLU {
                blocks,
                reduction_filters,
                filters,
                kernel_size,
                l2,
                momentum,
                epsilon,
            } => {
                if !(1..=64).contains(&blocks) {
                    return Err(format!("`blocks` = {blocks} must be between 1 and 64"));
                }
                channels("reduction_filters", reduction_filters)?;
                channels("filters", filters)?;
                window("kernel_size", kernel_size)?;
                l2_ok(l2)?;
                bn(momentum, epsilon)
            }
        }
    }
}

/// Whether `name` is a skip connection `sc_N` (N any decimal number); returns N, with
/// numbers too large for `usize` read as `usize::MAX` (they run past the end anyway).
pub(crate) fn skip_span(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("sc_")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().unwrap_or(usize::MAX))
}

/// Why a user-chosen op name cannot be used, if it cannot.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an op name is empty".into());
    }
    if name == "input" || name == "output" {
        return Err(format!(
            "`{name}` is reserved for the ends of HiveNAS's spelling"
        ));
    }
    if skip_span(name).is_some() {
        return Err(format!("`{name}` is reserved for skip connections (sc_N)"));
    }
    if name.chars().any(|c| !super::parse::allowed_in_name(c)) {
        return Err(format!(
            "op name {name:?} may not hold `|`, `/`, `\\`, quotes, brackets, braces, commas \
             or whitespace"
        ));
    }
    Ok(())
}

/// Op name -> layer spec. Deserializing gives the built-in table with the given entries
/// added or replacing built-in ones; serializing writes the whole table.
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceSpace {
    entries: BTreeMap<String, LayerSpec>,
}

impl Default for ReferenceSpace {
    fn default() -> Self {
        Self::builtin()
    }
}

impl ReferenceSpace {
    /// HiveNAS's default table (HIVENAS.md section 2), every name of every family.
    pub fn builtin() -> Self {
        let mut e = BTreeMap::new();
        let mut put = |name: String, spec: LayerSpec| {
            e.insert(name, spec);
        };
        for k in [3, 5] {
            for f in [8, 16] {
                let spec = LayerSpec::Conv2D {
                    filters: f,
                    kernel_size: k,
                    strides: 1,
                    padding: Padding::Valid,
                    activation: Activation::Relu,
                    l2: None,
                };
                put(format!("conv{k}x{k}_{f}"), spec);
            }
            for f in [32, 64, 128] {
                let spec = LayerSpec::SeparableConv2D {
                    filters: f,
                    kernel_size: k,
                    strides: 1,
                    padding: Padding::Same,
                    activation: Activation::Relu,
                };
                put(format!("sep{k}x{k}_{f}"), spec);
            }
        }
        let pool = (3, Some(1), Padding::Same);
        put(
            "max_pool3x3".into(),
            LayerSpec::MaxPooling2D {
                pool_size: pool.0,
                strides: pool.1,
                padding: pool.2,
            },
        );
        put(
            "avg_pool3x3".into(),
            LayerSpec::AveragePooling2D {
                pool_size: pool.0,
                strides: pool.1,
                padding: pool.2,
            },
        );
        put(
            "global_avg_pool".into(),
            LayerSpec::GlobalAveragePooling2D {},
        );
        put(
            "batch_norm".into(),
            LayerSpec::BatchNormalization {
                momentum: keras_bn_momentum(),
                epsilon: keras_bn_epsilon(),
            },
        );
        put("dropout".into(), LayerSpec::Dropout { rate: 0.15 });
        put(
            "identity".into(),
            LayerSpec::Activation {
                activation: Activation::Linear,
            },
        );
        let cell = |filters| LayerSpec::ConvBnReLU {
            filters,
            kernel_size: 3,
            strides: 1,
            l2: cell_l2(),
            momentum: cell_momentum(),
            epsilon: cell_epsilon(),
        };
        for f in [16, 32] {
            put(format!("conv3x3_{f}bnrelu"), cell(f));
        }
        for f in [64, 128, 256] {
            let spec = LayerSpec::ConvBnReLUAvgPool {
                filters: f,
                kernel_size: 3,
                strides: 1,
                l2: cell_l2(),
                momentum: cell_momentum(),
                epsilon: cell_epsilon(),
            };
            put(format!("conv3x3_{f}bnreluavgpool"), spec);
        }
        for b in [1, 2] {
            for r in [32, 64, 128] {
                for f in [64, 128, 256] {
                    let spec = LayerSpec::ResidualConvBnReLU {
                        blocks: b,
                        reduction_filters: r,
                        filters: f,
                        kernel_size: 3,
                        l2: cell_l2(),
                        momentum: cell_momentum(),
                        epsilon: cell_epsilon(),
                    };
                    put(format!("resx{b}reg_{r}_conv3x3_{f}bnrelu"), spec);
                }
            }
        }
        Self { entries: e }
    }

    /// The spec of an op name.
    pub fn get(&self, name: &str) -> Option<&LayerSpec> {
        self.entries.get(name)
    }

    /// Every op name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Adds or replaces an entry after checking its name and arguments.
    pub fn insert(&mut self, name: &str, spec: LayerSpec) -> Result<(), ArchError> {
        check_name(name).map_err(ArchError::Config)?;
        spec.validate().map_err(|reason| {
            ArchError::Config(format!(
                "[reference_space.{name}] ({}): {reason}",
                spec.type_name()
            ))
        })?;
        self.entries.insert(name.to_string(), spec);
        Ok(())
    }

    /// The known name closest to `name` (edit distance), when it is close enough to be a
    /// plausible typo.
    pub fn closest(&self, name: &str) -> Option<&str> {
        let (best, d) = self
            .names()
            .map(|k| (k, edit_distance(name, k)))
            .min_by_key(|&(k, d)| (d, k))?;
        (d <= (name.chars().count() / 3).max(2)).then_some(best)
    }
}

impl Serialize for ReferenceSpace {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.entries.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ReferenceSpace {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = ReferenceSpace;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of op name -> layer spec with a `type` key")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut space = ReferenceSpace::builtin();
                while let Some(name) = map.next_key::<String>()? {
                    // Re-wrapping each entry's error puts its name in front of serde's
                    // message, which alone names only the key.
                    let spec = map
                        .next_value::<LayerSpec>()
                        .map_err(|e| de::Error::custom(format!("[reference_space.{name}]: {e}")))?;
                    space.insert(&name, spec).map_err(|e| match e {
                        ArchError::Config(m) => de::Error::custom(m),
                        other => de::Error::custom(other),
                    })?;
                }
                Ok(space)
            }
        }
        d.deserialize_map(Entries)
    }
}

/// Edit distance with adjacent transpositions counted as one edit (optimal string
/// alignment), so that `sep3x3_23` is closest to `sep3x3_32`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * w + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (d[(i - 1) * w + j] + 1)
                    .min(d[i * w + j - 1] + 1)
                    .min(d[(i - 1) * w + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[(i - 2) * w + j - 2] + 1);
                }
                best
            };
        }
    }
    d[a.len() * w + b.len()]
}

fn default_input_stem() -> Vec<String> {
    vec!["conv3x3_32bnrelu".to_string()]
}
fn default_output_stem() -> Vec<String> {
    vec!["global_avg_pool".to_string()]
}

/// The ops around every candidate: input -> `input` stem -> candidate -> `output` stem ->
/// Dense(classes). Stem entries are reference-space names (no `sc_N`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Stems {
    /// Default `["conv3x3_32bnrelu"]`.
    pub input: Vec<String>,
    /// Default `["global_avg_pool"]`.
    pub output: Vec<String>,
}

impl Default for Stems {
    fn default() -> Self {
        Self {
            input: default_input_stem(),
            output: default_output_stem(),
        }
    }
}

/// What lowering needs besides the candidate: the reference space and the stems. Read from
/// the `[reference_space.*]` and `[stems]` tables of a TOML config; other top-level keys
/// are left to the rest of the config.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArchConfig {
    /// Built-in table plus the config's entries.
    #[serde(default)]
    pub reference_space: ReferenceSpace,
    /// Stems.
    #[serde(default)]
    pub stems: Stems,
}

impl ArchConfig {
    /// Reads the `reference_space` and `stems` tables of a TOML document.
    pub fn from_toml_str(text: &str) -> Result<Self, ArchError> {
        toml::from_str(text).map_err(|e| {
            ArchError::Config(format!(
                "{}\nFix the table named above: each [reference_space.NAME] entry needs \
                 `type` (a Keras layer type or HiveNAS cell) and that type's keys only",
                e.to_string().trim_end()
            ))
        })
    }

    /// Reads the `reference_space` and `stems` tables of a TOML file.
    pub fn from_toml_file(path: &Path) -> Result<Self, ArchError> {
        let text = std::fs::read_to_string(path).map_err(|source| ArchError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text).map_err(|e| match e {
            ArchError::Config(m) => ArchError::Config(format!("{}: {m}", path.display())),
            other => other,
        })
    }
}
