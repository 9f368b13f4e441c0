//! Reading a checkpoint: every field is checked before it is used (magic, version,
//! checksums, offsets and lengths within the file, dtypes, shapes, names, UTF-8), and only
//! then are datasets handed out, as views into one aligned buffer.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::layout::{self, HEADER_LEN, MAGIC, u32_at, u64_at};
use super::tree::{Group, Node, join, split_path};
use super::{Attr, CheckpointError, Data, Dataset, Dtype, Element};

/// The deepest a node may be nested; bounds the cost of rebuilding a path.
pub const MAX_DEPTH: usize = 64;

/// Whether checksums are compared. cargo-fuzz builds set `cfg(fuzzing)`, and skipping the
/// comparisons there lets the fuzzer reach the parser behind them (a mutated file almost
/// never keeps a valid CRC); every other build checks them.
#[allow(unexpected_cfgs)]
const VERIFY_CHECKSUMS: bool = !cfg!(fuzzing);

/// The unit of the read buffer: its alignment makes every dataset offset (a multiple of
/// [`layout::ALIGN`]) an aligned address, so views need no copy.
#[repr(C, align(64))]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Block([u8; 64]);

const _: () = assert!(size_of::<Block>() == layout::ALIGN);

/// A checkpoint read into memory and fully validated.
pub struct CheckpointFile {
    file: PathBuf,
    buf: Vec<Block>,
    len: usize,
    version: u32,
    nodes: Vec<Entry>,
}

struct Entry {
    parent: u32,
    depth: usize,
    name: String,
    attrs: BTreeMap<String, Attr>,
    /// Child indices sorted by name (groups only).
    children: Vec<u32>,
    dataset: Option<DatasetInfo>,
}

#[derive(Clone)]
struct DatasetInfo {
    dtype: Dtype,
    shape: Vec<usize>,
    count: usize,
    offset: usize,
    len: usize,
    crc: u32,
}

/// Whether an entry is a group or a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A group.
    Group,
    /// A dataset.
    Dataset,
}

/// A node of a [`CheckpointFile`].
#[derive(Clone, Copy)]
pub struct EntryRef<'a> {
    file: &'a CheckpointFile,
    idx: usize,
}

/// A dataset of a [`CheckpointFile`], viewable in place.
#[derive(Clone, Copy)]
pub struct DatasetRef<'a> {
    file: &'a CheckpointFile,
    idx: usize,
}

impl CheckpointFile {
    /// Reads and validates the checkpoint at `path`.
    pub fn open(path: &Path) -> Result<Self, CheckpointError> {
        let io = |action: &'static str| {
            move |source| CheckpointError::Io {
                file: path.to_path_buf(),
                action,
                source,
            }
        };
        let mut f = std::fs::File::open(path).map_err(io("open for reading"))?;
        let on_disk = f.metadata().map_err(io("read the size of"))?.len();

        // The header is checked before the buffer for the whole file is allocated, so a
        // stray huge file is refused cheaply.
        let mut head = [0u8; HEADER_LEN];
        let n = read_up_to(&mut f, &mut head).map_err(io("read"))?;
        parse_header(path, &head[..n], on_disk)?;
        let len = usize::try_from(on_disk).map_err(|_| corrupt(path, "", "too large"))?;
        let mut buf = vec![Block([0; 64]); len.div_ceil(layout::ALIGN)];
        let bytes = &mut bytemuck::cast_slice_mut::<Block, u8>(&mut buf)[..len];
        bytes[..HEADER_LEN].copy_from_slice(&head);
        let got = read_up_to(&mut f, &mut bytes[HEADER_LEN..]).map_err(io("read"))?;
        if got < len - HEADER_LEN {
            // The file shrank while being read.
            return Err(CheckpointError::Truncated {
                file: path.to_path_buf(),
                expected: on_disk,
                found: (HEADER_LEN + got) as u64,
            });
        }
        Self::parse(path.to_path_buf(), buf, len)
    }

    /// Validates a checkpoint image held in memory (copied once into an aligned buffer);
    /// `name` stands for the file in errors.
    pub fn from_bytes(name: &Path, bytes: &[u8]) -> Result<Self, CheckpointError> {
        parse_header(
            name,
            &bytes[..bytes.len().min(HEADER_LEN)],
            bytes.len() as u64,
        )?;
        let mut buf = vec![Block([0; 64]); bytes.len().div_ceil(layout::ALIGN)];
        bytemuck::cast_slice_mut::<Block, u8>(&mut buf)[..bytes.len()].copy_from_slice(bytes);
        Self::parse(name.to_path_buf(), buf, bytes.len())
    }

    fn parse(file: PathBuf, buf: Vec<Block>, len: usize) -> Result<Self, CheckpointError> {
        let bytes = &bytemuck::cast_slice::<Block, u8>(&buf)[..len];
        let header = parse_header(&file, &bytes[..HEADER_LEN], len as u64)?;
        let index_start = header.index_offset as usize;
        let index = &bytes[index_start..];
        let computed = crc32fast::hash(index);
        if VERIFY_CHECKSUMS && computed != header.index_crc {
            return Err(CheckpointError::Checksum {
                file,
                what: "index".to_string(),
                stored: header.index_crc,
                computed,
            });
        }
        let nodes = parse_index(&file, index, index_start)?;
        let out = CheckpointFile {
            file,
            buf,
            len,
            version: header.version,
            nodes,
        };
        out.check_data(index_start)?;
        Ok(out)
    }

    /// Checks every dataset's checksum and string layout, and that the bytes no dataset
    /// covers (alignment padding) are zero, so that no byte of the file goes unchecked.
    fn check_data(&self, index_start: usize) -> Result<(), CheckpointError> {
        let bytes = self.bytes();
        let mut spans: Vec<(usize, usize, usize)> = Vec::new();
        for (idx, e) in self.nodes.iter().enumerate() {
            let Some(d) = &e.dataset else { continue };
            spans.push((d.offset, d.len, idx));
        }
        spans.sort_unstable();
        let mut at = HEADER_LEN;
        for &(offset, len, idx) in &spans {
            let path = self.path_of(idx);
            if offset < at {
                return Err(corrupt(&self.file, &path, "data overlaps another dataset"));
            }
            if bytes[at..offset].iter().any(|&b| b != 0) {
                return Err(corrupt(
                    &self.file,
                    &path,
                    "non-zero padding before the data",
                ));
            }
            at = offset + len;
        }
        if bytes[at..index_start].iter().any(|&b| b != 0) {
            return Err(corrupt(
                &self.file,
                "/",
                "non-zero padding before the index",
            ));
        }
        for (idx, e) in self.nodes.iter().enumerate() {
            let Some(d) = &e.dataset else { continue };
            let data = &bytes[d.offset..d.offset + d.len];
            let computed = crc32fast::hash(data);
            if VERIFY_CHECKSUMS && computed != d.crc {
                return Err(CheckpointError::Checksum {
                    file: self.file.clone(),
                    what: format!("dataset `{}`", self.path_of(idx)),
                    stored: d.crc,
                    computed,
                });
            }
            if d.dtype == Dtype::Str {
                split_strings(data, d.count)
                    .map_err(|what| corrupt(&self.file, &self.path_of(idx), &what))?;
            }
        }
        Ok(())
    }

    /// The file this was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The format version the file declares.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        self.len as u64
    }

    /// Always false: a valid checkpoint has at least a header and an index.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The whole file image.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<Block, u8>(&self.buf)[..self.len]
    }

    /// The root group.
    pub fn root(&self) -> EntryRef<'_> {
        EntryRef { file: self, idx: 0 }
    }

    /// The node at `path` (names separated by `/`; `""` or `"/"` is the root).
    pub fn get(&self, path: &str) -> Option<EntryRef<'_>> {
        let mut idx = 0usize;
        for name in split_path(path) {
            let children = &self.nodes[idx].children;
            let pos = children
                .binary_search_by(|&c| self.nodes[c as usize].name.as_str().cmp(name))
                .ok()?;
            idx = children[pos] as usize;
        }
        Some(EntryRef { file: self, idx })
    }

    /// The dataset at `path`; a typed error when it is absent or a group.
    pub fn dataset(&self, path: &str) -> Result<DatasetRef<'_>, CheckpointError> {
        let missing = || CheckpointError::Missing {
            file: self.file.clone(),
            path: path.to_string(),
            what: "dataset".to_string(),
        };
        let e = self.get(path).ok_or_else(missing)?;
        e.as_dataset().ok_or_else(|| CheckpointError::WrongType {
            file: self.file.clone(),
            path: path.to_string(),
            expected: "dataset".to_string(),
            found: "group".to_string(),
        })
    }

    /// Every node in depth-first order, children by name, the root first.
    pub fn walk(&self) -> Vec<EntryRef<'_>> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = vec![0u32];
        while let Some(idx) = stack.pop() {
            out.push(EntryRef {
                file: self,
                idx: idx as usize,
            });
            stack.extend(self.nodes[idx as usize].children.iter().rev());
        }
        out
    }

    /// An owned copy of the whole tree.
    pub fn to_group(&self) -> Group {
        let mut groups: Vec<Option<Group>> = (0..self.nodes.len()).map(|_| None).collect();
        // Children come after their parents in the index, so building in reverse order
        // finishes every child before its parent needs it.
        for idx in (0..self.nodes.len()).rev() {
            let e = &self.nodes[idx];
            if e.dataset.is_some() {
                continue;
            }
            let mut g = Group {
                attrs: e.attrs.clone(),
                children: BTreeMap::new(),
            };
            for &c in &e.children {
                let c = c as usize;
                let child = &self.nodes[c];
                let node = match child.dataset {
                    Some(_) => Node::Dataset(DatasetRef { file: self, idx: c }.to_dataset()),
                    None => Node::Group(groups[c].take().unwrap_or_default()),
                };
                g.children.insert(child.name.clone(), node);
            }
            groups[idx] = Some(g);
        }
        groups[0].take().unwrap_or_default()
    }

    fn path_of(&self, idx: usize) -> String {
        let mut names = Vec::with_capacity(self.nodes[idx].depth);
        let mut i = idx;
        while i != 0 {
            names.push(self.nodes[i].name.as_str());
            i = self.nodes[i].parent as usize;
        }
        names.reverse();
        names.join("/")
    }
}

impl<'a> EntryRef<'a> {
    /// The path from the root (`""` for the root itself).
    pub fn path(&self) -> String {
        self.file.path_of(self.idx)
    }

    /// The last name of the path (`""` for the root).
    pub fn name(&self) -> &'a str {
        &self.file.nodes[self.idx].name
    }

    /// How deep it is nested (0 for the root).
    pub fn depth(&self) -> usize {
        self.file.nodes[self.idx].depth
    }

    /// Group or dataset.
    pub fn kind(&self) -> EntryKind {
        match self.file.nodes[self.idx].dataset {
            Some(_) => EntryKind::Dataset,
            None => EntryKind::Group,
        }
    }

    /// Its attributes by name.
    pub fn attrs(&self) -> &'a BTreeMap<String, Attr> {
        &self.file.nodes[self.idx].attrs
    }

    /// One attribute.
    pub fn attr(&self, name: &str) -> Option<&'a Attr> {
        self.attrs().get(name)
    }

    /// Its children in name order (empty for a dataset).
    pub fn children(&self) -> impl Iterator<Item = EntryRef<'a>> + 'a {
        let file = self.file;
        file.nodes[self.idx]
            .children
            .iter()
            .map(move |&c| EntryRef {
                file,
                idx: c as usize,
            })
    }

    /// The dataset, when it is one.
    pub fn as_dataset(&self) -> Option<DatasetRef<'a>> {
        self.file.nodes[self.idx]
            .dataset
            .as_ref()
            .map(|_| DatasetRef {
                file: self.file,
                idx: self.idx,
            })
    }
}

impl<'a> DatasetRef<'a> {
    fn info(&self) -> &'a DatasetInfo {
        match &self.file.nodes[self.idx].dataset {
            Some(d) => d,
            None => unreachable!("a DatasetRef is only made for datasets"),
        }
    }

    /// The path from the root.
    pub fn path(&self) -> String {
        self.file.path_of(self.idx)
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        self.info().dtype
    }

    /// The dimensions (empty for a scalar).
    pub fn shape(&self) -> &'a [usize] {
        &self.info().shape
    }

    /// The number of elements.
    pub fn count(&self) -> usize {
        self.info().count
    }

    /// Its attributes by name.
    pub fn attrs(&self) -> &'a BTreeMap<String, Attr> {
        &self.file.nodes[self.idx].attrs
    }

    /// The stored bytes (little-endian elements; for strings, the u64 lengths then the
    /// text).
    pub fn bytes(&self) -> &'a [u8] {
        let d = self.info();
        &self.file.bytes()[d.offset..d.offset + d.len]
    }

    /// The elements viewed in place, without a copy; an error when `T` is not its dtype.
    pub fn view<T: Element>(&self) -> Result<&'a [T], CheckpointError> {
        if T::DTYPE != self.dtype() {
            return Err(CheckpointError::WrongType {
                file: self.file.file.clone(),
                path: self.path(),
                expected: T::DTYPE.name().to_string(),
                found: self.dtype().name().to_string(),
            });
        }
        // Cannot fail: the buffer is 64-byte aligned, offsets are multiples of 64 and the
        // length was checked against the dtype at open.
        bytemuck::try_cast_slice(self.bytes())
            .map_err(|e| corrupt(&self.file.file, &self.path(), &format!("unaligned: {e}")))
    }

    /// The elements of a string dataset; an error for other dtypes.
    pub fn strings(&self) -> Result<Vec<&'a str>, CheckpointError> {
        if self.dtype() != Dtype::Str {
            return Err(CheckpointError::WrongType {
                file: self.file.file.clone(),
                path: self.path(),
                expected: "str".to_string(),
                found: self.dtype().name().to_string(),
            });
        }
        split_strings(self.bytes(), self.count())
            .map_err(|what| corrupt(&self.file.file, &self.path(), &what))
    }

    /// An owned copy of the elements.
    pub fn to_data(&self) -> Data {
        let b = self.bytes();
        match self.dtype() {
            Dtype::U8 => Data::U8(b.to_vec()),
            Dtype::I32 => Data::I32(copy(b)),
            Dtype::U32 => Data::U32(copy(b)),
            Dtype::I64 => Data::I64(copy(b)),
            Dtype::U64 => Data::U64(copy(b)),
            Dtype::F32 => Data::F32(copy(b)),
            Dtype::F64 => Data::F64(copy(b)),
            // The layout was validated at open, so this cannot fail.
            Dtype::Str => Data::Str(
                split_strings(b, self.count())
                    .unwrap_or_default()
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            ),
        }
    }

    /// An owned copy of the dataset with its attributes.
    pub fn to_dataset(&self) -> Dataset {
        Dataset {
            shape: self.shape().to_vec(),
            data: self.to_data(),
            attrs: self.attrs().clone(),
        }
    }
}

fn corrupt(file: &Path, path: &str, what: &str) -> CheckpointError {
    CheckpointError::Corrupt {
        file: file.to_path_buf(),
        path: if path.is_empty() { "/" } else { path }.to_string(),
        what: what.to_string(),
    }
}

/// Reads until `buf` is full or the end of the file; returns the bytes read.
fn read_up_to(f: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Checks the header (`head` is the file's first up to 64 bytes, `file_len` its full
/// length) in the order that gives the most useful error: magic, version, checksum, then
/// the fields.
fn parse_header(
    file: &Path,
    head: &[u8],
    file_len: u64,
) -> Result<layout::Header, CheckpointError> {
    let magic_len = head.len().min(MAGIC.len());
    if head[..magic_len] != MAGIC[..magic_len] || head.is_empty() {
        return Err(CheckpointError::NotACheckpoint {
            file: file.to_path_buf(),
            found: head[..magic_len].to_vec(),
        });
    }
    if head.len() < HEADER_LEN {
        return Err(CheckpointError::Truncated {
            file: file.to_path_buf(),
            expected: HEADER_LEN as u64,
            found: file_len,
        });
    }
    // Magic and version stay at offsets 0 and 8 in every version, so that an old reader
    // can always say which version it met.
    let version = u32_at(head, 8);
    let stored = u32_at(head, 60);
    let computed = crc32fast::hash(&head[..60]);
    // A version far beyond ours whose header fails our checksum is more likely a damaged
    // byte than a file from the future; say so rather than ask for an upgrade.
    if VERIFY_CHECKSUMS && version > layout::FORMAT_VERSION + 16 && stored != computed {
        return Err(CheckpointError::Checksum {
            file: file.to_path_buf(),
            what: format!("header (it also declares an implausible format version {version})"),
            stored,
            computed,
        });
    }
    if version > layout::FORMAT_VERSION {
        return Err(CheckpointError::NewerVersion {
            file: file.to_path_buf(),
            found: version,
            supported: layout::FORMAT_VERSION,
        });
    }
    if VERIFY_CHECKSUMS && stored != computed {
        return Err(CheckpointError::Checksum {
            file: file.to_path_buf(),
            what: "header".to_string(),
            stored,
            computed,
        });
    }
    if version == 0 {
        return Err(corrupt(file, "/", "format version 0 does not exist"));
    }
    if u32_at(head, 12) != 0 || head[44..60].iter().any(|&b| b != 0) {
        return Err(corrupt(file, "/", "reserved header bytes are not zero"));
    }
    let header = layout::Header {
        version,
        file_len: u64_at(head, 16),
        index_offset: u64_at(head, 24),
        index_len: u64_at(head, 32),
        index_crc: u32_at(head, 40),
    };
    if header.file_len > file_len {
        return Err(CheckpointError::Truncated {
            file: file.to_path_buf(),
            expected: header.file_len,
            found: file_len,
        });
    }
    if header.file_len < file_len {
        return Err(corrupt(
            file,
            "/",
            &format!(
                "{} bytes follow the end the header declares ({} bytes)",
                file_len - header.file_len,
                header.file_len
            ),
        ));
    }
    let index_end = header.index_offset.checked_add(header.index_len);
    if header.index_offset < HEADER_LEN as u64
        || !header.index_offset.is_multiple_of(layout::ALIGN as u64)
        || index_end != Some(header.file_len)
    {
        return Err(corrupt(
            file,
            "/",
            &format!(
                "index at {} with {} bytes does not end the {}-byte file",
                header.index_offset, header.index_len, header.file_len
            ),
        ));
    }
    Ok(header)
}

/// A reader over the index bytes; errors say what ran out.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| format!("the index ends inside {what}"))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn remaining(&self) -> usize {
        self.b.len() - self.at
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32_at(self.take(4, what)?, 0))
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64_at(self.take(8, what)?, 0))
    }

    fn str(&mut self, what: &str) -> Result<&'a str, String> {
        let n = self.u32(what)? as usize;
        let b = self.take(n, what)?;
        std::str::from_utf8(b).map_err(|e| format!("{what} is not UTF-8: {e}"))
    }
}

/// Smallest encoded node: parent, kind, empty name, attribute count.
const MIN_NODE: usize = 4 + 1 + 4 + 4;

fn parse_index(
    file: &Path,
    index: &[u8],
    index_start: usize,
) -> Result<Vec<Entry>, CheckpointError> {
    let mut c = Cursor { b: index, at: 0 };
    let count = c
        .u32("the node count")
        .map_err(|w| corrupt(file, "/", &w))? as usize;
    if count == 0 || count > c.remaining() / MIN_NODE {
        return Err(corrupt(
            file,
            "/",
            &format!(
                "node count {count} does not fit the {}-byte index",
                index.len()
            ),
        ));
    }
    let mut nodes: Vec<Entry> = Vec::with_capacity(count);
    for i in 0..count {
        let mut at = if i == 0 {
            "/".to_string()
        } else {
            format!("(node {i})")
        };
        let entry = parse_node(&mut c, i, &nodes, index_start, &mut at)
            .map_err(|what| corrupt(file, &at, &what))?;
        let parent = entry.parent as usize;
        nodes.push(entry);
        if i > 0 {
            nodes[parent].children.push(i as u32);
        }
    }
    // Sorted once at the end rather than kept sorted while inserting, which a file listing
    // many siblings in reverse order would make quadratic.
    for idx in 0..nodes.len() {
        let mut children = std::mem::take(&mut nodes[idx].children);
        children.sort_unstable_by(|&a, &b| nodes[a as usize].name.cmp(&nodes[b as usize].name));
        if let Some(w) = children
            .windows(2)
            .find(|w| nodes[w[0] as usize].name == nodes[w[1] as usize].name)
        {
            return Err(corrupt(
                file,
                &path_in(&nodes, w[1] as usize),
                "duplicate name",
            ));
        }
        nodes[idx].children = children;
    }
    if c.remaining() != 0 {
        return Err(corrupt(
            file,
            "/",
            &format!("{} unused bytes at the end of the index", c.remaining()),
        ));
    }
    Ok(nodes)
}

/// The path of an accepted node, `/` for the root.
fn path_in(nodes: &[Entry], idx: usize) -> String {
    let mut names = Vec::new();
    let mut i = idx;
    while i != 0 {
        names.push(nodes[i].name.as_str());
        i = nodes[i].parent as usize;
    }
    names.reverse();
    let p = names.join("/");
    if p.is_empty() { "/".to_string() } else { p }
}

/// Parses node `i`; `at` is kept naming it as precisely as known, for errors.
fn parse_node(
    c: &mut Cursor<'_>,
    i: usize,
    nodes: &[Entry],
    index_start: usize,
    at: &mut String,
) -> Result<Entry, String> {
    let parent = c.u32("a parent field")?;
    let depth = if i == 0 {
        if parent != layout::NO_PARENT {
            return Err("the root has a parent".to_string());
        }
        0
    } else {
        let p = parent as usize;
        if p >= i {
            return Err(format!("parent {parent} does not come before node {i}"));
        }
        if nodes[p].dataset.is_some() {
            return Err(format!("parent {parent} is a dataset"));
        }
        *at = format!("{}/(node {i})", path_in(nodes, p).trim_start_matches('/'));
        nodes[p].depth + 1
    };
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    let kind = c.u8("a node kind")?;
    let name = c.str("a node name")?;
    if i == 0 {
        if kind != layout::KIND_GROUP || !name.is_empty() {
            return Err("the first node is not an unnamed group".to_string());
        }
    } else {
        layout::check_name(name)?;
        *at = join(
            path_in(nodes, parent as usize).trim_start_matches('/'),
            name,
        );
    }
    let attrs = parse_attrs(c)?;
    let dataset = match kind {
        layout::KIND_GROUP => None,
        layout::KIND_DATASET => Some(parse_dataset(c, index_start)?),
        k => return Err(format!("unknown node kind {k}")),
    };
    Ok(Entry {
        parent,
        depth,
        name: name.to_string(),
        attrs,
        children: Vec::new(),
        dataset,
    })
}

fn parse_attrs(c: &mut Cursor<'_>) -> Result<BTreeMap<String, Attr>, String> {
    let count = c.u32("an attribute count")?;
    let mut attrs = BTreeMap::new();
    for _ in 0..count {
        let name = c.str("an attribute name")?;
        layout::check_name(name).map_err(|w| format!("attribute: {w}"))?;
        let what = format!("attribute `{name}`");
        let dtype_code = c.u8(&what)?;
        let dtype = Dtype::from_code(dtype_code)
            .ok_or_else(|| format!("{what}: unknown dtype code {dtype_code}"))?;
        let form = c.u8(&what)?;
        let value = match form {
            layout::FORM_SCALAR => match dtype {
                Dtype::U8 => Attr::U8(c.u8(&what)?),
                Dtype::I32 => Attr::I32(c.u32(&what)? as i32),
                Dtype::U32 => Attr::U32(c.u32(&what)?),
                Dtype::I64 => Attr::I64(c.u64(&what)? as i64),
                Dtype::U64 => Attr::U64(c.u64(&what)?),
                Dtype::F32 => Attr::F32(f32::from_bits(c.u32(&what)?)),
                Dtype::F64 => Attr::F64(f64::from_bits(c.u64(&what)?)),
                Dtype::Str => Attr::Str(c.str(&what)?.to_string()),
            },
            layout::FORM_ARRAY => {
                let n = c.u32(&what)? as usize;
                let data = match dtype.size() {
                    Some(size) => {
                        // take() checks n * size against the bytes left before anything
                        // is allocated.
                        let bytes = c.take(n.saturating_mul(size), &what)?;
                        numeric_data(dtype, bytes)
                    }
                    None => {
                        if n > c.remaining() / 4 {
                            return Err(format!("{what}: {n} strings do not fit the index"));
                        }
                        let mut v = Vec::with_capacity(n);
                        for _ in 0..n {
                            v.push(c.str(&what)?.to_string());
                        }
                        Data::Str(v)
                    }
                };
                Attr::Array(data)
            }
            f => return Err(format!("{what}: unknown form {f}")),
        };
        if attrs.insert(name.to_string(), value).is_some() {
            return Err(format!("duplicate attribute `{name}`"));
        }
    }
    Ok(attrs)
}

fn numeric_data(dtype: Dtype, b: &[u8]) -> Data {
    match dtype {
        Dtype::U8 => Data::U8(b.to_vec()),
        Dtype::I32 => Data::I32(copy(b)),
        Dtype::U32 => Data::U32(copy(b)),
        Dtype::I64 => Data::I64(copy(b)),
        Dtype::U64 => Data::U64(copy(b)),
        Dtype::F32 => Data::F32(copy(b)),
        Dtype::F64 => Data::F64(copy(b)),
        Dtype::Str => Data::Str(Vec::new()),
    }
}

fn parse_dataset(c: &mut Cursor<'_>, index_start: usize) -> Result<DatasetInfo, String> {
    let code = c.u8("a dtype")?;
    let dtype = Dtype::from_code(code).ok_or_else(|| format!("unknown dtype code {code}"))?;
    let rank = c.u8("a rank")? as usize;
    if rank > layout::MAX_RANK {
        return Err(format!(
            "rank {rank} is above the maximum {}",
            layout::MAX_RANK
        ));
    }
    let mut shape = Vec::with_capacity(rank);
    for _ in 0..rank {
        let d = c.u64("a dimension")?;
        shape.push(usize::try_from(d).map_err(|_| format!("dimension {d} is too large"))?);
    }
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} overflows"))?;
    let offset = c.u64("a data offset")?;
    let len = c.u64("a data length")?;
    let crc = c.u32("a data checksum")?;
    let end = offset.checked_add(len);
    if offset < HEADER_LEN as u64
        || !offset.is_multiple_of(layout::ALIGN as u64)
        || end.is_none_or(|e| e > index_start as u64)
    {
        return Err(format!(
            "data at {offset} with {len} bytes is not an aligned range between the header \
             and the index (at {index_start})"
        ));
    }
    // Both fit in usize: they are below index_start.
    let (offset, len) = (offset as usize, len as usize);
    match dtype.size() {
        Some(size) => {
            if count.checked_mul(size) != Some(len) {
                return Err(format!(
                    "shape {shape:?} of {dtype} needs {} bytes but {len} are stored",
                    count as u128 * size as u128
                ));
            }
        }
        None => {
            if count.checked_mul(8).is_none_or(|n| n > len) {
                return Err(format!("{count} strings do not fit {len} bytes"));
            }
        }
    }
    Ok(DatasetInfo {
        dtype,
        shape,
        count,
        offset,
        len,
        crc,
    })
}

/// The elements of `b` (a whole number of them) copied into a vector, which is aligned
/// for `T` whatever the alignment of `b`.
fn copy<T: Element>(b: &[u8]) -> Vec<T> {
    let mut v = vec![T::zeroed(); b.len() / size_of::<T>()];
    bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(b);
    v
}

/// Splits a string dataset's bytes: `count` u64 lengths, then the UTF-8 text of each.
fn split_strings(b: &[u8], count: usize) -> Result<Vec<&str>, String> {
    let head = count
        .checked_mul(8)
        .filter(|&n| n <= b.len())
        .ok_or_else(|| format!("{count} string lengths do not fit {} bytes", b.len()))?;
    let mut at = head;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let n = usize::try_from(u64_at(b, i * 8)).unwrap_or(usize::MAX);
        let end = at
            .checked_add(n)
            .filter(|&e| e <= b.len())
            .ok_or_else(|| format!("string {i} runs past the end of the data"))?;
        out.push(std::str::from_utf8(&b[at..end]).map_err(|e| format!("string {i}: {e}"))?);
        at = end;
    }
    if at != b.len() {
        return Err(format!("{} bytes follow the last string", b.len() - at));
    }
    Ok(out)
}
