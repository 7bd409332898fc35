//! Block-wise 8-bit quantization of optimizer state, as bitsandbytes does it
//! (Dettmers et al., "8-bit Optimizers via Block-wise Quantization", ICLR 2022).
//!
//! # Layout (the same as bitsandbytes', so state moves between the two)
//! A tensor of `n` elements is cut into `ceil(n / block)` blocks of `block` consecutive
//! elements (the last one may be shorter). Each element is stored as one code (`u8`), each
//! block as one `f32` absmax. The value of element `i` is
//! `map[codes[i]] * absmax[i / block]`, computed in `f32` (one rounding), exactly as
//! `bitsandbytes.functional.dequantize_blockwise`.
//!
//! # Maps
//! [`QuantMap::signed`] and [`QuantMap::unsigned`] are bitsandbytes'
//! `create_dynamic_map(signed=True)` and `create_dynamic_map(signed=False)`, bit for bit
//! (generated from bitsandbytes 0.50.2 into `maps.rs`, checked against its output by
//! `tests/quant.rs`). Both are a dynamic (non-linear) type: per decade `10^-6 .. 10^0` a
//! linear grid of means that gets finer toward 1, plus `0` and `1.0`; 256 ascending values.
//! The signed map spans `[-0.99297, 1]`, the unsigned one `[0, 1]` with twice the
//! resolution. The largest gap between adjacent codes, in units of the block's absmax, is
//! `0.9/64 = 0.01406` (signed) and `0.9/128 = 0.00703` (unsigned), so a value is
//! reproduced within half that, `0.00703 * absmax` and `0.00352 * absmax`
//! ([`QuantMap::max_half_gap`]); values much smaller than their block's absmax keep
//! less relative precision (that is the price of one scale per block).
//!
//! # Rounding ([`Rounding`])
//! Both rules first normalise `v = x * (1/absmax)` (bitsandbytes multiplies by the
//! reciprocal) and clamp it to `[-1, 1]`; a block whose absmax is 0 gets code 0 throughout.
//! - [`Rounding::Nearest`]: the nearest code; a value exactly on the midpoint
//!   `0.5 * (map[i] + map[i+1])` (computed in `f32`) goes to the lower code `i`.
//! - [`Rounding::BitsandbytesCpu`]: what bitsandbytes 0.50.2's CPU `quantize_blockwise`
//!   does, bit for bit: `v` is first snapped to a grid of 65,536 points
//!   (`idx = trunc((v + 1) * 0.5 * 65535 + 0.5)`, grid point `-1 + 2*idx/65535`), then the
//!   nearest code of the grid point is taken with the rule above. The grid spacing
//!   (3.05e-5) is coarser than the smallest codes, so values below about `1.5e-5 * absmax`
//!   do not reach the small codes (zero becomes code 7 of the unsigned map, `1.56e-5 *
//!   absmax`). bitsandbytes' CUDA kernels search the map exactly, as `Nearest` does.
//!
//! - [`Rounding::Up`] and [`Rounding::TowardZero`]: directed rules the optimizer uses
//!   for `nu` and `mu` by default ([`Optimizer8bit`] explains why).
//!
//! No rule is stochastic: bitsandbytes' 8-bit optimizers round to nearest.
//!
//! # Small tensors
//! bitsandbytes keeps the state of a tensor with fewer than `min_8bit_size = 4096`
//! elements in `f32` ([`MIN_8BIT_SIZE`]); its optimizers use blocks of 256
//! ([`BLOCK_256`]); 2048 ([`BLOCK_2048`]) is also accepted here, as in bitsandbytes'
//! `quantize_blockwise`.

mod maps;
mod optimizer;

pub use optimizer::{Optimizer8bit, Q8Options};

use std::sync::OnceLock;

/// Blocks of 256 elements: what bitsandbytes' 8-bit optimizers use.
pub const BLOCK_256: usize = 256;
/// Blocks of 2048 elements (fewer absmax values, coarser scale).
pub const BLOCK_2048: usize = 2048;
/// The largest block size accepted.
pub const MAX_BLOCK: usize = BLOCK_2048;
/// Tensors with fewer elements than this keep `f32` state (bitsandbytes' default
/// `min_8bit_size`).
pub const MIN_8BIT_SIZE: usize = 4096;

/// Size of bitsandbytes' CPU rounding grid.
const GRID: usize = 65536;

/// Which of the two dynamic maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// `create_dynamic_map(signed=True)`: for `mu` and `trace` (and bitsandbytes'
    /// `RMSprop8bit` stores its `nu` with this one too).
    Signed,
    /// `create_dynamic_map(signed=False)`: for `nu`, which is never negative.
    Unsigned,
}

/// How a normalised value is rounded to a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// The nearest code, ties to the lower one (the default).
    Nearest,
    /// bitsandbytes 0.50.2's CPU `quantize_blockwise`, bit for bit.
    BitsandbytesCpu,
    /// The smallest code not below the value: a positive value never becomes 0 and never
    /// shrinks (the default for `nu`: see [`Optimizer8bit`]).
    Up,
    /// The code nearest to the value among those not larger in magnitude (for `mu`: see
    /// [`Optimizer8bit`]).
    TowardZero,
}

/// A 256-entry quantization map with what rounding to it needs.
#[derive(Debug)]
pub struct QuantMap {
    kind: MapKind,
    code: [f32; 256],
    /// The midpoints `0.5 * (code[i] + code[i + 1])`, `f32`.
    mids: Buckets,
    codes: Buckets,
    grid: OnceLock<Box<[u8]>>,
}

/// Counting how many of up to 256 ascending values lie below `v`, fast: for each of the
/// 65,536 patterns of an `f32`'s top 16 bits (sign, exponent, 7 mantissa bits), the count
/// below the smallest `f32` with that pattern; a query starts there and steps over the few
/// values inside its bucket (a bucket spans at most 1/128 of its values' magnitude, and
/// adjacent codes of both maps are further apart than that above 1e-7, so at most a
/// couple of steps). Exact for every input, NaN included (count 0).
#[derive(Debug)]
struct Buckets {
    /// The values, padded with `+inf` to 257 entries (stops every scan).
    vals: [f32; 257],
    start: Box<[u16]>,
}

impl Buckets {
    fn new(sorted: &[f32]) -> Buckets {
        let vals: [f32; 257] =
            std::array::from_fn(|i| sorted.get(i).copied().unwrap_or(f32::INFINITY));
        let start = (0..1u32 << 16)
            .map(|k| {
                // The smallest f32 whose top bits are `k` (NaN patterns: NaN, count 0).
                let lowest = if k & 0x8000 == 0 {
                    f32::from_bits(k << 16)
                } else {
                    f32::from_bits((k << 16) | 0xFFFF)
                };
                vals.partition_point(|&x| x < lowest) as u16
            })
            .collect();
        Buckets { vals, start }
    }

    /// How many values are `< v`.
    #[inline(always)]
    fn below(&self, v: f32) -> usize {
        let mut i = self.start[(v.to_bits() >> 16) as usize] as usize;
        while self.vals[i] < v {
            i += 1;
        }
        i
    }

    /// How many values are `<= v` (`v` finite).
    #[inline(always)]
    fn not_above(&self, v: f32) -> usize {
        let mut i = self.start[(v.to_bits() >> 16) as usize] as usize;
        while self.vals[i] <= v {
            i += 1;
        }
        i
    }
}

impl QuantMap {
    fn build(kind: MapKind) -> QuantMap {
        let bits = match kind {
            MapKind::Signed => &maps::SIGNED_BITS,
            MapKind::Unsigned => &maps::UNSIGNED_BITS,
        };
        let code: [f32; 256] = std::array::from_fn(|i| f32::from_bits(bits[i]));
        let mid: [f32; 256] = std::array::from_fn(|i| {
            if i < 255 {
                0.5 * (code[i] + code[i + 1])
            } else {
                f32::INFINITY
            }
        });
        QuantMap {
            kind,
            code,
            mids: Buckets::new(&mid[..255]),
            codes: Buckets::new(&code),
            grid: OnceLock::new(),
        }
    }

    /// The signed map (shared, built once).
    pub fn signed() -> &'static QuantMap {
        static M: OnceLock<QuantMap> = OnceLock::new();
        M.get_or_init(|| QuantMap::build(MapKind::Signed))
    }

    /// The unsigned map (shared, built once).
    pub fn unsigned() -> &'static QuantMap {
        static M: OnceLock<QuantMap> = OnceLock::new();
        M.get_or_init(|| QuantMap::build(MapKind::Unsigned))
    }

    /// The map of a kind.
    pub fn of(kind: MapKind) -> &'static QuantMap {
        match kind {
            MapKind::Signed => QuantMap::signed(),
            MapKind::Unsigned => QuantMap::unsigned(),
        }
    }

    /// Which map this is.
    pub fn kind(&self) -> MapKind {
        self.kind
    }

    /// The 256 values, ascending.
    pub fn values(&self) -> &[f32; 256] {
        &self.code
    }

    /// Half the largest gap between adjacent codes: the largest error of [`Rounding::Nearest`]
    /// in units of the block's absmax (before the one rounding of the normalisation).
    pub fn max_half_gap(&self) -> f32 {
        self.code
            .windows(2)
            .map(|w| 0.5 * (w[1] - w[0]))
            .fold(0.0, f32::max)
    }

    /// The code nearest to a normalised value `v` (ties to the lower code; NaN gives 0):
    /// the number of midpoints below `v`.
    #[inline(always)]
    pub fn nearest(&self, v: f32) -> u8 {
        self.mids.below(v) as u8
    }

    /// The number of codes below `v` (`lt`) or not above it (`!lt`).
    #[inline(always)]
    fn count(&self, v: f32, lt: bool) -> usize {
        if lt {
            self.codes.below(v)
        } else {
            self.codes.not_above(v)
        }
    }

    /// The smallest code `>= v` (`v` in `[-1, 1]`; NaN gives 0).
    #[inline(always)]
    pub fn up(&self, v: f32) -> u8 {
        self.count(v, true).min(255) as u8
    }

    /// The code nearest to `v` among those with magnitude `<= |v|` (`v` in `[-1, 1]`).
    #[inline(always)]
    pub fn toward_zero(&self, v: f32) -> u8 {
        if v >= 0.0 {
            // Both maps hold 0, so some code is `<= v`.
            (self.count(v, false) - 1) as u8
        } else {
            self.count(v, true).min(255) as u8
        }
    }

    fn grid(&self) -> &[u8] {
        self.grid.get_or_init(|| {
            (0..GRID)
                .map(|i| {
                    let v = -1.0f32 + (2.0f32 * i as f32) / (GRID - 1) as f32;
                    self.nearest(v)
                })
                .collect()
        })
    }

    /// The code bitsandbytes' CPU quantizer gives a normalised value `v`.
    #[inline(always)]
    fn bnb_cpu(&self, grid: &[u8], v: f32) -> u8 {
        let v = v.clamp(-1.0, 1.0);
        // `as u16` saturates and maps NaN to 0, as the C++ cast does on x86-64 in practice.
        let idx = ((v + 1.0) * 0.5 * (GRID - 1) as f32 + 0.5) as u16;
        grid[idx as usize]
    }

    /// Quantize one block: returns its absmax and writes one code per element.
    /// `codes.len() == xs.len()`.
    pub fn quantize_block(&self, rounding: Rounding, xs: &[f32], codes: &mut [u8]) -> f32 {
        assert_eq!(xs.len(), codes.len(), "one code per element");
        // `f32::max` ignores NaN, as `std::max(absmax, fabs(x))` does in bitsandbytes; eight
        // running maxima (max is exact, so the order does not matter) let it vectorise.
        let mut lanes = [0.0f32; 8];
        let mut chunks = xs.chunks_exact(8);
        for ch in &mut chunks {
            for (l, x) in lanes.iter_mut().zip(ch) {
                *l = l.max(x.abs());
            }
        }
        let absmax = chunks
            .remainder()
            .iter()
            .chain(&lanes)
            .fold(0.0f32, |m, x| m.max(x.abs()));
        if absmax == 0.0 {
            codes.fill(0);
            return absmax;
        }
        let inv = 1.0 / absmax;
        match rounding {
            Rounding::Nearest => {
                for (c, &x) in codes.iter_mut().zip(xs) {
                    *c = self.nearest((x * inv).clamp(-1.0, 1.0));
                }
            }
            Rounding::BitsandbytesCpu => {
                let grid = self.grid();
                for (c, &x) in codes.iter_mut().zip(xs) {
                    *c = self.bnb_cpu(grid, x * inv);
                }
            }
            Rounding::Up => {
                for (c, &x) in codes.iter_mut().zip(xs) {
                    *c = self.up((x * inv).clamp(-1.0, 1.0));
                }
            }
            Rounding::TowardZero => {
                for (c, &x) in codes.iter_mut().zip(xs) {
                    *c = self.toward_zero((x * inv).clamp(-1.0, 1.0));
                }
            }
        }
        absmax
    }

    /// Dequantize one block: `out[i] = map[codes[i]] * absmax`.
    #[inline]
    pub fn dequantize_block(&self, codes: &[u8], absmax: f32, out: &mut [f32]) {
        assert_eq!(codes.len(), out.len(), "one code per element");
        for (o, &c) in out.iter_mut().zip(codes) {
            *o = self.code[c as usize] * absmax;
        }
    }

    /// Quantize a whole tensor in blocks of `block`: `codes.len() == xs.len()`,
    /// `absmax.len() == xs.len().div_ceil(block)`.
    pub fn quantize(
        &self,
        rounding: Rounding,
        block: usize,
        xs: &[f32],
        codes: &mut [u8],
        absmax: &mut [f32],
    ) {
        assert!(block > 0);
        assert_eq!(
            absmax.len(),
            xs.len().div_ceil(block),
            "one absmax per block"
        );
        for ((x, c), a) in xs
            .chunks(block)
            .zip(codes.chunks_mut(block))
            .zip(absmax.iter_mut())
        {
            *a = self.quantize_block(rounding, x, c);
        }
    }

    /// Dequantize a whole tensor stored in blocks of `block`.
    pub fn dequantize(&self, block: usize, codes: &[u8], absmax: &[f32], out: &mut [f32]) {
        assert!(block > 0);
        assert_eq!(
            absmax.len(),
            codes.len().div_ceil(block),
            "one absmax per block"
        );
        for ((c, &a), o) in codes.chunks(block).zip(absmax).zip(out.chunks_mut(block)) {
            self.dequantize_block(c, a, o);
        }
    }
}

/// One tensor's state, quantized: one code per element, one absmax per block.
#[derive(Clone, Debug, PartialEq)]
pub struct QTensor {
    /// One code per element.
    pub codes: Vec<u8>,
    /// One absmax per block of `block` consecutive elements.
    pub absmax: Vec<f32>,
}

impl QTensor {
    /// `n` elements of the value `x`, quantized in blocks of `block`.
    pub fn filled(map: &QuantMap, rounding: Rounding, block: usize, n: usize, x: f32) -> QTensor {
        let xs = vec![x; n];
        let mut q = QTensor {
            codes: vec![0; n],
            absmax: vec![0.0; n.div_ceil(block)],
        };
        map.quantize(rounding, block, &xs, &mut q.codes, &mut q.absmax);
        q
    }

    /// The dequantized values.
    pub fn values(&self, map: &QuantMap, block: usize) -> Vec<f32> {
        let mut out = vec![0.0; self.codes.len()];
        map.dequantize(block, &self.codes, &self.absmax, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_ascending_and_span_the_documented_range() {
        for m in [QuantMap::signed(), QuantMap::unsigned()] {
            assert!(m.values().windows(2).all(|w| w[0] < w[1]));
            assert_eq!(m.values()[255], 1.0);
        }
        assert_eq!(QuantMap::unsigned().values()[0], 0.0);
        assert!((QuantMap::signed().values()[0] + 0.99297).abs() < 1e-5);
        // The largest gaps, as documented: the top decade's linear grid (0.9/64, 0.9/128).
        assert!((QuantMap::signed().max_half_gap() - 0.9 / 128.0).abs() < 1e-6);
        assert!((QuantMap::unsigned().max_half_gap() - 0.9 / 256.0).abs() < 1e-6);
    }

    #[test]
    fn bucketed_counts_equal_plain_counts_across_every_bucket() {
        for m in [QuantMap::signed(), QuantMap::unsigned()] {
            let c = m.values();
            let mut x = 0x1234_5678u32;
            for k in 0..1u32 << 16 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                for bits in [k << 16, (k << 16) | 0xFFFF, (k << 16) | (x & 0xFFFF)] {
                    let v = f32::from_bits(bits);
                    if !(-1.0..=1.0).contains(&v) {
                        continue;
                    }
                    let below = c.iter().filter(|&&ci| ci < v).count();
                    let not_above = c.iter().filter(|&&ci| ci <= v).count();
                    let mids = m.mids.vals[..255].iter().filter(|&&mi| mi < v).count();
                    assert_eq!(m.nearest(v) as usize, mids, "{v}");
                    assert_eq!(m.count(v, true), below, "{v}");
                    assert_eq!(m.count(v, false), not_above, "{v}");
                }
            }
        }
    }

    #[test]
    fn nearest_is_the_exhaustive_nearest_with_ties_down() {
        for m in [QuantMap::signed(), QuantMap::unsigned()] {
            let c = m.values();
            let mut probes: Vec<f32> = c.to_vec();
            probes.extend(m.mids.vals[..255].iter().copied());
            probes.extend(
                m.mids.vals[..255]
                    .iter()
                    .map(|x| f32::from_bits(x.to_bits() + 1)),
            );
            probes.extend((0..2001).map(|i| -1.0 + i as f32 / 1000.0));
            for v in probes {
                let q = m.nearest(v) as usize;
                // Exhaustive: the lowest index among those at minimal distance from v,
                // where "distance" is judged by the f32 midpoints.
                let want = m.mids.vals[..255].iter().filter(|&&mid| mid < v).count();
                assert_eq!(q, want, "{v}");
                if q > 0 {
                    assert!((v - c[q]).abs() <= (v - c[q - 1]).abs() * (1.0 + 1e-6));
                }
            }
            assert_eq!(m.nearest(f32::NAN), 0);
            for v in (0..4001)
                .map(|i| -1.0 + i as f32 / 2000.0)
                .chain(c.iter().copied())
            {
                if m.kind() == MapKind::Unsigned && v < 0.0 {
                    continue;
                }
                let u = m.up(v) as usize;
                assert!(c[u] >= v && (u == 0 || c[u - 1] < v), "up {v}");
                let z = m.toward_zero(v) as usize;
                assert!(c[z].abs() <= v.abs(), "toward zero {v}");
                let next = if v >= 0.0 { z + 1 } else { z.wrapping_sub(1) };
                assert!(next > 255 || c[next].abs() > v.abs(), "toward zero {v}");
            }
        }
    }
}
