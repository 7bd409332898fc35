//! Schedules in a checkpoint: a tag byte, then the fields in declaration order, both
//! derived from the one declaration in [`crate::schedule`] (`schedules!`): adding a
//! schedule or a field needs no change here unless it brings a new field *type*.
//!
//! Field encodings: `f64` and `i64` as 8 bytes, `bool` as one byte 0/1, `Option<f64>` as a
//! present byte then an `f64` (+0.0 when absent), a list as a `u64` count then its items
//! (`(i64, f64)` pairs, `i64`s, or nested schedules, recursively).

use super::bytes::{Rd, put_f64, put_i64, put_len, put_opt_f64, put_u8};
use super::format::MAX_SCHEDULE_DEPTH;
use super::{CheckpointError, Result, corrupt};
use crate::schedule::{Inspect, Schedule, Visit};

/// The smallest encoded schedule: a tag and one `f64`.
const MIN_SCHEDULE_LEN: usize = 9;

/// Append `s` (tag, then fields).
pub(super) fn put_schedule(v: &mut Vec<u8>, s: &Schedule) {
    put_u8(v, s.tag());
    // Writing into a Vec cannot fail.
    let _ = s.inspect_fields(&mut Writer(v));
}

/// Read a schedule nested `depth` levels deep (1 for the learning rate itself).
pub(super) fn get_schedule(r: &mut Rd<'_>, depth: usize) -> Result<Schedule> {
    if depth > MAX_SCHEDULE_DEPTH {
        return Err(corrupt(format!(
            "schedule nested deeper than {MAX_SCHEDULE_DEPTH} levels"
        )));
    }
    let tag = r.u8("schedule tag")?;
    let mut s =
        Schedule::empty(tag).ok_or_else(|| corrupt(format!("unknown schedule tag {tag}")))?;
    s.visit_fields(&mut Reader { r, depth })?;
    Ok(s)
}

struct Writer<'v>(&'v mut Vec<u8>);

/// Encoding never fails.
type Never = std::convert::Infallible;

impl Inspect<f64, Never> for Writer<'_> {
    fn inspect(&mut self, _: &'static str, x: &f64) -> Result<(), Never> {
        put_f64(self.0, *x);
        Ok(())
    }
}

impl Inspect<i64, Never> for Writer<'_> {
    fn inspect(&mut self, _: &'static str, x: &i64) -> Result<(), Never> {
        put_i64(self.0, *x);
        Ok(())
    }
}

impl Inspect<bool, Never> for Writer<'_> {
    fn inspect(&mut self, _: &'static str, x: &bool) -> Result<(), Never> {
        put_u8(self.0, *x as u8);
        Ok(())
    }
}

impl Inspect<Option<f64>, Never> for Writer<'_> {
    fn inspect(&mut self, _: &'static str, x: &Option<f64>) -> Result<(), Never> {
        put_opt_f64(self.0, *x);
        Ok(())
    }
}

impl Inspect<Vec<(i64, f64)>, Never> for Writer<'_> {
    fn inspect(&mut self, _: &'static str, x: &Vec<(i64, f64)>) -> Result<(), Never> {
        put_len(self.0, x.len());
        for &(b, s) in x {
            put_i64(self.0, b);
            put_f64(self.0, s);
        }
        Ok(())
    }
}

impl Inspect<Vec<i64>, Never> for Writer<'_> {
    fn inspect(&mut self, _: &'static str, x: &Vec<i64>) -> Result<(), Never> {
        put_len(self.0, x.len());
        for &b in x {
            put_i64(self.0, b);
        }
        Ok(())
    }
}

impl Inspect<Vec<Schedule>, Never> for Writer<'_> {
    fn inspect(&mut self, _: &'static str, x: &Vec<Schedule>) -> Result<(), Never> {
        put_len(self.0, x.len());
        for s in x {
            put_schedule(self.0, s);
        }
        Ok(())
    }
}

struct Reader<'r, 'a> {
    r: &'r mut Rd<'a>,
    depth: usize,
}

impl Visit<f64, CheckpointError> for Reader<'_, '_> {
    fn visit(&mut self, name: &'static str, x: &mut f64) -> Result<()> {
        *x = self.r.f64(name)?;
        Ok(())
    }
}

impl Visit<i64, CheckpointError> for Reader<'_, '_> {
    fn visit(&mut self, name: &'static str, x: &mut i64) -> Result<()> {
        *x = self.r.i64(name)?;
        Ok(())
    }
}

impl Visit<bool, CheckpointError> for Reader<'_, '_> {
    fn visit(&mut self, name: &'static str, x: &mut bool) -> Result<()> {
        *x = self.r.bool(name)?;
        Ok(())
    }
}

impl Visit<Option<f64>, CheckpointError> for Reader<'_, '_> {
    fn visit(&mut self, name: &'static str, x: &mut Option<f64>) -> Result<()> {
        *x = self.r.opt_f64(name)?;
        Ok(())
    }
}

impl Visit<Vec<(i64, f64)>, CheckpointError> for Reader<'_, '_> {
    fn visit(&mut self, name: &'static str, x: &mut Vec<(i64, f64)>) -> Result<()> {
        let n = self.r.count(16, &format!("{name} count"))?;
        x.reserve_exact(n);
        for _ in 0..n {
            x.push((self.r.i64("boundary")?, self.r.f64("scale")?));
        }
        Ok(())
    }
}

impl Visit<Vec<i64>, CheckpointError> for Reader<'_, '_> {
    fn visit(&mut self, name: &'static str, x: &mut Vec<i64>) -> Result<()> {
        let n = self.r.count(8, &format!("{name} count"))?;
        x.reserve_exact(n);
        for _ in 0..n {
            x.push(self.r.i64(name)?);
        }
        Ok(())
    }
}

impl Visit<Vec<Schedule>, CheckpointError> for Reader<'_, '_> {
    fn visit(&mut self, name: &'static str, x: &mut Vec<Schedule>) -> Result<()> {
        let n = self.r.count(MIN_SCHEDULE_LEN, &format!("{name} count"))?;
        x.reserve_exact(n);
        for _ in 0..n {
            x.push(get_schedule(self.r, self.depth + 1)?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_schedules_are_rejected_without_recursing_far() {
        let mut s = Schedule::Constant { value: 0.1 };
        for _ in 0..MAX_SCHEDULE_DEPTH + 5 {
            s = Schedule::Join {
                schedules: vec![s],
                boundaries: vec![],
            };
        }
        let mut v = Vec::new();
        put_schedule(&mut v, &s);
        let err = get_schedule(&mut Rd::new(&v, "test"), 1).unwrap_err();
        assert!(err.to_string().contains("nested deeper"), "{err}");
    }

    /// Every kind round-trips, and the bytes are the documented layout (a hand-written
    /// encoding of one schedule of each field type).
    #[test]
    fn every_kind_round_trips_in_the_documented_layout() {
        let all = vec![
            Schedule::Constant { value: 0.5 },
            Schedule::ExponentialDecay {
                init_value: 1.0,
                transition_steps: 7,
                decay_rate: 0.5,
                transition_begin: -2,
                staircase: true,
                end_value: Some(0.25),
            },
            Schedule::PiecewiseConstant {
                init_value: 2.0,
                boundaries_and_scales: vec![(3, 0.5), (9, 0.1)],
            },
        ];
        let join = Schedule::Join {
            schedules: all.clone(),
            boundaries: vec![10, 20],
        };
        let mut v = Vec::new();
        put_schedule(&mut v, &join);
        let mut want = vec![9u8];
        want.extend(3u64.to_le_bytes());
        want.push(1);
        want.extend(0.5f64.to_le_bytes());
        want.push(4);
        for x in [1.0f64.to_bits(), 7, 0.5f64.to_bits(), (-2i64) as u64] {
            want.extend(x.to_le_bytes());
        }
        want.extend([1, 1]);
        want.extend(0.25f64.to_le_bytes());
        want.push(8);
        want.extend(2.0f64.to_le_bytes());
        want.extend(2u64.to_le_bytes());
        for x in [3, 0.5f64.to_bits(), 9, 0.1f64.to_bits()] {
            want.extend(x.to_le_bytes());
        }
        want.extend(2u64.to_le_bytes());
        want.extend(10u64.to_le_bytes());
        want.extend(20u64.to_le_bytes());
        assert_eq!(v, want);
        let mut r = Rd::new(&v, "test");
        assert_eq!(get_schedule(&mut r, 1).unwrap(), join);
        r.finish().unwrap();
        // Every declared kind decodes from its tag (with zero fields) and re-encodes.
        for &(tag, _) in Schedule::KINDS {
            let s = Schedule::empty(tag).unwrap();
            assert_eq!(s.tag(), tag);
            let mut v = Vec::new();
            put_schedule(&mut v, &s);
            assert_eq!(get_schedule(&mut Rd::new(&v, "test"), 1).unwrap(), s);
        }
        assert!(Schedule::empty(0).is_none() && Schedule::empty(10).is_none());
    }

    /// Fills every field with a distinct non-default value.
    struct Filler(u32);

    impl Filler {
        fn next(&mut self) -> u32 {
            self.0 += 1;
            self.0
        }
    }

    impl Visit<f64, ()> for Filler {
        fn visit(&mut self, _: &'static str, x: &mut f64) -> Result<(), ()> {
            *x = self.next() as f64 + 0.25;
            Ok(())
        }
    }
    impl Visit<i64, ()> for Filler {
        fn visit(&mut self, _: &'static str, x: &mut i64) -> Result<(), ()> {
            *x = -(self.next() as i64);
            Ok(())
        }
    }
    impl Visit<bool, ()> for Filler {
        fn visit(&mut self, _: &'static str, x: &mut bool) -> Result<(), ()> {
            *x = true;
            Ok(())
        }
    }
    impl Visit<Option<f64>, ()> for Filler {
        fn visit(&mut self, _: &'static str, x: &mut Option<f64>) -> Result<(), ()> {
            *x = Some(self.next() as f64);
            Ok(())
        }
    }
    impl Visit<Vec<(i64, f64)>, ()> for Filler {
        fn visit(&mut self, _: &'static str, x: &mut Vec<(i64, f64)>) -> Result<(), ()> {
            *x = vec![(self.next() as i64, 0.5), (self.next() as i64, 0.125)];
            Ok(())
        }
    }
    impl Visit<Vec<i64>, ()> for Filler {
        fn visit(&mut self, _: &'static str, x: &mut Vec<i64>) -> Result<(), ()> {
            *x = vec![self.next() as i64, self.next() as i64];
            Ok(())
        }
    }
    impl Visit<Vec<Schedule>, ()> for Filler {
        fn visit(&mut self, _: &'static str, x: &mut Vec<Schedule>) -> Result<(), ()> {
            let mut inner = Schedule::empty(2).unwrap();
            inner.visit_fields(self)?;
            *x = vec![Schedule::Constant { value: 3.0 }, inner];
            Ok(())
        }
    }

    /// Every declared kind with every field set to a non-default value round-trips (a
    /// field the codec skipped would come back as its default).
    #[test]
    fn every_field_of_every_kind_round_trips() {
        for &(tag, name) in Schedule::KINDS {
            let mut s = Schedule::empty(tag).unwrap();
            s.visit_fields(&mut Filler(0)).unwrap();
            assert_ne!(Some(&s), Schedule::empty(tag).as_ref(), "{name}");
            let mut v = Vec::new();
            put_schedule(&mut v, &s);
            let mut r = Rd::new(&v, "test");
            assert_eq!(get_schedule(&mut r, 1).unwrap(), s, "{name}");
            r.finish().unwrap();
            let mut zero = Vec::new();
            put_schedule(&mut zero, &Schedule::empty(tag).unwrap());
            assert_ne!(v, zero, "{name}");
        }
    }
}
