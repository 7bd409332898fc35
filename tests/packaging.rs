//! The library as a distribution or a CMake user gets it: the versioned SONAME, the
//! installed layout of `c_examples/install.sh` (symlinks, stripped files, licenses), a
//! pkg-config consumer that runs without `LD_LIBRARY_PATH`, the ldconfig decision, and the
//! top-level `CMakeLists.txt` through `add_subdirectory`, `FetchContent` and `cmake --install`.
//!
//! The release library is built by `cargo build --release --lib` into this test binary's
//! target directory (a no-op when current); scratch files go to
//! `<target>/packaging-test/<test name>/`. Tools: `cc` (or `$CC`), `readelf`, `nm`,
//! `pkg-config`, `cmake`; a missing tool fails its test with a message naming it.
//!
//! Programs are always run with `LD_LIBRARY_PATH` removed: cargo sets it for tests (it
//! includes `<target>/release`), which would hide a library the loader could not find.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use common::library::{Library, cargo};
use common::process::{output, run, stdout};

fn paths() -> &'static Library {
    common::library::release()
}

/// The SONAME build.rs gives the library (the C ABI's major version, docs/packaging.md).
const SONAME: &str = "librmsprop.so.0";

/// What the consumer below prints: one optax step from 1.0 with lr 0.003 and gradient 2:
/// 1 - 0.003 * 2 / sqrt(0.1 * 4 + 1e-8) = 0.990513..., printed with 4 digits.
fn consumer_output() -> String {
    format!("consumer {} 0.9905\n", env!("CARGO_PKG_VERSION"))
}

const CONSUMER_C: &str = r#"#include <rmsprop.h>
#include <stdio.h>
int main(void) {
    RmspropOptions *o = NULL;
    RmspropOptimizer *opt = NULL;
    size_t n = 3;
    float p[3] = {1, 2, 3}, g[3] = {2, 4, 6};
    if (rmsprop_options_new(0.003, &o) != RMSPROP_OK) return 1;
    if (rmsprop_create(o, &n, 1, RMSPROP_DTYPE_F32, &opt) != RMSPROP_OK) return 1;
    rmsprop_options_free(o);
    if (rmsprop_step_f32(opt, p, g, n) != RMSPROP_OK) return 1;
    rmsprop_destroy(opt);
    printf("consumer %s %.4f\n", rmsprop_version_string(), (double)p[0]);
    return RMSPROP_VERSION_NUMBER == rmsprop_version_number() ? 0 : 1;
}
"#;

/// A fresh scratch directory for one test.
fn workdir(name: &str) -> PathBuf {
    let dir = paths().target.join("packaging-test").join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// A program run as a user would: no `LD_LIBRARY_PATH` (cargo sets one for tests).
fn run_program(exe: &Path) -> Output {
    output(Command::new(exe).env_remove("LD_LIBRARY_PATH"))
}

fn readelf(args: &[&str], file: &Path) -> String {
    stdout(&run(Command::new("readelf").args(args).arg(file)))
}

/// The SONAME of a shared library, from `readelf -d`.
fn soname(lib: &Path) -> Option<String> {
    readelf(&["-d"], lib)
        .lines()
        .find(|l| l.contains("(SONAME)"))
        .and_then(|l| l.split('[').nth(1))
        .and_then(|s| s.split(']').next())
        .map(str::to_string)
}

/// The DT_NEEDED entries of an ELF file.
fn needed(exe: &Path) -> Vec<String> {
    readelf(&["-d"], exe)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1).and_then(|s| s.split(']').next()))
        .map(str::to_string)
        .collect()
}

/// The section names of an ELF file (of every member, for an archive).
fn sections(file: &Path) -> Vec<String> {
    readelf(&["-S", "-W"], file)
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let rest = l.strip_prefix('[')?;
            let (_, after) = rest.split_once(']')?;
            after.split_whitespace().next().map(str::to_string)
        })
        .filter(|name| name.starts_with('.'))
        .collect()
}

/// The defined `rmsprop_*` dynamic symbols of a shared library.
fn exported(lib: &Path) -> Vec<String> {
    let out = run(Command::new("nm").args(["-D", "--defined-only"]).arg(lib));
    let mut v: Vec<String> = stdout(&out)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|s| s.starts_with("rmsprop_"))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// `install.sh prefix` with the test's library, extra environment, and no real ldconfig
/// unless the caller names one (tests must not touch the machine's loader cache).
fn install(prefix: &Path, env: &[(&str, &Path)]) -> Output {
    let p = paths();
    let mut cmd = Command::new("sh");
    cmd.arg(p.root.join("c_examples/install.sh"))
        .arg(prefix)
        .env("RMSPROP_LIB_DIR", &p.dir)
        .env("LDCONFIG", "false")
        .env_remove("DESTDIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

fn lib_version_suffix() -> String {
    format!(
        "{SONAME}.{}.{}",
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH")
    )
}

#[test]
fn built_library_has_the_versioned_soname_everywhere_it_is_named() {
    let p = paths();
    assert_eq!(
        soname(&p.dir.join("librmsprop.so")).as_deref(),
        Some(SONAME)
    );
    let build_rs = fs::read_to_string(p.root.join("build.rs")).unwrap();
    assert!(
        build_rs.contains(&format!("-Wl,-soname,{SONAME}\"")),
        "build.rs should link with -Wl,-soname,{SONAME}"
    );
    let cmake = fs::read_to_string(p.root.join("cmake/rmsprop-cargo.cmake")).unwrap();
    assert!(
        cmake.contains(&format!("set(RMSPROP_SONAME \"{SONAME}\")")),
        "cmake/rmsprop-cargo.cmake should name {SONAME}"
    );
}

#[test]
fn install_layout_is_versioned_stripped_and_licensed() {
    let p = paths();
    let dir = workdir("layout");
    let prefix = dir.join("prefix");
    install(&prefix, &[]);
    let lib = prefix.join("lib");
    let real = lib.join(lib_version_suffix());

    // The real file and the two links, relative so the tree can be moved or staged.
    assert!(
        real.is_file() && !real.is_symlink(),
        "{} should be a file",
        real.display()
    );
    assert_eq!(
        fs::read_link(lib.join(SONAME)).unwrap(),
        PathBuf::from(lib_version_suffix())
    );
    assert_eq!(
        fs::read_link(lib.join("librmsprop.so")).unwrap(),
        PathBuf::from(SONAME)
    );
    assert!(lib.join("librmsprop.a").is_file() && !lib.join("librmsprop.a").is_symlink());
    assert_eq!(soname(&real).as_deref(), Some(SONAME));

    // Stripped: no symbol table and no debug sections in the shared library ("stripped" to
    // `file`), no debug sections in any member of the archive. The build has debug info
    // (profile.release debug = 1), so the built files are checked to have had some.
    let built_so = sections(&p.dir.join("librmsprop.so"));
    assert!(
        built_so.iter().any(|s| s.starts_with(".debug")),
        "the built library has no debug info to strip: {built_so:?}"
    );
    let so = sections(&real);
    assert!(
        !so.iter().any(|s| s.starts_with(".debug") || s == ".symtab"),
        "installed shared library is not stripped: {so:?}"
    );
    let a = sections(&lib.join("librmsprop.a"));
    assert!(!a.is_empty(), "no sections read from the installed archive");
    assert!(
        !a.iter().any(|s| s.starts_with(".debug")),
        "installed static library keeps debug sections"
    );
    // Stripping kept the C API.
    let want = exported(&p.dir.join("librmsprop.so"));
    assert!(want.len() > 10, "too few exports: {want:?}");
    assert_eq!(exported(&real), want);

    for f in [
        "include/rmsprop.h",
        "include/rmsprop.hpp",
        "share/doc/rmsprop/LICENSE-MIT",
        "share/doc/rmsprop/LICENSE-APACHE",
        "lib/pkgconfig/rmsprop.pc",
        "lib/pkgconfig/rmsprop-static.pc",
        "lib/cmake/rmsprop/rmsprop-config.cmake",
        "lib/cmake/rmsprop/rmsprop-config-version.cmake",
    ] {
        assert!(prefix.join(f).is_file(), "{f} not installed");
    }

    // Installing again over the same prefix works (links replaced, not duplicated).
    install(&prefix, &[]);
    assert_eq!(
        fs::read_link(lib.join(SONAME)).unwrap(),
        PathBuf::from(lib_version_suffix())
    );

    // DESTDIR stages the same tree under another root; the files still name PREFIX.
    let stage = dir.join("stage");
    install(Path::new("/opt/rmsprop"), &[("DESTDIR", &stage)]);
    let staged = stage.join("opt/rmsprop");
    assert_eq!(
        fs::read_link(staged.join("lib").join(SONAME)).unwrap(),
        PathBuf::from(lib_version_suffix())
    );
    let pc = fs::read_to_string(staged.join("lib/pkgconfig/rmsprop.pc")).unwrap();
    assert!(pc.contains("prefix=/opt/rmsprop\n"), "{pc}");
}

#[test]
fn pkg_config_consumer_runs_without_ld_library_path() {
    let dir = workdir("pkg_config");
    let prefix = dir.join("prefix");
    let out = install(&prefix, &[]);
    // A temporary prefix is not searched by the loader: install.sh says what to do.
    assert!(
        stdout(&out).contains("-Wl,-rpath,$(pkg-config --variable=libdir rmsprop)"),
        "{}",
        stdout(&out)
    );
    let src = dir.join("consumer.c");
    fs::write(&src, CONSUMER_C).unwrap();
    let pkg = |args: &[&str]| -> Vec<String> {
        let out = run(Command::new("pkg-config")
            .args(args)
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")));
        stdout(&out)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let libdir = pkg(&["--variable=libdir", "rmsprop"]);
    assert_eq!(libdir, [prefix.join("lib").display().to_string()]);
    let libs = pkg(&["--libs", "rmsprop"]);
    assert!(
        !libs.iter().any(|f| f.contains("rpath")),
        "pkg-config files carry no rpath: {libs:?}"
    );

    let compile = |exe: &Path, extra: &[String]| {
        run(Command::new(cc())
            .args(["-std=c99", "-Wall", "-Wextra", "-Werror"])
            .args(pkg(&["--cflags", "rmsprop"]))
            .arg(&src)
            .arg("-o")
            .arg(exe)
            .args(&libs)
            .args(extra));
    };
    // The documented command for a prefix outside the loader's search path.
    let exe = dir.join("consumer");
    compile(&exe, &[format!("-Wl,-rpath,{}", libdir[0])]);
    assert_eq!(needed(&exe).iter().filter(|n| *n == SONAME).count(), 1);
    let out = run_program(&exe);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout(&out), consumer_output());

    // Without the rpath the loader does not find it: the step the documentation asks for
    // is needed, and the test above is not passing by accident.
    let bare = dir.join("consumer_no_rpath");
    compile(&bare, &[]);
    let out = run_program(&bare);
    assert!(!out.status.success(), "ran without rpath or ldconfig");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(SONAME),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The static module needs nothing at run time.
    let exe = dir.join("consumer_static");
    run(Command::new(cc())
        .args(pkg(&["--cflags", "rmsprop-static"]))
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .args(pkg(&["--libs", "rmsprop-static"])));
    assert!(!needed(&exe).iter().any(|n| n.contains("rmsprop")));
    assert_eq!(stdout(&run_program(&exe)), consumer_output());
}

/// A stand-in for ldconfig: `-v -N` lists `searched` as the loader's directory; any call
/// is appended to `log`.
fn fake_ldconfig(dir: &Path, searched: &Path) -> (PathBuf, PathBuf) {
    let script = dir.join("fake-ldconfig");
    let log = dir.join("ldconfig.log");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"call:$*\" >> '{log}'\n\
             if [ \"$1\" = -v ]; then echo '{searched}: (from test.conf:1)'; echo '\tlibc.so.6 -> libc.so.6'; fi\n",
            log = log.display(),
            searched = searched.display()
        ),
    )
    .unwrap();
    run(Command::new("chmod").arg("755").arg(&script));
    (script, log)
}

#[test]
fn install_runs_ldconfig_only_for_a_directory_the_loader_searches() {
    let dir = workdir("ldconfig");
    let root = is_root();

    // A prefix whose lib directory the (fake) loader configuration lists: ldconfig runs
    // (as root) or the user is told to run it.
    let prefix = dir.join("system");
    fs::create_dir_all(prefix.join("lib")).unwrap();
    let (fake, log) = fake_ldconfig(&dir, &prefix.join("lib"));
    let out = install(&prefix, &[("LDCONFIG", &fake)]);
    let calls = fs::read_to_string(&log).unwrap();
    if root {
        assert!(calls.lines().any(|l| l == "call:"), "{calls}");
        assert!(
            stdout(&out).contains("is loadable from"),
            "{}",
            stdout(&out)
        );
    } else {
        assert!(!calls.lines().any(|l| l == "call:"), "{calls}");
        assert!(stdout(&out).contains("run 'ldconfig' as root"));
    }

    // Any other prefix: no cache refresh, the rpath advice instead.
    fs::remove_file(&log).unwrap();
    let other = dir.join("custom");
    let out = install(&other, &[("LDCONFIG", &fake)]);
    let calls = fs::read_to_string(&log).unwrap_or_default();
    assert!(!calls.lines().any(|l| l == "call:"), "{calls}");
    assert!(stdout(&out).contains("is not searched by the dynamic linker"));

    // A staged (DESTDIR) install never consults ldconfig.
    let _ = fs::remove_file(&log);
    install(
        &prefix,
        &[("LDCONFIG", &fake), ("DESTDIR", &dir.join("stage"))],
    );
    assert!(!log.exists(), "ldconfig called for a DESTDIR install");
}

/// Whether the tests run as root (`id -u`), without libc calls.
fn is_root() -> bool {
    stdout(&run(Command::new("id").arg("-u"))).trim() == "0"
}

/// The CMake tests share the in-tree `librmsprop.so.0` link, which they delete to see the
/// build make it again: one at a time.
static CMAKE_LOCK: Mutex<()> = Mutex::new(());

/// Configure, build and run a CMake consumer of this repository; `how` is the CMake text
/// that makes the rmsprop targets available.
fn cmake_consumer(name: &str, how: &str) {
    let _guard = CMAKE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let p = paths();
    let dir = workdir(name);
    fs::write(dir.join("consumer.c"), CONSUMER_C).unwrap();
    fs::write(
        dir.join("CMakeLists.txt"),
        format!(
            "cmake_minimum_required(VERSION 3.16)\nproject(consumer C)\n{how}\n\
             if(NOT rmsprop_VERSION STREQUAL \"{v}\")\n  message(FATAL_ERROR \"rmsprop_VERSION=${{rmsprop_VERSION}}\")\nendif()\n\
             add_executable(consumer_shared consumer.c)\ntarget_link_libraries(consumer_shared PRIVATE rmsprop::rmsprop)\n\
             add_executable(consumer_static consumer.c)\ntarget_link_libraries(consumer_static PRIVATE rmsprop::rmsprop_static)\n",
            v = env!("CARGO_PKG_VERSION")
        ),
    )
    .unwrap();
    let link = p.dir.join(SONAME);
    let _ = fs::remove_file(&link);
    let build = dir.join("build");
    run(Command::new("cmake")
        .arg("-S")
        .arg(&dir)
        .arg("-B")
        .arg(&build)
        .arg("-DCMAKE_BUILD_TYPE=Release")
        .arg(format!("-DRMSPROP_CARGO_TARGET_DIR={}", p.target.display()))
        .arg(format!("-DCARGO_EXECUTABLE={}", cargo())));
    run(Command::new("cmake").arg("--build").arg(&build).arg("-j2"));
    assert_eq!(
        fs::read_link(&link).ok(),
        Some(PathBuf::from("librmsprop.so")),
        "the build should link {} -> librmsprop.so",
        link.display()
    );
    // Not the examples: a subproject builds only what its parent asks for.
    assert!(
        !build.join("rmsprop/c_examples").exists()
            && !build.join("_deps/rmsprop-build/c_examples").exists()
    );
    for (exe, shared) in [("consumer_shared", true), ("consumer_static", false)] {
        let exe = build.join(exe);
        let needs = needed(&exe);
        assert_eq!(
            needs.iter().any(|n| n == SONAME),
            shared,
            "{}: {needs:?}",
            exe.display()
        );
        let out = run_program(&exe);
        assert!(
            out.status.success(),
            "{}: {}",
            exe.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout(&out), consumer_output(), "{}", exe.display());
    }
}

#[test]
fn cmake_add_subdirectory_builds_and_runs_a_program() {
    let root = paths().root.display().to_string();
    cmake_consumer(
        "cmake_add_subdirectory",
        &format!("add_subdirectory(\"{root}\" rmsprop)"),
    );
}

#[test]
fn cmake_fetchcontent_builds_and_runs_a_program() {
    let root = paths().root.display().to_string();
    cmake_consumer(
        "cmake_fetchcontent",
        &format!(
            "include(FetchContent)\nFetchContent_Declare(rmsprop SOURCE_DIR \"{root}\")\n\
             FetchContent_MakeAvailable(rmsprop)"
        ),
    );
}

#[test]
fn cmake_install_of_the_top_level_project_installs_the_layout() {
    let _guard = CMAKE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let p = paths();
    let dir = workdir("cmake_install");
    let build = dir.join("build");
    let prefix = dir.join("prefix");
    run(Command::new("cmake")
        .arg("-S")
        .arg(&p.root)
        .arg("-B")
        .arg(&build)
        .arg("-DRMSPROP_BUILD_EXAMPLES=OFF")
        .arg("-DCMAKE_INSTALL_LIBDIR=lib64")
        .arg(format!("-DRMSPROP_CARGO_TARGET_DIR={}", p.target.display()))
        .arg(format!("-DCARGO_EXECUTABLE={}", cargo())));
    run(Command::new("cmake").arg("--build").arg(&build));
    run(Command::new("cmake")
        .arg("--install")
        .arg(&build)
        .arg("--prefix")
        .arg(&prefix)
        .env("LDCONFIG", "false"));
    let lib = prefix.join("lib64");
    assert_eq!(
        fs::read_link(lib.join(SONAME)).unwrap(),
        PathBuf::from(lib_version_suffix())
    );
    assert_eq!(
        soname(&lib.join(lib_version_suffix())).as_deref(),
        Some(SONAME)
    );
    let pc = fs::read_to_string(lib.join("pkgconfig/rmsprop.pc")).unwrap();
    assert!(pc.contains("libdir=${prefix}/lib64\n"), "{pc}");
}
