//! Version 1's sections: `CONF` (configuration), `LAYT` (dtype, layout), `STAT` (counts,
//! skip counter, buffers), encoded and decoded (`docs/checkpoint-format.md`); then the
//! optional `XFRM` section (gradient transforms), present only when some are set.

use std::io::{self, Write};

use super::bytes::{Rd, put_f64, put_i32, put_len, put_opt_f64, put_u8, put_u64};
use super::format::{
    CrcWriter, SECTION_HEAD, TAG_CONF, TAG_LAYT, TAG_STAT, TAG_XFRM, write_header,
};
use super::schedule_codec::{get_schedule, put_schedule};
use super::{CheckpointError, Dtype, Element, Result, corrupt};
use crate::config::{Config, LearningRate};
use crate::optimizer::{Counts, Optimizer, State};
use crate::preset::Flavor;
use crate::transform::{Transforms, WeightDecayKind};

const FLAG_EPS_IN_SQRT: u8 = 1;
const FLAG_CENTERED: u8 = 2;
const FLAG_NESTEROV: u8 = 4;
const FLAG_BIAS_CORRECTION: u8 = 8;
const FLAG_SKIP_NON_FINITE: u8 = 16;
const FLAGS_KNOWN: u8 = 31;

const LR_FIXED: u8 = 0;
const LR_SCHEDULE: u8 = 1;

const HAS_NU: u8 = 1;
const HAS_MU: u8 = 2;
const HAS_TRACE: u8 = 4;

/// The `CONF` section's content.
fn conf_bytes(c: &Config, skip_non_finite: bool) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    put_f64(&mut v, c.decay);
    put_f64(&mut v, c.eps);
    put_f64(&mut v, c.initial_scale);
    let flags = (c.eps_in_sqrt as u8 * FLAG_EPS_IN_SQRT)
        | (c.centered as u8 * FLAG_CENTERED)
        | (c.nesterov as u8 * FLAG_NESTEROV)
        | (c.bias_correction as u8 * FLAG_BIAS_CORRECTION)
        | (skip_non_finite as u8 * FLAG_SKIP_NON_FINITE);
    put_u8(&mut v, flags);
    put_opt_f64(&mut v, c.momentum);
    match &c.learning_rate {
        LearningRate::Fixed(lr) => {
            put_u8(&mut v, LR_FIXED);
            put_f64(&mut v, *lr);
        }
        LearningRate::Schedule(s) => {
            put_u8(&mut v, LR_SCHEDULE);
            put_schedule(&mut v, s);
        }
    }
    v
}

const X_MAXIMIZE: u8 = 1;
const X_CLIP: u8 = 2;
const X_GLOBAL_NORM: u8 = 4;
const X_DECOUPLED: u8 = 8;
const X_PYTORCH: u8 = 16;
const X_TF1: u8 = 32;
const X_KERAS: u8 = 64;
const X_KNOWN: u8 = 127;

/// The optional `XFRM` section's content, or `None` when nothing in it is set: flags (u8),
/// 7 zero bytes, clip, max_norm, weight_decay, last global norm (f64 each; 0 when unset),
/// mask length (u64: 0 or the tensor count), one byte (0 or 1) per mask entry.
fn xfrm_bytes(t: &Transforms, mask: &[bool], last_norm: f64, flavor: Flavor) -> Option<Vec<u8>> {
    if t.is_identity() && mask.is_empty() && last_norm.is_nan() && flavor == Flavor::Optax {
        return None;
    }
    let mut v = Vec::with_capacity(48 + mask.len());
    let flags = (t.maximize as u8 * X_MAXIMIZE)
        | (t.clip.is_some() as u8 * X_CLIP)
        | (t.clip_by_global_norm.is_some() as u8 * X_GLOBAL_NORM)
        | ((t.weight_decay_kind == WeightDecayKind::Decoupled) as u8 * X_DECOUPLED)
        | ((flavor == Flavor::PyTorch) as u8 * X_PYTORCH)
        | ((flavor == Flavor::Tf1) as u8 * X_TF1)
        | ((flavor == Flavor::Keras) as u8 * X_KERAS);
    put_u8(&mut v, flags);
    v.extend_from_slice(&[0; 7]);
    put_f64(&mut v, t.clip.unwrap_or(0.0));
    put_f64(&mut v, t.clip_by_global_norm.unwrap_or(0.0));
    put_f64(&mut v, t.weight_decay);
    put_f64(&mut v, last_norm);
    put_len(&mut v, mask.len());
    v.extend(mask.iter().map(|&m| m as u8));
    Some(v)
}

/// The `LAYT` section's content.
fn layt_bytes<T: Element>(opt: &Optimizer<T>) -> Vec<u8> {
    let sizes = opt.layout().sizes();
    let mut v = Vec::with_capacity(16 + 8 * sizes.len());
    put_u8(&mut v, T::DTYPE as u8);
    v.extend_from_slice(&[0; 7]);
    put_len(&mut v, sizes.len());
    for &s in sizes {
        put_len(&mut v, s);
    }
    v
}

/// The `STAT` section's fixed head; the buffers follow it.
fn stat_head<T: Element>(opt: &Optimizer<T>) -> Vec<u8> {
    let s = opt.full_state();
    let mut v = Vec::with_capacity(32);
    put_i32(&mut v, s.counts.schedule);
    put_i32(&mut v, s.counts.bias_correction);
    put_u64(&mut v, opt.skipped_steps());
    let mask = HAS_NU | (s.mu.is_some() as u8 * HAS_MU) | (s.trace.is_some() as u8 * HAS_TRACE);
    put_u8(&mut v, mask);
    v.extend_from_slice(&[0; 7]);
    put_len(&mut v, opt.layout().total());
    v
}

fn buffers<T: Element>(s: &State<T>) -> impl Iterator<Item = &[T]> {
    std::iter::once(s.nu.as_slice())
        .chain(s.mu.as_deref())
        .chain(s.trace.as_deref())
}

/// Everything but the buffers, built once per encode.
pub(super) struct Plan {
    xfrm: Option<Vec<u8>>,
    conf: Vec<u8>,
    layt: Vec<u8>,
    stat_head: Vec<u8>,
    stat_len: u64,
    pub(super) body_len: u64,
}

pub(super) fn plan<T: Element>(opt: &Optimizer<T>) -> Plan {
    let conf = conf_bytes(opt.config(), opt.skip_non_finite());
    let layt = layt_bytes(opt);
    let stat_head = stat_head(opt);
    let elems: u64 = buffers(opt.full_state()).map(|b| b.len() as u64).sum();
    let stat_len = stat_head.len() as u64 + elems * size_of::<T>() as u64;
    let xfrm = xfrm_bytes(
        opt.transforms(),
        opt.weight_decay_mask(),
        opt.last_grad_norm(),
        opt.flavor(),
    );
    let xfrm_len = xfrm.as_ref().map_or(0, |x| SECTION_HEAD + x.len()) as u64;
    let body_len = (3 * SECTION_HEAD + conf.len() + layt.len()) as u64 + stat_len + xfrm_len;
    Plan {
        xfrm,
        conf,
        layt,
        stat_head,
        stat_len,
        body_len,
    }
}

pub(super) fn write_io<T: Element, W: Write>(opt: &Optimizer<T>, w: W) -> io::Result<()> {
    let p = plan(opt);
    let mut w = CrcWriter { inner: w, crc: 0 };
    write_header(&mut w, p.body_len)?;
    w.section(TAG_CONF, p.conf.len() as u64)?;
    w.put(&p.conf)?;
    w.section(TAG_LAYT, p.layt.len() as u64)?;
    w.put(&p.layt)?;
    w.section(TAG_STAT, p.stat_len)?;
    w.put(&p.stat_head)?;
    const CHUNK: usize = 8192;
    let mut scratch = Vec::with_capacity(CHUNK * size_of::<T>());
    for buf in buffers(opt.full_state()) {
        for c in buf.chunks(CHUNK) {
            scratch.clear();
            T::put_le(c, &mut scratch);
            w.put(&scratch)?;
        }
    }
    if let Some(x) = &p.xfrm {
        w.section(TAG_XFRM, x.len() as u64)?;
        w.put(x)?;
    }
    let crc = w.crc;
    w.inner.write_all(&crc.to_le_bytes())?;
    w.inner.flush()
}

/// A checkpoint checked for structure, with the buffers still as bytes.
pub(super) struct Parsed<'a> {
    config: Config,
    skip_non_finite: bool,
    skipped: u64,
    pub(super) dtype: Dtype,
    pub(super) sizes: Vec<usize>,
    counts: Counts,
    transforms: Transforms,
    wd_mask: Vec<bool>,
    last_norm: f64,
    flavor: Flavor,
    nu: &'a [u8],
    mu: Option<&'a [u8]>,
    trace: Option<&'a [u8]>,
}

pub(super) fn parse_v1(reserved: u32, body: &[u8]) -> Result<Parsed<'_>> {
    if reserved != 0 {
        return Err(corrupt(format!(
            "header: reserved word must be 0 in version 1, got {reserved:#x}"
        )));
    }
    let mut b = Rd::new(body, "body");

    let mut c = b.section(TAG_CONF, "CONF section")?;
    let decay = c.f64("decay")?;
    let eps = c.f64("eps")?;
    let initial_scale = c.f64("initial_scale")?;
    let flags = c.u8("flags")?;
    if flags & !FLAGS_KNOWN != 0 {
        return Err(corrupt(format!(
            "CONF section: unknown flag bits {:#x}",
            flags & !FLAGS_KNOWN
        )));
    }
    let momentum = c.opt_f64("momentum")?;
    let learning_rate = match c.u8("learning-rate kind")? {
        LR_FIXED => LearningRate::Fixed(c.f64("learning_rate")?),
        LR_SCHEDULE => LearningRate::Schedule(get_schedule(&mut c, 1)?),
        t => return Err(corrupt(format!("unknown learning-rate kind {t}"))),
    };
    c.finish()?;
    let config = Config {
        learning_rate,
        decay,
        eps,
        initial_scale,
        eps_in_sqrt: flags & FLAG_EPS_IN_SQRT != 0,
        centered: flags & FLAG_CENTERED != 0,
        momentum,
        nesterov: flags & FLAG_NESTEROV != 0,
        bias_correction: flags & FLAG_BIAS_CORRECTION != 0,
    };

    let mut l = b.section(TAG_LAYT, "LAYT section")?;
    let tag = l.u8("dtype")?;
    let dtype =
        Dtype::from_tag(tag.into()).ok_or_else(|| corrupt(format!("unknown dtype tag {tag}")))?;
    l.zeros(7, "padding after dtype")?;
    let n = l.count(8, "tensor count")?;
    let mut sizes = Vec::with_capacity(n);
    for _ in 0..n {
        let s = l.u64("tensor size")?;
        sizes.push(
            usize::try_from(s)
                .map_err(|_| corrupt(format!("tensor size {s} is not addressable")))?,
        );
    }
    l.finish()?;

    let mut s = b.section(TAG_STAT, "STAT section")?;
    let counts = Counts {
        schedule: s.i32("schedule count")?,
        bias_correction: s.i32("bias-correction count")?,
    };
    let skipped = s.u64("skipped steps")?;
    let mask = s.u8("buffer mask")?;
    s.zeros(7, "padding after buffer mask")?;
    if mask & !(HAS_NU | HAS_MU | HAS_TRACE) != 0 || mask & HAS_NU == 0 {
        return Err(corrupt(format!(
            "STAT section: invalid buffer mask {mask:#x}"
        )));
    }
    if (mask & HAS_MU != 0) != config.centered {
        return Err(corrupt(
            "STAT section: mu is present exactly when centered is set",
        ));
    }
    if (mask & HAS_TRACE != 0) != config.momentum.is_some() {
        return Err(corrupt(
            "STAT section: trace is present exactly when momentum is set",
        ));
    }
    let total = s.count(dtype.size(), "element count")?;
    let layout_total = sizes
        .iter()
        .try_fold(0usize, |a, &x| a.checked_add(x))
        .ok_or_else(|| corrupt("LAYT section: total element count overflows"))?;
    if total != layout_total {
        return Err(corrupt(format!(
            "STAT section: {total} elements per buffer, but the layout has {layout_total}"
        )));
    }
    // `count` checked that one buffer fits; `take` checks each of the others.
    let bytes = total * dtype.size();
    let nu = s.take(bytes, "nu")?;
    let mu = if mask & HAS_MU != 0 {
        Some(s.take(bytes, "mu")?)
    } else {
        None
    };
    let trace = if mask & HAS_TRACE != 0 {
        Some(s.take(bytes, "trace")?)
    } else {
        None
    };
    s.finish()?;
    let (transforms, wd_mask, last_norm, flavor) = if b.is_empty() {
        (Transforms::default(), Vec::new(), f64::NAN, Flavor::Optax)
    } else {
        parse_xfrm(&mut b.section(TAG_XFRM, "XFRM section")?, sizes.len())?
    };
    b.finish()?;

    Ok(Parsed {
        config,
        skip_non_finite: flags & FLAG_SKIP_NON_FINITE != 0,
        skipped,
        dtype,
        sizes,
        counts,
        transforms,
        wd_mask,
        last_norm,
        flavor,
        nu,
        mu,
        trace,
    })
}

fn parse_xfrm(x: &mut Rd<'_>, tensors: usize) -> Result<(Transforms, Vec<bool>, f64, Flavor)> {
    let flags = x.u8("transform flags")?;
    if flags & !X_KNOWN != 0 {
        return Err(corrupt(format!(
            "XFRM section: unknown flag bits {:#x}",
            flags & !X_KNOWN
        )));
    }
    x.zeros(7, "padding after transform flags")?;
    let clip = x.f64("max_delta")?;
    let max_norm = x.f64("max_norm")?;
    let t = Transforms {
        maximize: flags & X_MAXIMIZE != 0,
        clip: (flags & X_CLIP != 0).then_some(clip),
        clip_by_global_norm: (flags & X_GLOBAL_NORM != 0).then_some(max_norm),
        weight_decay: x.f64("weight_decay")?,
        weight_decay_kind: if flags & X_DECOUPLED != 0 {
            WeightDecayKind::Decoupled
        } else {
            WeightDecayKind::Coupled
        },
    };
    t.validate()
        .map_err(|e| corrupt(format!("invalid content: {e}")))?;
    let last_norm = x.f64("last global norm")?;
    let n = x.count(1, "mask length")?;
    if n != 0 && n != tensors {
        return Err(corrupt(format!(
            "XFRM section: a mask of {n} entries for {tensors} tensors"
        )));
    }
    let mut mask = Vec::with_capacity(n);
    for _ in 0..n {
        mask.push(x.bool("mask entry")?);
    }
    x.finish()?;
    let flavor = match (
        flags & X_PYTORCH != 0,
        flags & X_TF1 != 0,
        flags & X_KERAS != 0,
    ) {
        (false, false, false) => Flavor::Optax,
        (true, false, false) => Flavor::PyTorch,
        (false, true, false) => Flavor::Tf1,
        (false, false, true) => Flavor::Keras,
        _ => return Err(corrupt("XFRM section: more than one flavor")),
    };
    Ok((t, mask, last_norm, flavor))
}

impl Parsed<'_> {
    pub(super) fn check_dtype<T: Element>(&self) -> Result<()> {
        if self.dtype == T::DTYPE {
            Ok(())
        } else {
            Err(CheckpointError::Mismatch(format!(
                "dtype: the checkpoint holds {} state, this optimizer computes in {}",
                self.dtype.name(),
                T::DTYPE.name()
            )))
        }
    }

    /// A new optimizer holding exactly this checkpoint (validates the configuration).
    pub(super) fn build<T: Element>(&self) -> Result<Optimizer<T>> {
        self.check_dtype::<T>()?;
        let invalid = |e: crate::Error| corrupt(format!("invalid content: {e}"));
        let mut opt = Optimizer::<T>::new(self.config.clone(), &self.sizes).map_err(invalid)?;
        opt.set_full_state(State {
            nu: T::get_le(self.nu),
            mu: self.mu.map(T::get_le),
            trace: self.trace.map(T::get_le),
            counts: self.counts,
        })
        .map_err(invalid)?;
        opt.set_skip_non_finite(self.skip_non_finite);
        opt.set_skipped_steps(self.skipped);
        opt.set_transforms(self.transforms).map_err(invalid)?;
        opt.set_weight_decay_mask(&self.wd_mask).map_err(invalid)?;
        opt.set_last_grad_norm(self.last_norm);
        opt.set_flavor(self.flavor).map_err(invalid)?;
        Ok(opt)
    }
}

pub(super) fn check_layout(checkpoint: &[usize], mine: &[usize]) -> Result<()> {
    if checkpoint.len() != mine.len() {
        return Err(CheckpointError::Mismatch(format!(
            "layout: the checkpoint has {} tensors ({} elements), this optimizer {} ({} elements)",
            checkpoint.len(),
            checkpoint.iter().sum::<usize>(),
            mine.len(),
            mine.iter().sum::<usize>()
        )));
    }
    if let Some(i) = (0..mine.len()).find(|&i| checkpoint[i] != mine[i]) {
        return Err(CheckpointError::Mismatch(format!(
            "layout: tensor {i} has {} elements in the checkpoint, {} in this optimizer",
            checkpoint[i], mine[i]
        )));
    }
    Ok(())
}
