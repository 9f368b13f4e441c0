//! Serializing a [`Group`] tree: the byte image, and the atomic write to disk (temporary
//! file in the target's folder, fsync, rename, fsync of the folder).

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::layout::{self, HEADER_LEN, Header};
use super::read::MAX_DEPTH;
use super::tree::{Group, Node, join};
use super::{Attr, CheckpointError, Data};

/// The byte image of a checkpoint holding `root`.
pub fn to_bytes(root: &Group) -> Result<Vec<u8>, CheckpointError> {
    let plan = Plan::new(root)?;
    let mut out = Vec::with_capacity(plan.header.file_len as usize);
    plan.write_to(&mut out)
        .map_err(|source| CheckpointError::Io {
            file: PathBuf::from("<memory>"),
            action: "serialize",
            source,
        })?;
    Ok(out)
}

/// Writes a checkpoint holding `root` to `path` atomically: a crash or kill at any moment
/// leaves either the previous file or the complete new one at `path`, never a mix. The
/// temporary file (named `.<name>.<pid>.<n>.tmp`, see
/// [`is_temp_file_name`](super::is_temp_file_name)) is removed on error.
pub fn write_atomic(path: &Path, root: &Group) -> Result<(), CheckpointError> {
    let plan = Plan::new(root)?;
    let io = |action: &'static str, file: &Path| {
        let file = file.to_path_buf();
        move |source| CheckpointError::Io {
            file,
            action,
            source,
        }
    };
    let name = path
        .file_name()
        .ok_or_else(|| CheckpointError::InvalidTree {
            path: path.display().to_string(),
            what: "the target path has no file name".to_string(),
        })?
        .to_string_lossy()
        .into_owned();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };

    // The temporary file must live in the target's folder: rename is only atomic within
    // one file system.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io("create the temporary file", &tmp))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        plan.write_to(&mut w).map_err(io("write", &tmp))?;
        let file = w
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("sync", &tmp))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(io("rename the temporary file over", path))
    })();
    if result.is_err() {
        // Best effort: the error being returned matters more than a leftover temp file.
        let _ = std::fs::remove_file(&tmp);
        return result;
    }

    // Makes the rename itself durable. Some file systems refuse to sync a directory; the
    // new file is complete either way, so that is only worth a warning.
    #[cfg(unix)]
    if let Err(e) = std::fs::File::open(&dir).and_then(|d| d.sync_all()) {
        log::warn!(
            "{}: cannot sync the folder after a rename: {e}",
            dir.display()
        );
    }
    Ok(())
}

/// Where every byte goes: computed before anything is written, so the header (which
/// holds the index checksum) can be written first and the file in one pass.
struct Plan<'a> {
    header: Header,
    /// Each dataset's payload and its offset, in file order.
    payloads: Vec<(u64, Cow<'a, [u8]>)>,
    index: Vec<u8>,
}

impl<'a> Plan<'a> {
    fn new(root: &'a Group) -> Result<Self, CheckpointError> {
        let mut index = Vec::new();
        let mut payloads = Vec::new();
        let mut node_count: u32 = 0;
        let mut end = HEADER_LEN as u64;
        index.extend_from_slice(&0u32.to_le_bytes());

        // Pre-order walk with an explicit stack: (parent index, name, path, node).
        let mut stack: Vec<(u32, &str, String, NodeRef<'a>)> =
            vec![(layout::NO_PARENT, "", String::new(), NodeRef::Group(root))];
        while let Some((parent, name, path, node)) = stack.pop() {
            let me = node_count;
            if path.split('/').count() > MAX_DEPTH {
                return Err(invalid(
                    &path,
                    format!("nested deeper than {MAX_DEPTH} levels"),
                ));
            }
            node_count = node_count
                .checked_add(1)
                .filter(|&c| c < layout::NO_PARENT)
                .ok_or_else(|| invalid(&path, "too many nodes".to_string()))?;
            index.extend_from_slice(&parent.to_le_bytes());
            let (kind, attrs) = match node {
                NodeRef::Group(g) => (layout::KIND_GROUP, &g.attrs),
                NodeRef::Dataset(d) => (layout::KIND_DATASET, &d.attrs),
            };
            index.push(kind);
            put_str(&mut index, name);
            index.extend_from_slice(&len_u32(attrs.len(), &path)?.to_le_bytes());
            for (attr_name, value) in attrs {
                layout::check_name(attr_name)
                    .map_err(|what| invalid(&format!("{path}@{attr_name}"), what))?;
                put_str(&mut index, attr_name);
                put_attr(&mut index, value, &path)?;
            }
            match node {
                NodeRef::Group(g) => {
                    // Reversed so that the stack pops children in name order.
                    for (child_name, child) in g.children.iter().rev() {
                        let child_path = join(&path, child_name);
                        layout::check_name(child_name).map_err(|w| invalid(&child_path, w))?;
                        let child = match child {
                            Node::Group(g) => NodeRef::Group(g),
                            Node::Dataset(d) => NodeRef::Dataset(d),
                        };
                        stack.push((me, child_name, child_path, child));
                    }
                }
                NodeRef::Dataset(d) => {
                    d.check(&path)?;
                    let bytes = payload(&d.data);
                    let offset = layout::align_up(end)
                        .ok_or_else(|| invalid(&path, "file too large".to_string()))?;
                    end = offset + bytes.len() as u64;
                    index.push(d.data.dtype() as u8);
                    index.push(d.shape.len() as u8);
                    for &dim in &d.shape {
                        index.extend_from_slice(&(dim as u64).to_le_bytes());
                    }
                    index.extend_from_slice(&offset.to_le_bytes());
                    index.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
                    index.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
                    payloads.push((offset, bytes));
                }
            }
        }
        index[0..4].copy_from_slice(&node_count.to_le_bytes());

        let index_offset =
            layout::align_up(end).ok_or_else(|| invalid("", "file too large".to_string()))?;
        let header = Header {
            version: layout::FORMAT_VERSION,
            file_len: index_offset + index.len() as u64,
            index_offset,
            index_len: index.len() as u64,
            index_crc: crc32fast::hash(&index),
        };
        Ok(Plan {
            header,
            payloads,
            index,
        })
    }

    fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        const ZEROS: [u8; layout::ALIGN] = [0; layout::ALIGN];
        w.write_all(&self.header.encode())?;
        let mut at = HEADER_LEN as u64;
        for (offset, bytes) in &self.payloads {
            w.write_all(&ZEROS[..(offset - at) as usize])?;
            w.write_all(bytes)?;
            at = offset + bytes.len() as u64;
        }
        w.write_all(&ZEROS[..(self.header.index_offset - at) as usize])?;
        w.write_all(&self.index)
    }
}

#[derive(Clone, Copy)]
enum NodeRef<'a> {
    Group(&'a Group),
    Dataset(&'a super::Dataset),
}

fn invalid(path: &str, what: String) -> CheckpointError {
    CheckpointError::InvalidTree {
        path: path.to_string(),
        what,
    }
}

fn len_u32(n: usize, path: &str) -> Result<u32, CheckpointError> {
    u32::try_from(n).map_err(|_| invalid(path, format!("{n} items do not fit a u32 count")))
}

/// A u32 length then the UTF-8 bytes. Names are at most `MAX_NAME` bytes and attribute
/// strings are checked by the caller, so the length fits.
fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_attr(out: &mut Vec<u8>, value: &Attr, path: &str) -> Result<(), CheckpointError> {
    out.push(value.dtype() as u8);
    let scalar = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.push(layout::FORM_SCALAR);
        out.extend_from_slice(bytes);
    };
    match value {
        Attr::U8(v) => scalar(out, &v.to_le_bytes()),
        Attr::I32(v) => scalar(out, &v.to_le_bytes()),
        Attr::U32(v) => scalar(out, &v.to_le_bytes()),
        Attr::I64(v) => scalar(out, &v.to_le_bytes()),
        Attr::U64(v) => scalar(out, &v.to_le_bytes()),
        Attr::F32(v) => scalar(out, &v.to_le_bytes()),
        Attr::F64(v) => scalar(out, &v.to_le_bytes()),
        Attr::Str(s) => {
            len_u32(s.len(), path)?;
            out.push(layout::FORM_SCALAR);
            put_str(out, s);
        }
        Attr::Array(d) => {
            out.push(layout::FORM_ARRAY);
            out.extend_from_slice(&len_u32(d.len(), path)?.to_le_bytes());
            if let Data::Str(v) = d {
                for s in v {
                    len_u32(s.len(), path)?;
                    put_str(out, s);
                }
            } else {
                out.extend_from_slice(&payload(d));
            }
        }
    }
    Ok(())
}

/// The little-endian bytes of a dataset's elements: a view for numbers, and for strings
/// one u64 length per element followed by all their bytes.
fn payload(d: &Data) -> Cow<'_, [u8]> {
    match d {
        Data::U8(v) => Cow::Borrowed(v),
        Data::I32(v) => Cow::Borrowed(bytemuck::cast_slice(v)),
        Data::U32(v) => Cow::Borrowed(bytemuck::cast_slice(v)),
        Data::I64(v) => Cow::Borrowed(bytemuck::cast_slice(v)),
        Data::U64(v) => Cow::Borrowed(bytemuck::cast_slice(v)),
        Data::F32(v) => Cow::Borrowed(bytemuck::cast_slice(v)),
        Data::F64(v) => Cow::Borrowed(bytemuck::cast_slice(v)),
        Data::Str(v) => {
            let total: usize = v.iter().map(|s| 8 + s.len()).sum();
            let mut out = Vec::with_capacity(total);
            for s in v {
                out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            }
            for s in v {
                out.extend_from_slice(s.as_bytes());
            }
            Cow::Owned(out)
        }
    }
}
