//! The README's "A minimal C program" is real: this test extracts its ```c block from
//! README.md (so the README cannot drift from what is tested), compiles it with warnings
//! as errors against the release library, runs it, and checks what it prints
//! - against the output the README quotes right below it, and
//! - against the same five steps taken independently by the Rust crate's own `Optimizer`
//!   (bit for bit: the program prints each `float` with `%.9g`, enough digits to
//!   identify it exactly).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const SECTION: &str = "## A minimal C program";

fn readme() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The body of the first ```` ```lang ```` block after `SECTION` (and before the next
/// `## ` heading).
fn block(readme: &str, lang: &str) -> String {
    let start = readme
        .find(SECTION)
        .unwrap_or_else(|| panic!("README.md has no {SECTION:?} section"));
    let section = &readme[start + SECTION.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let fence = format!("```{lang}\n");
    let open = section
        .find(&fence)
        .unwrap_or_else(|| panic!("no {fence:?} block in {SECTION:?}"))
        + fence.len();
    let len = section[open..]
        .find("```")
        .unwrap_or_else(|| panic!("unterminated {fence:?} block in {SECTION:?}"));
    section[open..open + len].to_string()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is it installed?)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Compile and run the README's C block; its standard output.
fn run_snippet(source: &str) -> String {
    let lib = common::library::release();
    let dir: PathBuf = lib.target.join("readme-snippet");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("minimal.c");
    let exe = dir.join("minimal");
    std::fs::write(&src, source).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    run(Command::new(cc)
        .args([
            "-std=c99",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
        ])
        .arg(format!("-I{}", lib.include.display()))
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib.dir.display()))
        .arg("-lrmsprop")
        .arg(format!("-Wl,-rpath,{}", lib.dir.display())));
    run(&mut Command::new(&exe))
}

/// The snippet's computation in Rust: optax.rmsprop(0.003, momentum=0.9) on f32 params
/// {1, 2, 3}, five fused steps with the gradient of sum(x^2).
fn expected_params() -> Vec<f32> {
    let mut config = rmsprop::Config::new(0.003);
    config.momentum = Some(0.9);
    let mut opt = rmsprop::Optimizer::<f32>::new(config, &[3]).expect("optimizer");
    let mut params = vec![1.0f32, 2.0, 3.0];
    for _ in 0..5 {
        let grads: Vec<f32> = params.iter().map(|p| 2.0 * p).collect();
        let outcome = opt.step(&mut params, &grads).expect("step");
        assert_eq!(outcome, rmsprop::Outcome::Applied);
    }
    params
}

#[test]
fn readme_c_program_prints_what_the_readme_and_the_crate_say() {
    let readme = readme();
    let source = block(&readme, "c");
    assert!(
        source.contains("rmsprop_step_f32") && source.contains("printf("),
        "the README's C block changed shape:\n{source}"
    );
    let printed = run_snippet(&source);

    // 1. The README quotes exactly what the program prints.
    let quoted = block(&readme, "text");
    assert_eq!(
        printed, quoted,
        "README.md quotes output the program does not print"
    );

    // 2. The printed parameters are the crate's, bit for bit.
    let values: Vec<f32> = printed
        .trim_end()
        .strip_prefix("params after 5 steps: ")
        .unwrap_or_else(|| panic!("unexpected output: {printed:?}"))
        .split(' ')
        .map(|v| v.parse().unwrap_or_else(|e| panic!("{v:?}: {e}")))
        .collect();
    let expected = expected_params();
    assert_eq!(
        values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        "printed {values:?}, the crate computes {expected:?}"
    );
    // And the steps did something: every parameter moved towards 0.
    for (p, p0) in values.iter().zip([1.0f32, 2.0, 3.0]) {
        assert!(*p < p0 && *p > 0.0, "{p} should lie in (0, {p0})");
    }
}

/// The fixture files listed in tests/fixtures/MANIFEST.
fn manifest_count() -> usize {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/MANIFEST");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count()
}

/// The number right after `prefix` in `text`.
fn number_after(text: &str, prefix: &str, file: &str) -> usize {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("{file} no longer says {prefix:?}"))
        + prefix.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{file}: no number after {prefix:?}"))
}

/// The fixture counts the docs quote are the MANIFEST's: README.md's "records N
/// trajectories", tests/fixtures/README.md's "N files" and its per-group table (cases per
/// dtype, two dtypes).
#[test]
fn quoted_fixture_counts_match_the_manifest() {
    let n = manifest_count();
    assert!(n > 100, "MANIFEST lists only {n} fixtures");
    assert_eq!(
        number_after(&readme(), "and records ", "README.md"),
        n,
        "README.md's fixture count"
    );
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/README.md");
    let fixtures_readme = std::fs::read_to_string(&p).unwrap();
    let file = "tests/fixtures/README.md";
    assert_eq!(number_after(&fixtures_readme, "## What is here (", file), n);
    // The group table: rows "| `group` | cases per dtype | what |" up to the next heading.
    let start = fixtures_readme.find("## What is here").unwrap();
    let section = &fixtures_readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let per_dtype: usize = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cell = l.split('|').nth(2).unwrap_or_else(|| panic!("{file}: {l}"));
            cell.trim()
                .parse::<usize>()
                .unwrap_or_else(|_| panic!("{file}: no case count in {l}"))
        })
        .sum();
    assert_eq!(
        per_dtype * 2,
        n,
        "{file}'s group table counts {per_dtype} cases per dtype"
    );
}
