//! Operations on optimizer handles: create, hyperparameter setters, checkpoints, and
//! NULL/out-parameter checks across every entry point.

use super::*;

impl Ctx {
    /// A handle index; creates a default handle when there is none.
    pub(crate) fn handle(&mut self, b: &mut Bytes<'_>) -> usize {
        if self.hs.is_empty() {
            let o = self.default_opts();
            let sizes = vec![3usize, 0, 5];
            let mut h = null_mut();
            ok(
                rmsprop_create(self.opts[o].p, sizes.as_ptr(), 3, RMSPROP_DTYPE_F32, &mut h),
                "create(default)",
            );
            self.hs.push(Handle {
                p: h,
                dtype: RMSPROP_DTYPE_F32,
                sizes,
            });
            return 0;
        }
        b.below(self.hs.len())
    }

    pub(crate) fn push_handle(&mut self, h: Handle) {
        if self.hs.len() >= MAX_HANDLES {
            rmsprop_destroy(self.hs.remove(0).p);
        }
        self.hs.push(h);
    }

    pub(crate) fn create(&mut self, b: &mut Bytes<'_>) {
        let null_opts = b.below(32) == 0;
        let oi = if null_opts {
            usize::MAX
        } else {
            let d = self.default_opts();
            if self.opts.len() > 1 {
                b.below(self.opts.len())
            } else {
                d
            }
        };
        let num = b.below(MAX_TENSORS + 1);
        let mut sizes = Vec::with_capacity(num);
        let mut left = MAX_ELEMS;
        let huge = b.below(24) == 0;
        for _ in 0..num {
            let sel = b.u8();
            let s = if sel < 0x60 {
                (sel % 8) as usize
            } else if sel < 0xF0 {
                b.u16() as usize % 1100
            } else {
                b.u16() as usize
            };
            let s = s.min(left);
            left -= s;
            sizes.push(s);
        }
        let mut defects = vec![];
        if huge {
            // Sizes whose total (or byte size) overflows: must be a clean RMSPROP_ERR_OVERFLOW,
            // without allocating.
            let big = [usize::MAX, usize::MAX / 2 + 1, isize::MAX as usize / 4 + 1][b.below(3)];
            sizes.push(big);
            if b.bool() {
                sizes.push(big);
            }
            defects.push(RMSPROP_ERR_OVERFLOW);
        }
        let num = sizes.len();
        let null_sizes = num > 0 && b.below(32) == 0;
        let dtype = match b.below(9) {
            0..=3 => RMSPROP_DTYPE_F32,
            4..=7 => RMSPROP_DTYPE_F64,
            _ => [0, 5, -1, i32::MIN][b.below(4)],
        };
        let null_out = b.below(32) == 0;
        if null_opts || null_sizes || null_out {
            defects.push(RMSPROP_ERR_NULL_POINTER);
        }
        if dtype != RMSPROP_DTYPE_F32 && dtype != RMSPROP_DTYPE_F64 {
            defects.push(RMSPROP_ERR_BAD_ENUM);
        }
        let mut out: *mut RmspropOptimizer = null_mut();
        let s = rmsprop_create(
            if null_opts { null() } else { self.opts[oi].p },
            if null_sizes { null() } else { sizes.as_ptr() },
            num,
            dtype,
            if null_out { null_mut() } else { &mut out },
        );
        expect(s, &defects, RMSPROP_OK, "create");
        if s != RMSPROP_OK {
            assert!(out.is_null(), "create wrote *out on error");
            return;
        }
        let h = Handle {
            p: out,
            dtype,
            sizes,
        };
        let sn = snap(h.p);
        let o = &self.opts[oi];
        assert_eq!(sn.dtype, dtype, "create: dtype");
        assert_eq!(sn.sizes, h.sizes, "create: layout");
        assert_eq!(
            sn.config, o.config,
            "create: config differs from the options"
        );
        assert_eq!(
            sn.skip, o.skip,
            "create: skip flag differs from the options"
        );
        assert_eq!(sn.counts, (0, 0), "create: counts");
        assert_eq!(sn.skipped, 0, "create: skipped");
        assert_eq!(sn.threads, 0, "create: threads");
        check_init_state(&sn, o.config.initial_scale, "create");
        self.push_handle(h);
    }

    pub(crate) fn hyper(&mut self, i: usize, b: &mut Bytes<'_>) {
        let h = &self.hs[i];
        let before = snap(h.p);
        let v = b.f64();
        let mut defects = vec![];
        let mut expected = before.clone();
        let mut sched_model = None;
        let which = b.below(6);
        let s = match which {
            0 => {
                if !v.is_finite() {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                expected.config.learning_rate = LearningRate::Fixed(v);
                expected.lr_bits = round_lr(h.dtype, v).to_bits();
                rmsprop_set_learning_rate(h.p, v)
            }
            1 => {
                let sp = if self.scheds.is_empty() || b.below(8) == 0 {
                    defects.push(RMSPROP_ERR_NULL_POINTER);
                    null()
                } else {
                    let k = b.below(self.scheds.len());
                    sched_model = Some(self.scheds[k].model.clone());
                    self.scheds[k].p as *const _
                };
                rmsprop_set_learning_rate_schedule(h.p, sp)
            }
            2 => {
                if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                expected.config.decay = v;
                rmsprop_set_decay(h.p, v)
            }
            3 => {
                if !(v.is_finite() && v >= 0.0) {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                expected.config.eps = v;
                rmsprop_set_eps(h.p, v)
            }
            4 => {
                if !(v.is_finite() && v >= 0.0) {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                expected.config.initial_scale = v;
                rmsprop_set_initial_scale(h.p, v)
            }
            _ => {
                if !v.is_finite() {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                if !before.has[2] {
                    defects.push(RMSPROP_ERR_NO_SUCH_STATE);
                }
                expected.config.momentum = Some(v);
                rmsprop_set_momentum(h.p, v)
            }
        };
        expect(s, &defects, RMSPROP_OK, "handle hyperparameter setter");
        let after = snap(h.p);
        if s != RMSPROP_OK {
            assert_unchanged(&before, &after, "hyperparameter setter");
            return;
        }
        if let Some(m) = sched_model {
            expected.config.learning_rate = LearningRate::Schedule(m.clone());
            let c = before.counts.0;
            expected.lr_bits = if h.dtype == RMSPROP_DTYPE_F32 {
                (m.value::<f32>(c) as f64).to_bits()
            } else {
                m.value::<f64>(c).to_bits()
            };
        }
        assert_only(&before, &after, &expected, "hyperparameter setter");
    }

    pub(crate) fn checkpoint(&mut self, b: &mut Bytes<'_>) {
        let ai = self.handle(b);
        let a = self.hs[ai].p;
        let before = snap(a);
        let bytes = before.ckpt.clone();
        // Save variants on A: a buffer too small, a bigger one, NULL buf, misaligned written.
        match b.below(5) {
            0 => {
                let short = b.below(bytes.len().min(256)) % bytes.len();
                let mut buf = vec![0xABu8; short.max(1)];
                let mut written = 12345usize;
                expect(
                    rmsprop_checkpoint_save(a, buf.as_mut_ptr().cast(), short, &mut written),
                    &[RMSPROP_ERR_BUFFER_TOO_SMALL],
                    RMSPROP_OK,
                    "checkpoint_save(short)",
                );
                assert!(buf.iter().all(|&x| x == 0xAB), "save wrote on error");
                assert_eq!(written, 12345, "save wrote *written on error");
            }
            1 => {
                let extra = b.below(16) + 1;
                let mut buf = vec![0xCDu8; bytes.len() + extra];
                let s = rmsprop_checkpoint_save(a, buf.as_mut_ptr().cast(), buf.len(), null_mut());
                ok(s, "checkpoint_save(big)");
                assert_eq!(&buf[..bytes.len()], &bytes[..], "save(big) differs");
                assert!(
                    buf[bytes.len()..].iter().all(|&x| x == 0xCD),
                    "save wrote past its size"
                );
            }
            2 => {
                expect(
                    rmsprop_checkpoint_save(a, null_mut(), bytes.len(), null_mut()),
                    &[RMSPROP_ERR_NULL_POINTER],
                    RMSPROP_OK,
                    "checkpoint_save(NULL buf)",
                );
                let mut w = [0u8; 16];
                let wp = misaligned_in(&mut w, 8).cast::<usize>();
                let mut buf = vec![0xEEu8; bytes.len()];
                expect(
                    rmsprop_checkpoint_save(a, buf.as_mut_ptr().cast(), buf.len(), wp),
                    &[RMSPROP_ERR_MISALIGNED],
                    RMSPROP_OK,
                    "checkpoint_save(misaligned written)",
                );
                assert!(buf.iter().all(|&x| x == 0xEE), "save wrote on error");
                expect(
                    rmsprop_checkpoint_size(a, wp),
                    &[RMSPROP_ERR_MISALIGNED],
                    RMSPROP_OK,
                    "checkpoint_size(misaligned)",
                );
                expect(
                    rmsprop_checkpoint_size(a, null_mut()),
                    &[RMSPROP_ERR_NULL_POINTER],
                    RMSPROP_OK,
                    "checkpoint_size(NULL)",
                );
            }
            _ => {}
        }
        assert_unchanged(&before, &snap(a), "checkpoint_save");
        // Load: intact into some handle, or corrupted.
        match b.below(6) {
            0..=2 => {
                let ci = b.below(self.hs.len());
                let c = self.hs[ci].p;
                let cb = snap(c);
                let s = rmsprop_checkpoint_load(c, bytes.as_ptr().cast(), bytes.len());
                let mismatch = cb.dtype != before.dtype || cb.sizes != before.sizes;
                let defects = if mismatch {
                    vec![RMSPROP_ERR_CHECKPOINT_MISMATCH]
                } else {
                    vec![]
                };
                expect(s, &defects, RMSPROP_OK, "checkpoint_load");
                let ca = snap(c);
                if s == RMSPROP_OK {
                    let mut want = before.clone();
                    want.threads = cb.threads;
                    if let Some(f) = diff(&want, &ca, false) {
                        panic!("checkpoint round trip: {f} differs after load");
                    }
                } else {
                    assert_unchanged(&cb, &ca, "checkpoint_load(mismatch)");
                }
            }
            3 => {
                // Corrupt: truncated, one byte changed, one byte appended, NULL buf.
                let mut bad = bytes.clone();
                let kind = b.below(4);
                let mut defects = vec![RMSPROP_ERR_CHECKPOINT_CORRUPT];
                let (p, len) = match kind {
                    0 => {
                        let cut = b.u16() as usize % bad.len();
                        bad.truncate(cut);
                        (bad.as_ptr(), bad.len())
                    }
                    1 => {
                        let at = b.u16() as usize % bad.len();
                        let x = b.u8() | 1;
                        bad[at] ^= x;
                        (bad.as_ptr(), bad.len())
                    }
                    2 => {
                        bad.push(b.u8());
                        (bad.as_ptr(), bad.len())
                    }
                    _ => {
                        defects = vec![RMSPROP_ERR_NULL_POINTER];
                        (null(), bad.len())
                    }
                };
                let ci = b.below(self.hs.len());
                let c = self.hs[ci].p;
                let cb = snap(c);
                expect(
                    rmsprop_checkpoint_load(c, p.cast(), len),
                    &defects,
                    RMSPROP_OK,
                    "checkpoint_load(corrupt)",
                );
                assert_unchanged(&cb, &snap(c), "checkpoint_load(corrupt)");
                let mut out = null_mut();
                expect(
                    rmsprop_create_from_checkpoint(p.cast(), len, &mut out),
                    &defects,
                    RMSPROP_OK,
                    "create_from_checkpoint(corrupt)",
                );
                assert!(out.is_null(), "create_from_checkpoint wrote *out on error");
            }
            _ => {
                let sel = b.below(8);
                let mut out: *mut RmspropOptimizer = null_mut();
                let mut raw = [0u8; 16];
                let (outp, defects) = match sel {
                    0 => (null_mut(), vec![RMSPROP_ERR_NULL_POINTER]),
                    1 => (
                        misaligned_in(&mut raw, 8).cast(),
                        vec![RMSPROP_ERR_MISALIGNED],
                    ),
                    _ => (&mut out as *mut _, vec![]),
                };
                let s = rmsprop_create_from_checkpoint(bytes.as_ptr().cast(), bytes.len(), outp);
                expect(s, &defects, RMSPROP_OK, "create_from_checkpoint");
                if s == RMSPROP_OK {
                    let mut want = before.clone();
                    want.threads = 0;
                    let got = snap(out);
                    if let Some(f) = diff(&want, &got, false) {
                        panic!("create_from_checkpoint: {f} differs");
                    }
                    self.push_handle(Handle {
                        p: out,
                        dtype: before.dtype,
                        sizes: before.sizes.clone(),
                    });
                } else {
                    assert!(raw.iter().all(|&x| x == 0));
                }
            }
        }
    }

    pub(crate) fn nulls(&mut self, b: &mut Bytes<'_>) {
        let mut u = 0usize;
        let mut d = 0i32;
        let mut f = 0.0f64;
        let mut bo = false;
        let mut u64v = 0u64;
        let mut buf = [0.0f32; 4];
        let mut dbuf = [0.0f64; 4];
        let n = null_mut::<RmspropOptimizer>();
        let c = null::<RmspropOptimizer>();
        let s = match b.below(30) {
            0 => rmsprop_update_f32(n, buf.as_ptr(), buf.as_mut_ptr(), 0),
            1 => rmsprop_step_f64(n, dbuf.as_mut_ptr(), dbuf.as_ptr(), 0),
            2 => rmsprop_update(n, null(), null_mut(), 0, RMSPROP_DTYPE_F32),
            3 => rmsprop_step(n, null_mut(), null(), 0, RMSPROP_DTYPE_F64),
            4 => rmsprop_update_tensors_f32(n, null(), null(), 0),
            5 => rmsprop_step_tensors_f64(n, null(), null(), 0),
            6 => rmsprop_get_state_f32(c, RMSPROP_NU, 0, buf.as_mut_ptr(), 0),
            7 => rmsprop_set_state_f64(n, RMSPROP_NU, 0, dbuf.as_ptr(), 0),
            8 => rmsprop_dtype(c, &mut d),
            9 => rmsprop_num_tensors(c, &mut u),
            10 => rmsprop_total_elements(c, &mut u),
            11 => rmsprop_tensor_size(c, 0, &mut u),
            12 => rmsprop_has_state(c, RMSPROP_NU, &mut bo),
            13 => rmsprop_get_counts(c, null_mut(), null_mut()),
            14 => rmsprop_set_counts(n, 0, 0),
            15 => rmsprop_reset(n),
            16 => rmsprop_skipped_steps(c, &mut u64v),
            17 => rmsprop_current_learning_rate(c, &mut f),
            18 => rmsprop_set_learning_rate(n, 0.1),
            19 => rmsprop_set_decay(n, 0.5),
            20 => rmsprop_set_threads(n, 1),
            21 => rmsprop_get_threads(c, &mut u),
            22 => rmsprop_checkpoint_size(c, &mut u),
            23 => rmsprop_checkpoint_save(c, buf.as_mut_ptr().cast(), 16, null_mut()),
            24 => rmsprop_checkpoint_load(n, buf.as_ptr().cast(), 16),
            25 => rmsprop_set_momentum(n, 0.5),
            26 => rmsprop_checkpoint_save_file(c, c"/nonexistent-rmsprop-fuzz/x".as_ptr()),
            27 => {
                // File errors on a live handle: NULL path, unreadable path.
                let i = self.handle(b);
                let h = self.hs[i].p;
                let before = snap(h);
                expect(
                    rmsprop_checkpoint_load_file(h, null()),
                    &[RMSPROP_ERR_NULL_POINTER],
                    RMSPROP_OK,
                    "load_file(NULL)",
                );
                expect(
                    rmsprop_checkpoint_save_file(h, null()),
                    &[RMSPROP_ERR_NULL_POINTER],
                    RMSPROP_OK,
                    "save_file(NULL)",
                );
                expect(
                    rmsprop_checkpoint_load_file(h, c"/nonexistent-rmsprop-fuzz/x".as_ptr()),
                    &[RMSPROP_ERR_IO],
                    RMSPROP_OK,
                    "load_file(missing)",
                );
                expect(
                    rmsprop_checkpoint_save_file(h, c"/nonexistent-rmsprop-fuzz/x".as_ptr()),
                    &[RMSPROP_ERR_IO],
                    RMSPROP_OK,
                    "save_file(missing dir)",
                );
                assert_unchanged(&before, &snap(h), "file errors");
                return;
            }
            28 => {
                rmsprop_destroy(null_mut());
                rmsprop_options_free(null_mut());
                rmsprop_schedule_free(null_mut());
                return;
            }
            _ => rmsprop_checkpoint_load_file(n, c"/nonexistent-rmsprop-fuzz/x".as_ptr()),
        };
        expect(s, &[RMSPROP_ERR_NULL_POINTER], RMSPROP_OK, "NULL handle");
        assert!(
            u == 0 && d == 0 && f == 0.0 && !bo && u64v == 0,
            "an out-parameter was written on error"
        );
    }
}
