//! Turning a request path into a file inside the store, or refusing it: only plain names (no
//! `..`, no root, no `.`-tricks), and after following symlinks the file must still be inside
//! the store, so a link pointing out of it is refused too. `latest` links inside the store are
//! fine.

use std::path::{Component, Path, PathBuf};

/// Why a path was not served.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The path names something outside the store (`..`, an absolute path, a symlink out).
    Outside,
    /// Nothing is there.
    Missing,
}

/// `relative` inside `store` (already canonical), canonicalised, if it stays inside.
pub fn resolve(store: &Path, relative: &str) -> Result<PathBuf, Refusal> {
    let relative = Path::new(relative);
    if !relative
        .components()
        .all(|component| matches!(component, Component::Normal(_) | Component::CurDir))
    {
        return Err(Refusal::Outside);
    }
    let resolved = store
        .join(relative)
        .canonicalize()
        .map_err(|_| Refusal::Missing)?;
    if resolved.starts_with(store) {
        Ok(resolved)
    } else {
        Err(Refusal::Outside)
    }
}

#[cfg(test)]
mod tests {
    use super::{Refusal, resolve};

    #[test]
    fn names_inside_resolve_and_dot_dot_absolute_and_symlinks_out_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "no").unwrap();
        let store = tempfile::tempdir().unwrap();
        let root = store.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("echo/run1")).unwrap();
        std::fs::write(root.join("echo/run1/summary.txt"), "ok").unwrap();
        std::os::unix::fs::symlink("echo/run1", root.join("latest")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("escape")).unwrap();

        assert_eq!(
            resolve(&root, "echo/run1/summary.txt"),
            Ok(root.join("echo/run1/summary.txt"))
        );
        assert_eq!(
            resolve(&root, "latest/summary.txt"),
            Ok(root.join("echo/run1/summary.txt"))
        );
        assert_eq!(resolve(&root, "echo/../../x"), Err(Refusal::Outside));
        assert_eq!(resolve(&root, "/etc/passwd"), Err(Refusal::Outside));
        assert_eq!(resolve(&root, "escape/secret"), Err(Refusal::Outside));
        assert_eq!(resolve(&root, "echo/run2"), Err(Refusal::Missing));
    }
}
