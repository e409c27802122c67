//! Cross-crate tests live in `tests/tests/`; this library holds what they
//! share: finding the scenario files that ship with vigil.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::{Path, PathBuf};

/// The workspace's `scenarios/` directory.
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("scenarios")
}

/// Every `scenarios/*.toml`, sorted by file name, so a new scenario is
/// covered by every test that loops over this list without touching the
/// tests. Panics if the directory cannot be read or holds no scenario: a
/// test that silently looped over nothing would prove nothing.
pub fn scenario_files() -> Vec<PathBuf> {
    let dir = scenarios_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())).path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario files in {}", dir.display());
    files
}

/// How a user names a scenario file from the workspace root, e.g.
/// `scenarios/instance-crash.toml`, for messages that tell them what to run.
pub fn display_path(file: &Path) -> String {
    match file.file_name() {
        Some(name) => format!("scenarios/{}", name.to_string_lossy()),
        None => file.display().to_string(),
    }
}
