//! Running the real binary from the repository root.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `hookflow ARGS` in the repository root.
pub fn hookflow(args: &[&str]) -> Run {
    hookflow_in(&root(), args, &[])
}

/// Runs `hookflow ARGS` in `dir` with extra environment variables.
pub fn hookflow_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookflow"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("HOOKFLOW_FIXTURE_UNSET_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the hookflow binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Makes sure Python module `module` imports, installing PyPI package `package` with pip
/// on first use when it does not (`.ci/run` installs them all up front).
pub fn python_module(module: &str, package: &str) {
    static DONE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if done.iter().any(|m| m == module) {
        return;
    }
    let imports = || {
        Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !imports() {
        let installed = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", package])
            .status();
        assert!(
            installed.is_ok_and(|s| s.success()) && imports(),
            "cannot install {package} with pip (python3 -m pip install {package})"
        );
    }
    done.push(module.to_owned());
}

/// Runs a Python script of `tests/` with `input` on stdin: (exit code, stdout).
pub fn python(script: &str, input: &str) -> (i32, String) {
    use std::io::Write;
    let mut child = Command::new("python3")
        .arg(root().join("tests").join(script))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write to python");
    let out = child.wait_with_output().expect("python ends");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Runs and parses stdout as JSON.
pub fn json(args: &[&str]) -> Value {
    let run = hookflow(args);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        )
    })
}

/// A temporary project: `rules/` and `templates/` filled from `(path, content)` pairs.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("rules")).expect("rules dir");
        for (path, content) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().expect("has parent")).expect("parent dir");
            std::fs::write(full, content).expect("write fixture");
        }
        Self { dir }
    }

    pub fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }

    /// `hookflow test --rules rules --event EVENT --format json` with an inline event.
    pub fn dry_run(&self, event: &Value, extra: &[&str]) -> Value {
        let event_path = self.dir.path().join("event.json");
        std::fs::write(&event_path, event.to_string()).expect("write event");
        let rules = self.path("rules");
        let ev = event_path.display().to_string();
        let mut args = vec!["test", "--rules", &rules, "--event", &ev, "--format", "json"];
        args.extend_from_slice(extra);
        let run = hookflow_in(self.dir.path(), &args, &[]);
        assert_eq!(run.code, 0, "stderr: {}", run.stderr);
        serde_json::from_str(&run.stdout).expect("JSON output")
    }
}
