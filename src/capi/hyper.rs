//! What the C setters are keyed by. Real-valued hyperparameters are the core's declared-once
//! table, [`crate::config::Hyper`] (name, rule, place in `Config`): options setters
//! (`rmsprop_options_set_*`) call `Hyper::set` on the options' configuration, live setters
//! (`rmsprop_set_*`) call `Optimizer::set_hyper`. Boolean options are the [`Flag`]s below.
//! Both families of setters are one-line calls of the generic bodies in `options.rs` and
//! `hyperparameters.rs`. Exports nothing.

use crate::config::Config;
pub(crate) use crate::config::Hyper;

/// A boolean option (set in options only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flag {
    EpsInSqrt,
    Centered,
    Nesterov,
    BiasCorrection,
}

impl Flag {
    /// Write the flag into a configuration.
    pub(crate) fn set_config(self, c: &mut Config, on: bool) {
        match self {
            Flag::EpsInSqrt => c.eps_in_sqrt = on,
            Flag::Centered => c.centered = on,
            Flag::Nesterov => c.nesterov = on,
            Flag::BiasCorrection => c.bias_correction = on,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::optimizer::Optimizer;

    /// Options and live setters accept and reject exactly the same values, and write the
    /// same configuration.
    #[test]
    fn options_and_live_setters_agree() {
        let values = [-1.0, -1e-300, 0.0, 0.5, 1.0, 1.5, f64::NAN, f64::INFINITY];
        for &h in Hyper::ALL {
            for v in values {
                let mut c = Config::new(0.1);
                c.momentum = Some(0.9);
                let mut o = Optimizer::<f32>::new(c.clone(), &[2]).unwrap();
                let a = h.set(&mut c, v);
                let b = o.set_hyper(h, v);
                assert_eq!(a.is_ok(), b.is_ok(), "{h:?} {v}: options {a:?}, live {b:?}");
                assert_eq!(a.is_ok(), h.check(v).is_ok(), "{h:?} {v}");
                let (x, y) = (format!("{c:?}"), format!("{:?}", o.config()));
                assert_eq!(x, y, "{h:?} {v}: configurations differ");
            }
        }
    }

    /// Live momentum needs a trace; options momentum creates one.
    #[test]
    fn momentum_without_trace() {
        let mut c = Config::new(0.1);
        let mut o = Optimizer::<f64>::new(c.clone(), &[1]).unwrap();
        assert!(matches!(
            o.set_hyper(Hyper::Momentum, 0.5),
            Err(Error::NoSuchState(..))
        ));
        Hyper::Momentum.set(&mut c, 0.5).unwrap();
        assert_eq!(c.momentum, Some(0.5));
    }
}
