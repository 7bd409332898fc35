//! Operations on schedules (`rmsprop_schedule_*`), checked against the Rust model.

use super::*;

impl Ctx {
    pub(crate) fn push_sched(&mut self, s: Sched) {
        if self.scheds.len() >= MAX_SCHEDULES {
            rmsprop_schedule_free(self.scheds.remove(0).p);
        }
        self.scheds.push(s);
    }

    pub(crate) fn schedule_new(&mut self, b: &mut Bytes<'_>) {
        let kind = b.below(8);
        let null_out = b.below(32) == 0;
        let mut out: *mut RmspropSchedule = null_mut();
        let outp = if null_out {
            null_mut()
        } else {
            &mut out as *mut _
        };
        // Documented rejections: non-finite values and step arguments outside int32.
        let mut must_reject = false;
        let mut f = |b: &mut Bytes<'_>| {
            let v = b.f64();
            must_reject |= !v.is_finite();
            v
        };
        let (s, model, extra_defects): (i32, Schedule, Vec<i32>) = match kind {
            0 => {
                let value = f(b);
                (
                    rmsprop_schedule_constant(value, outp),
                    Schedule::Constant { value },
                    vec![],
                )
            }
            1 => {
                let (init_value, end_value) = (f(b), f(b));
                let (transition_steps, transition_begin) = (b.i64(), b.i64());
                (
                    rmsprop_schedule_linear(
                        init_value,
                        end_value,
                        transition_steps,
                        transition_begin,
                        outp,
                    ),
                    Schedule::Linear {
                        init_value,
                        end_value,
                        transition_steps,
                        transition_begin,
                    },
                    vec![],
                )
            }
            2 => {
                let (init_value, end_value, power) = (f(b), f(b), f(b));
                let (transition_steps, transition_begin) = (b.i64(), b.i64());
                (
                    rmsprop_schedule_polynomial(
                        init_value,
                        end_value,
                        power,
                        transition_steps,
                        transition_begin,
                        outp,
                    ),
                    Schedule::Polynomial {
                        init_value,
                        end_value,
                        power,
                        transition_steps,
                        transition_begin,
                    },
                    vec![],
                )
            }
            3 | 6 => {
                // peak_value and warmup_steps only exist for the warmup variant.
                let init_value = f(b);
                let (peak_value, warmup_steps) = if kind == 6 { (f(b), b.i64()) } else { (0.0, 0) };
                let transition_steps = b.i64();
                let decay_rate = f(b);
                let transition_begin = b.i64();
                let staircase = b.bool();
                let end = if b.bool() { Some(f(b)) } else { None };
                // A misaligned end_value pointer is a checked error.
                let misaligned = end.is_some() && b.below(16) == 0;
                let mut raw = [0u8; 16];
                let endv = end.unwrap_or(0.0);
                let endp: *const f64 = match end {
                    None => null(),
                    Some(_) if misaligned => misaligned_in(&mut raw, 8).cast(),
                    Some(_) => &endv,
                };
                let extra = if misaligned {
                    vec![RMSPROP_ERR_MISALIGNED]
                } else {
                    vec![]
                };
                if kind == 3 {
                    (
                        rmsprop_schedule_exponential_decay(
                            init_value,
                            transition_steps,
                            decay_rate,
                            transition_begin,
                            staircase,
                            endp,
                            outp,
                        ),
                        Schedule::ExponentialDecay {
                            init_value,
                            transition_steps,
                            decay_rate,
                            transition_begin,
                            staircase,
                            end_value: end,
                        },
                        extra,
                    )
                } else {
                    (
                        rmsprop_schedule_warmup_exponential_decay(
                            init_value,
                            peak_value,
                            warmup_steps,
                            transition_steps,
                            decay_rate,
                            transition_begin,
                            staircase,
                            endp,
                            outp,
                        ),
                        Schedule::WarmupExponentialDecay {
                            init_value,
                            peak_value,
                            warmup_steps,
                            transition_steps,
                            decay_rate,
                            transition_begin,
                            staircase,
                            end_value: end,
                        },
                        extra,
                    )
                }
            }
            4 => {
                let init_value = f(b);
                let decay_steps = b.i64();
                let (alpha, exponent) = (f(b), f(b));
                if decay_steps <= 0 {
                    must_reject = true;
                }
                (
                    rmsprop_schedule_cosine_decay(init_value, decay_steps, alpha, exponent, outp),
                    Schedule::CosineDecay {
                        init_value,
                        decay_steps,
                        alpha,
                        exponent,
                    },
                    vec![],
                )
            }
            5 => {
                let (init_value, peak_value) = (f(b), f(b));
                let (warmup_steps, decay_steps) = (b.i64(), b.i64());
                let (end_value, exponent) = (f(b), f(b));
                (
                    rmsprop_schedule_warmup_cosine_decay(
                        init_value,
                        peak_value,
                        warmup_steps,
                        decay_steps,
                        end_value,
                        exponent,
                        outp,
                    ),
                    Schedule::WarmupCosineDecay {
                        init_value,
                        peak_value,
                        warmup_steps,
                        decay_steps,
                        end_value,
                        exponent,
                    },
                    vec![],
                )
            }
            _ => {
                let init_value = f(b);
                let count = b.below(9);
                let mut bounds = Vec::with_capacity(count);
                let mut scales = Vec::with_capacity(count);
                let increasing = b.bool();
                let mut last = b.i64() % 8;
                for _ in 0..count {
                    let bd = if increasing {
                        last = last.saturating_add(1 + b.below(50) as i64);
                        last
                    } else {
                        b.i64()
                    };
                    bounds.push(bd);
                    scales.push(f(b));
                }
                let mut extra = vec![];
                for (k, (&bd, &sc)) in bounds.iter().zip(&scales).enumerate() {
                    if i32::try_from(bd).is_err() || sc.is_nan() || sc < 0.0 {
                        must_reject = true;
                    }
                    if k > 0 && bounds[k - 1] >= bd {
                        must_reject = true;
                    }
                }
                let nulls = b.below(8);
                let (bp, sp) = match nulls {
                    0 => (null(), scales.as_ptr()),
                    1 => (bounds.as_ptr(), null()),
                    _ => (bounds.as_ptr(), scales.as_ptr()),
                };
                if nulls < 2 && count > 0 {
                    extra.push(RMSPROP_ERR_NULL_POINTER);
                }
                (
                    rmsprop_schedule_piecewise_constant(init_value, bp, sp, count, outp),
                    Schedule::PiecewiseConstant {
                        init_value,
                        boundaries_and_scales: bounds.into_iter().zip(scales).collect(),
                    },
                    extra,
                )
            }
        };
        let what = format!("schedule_new(kind {kind})");
        st(s, &what);
        let int_reject = match &model {
            Schedule::Linear {
                transition_steps,
                transition_begin,
                ..
            }
            | Schedule::Polynomial {
                transition_steps,
                transition_begin,
                ..
            }
            | Schedule::ExponentialDecay {
                transition_steps,
                transition_begin,
                ..
            } => {
                i32::try_from(*transition_steps).is_err()
                    || i32::try_from(*transition_begin).is_err()
            }
            Schedule::CosineDecay { decay_steps, .. } => i32::try_from(*decay_steps).is_err(),
            Schedule::WarmupCosineDecay {
                warmup_steps,
                decay_steps,
                ..
            } => {
                i32::try_from(*warmup_steps).is_err()
                    || i32::try_from(*decay_steps).is_err()
                    || decay_steps <= warmup_steps
            }
            Schedule::WarmupExponentialDecay {
                warmup_steps,
                transition_steps,
                transition_begin,
                ..
            } => {
                i32::try_from(*warmup_steps).is_err()
                    || i32::try_from(*transition_steps).is_err()
                    || i32::try_from(*transition_begin).is_err()
            }
            _ => false,
        };
        let mut allowed = extra_defects.clone();
        allowed.push(RMSPROP_ERR_INVALID_SCHEDULE);
        if null_out {
            allowed.push(RMSPROP_ERR_NULL_POINTER);
        }
        if must_reject || int_reject || null_out || !extra_defects.is_empty() {
            assert!(
                allowed.contains(&s),
                "{what}: expected one of {allowed:?}, got {} for {model:?}",
                name(s)
            );
        } else {
            assert!(
                s == RMSPROP_OK || s == RMSPROP_ERR_INVALID_SCHEDULE,
                "{what}: got {}",
                name(s)
            );
            if matches!(model, Schedule::Constant { .. }) {
                assert_eq!(s, RMSPROP_OK, "{what}: a finite constant must be accepted");
            }
        }
        if s == RMSPROP_OK {
            assert!(!out.is_null());
            self.check_schedule(out, &model, b);
            self.push_sched(Sched { p: out, model });
        } else {
            assert!(out.is_null(), "{what}: *out written on error");
        }
    }

    /// A new schedule evaluates without error for both dtypes at a few counts.
    pub(crate) fn check_schedule(
        &self,
        p: *const RmspropSchedule,
        model: &Schedule,
        b: &mut Bytes<'_>,
    ) {
        for count in [0, 1, b.i32(), i32::MAX] {
            for (dt, want) in [
                (RMSPROP_DTYPE_F32, model.value::<f32>(count) as f64),
                (RMSPROP_DTYPE_F64, model.value::<f64>(count)),
            ] {
                let mut v = f64::NAN;
                ok(
                    rmsprop_schedule_value(p, count, dt, &mut v),
                    "schedule_value",
                );
                assert_eq!(
                    v.to_bits(),
                    want.to_bits(),
                    "schedule_value differs from the copied model"
                );
            }
        }
    }

    pub(crate) fn schedule_join(&mut self, b: &mut Bytes<'_>) {
        if self.scheds.is_empty() {
            let mut out = null_mut();
            ok(rmsprop_schedule_constant(0.01, &mut out), "constant");
            self.scheds.push(Sched {
                p: out,
                model: Schedule::Constant { value: 0.01 },
            });
        }
        if b.below(6) == 0 {
            // Nest one schedule `k` times: joins deeper than the limit must be rejected
            // cleanly, and anything accepted must survive a checkpoint round trip.
            let i = b.below(self.scheds.len());
            let k = b.below(72) + 1;
            let mut cur = self.scheds[i].p;
            let mut model = self.scheds[i].model.clone();
            let mut owned = false;
            for _ in 0..k {
                let mut out = null_mut();
                let list = [cur as *const RmspropSchedule];
                let s = st(
                    rmsprop_schedule_join(list.as_ptr(), 1, null(), 0, &mut out),
                    "schedule_join(nest)",
                );
                let next = Schedule::Join {
                    schedules: vec![model.clone()],
                    boundaries: vec![],
                };
                if s != RMSPROP_OK {
                    assert_eq!(s, RMSPROP_ERR_INVALID_SCHEDULE);
                    assert!(
                        depth(&next) > 64,
                        "join of depth {} rejected: {}",
                        depth(&next),
                        last_error()
                    );
                    break;
                }
                if owned {
                    rmsprop_schedule_free(cur);
                }
                cur = out;
                owned = true;
                model = next;
            }
            if owned {
                self.schedule_roundtrip(cur);
                self.push_sched(Sched { p: cur, model });
            }
            return;
        }
        let num = b.below(5);
        let mut ptrs = Vec::with_capacity(num);
        let mut models = Vec::with_capacity(num);
        let mut null_entry = false;
        for _ in 0..num {
            if b.below(16) == 0 {
                ptrs.push(null());
                null_entry = true;
            } else {
                let k = b.below(self.scheds.len());
                ptrs.push(self.scheds[k].p as *const RmspropSchedule);
                models.push(self.scheds[k].model.clone());
            }
        }
        let nb = match b.below(4) {
            0 => num.saturating_sub(1) + b.below(3),
            _ => num.saturating_sub(1),
        };
        let mut bounds = Vec::with_capacity(nb);
        let mut last = 0i64;
        let sorted = b.bool();
        for _ in 0..nb {
            let v = if sorted {
                last = last.saturating_add(b.below(40) as i64);
                last
            } else {
                b.i64()
            };
            bounds.push(v);
        }
        let null_arrays = b.below(16);
        let sp = if null_arrays == 0 {
            null()
        } else {
            ptrs.as_ptr()
        };
        let bp = if null_arrays == 1 {
            null()
        } else {
            bounds.as_ptr()
        };
        let mut out = null_mut();
        let s = st(
            rmsprop_schedule_join(sp, num, bp, nb, &mut out),
            "schedule_join",
        );
        let mut allowed = vec![RMSPROP_OK, RMSPROP_ERR_INVALID_SCHEDULE];
        if null_entry || (null_arrays == 0 && num > 0) || (null_arrays == 1 && nb > 0) {
            allowed.push(RMSPROP_ERR_NULL_POINTER);
        }
        assert!(allowed.contains(&s), "schedule_join: {}", name(s));
        let bad_shape = num == 0
            || nb + 1 != num
            || bounds.windows(2).any(|w| w[0] > w[1])
            || bounds.iter().any(|&x| i32::try_from(x).is_err());
        if s == RMSPROP_OK {
            assert!(
                !bad_shape && !null_entry,
                "schedule_join accepted {num} schedules, boundaries {bounds:?}"
            );
            let model = Schedule::Join {
                schedules: models,
                boundaries: bounds,
            };
            self.check_schedule(out, &model, b);
            self.push_sched(Sched { p: out, model });
        } else {
            assert!(out.is_null(), "schedule_join wrote *out on error");
        }
    }

    /// Options with this schedule, a tiny optimizer, and a checkpoint round trip.
    pub(crate) fn schedule_roundtrip(&self, sched: *mut RmspropSchedule) {
        let mut o = null_mut();
        ok(rmsprop_options_new(0.1, &mut o), "options_new");
        ok(
            rmsprop_options_set_learning_rate_schedule(o, sched),
            "set_learning_rate_schedule",
        );
        let mut h = null_mut();
        let sizes = [1usize];
        ok(
            rmsprop_create(o, sizes.as_ptr(), 1, RMSPROP_DTYPE_F64, &mut h),
            "create(schedule)",
        );
        rmsprop_options_free(o);
        let bytes = save(h);
        let mut h2 = null_mut();
        ok(
            rmsprop_create_from_checkpoint(bytes.as_ptr().cast(), bytes.len(), &mut h2),
            "create_from_checkpoint of an accepted schedule",
        );
        assert_eq!(save(h2), bytes, "schedule checkpoint round trip");
        rmsprop_destroy(h2);
        rmsprop_destroy(h);
    }

    pub(crate) fn schedule_value_free(&mut self, b: &mut Bytes<'_>) {
        if self.scheds.is_empty() {
            return;
        }
        let i = b.below(self.scheds.len());
        match b.below(4) {
            0 => rmsprop_schedule_free(self.scheds.remove(i).p),
            1 => {
                // NULL out, NULL schedule, bad dtype.
                let mut v = 0.0;
                let sel = b.below(3);
                let (p, dt, outp): (*const RmspropSchedule, i32, *mut f64) = match sel {
                    0 => (self.scheds[i].p, RMSPROP_DTYPE_F32, null_mut()),
                    1 => (null(), RMSPROP_DTYPE_F64, &mut v),
                    _ => (self.scheds[i].p, [0, 5, -1][b.below(3)], &mut v),
                };
                let want = if sel == 2 {
                    RMSPROP_ERR_BAD_ENUM
                } else {
                    RMSPROP_ERR_NULL_POINTER
                };
                expect(
                    rmsprop_schedule_value(p, b.i32(), dt, outp),
                    &[want],
                    RMSPROP_OK,
                    "schedule_value(bad)",
                );
                assert_eq!(v, 0.0, "schedule_value wrote *out on error");
            }
            _ => {
                let p = self.scheds[i].p;
                let model = self.scheds[i].model.clone();
                self.check_schedule(p, &model, b);
            }
        }
    }
}
