//! Flat and list updates/steps through the C API, with their invariants.

use super::*;

pub(crate) fn round_lr(dtype: i32, v: f64) -> f64 {
    if dtype == RMSPROP_DTYPE_F32 {
        v as f32 as f64
    } else {
        v
    }
}

/// nu = initial_scale (in the dtype), mu = trace = 0, everywhere.
pub(crate) fn check_init_state(s: &Snap, initial_scale: f64, what: &str) {
    let (nu, zero) = if s.dtype == RMSPROP_DTYPE_F32 {
        ((initial_scale as f32).to_bits() as u64, 0u64)
    } else {
        (initial_scale.to_bits(), 0u64)
    };
    for (i, c) in s.state.iter().enumerate() {
        if let Some(v) = c {
            let want = if i == 0 { nu } else { zero };
            assert!(
                v.iter().all(|&x| x == want),
                "{what}: component {i} is not at its initial value"
            );
        }
    }
}

/// A pointer `align`-misaligned inside `raw` (which has room for one value after it).
pub(crate) fn misaligned_in(raw: &mut [u8; 16], align: usize) -> *mut u8 {
    let base = raw.as_mut_ptr();
    let off = if (base as usize + 1).is_multiple_of(align) {
        2
    } else {
        1
    };
    base.wrapping_add(off)
}

// ---------------------------------------------------------------------------------------
// Steps.

/// Flat update / step: `untyped` is `Some(dtype argument)` for `rmsprop_update` / `rmsprop_step`.
pub(crate) fn flat<T: Elem>(h: &Handle, b: &mut Bytes<'_>, untyped: Option<i32>) {
    let total = h.total();
    let mode = b.below(3); // 0 update, 1 update in place, 2 step
    let n = match b.below(10) {
        0 => total + 1,
        1 => total.saturating_sub(1),
        2 => 0,
        _ => total,
    };
    let ptrsel = b.below(20);
    let gvals = values(b, n);
    let pvals = values(b, n);
    let before = snap(h.p);

    // One arena: grads at [0, n), a gap, the destination at [n + 1, 2n + 1), a gap.
    let cap = 2 * n + 2;
    let sentinel = T::from_f64(-7.25);
    let mut arena = vec![sentinel; cap];
    for i in 0..n {
        arena[i] = T::from_f64(gvals[i]);
        arena[n + 1 + i] = if mode == 2 {
            T::from_f64(pvals[i])
        } else {
            sentinel
        };
    }
    let base = arena.as_mut_ptr();
    let mut src = base as *const T;
    let mut dst = base.wrapping_add(n + 1);
    if mode == 1 {
        dst = base;
    }
    let mut defects = vec![];
    if let Some(d) = untyped
        && d != RMSPROP_DTYPE_F32
        && d != RMSPROP_DTYPE_F64
    {
        defects.push(RMSPROP_ERR_BAD_ENUM);
    }
    if T::DT != h.dtype {
        defects.push(RMSPROP_ERR_WRONG_DTYPE);
    }
    if n != total {
        defects.push(RMSPROP_ERR_LENGTH_MISMATCH);
    }
    match ptrsel {
        0 => {
            src = null();
            if mode == 1 {
                dst = null_mut();
            }
        }
        1 => dst = null_mut(),
        2 => {
            src = null();
            dst = null_mut();
        }
        3 => {
            src = (base as *const u8).wrapping_add(1).cast();
            if mode == 1 {
                dst = src as *mut T;
            }
        }
        4 => dst = (dst as *mut u8).wrapping_add(1).cast(),
        5 | 6 if n >= 2 => {
            // Partial overlap of the two buffers.
            let k = 1 + b.below(n - 1);
            dst = base.wrapping_add(k);
            if ptrsel == 6 {
                src = base.wrapping_add(k) as *const T;
                dst = base;
            }
        }
        _ => {}
    }
    if n > 0 {
        if src.is_null() || dst.is_null() {
            defects.push(RMSPROP_ERR_NULL_POINTER);
        }
        if !(src as usize).is_multiple_of(T::SIZE) || !(dst as usize).is_multiple_of(T::SIZE) {
            defects.push(RMSPROP_ERR_MISALIGNED);
        }
        // As documented: the same pointer twice is an in-place update; any other
        // intersection of the two ranges (NULL counts as address 0) is an overlap.
        let (s0, d0) = (src as usize, dst as usize);
        let bytes = n * T::SIZE;
        let in_place = mode != 2 && s0 == d0;
        if !in_place && s0 < d0 + bytes && d0 < s0 + bytes {
            defects.push(RMSPROP_ERR_OVERLAP);
        }
    }
    let arena_before: Vec<u64> = arena.iter().map(|x| x.bits()).collect();
    // The gradients as the library will read them (aligned, in place or not).
    let grads_now: Vec<T> = if n > 0 && !src.is_null() && (src as usize).is_multiple_of(T::SIZE) {
        let off = (src as usize - base as usize) / T::SIZE;
        arena[off..off + n].to_vec()
    } else {
        vec![]
    };
    let skip_expected = before.skip && grads_now.iter().any(|g| !g.finite());
    let ok_status = if skip_expected {
        RMSPROP_SKIPPED_NON_FINITE
    } else {
        RMSPROP_OK
    };
    let s = match (untyped, mode) {
        (None, 2) => T::step(h.p, dst, src, n),
        (None, _) => T::update(h.p, src, dst, n),
        (Some(d), 2) => rmsprop_step(h.p, dst.cast(), src.cast(), n, d),
        (Some(d), _) => rmsprop_update(h.p, src.cast(), dst.cast(), n, d),
    };
    expect(s, &defects, ok_status, &format!("flat (mode {mode})"));
    let after = snap(h.p);
    let arena_after: Vec<u64> = arena.iter().map(|x| x.bits()).collect();
    if s >= RMSPROP_ERR_NULL_POINTER {
        assert_unchanged(&before, &after, "flat step/update error");
        assert!(
            arena_before == arena_after,
            "flat: buffers written on error"
        );
        return;
    }
    let off = if n > 0 {
        (dst as usize - base as usize) / T::SIZE
    } else {
        0
    };
    // Outside the destination nothing changed.
    for (i, (x, y)) in arena_before.iter().zip(&arena_after).enumerate() {
        if i < off || i >= off + n {
            assert_eq!(x, y, "flat: element {i} outside the destination written");
        }
    }
    check_step_state(&before, &after, s, "flat");
    if s == RMSPROP_SKIPPED_NON_FINITE {
        if mode == 2 {
            assert!(arena_before == arena_after, "skipped step changed params");
        } else {
            assert!(
                arena[off..off + n].iter().all(|x| x.to_f64() == 0.0),
                "skipped update must write zero updates"
            );
        }
    }
}

/// After a successful or skipped step: what may change.
pub(crate) fn check_step_state(before: &Snap, after: &Snap, s: i32, what: &str) {
    let mut want = before.clone();
    if s == RMSPROP_SKIPPED_NON_FINITE {
        want.skipped += 1;
        want.ckpt.clone_from(&after.ckpt);
        if let Some(f) = diff(&want, after, false) {
            panic!("{what}: skipped step changed {f}");
        }
        return;
    }
    want.counts = (
        before.counts.0.saturating_add(1),
        before.counts.1.saturating_add(1),
    );
    want.state = after.state.clone();
    want.lr_bits = after.lr_bits;
    want.ckpt.clone_from(&after.ckpt);
    if let Some(f) = diff(&want, after, false) {
        panic!("{what}: step changed {f} unexpectedly");
    }
    let sched = match &before.config.learning_rate {
        LearningRate::Fixed(v) => {
            assert_eq!(after.lr_bits, round_lr(before.dtype, *v).to_bits());
            return;
        }
        LearningRate::Schedule(s) => s,
    };
    let c = after.counts.0;
    let v = if before.dtype == RMSPROP_DTYPE_F32 {
        sched.value::<f32>(c) as f64
    } else {
        sched.value::<f64>(c)
    };
    assert_eq!(
        after.lr_bits,
        v.to_bits(),
        "{what}: learning rate after step"
    );
}

/// Per-tensor placement of list buffers in one arena.
pub(crate) struct ListBufs<T> {
    pub(crate) arena: Vec<T>,
    pub(crate) src: Vec<*const T>,
    pub(crate) dst: Vec<*mut T>,
}

pub(crate) fn list<T: Elem>(h: &Handle, b: &mut Bytes<'_>) {
    let mode = b.below(3); // 0 update, 1 update in place, 2 step
    let nt = h.sizes.len();
    let num = match b.below(10) {
        0 => nt + 1,
        1 => nt.saturating_sub(1),
        _ => nt,
    };
    let sizes: Vec<usize> = (0..num)
        .map(|i| h.sizes.get(i).copied().unwrap_or(4))
        .collect();
    let total: usize = sizes.iter().sum();
    let placement = b.below(8); // 0..=4 sequential, 5..=6 one tensor moved, 7 random
    // Regions start below `room_end`; the slack after it keeps every pointer passed valid
    // for the largest tensor (plus a misaligned byte), whichever region it was moved to.
    let room_end = 2 * total + 2 * num + 8;
    let cap = room_end + sizes.iter().copied().max().unwrap_or(0) + 2;
    let sentinel = T::from_f64(-7.25);
    let mut lb = ListBufs {
        arena: vec![sentinel; cap],
        src: vec![],
        dst: vec![],
    };
    let base = lb.arena.as_mut_ptr();
    let mut off = 0usize;
    let mut soff = Vec::with_capacity(num);
    let mut doff = Vec::with_capacity(num);
    for &n in &sizes {
        soff.push(off);
        off += n + 1;
        doff.push(off);
        off += n + 1;
    }
    let moved = b.below(num.max(1));
    for i in 0..num {
        if placement == 7 || (placement >= 5 && i == moved) {
            soff[i] = b.u16() as usize % room_end;
            doff[i] = b.u16() as usize % room_end;
        }
    }
    // Gradients and parameters written in placement order (later ones win on overlap).
    let gvals = values(b, total);
    let pvals = values(b, total);
    let mut k = 0;
    for (i, &n) in sizes.iter().enumerate() {
        for j in 0..n {
            if mode == 2 {
                lb.arena[doff[i] + j] = T::from_f64(pvals[k + j]);
            }
        }
        k += n;
    }
    let mut k = 0;
    for (i, &n) in sizes.iter().enumerate() {
        for j in 0..n {
            lb.arena[soff[i] + j] = T::from_f64(gvals[k + j]);
        }
        k += n;
    }
    for i in 0..num {
        lb.src.push(base.wrapping_add(soff[i]) as *const T);
        lb.dst.push(if mode == 1 {
            base.wrapping_add(soff[i])
        } else {
            base.wrapping_add(doff[i])
        });
    }
    // Per-tensor pointer defects.
    let ndef = b.below(4);
    for _ in 0..ndef {
        if num == 0 {
            break;
        }
        let i = b.below(num);
        match b.below(7) {
            0 => lb.src[i] = null(),
            1 => lb.dst[i] = null_mut(),
            2 => lb.src[i] = (lb.src[i] as *const u8).wrapping_add(1).cast(),
            3 => lb.dst[i] = (lb.dst[i] as *mut u8).wrapping_add(1).cast(),
            4 => lb.dst[i] = lb.src[i] as *mut T,
            5 => {
                let j = b.below(num);
                lb.dst[i] = lb.dst[j];
            }
            _ => {
                let j = b.below(num);
                lb.dst[i] = lb.src[j] as *mut T;
            }
        }
    }
    let null_arrays = b.below(20);
    let srcs = if null_arrays == 0 {
        null()
    } else {
        lb.src.as_ptr()
    };
    let dsts = if null_arrays == 1 {
        null()
    } else {
        lb.dst.as_ptr()
    };

    // The oracle.
    let mut defects = vec![];
    if T::DT != h.dtype {
        defects.push(RMSPROP_ERR_WRONG_DTYPE);
    }
    if num != nt {
        defects.push(RMSPROP_ERR_LENGTH_MISMATCH);
    }
    if num > 0 && (srcs.is_null() || dsts.is_null()) {
        defects.push(RMSPROP_ERR_NULL_POINTER);
    }
    // In place: every non-empty tensor's update overwrites its gradient (empty tensors'
    // pointers decide nothing).
    let in_place = mode != 2
        && num > 0
        && (0..num).all(|i| sizes[i] == 0 || std::ptr::eq(lb.src[i], lb.dst[i] as *const T));
    let span = |p: usize, n: usize| (p, p + n * T::SIZE);
    let mut dsp = vec![];
    let mut ssp = vec![];
    for i in 0..num {
        if sizes[i] == 0 {
            continue;
        }
        let (s, d) = (lb.src[i], lb.dst[i]);
        if s.is_null() || d.is_null() {
            defects.push(RMSPROP_ERR_NULL_POINTER);
        }
        if !(s as usize).is_multiple_of(T::SIZE) || !(d as usize).is_multiple_of(T::SIZE) {
            defects.push(RMSPROP_ERR_MISALIGNED);
        }
        dsp.push(span(d as usize, sizes[i]));
        ssp.push(span(s as usize, sizes[i]));
    }
    let inter = |a: (usize, usize), c: (usize, usize)| a.0 < c.1 && c.0 < a.1;
    let mut overlap = false;
    for (x, &a) in dsp.iter().enumerate() {
        for &c in &dsp[x + 1..] {
            overlap |= inter(a, c);
        }
        if !in_place {
            for &c in &ssp {
                overlap |= inter(a, c);
            }
        }
    }
    if overlap {
        defects.push(RMSPROP_ERR_OVERLAP);
    }
    // Gradients overlapping each other: allowed by the implementation (they are only
    // read), outside the documented contract; accept either outcome.
    let mut src_overlap = false;
    for (x, &a) in ssp.iter().enumerate() {
        for &c in &ssp[x + 1..] {
            src_overlap |= inter(a, c);
        }
    }

    let before = snap(h.p);
    let arena_before: Vec<u64> = lb.arena.iter().map(|x| x.bits()).collect();
    let grads_now: Vec<T> = (0..num)
        .filter(|&i| {
            sizes[i] > 0 && !lb.src[i].is_null() && (lb.src[i] as usize).is_multiple_of(T::SIZE)
        })
        .flat_map(|i| {
            let o = (lb.src[i] as usize - base as usize) / T::SIZE;
            lb.arena[o..o + sizes[i]].to_vec()
        })
        .collect();
    let ok_status = if before.skip && grads_now.iter().any(|g| !g.finite()) {
        RMSPROP_SKIPPED_NON_FINITE
    } else {
        RMSPROP_OK
    };
    let s = if mode == 2 {
        T::step_tensors(h.p, dsts, srcs, num)
    } else {
        T::update_tensors(h.p, srcs, dsts, num)
    };
    let what = format!("list (mode {mode}, placement {placement})");
    if src_overlap && defects.is_empty() {
        st(s, &what);
        assert!(
            s == ok_status || s == RMSPROP_ERR_OVERLAP,
            "{what}: {}",
            name(s)
        );
    } else {
        expect(s, &defects, ok_status, &what);
    }
    let after = snap(h.p);
    let arena_after: Vec<u64> = lb.arena.iter().map(|x| x.bits()).collect();
    if s >= RMSPROP_ERR_NULL_POINTER {
        assert_unchanged(&before, &after, "list error");
        assert!(
            arena_before == arena_after,
            "list: buffers written on error"
        );
        return;
    }
    // Outside the destinations nothing changed.
    let mut in_dst = vec![false; cap];
    for i in (0..num).filter(|&i| sizes[i] > 0) {
        let o = (lb.dst[i] as usize - base as usize) / T::SIZE;
        for f in &mut in_dst[o..o + sizes[i]] {
            *f = true;
        }
    }
    for i in 0..cap {
        if !in_dst[i] {
            assert_eq!(
                arena_before[i], arena_after[i],
                "{what}: element {i} outside the destinations written"
            );
        }
    }
    check_step_state(&before, &after, s, &what);
    if s == RMSPROP_SKIPPED_NON_FINITE {
        for i in 0..cap {
            if in_dst[i] {
                if mode == 2 {
                    assert_eq!(
                        arena_before[i], arena_after[i],
                        "skipped step changed params"
                    );
                } else {
                    assert!(
                        lb.arena[i].to_f64() == 0.0,
                        "skipped update: non-zero update"
                    );
                }
            }
        }
    }
}
