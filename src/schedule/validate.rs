//! Validation: every field's range follows from the declaration (through
//! [`Schedule::inspect_fields`]); the rules that relate fields are written per kind.

use super::{Inspect, MAX_DEPTH, Schedule};
use crate::error::{Error, Result};

fn step_arg(name: &str, v: i64) -> Result<()> {
    if i32::try_from(v).is_ok() {
        Ok(())
    } else {
        Err(Error::InvalidSchedule(format!(
            "{name} must fit in a 32-bit signed count, got {v}"
        )))
    }
}

fn finite_arg(name: &str, v: f64) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidSchedule(format!(
            "{name} must be finite, got {v}"
        )))
    }
}

impl Schedule {
    /// Check the arguments (see the module docs for the rules).
    pub fn validate(&self) -> Result<()> {
        self.validate_at(1)
    }

    fn validate_at(&self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::InvalidSchedule(format!(
                "joins nested deeper than {MAX_DEPTH} levels"
            )));
        }
        // Every field's own range (finite values, i32 step arguments, nested schedules),
        // from the declaration; then the rules that relate fields.
        self.inspect_fields(&mut Validator { depth })?;
        match self {
            Schedule::CosineDecay { decay_steps, .. } if *decay_steps <= 0 => {
                Err(Error::InvalidSchedule(format!(
                    "cosine_decay requires positive decay_steps, got {decay_steps}"
                )))
            }
            Schedule::WarmupCosineDecay {
                peak_value,
                warmup_steps,
                decay_steps,
                end_value,
                ..
            } => {
                if decay_steps - warmup_steps <= 0 {
                    return Err(Error::InvalidSchedule(format!(
                        "warmup_cosine_decay requires decay_steps > warmup_steps, got decay_steps={decay_steps}, warmup_steps={warmup_steps}"
                    )));
                }
                let alpha = if *peak_value == 0.0 {
                    0.0
                } else {
                    end_value / peak_value
                };
                finite_arg("end_value / peak_value", alpha)
            }
            Schedule::PiecewiseConstant {
                boundaries_and_scales,
                ..
            } => {
                let mut prev: Option<i64> = None;
                for &(b, s) in boundaries_and_scales {
                    if s < 0.0 {
                        return Err(Error::InvalidSchedule(format!(
                            "piecewise_constant expects non-negative scales, got {s}"
                        )));
                    }
                    if prev.is_some_and(|p| p >= b) {
                        return Err(Error::InvalidSchedule(format!(
                            "piecewise_constant boundaries must be strictly increasing, got {b} after {}",
                            prev.unwrap_or_default()
                        )));
                    }
                    prev = Some(b);
                }
                Ok(())
            }
            Schedule::Join {
                schedules,
                boundaries,
            } => {
                if schedules.is_empty() {
                    return Err(Error::InvalidSchedule(
                        "join needs at least one schedule".into(),
                    ));
                }
                if boundaries.len() + 1 != schedules.len() {
                    return Err(Error::InvalidSchedule(format!(
                        "join needs one boundary fewer than schedules: {} schedules, {} boundaries",
                        schedules.len(),
                        boundaries.len()
                    )));
                }
                for w in boundaries.windows(2) {
                    if w[0] > w[1] {
                        return Err(Error::InvalidSchedule(format!(
                            "join boundaries must be sorted, got {} after {}",
                            w[1], w[0]
                        )));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The per-field rules of [`Schedule::validate`]: values finite, step arguments in `i32`,
/// nested schedules valid (one level deeper).
struct Validator {
    depth: usize,
}

impl Inspect<f64, Error> for Validator {
    fn inspect(&mut self, name: &'static str, v: &f64) -> Result<()> {
        finite_arg(name, *v)
    }
}

impl Inspect<i64, Error> for Validator {
    fn inspect(&mut self, name: &'static str, v: &i64) -> Result<()> {
        step_arg(name, *v)
    }
}

impl Inspect<bool, Error> for Validator {
    fn inspect(&mut self, _: &'static str, _: &bool) -> Result<()> {
        Ok(())
    }
}

impl Inspect<Option<f64>, Error> for Validator {
    fn inspect(&mut self, name: &'static str, v: &Option<f64>) -> Result<()> {
        v.map_or(Ok(()), |v| finite_arg(name, v))
    }
}

impl Inspect<Vec<(i64, f64)>, Error> for Validator {
    fn inspect(&mut self, _: &'static str, v: &Vec<(i64, f64)>) -> Result<()> {
        v.iter().try_for_each(|&(b, s)| {
            step_arg("boundary", b)?;
            finite_arg("scale", s)
        })
    }
}

impl Inspect<Vec<i64>, Error> for Validator {
    fn inspect(&mut self, _: &'static str, v: &Vec<i64>) -> Result<()> {
        v.iter().try_for_each(|&b| step_arg("boundary", b))
    }
}

impl Inspect<Vec<Schedule>, Error> for Validator {
    fn inspect(&mut self, _: &'static str, v: &Vec<Schedule>) -> Result<()> {
        v.iter().try_for_each(|s| s.validate_at(self.depth + 1))
    }
}
