//! Candidates as op lists: parsing both spellings, the SHA-1 file name, the reference space
//! (op name -> layer spec, as data), and lowering with shape inference to a [`Plan`] of
//! primitive nodes that the graph builds on the GPU.
//!
//! Everything here runs on the CPU before any buffer is allocated, so an impossible
//! candidate is refused with an [`ArchError`] that names the op, its position and the fix.
//!
//! ```
//! use naseval::arch::{Arch, ArchConfig, Plan};
//! let arch: Arch = "input|conv3x3_16|identity|output".parse().unwrap();
//! let plan = Plan::new(&arch, &ArchConfig::default(), [28, 28, 1], 10).unwrap();
//! assert_eq!(plan.trainable_params(), 5178);
//! ```

mod lower;
mod parse;
mod plan;
mod space;
pub mod summary;

use std::fmt;

/// Bytes in a GiB, for messages.
const GIB: f64 = (1u64 << 30) as f64;

pub use lower::lower;
pub use parse::{Arch, read_arch_file, sha1_hex};
pub use plan::{Init, NodeKind, ParamSpec, Plan, PlanNode};
pub use space::{Activation, ArchConfig, LayerSpec, ReferenceSpace, Stems};
pub use summary::{LayerRow, Summary};

/// Where an op sits in the network being built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// The candidate's op at this 0-based position.
    Candidate(usize),
    /// The input stem's op at this 0-based index.
    InputStem(usize),
    /// The output stem's op at this 0-based index.
    OutputStem(usize),
    /// The Dense classifier.
    Head,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Site::Candidate(p) => write!(f, "position {p}"),
            Site::InputStem(i) => write!(f, "input stem entry {i}"),
            Site::OutputStem(i) => write!(f, "output stem entry {i}"),
            Site::Head => write!(f, "the Dense head"),
        }
    }
}

/// Formats a per-sample shape the way the summary prints it: `28x28x32` or `64`.
pub fn shape_str(shape: &[usize]) -> String {
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// Why a candidate, a config entry or an arch file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArchError {
    /// The text is neither a `|`-separated op list nor a JSON list of strings.
    #[error(
        "cannot read the candidate {text:?}: {reason}. Write it as `op|op|...` (optionally \
         `input|...|output`) or as a JSON list of strings such as [\"sep3x3_32\", \"sc_2\"]"
    )]
    Syntax {
        /// The text given (cut to 200 characters).
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The candidate has no ops.
    #[error(
        "the candidate is empty (no ops between `input` and `output`). Give at least one op, \
         e.g. `conv3x3_16` or `identity`"
    )]
    Empty,
    /// An op name not in the reference space.
    #[error(
        "unknown op {op:?} at {site}{suggestion}. Known ops: {known}, and sc_N (a skip \
         connection over the next N ops). Fix the name or add an entry to the \
         [reference_space] table of the config",
        suggestion = suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)"))
            .unwrap_or_default(),
        known = known.join(", ")
    )]
    UnknownOp {
        /// The name given.
        op: String,
        /// Where it is.
        site: Site,
        /// The closest known name, if one is close.
        suggestion: Option<String>,
        /// Every known op name, sorted.
        known: Vec<String>,
    },
    /// A 'valid' convolution (or pool) window larger than its input.
    #[error(
        "op {op:?} at {site}: its {kernel}x{kernel} 'valid' window does not fit the \
         {input} input ({why}). Remove the op, move it before the layers that shrink the \
         tensor, or use a larger input"
    )]
    WindowTooLarge {
        /// The op name.
        op: String,
        /// Where it is.
        site: Site,
        /// Window size.
        kernel: usize,
        /// The input shape, e.g. `2x2x16`.
        input: String,
        /// Which layer and why, e.g. "the conv would output 0x0".
        why: String,
    },
    /// An op that needs a [H, W, C] tensor after global pooling flattened it to [C].
    #[error(
        "op {op:?} at {site} needs an HxWxC tensor, but the tensor is already flattened to \
         [{channels}] by an earlier global_avg_pool. Remove the extra global pooling (the \
         output stem already ends with one) or move the op before it"
    )]
    AfterGlobalPool {
        /// The op name.
        op: String,
        /// Where it is.
        site: Site,
        /// Channels of the flat tensor.
        channels: usize,
    },
    /// `sc_0`: a skip connection must span at least one op.
    #[error(
        "skip connection {op:?} at {site} spans no op. Use sc_N with N >= 1 (the number of \
         following ops it jumps over)"
    )]
    SkipZero {
        /// The op name.
        op: String,
        /// Where it is.
        site: Site,
    },
    /// `sc_N` with fewer than N real ops after it.
    #[error(
        "skip connection {op:?} at {site} runs past the end of the candidate: it needs \
         {needed} following ops but only {left} follow. Lower N to at most {left} or \
         remove it"
    )]
    SkipPastEnd {
        /// The op name.
        op: String,
        /// Where it is.
        site: Site,
        /// N.
        needed: usize,
        /// The real ops after it.
        left: usize,
    },
    /// The two ends of a skip connection cannot be matched by a strided 1x1 projection.
    #[error(
        "skip connection {op:?} at {site}: {why}. Shorten the span so that it does not \
         cross {culprit}, or remove it"
    )]
    SkipShape {
        /// The op name.
        op: String,
        /// Where it is.
        site: Site,
        /// The two shapes and why no projection fits.
        why: String,
        /// The ops in the span that changed the size.
        culprit: String,
    },
    /// The Dense classifier would see a [H, W, C] tensor.
    #[error(
        "the Dense head would see a {shape} tensor, but it needs a flat [C] one. End the \
         output stem with global_avg_pool (the default output stem is [global_avg_pool])"
    )]
    HeadNotFlat {
        /// The shape reaching the head.
        shape: String,
    },
    /// A layer spec whose arguments make no sense (zero filters, rate >= 1...).
    #[error("op {op:?} at {site}: {reason}. Fix its entry in the [reference_space] table")]
    BadLayer {
        /// The op name.
        op: String,
        /// Where it is.
        site: Site,
        /// What is wrong.
        reason: String,
    },
    /// Input shape or class count unusable.
    #[error("{0}")]
    BadInput(String),
    /// The largest tensor does not fit in one storage binding at this batch size.
    #[error(
        "node {node:?} needs {bytes} bytes at batch {batch}, over the device's per-binding \
         limit of {limit} bytes. {advice}"
    )]
    TooLarge {
        /// The node (or parameter) holding the largest tensor.
        node: String,
        /// Its size in bytes at this batch size.
        bytes: u128,
        /// The batch size asked for.
        batch: usize,
        /// The device limit.
        limit: u64,
        /// Largest batch that fits, or how to shrink the model.
        advice: String,
    },
    /// The whole network does not fit in the memory the device has.
    #[error(
        "the network needs about {:.2} GiB at batch {batch} (activations, gradients, \
         parameters), more than the {:.2} GiB of {device}. {advice}",
        *bytes as f64 / GIB,
        *budget as f64 / GIB
    )]
    TooLargeTotal {
        /// Estimated bytes at this batch size.
        bytes: u128,
        /// The batch size asked for.
        batch: usize,
        /// Bytes available.
        budget: u64,
        /// What they are, e.g. `system memory free for the CPU adapter "llvmpipe"`.
        device: String,
        /// Largest batch that fits, or how to shrink the model.
        advice: String,
    },
    /// A reference-space entry or stem list in a config is malformed.
    #[error("config: {0}")]
    Config(String),
    /// An arch or config file could not be read.
    #[error("cannot read {path}: {source}. Check the path and its permissions")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A line of an arch file is not a candidate.
    #[error("{path}:{line}: {source}")]
    ArchFileLine {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The parse error.
        #[source]
        source: Box<ArchError>,
    },
}
