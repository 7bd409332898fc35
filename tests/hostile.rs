//! Hostile input, from C and from Rust.
//!
//! From C: `tests/c/hostile.c` (every entry point with NULL, misaligned, overlapping, huge and
//! nonsense arguments, wrong dtypes and enums, two threads on one handle) is compiled with
//! `-Wall -Wextra -Werror` against the shared library that cargo built for this test run,
//! then run three ways: natively, with `-fsanitize=address,undefined` (when the compiler
//! supports it), and under valgrind memcheck with leak checking. valgrind is required: when it
//! is missing this test fails, it never skips.
//!
//! The header is held to what the functions do: every status hostile.c provokes from a
//! function (its `status FUNCTION NAME` lines) must be listed in that function's doc comment
//! in `include/rmsprop.h`.
//!
//! From Rust: the same kinds of mistakes through the safe API must return the documented
//! error and leave the optimizer exactly as it was.

use std::path::PathBuf;
use std::process::{Command, Output};

mod common;

use rmsprop::capi;
use rmsprop::{Component, Config, Counts, Error, Layout, Optimizer, Outcome, Schedule, State};

// ---------------------------------------------------------------------------------------------
// Locating and building

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding the release `librmsprop.so` (tests/common/library.rs).
fn lib_dir() -> PathBuf {
    common::library::release().dir.clone()
}

fn compiler() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// `-DHOSTILE_CHECKPOINT` when the header declares the checkpoint API (its hostile cases are
/// in `tests/c/hostile_checkpoint.inc`).
fn checkpoint_flag() -> Vec<&'static str> {
    let header = std::fs::read_to_string(manifest_dir().join("include/rmsprop.h"))
        .expect("read include/rmsprop.h");
    if header.contains("rmsprop_checkpoint_save(") {
        vec!["-DHOSTILE_CHECKPOINT"]
    } else {
        vec![]
    }
}

/// Compile `tests/c/hostile.c` with warnings as errors (and `extra` flags) into `out_name`.
fn compile_hostile(extra: &[&str], out_name: &str) -> PathBuf {
    let lib = lib_dir();
    let out_dir = lib.join("hostile-c");
    std::fs::create_dir_all(&out_dir).expect("create output dir");
    let exe = out_dir.join(out_name);
    let root = manifest_dir();
    let mut cmd = Command::new(compiler());
    cmd.args(["-std=c11", "-g", "-O1", "-Wall", "-Wextra", "-Werror"])
        .args(extra)
        .args(checkpoint_flag())
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join("tests/c/hostile.c"))
        .arg("-L")
        .arg(&lib)
        .args(["-lrmsprop", "-lpthread", "-lm"])
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&exe);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{}`: {e}", compiler()));
    assert!(
        out.status.success(),
        "compiling hostile.c ({extra:?}) failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Check a hostile run: exit 0, a closing "N passed, 0 failed" line, no FAIL line.
fn check_run(what: &str, out: &Output) -> usize {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fails: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    let last = stdout.lines().last().unwrap_or("");
    let summary_ok = last.ends_with(" passed, 0 failed");
    if !out.status.success() || !fails.is_empty() || !summary_ok {
        // Keep the report readable: every FAIL line, the summary, and the tail of stderr
        // (sanitizer and valgrind reports; panic messages printed by expected caught panics
        // are noise there).
        let tail: Vec<&str> = stderr.lines().rev().take(120).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "{what}: exit status {:?}\n--- failures ---\n{}\n--- summary ---\n{last}\n--- stderr (tail) ---\n{}",
            out.status,
            fails.join("\n"),
            tail.join("\n")
        );
    }
    let passed: usize = last
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed > 300, "{what}: only {passed} cases ran");
    println!("{what}: {last}");
    passed
}

// ---------------------------------------------------------------------------------------------
// The C program, three ways

#[test]
fn c_hostile_native() {
    let exe = compile_hostile(&[], "hostile");
    let out = Command::new(&exe).output().expect("run hostile");
    check_run("hostile.c (native)", &out);
}

#[test]
fn c_hostile_sanitizers() {
    // Probe: does this compiler link -fsanitize=address,undefined here?
    let dir = lib_dir().join("hostile-c");
    std::fs::create_dir_all(&dir).unwrap();
    let probe_c = dir.join("probe.c");
    std::fs::write(&probe_c, "int main(void) { return 0; }\n").unwrap();
    let probe = Command::new(compiler())
        .args(["-fsanitize=address,undefined"])
        .arg(&probe_c)
        .arg("-o")
        .arg(dir.join("probe"))
        .output();
    let works = probe.as_ref().is_ok_and(|o| o.status.success())
        && Command::new(dir.join("probe"))
            .status()
            .is_ok_and(|s| s.success());
    if !works {
        // Optional by design (not every toolchain ships the sanitizer runtimes); say so loudly.
        eprintln!("NOTE: -fsanitize=address,undefined does not work with this compiler; skipped");
        return;
    }
    let exe = compile_hostile(
        &[
            "-fsanitize=address,undefined",
            "-fno-omit-frame-pointer",
            "-fno-sanitize-recover=undefined",
        ],
        "hostile_asan",
    );
    let out = Command::new(&exe)
        // Huge allocations are part of the test: they must fail, not abort ASan itself.
        .env(
            "ASAN_OPTIONS",
            "allocator_may_return_null=1:detect_leaks=1:abort_on_error=0",
        )
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        .output()
        .expect("run hostile_asan");
    check_run("hostile.c (ASan + UBSan)", &out);
}

#[test]
fn c_hostile_valgrind() {
    let which = Command::new("valgrind").arg("--version").output();
    let ok = which.as_ref().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "valgrind is required for this test and was not found: install it (Debian: \
         `apt-get install valgrind`); this test never skips"
    );
    let exe = compile_hostile(&[], "hostile_vg");
    let out = Command::new("valgrind")
        .args([
            "-q",
            "--error-exitcode=1",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
            "--show-leak-kinds=definite,indirect",
        ])
        .arg(&exe)
        .output()
        .expect("run valgrind");
    check_run("hostile.c (valgrind memcheck)", &out);
}

// ---------------------------------------------------------------------------------------------
// The header's error lists, held to what the functions return

/// Each function's doc block in `include/rmsprop.h`, by function name, in header order,
/// with the declaration's parameter text.
fn header_functions() -> Vec<(String, String, String)> {
    let header = std::fs::read_to_string(manifest_dir().join("include/rmsprop.h"))
        .expect("read include/rmsprop.h");
    let mut out = Vec::new();
    let mut doc = String::new();
    let mut in_doc = false;
    let lines: Vec<&str> = header.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if t.starts_with("/**") {
            in_doc = true;
            doc.clear();
        }
        if in_doc {
            doc.push_str(t.trim_start_matches("/**").trim_start_matches('*'));
            doc.push('\n');
            if t.ends_with("*/") {
                in_doc = false;
            }
            continue;
        }
        let Some(start) = t.find("rmsprop_") else {
            continue;
        };
        if t.starts_with('#') || t.starts_with("//") {
            continue;
        }
        let name: String = t[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !t[start + name.len()..].starts_with('(') {
            continue;
        }
        // The declaration may span several lines, up to the closing `);`.
        let mut decl = String::new();
        for l in &lines[i..] {
            decl.push_str(l.trim());
            decl.push(' ');
            if l.trim_end().ends_with(");") {
                break;
            }
        }
        out.push((name, std::mem::take(&mut doc), decl));
    }
    out
}

/// The statuses a doc block lists: every `RMSPROP_*` status it names, plus those of the
/// functions it defers to ("Errors as `rmsprop_x`", "`rmsprop_x` for an `f64` optimizer").
fn listed_statuses(
    name: &str,
    docs: &std::collections::BTreeMap<String, String>,
    depth: usize,
) -> std::collections::BTreeSet<String> {
    let mut set = std::collections::BTreeSet::new();
    let Some(doc) = docs.get(name) else {
        return set;
    };
    let flat = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut rest = flat.as_str();
    while let Some(i) = rest.find("RMSPROP_") {
        let tok: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[i + tok.len()..];
        set.insert(tok);
    }
    if depth > 8 {
        return set;
    }
    let lower = flat.to_lowercase();
    let mut targets = Vec::new();
    let pat = "errors as `";
    let mut from = 0;
    while let Some(i) = lower[from..].find(pat) {
        let s = from + i + pat.len();
        if let Some(e) = lower[s..].find('`') {
            targets.push(flat[s..s + e].to_string());
        }
        from = s;
    }
    if flat.starts_with('`') && flat[1..].contains("` for an `") {
        let e = flat[1..].find('`').unwrap();
        targets.push(flat[1..1 + e].to_string());
    }
    for t in targets {
        if t != name {
            set.extend(listed_statuses(&t, docs, depth + 1));
        }
    }
    set
}

/// Issue 10.4: every status hostile.c provokes from a function (its "status FUNCTION NAME"
/// lines) must be listed in that function's doc comment in the header, and every function
/// that takes the optimizer's lock lists RMSPROP_ERR_BUSY and RMSPROP_ERR_POISONED (another
/// thread's call, or an earlier panic inside the handle, which hostile.c cannot stage on
/// demand).
#[test]
fn header_lists_every_status_each_function_returns() {
    let exe = compile_hostile(&[], "hostile_statuses");
    let out = Command::new(&exe).output().expect("run hostile");
    check_run("hostile.c (status inventory)", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let funcs = header_functions();
    let docs: std::collections::BTreeMap<String, String> = funcs
        .iter()
        .map(|(n, d, _)| (n.clone(), d.clone()))
        .collect();
    assert!(docs.len() > 60, "parsed only {} functions", docs.len());
    let mut observed = std::collections::BTreeSet::new();
    for l in stdout.lines() {
        let mut w = l.split_whitespace();
        if let (Some("status"), Some(f), Some(s)) = (w.next(), w.next(), w.next()) {
            observed.insert((f.to_string(), s.to_string()));
        }
    }
    assert!(
        observed.len() > 100,
        "only {} (function, status) pairs seen",
        observed.len()
    );
    let mut missing = Vec::new();
    for (f, s) in &observed {
        assert!(
            docs.contains_key(f),
            "hostile.c calls {f}, which the header does not declare"
        );
        if !listed_statuses(f, &docs, 0).contains(s) {
            missing.push(format!("{f}: {s} (returned, not documented)"));
        }
    }
    for (name, _, decl) in &funcs {
        let locks = decl.contains("RmspropOptimizer *optimizer") && name != "rmsprop_destroy";
        if locks {
            let listed = listed_statuses(name, &docs, 0);
            for s in ["RMSPROP_ERR_BUSY", "RMSPROP_ERR_POISONED"] {
                if !listed.contains(s) {
                    missing.push(format!("{name}: {s} (takes the lock, not documented)"));
                }
            }
        }
    }
    println!("{} (function, status) pairs observed", observed.len());
    assert!(
        missing.is_empty(),
        "the header's error lists are incomplete:\n{}",
        missing.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The safe Rust API

fn full_config() -> Config {
    let mut c = Config::new(0.01);
    c.decay = 0.85;
    c.eps = 1e-6;
    c.initial_scale = 0.25;
    c.centered = true;
    c.momentum = Some(0.9);
    c.nesterov = true;
    c.bias_correction = true;
    c
}

/// An optimizer over {3, 0, 5} that has taken two steps.
fn stepped() -> (Optimizer<f32>, Vec<f32>) {
    let mut o = Optimizer::<f32>::new(full_config(), &[3, 0, 5]).unwrap();
    let mut p: Vec<f32> = (0..8).map(|i| i as f32 * 0.5 - 1.0).collect();
    for k in 0..2 {
        let g: Vec<f32> = (0..8).map(|i| ((i + k) as f32).sin()).collect();
        assert_eq!(o.step(&mut p, &g).unwrap(), Outcome::Applied);
    }
    (o, p)
}

/// State, counts, config and thread setting, for "nothing changed" comparisons.
fn fingerprint(o: &Optimizer<f32>) -> (State<f32>, Config, Counts, u64) {
    (
        o.full_state().clone(),
        o.config().clone(),
        o.counts(),
        o.skipped_steps(),
    )
}

#[test]
fn rust_invalid_config_is_rejected_with_named_errors() {
    type Mutate = Box<dyn Fn(&mut Config)>;
    let cases: Vec<(Mutate, &str)> = vec![
        (
            Box::new(|c| c.decay = 1.5),
            "decay must be in [0, 1], got 1.5",
        ),
        (Box::new(|c| c.decay = f64::NAN), "decay"),
        (
            Box::new(|c| c.eps = -1.0),
            "eps must be finite and >= 0, got -1.0",
        ),
        (Box::new(|c| c.eps = f64::INFINITY), "eps"),
        (Box::new(|c| c.initial_scale = -1.0), "initial_scale"),
        (Box::new(|c| c.momentum = Some(f64::INFINITY)), "momentum"),
        (
            Box::new(|c| c.learning_rate = f64::NAN.into()),
            "learning_rate must be finite",
        ),
        (
            Box::new(|c| {
                c.learning_rate = Schedule::CosineDecay {
                    init_value: 1.0,
                    decay_steps: 0,
                    alpha: 0.0,
                    exponent: 1.0,
                }
                .into()
            }),
            "positive decay_steps",
        ),
    ];
    for (mutate, needle) in cases {
        let mut c = full_config();
        mutate(&mut c);
        let e = Optimizer::<f32>::new(c, &[3]).unwrap_err();
        assert!(
            e.to_string().contains(needle),
            "{e} should mention {needle}"
        );
        assert!(matches!(
            e,
            Error::InvalidHyperparameter { .. } | Error::InvalidSchedule(_)
        ));
    }
}

#[test]
fn rust_wrong_lengths_change_nothing() {
    let (mut o, mut p) = stepped();
    let before = fingerprint(&o);
    let p0 = p.clone();
    let g = vec![0.5f32; 9];
    let mut u = [7.0f32; 9];
    let e = o.step(&mut p[..7], &g[..7]).unwrap_err();
    assert_eq!(
        e,
        Error::LengthMismatch {
            what: "params",
            expected: 8,
            got: 7
        }
    );
    assert!(matches!(
        o.step(&mut p, &g).unwrap_err(),
        Error::LengthMismatch { what: "grads", .. }
    ));
    assert!(o.update(&g[..8], &mut u[..9]).is_err());
    assert!(o.update_in_place(&mut u[..0]).is_err());
    // Lists: wrong count, wrong per-tensor length.
    let (a, b) = g.split_at(3);
    assert!(matches!(
        o.update_tensors(&[a], &mut [&mut u[..3]]).unwrap_err(),
        Error::LengthMismatch {
            expected: 3,
            got: 1,
            ..
        }
    ));
    let mut ua = vec![1.0f32; 3];
    let mut ub = vec![1.0f32; 4];
    let mut empty: [f32; 0] = [];
    assert!(
        o.update_tensors(&[a, &[], &b[..4]], &mut [&mut ua, &mut empty, &mut ub])
            .is_err()
    );
    let mut pa = p.clone();
    let (pa0, pa1) = pa.split_at_mut(3);
    assert!(
        o.step_tensors(&mut [pa0, &mut [], pa1], &[a, &[], &b[..4]])
            .is_err()
    );
    assert_eq!(
        fingerprint(&o),
        before,
        "a failed call changed the optimizer"
    );
    assert_eq!(p, p0, "a failed call changed the params");
    assert!(u.iter().all(|&x| x == 7.0), "a failed call wrote updates");
}

#[test]
fn rust_state_access_errors_change_nothing() {
    let (mut o, _) = stepped();
    let plain = Optimizer::<f32>::new(Config::new(0.1), &[3, 0, 5]).unwrap();
    let before = fingerprint(&o);
    assert_eq!(
        o.tensor_state(Component::Nu, 3).unwrap_err(),
        Error::TensorOutOfRange { index: 3, count: 3 }
    );
    assert!(o.tensor_state(Component::Mu, usize::MAX).is_err());
    assert_eq!(
        plain.tensor_state(Component::Mu, 0).unwrap_err(),
        Error::NoSuchState("mu", "centered=true")
    );
    assert!(plain.state(Component::Trace).is_none());
    assert!(matches!(
        o.set_tensor_state(Component::Nu, 0, &[1.0, 2.0])
            .unwrap_err(),
        Error::LengthMismatch {
            expected: 3,
            got: 2,
            ..
        }
    ));
    assert!(o.set_tensor_state(Component::Trace, 9, &[1.0]).is_err());
    assert!(o.set_state(Component::Mu, &[0.0; 7]).is_err());
    assert!(
        o.set_counts(Counts {
            schedule: -1,
            bias_correction: 0
        })
        .is_err()
    );
    assert!(
        o.set_counts(Counts {
            schedule: 0,
            bias_correction: i32::MIN
        })
        .is_err()
    );
    // A whole state of the wrong shape.
    let mut bad = o.full_state().clone();
    bad.mu = None;
    assert!(o.set_full_state(bad).is_err());
    let mut bad = o.full_state().clone();
    bad.nu.pop();
    assert!(o.set_full_state(bad).is_err());
    assert_eq!(fingerprint(&o), before);
}

#[test]
fn rust_bad_setters_change_nothing() {
    let (mut o, _) = stepped();
    let before = fingerprint(&o);
    assert!(o.set_decay(1.5).is_err());
    assert!(o.set_decay(f64::NAN).is_err());
    assert!(o.set_eps(-1.0).is_err());
    assert!(o.set_initial_scale(-1.0).is_err());
    assert!(o.set_momentum(f64::INFINITY).is_err());
    assert!(o.set_learning_rate(f64::NAN.into()).is_err());
    assert!(
        o.set_learning_rate(
            Schedule::WarmupCosineDecay {
                init_value: 0.0,
                peak_value: 1.0,
                warmup_steps: 10,
                decay_steps: 10,
                end_value: 0.0,
                exponent: 1.0
            }
            .into()
        )
        .is_err()
    );
    assert_eq!(fingerprint(&o), before);
    let mut plain = Optimizer::<f64>::new(Config::new(0.1), &[2]).unwrap();
    assert_eq!(
        plain.set_momentum(0.5).unwrap_err(),
        Error::NoSuchState("trace", "momentum set")
    );
}

#[test]
fn rust_nonsense_schedules_are_rejected() {
    let bad = [
        Schedule::CosineDecay {
            init_value: 1.0,
            decay_steps: 0,
            alpha: 0.0,
            exponent: 1.0,
        },
        Schedule::WarmupCosineDecay {
            init_value: 0.0,
            peak_value: 1.0,
            warmup_steps: 20,
            decay_steps: 10,
            end_value: 0.0,
            exponent: 1.0,
        },
        Schedule::PiecewiseConstant {
            init_value: 1.0,
            boundaries_and_scales: vec![(10, 0.5), (5, 0.5)],
        },
        Schedule::PiecewiseConstant {
            init_value: 1.0,
            boundaries_and_scales: vec![(5, 0.5), (5, 0.5)],
        },
        Schedule::PiecewiseConstant {
            init_value: 1.0,
            boundaries_and_scales: vec![(5, -0.5)],
        },
        Schedule::Join {
            schedules: vec![Schedule::Constant { value: 1.0 }; 2],
            boundaries: vec![],
        },
        Schedule::Join {
            schedules: vec![Schedule::Constant { value: 1.0 }; 3],
            boundaries: vec![20, 10],
        },
        Schedule::Join {
            schedules: vec![],
            boundaries: vec![],
        },
        Schedule::Linear {
            init_value: 1.0,
            end_value: 0.0,
            transition_steps: i64::from(i32::MAX) + 1,
            transition_begin: 0,
        },
        Schedule::Constant { value: f64::NAN },
    ];
    for s in bad {
        let e = s.validate().unwrap_err();
        assert!(matches!(e, Error::InvalidSchedule(_)), "{s:?}: {e}");
    }
}

#[test]
fn rust_layout_overflow_is_an_error() {
    assert_eq!(
        Layout::new(&[usize::MAX, 1]).unwrap_err(),
        Error::LayoutOverflow
    );
    // Element counts that fit usize but whose byte size does not fit isize: an error, not a
    // panic ("capacity overflow") from inside Vec.
    let r = std::panic::catch_unwind(|| Optimizer::<f32>::new(Config::new(0.1), &[usize::MAX / 2]));
    match r {
        Ok(Err(Error::LayoutOverflow)) => {}
        Ok(other) => panic!("want Err(LayoutOverflow), got {:?}", other.map(|_| ())),
        Err(p) => panic!(
            "Optimizer::new(&[usize::MAX / 2]) panicked instead of returning Err(LayoutOverflow): {}",
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        ),
    }
}

/// Child half of `rust_unallocatable_layout_does_not_abort`; does nothing unless asked.
#[test]
fn child_unallocatable_layout() {
    if std::env::var_os("RMSPROP_HOSTILE_CHILD").is_none() {
        return;
    }
    // 2^45 f32 = 128 TiB: this allocation fails on every machine.
    let r = Optimizer::<f32>::new(Config::new(0.1), &[1usize << 45]);
    println!("CHILD-RESULT {:?}", r.map(|_| ()));
}

#[test]
fn rust_unallocatable_layout_does_not_abort() {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--exact",
            "child_unallocatable_layout",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RMSPROP_HOSTILE_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("CHILD-RESULT Err("),
        "Optimizer::new with a 128 TiB layout must return an error, not abort the process \
         (status {:?}):\n{stdout}\n{stderr}",
        out.status
    );
}

#[test]
fn rust_skipped_non_finite_step_changes_nothing_but_the_counter() {
    let (mut o, mut p) = stepped();
    o.set_skip_non_finite(true);
    let (state, config, counts, skipped) = fingerprint(&o);
    let p0 = p.clone();
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut g = vec![0.25f32; 8];
        g[5] = bad;
        assert_eq!(o.step(&mut p, &g).unwrap(), Outcome::Skipped);
    }
    assert_eq!(p, p0);
    assert_eq!(o.full_state(), &state);
    assert_eq!(o.config(), &config);
    assert_eq!(o.counts(), counts);
    assert_eq!(o.skipped_steps(), skipped + 3);
}

#[test]
fn rust_calls_into_the_c_abi_with_null_and_garbage() {
    use std::ptr::{null, null_mut};
    assert_eq!(
        capi::rmsprop_step_f32(null_mut(), null_mut(), null(), 0),
        capi::RMSPROP_ERR_NULL_POINTER
    );
    let msg = unsafe { std::ffi::CStr::from_ptr(capi::rmsprop_last_error_message()) };
    assert!(msg.to_str().unwrap().contains("optimizer"), "{msg:?}");
    let mut o = null_mut();
    assert_eq!(capi::rmsprop_options_new(0.1, &mut o), capi::RMSPROP_OK);
    let mut h = null_mut();
    assert_eq!(
        capi::rmsprop_create(o, [3usize].as_ptr(), 1, 7, &mut h),
        capi::RMSPROP_ERR_BAD_ENUM
    );
    assert!(h.is_null());
    assert_eq!(
        capi::rmsprop_create(o, [3usize].as_ptr(), 1, capi::RMSPROP_DTYPE_F64, &mut h),
        capi::RMSPROP_OK
    );
    let mut buf = [0.0f32; 3];
    assert_eq!(
        capi::rmsprop_update_f32(h, buf.as_ptr(), buf.as_mut_ptr(), 3),
        capi::RMSPROP_ERR_WRONG_DTYPE
    );
    let mut d = [1.0f64; 4];
    let g = d.as_ptr();
    assert_eq!(
        capi::rmsprop_step_f64(h, d[1..].as_mut_ptr(), g, 3),
        capi::RMSPROP_ERR_OVERLAP
    );
    assert_eq!(d, [1.0; 4]);
    assert_eq!(
        capi::rmsprop_set_counts(h, -5, 0),
        capi::RMSPROP_ERR_INVALID_HYPERPARAMETER
    );
    let (mut sc, mut bc) = (11, 12);
    assert_eq!(
        capi::rmsprop_get_counts(h, &mut sc, &mut bc),
        capi::RMSPROP_OK
    );
    assert_eq!((sc, bc), (0, 0));
    capi::rmsprop_destroy(h);
    capi::rmsprop_options_free(o);
}

/// Issue: empty tensors must not take part in the in-place or overlap decisions of the list
/// entry points. Layout {3, 0, 5}: in place for the non-empty tensors, and any pointer for the
/// empty one (NULL, or one into another tensor's buffer), must compute exactly what the flat
/// in-place update computes on a twin handle; the list step likewise ignores where the empty
/// tensor's pointers point.
#[test]
fn list_calls_ignore_empty_tensors_pointers() {
    use std::ptr::null_mut;
    fn handle(dtype: capi::RmspropDtype) -> *mut capi::RmspropOptimizer {
        let mut o = null_mut();
        assert_eq!(capi::rmsprop_options_new(0.01, &mut o), capi::RMSPROP_OK);
        assert_eq!(capi::rmsprop_options_set_momentum(o, 0.9), capi::RMSPROP_OK);
        assert_eq!(
            capi::rmsprop_options_set_centered(o, true),
            capi::RMSPROP_OK
        );
        let mut h = null_mut();
        let sizes = [3usize, 0, 5];
        assert_eq!(
            capi::rmsprop_create(o, sizes.as_ptr(), 3, dtype, &mut h),
            capi::RMSPROP_OK
        );
        assert_eq!(capi::rmsprop_set_threads(h, 1), capi::RMSPROP_OK);
        capi::rmsprop_options_free(o);
        h
    }
    let grads = |k: usize| -> Vec<f64> { (0..8).map(|i| ((i + 3 * k) as f64).sin()).collect() };

    // f32, update in place: list handle vs flat twin.
    let (h, twin) = (
        handle(capi::RMSPROP_DTYPE_F32),
        handle(capi::RMSPROP_DTYPE_F32),
    );
    let mut elsewhere = [7.0f32; 2];
    for k in 0..3 {
        let mut flat: Vec<f32> = grads(k).iter().map(|&x| x as f32).collect();
        let mut list = flat.clone();
        let (a, b) = list.split_at_mut(3);
        // The empty tensor: gradient pointer NULL, then inside tensor 2, then elsewhere;
        // its update pointer a distinct one each time.
        let empty_g: [*const f32; 3] = [std::ptr::null(), b.as_ptr(), elsewhere.as_ptr()];
        let empty_u: [*mut f32; 3] = [elsewhere.as_mut_ptr(), a.as_mut_ptr(), null_mut()];
        let g = [a.as_ptr(), empty_g[k], b.as_ptr()];
        let u = [a.as_mut_ptr(), empty_u[k], b.as_mut_ptr()];
        let st = capi::rmsprop_update_tensors_f32(h, g.as_ptr(), u.as_ptr(), 3);
        assert_eq!(st, capi::RMSPROP_OK, "call {k}: {}", last_error());
        assert_eq!(
            capi::rmsprop_update_f32(twin, flat.as_ptr(), flat.as_mut_ptr(), 8),
            capi::RMSPROP_OK
        );
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&list), bits(&flat), "call {k}: in-place list vs flat");
    }
    assert_eq!(elsewhere, [7.0; 2], "the empty tensor's buffer was written");
    capi::rmsprop_destroy(h);
    capi::rmsprop_destroy(twin);

    // f64, step over lists: the empty tensor's params pointer inside grads[0] and its grads
    // pointer inside params[2] are not overlaps.
    let (h, twin) = (
        handle(capi::RMSPROP_DTYPE_F64),
        handle(capi::RMSPROP_DTYPE_F64),
    );
    let mut p_list: Vec<f64> = (0..8).map(|i| 1.0 + i as f64).collect();
    let mut p_flat = p_list.clone();
    for k in 0..3 {
        let g_all = grads(k);
        let (pa, pb) = p_list.split_at_mut(3);
        let p = [pa.as_mut_ptr(), g_all.as_ptr() as *mut f64, pb.as_mut_ptr()];
        let g = [g_all.as_ptr(), pb.as_ptr(), g_all[3..].as_ptr()];
        let st = capi::rmsprop_step_tensors_f64(h, p.as_ptr(), g.as_ptr(), 3);
        assert_eq!(st, capi::RMSPROP_OK, "step {k}: {}", last_error());
        assert_eq!(
            capi::rmsprop_step_f64(twin, p_flat.as_mut_ptr(), g_all.as_ptr(), 8),
            capi::RMSPROP_OK
        );
        assert_eq!(g_all, grads(k), "gradients written");
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&p_list), bits(&p_flat), "step {k}: list vs flat");
    }
    capi::rmsprop_destroy(h);
    capi::rmsprop_destroy(twin);
}

fn last_error() -> String {
    // SAFETY: the library returns a NUL-terminated string valid until the next failing call
    // on this thread.
    unsafe { std::ffi::CStr::from_ptr(capi::rmsprop_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}
