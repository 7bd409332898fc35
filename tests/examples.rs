//! The C ABI as a C or C++ user meets it: the real `librmsprop.so` / `librmsprop.a`, the
//! generated `include/rmsprop.h`, the C++ wrapper `include/rmsprop.hpp`, the examples in
//! `c_examples/`, the CMake project and the install layout (CMake package, pkg-config).
//!
//! How the artifacts are found: `common::library::release()` (builds the release library
//! into this test binary's target directory once, honouring `$CARGO_TARGET_DIR`). Scratch
//! files go to `<target>/examples-test/<test name>/`.
//!
//! Tools: `$CC` (default `cc`) and `$CXX` (default `c++`), GNU-style flags; `nm`, `readelf`,
//! `cmake` + `ctest`, `pkg-config` and `valgrind` must be installed: a missing tool fails
//! its test with a message naming it, never a silent skip.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `cargo rustc --release -- --print native-static-libs` prints for the staticlib on
/// Linux/glibc (less the implicit `-lc`). The same list is in cmake/rmsprop-cargo.cmake and
/// c_examples/install.sh; `static_system_libs_agree` checks that.
const STATIC_SYSTEM_LIBS: &[&str] = &["gcc_s", "util", "rt", "pthread", "m", "dl"];

const QUADRATIC_OUTPUT: &str = "Objective function:  14.0
Objective function: 1.39E+01
Objective function: 1.38E+01
Objective function: 1.37E+01
Objective function: 1.37E+01
Objective function: 1.36E+01
";

mod common;

use common::library::{self, Library, cargo};
use common::process::{run, stdout};

fn paths() -> &'static Library {
    library::release()
}

/// A fresh scratch directory for one test.
fn workdir(name: &str) -> PathBuf {
    let dir = paths().target.join("examples-test").join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// A tool the test cannot do without: fail loudly when it is missing.
fn require_tool(tool: &str, install_hint: &str) {
    let found = Command::new(tool).arg("--version").output().is_ok();
    assert!(
        found,
        "`{tool}` is required by this test and was not found on PATH: install it ({install_hint})"
    );
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Lang {
    C,
    Cxx,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Link {
    Shared,
    Static,
}

impl Link {
    fn suffix(self) -> &'static str {
        match self {
            Link::Shared => "shared",
            Link::Static => "static",
        }
    }
}

fn compiler(lang: Lang) -> String {
    match lang {
        Lang::C => std::env::var("CC").unwrap_or_else(|_| "cc".into()),
        Lang::Cxx => std::env::var("CXX").unwrap_or_else(|_| "c++".into()),
    }
}

fn warning_flags(lang: Lang) -> Vec<&'static str> {
    let std = match lang {
        Lang::C => "-std=c99",
        Lang::Cxx => "-std=c++17",
    };
    vec![std, "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]
}

/// The flags that link against the library built by cargo.
fn link_flags(link: Link) -> Vec<String> {
    let p = paths();
    let mut v = Vec::new();
    match link {
        Link::Shared => {
            v.push(format!("-L{}", p.dir.display()));
            v.push("-lrmsprop".into());
            v.push(format!("-Wl,-rpath,{}", p.dir.display()));
        }
        Link::Static => {
            v.push(p.static_lib.display().to_string());
            v.extend(STATIC_SYSTEM_LIBS.iter().map(|l| format!("-l{l}")));
        }
    }
    v
}

/// Compile and link `sources` into `dir/name` with warnings as errors.
fn build(
    lang: Lang,
    sources: &[PathBuf],
    link: Link,
    dir: &Path,
    name: &str,
    extra: &[&str],
) -> PathBuf {
    let exe = dir.join(name);
    let mut cmd = Command::new(compiler(lang));
    cmd.args(warning_flags(lang))
        .arg(format!("-I{}", paths().include.display()))
        .args(extra)
        .args(sources)
        .arg("-o")
        .arg(&exe)
        .args(link_flags(link))
        .arg("-lm");
    run(&mut cmd);
    exe
}

fn example(file: &str) -> PathBuf {
    paths().root.join("c_examples").join(file)
}

fn digits_csv() -> PathBuf {
    example("data/digits.csv")
}

/// The DT_NEEDED entries of an ELF file.
fn needed(exe: &Path) -> Vec<String> {
    let out = run(Command::new("readelf").arg("-d").arg(exe));
    stdout(&out)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1).and_then(|s| s.split(']').next()))
        .map(str::to_string)
        .collect()
}

/// The shared build records "librmsprop.so.0" (the SONAME, no build path); the static one
/// does not need the library at all.
fn check_linkage(exe: &Path, link: Link) {
    let needed = needed(exe);
    let uses_so = needed.iter().any(|n| n.contains("rmsprop"));
    match link {
        Link::Shared => assert!(
            needed.iter().any(|n| n == "librmsprop.so.0"),
            "{} should need librmsprop.so.0 by its SONAME, needs {needed:?}",
            exe.display()
        ),
        Link::Static => assert!(
            !uses_so,
            "{} should not need librmsprop.so: {needed:?}",
            exe.display()
        ),
    }
}

#[test]
fn quadratic_prints_optax_documentation_output() {
    let dir = workdir("quadratic");
    for link in [Link::Shared, Link::Static] {
        let exe = build(
            Lang::C,
            &[example("quadratic.c")],
            link,
            &dir,
            &format!("quadratic_{}", link.suffix()),
            &[],
        );
        check_linkage(&exe, link);
        let out = run(&mut Command::new(&exe));
        assert_eq!(stdout(&out), QUADRATIC_OUTPUT, "quadratic ({link:?})");
        assert!(
            out.stderr.is_empty(),
            "quadratic ({link:?}) wrote to stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The accuracy on the program's last line, "final test accuracy: 0.xxxx".
fn final_accuracy(output: &str) -> f64 {
    let last = output.lines().last().unwrap_or("");
    let value = last
        .strip_prefix("final test accuracy: ")
        .unwrap_or_else(|| panic!("last line is not the final accuracy: {last:?}\n{output}"));
    value
        .parse()
        .unwrap_or_else(|e| panic!("bad accuracy {value:?}: {e}"))
}

#[test]
fn mlp_digits_learns_the_digits() {
    let dir = workdir("mlp_digits");
    let mut outputs = Vec::new();
    for link in [Link::Shared, Link::Static] {
        let exe = build(
            Lang::C,
            &[example("mlp_digits.c")],
            link,
            &dir,
            &format!("mlp_digits_{}", link.suffix()),
            &[],
        );
        check_linkage(&exe, link);
        let out = run(Command::new(&exe).arg(digits_csv()));
        let text = stdout(&out);
        let acc = final_accuracy(&text);
        assert!(
            acc > 0.9,
            "final test accuracy {acc} <= 0.9 ({link:?}):\n{text}"
        );
        let epochs = text.lines().filter(|l| l.starts_with("epoch ")).count();
        assert_eq!(epochs, 25, "one line per epoch expected:\n{text}");
        assert!(
            text.contains("digits: 1797 images, 1438 train, 359 test"),
            "{text}"
        );
        // 45 batches of 32 per epoch over 1438 examples.
        assert!(text.contains("\nsteps: 1125\n"), "{text}");
        // Falling training loss: the first epoch's is well above the last one's.
        let loss = |line: &str| -> f64 {
            let rest = line.split("train loss ").nth(1).expect("train loss column");
            rest.split_whitespace().next().unwrap().parse().unwrap()
        };
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("epoch ")).collect();
        assert!(
            loss(lines[0]) > 4.0 * loss(lines[lines.len() - 1]),
            "{text}"
        );
        outputs.push(text);
    }
    // A fixed seed: the shared and the static build print the same numbers.
    assert_eq!(outputs[0], outputs[1], "shared and static runs differ");

    // Errors are reported, with a non-zero status.
    let exe = dir.join("mlp_digits_shared");
    let out = Command::new(&exe)
        .arg(dir.join("no-such-file.csv"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open"));
    let out = Command::new(&exe)
        .arg(digits_csv())
        .arg("zero")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
    // A short run below the bar exits with status 2.
    let out = Command::new(&exe)
        .arg(digits_csv())
        .arg("1")
        .output()
        .unwrap();
    let acc = final_accuracy(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(if acc > 0.9 { 0 } else { 2 }));
}

#[test]
fn cpp_example_runs() {
    let dir = workdir("cpp_example");
    for link in [Link::Shared, Link::Static] {
        let exe = build(
            Lang::Cxx,
            &[example("cpp_example.cpp")],
            link,
            &dir,
            &format!("cpp_example_{}", link.suffix()),
            &[],
        );
        check_linkage(&exe, link);
        let text = stdout(&run(&mut Command::new(&exe)));
        assert!(
            text.starts_with(QUADRATIC_OUTPUT),
            "({link:?}) quadratic part:\n{text}"
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[6].starts_with(
                "caught rmsprop::Error RMSPROP_ERR_INVALID_HYPERPARAMETER (status 3): "
            ) && lines[6].contains("decay")
                && lines[6].contains("1.5"),
            "{}",
            lines[6]
        );
        // Checkpoints. The size is what the Rust crate encodes for the same optimizer.
        let size = checkpoint_size_of_cpp_example();
        assert_eq!(
            &lines[7..14],
            [
                format!("checkpoint {size} bytes (size {size}), resumed 2 tensors: identical")
                    .as_str(),
                "caught RMSPROP_ERR_BUFFER_TOO_SMALL, buffer untouched",
                "file round trip: identical, lr 0.0100",
                "missing file: RMSPROP_ERR_IO, optimizer unchanged",
                "adopted 2 tensors, 5 elements: identical; released: yes",
                "adopt(nullptr): RMSPROP_ERR_NULL_POINTER",
                "after set_initial_scale(0.5) and reset: nu[1] = {0.50, 0.50}, steps 0",
            ],
            "({link:?}) checkpoint part:\n{text}"
        );
        assert_eq!(
            lines[14],
            "steps 10, next lr 0.0100, tensors 2, elements 6, threads 1, has mu yes"
        );
        let loss: f64 = lines[15]
            .strip_prefix("loss ")
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{}", lines[15]));
        assert!(
            loss < 30.5 && loss > 0.0,
            "loss {loss} should fall below 30.5"
        );
        assert_eq!(
            &lines[16..],
            [
                "caught RMSPROP_ERR_WRONG_DTYPE",
                "moved: empty -> handle",
                "done"
            ]
        );
    }
}

/// The checkpoint size of cpp_example's `checkpoints()` optimizer (f32, centered, momentum
/// 0.9, tensors {3, 2}), from the Rust crate's own encoder.
fn checkpoint_size_of_cpp_example() -> usize {
    let mut c = rmsprop::Config::new(0.01);
    c.centered = true;
    c.momentum = Some(0.9);
    let opt = rmsprop::Optimizer::<f32>::new(c, &[3, 2]).expect("optimizer");
    rmsprop::checkpoint::encode(&opt).len()
}

#[test]
fn header_compiles_alone_with_warnings_as_errors() {
    let dir = workdir("header_alone");
    let tu = dir.join("only_header.c");
    fs::write(&tu, "#include <rmsprop.h>\n").unwrap();
    let tu_cpp = dir.join("only_header.cpp");
    fs::write(&tu_cpp, "#include <rmsprop.h>\n").unwrap();
    let tu_hpp = dir.join("only_hpp.cpp");
    fs::write(&tu_hpp, "#include <rmsprop.hpp>\n").unwrap();
    let strict = ["-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only"];
    let cases: [(Lang, &str, &PathBuf, &[&str]); 7] = [
        (
            Lang::C,
            "-std=c99",
            &tu,
            &["-Wstrict-prototypes", "-Wmissing-prototypes"],
        ),
        (Lang::C, "-std=c11", &tu, &[]),
        (Lang::C, "-std=c17", &tu, &[]),
        (Lang::Cxx, "-std=c++11", &tu_cpp, &[]),
        (Lang::Cxx, "-std=c++17", &tu_cpp, &["-Wold-style-cast"]),
        (
            Lang::Cxx,
            "-std=c++17",
            &tu_hpp,
            &[
                "-Wconversion",
                "-Wshadow",
                "-Wold-style-cast",
                "-Wnon-virtual-dtor",
            ],
        ),
        (
            Lang::Cxx,
            "-std=c++20",
            &tu_hpp,
            &["-Wconversion", "-Wshadow"],
        ),
    ];
    for (lang, std, file, extra) in cases {
        run(Command::new(compiler(lang))
            .arg(std)
            .args(strict)
            .args(extra)
            .arg(format!("-I{}", paths().include.display()))
            .arg(file));
    }
}

#[test]
fn two_translation_units_link_together() {
    let dir = workdir("two_tus");
    let a = dir.join("a.c");
    let b = dir.join("b.c");
    fs::write(
        &a,
        "#include <rmsprop.h>\n#include <stdio.h>\nint other(void);\n\
         int main(void) {\n  printf(\"%u %d\\n\", rmsprop_version_number(), other());\n  return 0;\n}\n",
    )
    .unwrap();
    fs::write(
        &b,
        "#include <rmsprop.h>\nint other(void);\n\
         int other(void) {\n  RmspropOptions *o = NULL;\n  RmspropStatus s = rmsprop_options_new(0.1, &o);\n\
         \n  rmsprop_options_free(o);\n  return s;\n}\n",
    )
    .unwrap();
    // The C++ wrapper is header-only: everything in it is inline, so two TUs link too.
    let x = dir.join("x.cpp");
    let y = dir.join("y.cpp");
    fs::write(
        &x,
        "#include <rmsprop.hpp>\n#include <cstdio>\ndouble other();\n\
         int main() { std::printf(\"%.3f %.3f\\n\", rmsprop::Schedule::constant(0.5).value(0), other()); }\n",
    )
    .unwrap();
    fs::write(
        &y,
        "#include <rmsprop.hpp>\ndouble other();\n\
         double other() { rmsprop::Optimizer o(rmsprop::Options(0.25), {2}); return o.current_learning_rate(); }\n",
    )
    .unwrap();
    for link in [Link::Shared, Link::Static] {
        let exe = build(
            Lang::C,
            &[a.clone(), b.clone()],
            link,
            &dir,
            &format!("c_{}", link.suffix()),
            &[],
        );
        let want = format!("{} 0\n", expected_version_number());
        assert_eq!(stdout(&run(&mut Command::new(&exe))), want);
        let exe = build(
            Lang::Cxx,
            &[x.clone(), y.clone()],
            link,
            &dir,
            &format!("cpp_{}", link.suffix()),
            &[],
        );
        assert_eq!(stdout(&run(&mut Command::new(&exe))), "0.500 0.250\n");
    }
}

fn header_functions() -> (BTreeSet<String>, Vec<String>) {
    common::header::functions()
}

/// The defined symbols `nm` lists, with their kind letter ("T" for code).
fn defined_symbols(nm_args: &[&str], file: &Path) -> Vec<(String, String)> {
    let out = run(Command::new("nm").args(nm_args).arg(file));
    stdout(&out)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().rev();
            let name = f.next()?;
            let kind = f.next()?;
            Some((name.to_string(), kind.to_string()))
        })
        .collect()
}

#[test]
fn shared_library_exports_exactly_the_header_functions() {
    let (declared, _) = header_functions();
    assert!(
        declared.len() > 40,
        "too few functions found in rmsprop.h: {declared:?}"
    );
    assert!(
        declared.contains("rmsprop_step_tensors_f32")
            && declared.contains("rmsprop_last_error_message")
    );

    // librmsprop.so: its dynamic symbols are exactly the declared functions, as code.
    let so = paths().shared.clone();
    let dynamic = defined_symbols(&["-D", "--defined-only"], &so);
    let exported: BTreeSet<String> = dynamic
        .iter()
        .filter(|(n, _)| n.starts_with("rmsprop_"))
        .map(|(n, _)| n.clone())
        .collect();
    let missing: Vec<_> = declared.difference(&exported).collect();
    let extra: Vec<_> = exported.difference(&declared).collect();
    assert!(
        missing.is_empty(),
        "declared in rmsprop.h but not exported by librmsprop.so: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "exported by librmsprop.so but not declared in rmsprop.h: {extra:?}"
    );
    let not_code: Vec<_> = dynamic
        .iter()
        .filter(|(n, k)| n.starts_with("rmsprop_") && k != "T")
        .collect();
    assert!(
        not_code.is_empty(),
        "exported rmsprop_* data symbols: {not_code:?}"
    );
    // Nothing else leaks into the ABI (no Rust-mangled names, no rust_eh_personality);
    // only the linker's own markers are tolerated.
    let linker = ["_init", "_fini", "__bss_start", "_edata", "_end"];
    let foreign: Vec<_> = dynamic
        .iter()
        .filter(|(n, _)| !n.starts_with("rmsprop_") && !linker.contains(&n.as_str()))
        .collect();
    assert!(
        foreign.is_empty(),
        "unexpected exported symbols: {foreign:?}"
    );

    // librmsprop.a defines the same functions.
    let a = paths().static_lib.clone();
    let in_static: BTreeSet<String> = defined_symbols(&["--defined-only"], &a)
        .into_iter()
        .filter(|(n, k)| n.starts_with("rmsprop_") && k == "T")
        .map(|(n, _)| n)
        .collect();
    let missing: Vec<_> = declared.difference(&in_static).collect();
    let extra: Vec<_> = in_static.difference(&declared).collect();
    assert!(
        missing.is_empty(),
        "declared in rmsprop.h but not defined in librmsprop.a: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "global rmsprop_* functions in librmsprop.a not declared in rmsprop.h: {extra:?}"
    );
}

#[test]
fn header_declares_each_function_once() {
    let (_, repeated) = header_functions();
    assert!(
        repeated.is_empty(),
        "rmsprop.h declares these functions more than once (cbindgen parses a source file twice?): {repeated:?}"
    );
}

fn expected_version_number() -> u32 {
    let p = |s: &str| s.parse::<u32>().unwrap();
    p(env!("CARGO_PKG_VERSION_MAJOR")) * 10000
        + p(env!("CARGO_PKG_VERSION_MINOR")) * 100
        + p(env!("CARGO_PKG_VERSION_PATCH"))
}

#[test]
fn header_version_matches_library_version() {
    let dir = workdir("version");
    let src = dir.join("version.c");
    fs::write(
        &src,
        r#"#include <rmsprop.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    unsigned lib = rmsprop_version_number();
    const char *s = rmsprop_version_string();
    printf("%d %u %s %s\n", RMSPROP_VERSION_NUMBER, lib, RMSPROP_VERSION_STRING, s);
    if ((unsigned)RMSPROP_VERSION_NUMBER != lib) return 1;
    if (strcmp(RMSPROP_VERSION_STRING, s) != 0) return 2;
    if (RMSPROP_VERSION_NUMBER != RMSPROP_VERSION_MAJOR * 10000 + RMSPROP_VERSION_MINOR * 100 + RMSPROP_VERSION_PATCH) return 3;
    return 0;
}
"#,
    )
    .unwrap();
    let n = expected_version_number();
    let v = env!("CARGO_PKG_VERSION");
    for link in [Link::Shared, Link::Static] {
        let exe = build(
            Lang::C,
            std::slice::from_ref(&src),
            link,
            &dir,
            &format!("version_{}", link.suffix()),
            &[],
        );
        assert_eq!(
            stdout(&run(&mut Command::new(&exe))),
            format!("{n} {n} {v} {v}\n")
        );
    }
}

#[test]
fn examples_pass_valgrind() {
    require_tool("valgrind", "apt-get install valgrind");
    let dir = workdir("valgrind");
    let programs: [(Lang, &str, Vec<String>); 3] = [
        (Lang::C, "quadratic.c", vec![]),
        (
            Lang::C,
            "mlp_digits.c",
            vec![digits_csv().display().to_string(), "1".into()],
        ),
        (Lang::Cxx, "cpp_example.cpp", vec![]),
    ];
    for (lang, file, args) in programs {
        let name = file.split('.').next().unwrap();
        let exe = build(lang, &[example(file)], Link::Shared, &dir, name, &["-g"]);
        // rayon's global pool stays "still reachable" at exit; that is not a leak.
        let out = Command::new("valgrind")
            .args([
                "--error-exitcode=99",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite,indirect",
                "--quiet",
            ])
            .arg(&exe)
            .args(&args)
            .output()
            .expect("run valgrind");
        // mlp_digits exits with 2 when one epoch does not reach 0.9 accuracy; that is fine here.
        let ok = out.status.success() || (name == "mlp_digits" && out.status.code() == Some(2));
        assert!(
            ok,
            "valgrind found errors in {name} ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn cmake_common(cmd: &mut Command) -> &mut Command {
    let p = paths();
    cmd.arg(format!("-DCARGO_EXECUTABLE={}", cargo()))
        .arg(format!("-DRMSPROP_CARGO_TARGET_DIR={}", p.target.display()))
        .arg(format!("-DCMAKE_C_COMPILER={}", compiler(Lang::C)))
        .arg(format!("-DCMAKE_CXX_COMPILER={}", compiler(Lang::Cxx)))
}

#[test]
fn cmake_project_builds_and_ctest_passes() {
    require_tool("cmake", "apt-get install cmake");
    require_tool("ctest", "apt-get install cmake");
    let dir = workdir("cmake");
    let build_dir = dir.join("build");
    run(cmake_common(
        Command::new("cmake")
            .arg("-S")
            .arg(paths().root.join("c_examples"))
            .arg("-B")
            .arg(&build_dir),
    ));
    run(Command::new("cmake")
        .arg("--build")
        .arg(&build_dir)
        .arg("-j2"));
    let out = run(Command::new("ctest")
        .arg("--test-dir")
        .arg(&build_dir)
        .arg("--output-on-failure"));
    let text = stdout(&out);
    assert!(
        text.contains("100% tests passed, 0 tests failed out of 6"),
        "{text}"
    );
    for name in ["quadratic", "mlp_digits", "cpp_example"] {
        for suffix in ["", "_static"] {
            let exe = build_dir.join(format!("{name}{suffix}"));
            check_linkage(
                &exe,
                if suffix.is_empty() {
                    Link::Shared
                } else {
                    Link::Static
                },
            );
        }
    }
}

#[test]
fn install_then_consume_with_find_package_and_pkg_config() {
    require_tool("cmake", "apt-get install cmake");
    require_tool("pkg-config", "apt-get install pkg-config");
    let p = paths();
    let dir = workdir("install");
    let prefix = dir.join("prefix");
    run(Command::new("sh")
        .arg(p.root.join("c_examples/install.sh"))
        .arg(&prefix)
        .env("RMSPROP_LIB_DIR", &p.dir));
    for f in [
        "include/rmsprop.h",
        "include/rmsprop.hpp",
        "lib/librmsprop.so",
        "lib/librmsprop.a",
        "lib/pkgconfig/rmsprop.pc",
        "lib/pkgconfig/rmsprop-static.pc",
        "lib/cmake/rmsprop/rmsprop-config.cmake",
        "lib/cmake/rmsprop/rmsprop-config-version.cmake",
    ] {
        assert!(prefix.join(f).is_file(), "{f} not installed");
    }

    // The consumer prints what it gets from the installed library.
    let consumer_c = dir.join("consumer.c");
    fs::write(
        &consumer_c,
        r#"#include <rmsprop.h>
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
"#,
    )
    .unwrap();
    let consumer_cpp = dir.join("consumer.cpp");
    fs::write(
        &consumer_cpp,
        "#include <rmsprop.hpp>\n#include <cstdio>\n#include <vector>\n\
         int main() {\n  rmsprop::Optimizer opt(rmsprop::Options(0.003), {3});\n\
         std::vector<float> p{1, 2, 3}, g{2, 4, 6};\n  opt.step(p, g);\n\
         std::printf(\"consumer %s %.4f\\n\", rmsprop::version_string(), static_cast<double>(p[0]));\n}\n",
    )
    .unwrap();
    // One optax step from 1.0 with lr 0.003: 1 - 0.003 * 2 / sqrt(0.1 * 4 + 1e-8) = 0.990513...
    let want = format!("consumer {} 0.9905\n", env!("CARGO_PKG_VERSION"));

    // CMake: find_package(rmsprop 0.1 CONFIG REQUIRED), shared and static targets.
    let project = dir.join("cmake_consumer");
    fs::create_dir_all(&project).unwrap();
    fs::write(
        project.join("CMakeLists.txt"),
        format!(
            "cmake_minimum_required(VERSION 3.16)\nproject(consumer C CXX)\n\
             find_package(rmsprop {}.{} CONFIG REQUIRED)\n\
             add_executable(consumer_shared {c})\ntarget_link_libraries(consumer_shared PRIVATE rmsprop::rmsprop)\n\
             add_executable(consumer_static {c})\ntarget_link_libraries(consumer_static PRIVATE rmsprop::rmsprop_static)\n\
             add_executable(consumer_cpp {cpp})\nset_target_properties(consumer_cpp PROPERTIES CXX_STANDARD 17)\n\
             target_link_libraries(consumer_cpp PRIVATE rmsprop::rmsprop)\n",
            env!("CARGO_PKG_VERSION_MAJOR"),
            env!("CARGO_PKG_VERSION_MINOR"),
            c = consumer_c.display(),
            cpp = consumer_cpp.display()
        ),
    )
    .unwrap();
    let build_dir = project.join("build");
    run(cmake_common(&mut Command::new("cmake"))
        .arg("-S")
        .arg(&project)
        .arg("-B")
        .arg(&build_dir)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display())));
    run(Command::new("cmake")
        .arg("--build")
        .arg(&build_dir)
        .arg("-j2"));
    for (exe, link) in [
        ("consumer_shared", Link::Shared),
        ("consumer_static", Link::Static),
        ("consumer_cpp", Link::Shared),
    ] {
        let exe = build_dir.join(exe);
        check_linkage(&exe, link);
        assert_eq!(
            stdout(&run(&mut Command::new(&exe))),
            want,
            "{}",
            exe.display()
        );
    }
    // The shared consumer finds the installed library, not the build tree's.
    let runpath = stdout(&run(Command::new("readelf")
        .arg("-d")
        .arg(build_dir.join("consumer_shared"))));
    assert!(
        runpath.contains(&prefix.join("lib").display().to_string()),
        "{runpath}"
    );

    // The examples project itself, in its installed-library mode, with its CTest checks.
    let examples_build = dir.join("examples_installed");
    run(cmake_common(&mut Command::new("cmake"))
        .arg("-S")
        .arg(p.root.join("c_examples"))
        .arg("-B")
        .arg(&examples_build)
        .arg("-DRMSPROP_USE_INSTALLED=ON")
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display())));
    run(Command::new("cmake")
        .arg("--build")
        .arg(&examples_build)
        .arg("-j2"));
    let text = stdout(&run(Command::new("ctest")
        .arg("--test-dir")
        .arg(&examples_build)
        .arg("--output-on-failure")));
    assert!(
        text.contains("100% tests passed, 0 tests failed out of 6"),
        "{text}"
    );
    let runpath = stdout(&run(Command::new("readelf")
        .arg("-d")
        .arg(examples_build.join("quadratic"))));
    assert!(
        runpath.contains(&prefix.join("lib").display().to_string()),
        "the installed-mode examples should use the installed library: {runpath}"
    );

    // The version file refuses an incompatible request.
    let bad = dir.join("cmake_bad_version");
    fs::create_dir_all(&bad).unwrap();
    fs::write(
        bad.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.16)\nproject(bad C)\nfind_package(rmsprop 99.0 CONFIG REQUIRED)\n",
    )
    .unwrap();
    let out = Command::new("cmake")
        .arg("-S")
        .arg(&bad)
        .arg("-B")
        .arg(bad.join("build"))
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "find_package(rmsprop 99.0) should fail"
    );

    // pkg-config: rmsprop (shared) and rmsprop-static.
    let pkg = |args: &[&str]| -> Vec<String> {
        let out = run(Command::new("pkg-config")
            .args(args)
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")));
        stdout(&out)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        pkg(&["--modversion", "rmsprop"]),
        [env!("CARGO_PKG_VERSION")]
    );
    for (module, link) in [("rmsprop", Link::Shared), ("rmsprop-static", Link::Static)] {
        let exe = dir.join(format!("pkgconfig_{}", link.suffix()));
        run(Command::new(compiler(Lang::C))
            .args(warning_flags(Lang::C))
            .args(pkg(&["--cflags", module]))
            .arg(&consumer_c)
            .arg("-o")
            .arg(&exe)
            .args(pkg(&["--libs", module])));
        check_linkage(&exe, link);
        let out = run(Command::new(&exe).env("LD_LIBRARY_PATH", prefix.join("lib")));
        assert_eq!(stdout(&out), want, "{module}");
    }
}

#[test]
fn static_system_libs_agree() {
    let root = &paths().root;
    let cmake = fs::read_to_string(root.join("cmake/rmsprop-cargo.cmake")).unwrap();
    let install = fs::read_to_string(root.join("c_examples/install.sh")).unwrap();
    let list = STATIC_SYSTEM_LIBS.join(" ");
    assert!(
        cmake.contains(&format!("set(RMSPROP_STATIC_SYSTEM_LIBS {list})")),
        "cmake/rmsprop-cargo.cmake"
    );
    assert!(
        install.contains(&format!("STATIC_LIBS=\"{list}\"")),
        "c_examples/install.sh"
    );
}

#[test]
fn digits_data_is_the_committed_file() {
    let text = fs::read_to_string(digits_csv()).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 1797);
    assert!(rows.iter().all(|r| r.split(',').count() == 65));
    assert!(
        paths()
            .root
            .join("c_examples/data/LICENSE-digits.txt")
            .is_file()
    );
}
