//! Checkpoints: round trips for every configuration family and both dtypes (continuing
//! bit-identically), rejection of every corruption with its specific error and an
//! unchanged optimizer, atomic saves (a child process SIGKILLed mid-save, a full disk),
//! the committed v1 files, and states produced by the real optax (tests/data/optax/).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rmsprop::checkpoint::{self, AnyOptimizer, CheckpointError, Element};
use rmsprop::{Config, LearningRate, Optimizer, Outcome, Schedule, Threads};

// ---------------------------------------------------------------------------------------
// Helpers.

/// A deterministic gradient stream (xorshift), with exact zeros and a wide range.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn vals<T: Element>(&mut self, n: usize) -> Vec<T> {
        (0..n)
            .map(|_| {
                let r = self.next();
                if r.is_multiple_of(11) {
                    T::ZERO
                } else {
                    let m = (r >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0;
                    T::from_f64(m * f64::powi(2.0, (r % 7) as i32 - 3))
                }
            })
            .collect()
    }
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("checkpoint-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Everything observable about an optimizer: its checkpoint (configuration, flags, counts,
/// layout, dtype, every buffer bit) and its thread setting.
fn snapshot<T: Element>(o: &Optimizer<T>) -> (Vec<u8>, Threads) {
    (checkpoint::encode(o), o.threads())
}

fn join_schedule() -> Schedule {
    Schedule::Join {
        schedules: vec![
            Schedule::WarmupCosineDecay {
                init_value: 0.0,
                peak_value: 0.01,
                warmup_steps: 2,
                decay_steps: 6,
                end_value: 0.001,
                exponent: 1.5,
            },
            Schedule::Join {
                schedules: vec![
                    Schedule::PiecewiseConstant {
                        init_value: 0.002,
                        boundaries_and_scales: vec![(1, 0.5), (3, 0.25)],
                    },
                    Schedule::ExponentialDecay {
                        init_value: 0.003,
                        transition_steps: 2,
                        decay_rate: 0.5,
                        transition_begin: 1,
                        staircase: true,
                        end_value: Some(1e-4),
                    },
                ],
                boundaries: vec![4],
            },
        ],
        boundaries: vec![5],
    }
}

/// Every configuration family: each flag, momentum forms, and every schedule kind.
fn families() -> Vec<(&'static str, Config, bool)> {
    let base = Config::new(0.01);
    let with = |f: &dyn Fn(&mut Config)| {
        let mut c = base.clone();
        f(&mut c);
        c
    };
    let sched = |s: Schedule| Config::new(LearningRate::Schedule(s));
    vec![
        ("default", base.clone(), false),
        ("skip_non_finite", base.clone(), true),
        (
            "centered",
            with(&|c| {
                c.centered = true;
                c.decay = 0.95;
                c.initial_scale = 0.1;
            }),
            false,
        ),
        ("momentum0", with(&|c| c.momentum = Some(0.0)), false),
        (
            "nesterov",
            with(&|c| {
                c.momentum = Some(0.9);
                c.nesterov = true;
            }),
            false,
        ),
        (
            "eps_outside_sqrt",
            with(&|c| {
                c.eps_in_sqrt = false;
                c.eps = 1e-3;
            }),
            false,
        ),
        (
            "bias_correction",
            with(&|c| c.bias_correction = true),
            false,
        ),
        (
            "everything",
            Config {
                learning_rate: LearningRate::Schedule(join_schedule()),
                decay: 0.8,
                eps: 1e-6,
                initial_scale: 0.5,
                eps_in_sqrt: false,
                centered: true,
                momentum: Some(0.5),
                nesterov: true,
                bias_correction: true,
            },
            true,
        ),
        ("constant", sched(Schedule::Constant { value: 0.02 }), false),
        (
            "linear",
            sched(Schedule::Linear {
                init_value: 0.01,
                end_value: 0.0,
                transition_steps: 5,
                transition_begin: 1,
            }),
            false,
        ),
        (
            "polynomial",
            sched(Schedule::Polynomial {
                init_value: 0.01,
                end_value: 0.001,
                power: 2.5,
                transition_steps: 8,
                transition_begin: 0,
            }),
            false,
        ),
        (
            "exponential",
            sched(Schedule::ExponentialDecay {
                init_value: 0.01,
                transition_steps: 3,
                decay_rate: 0.7,
                transition_begin: 2,
                staircase: false,
                end_value: None,
            }),
            false,
        ),
        (
            "cosine",
            sched(Schedule::CosineDecay {
                init_value: 0.01,
                decay_steps: 9,
                alpha: 0.1,
                exponent: 1.0,
            }),
            false,
        ),
        (
            "warmup_exponential",
            sched(Schedule::WarmupExponentialDecay {
                init_value: 0.0,
                peak_value: 0.01,
                warmup_steps: 3,
                transition_steps: 2,
                decay_rate: 0.5,
                transition_begin: 1,
                staircase: false,
                end_value: Some(0.002),
            }),
            false,
        ),
        ("join", sched(join_schedule()), false),
    ]
}

const SIZES: [usize; 4] = [3, 0, 5, 1];

/// Step `o` `steps` times from `rng`; with skipping on, one step carries a NaN.
fn run<T: Element>(o: &mut Optimizer<T>, params: &mut [T], rng: &mut Rng, steps: usize) {
    for k in 0..steps {
        let mut g = rng.vals::<T>(params.len());
        if o.skip_non_finite() && k == 2 {
            g[0] = T::from_f64(f64::NAN);
            assert_eq!(o.step(params, &g).unwrap(), Outcome::Skipped);
        } else {
            let _ = o.step(params, &g).unwrap();
        }
    }
}

fn built<T: Element>(config: &Config, skip: bool, steps: usize) -> (Optimizer<T>, Vec<T>) {
    let mut o = Optimizer::<T>::new(config.clone(), &SIZES).unwrap();
    o.set_skip_non_finite(skip);
    let mut params = Rng(7).vals::<T>(o.layout().total());
    run(&mut o, &mut params, &mut Rng(42), steps);
    (o, params)
}

fn bits<T: Element>(xs: &[T]) -> Vec<u8> {
    let mut v = Vec::new();
    T::put_le(xs, &mut v);
    v
}

// ---------------------------------------------------------------------------------------
// Round trips.

fn round_trip<T: Element>() {
    for (name, config, skip) in families() {
        let (mut a, mut pa) = built::<T>(&config, skip, 6);
        if skip {
            assert_eq!(a.skipped_steps(), 1, "{name}");
        }
        let bytes = checkpoint::encode(&a);
        assert_eq!(bytes.len(), checkpoint::encoded_len(&a), "{name}");

        // Into an optimizer of another configuration, same layout and dtype: it becomes `a`.
        let mut b = Optimizer::<T>::new(Config::new(0.5), &SIZES).unwrap();
        b.set_threads(1).unwrap();
        checkpoint::restore(&mut b, &bytes).unwrap();
        assert_eq!(b.config(), a.config(), "{name}");
        assert_eq!(b.skip_non_finite(), skip, "{name}");
        assert_eq!(b.skipped_steps(), a.skipped_steps(), "{name}");
        assert_eq!(b.counts(), a.counts(), "{name}");
        assert_eq!(
            b.threads(),
            Threads::Caller,
            "{name}: the thread setting is kept"
        );
        assert_eq!(checkpoint::encode(&b), bytes, "{name}");

        // A new optimizer, typed and untyped.
        let mut c = checkpoint::decode::<T>(&bytes).unwrap();
        assert_eq!(checkpoint::encode(&c), bytes, "{name}");
        match checkpoint::decode_any(&bytes).unwrap() {
            AnyOptimizer::F32(o) => {
                assert_eq!(T::DTYPE, checkpoint::Dtype::F32);
                assert_eq!(checkpoint::encode(&o), bytes);
            }
            AnyOptimizer::F64(o) => {
                assert_eq!(T::DTYPE, checkpoint::Dtype::F64);
                assert_eq!(checkpoint::encode(&o), bytes);
            }
            AnyOptimizer::Bf16(o) => {
                assert_eq!(T::DTYPE, checkpoint::Dtype::Bf16);
                assert_eq!(checkpoint::encode(&o), bytes);
            }
            AnyOptimizer::F16(o) => {
                assert_eq!(T::DTYPE, checkpoint::Dtype::F16);
                assert_eq!(checkpoint::encode(&o), bytes);
            }
        }

        // All three continue bit-identically.
        let (mut pb, mut pc) = (pa.clone(), pa.clone());
        run(&mut a, &mut pa, &mut Rng(99), 5);
        run(&mut b, &mut pb, &mut Rng(99), 5);
        run(&mut c, &mut pc, &mut Rng(99), 5);
        assert_eq!(bits(&pa), bits(&pb), "{name}");
        assert_eq!(bits(&pa), bits(&pc), "{name}");
        assert_eq!(checkpoint::encode(&a), checkpoint::encode(&b), "{name}");
        assert_eq!(checkpoint::encode(&a), checkpoint::encode(&c), "{name}");
    }
}

#[test]
fn round_trip_every_family_f32() {
    round_trip::<f32>();
}

#[test]
fn round_trip_every_family_f64() {
    round_trip::<f64>();
}

#[test]
fn round_trip_keeps_nan_payloads_and_extreme_values() {
    let mut c = Config::new(0.01);
    c.centered = true;
    c.momentum = Some(0.9);
    let mut o = Optimizer::<f32>::new(c, &[6]).unwrap();
    let nu = [
        f32::from_bits(0x7fc0_1234),
        f32::INFINITY,
        f32::MIN_POSITIVE / 4.0,
        0.0,
        f32::MAX,
        1.0,
    ];
    let mu = [-0.0f32, f32::from_bits(0xffc0_0001), 1e-45, -1.0, 2.0, 3.0];
    o.set_state(rmsprop::Component::Nu, &nu).unwrap();
    o.set_state(rmsprop::Component::Mu, &mu).unwrap();
    o.set_counts(rmsprop::Counts {
        schedule: i32::MAX,
        bias_correction: 12345,
    })
    .unwrap();
    o.set_skipped_steps(u64::MAX);
    let back = checkpoint::decode::<f32>(&checkpoint::encode(&o)).unwrap();
    assert_eq!(bits(back.state(rmsprop::Component::Nu).unwrap()), bits(&nu));
    assert_eq!(bits(back.state(rmsprop::Component::Mu).unwrap()), bits(&mu));
    assert_eq!(back.counts(), o.counts());
    assert_eq!(back.skipped_steps(), u64::MAX);
}

#[test]
fn empty_layout_round_trips() {
    let o = Optimizer::<f64>::new(Config::new(0.1), &[]).unwrap();
    let bytes = checkpoint::encode(&o);
    let mut p = Optimizer::<f64>::new(Config::new(0.2), &[]).unwrap();
    checkpoint::restore(&mut p, &bytes).unwrap();
    assert_eq!(p.config(), o.config());
    assert_eq!(checkpoint::encode(&p), bytes);
}

// ---------------------------------------------------------------------------------------
// Rejection: every failure names its cause and leaves the optimizer exactly as it was.

fn small() -> (Optimizer<f32>, Vec<u8>) {
    let mut c = Config::new(LearningRate::Schedule(Schedule::Join {
        schedules: vec![
            Schedule::Constant { value: 0.1 },
            Schedule::Linear {
                init_value: 0.1,
                end_value: 0.0,
                transition_steps: 3,
                transition_begin: 0,
            },
        ],
        boundaries: vec![2],
    }));
    c.centered = true;
    c.momentum = Some(0.9);
    let mut o = Optimizer::<f32>::new(c, &[2, 1]).unwrap();
    o.set_skip_non_finite(true);
    let mut p = [1.0f32, -2.0, 0.5];
    let _ = o.step(&mut p, &[0.1, 0.2, -0.3]).unwrap();
    let bytes = checkpoint::encode(&o);
    (o, bytes)
}

/// An optimizer with the small checkpoint's layout and dtype but a different state.
fn target() -> Optimizer<f32> {
    let mut o = Optimizer::<f32>::new(Config::new(0.3), &[2, 1]).unwrap();
    let mut p = [1.0f32; 3];
    let _ = o.step(&mut p, &[1.0, 2.0, 3.0]).unwrap();
    o.set_threads(1).unwrap();
    o
}

fn fix_crc(b: &mut [u8]) {
    let n = b.len() - 4;
    let crc = checkpoint::crc32(&b[..n]);
    b[n..].copy_from_slice(&crc.to_le_bytes());
}

/// Restore `bytes` into `target()`: must fail with an error `pred` accepts, unchanged.
fn rejects(bytes: &[u8], what: &str, pred: impl Fn(&CheckpointError) -> bool) {
    let mut t = target();
    let before = snapshot(&t);
    let err = checkpoint::restore(&mut t, bytes).expect_err(what);
    assert!(pred(&err), "{what}: unexpected error {err:?}");
    assert!(snapshot(&t) == before, "{what}: optimizer changed");
    assert!(checkpoint::decode_any(bytes).is_err(), "{what}");
}

fn is_corrupt(e: &CheckpointError) -> bool {
    matches!(e, CheckpointError::Corrupt(_))
}

#[test]
fn every_single_byte_change_is_rejected() {
    let (_, bytes) = small();
    assert!(bytes.len() > 100 && bytes.len() < 400, "{}", bytes.len());
    for i in 0..bytes.len() {
        for x in [0x01u8, 0x80, 0xFF, 0x5A] {
            let mut b = bytes.clone();
            b[i] ^= x;
            rejects(&b, &format!("byte {i} ^ {x:#x}"), is_corrupt);
        }
    }
}

#[test]
fn every_truncation_and_extension_is_rejected() {
    let (_, bytes) = small();
    for n in 0..bytes.len() {
        rejects(&bytes[..n], &format!("truncated to {n}"), is_corrupt);
    }
    let mut longer = bytes.clone();
    longer.push(0);
    rejects(&longer, "one extra byte", is_corrupt);
}

#[test]
fn wrong_magic_is_rejected() {
    let (_, mut bytes) = small();
    bytes[..8].copy_from_slice(b"PK\x03\x04xxxx");
    fix_crc(&mut bytes);
    rejects(&bytes, "wrong magic", |e| e.to_string().contains("magic"));
    rejects(b"hello, this is not a checkpoint at all", "text", |e| {
        e.to_string().contains("magic")
    });
}

#[test]
fn future_versions_are_a_version_error() {
    let (_, bytes) = small();
    for v in [2u32, 7, u32::MAX] {
        let mut b = bytes.clone();
        b[8..12].copy_from_slice(&v.to_le_bytes());
        fix_crc(&mut b);
        rejects(&b, "future version", |e| {
            *e == CheckpointError::Version {
                found: v,
                supported: checkpoint::VERSION,
            }
        });
    }
    let mut b = bytes.clone();
    b[8..12].copy_from_slice(&0u32.to_le_bytes());
    fix_crc(&mut b);
    rejects(&b, "version 0", is_corrupt);
}

#[test]
fn layout_and_dtype_mismatches_are_specific_errors() {
    let (_, bytes) = small();
    for sizes in [&[2usize, 2][..], &[3], &[2, 1, 0], &[1, 2]] {
        let mut t = Optimizer::<f32>::new(Config::new(0.3), sizes).unwrap();
        let before = snapshot(&t);
        let e = checkpoint::restore(&mut t, &bytes).unwrap_err();
        assert!(
            matches!(&e, CheckpointError::Mismatch(m) if m.contains("layout")),
            "{e:?}"
        );
        assert!(snapshot(&t) == before);
    }
    let mut t = Optimizer::<f64>::new(Config::new(0.3), &[2, 1]).unwrap();
    let before = snapshot(&t);
    let e = checkpoint::restore(&mut t, &bytes).unwrap_err();
    assert!(
        matches!(&e, CheckpointError::Mismatch(m) if m.contains("dtype")),
        "{e:?}"
    );
    assert!(snapshot(&t) == before);
    assert!(matches!(
        checkpoint::decode::<f64>(&bytes),
        Err(CheckpointError::Mismatch(_))
    ));
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("section tag")
}

/// Content that passes the checksum but not validation: still rejected, nothing allocated
/// from an unchecked length.
#[test]
fn invalid_content_behind_a_valid_checksum_is_rejected() {
    let (_, bytes) = small();
    let conf = find(&bytes, b"CONF") + 12;
    let layt = find(&bytes, b"LAYT") + 12;
    let stat = find(&bytes, b"STAT") + 12;
    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = bytes.clone();
        f(&mut b);
        fix_crc(&mut b);
        b
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "decay NaN",
            edit(&|b| b[conf..conf + 8].copy_from_slice(&f64::NAN.to_le_bytes())),
            "decay",
        ),
        (
            "decay 2",
            edit(&|b| b[conf..conf + 8].copy_from_slice(&2f64.to_le_bytes())),
            "decay",
        ),
        (
            "eps -1",
            edit(&|b| b[conf + 8..conf + 16].copy_from_slice(&(-1f64).to_le_bytes())),
            "eps",
        ),
        ("unknown flag", edit(&|b| b[conf + 24] |= 0x80), "flag"),
        ("bad bool", edit(&|b| b[conf + 25] = 2), "0 or 1"),
        ("lr kind", edit(&|b| b[conf + 34] = 9), "learning-rate kind"),
        ("schedule tag", edit(&|b| b[conf + 35] = 77), "schedule tag"),
        (
            "huge join count",
            edit(&|b| b[conf + 36..conf + 44].copy_from_slice(&u64::MAX.to_le_bytes())),
            "does not fit",
        ),
        ("dtype tag", edit(&|b| b[layt] = 5), "dtype"),
        ("padding", edit(&|b| b[layt + 3] = 1), "reserved"),
        (
            "huge tensor count",
            edit(&|b| b[layt + 8..layt + 16].copy_from_slice(&(u64::MAX / 8).to_le_bytes())),
            "does not fit",
        ),
        (
            "tensor sizes disagree with the state",
            edit(&|b| b[layt + 16..layt + 24].copy_from_slice(&3u64.to_le_bytes())),
            "elements per buffer",
        ),
        (
            "negative count",
            edit(&|b| b[stat..stat + 4].copy_from_slice(&(-1i32).to_le_bytes())),
            "schedule count",
        ),
        ("mask without mu", edit(&|b| b[stat + 16] = 0b101), "mu"),
        ("unknown mask bit", edit(&|b| b[stat + 16] |= 0x40), "mask"),
        (
            "huge element count",
            edit(&|b| b[stat + 24..stat + 32].copy_from_slice(&(1u64 << 61).to_le_bytes())),
            "does not fit",
        ),
        (
            "huge section length",
            edit(&|b| b[layt - 8..layt].copy_from_slice(&u64::MAX.to_le_bytes())),
            "does not fit",
        ),
        (
            "sections swapped",
            edit(&|b| b[layt - 12..layt - 8].copy_from_slice(b"STAT")),
            "expected section LAYT",
        ),
        ("reserved header word", edit(&|b| b[12] = 1), "reserved"),
    ];
    for (what, b, needle) in cases {
        rejects(&b, what, |e| {
            is_corrupt(e) && e.to_string().contains(needle)
        });
    }
}

#[test]
fn failed_writes_report_io_errors() {
    struct FailAfter(usize);
    impl std::io::Write for FailAfter {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("disk full (injected)"));
            }
            let n = b.len().min(self.0);
            self.0 -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    struct Zero;
    impl std::io::Write for Zero {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Ok(0)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (o, bytes) = small();
    for n in [0, 5, 24, 100, bytes.len() - 1] {
        let e = checkpoint::write_to(&o, FailAfter(n)).unwrap_err();
        assert!(
            matches!(&e, CheckpointError::Io(m) if m.contains("injected")),
            "{e:?}"
        );
    }
    assert!(matches!(
        checkpoint::write_to(&o, Zero),
        Err(CheckpointError::Io(_))
    ));
    checkpoint::write_to(&o, FailAfter(bytes.len())).unwrap();
}

// ---------------------------------------------------------------------------------------
// Files and atomicity.

#[test]
fn files_round_trip_and_replace_atomically() {
    let dir = tmp_dir("files");
    let path = dir.join("opt.ckpt");
    let (a, bytes) = small();
    checkpoint::save_file(&a, &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(listing(&dir), ["opt.ckpt"]);

    let mut t = target();
    checkpoint::load_file(&mut t, &path).unwrap();
    assert_eq!(checkpoint::encode(&t), bytes);
    assert_eq!(t.threads(), Threads::Caller);

    // Overwrite with another state: the file is replaced whole, no temporary remains.
    let other = target();
    checkpoint::save_file(&other, &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), checkpoint::encode(&other));
    assert_eq!(listing(&dir), ["opt.ckpt"]);

    // Relative file name in the current directory.
    let e = checkpoint::load_file(&mut t, dir.join("missing.ckpt")).unwrap_err();
    assert!(
        matches!(&e, CheckpointError::Io(m) if m.contains("missing.ckpt")),
        "{e:?}"
    );
}

/// The longest file name a Linux filesystem takes (255 bytes) saves and loads: the
/// temporary file's name must not grow with the target's (it used to append ~20 bytes and
/// fail with "File name too long").
#[test]
fn the_longest_file_name_saves() {
    let dir = tmp_dir("long-name");
    let name = format!("{}.ckpt", "n".repeat(255 - 5));
    assert_eq!(name.len(), 255);
    let path = dir.join(&name);
    let (a, bytes) = small();
    checkpoint::save_file(&a, &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    checkpoint::save_file(&a, &path).unwrap();
    assert_eq!(
        listing(&dir),
        std::slice::from_ref(&name),
        "no temporary left behind"
    );
    let mut t = target();
    checkpoint::load_file(&mut t, &path).unwrap();
    assert_eq!(checkpoint::encode(&t), bytes);
    // One byte more is the filesystem's refusal, reported as an I/O error naming the file.
    let e = checkpoint::save_file(&a, dir.join(format!("x{name}"))).unwrap_err();
    assert!(
        matches!(&e, CheckpointError::Io(m) if m.contains("rename")),
        "{e:?}"
    );
    assert_eq!(listing(&dir), [name], "no temporary left behind");
}

#[cfg(unix)]
#[test]
fn file_permissions_are_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tmp_dir("perms");
    let path = dir.join("opt.ckpt");
    let (a, _) = small();
    checkpoint::save_file(&a, &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    checkpoint::save_file(&target(), &path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn failed_saves_leave_the_old_file_and_no_temporary() {
    let dir = tmp_dir("failed-saves");
    let (a, _) = small();
    // A directory that does not exist: nothing is created anywhere.
    let e = checkpoint::save_file(&a, dir.join("no/such/dir/opt.ckpt")).unwrap_err();
    assert!(matches!(e, CheckpointError::Io(_)), "{e:?}");
    // The target is a non-empty directory: the rename fails after the temporary file was
    // written; it is removed and the directory is untouched.
    let busy = dir.join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("keep"), b"x").unwrap();
    let e = checkpoint::save_file(&a, &busy).unwrap_err();
    assert!(
        matches!(&e, CheckpointError::Io(m) if m.contains("rename")),
        "{e:?}"
    );
    assert_eq!(listing(&dir), ["busy"]);
    assert_eq!(listing(&busy), ["keep"]);
    // A path that names no file.
    assert!(matches!(
        checkpoint::save_file(&a, "/"),
        Err(CheckpointError::Io(_))
    ));
}

const CHILD_ROLE: &str = "RMSPROP_CHECKPOINT_CHILD";
const CHILD_PATH: &str = "RMSPROP_CHECKPOINT_CHILD_PATH";
const CHILD_ELEMS: &str = "RMSPROP_CHECKPOINT_CHILD_ELEMS";

fn child(role: &str, path: &Path, elems: usize) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "child_process_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ROLE, role)
    .env(CHILD_PATH, path)
    .env(CHILD_ELEMS, elems.to_string());
    c
}

fn big(elems: usize) -> Optimizer<f32> {
    let mut c = Config::new(0.01);
    c.centered = true;
    c.momentum = Some(0.9);
    let mut o = Optimizer::<f32>::new(c, &[elems]).unwrap();
    o.set_state(rmsprop::Component::Nu, &vec![0.25; elems])
        .unwrap();
    o
}

/// Not a test by itself: the body of the child processes the atomicity tests start (this
/// test binary re-invoked with `RMSPROP_CHECKPOINT_CHILD` set). Without it, it does nothing.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(CHILD_ROLE) else {
        return;
    };
    let path = PathBuf::from(std::env::var(CHILD_PATH).unwrap());
    let elems: usize = std::env::var(CHILD_ELEMS).unwrap().parse().unwrap();
    let o = big(elems);
    match role.as_str() {
        // Save a large checkpoint; the parent SIGKILLs this process during the save.
        "save" => checkpoint::save_file(&o, &path).unwrap(),
        // The disk fills up mid-save: files may not grow past 64 KiB in this process.
        #[cfg(unix)]
        "full-disk" => {
            let lim = libc::rlimit {
                rlim_cur: 64 << 10,
                rlim_max: 64 << 10,
            };
            // SAFETY: plain libc calls on this (child) process; SIGXFSZ is ignored so that
            // writes past the limit fail with EFBIG instead of killing the process.
            unsafe {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
            }
            let e = checkpoint::save_file(&o, &path).unwrap_err();
            assert!(
                matches!(&e, CheckpointError::Io(m) if m.contains("write")),
                "{e:?}"
            );
            println!("CHILD-SAW: {e}");
        }
        other => panic!("unknown child role {other}"),
    }
}

fn old_checkpoint(path: &Path) -> Vec<u8> {
    let (a, bytes) = small();
    checkpoint::save_file(&a, path).unwrap();
    bytes
}

fn assert_old_file_loads(path: &Path, bytes: &[u8]) {
    assert_eq!(std::fs::read(path).unwrap(), bytes, "the old file changed");
    let mut t = target();
    checkpoint::load_file(&mut t, path).unwrap();
    assert_eq!(checkpoint::encode(&t), bytes);
}

#[cfg(unix)]
#[test]
fn a_process_killed_mid_save_leaves_the_old_checkpoint_intact() {
    let dir = tmp_dir("killed");
    let path = dir.join("opt.ckpt");
    let old = old_checkpoint(&path);
    // 3 buffers of `elems` f32: 96 MiB at first; doubled if the save ever wins the race.
    let mut elems = 8usize << 20;
    for _attempt in 0..4 {
        let full = checkpoint::encoded_len(&big(0)) as u64 + 12 * elems as u64;
        let mut ch = child("save", &path, elems)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        let mut killed_at = None;
        while t0.elapsed() < Duration::from_secs(120) {
            let tmp = listing(&dir)
                .into_iter()
                .find(|n| n.starts_with(checkpoint::TEMP_PREFIX));
            if let Some(tmp) = tmp {
                let len = std::fs::metadata(dir.join(&tmp)).map_or(0, |m| m.len());
                if len >= 1 << 20 {
                    ch.kill().unwrap(); // SIGKILL
                    killed_at = Some((tmp, len));
                    break;
                }
            }
            if ch.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let status = ch.wait().unwrap();
        match killed_at {
            Some((tmp, len)) if !status.success() => {
                assert!(len < full, "the temporary file was already complete");
                eprintln!("killed the saving child at {len} of {full} bytes");
                // The target is the complete old checkpoint; the partial temporary file is
                // left behind by the dead process and is never read.
                assert_old_file_loads(&path, &old);
                let names = listing(&dir);
                assert!(names.contains(&tmp) && names.contains(&"opt.ckpt".to_string()));
                assert_eq!(names.len(), 2, "{names:?}");
                // The next save succeeds regardless, and replaces the file whole.
                let (a, _) = small();
                checkpoint::save_file(&target(), &path).unwrap();
                checkpoint::save_file(&a, &path).unwrap();
                assert_old_file_loads(&path, &old);
                return;
            }
            _ => {
                // The save finished before we saw it: start over with a bigger state.
                old_checkpoint(&path);
                for n in listing(&dir) {
                    if n != "opt.ckpt" {
                        std::fs::remove_file(dir.join(n)).unwrap();
                    }
                }
                elems *= 2;
            }
        }
    }
    panic!("could not catch a save in progress");
}

#[cfg(unix)]
#[test]
fn a_full_disk_mid_save_leaves_the_old_checkpoint_and_no_temporary() {
    let dir = tmp_dir("full-disk");
    let path = dir.join("opt.ckpt");
    let old = old_checkpoint(&path);
    // 1 Mi elements x 3 buffers = 12 MiB, far past the child's 64 KiB file-size limit.
    let out = child("full-disk", &path, 1 << 20).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-SAW"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_old_file_loads(&path, &old);
    assert_eq!(listing(&dir), ["opt.ckpt"]);
}

// ---------------------------------------------------------------------------------------
// The C API.

mod capi {
    use super::*;
    use rmsprop::capi::*;
    use std::ffi::{CStr, CString};
    use std::ptr;

    fn last() -> String {
        // SAFETY: the library returns a valid NUL-terminated string owned by this thread.
        unsafe { CStr::from_ptr(rmsprop_last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

    fn create(dtype: RmspropDtype, sizes: &[usize], centered: bool) -> *mut RmspropOptimizer {
        let mut opts = ptr::null_mut();
        assert_eq!(rmsprop_options_new(0.01, &mut opts), RMSPROP_OK);
        assert_eq!(rmsprop_options_set_centered(opts, centered), RMSPROP_OK);
        let mut h = ptr::null_mut();
        assert_eq!(
            rmsprop_create(opts, sizes.as_ptr(), sizes.len(), dtype, &mut h),
            RMSPROP_OK
        );
        rmsprop_options_free(opts);
        h
    }

    fn save(h: *const RmspropOptimizer) -> Vec<u8> {
        let mut n = 0usize;
        assert_eq!(rmsprop_checkpoint_size(h, &mut n), RMSPROP_OK);
        let mut buf = vec![0xEEu8; n + 3];
        let mut written = 0usize;
        assert_eq!(
            rmsprop_checkpoint_save(h, buf.as_mut_ptr().cast(), buf.len(), &mut written),
            RMSPROP_OK
        );
        assert_eq!(written, n);
        assert_eq!(&buf[n..], &[0xEE; 3], "nothing written past the checkpoint");
        buf.truncate(n);
        buf
    }

    #[test]
    fn c_api_round_trip_and_errors() {
        let a = create(RMSPROP_DTYPE_F32, &[2, 3], true);
        let mut p = [1.0f32; 5];
        let g = [0.5f32, -1.0, 0.0, 2.0, 3.0];
        assert_eq!(
            rmsprop_step_f32(a, p.as_mut_ptr(), g.as_ptr(), 5),
            RMSPROP_OK
        );
        let bytes = save(a);

        // Too small: the status, the message with the size, and nothing written.
        let mut small = vec![0u8; bytes.len() - 1];
        let mut written = 77usize;
        assert_eq!(
            rmsprop_checkpoint_save(a, small.as_mut_ptr().cast(), small.len(), &mut written),
            RMSPROP_ERR_BUFFER_TOO_SMALL
        );
        assert!(last().contains(&bytes.len().to_string()), "{}", last());
        assert_eq!(written, 77);
        assert!(small.iter().all(|&b| b == 0));
        assert_eq!(
            rmsprop_checkpoint_save(a, ptr::null_mut(), 0, ptr::null_mut()),
            RMSPROP_ERR_BUFFER_TOO_SMALL
        );
        assert_eq!(
            rmsprop_checkpoint_size(ptr::null(), &mut written),
            RMSPROP_ERR_NULL_POINTER
        );

        // Load into a handle of another configuration: it becomes `a`.
        let b = create(RMSPROP_DTYPE_F32, &[2, 3], false);
        assert_eq!(
            rmsprop_checkpoint_load(b, bytes.as_ptr().cast(), bytes.len()),
            RMSPROP_OK
        );
        assert_eq!(save(b), bytes);
        let mut has_mu = false;
        assert_eq!(rmsprop_has_state(b, RMSPROP_MU, &mut has_mu), RMSPROP_OK);
        assert!(has_mu);

        // A new handle from bytes.
        let mut c = ptr::null_mut();
        assert_eq!(
            rmsprop_create_from_checkpoint(bytes.as_ptr().cast(), bytes.len(), &mut c),
            RMSPROP_OK
        );
        assert_eq!(save(c), bytes);
        let mut dt = 0;
        assert_eq!(rmsprop_dtype(c, &mut dt), RMSPROP_OK);
        assert_eq!(dt, RMSPROP_DTYPE_F32);

        // Errors: each status, and the handle unchanged.
        let mut bad = bytes.clone();
        bad[40] ^= 1;
        assert_eq!(
            rmsprop_checkpoint_load(b, bad.as_ptr().cast(), bad.len()),
            RMSPROP_ERR_CHECKPOINT_CORRUPT
        );
        assert!(last().contains("checksum"), "{}", last());
        let mut future = bytes.clone();
        future[8] = 2;
        super::fix_crc(&mut future);
        assert_eq!(
            rmsprop_checkpoint_load(b, future.as_ptr().cast(), future.len()),
            RMSPROP_ERR_CHECKPOINT_VERSION
        );
        let mut out = ptr::null_mut();
        assert_eq!(
            rmsprop_create_from_checkpoint(future.as_ptr().cast(), future.len(), &mut out),
            RMSPROP_ERR_CHECKPOINT_VERSION
        );
        assert!(out.is_null());
        let d = create(RMSPROP_DTYPE_F64, &[2, 3], false);
        assert_eq!(
            rmsprop_checkpoint_load(d, bytes.as_ptr().cast(), bytes.len()),
            RMSPROP_ERR_CHECKPOINT_MISMATCH
        );
        let e = create(RMSPROP_DTYPE_F32, &[5], false);
        let e_before = save(e);
        assert_eq!(
            rmsprop_checkpoint_load(e, bytes.as_ptr().cast(), bytes.len()),
            RMSPROP_ERR_CHECKPOINT_MISMATCH
        );
        assert!(last().contains("layout"), "{}", last());
        assert_eq!(save(e), e_before);
        assert_eq!(
            rmsprop_checkpoint_load(b, ptr::null(), 5),
            RMSPROP_ERR_NULL_POINTER
        );
        assert_eq!(
            rmsprop_checkpoint_load(b, ptr::null(), 0),
            RMSPROP_ERR_CHECKPOINT_CORRUPT
        );
        assert_eq!(save(b), bytes);
        assert_eq!(
            rmsprop_create_from_checkpoint(bytes.as_ptr().cast(), bytes.len(), ptr::null_mut()),
            RMSPROP_ERR_NULL_POINTER
        );

        // Files.
        let dir = tmp_dir("capi-files");
        let path = CString::new(dir.join("c.ckpt").to_str().unwrap()).unwrap();
        assert_eq!(rmsprop_checkpoint_save_file(a, path.as_ptr()), RMSPROP_OK);
        assert_eq!(std::fs::read(dir.join("c.ckpt")).unwrap(), bytes);
        let f = create(RMSPROP_DTYPE_F32, &[2, 3], false);
        assert_eq!(rmsprop_checkpoint_load_file(f, path.as_ptr()), RMSPROP_OK);
        assert_eq!(save(f), bytes);
        let missing = CString::new(dir.join("nope").to_str().unwrap()).unwrap();
        assert_eq!(
            rmsprop_checkpoint_load_file(f, missing.as_ptr()),
            RMSPROP_ERR_IO
        );
        let nodir = CString::new(dir.join("x/y").to_str().unwrap()).unwrap();
        assert_eq!(
            rmsprop_checkpoint_save_file(a, nodir.as_ptr()),
            RMSPROP_ERR_IO
        );
        assert_eq!(
            rmsprop_checkpoint_save_file(a, ptr::null()),
            RMSPROP_ERR_NULL_POINTER
        );
        assert_eq!(
            rmsprop_checkpoint_load_file(ptr::null_mut(), path.as_ptr()),
            RMSPROP_ERR_NULL_POINTER
        );
        assert_eq!(save(f), bytes);

        // Both continue identically.
        let mut pa = p;
        let mut pf = p;
        for h_p in [(a, &mut pa), (f, &mut pf)] {
            assert_eq!(
                rmsprop_step_f32(h_p.0, h_p.1.as_mut_ptr(), g.as_ptr(), 5),
                RMSPROP_OK
            );
        }
        assert_eq!(pa.map(f32::to_bits), pf.map(f32::to_bits));
        assert_eq!(save(a), save(f));

        for h in [a, b, c, d, e, f] {
            rmsprop_destroy(h);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Committed files: the v1 format stays readable, and real optax states continue exactly.

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Fill every state buffer with values that depend only on the position, so that the
/// committed files test the format and not the kernel's rounding (which may be refined).
fn positional_state<T: Element>(mut o: Optimizer<T>) -> Optimizer<T> {
    let total = o.layout().total();
    for (k, c) in [
        rmsprop::Component::Nu,
        rmsprop::Component::Mu,
        rmsprop::Component::Trace,
    ]
    .into_iter()
    .enumerate()
    {
        if o.state(c).is_some() {
            let v: Vec<T> = (0..total)
                .map(|i| T::from_f64(0.25 * i as f64 - 3.0 * k as f64 + 0.125))
                .collect();
            o.set_state(c, &v).unwrap();
        }
    }
    o
}

/// The optimizers the committed v1 files hold, rebuilt from scratch.
fn v1_expected_f32() -> Optimizer<f32> {
    let config = Config {
        learning_rate: LearningRate::Schedule(join_schedule()),
        decay: 0.8,
        eps: 1e-6,
        initial_scale: 0.5,
        eps_in_sqrt: false,
        centered: true,
        momentum: Some(0.5),
        nesterov: true,
        bias_correction: true,
    };
    positional_state(built::<f32>(&config, true, 5).0)
}

fn v1_expected_f64() -> Optimizer<f64> {
    let mut c = Config::new(-0.003);
    c.momentum = Some(0.0);
    positional_state(built::<f64>(&c, false, 3).0)
}

fn check_v1<T: Element>(file: &str, expected: Optimizer<T>) {
    let path = data(file);
    if std::env::var_os("RMSPROP_WRITE_V1_CHECKPOINTS").is_some() {
        assert_eq!(checkpoint::VERSION, 1, "v1 files can only be written by v1");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, checkpoint::encode(&expected)).unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 1);
    let got = checkpoint::decode::<T>(&bytes).unwrap();
    assert_eq!(got.config(), expected.config());
    assert_eq!(got.layout(), expected.layout());
    assert_eq!(got.counts(), expected.counts());
    assert_eq!(got.skipped_steps(), expected.skipped_steps());
    assert_eq!(got.skip_non_finite(), expected.skip_non_finite());
    for c in [
        rmsprop::Component::Nu,
        rmsprop::Component::Mu,
        rmsprop::Component::Trace,
    ] {
        assert_eq!(
            got.state(c).map(bits),
            expected.state(c).map(bits),
            "{}",
            c.name()
        );
    }
    // Whatever the current format, the content is the same.
    assert_eq!(checkpoint::encode(&got), checkpoint::encode(&expected));
    if checkpoint::VERSION == 1 {
        assert_eq!(
            bytes,
            checkpoint::encode(&expected),
            "the v1 encoder changed"
        );
    }
}

#[test]
fn committed_v1_checkpoints_still_load() {
    check_v1("checkpoint_v1_f32.ckpt", v1_expected_f32());
    check_v1("checkpoint_v1_f64.ckpt", v1_expected_f64());
}

/// Ratio-free closeness for the optax cases that are not bit-exact: within `rtol` of the
/// largest magnitude in `want`.
fn close(got: &[f64], want: &[f64], rtol: f64, what: &str) {
    let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= rtol * scale, "{what}[{i}]: {g} vs {w}");
    }
}

fn optax_case<T: Element>(name: &str, head: &std::collections::HashMap<&str, &str>, rest: &[u8]) {
    let dir = data("optax");
    let start = std::fs::read(dir.join(format!("{name}.ckpt"))).unwrap();
    let after = std::fs::read(dir.join(format!("{name}.after.ckpt"))).unwrap();
    let total: usize = head["sizes"]
        .split(',')
        .map(|s| s.parse::<usize>().unwrap())
        .sum();
    let steps: usize = head["steps"].parse().unwrap();
    let exact = head["exact"] == "1";
    let n = total * size_of::<T>();
    let vals = |k: usize| T::get_le(&rest[k * n..(k + 1) * n]);
    assert_eq!(rest.len(), (steps + 2) * total * size_of::<T>(), "{name}");

    let mut o = checkpoint::decode::<T>(&start).unwrap();
    // The library holds the converted optax state exactly.
    assert_eq!(checkpoint::encode(&o), start, "{name}");
    let mut params = vals(0);
    for k in 0..steps {
        assert_eq!(o.step(&mut params, &vals(1 + k)).unwrap(), Outcome::Applied);
    }
    let want = checkpoint::decode::<T>(&after).unwrap();
    let f64s = |xs: &[T]| xs.iter().map(|x| x.to_f64()).collect::<Vec<_>>();
    let rtol = if T::DTYPE == checkpoint::Dtype::F32 {
        1e-4
    } else {
        1e-9
    };
    let cmp = |got: &[T], want: &[T], what: &str| {
        if exact {
            assert_eq!(bits(got), bits(want), "{name}: {what}");
        } else {
            close(&f64s(got), &f64s(want), rtol, &format!("{name}: {what}"));
        }
    };
    cmp(&params, &vals(steps + 1), "params");
    for c in [
        rmsprop::Component::Nu,
        rmsprop::Component::Mu,
        rmsprop::Component::Trace,
    ] {
        assert_eq!(o.state(c).is_some(), want.state(c).is_some(), "{name}");
        if let (Some(g), Some(w)) = (o.state(c), want.state(c)) {
            cmp(g, w, c.name());
        }
    }
    assert_eq!(o.config(), want.config(), "{name}");
    for kept in head["counts"].split(',') {
        match kept {
            "schedule" => assert_eq!(o.counts().schedule, want.counts().schedule),
            "bias_correction" => {
                assert_eq!(o.counts().bias_correction, want.counts().bias_correction)
            }
            "none" => {}
            other => panic!("{name}: unknown count {other}"),
        }
    }
}

/// States produced by the real optax 0.2.8 (tests/python/test_optax_roundtrip.py --write),
/// converted with tools/optax_state.py: the library loads them and continues as optax did.
#[test]
fn optax_states_continue_exactly() {
    let mut seen = 0;
    let mut names: Vec<_> = std::fs::read_dir(data("optax"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cont.bin"))
        .collect();
    names.sort();
    for file in names {
        let name = file.trim_end_matches(".cont.bin");
        let bytes = std::fs::read(data("optax").join(&file)).unwrap();
        let nl = bytes.iter().position(|&b| b == b'\n').unwrap();
        let line = std::str::from_utf8(&bytes[..nl]).unwrap();
        let head: std::collections::HashMap<&str, &str> = line
            .split(' ')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        assert_eq!(head["case"], name);
        match head["dtype"] {
            "f32" => optax_case::<f32>(name, &head, &bytes[nl + 1..]),
            "f64" => optax_case::<f64>(name, &head, &bytes[nl + 1..]),
            d => panic!("{name}: dtype {d}"),
        }
        seen += 1;
    }
    assert!(
        seen >= 6,
        "expected the 6 committed optax cases, found {seen}"
    );
}
