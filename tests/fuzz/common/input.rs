//! Decoding the fuzz input: typed reads off the bytes, and bulk values.

/// Reads typed values off the input; an exhausted input reads as zeros.
pub struct Bytes<'a> {
    pub(crate) d: &'a [u8],
}

pub(crate) const F64S: [f64; 32] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    0.9,
    0.99,
    1e-8,
    1e-3,
    0.1,
    2.0,
    10.0,
    1e300,
    -1e300,
    f64::MAX,
    f64::MIN_POSITIVE,
    5e-324,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    1.0000000000000002,
    0.9999999999999999,
    3.4028234663852886e38,
    3.5e38,
    1e-45,
    100.0,
    -0.5,
    1.5,
    1e-30,
    -1e-8,
    0.3,
    7.0,
];

pub(crate) const I64S: [i64; 16] = [
    0,
    1,
    -1,
    2,
    3,
    5,
    10,
    100,
    1000,
    i32::MAX as i64,
    i32::MIN as i64,
    i32::MAX as i64 + 1,
    i64::MAX,
    i64::MIN,
    7,
    -5,
];

pub(crate) const I32S: [i32; 12] = [
    0,
    1,
    2,
    3,
    10,
    100,
    i32::MAX,
    i32::MAX - 1,
    -1,
    i32::MIN,
    1000,
    5,
];

impl<'a> Bytes<'a> {
    /// A reader over `d`.
    pub fn new(d: &'a [u8]) -> Self {
        Bytes { d }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.d.is_empty()
    }

    pub(crate) fn u8(&mut self) -> u8 {
        match self.d.split_first() {
            Some((&b, rest)) => {
                self.d = rest;
                b
            }
            None => 0,
        }
    }

    pub(crate) fn arr<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        for x in &mut a {
            *x = self.u8();
        }
        a
    }

    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.arr())
    }

    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.arr())
    }

    pub(crate) fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.arr())
    }

    /// A value in `0..n` (`n` at most 256; 0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { self.u8() as usize % n }
    }

    pub(crate) fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// Mostly interesting values, sometimes an arbitrary bit pattern.
    pub(crate) fn f64(&mut self) -> f64 {
        let s = self.u8();
        if s < 0xC0 {
            F64S[s as usize % F64S.len()]
        } else {
            f64::from_bits(self.u64())
        }
    }

    pub(crate) fn i64(&mut self) -> i64 {
        let s = self.u8();
        if s < 0xC0 {
            I64S[s as usize % I64S.len()]
        } else {
            self.u64() as i64
        }
    }

    pub(crate) fn i32(&mut self) -> i32 {
        let s = self.u8();
        if s < 0xC0 {
            I32S[s as usize % I32S.len()]
        } else {
            self.u32() as i32
        }
    }
}

/// A small deterministic generator for bulk values (seeded from the input).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0 | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// `n` values as `f64`: a repeated pattern from the input, a constant, pseudo-random
/// numbers, or a pseudo-random mix including non-finite values.
pub(crate) fn values(b: &mut Bytes<'_>, n: usize) -> Vec<f64> {
    match b.below(5) {
        0 => {
            let k = b.below(8) + 1;
            let pat: Vec<f64> = (0..k).map(|_| b.f64()).collect();
            (0..n).map(|i| pat[i % k]).collect()
        }
        1 => vec![b.f64(); n],
        2 | 3 => {
            let mut r = Rng(b.u64());
            let scale = [1.0, 1e-3, 1e3, 1e-20, 1e20][b.below(5)];
            (0..n)
                .map(|_| ((r.next() >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * scale)
                .collect()
        }
        _ => {
            let mut r = Rng(b.u64());
            (0..n)
                .map(|_| {
                    let x = r.next();
                    if x.is_multiple_of(16) {
                        F64S[(x >> 8) as usize % F64S.len()]
                    } else {
                        ((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 4.0
                    }
                })
                .collect()
        }
    }
}

// ---------------------------------------------------------------------------------------
// Element types.
