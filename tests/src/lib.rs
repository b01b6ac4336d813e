//! Test harness for Weir's end-to-end tests (`tests/it`): where the `weir`
//! binary and the built components are, a scratch directory per test, and
//! oracles that compute the bench queries from scratch.
//!
//! The tests run real components built by `scripts/build-udfs` and the real
//! `weir` binary; `scripts/test` builds both before running them.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub mod kafka;
pub mod oracle;
pub mod server;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The directory of built components (`NAME@VERSION.wasm`; misbehaving test
/// functions under `test/`).
pub fn udf_dir() -> PathBuf {
    let dir = std::env::var_os("WEIR_UDF_DIR").map_or_else(|| repo().join("udf-examples/dist"), PathBuf::from);
    assert!(
        dir.join("currency@1.wasm").exists() && dir.join("test/evil@1.wasm").exists(),
        "no built components in {}: run scripts/build-udfs (scripts/test does)",
        dir.display()
    );
    dir
}

/// The `weir` binary of this build (next to the test executable's directory).
pub fn weir_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/..");
    let bin = dir.join("weir");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release -p weir-runtime` first (scripts/test does)",
        bin.display()
    );
    bin
}

/// A scratch directory with helpers to write manifests and run them.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

impl Scratch {
    /// A fresh directory.
    pub fn new() -> Scratch {
        Scratch { dir: tempfile::tempdir().expect("temp dir") }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `name` inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to `name`; returns the path.
    pub fn write(&self, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(name);
        std::fs::write(&p, text).expect("write scratch file");
        p
    }

    /// Runs `weir run` on `manifest` (text) with the built components.
    pub fn run(&self, manifest: &str) -> Run {
        let path = self.write("pipeline.yaml", manifest);
        self.weir(&["run", path.to_str().expect("utf-8 path")], None)
    }

    /// Starts `weir ARGS` in this directory, in a process group of its own,
    /// with its standard error going to the file `stderr` (readable after a kill).
    pub fn spawn(&self, args: &[&str], stderr: &str) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        let err = std::fs::File::create(self.join(stderr)).expect("stderr file");
        Command::new(weir_bin())
            .args(args)
            .current_dir(self.path())
            .env("WEIR_UDF_DIR", format!("{0}:{0}/test", udf_dir().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .process_group(0)
            .spawn()
            .expect("spawn weir")
    }

    /// Runs `weir ARGS` in this directory, feeding `stdin` if given.
    pub fn weir(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut cmd = Command::new(weir_bin());
        cmd.args(args).current_dir(self.path()).env("WEIR_UDF_DIR", format!("{0}:{0}/test", udf_dir().display()));
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn weir");
        if let Some(input) = stdin {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(input).expect("feed stdin");
        }
        Run(child.wait_with_output().expect("wait for weir"))
    }
}

/// A finished `weir` process.
pub struct Run(pub Output);

impl Run {
    /// Its exit code.
    pub fn code(&self) -> Option<i32> {
        self.0.status.code()
    }

    /// Its standard error.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    /// Its standard output.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    /// Fails unless the run succeeded.
    pub fn ok(self) -> Result<Run> {
        if !self.0.status.success() {
            bail!("weir failed with {:?}:\n{}", self.code(), self.stderr());
        }
        Ok(self)
    }
}

/// Every line of every `*.txt` file in `dir` (or of the file `dir`), sorted bytewise.
pub fn sorted_lines(path: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    if path.is_dir() {
        for e in std::fs::read_dir(path)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "txt") {
                files.push(p);
            }
        }
    } else {
        files.push(path.to_path_buf());
    }
    let mut lines = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        lines.extend(text.lines().map(str::to_string));
    }
    lines.sort();
    Ok(lines)
}

/// The dead letters in an NDJSON file, parsed.
pub fn dead_letters(path: &Path) -> Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines().map(|l| serde_json::from_str(l).with_context(|| format!("dead letter {l:?}"))).collect()
}
