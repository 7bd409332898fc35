//! Little-endian bytes: the writers (`put_*`) and the bounds-checked reader ([`Rd`]) that
//! every section's codec uses.

use super::{Result, corrupt};

pub(super) fn put_u8(v: &mut Vec<u8>, x: u8) {
    v.push(x);
}
pub(super) fn put_u64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}
pub(super) fn put_i32(v: &mut Vec<u8>, x: i32) {
    v.extend_from_slice(&x.to_le_bytes());
}
pub(super) fn put_i64(v: &mut Vec<u8>, x: i64) {
    v.extend_from_slice(&x.to_le_bytes());
}
pub(super) fn put_f64(v: &mut Vec<u8>, x: f64) {
    v.extend_from_slice(&x.to_le_bytes());
}
pub(super) fn put_len(v: &mut Vec<u8>, n: usize) {
    put_u64(v, n as u64);
}
pub(super) fn put_opt_f64(v: &mut Vec<u8>, x: Option<f64>) {
    put_u8(v, x.is_some() as u8);
    put_f64(v, x.unwrap_or(0.0));
}

/// A bounds-checked little-endian reader over one section.
pub(super) struct Rd<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> Rd<'a> {
    pub(super) fn new(b: &'a [u8], what: &'static str) -> Self {
        Rd { b, what }
    }

    pub(super) fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
        if n > self.b.len() {
            return Err(corrupt(format!(
                "{}: {field} needs {n} bytes, only {} left",
                self.what,
                self.b.len()
            )));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }

    pub(super) fn arr<const N: usize>(&mut self, field: &str) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    pub(super) fn u8(&mut self, field: &str) -> Result<u8> {
        Ok(self.arr::<1>(field)?[0])
    }
    pub(super) fn u64(&mut self, field: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr(field)?))
    }
    pub(super) fn i32(&mut self, field: &str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.arr(field)?))
    }
    pub(super) fn i64(&mut self, field: &str) -> Result<i64> {
        Ok(i64::from_le_bytes(self.arr(field)?))
    }
    pub(super) fn f64(&mut self, field: &str) -> Result<f64> {
        Ok(f64::from_le_bytes(self.arr(field)?))
    }

    pub(super) fn bool(&mut self, field: &str) -> Result<bool> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(corrupt(format!(
                "{}: {field} must be 0 or 1, got {v}",
                self.what
            ))),
        }
    }

    pub(super) fn opt_f64(&mut self, field: &str) -> Result<Option<f64>> {
        let present = self.bool(field)?;
        let v = self.f64(field)?;
        match (present, v.to_bits()) {
            (true, _) => Ok(Some(v)),
            (false, 0) => Ok(None),
            (false, _) => Err(corrupt(format!(
                "{}: absent {field} must be stored as 0.0",
                self.what
            ))),
        }
    }

    pub(super) fn zeros(&mut self, n: usize, field: &str) -> Result<()> {
        if self.take(n, field)?.iter().any(|&b| b != 0) {
            return Err(corrupt(format!(
                "{}: reserved bytes ({field}) must be 0",
                self.what
            )));
        }
        Ok(())
    }

    /// A `u64` element count whose elements of `elem_size` bytes must fit in what is left.
    pub(super) fn count(&mut self, elem_size: usize, field: &str) -> Result<usize> {
        let n = self.u64(field)?;
        let left = self.b.len();
        match usize::try_from(n) {
            Ok(n) if n.checked_mul(elem_size).is_some_and(|b| b <= left) => Ok(n),
            _ => Err(corrupt(format!(
                "{}: {field} = {n} does not fit in the {left} bytes left",
                self.what
            ))),
        }
    }

    /// The next section, which must carry `tag`.
    pub(super) fn section(&mut self, tag: [u8; 4], what: &'static str) -> Result<Rd<'a>> {
        let t = self.arr::<4>("section tag")?;
        if t != tag {
            return Err(corrupt(format!(
                "expected section {}, found {:?}",
                String::from_utf8_lossy(&tag),
                String::from_utf8_lossy(&t)
            )));
        }
        let len = self.count(1, what)?;
        Ok(Rd::new(self.take(len, what)?, what))
    }

    /// `true` when every byte has been read.
    pub(super) fn is_empty(&self) -> bool {
        self.b.is_empty()
    }

    pub(super) fn finish(&self) -> Result<()> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(corrupt(format!(
                "{}: {} unexpected trailing bytes",
                self.what,
                self.b.len()
            )))
        }
    }
}
