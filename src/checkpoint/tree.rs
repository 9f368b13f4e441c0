//! The owned tree a checkpoint is written from: groups holding groups and datasets, both
//! carrying attributes. Children are kept sorted by name, so a tree always serializes to
//! the same bytes.

use std::collections::BTreeMap;

use super::{Attr, CheckpointError, Data, layout};

/// A group: named children (groups and datasets) and attributes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Group {
    /// Attributes by name.
    pub attrs: BTreeMap<String, Attr>,
    /// Children by name.
    pub children: BTreeMap<String, Node>,
}

/// A child of a group.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// A nested group.
    Group(Group),
    /// A dataset.
    Dataset(Dataset),
}

/// An n-dimensional array of one dtype, stored row-major, with attributes.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// The dimensions; empty for a scalar (one element).
    pub shape: Vec<usize>,
    /// The elements, row-major; as many as the product of `shape`.
    pub data: Data,
    /// Attributes by name.
    pub attrs: BTreeMap<String, Attr>,
}

impl Dataset {
    /// A dataset of `shape` holding `data`. Fails when the element count is not the
    /// product of the dimensions or the rank is above [`layout::MAX_RANK`].
    pub fn new(shape: Vec<usize>, data: impl Into<Data>) -> Result<Self, CheckpointError> {
        let data = data.into();
        let ds = Dataset {
            shape,
            data,
            attrs: BTreeMap::new(),
        };
        ds.check("")?;
        Ok(ds)
    }

    /// A scalar string dataset (shape `[]`), e.g. a JSON document.
    pub fn string(text: impl Into<String>) -> Self {
        Dataset {
            shape: Vec::new(),
            data: Data::Str(vec![text.into()]),
            attrs: BTreeMap::new(),
        }
    }

    /// Adds or replaces an attribute; returns the dataset for chaining.
    pub fn with_attr(mut self, name: &str, value: impl Into<Attr>) -> Self {
        self.attrs.insert(name.to_string(), value.into());
        self
    }

    /// Checks the shape against the data; `path` names the dataset in the error.
    pub(crate) fn check(&self, path: &str) -> Result<(), CheckpointError> {
        let invalid = |what: String| CheckpointError::InvalidTree {
            path: path.to_string(),
            what,
        };
        if self.shape.len() > layout::MAX_RANK {
            return Err(invalid(format!(
                "rank {} is above the maximum {}",
                self.shape.len(),
                layout::MAX_RANK
            )));
        }
        let count = self
            .shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| invalid(format!("shape {:?} overflows", self.shape)))?;
        if count != self.data.len() {
            return Err(invalid(format!(
                "shape {:?} holds {count} elements but {} were given",
                self.shape,
                self.data.len()
            )));
        }
        Ok(())
    }
}

impl Group {
    /// An empty group.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces an attribute.
    pub fn set_attr(&mut self, name: &str, value: impl Into<Attr>) {
        self.attrs.insert(name.to_string(), value.into());
    }

    /// The group at `path` (names separated by `/`), created with its parents when absent.
    /// Fails when a dataset sits on the way or a name is invalid.
    pub fn group_mut(&mut self, path: &str) -> Result<&mut Group, CheckpointError> {
        let mut group = self;
        let mut walked = String::new();
        for name in strict_names(path)? {
            walked = join(&walked, name);
            let node = group
                .children
                .entry(name.to_string())
                .or_insert_with(|| Node::Group(Group::new()));
            group = match node {
                Node::Group(g) => g,
                Node::Dataset(_) => {
                    return Err(CheckpointError::InvalidTree {
                        path: walked,
                        what: "is a dataset, not a group".to_string(),
                    });
                }
            };
        }
        Ok(group)
    }

    /// Inserts a dataset at `path`, creating the groups above it. Fails when the path is
    /// empty or taken, a name is invalid, or the dataset's shape does not match its data.
    pub fn insert(&mut self, path: &str, dataset: Dataset) -> Result<(), CheckpointError> {
        dataset.check(path)?;
        let names = strict_names(path)?;
        let Some((name, parents)) = names.split_last() else {
            return Err(CheckpointError::InvalidTree {
                path: path.to_string(),
                what: "a dataset needs a name".to_string(),
            });
        };
        let parent = parents.join("/");
        let group = self.group_mut(&parent)?;
        if group.children.contains_key(*name) {
            return Err(CheckpointError::InvalidTree {
                path: path.to_string(),
                what: "already exists".to_string(),
            });
        }
        group
            .children
            .insert(name.to_string(), Node::Dataset(dataset));
        Ok(())
    }

    /// The node at `path`, if any; `""` or `"/"` is not a node (use the group itself).
    pub fn get(&self, path: &str) -> Option<&Node> {
        let mut names = split_path(path).peekable();
        let mut group = self;
        while let Some(name) = names.next() {
            let node = group.children.get(name)?;
            if names.peek().is_none() {
                return Some(node);
            }
            match node {
                Node::Group(g) => group = g,
                Node::Dataset(_) => return None,
            }
        }
        None
    }

    /// The dataset at `path`, if there is one.
    pub fn dataset(&self, path: &str) -> Option<&Dataset> {
        match self.get(path)? {
            Node::Dataset(d) => Some(d),
            Node::Group(_) => None,
        }
    }
}

/// The non-empty names of a `/`-separated path.
pub(crate) fn split_path(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// The names of a path given to the writer: an optional leading `/`, then valid names
/// (no empty ones: `a//b` is a mistake, not `a/b`).
fn strict_names(path: &str) -> Result<Vec<&str>, CheckpointError> {
    let rel = path.strip_prefix('/').unwrap_or(path);
    if rel.is_empty() {
        return Ok(Vec::new());
    }
    rel.split('/')
        .map(|name| {
            layout::check_name(name)
                .map(|()| name)
                .map_err(|what| CheckpointError::InvalidTree {
                    path: path.to_string(),
                    what,
                })
        })
        .collect()
}

/// `parent/name`, or `name` under the root.
pub(crate) fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}
