//! Field paths printed the way upstream prints them:
//! `spec.template.spec.containers[0].image`, `data[key]`.

use std::fmt;

/// A field path under construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path(String);

impl Path {
    /// A top-level field (`metadata`, `spec`), or `""` for the whole object.
    pub(crate) fn root(name: &str) -> Path {
        Path(name.to_string())
    }

    /// `parent.name`
    pub(crate) fn child(&self, name: &str) -> Path {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{}", self.0, name))
        }
    }

    /// `parent[i]`
    pub(crate) fn index(&self, i: usize) -> Path {
        Path(format!("{}[{}]", self.0, i))
    }

    /// `parent[key]` (map entries: `limits[cpu]`, `data[config.yaml]`).
    pub(crate) fn key(&self, key: &str) -> Path {
        Path(format!("{}[{}]", self.0, key))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&Path> for String {
    fn from(p: &Path) -> String {
        p.0.clone()
    }
}

impl From<Path> for String {
    fn from(p: Path) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_upstream() {
        let p = Path::root("spec").child("template").child("spec").child("containers").index(0).child("image");
        assert_eq!(p.to_string(), "spec.template.spec.containers[0].image");
        assert_eq!(Path::root("data").key("a.b").to_string(), "data[a.b]");
        assert_eq!(Path::root("").child("x").to_string(), "x");
    }
}
