//! Data-parallel training over MPI with a sharded optimizer state
//! (`c_examples/mpi/mpi_trainer.c`, documented in `docs/mpi.md`).
//!
//! Builds the release library (`common::library::release()`, same target directory),
//! compiles the trainer with `mpicc` against `librmsprop.so` (rpath), and runs it with
//! `mpirun -np K` for K = 1..4 on the real digits data set. Checks that:
//! - the parameters are bit-identical after every step whatever the rank count, with
//!   both rank-count independent gradient reductions (fixed point and ordered
//!   micro-batches), while the naive float reduction is not;
//! - the model learns (test accuracy);
//! - sharded checkpoints resume bit-identically, with the same or another rank count,
//!   and a corrupt shard is refused;
//! - ranks x threads does not oversubscribe the node.
//!
//! MPI is required: without `mpicc`/`mpirun` these tests FAIL (they do not skip).
//! Install it with `apt-get install openmpi-bin libopenmpi-dev`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Steps per run: enough to learn the digits well, few enough for a quick test.
const STEPS: u32 = 60;
/// Per-run wall-clock limit; a run takes about a second.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
const INSTALL_HINT: &str =
    "the MPI tests need Open MPI: apt-get install openmpi-bin libopenmpi-dev";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn data_file() -> PathBuf {
    let p = root().join("c_examples/data/digits.csv");
    assert!(
        p.is_file(),
        "the digits data set is missing: {}",
        p.display()
    );
    p
}

/// Scratch space of this test target (cargo's `CARGO_TARGET_TMPDIR`).
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("mpi")
        .join(name);
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
    d
}

/// Run a tool, failing loudly (not skipping) when it is not installed.
fn tool_output(cmd: &mut Command, what: &str) -> std::process::Output {
    match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("{what} not found on PATH: {INSTALL_HINT}")
        }
        Err(e) => panic!("cannot run {what}: {e}"),
    }
}

/// The trainer, compiled once per test binary with warnings as errors.
fn trainer() -> &'static Path {
    static TRAINER: OnceLock<PathBuf> = OnceLock::new();
    TRAINER.get_or_init(|| {
        let lib_dir = &common::library::release().dir;
        let exe = scratch("bin").join("mpi_trainer");
        let mut cmd = Command::new("mpicc");
        cmd.args([
            "-std=c11",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Wpedantic",
            "-Werror",
        ])
        .arg("-ffp-contract=off")
        .arg("-I")
        .arg(root().join("include"))
        .arg(root().join("c_examples/mpi/mpi_trainer.c"))
        .arg("-L")
        .arg(lib_dir)
        .arg("-lrmsprop")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-lm")
        .arg("-o")
        .arg(&exe);
        let out = tool_output(&mut cmd, "mpicc");
        assert!(
            out.status.success(),
            "mpicc failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        exe
    })
}

/// What one `mpirun` printed (rank 0's output).
struct Run {
    ranks: usize,
    stdout: String,
    stderr: String,
    success: bool,
}

impl Run {
    /// `(step, hash)` after every step of this run.
    fn hashes(&self) -> Vec<(u32, String)> {
        self.stdout
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                match f.as_slice() {
                    ["step", n, "lr", _, "hash", h] => Some((n.parse().unwrap(), h.to_string())),
                    _ => None,
                }
            })
            .collect()
    }

    /// A number after `key` on the `final` line.
    fn final_value(&self, key: &str) -> f64 {
        let line = self
            .stdout
            .lines()
            .find(|l| l.starts_with("final "))
            .unwrap_or_else(|| {
                panic!(
                    "no final line from {} ranks:\n{}\n{}",
                    self.ranks, self.stdout, self.stderr
                )
            });
        let f: Vec<&str> = line.split_whitespace().collect();
        let i = f
            .iter()
            .position(|w| *w == key)
            .expect("key on the final line");
        f[i + 1].parse().expect("a number")
    }

    /// `(shard length, threads, local ranks, cores)` of every rank.
    fn ranks_info(&self) -> Vec<(usize, usize, usize, usize)> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with("rank "))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let len = f[3].split('+').nth(1).unwrap().parse().unwrap();
                (
                    len,
                    f[7].parse().unwrap(),
                    f[9].parse().unwrap(),
                    f[11].parse().unwrap(),
                )
            })
            .collect()
    }
}

/// `mpirun -np ranks mpi_trainer --data digits.csv --steps STEPS args...`. Runs are
/// serialised: ranks of concurrent runs would only compete for the same cores.
fn mpirun(ranks: usize, args: &[&str]) -> Run {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let exe = trainer();
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch(&format!("run-{}-{ranks}", std::process::id()));
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let mut cmd = Command::new("mpirun");
    cmd.args([
        "--allow-run-as-root",
        "--oversubscribe",
        "-np",
        &ranks.to_string(),
    ])
    .arg(exe)
    .arg("--data")
    .arg(data_file())
    .args(["--steps", &STEPS.to_string()])
    .args(args)
    .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
    .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    // Containers often forbid the cross-process memory copy of the shared-memory
    // transport (ptrace scope); plain copies work everywhere.
    .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
    .stdin(Stdio::null())
    .stdout(fs::File::create(&out_path).unwrap())
    .stderr(fs::File::create(&err_path).unwrap());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("mpirun not found on PATH: {INSTALL_HINT}")
        }
        Err(e) => panic!("cannot run mpirun: {e}"),
    };
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for mpirun") {
            break s;
        }
        if start.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "mpirun -np {ranks} {args:?} ran over {RUN_TIMEOUT:?}:\n{}",
                fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let run = Run {
        ranks,
        stdout: fs::read_to_string(&out_path).unwrap(),
        stderr: fs::read_to_string(&err_path).unwrap(),
        success: status.success(),
    };
    let _ = fs::remove_dir_all(&dir);
    run
}

fn mpirun_ok(ranks: usize, args: &[&str]) -> Run {
    let run = mpirun(ranks, args);
    assert!(
        run.success,
        "mpirun -np {ranks} {args:?} failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    assert_eq!(
        run.ranks_info().len(),
        ranks,
        "one line per rank:\n{}",
        run.stdout
    );
    run
}

fn assert_same_hashes(reference: &[(u32, String)], run: &Run, what: &str) {
    let hashes = run.hashes();
    assert_eq!(
        hashes.len(),
        reference.len(),
        "{what}: step count\n{}",
        run.stdout
    );
    for (a, b) in reference.iter().zip(&hashes) {
        assert_eq!(
            a, b,
            "{what}: parameters differ after step {} on {} ranks",
            a.0, run.ranks
        );
    }
}

/// Runs `reduce` on 1, 2, 3 and 4 ranks; every step's parameters must be bit-identical.
fn check_rank_count_independence(reduce: &str) {
    let one = mpirun_ok(1, &["--reduce", reduce]);
    let reference = one.hashes();
    assert_eq!(reference.len(), STEPS as usize, "{}", one.stdout);
    assert_eq!(
        one.ranks_info()[0].0,
        2410,
        "one rank holds the whole model"
    );
    let acc = one.final_value("test_acc");
    assert!(
        acc >= 0.9,
        "test accuracy {acc} after {STEPS} steps (expected >= 0.9)"
    );
    for ranks in 2..=4 {
        let run = mpirun_ok(ranks, &["--reduce", reduce]);
        assert_same_hashes(&reference, &run, &format!("--reduce {reduce}"));
        assert_eq!(run.final_value("test_acc"), acc);
        let info = run.ranks_info();
        // Shards cover the model; 2410 is not divisible by 3 or 4, so they are uneven.
        assert_eq!(info.iter().map(|r| r.0).sum::<usize>(), 2410);
        let (min, max) = (
            info.iter().map(|r| r.0).min(),
            info.iter().map(|r| r.0).max(),
        );
        assert!(max.unwrap() - min.unwrap() <= 1);
        if ranks >= 3 {
            assert_ne!(min, max, "uneven shards with {ranks} ranks");
        }
        // No oversubscription: threads sum to at most the cores (or one per rank).
        let threads: usize = info.iter().map(|r| r.1).sum();
        let cores = info[0].3;
        assert!(info.iter().all(|r| r.1 >= 1 && r.2 == ranks));
        assert!(
            threads <= cores.max(ranks),
            "{threads} threads on {cores} cores: {info:?}"
        );
    }
}

#[test]
fn fixed_point_reduction_is_rank_count_independent() {
    check_rank_count_independence("fixed");
}

#[test]
fn ordered_microbatch_reduction_is_rank_count_independent() {
    check_rank_count_independence("ordered");
}

/// The hazard the two reductions avoid: float sums grouped by rank differ with the rank
/// count (the run is still deterministic for a fixed rank count).
#[test]
fn naive_float_reduction_depends_on_rank_count() {
    let one = mpirun_ok(1, &["--reduce", "float"]).hashes();
    let two = mpirun_ok(2, &["--reduce", "float"]).hashes();
    let again = mpirun_ok(2, &["--reduce", "float"]).hashes();
    assert_eq!(two, again, "a fixed rank count is reproducible");
    assert_ne!(one, two, "float reduction order changes the result");
}

/// Sharded checkpoints: N/2 steps, save, exit, resume for N/2 more gives the same
/// parameters after every step as N steps straight: on as many ranks (the library's
/// checkpoint files) and on another number of ranks (re-sharding through the per-tensor
/// state access). Damaged shards are refused.
#[test]
fn sharded_checkpoints_resume_bit_identically() {
    let half = STEPS as usize / 2;
    let straight = mpirun_ok(2, &[]).hashes();
    assert_eq!(straight.len(), STEPS as usize);
    let mut dirs = Vec::new();
    for (save_ranks, resume_ranks) in [(2, &[2usize, 3, 4][..]), (3, &[3, 1][..])] {
        let dir = scratch(&format!("ckpt-{save_ranks}"));
        let dir_s = dir.to_str().unwrap();
        let first = mpirun_ok(
            save_ranks,
            &["--stop-after", &half.to_string(), "--save", dir_s],
        );
        assert_eq!(first.hashes(), straight[..half]);
        for i in 0..save_ranks {
            for ext in ["rmsprop", "params"] {
                let f = dir.join(format!("shard-{i:04}.{ext}"));
                assert!(f.is_file(), "{} saved", f.display());
            }
        }
        for &ranks in resume_ranks {
            let second = mpirun_ok(ranks, &["--resume", dir_s]);
            assert!(
                second.stdout.contains(&format!("resumed step {half}")),
                "{}",
                second.stdout
            );
            assert_eq!(
                second.hashes(),
                straight[half..],
                "save on {save_ranks} ranks, resume on {ranks}: not bit-identical"
            );
        }
        dirs.push(dir);
    }
    // Damaged shards are refused, not loaded: the optimizer file by the library's CRC
    // (whole load and re-sharding), the parameter file by the trainer's checksum.
    for (file, ranks) in [
        ("shard-0001.rmsprop", 2),
        ("shard-0001.rmsprop", 3),
        ("shard-0001.params", 2),
    ] {
        let dir = scratch("damaged");
        for entry in fs::read_dir(&dirs[0]).unwrap() {
            let entry = entry.unwrap();
            fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        let path = dir.join(file);
        let mut bytes = fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        fs::write(&path, bytes).unwrap();
        let bad = mpirun(ranks, &["--resume", dir.to_str().unwrap()]);
        assert!(
            !bad.success,
            "a damaged {file} must be refused on {ranks} ranks"
        );
        assert!(
            bad.stderr.to_lowercase().contains("corrupt"),
            "{}",
            bad.stderr
        );
    }
}

/// The example block of docs/mpi.md: the `mpirun` arguments after `./mpi_trainer` and the
/// expected output lines.
fn doc_example() -> (usize, Vec<String>, Vec<String>) {
    let doc = fs::read_to_string(root().join("docs/mpi.md")).expect("read docs/mpi.md");
    let start = doc
        .find("```\n$ mpirun -np ")
        .expect("docs/mpi.md has no example block starting with `$ mpirun -np`")
        + 4;
    let block = &doc[start..start + doc[start..].find("```").expect("unterminated block")];
    let mut lines = block.lines();
    let command: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let ["$", "mpirun", "-np", np, "./mpi_trainer", args @ ..] = command.as_slice() else {
        panic!("unexpected example command {command:?}");
    };
    // `--data <path>` is replaced by the test's absolute path.
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if *a == "--data" {
            it.next();
        } else {
            rest.push(a.to_string());
        }
    }
    (
        np.parse().expect("rank count"),
        rest,
        lines.map(str::to_string).collect(),
    )
}

/// Whether a real output line matches a documented one: tokens equal, except `<...>`
/// (any value) and the numbers of the `final` line (within 0.02: libm-dependent).
fn line_matches(doc: &str, real: &str) -> bool {
    let d: Vec<&str> = doc.split_whitespace().collect();
    let r: Vec<&str> = real.split_whitespace().collect();
    let is_final = d.first() == Some(&"final");
    d.len() == r.len()
        && d.iter().zip(&r).enumerate().all(|(i, (d, r))| {
            if d.starts_with('<') && d.ends_with('>') {
                return true;
            }
            if is_final
                && i > 2
                && let (Ok(a), Ok(b)) = (d.parse::<f64>(), r.parse::<f64>())
            {
                return (a - b).abs() <= 0.02;
            }
            d == r
        })
}

#[test]
fn docs_example_matches_a_real_run() {
    let (np, args, expected) = doc_example();
    assert!(expected.len() >= 5, "example too short: {expected:?}");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = mpirun_ok(np, &args);
    let real: Vec<&str> = run.stdout.lines().collect();
    // Match in order; a documented `...` skips any number of real lines.
    let mut at = 0;
    let mut skipping = false;
    for doc in &expected {
        if doc.trim() == "..." {
            skipping = true;
            continue;
        }
        let found = (at..real.len())
            .take(if skipping { usize::MAX } else { 1 })
            .find(|&i| line_matches(doc, real[i]));
        let Some(i) = found else {
            panic!(
                "docs/mpi.md's example line {doc:?} does not match the run's output \
                 (from line {at}):\n{}",
                run.stdout
            );
        };
        at = i + 1;
        skipping = false;
    }
    assert_eq!(
        at,
        real.len(),
        "the run printed more than docs/mpi.md shows:\n{}",
        run.stdout
    );
    // The line matcher itself: a wrong hash placeholder-free line would not match.
    assert!(!line_matches("step 1 lr 1 hash 00", "step 1 lr 1 hash 01"));
    assert!(line_matches("step 1 lr 1 hash <h>", "step 1 lr 1 hash 01"));
    assert!(!line_matches(
        "final step 100 train_acc 0.9910",
        "final step 100 train_acc 0.9610"
    ));
}
