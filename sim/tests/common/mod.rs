//! What the `vigil` binary's integration tests share: running it, reading
//! what it printed, the shipped scenarios, and temporary files. Each test
//! binary uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run `vigil` with `args` and wait for it.
pub fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil")).args(args).output().expect("the vigil binary runs")
}

/// Its exit code.
pub fn code(out: &Output) -> i32 {
    out.status.code().expect("vigil exits with a code, not a signal")
}

/// Bytes it printed, as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("vigil prints UTF-8")
}

/// What it printed on stdout.
pub fn stdout(out: &Output) -> String {
    text(&out.stdout)
}

/// What it printed on stderr.
pub fn stderr(out: &Output) -> String {
    text(&out.stderr)
}

/// The shipped `scenarios/` folder.
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("scenarios")
}

/// Path of shipped scenario `name`.
pub fn scenario(name: &str) -> String {
    scenarios_dir().join(name).display().to_string()
}

/// Every shipped scenario file, sorted; never empty.
pub fn shipped_scenarios() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(scenarios_dir())
        .expect("scenarios/ is readable")
        .map(|e| e.expect("scenarios/ lists").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario in scenarios/");
    files
}

/// A file under the system temp directory, unique to this test process and
/// `name`, removed when dropped.
pub struct TempFile(pub PathBuf);

impl TempFile {
    /// A file holding `contents`.
    pub fn new(name: &str, contents: &str) -> TempFile {
        let file = TempFile::path_only(name);
        std::fs::write(&file.0, contents).expect("the temp directory is writable");
        file
    }

    /// A unique path with nothing written to it yet.
    pub fn path_only(name: &str) -> TempFile {
        TempFile(std::env::temp_dir().join(format!("vigil-test-{}-{name}", std::process::id())))
    }

    /// The path as a string, for arguments.
    pub fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
