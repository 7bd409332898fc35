//! One more language through the C ABI: the Go (cgo) example `c_examples/go/` runs the
//! documentation's quadratic and prints exactly what `c_examples/quadratic.c` prints.
//!
//! The release library is built by `cargo build --release --lib` into this test binary's
//! target directory, with the `librmsprop.so.0 -> librmsprop.so` link the programs load
//! (the SONAME). Go runs offline with its caches under `<target>/go-test/` (no module is
//! downloaded: the example has no dependencies). Tools: `go` (Debian: golang-go), `gofmt`,
//! `cc` (or `$CC`), `readelf`; a missing tool fails the test with a message naming it.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::process::{run, stdout};

/// The lines optax's documentation prints for this example (c_examples/quadratic.c).
const QUADRATIC_OUTPUT: &str = "Objective function:  14.0
Objective function: 1.39E+01
Objective function: 1.38E+01
Objective function: 1.37E+01
Objective function: 1.37E+01
Objective function: 1.36E+01
";

const SONAME: &str = "librmsprop.so.0";

/// The DT_NEEDED entries of an ELF file.
fn needed(exe: &Path) -> Vec<String> {
    stdout(&run(Command::new("readelf").arg("-d").arg(exe)))
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1).and_then(|s| s.split(']').next()))
        .map(str::to_string)
        .collect()
}

#[test]
fn go_example_prints_what_the_c_example_prints() {
    let lib = common::library::release();
    let (root, target, release) = (&lib.root, &lib.target, &lib.dir);
    let work = target.join("go-test");
    let _ = fs::remove_dir_all(work.join("bin"));
    fs::create_dir_all(work.join("bin")).unwrap();
    let go_dir = root.join("c_examples/go");

    // gofmt is Go's style check, the analogue of cargo fmt --check.
    let unformatted = stdout(&run(Command::new("gofmt").arg("-l").arg(&go_dir)));
    assert!(unformatted.is_empty(), "gofmt -l lists: {unformatted}");

    // The example's own #cgo flags point at <repo>/target/release; another target
    // directory is added with CGO_LDFLAGS (searched first).
    let exe = work.join("bin/quadratic_go");
    let mut go = Command::new("go");
    go.current_dir(&go_dir)
        .args(["build", "-o"])
        .arg(&exe)
        .arg(".")
        .env("GOCACHE", work.join("cache"))
        .env("GOPATH", work.join("gopath"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "1");
    if *release != root.join("target/release") {
        go.env(
            "CGO_LDFLAGS",
            format!("-L{0} -Wl,-rpath,{0}", release.display()),
        );
    }
    run(&mut go);
    let needs = needed(&exe);
    assert!(
        needs.iter().any(|n| n == SONAME),
        "the Go program should load {SONAME}: {needs:?}"
    );

    // The C example, built against the same library.
    let c_exe = work.join("bin/quadratic_c");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    run(Command::new(cc)
        .args(["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"])
        .arg(format!("-I{}", root.join("include").display()))
        .arg(root.join("c_examples/quadratic.c"))
        .arg("-o")
        .arg(&c_exe)
        .arg(format!("-L{}", release.display()))
        .arg("-lrmsprop")
        .arg(format!("-Wl,-rpath,{}", release.display())));

    // Run both as a user would: without the LD_LIBRARY_PATH cargo sets for tests.
    let go_out = run(Command::new(&exe).env_remove("LD_LIBRARY_PATH"));
    let c_out = run(Command::new(&c_exe).env_remove("LD_LIBRARY_PATH"));
    assert_eq!(stdout(&c_out), QUADRATIC_OUTPUT, "quadratic.c");
    assert_eq!(stdout(&go_out), stdout(&c_out), "Go and C outputs differ");
    assert!(
        go_out.stderr.is_empty(),
        "the Go example wrote to stderr: {}",
        String::from_utf8_lossy(&go_out.stderr)
    );
}
