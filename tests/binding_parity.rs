//! The hand-written bindings are held to the generated header: every `rmsprop_*` function
//! and every `RMSPROP_*` constant of `include/rmsprop.h` must appear in the C++ wrapper
//! (`include/rmsprop.hpp`) and in the Python sources (`python/**/*.py`), unless a short,
//! reasoned allow-list below says why that binding does the job another way. A failure
//! names every missing item, so adding a function to the C API without binding it fails
//! here.
//!
//! What counts as "appears":
//! - C++: the name as a whole identifier in the wrapper's code (comments stripped), i.e.
//!   the wrapper calls the function or uses the constant.
//! - Python, functions: the name as a whole identifier in the code with comments and
//!   docstrings stripped (a ctypes binding declares each function by its exact name).
//! - Python, constants: a definition `NAME = ...` (or `NAME: type = ...`), spelled either as
//!   in C (`RMSPROP_ERR_BUSY`) or without the `RMSPROP_` prefix the module namespace makes
//!   redundant (`ERR_BUSY`, `DTYPE_F32`, `NU`). A mere mention in a string does not count.

mod common;

use common::header;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// C++: header names the wrapper deliberately does not use, and why.
const CPP_ALLOWED: &[(&str, &str)] = &[];

/// Python: header names the ctypes module deliberately does not define, and why.
const PYTHON_ALLOWED: &[(&str, &str)] = &[
    (
        "RMSPROP_VERSION_MAJOR",
        "compile-time version of the C header; a ctypes module is not compiled against the \
         header and asks the loaded library (rmsprop_version_number / _string)",
    ),
    ("RMSPROP_VERSION_MINOR", "as RMSPROP_VERSION_MAJOR"),
    ("RMSPROP_VERSION_PATCH", "as RMSPROP_VERSION_MAJOR"),
    ("RMSPROP_VERSION_STRING", "as RMSPROP_VERSION_MAJOR"),
    ("RMSPROP_VERSION_NUMBER", "as RMSPROP_VERSION_MAJOR"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The header's functions and constants, checked to be a plausible, complete parse.
fn header_names() -> (BTreeSet<String>, BTreeSet<String>) {
    let (functions, _) = header::functions();
    let constants = header::constants();
    // Anchors: if the parser breaks, these fail rather than the parity check passing on
    // an empty list.
    for f in [
        "rmsprop_create",
        "rmsprop_step_tensors_f64",
        "rmsprop_checkpoint_save_file",
        "rmsprop_set_initial_scale",
        "rmsprop_version_string",
    ] {
        assert!(
            functions.contains(f),
            "header parse lost {f}: {functions:?}"
        );
    }
    for c in [
        "RMSPROP_OK",
        "RMSPROP_ERR_OUT_OF_MEMORY",
        "RMSPROP_DTYPE_F64",
        "RMSPROP_TRACE",
        "RMSPROP_VERSION_NUMBER",
    ] {
        assert!(
            constants.contains(c),
            "header parse lost {c}: {constants:?}"
        );
    }
    assert!(
        !constants.contains("RMSPROP_H"),
        "the include guard is not a constant"
    );
    assert!(functions.len() >= 60, "only {} functions", functions.len());
    assert!(constants.len() >= 30, "only {} constants", constants.len());
    (functions, constants)
}

/// Python code without `#` comment lines and triple-quoted strings (docstrings), so that a
/// name mentioned in documentation does not count as bound.
fn python_code(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    loop {
        let next = ["\"\"\"", "'''"]
            .iter()
            .filter_map(|q| rest.find(q).map(|i| (i, *q)))
            .min();
        match next {
            Some((i, q)) => {
                out.push_str(&rest[..i]);
                let after = &rest[i + 3..];
                rest = after.find(q).map_or("", |j| &after[j + 3..]);
            }
            None => {
                out.push_str(rest);
                break;
            }
        }
    }
    out.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `code` defines `name` (`name = ...` or `name: T = ...`, any indentation).
fn python_defines(code: &str, name: &str) -> bool {
    code.lines().any(|l| {
        let Some(rest) = l.trim_start().strip_prefix(name) else {
            return false;
        };
        let rest = rest.trim_start();
        (rest.starts_with('=') && !rest.starts_with("==")) || rest.starts_with(':')
    })
}

/// The header names a binding lacks: functions must be `uses`d, constants `defines`d.
fn missing(
    functions: &BTreeSet<String>,
    constants: &BTreeSet<String>,
    allowed: &[(&str, &str)],
    uses: &dyn Fn(&str) -> bool,
    defines: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let allowed: BTreeSet<&str> = allowed.iter().map(|(n, _)| *n).collect();
    let f = functions.iter().filter(|n| !uses(n));
    let c = constants.iter().filter(|n| !defines(n));
    f.chain(c)
        .filter(|n| !allowed.contains(n.as_str()))
        .cloned()
        .collect()
}

/// Allow-list entries that are no longer needed (the binding covers the name now) or no
/// longer exist in the header: a stale allow-list would hide future gaps.
fn stale(
    functions: &BTreeSet<String>,
    constants: &BTreeSet<String>,
    allowed: &[(&str, &str)],
    uses: &dyn Fn(&str) -> bool,
    defines: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut v = Vec::new();
    for (name, reason) in allowed {
        assert!(
            !reason.is_empty(),
            "{name}: an allow-list entry needs a reason"
        );
        let name = name.to_string();
        if functions.contains(&name) {
            if uses(&name) {
                v.push(format!("{name} (now bound)"));
            }
        } else if constants.contains(&name) {
            if defines(&name) {
                v.push(format!("{name} (now defined)"));
            }
        } else {
            v.push(format!("{name} (not in the header)"));
        }
    }
    v
}

fn cpp_code() -> String {
    let p = root().join("include/rmsprop.hpp");
    let src = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    header::strip_comments(&src)
}

fn python_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            python_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "py") {
            out.push(p);
        }
    }
}

/// All of `python/**/*.py`, comments and docstrings stripped, concatenated.
fn python_all_code() -> String {
    let mut files = Vec::new();
    python_files(&root().join("python"), &mut files);
    assert!(!files.is_empty(), "no Python sources under python/");
    files
        .iter()
        .map(|p| python_code(&std::fs::read_to_string(p).unwrap()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn python_defines_constant(code: &str, name: &str) -> bool {
    python_defines(code, name)
        || name
            .strip_prefix("RMSPROP_")
            .is_some_and(|short| python_defines(code, short))
}

#[test]
fn cpp_wrapper_covers_the_header() {
    let (functions, constants) = header_names();
    let code = cpp_code();
    let uses = |n: &str| header::mentions(&code, n);
    let gaps = missing(&functions, &constants, CPP_ALLOWED, &uses, &uses);
    assert!(
        gaps.is_empty(),
        "include/rmsprop.hpp lacks {} header name(s) (bind them, or add them to CPP_ALLOWED \
         with a reason): {gaps:?}",
        gaps.len()
    );
    let stale = stale(&functions, &constants, CPP_ALLOWED, &uses, &uses);
    assert!(stale.is_empty(), "stale CPP_ALLOWED entries: {stale:?}");
}

#[test]
fn python_binding_covers_the_header() {
    let (functions, constants) = header_names();
    let code = python_all_code();
    let uses = |n: &str| header::mentions(&code, n);
    let defines = |n: &str| python_defines_constant(&code, n);
    let gaps = missing(&functions, &constants, PYTHON_ALLOWED, &uses, &defines);
    assert!(
        gaps.is_empty(),
        "python/ lacks {} header name(s) (bind them, or add them to PYTHON_ALLOWED with a \
         reason): {gaps:?}",
        gaps.len()
    );
    let stale = stale(&functions, &constants, PYTHON_ALLOWED, &uses, &defines);
    assert!(stale.is_empty(), "stale PYTHON_ALLOWED entries: {stale:?}");
}

/// The checker itself: a binding that lacks a function or a constant, or only mentions
/// them in comments or docstrings, is reported, name by name.
#[test]
fn the_checker_reports_what_is_missing() {
    let functions: BTreeSet<String> = ["rmsprop_a", "rmsprop_a_f32", "rmsprop_b"]
        .map(String::from)
        .into();
    let constants: BTreeSet<String> = ["RMSPROP_X", "RMSPROP_Y", "RMSPROP_Z"]
        .map(String::from)
        .into();

    // C++: rmsprop_a only as a prefix of rmsprop_a_f32, RMSPROP_Y only in a comment.
    let cpp = header::strip_comments(
        "int f() { return rmsprop_a_f32(RMSPROP_X) + rmsprop_b(RMSPROP_Z); } // RMSPROP_Y\n",
    );
    let uses = |n: &str| header::mentions(&cpp, n);
    assert_eq!(
        missing(&functions, &constants, &[], &uses, &uses),
        ["rmsprop_a", "RMSPROP_Y"]
    );
    assert_eq!(
        missing(&functions, &constants, &[("rmsprop_a", "r")], &uses, &uses),
        ["RMSPROP_Y"]
    );
    assert_eq!(
        stale(
            &functions,
            &constants,
            &[("rmsprop_b", "r"), ("rmsprop_gone", "r")],
            &uses,
            &uses
        ),
        ["rmsprop_b (now bound)", "rmsprop_gone (not in the header)"]
    );

    // Python: a docstring and a comment do not bind; a definition without the prefix does.
    let py = python_code(
        "\"\"\"Calls rmsprop_b; RMSPROP_Z.\"\"\"\n# rmsprop_a_f32\nX = 1\n\
         RMSPROP_Y: int = 2\nif Z == 3:\n    pass\nsig = {\"rmsprop_a\": None}\n",
    );
    let uses = |n: &str| header::mentions(&py, n);
    let defines = |n: &str| python_defines_constant(&py, n);
    assert_eq!(
        missing(&functions, &constants, &[], &uses, &defines),
        ["rmsprop_a_f32", "rmsprop_b", "RMSPROP_Z"]
    );
}
