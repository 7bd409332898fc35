//! The state optax keeps (`nu`, `mu`, `trace`, counts), flat over the layout.

use crate::config::Config;
use crate::element::Real;
use crate::error::{Error, Result};

/// A state buffer of optax's rmsprop state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// `nu`: the EMA of squared gradients (always present).
    Nu,
    /// `mu`: the EMA of gradients (`centered` only).
    Mu,
    /// `trace`: the momentum buffer (`momentum` set only, `0.0` included).
    Trace,
}

impl Component {
    /// optax's field name.
    pub fn name(self) -> &'static str {
        match self {
            Component::Nu => "nu",
            Component::Mu => "mu",
            Component::Trace => "trace",
        }
    }
}

/// optax's integer counters. Both advance on every step and saturate at `i32::MAX`
/// (`numerics.safe_increment`). optax keeps `schedule` only when the learning rate is a
/// schedule (`ScaleByScheduleState.count`) and `bias_correction` only with bias correction
/// (`ScaleByRmsWithCountState.count`); this crate always keeps both so that a count can
/// be carried in or out either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// The count a learning-rate schedule is evaluated at.
    pub schedule: i32,
    /// The count of the bias-correction term.
    pub bias_correction: i32,
}

/// optax's `safe_increment` for `int32`.
pub fn safe_increment(c: i32) -> i32 {
    c.saturating_add(1)
}

/// The optimizer state, flat over the layout.
#[derive(Debug, Clone, PartialEq)]
pub struct State<T> {
    /// `nu`.
    pub nu: Vec<T>,
    /// `mu`, present iff centered.
    pub mu: Option<Vec<T>>,
    /// `trace`, present iff momentum is set.
    pub trace: Option<Vec<T>>,
    /// The counters.
    pub counts: Counts,
}

impl<T: Real> State<T> {
    /// optax `init`, reporting a failed allocation instead of aborting.
    pub(super) fn try_init(config: &Config, total: usize) -> Result<Self> {
        if total
            .checked_mul(size_of::<T>())
            .is_none_or(|b| b > isize::MAX as usize)
        {
            return Err(Error::LayoutOverflow);
        }
        let filled = |v: T| -> Result<Vec<T>> {
            let mut buf = Vec::new();
            buf.try_reserve_exact(total)
                .map_err(|_| Error::OutOfMemory {
                    bytes: total * size_of::<T>(),
                })?;
            buf.resize(total, v);
            Ok(buf)
        };
        Ok(State {
            nu: filled(T::from_f64(config.initial_scale))?,
            mu: config.centered.then(|| filled(T::ZERO)).transpose()?,
            trace: config.momentum.map(|_| filled(T::ZERO)).transpose()?,
            counts: Counts::default(),
        })
    }

    /// Back to optax `init` values, in place.
    pub(super) fn reinit(&mut self, config: &Config) {
        self.nu.fill(T::from_f64(config.initial_scale));
        for buf in [self.mu.as_mut(), self.trace.as_mut()]
            .into_iter()
            .flatten()
        {
            buf.fill(T::ZERO);
        }
        self.counts = Counts::default();
    }
}

/// Each count in `[0, i32::MAX]`.
pub(super) fn check_counts(c: Counts) -> Result<()> {
    for (name, v) in [
        ("schedule count", c.schedule),
        ("bias-correction count", c.bias_correction),
    ] {
        if v < 0 {
            return Err(Error::InvalidHyperparameter {
                name,
                rule: "in [0, 2147483647]",
                value: v as f64,
            });
        }
    }
    Ok(())
}
