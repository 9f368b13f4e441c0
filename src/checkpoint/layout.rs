//! Byte layout shared by the writer and the reader: the header, the index encoding and the
//! limits. docs/checkpoint.md describes the same layout in prose; keep the two in step.

/// The first 8 bytes of every checkpoint. The high first byte catches 7-bit transfers and
/// the CR LF pair catches line-ending conversion, as in PNG.
pub const MAGIC: [u8; 8] = [0x89, b'N', b'S', b'V', b'C', b'K', b'\r', b'\n'];

/// The newest format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Dataset payloads start at multiples of this many bytes, so that a file loaded at an
/// aligned address can be viewed as `&[f64]` (or a GPU upload) without copying.
pub const ALIGN: usize = 64;

/// The most dimensions a dataset may have.
pub const MAX_RANK: usize = 32;

/// The longest name (in bytes) of a group, dataset or attribute.
pub const MAX_NAME: usize = 1024;

/// Header size in bytes.
pub const HEADER_LEN: usize = 64;

/// The parent field of the root node.
pub const NO_PARENT: u32 = u32::MAX;

/// Node kinds in the index.
pub const KIND_GROUP: u8 = 0;
/// See [`KIND_GROUP`].
pub const KIND_DATASET: u8 = 1;

/// Attribute forms in the index.
pub const FORM_SCALAR: u8 = 0;
/// See [`FORM_SCALAR`].
pub const FORM_ARRAY: u8 = 1;

/// The fixed-size header at offset 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format version.
    pub version: u32,
    /// Total file length in bytes.
    pub file_len: u64,
    /// Where the index starts.
    pub index_offset: u64,
    /// Index length in bytes.
    pub index_len: u64,
    /// CRC-32 of the index bytes.
    pub index_crc: u32,
}

impl Header {
    /// The 64 header bytes, checksum included.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        // 12..16: flags, zero in version 1.
        b[16..24].copy_from_slice(&self.file_len.to_le_bytes());
        b[24..32].copy_from_slice(&self.index_offset.to_le_bytes());
        b[32..40].copy_from_slice(&self.index_len.to_le_bytes());
        b[40..44].copy_from_slice(&self.index_crc.to_le_bytes());
        // 44..60: reserved, zero.
        let crc = crc32fast::hash(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }
}

/// Little-endian u32 at `at` of a slice known to be long enough.
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Little-endian u64 at `at` of a slice known to be long enough.
pub fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Checks a group, dataset or attribute name; the error says what is wrong with it.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty name".to_string());
    }
    if name.len() > MAX_NAME {
        return Err(format!("name longer than {MAX_NAME} bytes"));
    }
    if name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(format!("invalid name {name:?} (no '/', NUL, '.' or '..')"));
    }
    Ok(())
}

/// `n` rounded up to a multiple of [`ALIGN`], or `None` on overflow.
pub fn align_up(n: u64) -> Option<u64> {
    let a = ALIGN as u64;
    n.checked_add(a - 1).map(|v| v / a * a)
}
