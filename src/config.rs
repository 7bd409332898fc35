//! Hyperparameters of `optax.rmsprop`, with optax's defaults and validation.
//!
//! Validation rules (optax itself validates nothing; these reject only what can
//! only be a mistake):
//! - every float must be finite (no NaN, no infinity);
//! - `decay` in `[0, 1]` (optax's EMA is only an average there);
//! - `eps >= 0` (`eps = 0` is legal, as in optax: a zero gradient then gives NaN);
//! - `initial_scale >= 0` (it seeds a second moment, which cannot be negative);
//! - `momentum`, when set, finite (optax allows any value; a trace decay outside
//!   `[0, 1]` is unusual but not rejected, since optax accepts it);
//! - a fixed learning rate must be finite (negative values are allowed: optax
//!   simply flips the sign of the step);
//! - `nesterov` without momentum is accepted and ignored, exactly as optax ignores it.

use crate::error::{Error, Result};
use crate::schedule::Schedule;

/// The learning rate: a fixed scalar (optax `scale(-lr)`, no count in the state)
/// or a schedule (optax `scale_by_schedule`, which keeps a step count).
#[derive(Debug, Clone, PartialEq)]
pub enum LearningRate {
    /// A Python-float learning rate.
    Fixed(f64),
    /// A schedule evaluated at the count before each step.
    Schedule(Schedule),
}

impl From<f64> for LearningRate {
    fn from(v: f64) -> Self {
        LearningRate::Fixed(v)
    }
}

impl From<Schedule> for LearningRate {
    fn from(s: Schedule) -> Self {
        LearningRate::Schedule(s)
    }
}

/// Every argument of `optax.rmsprop`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `learning_rate`: a scalar or a schedule.
    pub learning_rate: LearningRate,
    /// `decay = 0.9`.
    pub decay: f64,
    /// `eps = 1e-8`.
    pub eps: f64,
    /// `initial_scale = 0.0`: the value `nu` starts at.
    pub initial_scale: f64,
    /// `eps_in_sqrt = true`: `rsqrt(nu + eps)` instead of `1 / (sqrt(nu) + eps)`.
    pub eps_in_sqrt: bool,
    /// `centered = false`: divide by the variance estimate `nu - mu^2`.
    pub centered: bool,
    /// `momentum = None`; `Some(0.0)` keeps a trace buffer, as optax does.
    pub momentum: Option<f64>,
    /// `nesterov = false`; ignored when `momentum` is `None`.
    pub nesterov: bool,
    /// `bias_correction = false`.
    pub bias_correction: bool,
}

impl Config {
    /// optax's defaults with the given learning rate.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        Config {
            learning_rate: learning_rate.into(),
            decay: 0.9,
            eps: 1e-8,
            initial_scale: 0.0,
            eps_in_sqrt: true,
            centered: false,
            momentum: None,
            nesterov: false,
            bias_correction: false,
        }
    }

    /// Check every rule listed in the module documentation.
    pub fn validate(&self) -> Result<()> {
        if let LearningRate::Schedule(s) = &self.learning_rate {
            s.validate()?;
        }
        for &h in Hyper::ALL {
            if let Some(v) = h.get(self) {
                h.check(v)?;
            }
        }
        Ok(())
    }
}

/// The range rule of a scalar hyperparameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Any finite value.
    Finite,
    /// Finite and in `[0, 1]`.
    UnitInterval,
    /// Finite and `>= 0`.
    NonNegative,
}

impl Rule {
    /// The rule in words, as error messages quote it.
    pub fn text(self) -> &'static str {
        match self {
            Rule::Finite => "finite",
            Rule::UnitInterval => "in [0, 1]",
            Rule::NonNegative => "finite and >= 0",
        }
    }

    /// Whether `v` obeys the rule.
    pub fn holds(self, v: f64) -> bool {
        match self {
            Rule::Finite => v.is_finite(),
            Rule::UnitInterval => (0.0..=1.0).contains(&v),
            Rule::NonNegative => v >= 0.0 && v.is_finite(),
        }
    }
}

/// Declares the scalar hyperparameters once: variant, optax's argument name, range rule.
/// Where each lives in [`Config`] is written in [`Hyper::get`] / [`Hyper::set`].
macro_rules! hypers {
    ($( $(#[doc = $doc:literal])* $v:ident = $name:literal, $rule:ident; )*) => {
        /// A scalar hyperparameter of `optax.rmsprop` that can be set between steps (as
        /// `optax.inject_hyperparams` allows): its name, its rule, its place in [`Config`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Hyper {
            $( $(#[doc = $doc])* $v, )*
        }

        impl Hyper {
            /// Every scalar hyperparameter.
            pub const ALL: &'static [Hyper] = &[$(Hyper::$v),*];

            /// optax's argument name.
            pub fn name(self) -> &'static str {
                match self {
                    $( Hyper::$v => $name, )*
                }
            }

            /// The range rule.
            pub fn rule(self) -> Rule {
                match self {
                    $( Hyper::$v => Rule::$rule, )*
                }
            }
        }
    };
}

hypers! {
    /// A fixed `learning_rate` (a schedule is set with `Optimizer::set_learning_rate`).
    LearningRate = "learning_rate", Finite;
    /// `decay`.
    Decay = "decay", UnitInterval;
    /// `eps`.
    Eps = "eps", NonNegative;
    /// `initial_scale` (takes effect at the next reset).
    InitialScale = "initial_scale", NonNegative;
    /// `momentum` (only for a configuration with momentum).
    Momentum = "momentum", Finite;
}

impl Hyper {
    /// `Ok` when `v` obeys the rule, else the named error.
    pub fn check(self, v: f64) -> Result<()> {
        if self.rule().holds(v) {
            Ok(())
        } else {
            Err(Error::InvalidHyperparameter {
                name: self.name(),
                rule: self.rule().text(),
                value: v,
            })
        }
    }

    /// The current value; `None` for a scheduled learning rate and for no momentum.
    pub fn get(self, c: &Config) -> Option<f64> {
        match self {
            Hyper::LearningRate => match c.learning_rate {
                LearningRate::Fixed(v) => Some(v),
                LearningRate::Schedule(_) => None,
            },
            Hyper::Decay => Some(c.decay),
            Hyper::Eps => Some(c.eps),
            Hyper::InitialScale => Some(c.initial_scale),
            Hyper::Momentum => c.momentum,
        }
    }

    /// Check `v`, then store it (a fixed learning rate replaces a schedule; momentum becomes
    /// set). On error `c` is unchanged.
    pub fn set(self, c: &mut Config, v: f64) -> Result<()> {
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
}

/// A fixed learning rate must be finite ([`Hyper::LearningRate`]).
pub fn check_learning_rate(v: f64) -> Result<()> {
    Hyper::LearningRate.check(v)
}

/// `decay` must be finite and in `[0, 1]` ([`Hyper::Decay`]).
pub fn check_decay(v: f64) -> Result<()> {
    Hyper::Decay.check(v)
}

/// `eps` must be finite and non-negative ([`Hyper::Eps`]).
pub fn check_eps(v: f64) -> Result<()> {
    Hyper::Eps.check(v)
}

/// `initial_scale` must be finite and non-negative ([`Hyper::InitialScale`]).
pub fn check_initial_scale(v: f64) -> Result<()> {
    Hyper::InitialScale.check(v)
}

/// `momentum`, when set, must be finite ([`Hyper::Momentum`]).
pub fn check_momentum(v: f64) -> Result<()> {
    Hyper::Momentum.check(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_optax_defaults() {
        let c = Config::new(0.01);
        assert_eq!(c.learning_rate, LearningRate::Fixed(0.01));
        assert_eq!((c.decay, c.eps, c.initial_scale), (0.9, 1e-8, 0.0));
        assert!(c.eps_in_sqrt && !c.centered && !c.nesterov && !c.bias_correction);
        assert_eq!(c.momentum, None);
        c.validate().unwrap();
    }

    #[test]
    fn the_table_gets_sets_and_checks_each_hyperparameter() {
        let mut c = Config::new(0.01);
        for (i, &h) in Hyper::ALL.iter().enumerate() {
            let v = 0.125 * (i + 1) as f64;
            h.set(&mut c, v).unwrap();
            assert_eq!(h.get(&c), Some(v), "{}", h.name());
            let before = c.clone();
            let err = h.set(&mut c, f64::NAN).unwrap_err();
            assert_eq!(c, before, "a rejected value changes nothing");
            assert!(err.to_string().starts_with(h.name()), "{err}");
        }
        assert_eq!(c.decay, 0.25);
        assert_eq!(c.momentum, Some(0.625));
        assert!(Hyper::Decay.check(1.01).is_err() && Hyper::Decay.check(1.0).is_ok());
        assert!(Hyper::Eps.check(-1e-300).is_err() && Hyper::Eps.check(0.0).is_ok());
        assert!(Hyper::Momentum.check(-3.0).is_ok());
        assert!(Hyper::LearningRate.check(-0.1).is_ok());
        c.learning_rate = LearningRate::Schedule(Schedule::Constant { value: 0.1 });
        assert_eq!(Hyper::LearningRate.get(&c), None);
        assert_eq!(Hyper::Momentum.get(&Config::new(0.1)), None);
    }

    #[test]
    fn rejects_mistakes_with_named_messages() {
        let mut c = Config::new(0.01);
        c.decay = 1.5;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "decay must be in [0, 1], got 1.5"
        );
        c.decay = f64::NAN;
        assert!(c.validate().is_err());
        let mut c = Config::new(f64::INFINITY);
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("learning_rate")
        );
        c.learning_rate = LearningRate::Fixed(-0.1);
        c.validate().unwrap();
        c.eps = -1e-8;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("eps must be")
        );
        c.eps = 0.0;
        c.validate().unwrap();
        c.initial_scale = -1.0;
        assert!(c.validate().is_err());
        c.initial_scale = 1.0;
        c.momentum = Some(f64::NAN);
        assert!(c.validate().unwrap_err().to_string().contains("momentum"));
        c.momentum = Some(0.0);
        c.validate().unwrap();
    }
}
