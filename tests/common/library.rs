//! Locating the built library: the one place the tests find `librmsprop.so`,
//! `librmsprop.a` and the headers.
//!
//! Integration tests cannot depend on cargo's release artifacts, so the first caller in a
//! test process runs `cargo build --release --lib` (the `cargo` that runs the tests,
//! `$CARGO`) into the target directory this test binary was built into: the directory
//! holding `CACHEDIR.TAG` above the test executable, which is where `$CARGO_TARGET_DIR`
//! (or `--target-dir`) put it; failing that `$CARGO_TARGET_DIR`, then `<root>/target`.
//! Cargo's fingerprints make the build a sub-second no-op when the library is current.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where the release build of the library and its headers are.
#[derive(Debug)]
pub struct Library {
    /// The crate root (`CARGO_MANIFEST_DIR`).
    pub root: PathBuf,
    /// The cargo target directory.
    pub target: PathBuf,
    /// `<target>/release`: the directory holding both libraries (`-L` / rpath).
    pub dir: PathBuf,
    /// `<target>/release/librmsprop.so`.
    pub shared: PathBuf,
    /// `<target>/release/librmsprop.a`.
    pub static_lib: PathBuf,
    /// `<root>/include`: `rmsprop.h` and `rmsprop.hpp`.
    pub include: PathBuf,
}

/// The cargo that runs the tests.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string())
}

/// The cargo target directory this test binary was built into.
pub fn target_dir() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            if dir.join("CACHEDIR.TAG").is_file() {
                return dir.to_path_buf();
            }
        }
    }
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
    }
}

/// The release library, built (once per test process) if needed; panics with cargo's
/// output when the build fails or an artifact is missing afterwards.
pub fn release() -> &'static Library {
    static LIB: OnceLock<Result<Library, String>> = OnceLock::new();
    match LIB.get_or_init(build_release) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    }
}

fn build_release() -> Result<Library, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = target_dir();
    let out = Command::new(cargo())
        .args(["build", "--release", "--lib", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cargo()))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build --release --lib failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let dir = target.join("release");
    let lib = Library {
        shared: dir.join("librmsprop.so"),
        static_lib: dir.join("librmsprop.a"),
        include: root.join("include"),
        root,
        target,
        dir,
    };
    for f in [&lib.shared, &lib.static_lib] {
        if !f.is_file() {
            return Err(format!("{} missing after cargo build", f.display()));
        }
    }
    // Programs linked against librmsprop.so load it by its SONAME, librmsprop.so.0.
    let link = lib.dir.join("librmsprop.so.0");
    if std::fs::read_link(&link).ok() != Some(PathBuf::from("librmsprop.so")) {
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("librmsprop.so", &link)
            .map_err(|e| format!("symlink {}: {e}", link.display()))?;
    }
    Ok(lib)
}
