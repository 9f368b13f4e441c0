//! The two spellings of a candidate (`a|b|c`, optionally between `input` and `output`, or a
//! JSON list of strings), arch files, and the SHA-1 checkpoint name.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use sha1::{Digest, Sha1};

use super::ArchError;

/// A candidate: its op names in order, without stems and without the `input`/`output`
/// words. Skip connections (`sc_N`) are kept as entries, as HiveNAS writes them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Arch {
    ops: Vec<String>,
}

impl Arch {
    /// A candidate from op names as given (no stripping, no checks; lowering checks).
    pub fn new(ops: Vec<String>) -> Self {
        Self { ops }
    }

    /// Parses either spelling; see the module docs. Surrounding whitespace of every name is
    /// ignored; an `input` first and an `output` last are dropped.
    pub fn parse(text: &str) -> Result<Self, ArchError> {
        let trimmed = text.trim();
        let names: Vec<String> = if trimmed.starts_with('[') {
            parse_json_list(trimmed)?
        } else if trimmed.is_empty() {
            return Err(ArchError::Empty);
        } else {
            trimmed.split('|').map(|s| s.trim().to_string()).collect()
        };
        let mut names: &[String] = &names;
        if names.first().is_some_and(|n| n.trim() == "input") {
            names = &names[1..];
        }
        if names.last().is_some_and(|n| n.trim() == "output") {
            names = &names[..names.len() - 1];
        }
        if names.is_empty() {
            return Err(ArchError::Empty);
        }
        let mut ops = Vec::with_capacity(names.len());
        for (position, name) in names.iter().enumerate() {
            let name = name.trim();
            if name.is_empty() {
                return Err(syntax(
                    text,
                    format!("the op at position {position} is empty"),
                ));
            }
            if let Some(c) = name.chars().find(|&c| !allowed_in_name(c)) {
                return Err(syntax(
                    text,
                    format!("the op {name:?} at position {position} holds {c:?}"),
                ));
            }
            ops.push(name.to_string());
        }
        Ok(Self { ops })
    }

    /// The op names, `sc_N` entries included.
    pub fn ops(&self) -> &[String] {
        &self.ops
    }

    /// The checkpoint name: hex SHA-1 of the op names joined with no separator.
    pub fn sha1(&self) -> String {
        sha1_hex(&self.ops.concat())
    }

    /// HiveNAS's string spelling, `input|a|b|output`.
    pub fn hivenas_string(&self) -> String {
        format!("input|{}|output", self.ops.join("|"))
    }
}

impl FromStr for Arch {
    type Err = ArchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Writes the short spelling `a|b|c`.
impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ops.join("|"))
    }
}

/// Whether an op name may hold `c`: anything but separators, quotes, brackets, the `/` of
/// checkpoint paths, whitespace and control characters.
pub(crate) fn allowed_in_name(c: char) -> bool {
    !(c.is_whitespace() || c.is_control() || "|/\\\"'[]{},".contains(c))
}

/// Lower-case hex SHA-1 of a string's UTF-8 bytes.
pub fn sha1_hex(text: &str) -> String {
    Sha1::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn syntax(text: &str, reason: String) -> ArchError {
    ArchError::Syntax {
        text: text.chars().take(200).collect(),
        reason,
    }
}

/// A JSON list of strings. Python's repr (`['a', 'b']`, as HiveNAS logs candidates) is
/// accepted too, by reading single quotes as double quotes when the text has no double ones.
fn parse_json_list(text: &str) -> Result<Vec<String>, ArchError> {
    match serde_json::from_str::<Vec<String>>(text) {
        Ok(v) => Ok(v),
        Err(e) if text.contains('\'') && !text.contains('"') => {
            serde_json::from_str::<Vec<String>>(&text.replace('\'', "\""))
                .map_err(|_| syntax(text, format!("not a JSON list of strings ({e})")))
        }
        Err(e) => Err(syntax(text, format!("not a JSON list of strings ({e})"))),
    }
}

/// Reads one candidate per line (either spelling); empty lines and lines starting with `#`
/// are skipped. Returns each candidate with its 1-based line number.
pub fn read_arch_file(path: &Path) -> Result<Vec<(usize, Arch)>, ArchError> {
    let text = std::fs::read_to_string(path).map_err(|source| ArchError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let arch = Arch::parse(line).map_err(|e| ArchError::ArchFileLine {
            path: path.display().to_string(),
            line: i + 1,
            source: Box::new(e),
        })?;
        out.push((i + 1, arch));
    }
    if out.is_empty() {
        return Err(syntax(
            &path.display().to_string(),
            "the arch file holds no candidate (one op list per line expected)".to_string(),
        ));
    }
    Ok(out)
}
