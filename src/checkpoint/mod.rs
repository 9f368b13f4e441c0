//! The checkpoint file format: a small self-describing hierarchical container (groups,
//! typed n-dimensional datasets, attributes) with checksums everywhere, atomic writes and
//! a reader that validates every field before it trusts it. docs/checkpoint.md is the spec.
//!
//! Layers, bottom up: [`Group`]/[`Dataset`]/[`Attr`] (an owned tree to write),
//! [`write_atomic`]/[`to_bytes`] (serialize it), [`CheckpointFile`] (a validated file whose
//! datasets can be viewed in place), and [`ModelCheckpoint`] (what a trained candidate
//! needs to resume: op list, settings, tensors, optimizer and schedule state, history).
//!
//! This module depends on no other part of naseval, so the fuzz target compiles it alone.

mod layout;
mod model;
mod read;
mod tree;
mod write;

use std::path::PathBuf;

pub use layout::{ALIGN, FORMAT_VERSION, MAGIC, MAX_RANK};
pub use model::{
    EXTENSION, LrSchedule, MODEL_KIND, MODEL_SCHEMA, ModelCheckpoint, NamedArray,
    checkpoint_file_name, file_name_for_sha1, is_checkpoint_file_name, is_temp_file_name, sha1_hex,
};
pub use read::{CheckpointFile, DatasetRef, EntryKind, EntryRef};
pub use tree::{Dataset, Group, Node};
pub use write::{to_bytes, write_atomic};

const _: () = assert!(
    cfg!(target_endian = "little"),
    "checkpoints are viewed in place as little-endian arrays; big-endian hosts are unsupported"
);

/// Everything that can go wrong writing, reading or interpreting a checkpoint. Each
/// variant names the file; those about one node name its path inside the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The operating system refused an operation on the file or its folder.
    #[error("{}: cannot {action}: {source}", file.display())]
    Io {
        /// The file (or folder) involved.
        file: PathBuf,
        /// What was being done, e.g. "open for reading".
        action: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The first bytes are not the checkpoint magic number.
    #[error(
        "{}: not a naseval checkpoint (its first bytes are {found:02x?}); \
         pass a .ckpt file written by naseval",
        file.display()
    )]
    NotACheckpoint {
        /// The file.
        file: PathBuf,
        /// Its first (up to 8) bytes.
        found: Vec<u8>,
    },
    /// The file was written by a newer naseval with a format this one cannot read.
    #[error(
        "{}: checkpoint format version {found} is newer than the newest this naseval \
         ({}) reads, version {supported}; upgrade naseval to read it",
        file.display(),
        env!("CARGO_PKG_VERSION")
    )]
    NewerVersion {
        /// The file.
        file: PathBuf,
        /// The version the file declares.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The file is shorter than its header says (an interrupted copy, a full disk).
    #[error(
        "{}: truncated: {expected} bytes expected, {found} present; the file was cut short, \
         use another copy or retrain",
        file.display()
    )]
    Truncated {
        /// The file.
        file: PathBuf,
        /// The length the header declares (or the minimum a checkpoint has).
        expected: u64,
        /// The length on disk.
        found: u64,
    },
    /// A stored CRC-32 does not match the bytes it covers.
    #[error(
        "{}: {what}: checksum mismatch (stored {stored:08x}, computed {computed:08x}); \
         the file is corrupt, use another copy or retrain",
        file.display()
    )]
    Checksum {
        /// The file.
        file: PathBuf,
        /// What the checksum covers: "header", "index" or "dataset `path`".
        what: String,
        /// The checksum in the file.
        stored: u32,
        /// The checksum of the bytes found.
        computed: u32,
    },
    /// A structural field is invalid (an offset outside the file, an unknown dtype, a
    /// shape that does not match the data length...).
    #[error("{}: `{path}`: {what}; the file is corrupt", file.display())]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// The node the field belongs to ("/" for the header and the root).
        path: String,
        /// What was wrong.
        what: String,
    },
    /// A node the caller needs is absent.
    #[error("{}: `{path}`: missing {what}", file.display())]
    Missing {
        /// The file.
        file: PathBuf,
        /// The node path.
        path: String,
        /// What was looked for, e.g. "dataset" or "attribute `epochs_trained`".
        what: String,
    },
    /// A node or attribute has another type than the caller needs.
    #[error("{}: `{path}`: expected {expected}, found {found}", file.display())]
    WrongType {
        /// The file.
        file: PathBuf,
        /// The node path (with `@attr` for an attribute).
        path: String,
        /// The type needed.
        expected: String,
        /// The type found.
        found: String,
    },
    /// A tensor's shape differs from the one the architecture being restored needs.
    #[error(
        "{}: `{path}`: shape {found:?} does not fit the architecture, which needs \
         {expected:?}; the checkpoint belongs to another architecture or settings",
        file.display()
    )]
    ShapeMismatch {
        /// The file.
        file: PathBuf,
        /// The tensor path.
        path: String,
        /// The shape the architecture needs.
        expected: Vec<usize>,
        /// The shape in the checkpoint.
        found: Vec<usize>,
    },
    /// A tensor is in the checkpoint but not in the architecture being restored.
    #[error(
        "{}: `{path}`: tensor not in the architecture being restored; the checkpoint \
         belongs to another architecture",
        file.display()
    )]
    UnexpectedTensor {
        /// The file.
        file: PathBuf,
        /// The tensor path.
        path: String,
    },
    /// A JSON document stored in the checkpoint does not parse.
    #[error("{}: `{path}`: invalid JSON: {source}", file.display())]
    Json {
        /// The file.
        file: PathBuf,
        /// The dataset holding the document.
        path: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The tree given to the writer cannot be stored (a bad name, a data length that does
    /// not match the shape...).
    #[error("cannot write `{path}`: {what}")]
    InvalidTree {
        /// The node path.
        path: String,
        /// What was wrong.
        what: String,
    },
}

/// The element type of a dataset or attribute. The numbers are the on-disk codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Dtype {
    /// Unsigned byte.
    U8 = 1,
    /// 32-bit signed integer.
    I32 = 2,
    /// 32-bit unsigned integer.
    U32 = 3,
    /// 64-bit signed integer.
    I64 = 4,
    /// 64-bit unsigned integer.
    U64 = 5,
    /// IEEE-754 single precision.
    F32 = 6,
    /// IEEE-754 double precision.
    F64 = 7,
    /// UTF-8 string of any length.
    Str = 8,
}

impl Dtype {
    /// Every dtype, in code order.
    pub const ALL: [Dtype; 8] = [
        Dtype::U8,
        Dtype::I32,
        Dtype::U32,
        Dtype::I64,
        Dtype::U64,
        Dtype::F32,
        Dtype::F64,
        Dtype::Str,
    ];

    /// The dtype with this on-disk code, if any.
    pub fn from_code(code: u8) -> Option<Dtype> {
        Dtype::ALL.into_iter().find(|d| *d as u8 == code)
    }

    /// Bytes per element; `None` for strings, whose elements vary in length.
    pub fn size(self) -> Option<usize> {
        match self {
            Dtype::U8 => Some(1),
            Dtype::I32 | Dtype::U32 | Dtype::F32 => Some(4),
            Dtype::I64 | Dtype::U64 | Dtype::F64 => Some(8),
            Dtype::Str => None,
        }
    }

    /// The short name used by `naseval inspect` and in errors ("f32", "str"...).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::U8 => "u8",
            Dtype::I32 => "i32",
            Dtype::U32 => "u32",
            Dtype::I64 => "i64",
            Dtype::U64 => "u64",
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
            Dtype::Str => "str",
        }
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A flat array of one dtype: the payload of a dataset or an array attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// Bytes.
    U8(Vec<u8>),
    /// 32-bit signed integers.
    I32(Vec<i32>),
    /// 32-bit unsigned integers.
    U32(Vec<u32>),
    /// 64-bit signed integers.
    I64(Vec<i64>),
    /// 64-bit unsigned integers.
    U64(Vec<u64>),
    /// Single-precision floats.
    F32(Vec<f32>),
    /// Double-precision floats.
    F64(Vec<f64>),
    /// Strings.
    Str(Vec<String>),
}

impl Data {
    /// Its dtype.
    pub fn dtype(&self) -> Dtype {
        match self {
            Data::U8(_) => Dtype::U8,
            Data::I32(_) => Dtype::I32,
            Data::U32(_) => Dtype::U32,
            Data::I64(_) => Dtype::I64,
            Data::U64(_) => Dtype::U64,
            Data::F32(_) => Dtype::F32,
            Data::F64(_) => Dtype::F64,
            Data::Str(_) => Dtype::Str,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Data::U8(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::U32(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::U64(v) => v.len(),
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::Str(v) => v.len(),
        }
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An attribute value: a scalar, a string, or a small 1-D array.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// Unsigned byte.
    U8(u8),
    /// 32-bit signed integer.
    I32(i32),
    /// 32-bit unsigned integer.
    U32(u32),
    /// 64-bit signed integer.
    I64(i64),
    /// 64-bit unsigned integer.
    U64(u64),
    /// Single-precision float.
    F32(f32),
    /// Double-precision float.
    F64(f64),
    /// A string.
    Str(String),
    /// A 1-D array of any dtype (strings included).
    Array(Data),
}

impl Attr {
    /// Its dtype (the element dtype for arrays).
    pub fn dtype(&self) -> Dtype {
        match self {
            Attr::U8(_) => Dtype::U8,
            Attr::I32(_) => Dtype::I32,
            Attr::U32(_) => Dtype::U32,
            Attr::I64(_) => Dtype::I64,
            Attr::U64(_) => Dtype::U64,
            Attr::F32(_) => Dtype::F32,
            Attr::F64(_) => Dtype::F64,
            Attr::Str(_) => Dtype::Str,
            Attr::Array(d) => d.dtype(),
        }
    }

    /// A short description of its type for errors: "u64", "str", "f32[3]".
    pub fn type_name(&self) -> String {
        match self {
            Attr::Array(d) => format!("{}[{}]", d.dtype(), d.len()),
            other => other.dtype().name().to_string(),
        }
    }

    /// The value as a u64, when it is a non-negative integer scalar.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Attr::U8(v) => Some(v.into()),
            Attr::U32(v) => Some(v.into()),
            Attr::U64(v) => Some(v),
            Attr::I32(v) => u64::try_from(v).ok(),
            Attr::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as an f64, when it is a float scalar.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Attr::F32(v) => Some(v.into()),
            Attr::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a string slice, when it is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Attr::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl std::fmt::Display for Attr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attr::U8(v) => write!(f, "{v}"),
            Attr::I32(v) => write!(f, "{v}"),
            Attr::U32(v) => write!(f, "{v}"),
            Attr::I64(v) => write!(f, "{v}"),
            Attr::U64(v) => write!(f, "{v}"),
            Attr::F32(v) => write!(f, "{v:?}"),
            Attr::F64(v) => write!(f, "{v:?}"),
            Attr::Str(s) => write!(f, "{s:?}"),
            Attr::Array(d) => match d {
                Data::U8(v) => write!(f, "{v:?}"),
                Data::I32(v) => write!(f, "{v:?}"),
                Data::U32(v) => write!(f, "{v:?}"),
                Data::I64(v) => write!(f, "{v:?}"),
                Data::U64(v) => write!(f, "{v:?}"),
                Data::F32(v) => write!(f, "{v:?}"),
                Data::F64(v) => write!(f, "{v:?}"),
                Data::Str(v) => write!(f, "{v:?}"),
            },
        }
    }
}

macro_rules! attr_from {
    ($($t:ty => $scalar:ident),*) => {$(
        impl From<$t> for Attr {
            fn from(v: $t) -> Self {
                Attr::$scalar(v)
            }
        }
        impl From<Vec<$t>> for Attr {
            fn from(v: Vec<$t>) -> Self {
                Attr::Array(Data::$scalar(v))
            }
        }
        impl From<Vec<$t>> for Data {
            fn from(v: Vec<$t>) -> Self {
                Data::$scalar(v)
            }
        }
    )*};
}

attr_from!(u8 => U8, i32 => I32, u32 => U32, i64 => I64, u64 => U64, f32 => F32, f64 => F64,
    String => Str);

impl From<&str> for Attr {
    fn from(v: &str) -> Self {
        Attr::Str(v.to_string())
    }
}

/// A plain-old-data element type that datasets can be viewed as in place.
pub trait Element: bytemuck::Pod + sealed::Sealed {
    /// The matching dtype.
    const DTYPE: Dtype;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! element {
    ($($t:ty => $d:ident),*) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: Dtype = Dtype::$d;
        }
    )*};
}

element!(u8 => U8, i32 => I32, u32 => U32, i64 => I64, u64 => U64, f32 => F32, f64 => F64);
