//! The hyperparameters the C API can set, declared once: each has a name, a check, and how
//! it is written into options (`rmsprop_options_set_*`) and into a live optimizer
//! (`rmsprop_set_*`). Both families of setters are one-line calls of the generic bodies in
//! `options.rs` and `hyperparameters.rs`, keyed by a [`Hyper`]. Exports nothing.
//!
//! A stand-in for the core's hyperparameter table: when the core declares one, this enum
//! is replaced by it.

use crate::config::{self, Config, LearningRate};
use crate::error::Error;
use crate::optimizer::Optimizer;
use crate::real::Real;

/// A real-valued hyperparameter settable in options and between steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hyper {
    /// A fixed learning rate (replaces a schedule).
    LearningRate,
    Decay,
    Eps,
    InitialScale,
    Momentum,
}

impl Hyper {
    /// Validate a value (the same rule for options and live optimizers).
    pub(crate) fn check(self, v: f64) -> Result<(), Error> {
        match self {
            Hyper::LearningRate => config::check_learning_rate(v),
            Hyper::Decay => config::check_decay(v),
            Hyper::Eps => config::check_eps(v),
            Hyper::InitialScale => config::check_initial_scale(v),
            Hyper::Momentum => config::check_momentum(v),
        }
    }

    /// Write a value into a configuration (options). Momentum becomes `Some` (a trace state).
    pub(crate) fn set_config(self, c: &mut Config, v: f64) -> Result<(), Error> {
        self.check(v)?;
        match self {
            Hyper::LearningRate => c.learning_rate = LearningRate::Fixed(v),
            Hyper::Decay => c.decay = v,
            Hyper::Eps => c.eps = v,
            Hyper::InitialScale => c.initial_scale = v,
            Hyper::Momentum => c.momentum = Some(v),
        }
        Ok(())
    }

    /// Write a value into a live optimizer, as `optax.inject_hyperparams` would between
    /// steps (momentum only where the optimizer has a trace).
    pub(crate) fn set_live<T: Real>(self, o: &mut Optimizer<T>, v: f64) -> Result<(), Error> {
        match self {
            Hyper::LearningRate => o.set_learning_rate(LearningRate::Fixed(v)),
            Hyper::Decay => o.set_decay(v),
            Hyper::Eps => o.set_eps(v),
            Hyper::InitialScale => o.set_initial_scale(v),
            Hyper::Momentum => o.set_momentum(v),
        }
    }
}

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

    const ALL: [Hyper; 5] = [
        Hyper::LearningRate,
        Hyper::Decay,
        Hyper::Eps,
        Hyper::InitialScale,
        Hyper::Momentum,
    ];

    /// Options and live setters accept and reject exactly the same values, and write the
    /// same configuration.
    #[test]
    fn options_and_live_setters_agree() {
        let values = [-1.0, -1e-300, 0.0, 0.5, 1.0, 1.5, f64::NAN, f64::INFINITY];
        for h in ALL {
            for v in values {
                let mut c = Config::new(0.1);
                c.momentum = Some(0.9);
                let mut o = Optimizer::<f32>::new(c.clone(), &[2]).unwrap();
                let a = h.set_config(&mut c, v);
                let b = h.set_live(&mut o, v);
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
            Hyper::Momentum.set_live(&mut o, 0.5),
            Err(Error::NoSuchState(..))
        ));
        Hyper::Momentum.set_config(&mut c, 0.5).unwrap();
        assert_eq!(c.momentum, Some(0.5));
    }
}
