//! State access, counts, reset, threads, queries, and the twin check (one handle copied
//! through its checkpoint, stepped through two entry points, compared).

use super::*;

pub(crate) fn state_access<T: Elem>(h: &Handle, b: &mut Bytes<'_>, set: bool) {
    let comp = match b.below(10) {
        0..=2 => RMSPROP_NU,
        3 | 4 => RMSPROP_MU,
        5 | 6 => RMSPROP_TRACE,
        7 => 0,
        8 => 4,
        _ => b.i32(),
    };
    let nt = h.sizes.len();
    let tensor = match b.below(10) {
        0 => nt + b.below(3),
        1 => usize::MAX,
        _ => b.below(nt.max(1)),
    };
    let size = h.sizes.get(tensor).copied();
    let n = match b.below(10) {
        0 => size.unwrap_or(0) + 1,
        1 => 0,
        _ => size.unwrap_or(3),
    };
    let ptrsel = b.below(12);
    let vals = values(b, n);
    let before = snap(h.p);
    let ci = COMPONENTS.iter().position(|&c| c == comp);
    let mut defects = vec![];
    if T::DT != h.dtype {
        defects.push(RMSPROP_ERR_WRONG_DTYPE);
    }
    match ci {
        None => defects.push(RMSPROP_ERR_BAD_ENUM),
        Some(i) if !before.has[i] => defects.push(RMSPROP_ERR_NO_SUCH_STATE),
        _ => {}
    }
    match size {
        None => defects.push(RMSPROP_ERR_OUT_OF_RANGE),
        Some(sz) if sz != n => defects.push(RMSPROP_ERR_LENGTH_MISMATCH),
        _ => {}
    }
    let sentinel = T::from_f64(-3.5);
    let mut arena = vec![sentinel; n + 1];
    if set {
        for i in 0..n {
            arena[i] = T::from_f64(vals[i]);
        }
    }
    let base = arena.as_mut_ptr();
    let p = match ptrsel {
        0 => null_mut(),
        1 => (base as *mut u8).wrapping_add(1).cast::<T>(),
        _ => base,
    };
    if n > 0 && ptrsel == 0 {
        defects.push(RMSPROP_ERR_NULL_POINTER);
    }
    if n > 0 && ptrsel == 1 {
        defects.push(RMSPROP_ERR_MISALIGNED);
    }
    let arena_before: Vec<u64> = arena.iter().map(|x| x.bits()).collect();
    let s = if set {
        T::set_state(h.p, comp, tensor, p, n)
    } else {
        T::get_state(h.p, comp, tensor, p, n)
    };
    let what = if set { "set_state" } else { "get_state" };
    expect(s, &defects, RMSPROP_OK, what);
    let after = snap(h.p);
    let arena_after: Vec<u64> = arena.iter().map(|x| x.bits()).collect();
    if s != RMSPROP_OK || !set {
        assert_unchanged(&before, &after, what);
    }
    if s != RMSPROP_OK || set {
        assert!(arena_before == arena_after, "{what}: buffer written");
        if s != RMSPROP_OK {
            return;
        }
    }
    let ci = ci.unwrap_or(0);
    let off: usize = h.sizes[..tensor].iter().sum();
    if set {
        let mut want = before.clone();
        if let Some(v) = want.state[ci].as_mut() {
            for j in 0..n {
                v[off + j] = arena[j].bits();
            }
        }
        assert_only(&before, &after, &want, "set_state");
    } else {
        let st = before.state[ci].as_ref().expect("has state");
        for j in 0..n {
            assert_eq!(
                arena[j].bits(),
                st[off + j],
                "get_state returned other values"
            );
        }
        assert_eq!(
            arena_after[n], arena_before[n],
            "get_state wrote past n elements"
        );
    }
}

pub(crate) fn counts(h: &Handle, b: &mut Bytes<'_>) {
    let before = snap(h.p);
    if b.bool() {
        let mut x = -9i32;
        let mut y = -9i32;
        let (px, py) = match b.below(4) {
            0 => (null_mut(), &mut y as *mut i32),
            1 => (&mut x as *mut i32, null_mut()),
            2 => (null_mut(), null_mut()),
            _ => (&mut x as *mut i32, &mut y as *mut i32),
        };
        ok(rmsprop_get_counts(h.p, px, py), "get_counts");
        if !px.is_null() {
            assert_eq!(x, before.counts.0);
        }
        if !py.is_null() {
            assert_eq!(y, before.counts.1);
        }
        assert_unchanged(&before, &snap(h.p), "get_counts");
        return;
    }
    let (x, y) = (b.i32(), b.i32());
    let s = rmsprop_set_counts(h.p, x, y);
    let defects = if x < 0 || y < 0 {
        vec![RMSPROP_ERR_INVALID_HYPERPARAMETER]
    } else {
        vec![]
    };
    expect(s, &defects, RMSPROP_OK, "set_counts");
    let after = snap(h.p);
    if s != RMSPROP_OK {
        assert_unchanged(&before, &after, "set_counts");
        return;
    }
    let mut want = before.clone();
    want.counts = (x, y);
    want.lr_bits = after.lr_bits;
    assert_only(&before, &after, &want, "set_counts");
    if let LearningRate::Schedule(m) = &before.config.learning_rate {
        let v = if h.dtype == RMSPROP_DTYPE_F32 {
            m.value::<f32>(x) as f64
        } else {
            m.value::<f64>(x)
        };
        assert_eq!(after.lr_bits, v.to_bits(), "lr after set_counts");
    } else {
        assert_eq!(after.lr_bits, before.lr_bits);
    }
}

pub(crate) fn reset(h: &Handle) {
    let before = snap(h.p);
    ok(rmsprop_reset(h.p), "reset");
    let after = snap(h.p);
    let mut want = before.clone();
    want.state = after.state.clone();
    want.counts = (0, 0);
    want.lr_bits = after.lr_bits;
    assert_only(&before, &after, &want, "reset");
    check_init_state(&after, before.config.initial_scale, "reset");
}

pub(crate) fn threads(h: &Handle, b: &mut Bytes<'_>) {
    let before = snap(h.p);
    let n = match b.below(8) {
        0 => 1025,
        1 => usize::MAX,
        x => (x - 2) % 4,
    };
    let s = rmsprop_set_threads(h.p, n);
    let defects = if n > 1024 {
        vec![RMSPROP_ERR_THREADS]
    } else {
        vec![]
    };
    expect(s, &defects, RMSPROP_OK, "set_threads");
    let after = snap(h.p);
    if s != RMSPROP_OK {
        assert_unchanged(&before, &after, "set_threads");
        return;
    }
    let mut want = before.clone();
    want.threads = n;
    assert_only(&before, &after, &want, "set_threads");
}

pub(crate) fn queries(h: &Handle, b: &mut Bytes<'_>) {
    let before = snap(h.p);
    let t = if b.bool() {
        b.u64() as usize
    } else {
        b.below(9)
    };
    let mut u = 77usize;
    let s = rmsprop_tensor_size(h.p, t, &mut u);
    if t < h.sizes.len() {
        ok(s, "tensor_size");
        assert_eq!(u, h.sizes[t]);
    } else {
        expect(s, &[RMSPROP_ERR_OUT_OF_RANGE], RMSPROP_OK, "tensor_size");
        assert_eq!(u, 77, "tensor_size wrote *out on error");
    }
    let mut bo = false;
    let c = b.i32();
    let s = rmsprop_has_state(h.p, c, &mut bo);
    if COMPONENTS.contains(&c) {
        ok(s, "has_state");
    } else {
        expect(s, &[RMSPROP_ERR_BAD_ENUM], RMSPROP_OK, "has_state");
    }
    let s = match b.below(9) {
        0 => rmsprop_dtype(h.p, null_mut()),
        1 => rmsprop_num_tensors(h.p, null_mut()),
        2 => rmsprop_total_elements(h.p, null_mut()),
        3 => rmsprop_tensor_size(h.p, 0, null_mut()),
        4 => rmsprop_has_state(h.p, RMSPROP_NU, null_mut()),
        5 => rmsprop_skipped_steps(h.p, null_mut()),
        6 => rmsprop_current_learning_rate(h.p, null_mut()),
        7 => rmsprop_get_threads(h.p, null_mut()),
        _ => rmsprop_checkpoint_size(h.p, null_mut()),
    };
    // tensor_size(0) on an empty layout may report the range first.
    let allowed = if h.sizes.is_empty() {
        vec![RMSPROP_ERR_NULL_POINTER, RMSPROP_ERR_OUT_OF_RANGE]
    } else {
        vec![RMSPROP_ERR_NULL_POINTER]
    };
    expect(s, &allowed, RMSPROP_OK, "query(NULL out)");
    assert_unchanged(&before, &snap(h.p), "queries");
}

/// Copy handle A through its checkpoint into B, give B another thread setting, run the same
/// gradients through two entry points (flat/list, update/in place/step), and compare.
pub(crate) fn twin<T: Elem>(h: &Handle, b: &mut Bytes<'_>) {
    let total = h.total();
    let ma = b.below(6);
    let mb = b.below(6);
    let threads_b = b.below(4);
    let gvals: Vec<T> = values(b, total).into_iter().map(T::from_f64).collect();
    let pvals: Vec<T> = values(b, total).into_iter().map(T::from_f64).collect();
    let sa = snap(h.p);
    let mut hb = null_mut();
    ok(
        rmsprop_create_from_checkpoint(sa.ckpt.as_ptr().cast(), sa.ckpt.len(), &mut hb),
        "twin: create_from_checkpoint",
    );
    ok(rmsprop_set_threads(hb, threads_b), "twin: set_threads");
    let (st_a, out_a) = run_mode(h.p, &h.sizes, ma, &gvals, &pvals);
    let (st_b, out_b) = run_mode(hb, &h.sizes, mb, &gvals, &pvals);
    st(st_a, "twin A");
    st(st_b, "twin B");
    assert_eq!(st_a, st_b, "twin: statuses differ (modes {ma}, {mb})");
    assert!(st_a == RMSPROP_OK || st_a == RMSPROP_SKIPPED_NON_FINITE);
    if st_a == RMSPROP_SKIPPED_NON_FINITE {
        for (mode, out) in [(ma, &out_a), (mb, &out_b)] {
            for (i, x) in out.iter().enumerate() {
                if mode % 3 == 2 {
                    assert_eq!(
                        x.bits(),
                        pvals[i].bits(),
                        "twin: skipped step changed params"
                    );
                } else {
                    assert!(x.to_f64() == 0.0, "twin: skipped update is not zero");
                }
            }
        }
    } else {
        // New parameters: the step's output, or params + update.
        let eff = |mode: usize, out: &[T]| -> Vec<T> {
            if mode % 3 == 2 {
                out.to_vec()
            } else {
                pvals.iter().zip(out).map(|(p, u)| p.add(*u)).collect()
            }
        };
        let (pa, pb) = (eff(ma, &out_a), eff(mb, &out_b));
        // Kernels run with subnormals flushed to zero (FTZ/DAZ, as XLA:CPU; see
        // src/kernel/fpenv.rs), while `params + update` is added here without flushing: a step
        // and an update plus the addition may differ by less than the smallest normal.
        let mixed = (ma % 3 == 2) != (mb % 3 == 2);
        let tiny = T::MIN_NORMAL;
        for i in 0..total {
            let close = mixed && (pa[i].to_f64() - pb[i].to_f64()).abs() <= tiny;
            assert!(
                same_nan(pa[i], pb[i]) || close,
                "twin: element {i} differs: {:?} vs {:?} (modes {ma}, {mb}, threads {threads_b}; \
                 param {:?}, grad {:?}, outputs {:?} / {:?}, config {:?}, counts {:?})",
                pa[i],
                pb[i],
                pvals[i],
                gvals[i],
                out_a[i],
                out_b[i],
                sa.config,
                sa.counts
            );
            if ma % 3 != 2 && mb % 3 != 2 {
                assert!(same_nan(out_a[i], out_b[i]), "twin: updates differ at {i}");
            }
        }
    }
    let (a, bb) = (snap(h.p), snap(hb));
    assert_eq!(bb.threads, threads_b);
    assert_eq!(a.counts, bb.counts, "twin: counts");
    assert_eq!(a.skipped, bb.skipped, "twin: skipped");
    assert_eq!(a.config, bb.config, "twin: config");
    assert_eq!(a.lr_bits, bb.lr_bits, "twin: lr");
    for c in 0..3 {
        match (&a.state[c], &bb.state[c]) {
            (Some(x), Some(y)) => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    let nan = |v: u64| {
                        if a.dtype == RMSPROP_DTYPE_F32 {
                            f32::from_bits(v as u32).is_nan()
                        } else {
                            f64::from_bits(v).is_nan()
                        }
                    };
                    assert!(
                        p == q || (nan(*p) && nan(*q)),
                        "twin: state component {c} element {i} differs (modes {ma}, {mb}, threads {threads_b})"
                    );
                }
            }
            (None, None) => {}
            _ => panic!("twin: state presence differs"),
        }
    }
    rmsprop_destroy(hb);
}

/// Mode: 0 flat update, 1 flat in place, 2 flat step, 3 list update, 4 list in place,
/// 5 list step. Returns the status and the updates (or the new params for a step).
pub(crate) fn run_mode<T: Elem>(
    h: *mut RmspropOptimizer,
    sizes: &[usize],
    mode: usize,
    g: &[T],
    p: &[T],
) -> (i32, Vec<T>) {
    let n = g.len();
    let mut g1 = g.to_vec();
    let mut out = if mode % 3 == 2 {
        p.to_vec()
    } else {
        vec![T::from_f64(-7.25); n]
    };
    let s = match mode {
        0 => T::update(h, g1.as_ptr(), out.as_mut_ptr(), n),
        1 => {
            let s = T::update(h, g1.as_ptr(), g1.as_mut_ptr(), n);
            out.copy_from_slice(&g1);
            s
        }
        2 => T::step(h, out.as_mut_ptr(), g1.as_ptr(), n),
        _ => {
            let mut gp: Vec<*const T> = vec![];
            let mut dp: Vec<*mut T> = vec![];
            let mut off = 0;
            let gbase = g1.as_mut_ptr();
            let obase = out.as_mut_ptr();
            for &sz in sizes {
                gp.push(gbase.wrapping_add(off));
                dp.push(if mode == 4 {
                    gbase.wrapping_add(off)
                } else {
                    obase.wrapping_add(off)
                });
                off += sz;
            }
            let s = if mode == 5 {
                T::step_tensors(h, dp.as_ptr(), gp.as_ptr(), sizes.len())
            } else {
                T::update_tensors(h, gp.as_ptr(), dp.as_ptr(), sizes.len())
            };
            if mode == 4 {
                out.copy_from_slice(&g1);
            }
            s
        }
    };
    (s, out)
}
