//! The fused step over 8-bit block-wise state ([`crate::quant`]), for `f32` parameters.
//!
//! Per block of `block` consecutive elements, in one pass: dequantize `nu` (and `mu`,
//! `trace`) into a stack buffer with the block's old absmax; run the very same
//! monomorphised `f32` kernel ([`super::select`]) over that block, so every element gets
//! optax's arithmetic exactly as in the `f32`-state step; requantize each updated state
//! buffer with the absmax of its *updated* values. This is the order of bitsandbytes'
//! reference 8-bit step (dequantize with the old absmax, update in `f32`, quantize with a
//! fresh absmax). Blocks are never split, so the result does not depend on how blocks are
//! spread over threads.

use super::fpenv::KernelEnv;
use super::{Bufs, Coeffs, KernelFn};
use crate::quant::{MAX_BLOCK, QuantMap, Rounding};

/// One quantized state buffer over a run of whole blocks.
#[derive(Debug)]
pub struct QBuf<'a> {
    /// One code per element.
    pub codes: &'a mut [u8],
    /// One absmax per block.
    pub absmax: &'a mut [f32],
}

/// The buffers of a run of whole blocks of one tensor (the last block may be short).
#[derive(Debug)]
pub struct QBufs<'a> {
    /// Gradients (empty in [`super::Mode::UpdateInPlace`]).
    pub grads: &'a [f32],
    /// Updates out, gradients-then-updates, or parameters, depending on the mode.
    pub dst: &'a mut [f32],
    /// `nu`.
    pub nu: QBuf<'a>,
    /// `mu` (centered only).
    pub mu: Option<QBuf<'a>>,
    /// `trace` (momentum only).
    pub trace: Option<QBuf<'a>>,
}

/// How the state is quantized.
#[derive(Clone, Copy, Debug)]
pub struct QSpec {
    /// Elements per block (at most [`MAX_BLOCK`]).
    pub block: usize,
    /// The map of `nu`.
    pub nu_map: &'static QuantMap,
    /// The map of `mu` and `trace`.
    pub signed_map: &'static QuantMap,
    /// The rounding of `nu`.
    pub nu_rounding: Rounding,
    /// The rounding of `mu`.
    pub mu_rounding: Rounding,
    /// The rounding of `trace`.
    pub trace_rounding: Rounding,
}

/// Run the fused step over `b`, one block after the other, on the calling thread.
pub fn run_blocks(f: KernelFn<f32>, k: &Coeffs<f32>, spec: &QSpec, b: QBufs<'_>) {
    let bs = spec.block;
    assert!(bs > 0 && bs <= MAX_BLOCK);
    let n = b.dst.len();
    let _env = KernelEnv::enter();
    let mut nu = [0f32; MAX_BLOCK];
    let mut mu = [0f32; MAX_BLOCK];
    let mut tr = [0f32; MAX_BLOCK];
    let QBufs {
        grads,
        dst,
        nu: qnu,
        mu: mut qmu,
        trace: mut qtr,
    } = b;
    for (blk, start) in (0..n).step_by(bs).enumerate() {
        let end = (start + bs).min(n);
        let len = end - start;
        let nu = &mut nu[..len];
        spec.nu_map
            .dequantize_block(&qnu.codes[start..end], qnu.absmax[blk], nu);
        let mu: &mut [f32] = match &qmu {
            Some(q) => {
                spec.signed_map.dequantize_block(
                    &q.codes[start..end],
                    q.absmax[blk],
                    &mut mu[..len],
                );
                &mut mu[..len]
            }
            None => &mut [],
        };
        let trace: &mut [f32] = match &qtr {
            Some(q) => {
                spec.signed_map.dequantize_block(
                    &q.codes[start..end],
                    q.absmax[blk],
                    &mut tr[..len],
                );
                &mut tr[..len]
            }
            None => &mut [],
        };
        f(
            k,
            Bufs {
                grads: if grads.is_empty() {
                    &[]
                } else {
                    &grads[start..end]
                },
                dst: &mut dst[start..end],
                nu: &mut *nu,
                mu: &mut *mu,
                trace: &mut *trace,
            },
        );
        qnu.absmax[blk] =
            spec.nu_map
                .quantize_block(spec.nu_rounding, nu, &mut qnu.codes[start..end]);
        if let Some(q) = qmu.as_mut() {
            q.absmax[blk] =
                spec.signed_map
                    .quantize_block(spec.mu_rounding, mu, &mut q.codes[start..end]);
        }
        if let Some(q) = qtr.as_mut() {
            q.absmax[blk] = spec.signed_map.quantize_block(
                spec.trace_rounding,
                trace,
                &mut q.codes[start..end],
            );
        }
    }
}
