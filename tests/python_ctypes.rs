//! Runs the Python package's tests (`python -m pytest -q tests/python`) against the
//! `librmsprop.so` that cargo built for this test run (passed as `RMSPROP_LIBRARY`; the
//! tests import the package from `python/`).
//!
//! The interpreter is `$RMSPROP_TEST_PYTHON` when set (tests/run_all.sh points it at the
//! venv it creates), else `python3`. numpy and pytest are required: when any is missing this
//! test fails with an install hint, it never skips (a CI that lacks them must not pass
//! silently).

use std::path::{Path, PathBuf};
use std::process::Command;

/// `<target>/<profile>/librmsprop.so` next to this test binary (`<target>/<profile>/deps/`),
/// built by cargo before the test ran; built with the same profile if missing.
fn shared_library() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in <target>/<profile>/deps")
        .to_path_buf();
    let so = profile_dir.join("librmsprop.so");
    if !so.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--lib"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        assert!(
            cmd.status().expect("run cargo build").success(),
            "cargo build --lib failed"
        );
    }
    assert!(so.exists(), "no shared library at {}", so.display());
    so
}

fn python() -> String {
    std::env::var("RMSPROP_TEST_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

#[test]
fn python_ctypes_binding_passes_pytest() {
    let py = python();
    let version = Command::new(&py).arg("--version").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "`{py}` was not found: the Python binding tests need python3 (Debian: `apt-get install \
         python3`; or set RMSPROP_TEST_PYTHON); this test never skips"
    );
    let deps = Command::new(&py)
        .args([
            "-c",
            "import numpy, pytest; print(numpy.__version__, pytest.__version__)",
        ])
        .output()
        .expect("run python3");
    assert!(
        deps.status.success(),
        "numpy and pytest are required for the Python binding tests (in a venv: `python3 -m \
         venv .venv && .venv/bin/pip install numpy pytest`, then RMSPROP_TEST_PYTHON=.venv/bin/python); \
         this test never skips:\n{}",
        String::from_utf8_lossy(&deps.stderr)
    );
    let so = shared_library();
    let out = Command::new(&py)
        .args([
            "-m",
            "pytest",
            "-q",
            "-rs", // skip reasons in the summary: a skipped module or test says why
            "-p",
            "no:cacheprovider",
            "tests/python",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RMSPROP_LIBRARY", &so)
        .env_remove("RMSPROP_LIB")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run pytest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "pytest failed (library {}):\n{stdout}\n{stderr}",
        so.display()
    );
    assert!(stdout.contains(" passed"), "pytest ran no test:\n{stdout}");
}
