//! fork() safety from C (the Python side, `multiprocessing` with the fork start method, is
//! `tests/python/test_fork.py`). `tests/c/fork.c` warms a handle on rayon's global pool and one
//! with its own pool, forks, and checks that the child (and a grandchild) step to the same
//! bits as the parent, and that creating, re-threading and destroying handles in the child
//! does not hang. The C program kills a child that has not finished within its time limit
//! (a hang) and reports it as a failure; this test also kills the C program itself if it
//! outlives a larger limit. Neither is a timing assertion: a correct library finishes in
//! well under a second, a broken one never finishes.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding the release `librmsprop.so` (tests/common/library.rs).
fn lib_dir() -> PathBuf {
    common::library::release().dir.clone()
}

/// A child that hangs is killed after this many seconds (a hang, reported as failure).
const CHILD_LIMIT_S: u64 = 60;

#[test]
fn forked_children_step_to_the_parents_bits() {
    let lib = lib_dir();
    let out_dir = lib.join("fork-c");
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join("fork");
    let root = manifest_dir();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(cc)
        .args(["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join("tests/c/fork.c"))
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lrmsprop", "-o"])
        .arg(&exe)
        .status()
        .expect("run the C compiler");
    assert!(st.success(), "tests/c/fork.c does not compile");

    let mut child = Command::new(&exe)
        .arg(CHILD_LIMIT_S.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the fork test");
    // The C program enforces the limit on its children; this guards the program itself.
    let start = Instant::now();
    let limit = Duration::from_secs(3 * CHILD_LIMIT_S);
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("collect output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && stdout.contains("all passed"),
        "fork test failed ({}):\n{stdout}",
        out.status
    );
}
