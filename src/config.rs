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
        match &self.learning_rate {
            LearningRate::Fixed(lr) => check_learning_rate(*lr)?,
            LearningRate::Schedule(s) => s.validate()?,
        }
        check_decay(self.decay)?;
        check_eps(self.eps)?;
        check_initial_scale(self.initial_scale)?;
        if let Some(m) = self.momentum {
            check_momentum(m)?;
        }
        Ok(())
    }
}

fn finite(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name,
            rule: "finite",
            value,
        })
    }
}

/// A fixed learning rate must be finite.
pub fn check_learning_rate(v: f64) -> Result<()> {
    finite("learning_rate", v)
}

/// `decay` must be finite and in `[0, 1]`.
pub fn check_decay(v: f64) -> Result<()> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name: "decay",
            rule: "in [0, 1]",
            value: v,
        })
    }
}

/// `eps` must be finite and non-negative.
pub fn check_eps(v: f64) -> Result<()> {
    non_negative("eps", v)
}

/// `initial_scale` must be finite and non-negative.
pub fn check_initial_scale(v: f64) -> Result<()> {
    non_negative("initial_scale", v)
}

/// `momentum`, when set, must be finite.
pub fn check_momentum(v: f64) -> Result<()> {
    finite("momentum", v)
}

fn non_negative(name: &'static str, v: f64) -> Result<()> {
    if v >= 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name,
            rule: "finite and >= 0",
            value: v,
        })
    }
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
