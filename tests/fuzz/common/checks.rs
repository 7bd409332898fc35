//! The oracle: statuses and messages, snapshots of a handle's whole observable state,
//! and the invariants compared between snapshots.

use super::*;

pub(crate) const COMPONENTS: [i32; 3] = [RMSPROP_NU, RMSPROP_MU, RMSPROP_TRACE];

pub(crate) fn last_error() -> String {
    let p = rmsprop_last_error_message();
    assert!(!p.is_null(), "rmsprop_last_error_message returned NULL");
    // SAFETY: the library returns a NUL-terminated string valid until the next failing
    // call on this thread; it is copied right away.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Check a returned status: never `RMSPROP_ERR_INTERNAL`, always a documented code with a
/// name, and an error always comes with a message.
pub(crate) fn st(s: i32, what: &str) -> i32 {
    if s == RMSPROP_ERR_INTERNAL {
        panic!(
            "{what}: RMSPROP_ERR_INTERNAL (a caught panic): {}",
            last_error()
        );
    }
    assert!(
        (RMSPROP_OK..=RMSPROP_ERR_OUT_OF_MEMORY).contains(&s),
        "{what}: undocumented status {s}"
    );
    let name = rmsprop_status_name(s);
    // SAFETY: static NUL-terminated storage.
    let name = unsafe { CStr::from_ptr(name) }.to_string_lossy();
    assert!(
        name != "RMSPROP_UNKNOWN_STATUS",
        "{what}: status {s} has no name"
    );
    if s >= RMSPROP_ERR_NULL_POINTER {
        assert!(
            !last_error().is_empty(),
            "{what}: error {name} without a message"
        );
    }
    s
}

pub(crate) fn name(s: i32) -> String {
    // SAFETY: static NUL-terminated storage.
    unsafe { CStr::from_ptr(rmsprop_status_name(s)) }
        .to_string_lossy()
        .into_owned()
}

/// `defects` are the errors the arguments deserve (any one of them may be reported, the
/// order of the checks is not documented); with none, the call must return `ok`.
pub(crate) fn expect(s: i32, defects: &[i32], ok: i32, what: &str) {
    st(s, what);
    if defects.is_empty() {
        assert!(
            s == ok,
            "{what}: expected {}, got {} ({})",
            name(ok),
            name(s),
            if s >= 2 { last_error() } else { String::new() }
        );
    } else {
        assert!(
            defects.contains(&s),
            "{what}: expected one of {:?}, got {} ({})",
            defects.iter().map(|&d| name(d)).collect::<Vec<_>>(),
            name(s),
            if s >= 2 { last_error() } else { String::new() }
        );
    }
}

// ---------------------------------------------------------------------------------------
// Snapshots of a handle, through the C API only.

/// Everything observable about a handle.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Snap {
    pub(crate) dtype: i32,
    pub(crate) sizes: Vec<usize>,
    pub(crate) has: [bool; 3],
    /// Per component (nu, mu, trace): the flat state bits, via per-tensor get_state.
    pub(crate) state: [Option<Vec<u64>>; 3],
    pub(crate) counts: (i32, i32),
    pub(crate) skipped: u64,
    pub(crate) lr_bits: u64,
    pub(crate) threads: usize,
    /// Decoded from the checkpoint.
    pub(crate) config: Config,
    pub(crate) skip: bool,
    pub(crate) ckpt: Vec<u8>,
}

pub(crate) fn ok(s: i32, what: &str) {
    expect(s, &[], RMSPROP_OK, what);
}

pub(crate) fn read_state<T: Elem>(h: *const RmspropOptimizer, c: i32, sizes: &[usize]) -> Vec<u64> {
    let mut all = Vec::new();
    for (t, &n) in sizes.iter().enumerate() {
        let mut buf = vec![T::from_f64(0.0); n];
        ok(
            T::get_state(h, c, t, buf.as_mut_ptr(), n),
            "get_state (snapshot)",
        );
        all.extend(buf.iter().map(|x| x.bits()));
    }
    all
}

pub(crate) fn save(h: *const RmspropOptimizer) -> Vec<u8> {
    let mut size = 0usize;
    ok(rmsprop_checkpoint_size(h, &mut size), "checkpoint_size");
    let mut buf = vec![0u8; size];
    let mut written = usize::MAX;
    ok(
        rmsprop_checkpoint_save(h, buf.as_mut_ptr().cast(), size, &mut written),
        "checkpoint_save",
    );
    assert_eq!(written, size, "checkpoint_save wrote a different size");
    buf
}

pub(crate) fn bits_of<T: checkpoint::Element + Elem>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| Elem::bits(*x)).collect()
}

pub(crate) fn snap(h: *const RmspropOptimizer) -> Snap {
    let mut dtype = 0;
    ok(rmsprop_dtype(h, &mut dtype), "dtype");
    let mut num = 0usize;
    ok(rmsprop_num_tensors(h, &mut num), "num_tensors");
    let mut sizes = Vec::with_capacity(num);
    for t in 0..num {
        let mut s = 0usize;
        ok(rmsprop_tensor_size(h, t, &mut s), "tensor_size");
        sizes.push(s);
    }
    let mut total = 0usize;
    ok(rmsprop_total_elements(h, &mut total), "total_elements");
    assert_eq!(total, sizes.iter().sum::<usize>(), "total != sum of sizes");
    let mut has = [false; 3];
    let mut state: [Option<Vec<u64>>; 3] = [None, None, None];
    for (i, &c) in COMPONENTS.iter().enumerate() {
        ok(rmsprop_has_state(h, c, &mut has[i]), "has_state");
        if has[i] {
            state[i] = Some(match dtype {
                RMSPROP_DTYPE_F32 => read_state::<f32>(h, c, &sizes),
                RMSPROP_DTYPE_F64 => read_state::<f64>(h, c, &sizes),
                d => panic!("rmsprop_dtype returned {d}"),
            });
        }
    }
    assert!(has[0], "nu must always exist");
    let mut counts = (-7, -7);
    ok(
        rmsprop_get_counts(h, &mut counts.0, &mut counts.1),
        "get_counts",
    );
    assert!(counts.0 >= 0 && counts.1 >= 0, "negative counts {counts:?}");
    let mut skipped = 0u64;
    ok(rmsprop_skipped_steps(h, &mut skipped), "skipped_steps");
    let mut lr = 0.0f64;
    ok(rmsprop_current_learning_rate(h, &mut lr), "current_lr");
    let mut threads = 0usize;
    ok(rmsprop_get_threads(h, &mut threads), "get_threads");
    let ckpt = save(h);
    // The checkpoint must hold exactly what the C API shows.
    let (config, skip) = match checkpoint::decode_any(&ckpt) {
        Ok(AnyOptimizer::F32(o)) => {
            check_decoded(
                &o,
                RMSPROP_DTYPE_F32,
                dtype,
                &sizes,
                &state,
                counts,
                skipped,
            );
            (o.config().clone(), o.skip_non_finite())
        }
        Ok(AnyOptimizer::F64(o)) => {
            check_decoded(
                &o,
                RMSPROP_DTYPE_F64,
                dtype,
                &sizes,
                &state,
                counts,
                skipped,
            );
            (o.config().clone(), o.skip_non_finite())
        }
        Ok(AnyOptimizer::Bf16(o)) => (o.config().clone(), o.skip_non_finite()),
        Ok(AnyOptimizer::F16(o)) => (o.config().clone(), o.skip_non_finite()),
        Err(e) => panic!("a checkpoint just saved does not decode: {e}"),
    };
    assert_eq!(has[1], config.centered, "has mu != centered");
    assert_eq!(has[2], config.momentum.is_some(), "has trace != momentum");
    Snap {
        dtype,
        sizes,
        has,
        state,
        counts,
        skipped,
        lr_bits: lr.to_bits(),
        threads,
        config,
        skip,
        ckpt,
    }
}

pub(crate) fn check_decoded<T: checkpoint::Element + Elem>(
    o: &Optimizer<T>,
    dt: i32,
    dtype: i32,
    sizes: &[usize],
    state: &[Option<Vec<u64>>; 3],
    counts: (i32, i32),
    skipped: u64,
) {
    assert_eq!(dt, dtype, "checkpoint dtype differs from rmsprop_dtype");
    assert_eq!(o.layout().sizes(), sizes, "checkpoint layout differs");
    let s = o.full_state();
    assert_eq!(
        (s.counts.schedule, s.counts.bias_correction),
        counts,
        "checkpoint counts differ"
    );
    assert_eq!(o.skipped_steps(), skipped, "checkpoint skipped differs");
    let bufs = [Some(&s.nu), s.mu.as_ref(), s.trace.as_ref()];
    for (i, b) in bufs.iter().enumerate() {
        assert_eq!(
            b.map(|v| bits_of(v)).as_ref(),
            state[i].as_ref(),
            "checkpoint state component {i} differs from get_state"
        );
    }
}

/// The first field where two snapshots differ.
pub(crate) fn diff(a: &Snap, b: &Snap, ignore_threads: bool) -> Option<&'static str> {
    if a.dtype != b.dtype {
        return Some("dtype");
    }
    if a.sizes != b.sizes {
        return Some("sizes");
    }
    if a.has != b.has {
        return Some("has_state");
    }
    if a.state != b.state {
        return Some("state");
    }
    if a.counts != b.counts {
        return Some("counts");
    }
    if a.skipped != b.skipped {
        return Some("skipped");
    }
    if a.lr_bits != b.lr_bits {
        return Some("current learning rate");
    }
    if !ignore_threads && a.threads != b.threads {
        return Some("threads");
    }
    if a.config != b.config {
        return Some("config");
    }
    if a.skip != b.skip {
        return Some("skip flag");
    }
    if a.ckpt != b.ckpt {
        return Some("checkpoint bytes");
    }
    None
}

pub(crate) fn assert_unchanged(before: &Snap, after: &Snap, what: &str) {
    if let Some(f) = diff(before, after, false) {
        panic!("{what}: {f} changed although the call failed or must not mutate");
    }
}

/// `after` equals `before` except for the fields an operation may change.
pub(crate) fn assert_only(before: &Snap, after: &Snap, expected: &Snap, what: &str) {
    let _ = before;
    let mut e = expected.clone();
    e.ckpt.clone_from(&after.ckpt);
    if let Some(f) = diff(&e, after, false) {
        panic!("{what}: unexpected {f} after the call");
    }
}
