//! Operations on options objects (`rmsprop_options_*`).

use super::*;

impl Ctx {
    pub(crate) fn options_new(&mut self, b: &mut Bytes<'_>) {
        let lr = b.f64();
        let null_out = b.below(16) == 0;
        let mut out: *mut RmspropOptions = null_mut();
        let outp = if null_out {
            null_mut()
        } else {
            &mut out as *mut _
        };
        let s = rmsprop_options_new(lr, outp);
        let mut defects = vec![];
        if !lr.is_finite() {
            defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
        }
        if null_out {
            defects.push(RMSPROP_ERR_NULL_POINTER);
        }
        expect(s, &defects, RMSPROP_OK, "options_new");
        if s == RMSPROP_OK {
            assert!(!out.is_null());
            self.push_opts(Opts {
                p: out,
                config: Config::new(lr),
                skip: false,
            });
        } else {
            assert!(out.is_null(), "options_new wrote *out on error");
        }
    }

    pub(crate) fn push_opts(&mut self, o: Opts) {
        if self.opts.len() >= MAX_OPTIONS {
            rmsprop_options_free(self.opts.remove(0).p);
        }
        self.opts.push(o);
    }

    pub(crate) fn default_opts(&mut self) -> usize {
        if self.opts.is_empty() {
            let mut out = null_mut();
            ok(rmsprop_options_new(1e-3, &mut out), "options_new(default)");
            self.opts.push(Opts {
                p: out,
                config: Config::new(1e-3),
                skip: false,
            });
        }
        self.opts.len() - 1
    }

    pub(crate) fn options_set(&mut self, b: &mut Bytes<'_>) {
        let null_opts = b.below(16) == 0;
        let i = if null_opts {
            usize::MAX
        } else {
            let i = self.default_opts();
            if self.opts.len() > 1 {
                b.below(self.opts.len())
            } else {
                i
            }
        };
        let p = if null_opts {
            null_mut()
        } else {
            self.opts[i].p
        };
        let which = b.below(12);
        let v = b.f64();
        let flag = b.bool();
        let mut defects = vec![];
        if null_opts {
            defects.push(RMSPROP_ERR_NULL_POINTER);
        }
        let mut config = if null_opts {
            Config::new(0.0)
        } else {
            self.opts[i].config.clone()
        };
        let mut skip = if null_opts { false } else { self.opts[i].skip };
        let s = match which {
            0 => {
                if !v.is_finite() {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                config.learning_rate = LearningRate::Fixed(v);
                rmsprop_options_set_learning_rate(p, v)
            }
            1 => {
                let sp = if self.scheds.is_empty() || b.below(8) == 0 {
                    defects.push(RMSPROP_ERR_NULL_POINTER);
                    null()
                } else {
                    let k = b.below(self.scheds.len());
                    config.learning_rate = LearningRate::Schedule(self.scheds[k].model.clone());
                    self.scheds[k].p as *const _
                };
                rmsprop_options_set_learning_rate_schedule(p, sp)
            }
            2 => {
                if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                config.decay = v;
                rmsprop_options_set_decay(p, v)
            }
            3 => {
                if !(v.is_finite() && v >= 0.0) {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                config.eps = v;
                rmsprop_options_set_eps(p, v)
            }
            4 => {
                if !(v.is_finite() && v >= 0.0) {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                config.initial_scale = v;
                rmsprop_options_set_initial_scale(p, v)
            }
            5 => {
                config.eps_in_sqrt = flag;
                rmsprop_options_set_eps_in_sqrt(p, flag)
            }
            6 => {
                config.centered = flag;
                rmsprop_options_set_centered(p, flag)
            }
            7 => {
                if !v.is_finite() {
                    defects.push(RMSPROP_ERR_INVALID_HYPERPARAMETER);
                }
                config.momentum = Some(v);
                rmsprop_options_set_momentum(p, v)
            }
            8 => {
                config.momentum = None;
                rmsprop_options_clear_momentum(p)
            }
            9 => {
                config.nesterov = flag;
                rmsprop_options_set_nesterov(p, flag)
            }
            10 => {
                config.bias_correction = flag;
                rmsprop_options_set_bias_correction(p, flag)
            }
            _ => {
                skip = flag;
                rmsprop_options_set_skip_non_finite(p, flag)
            }
        };
        expect(s, &defects, RMSPROP_OK, "options_set");
        if s == RMSPROP_OK {
            self.opts[i].config = config;
            self.opts[i].skip = skip;
        }
    }
}
