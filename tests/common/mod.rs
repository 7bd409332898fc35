//! Shared helpers of the integration tests (`mod common;`): locating the built library
//! ([`library`]), reading the header as data ([`header`]), running built programs
//! ([`process`]), and for the optax conformance
//! test the gradient/parameter hash (a copy of the one in `tools/gen_fixtures.py`, which
//! documents it), the fixture reader, the schedule-spec parser and ulp arithmetic.
#![allow(dead_code)]

pub mod header;
pub mod library;
pub mod process;

use rmsprop::{Real, Schedule};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------
// The hash. Must stay identical to tools/gen_fixtures.py (see its docstring).
// ---------------------------------------------------------------------------------------

/// splitmix64's output function applied to `x + golden gamma` (all wrapping).
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `seed * 1_000_003 + step * 65_537 + i`, wrapping.
pub fn key(seed: u64, step: u64, i: u64) -> u64 {
    seed.wrapping_mul(1_000_003)
        .wrapping_add(step.wrapping_mul(65_537))
        .wrapping_add(i)
}

/// The element types of the fixtures, with what the test needs beyond [`Real`].
pub trait Elem: Real + PartialEq + std::fmt::Display + std::fmt::LowerExp {
    /// Byte width.
    const BYTES: usize;
    /// `"f32"` / `"f64"`.
    const DTYPE: &'static str;
    /// HUGE and TINY gradients of the hash (the f64 literal rounded once).
    const HUGE: f64;
    /// See [`Elem::HUGE`].
    const TINY: f64;
    /// Bits of the significand's fraction the hash draws (23 / 52).
    const FRAC_BITS: u32;
    /// Unit roundoff, 2^-24 / 2^-53.
    const UNIT_ROUNDOFF: f64;
    fn from_le(b: &[u8]) -> Self;
    fn bits(self) -> u64;
    fn is_nan(self) -> bool;
    fn is_subnormal(self) -> bool;
    /// A monotone integer key: `key(b) - key(a)` is the number of representable values
    /// between `a` and `b` (+0 and -0 share key 0).
    fn ord_key(self) -> i64;
    /// The spacing of the dtype at `|self|` (the ulp), as f64.
    fn ulp(self) -> f64;
}

impl Elem for f32 {
    const BYTES: usize = 4;
    const DTYPE: &'static str = "f32";
    const HUGE: f64 = 1e30;
    const TINY: f64 = 1e-30;
    const FRAC_BITS: u32 = 23;
    const UNIT_ROUNDOFF: f64 = 5.960464477539063e-8;
    fn from_le(b: &[u8]) -> Self {
        f32::from_le_bytes(b.try_into().unwrap())
    }
    fn bits(self) -> u64 {
        self.to_bits() as u64
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn is_subnormal(self) -> bool {
        self.is_subnormal()
    }
    fn ord_key(self) -> i64 {
        let i = self.to_bits() as i32;
        if i < 0 {
            -((i & 0x7fff_ffff) as i64)
        } else {
            i as i64
        }
    }
    fn ulp(self) -> f64 {
        let a = self.abs();
        if !a.is_finite() {
            return f64::INFINITY;
        }
        let next = f32::from_bits(a.to_bits() + 1);
        (next as f64) - (a as f64)
    }
}

impl Elem for f64 {
    const BYTES: usize = 8;
    const DTYPE: &'static str = "f64";
    const HUGE: f64 = 1e200;
    const TINY: f64 = 1e-200;
    const FRAC_BITS: u32 = 52;
    const UNIT_ROUNDOFF: f64 = 1.1102230246251565e-16;
    fn from_le(b: &[u8]) -> Self {
        f64::from_le_bytes(b.try_into().unwrap())
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn is_subnormal(self) -> bool {
        self.is_subnormal()
    }
    fn ord_key(self) -> i64 {
        let i = self.to_bits() as i64;
        if i < 0 {
            -(i & 0x7fff_ffff_ffff_ffff)
        } else {
            i
        }
    }
    fn ulp(self) -> f64 {
        let a = self.abs();
        if !a.is_finite() {
            return f64::INFINITY;
        }
        f64::from_bits(a.to_bits() + 1) - a
    }
}

fn sign_mant<T: Elem>(r: u64) -> (f64, f64) {
    let sign = if (r >> 63) & 1 == 1 { -1.0 } else { 1.0 };
    let r2 = splitmix64(r ^ 0x5DEE_CE66D);
    let frac = (r2 >> (64 - T::FRAC_BITS)) as f64 / (2f64).powi(T::FRAC_BITS as i32);
    (sign, 1.0 + frac)
}

/// The gradient of element `i` at hash step `step` (see gen_fixtures.py).
pub fn grad<T: Elem>(seed: u64, step: u64, i: u64) -> T {
    let r = splitmix64(key(seed, step, i));
    let (sign, mant) = sign_mant::<T>(r);
    let c = r & 0xFF;
    let v = if c < 16 {
        0.0
    } else if c == 16 {
        sign * T::HUGE
    } else if c < 25 {
        sign * T::TINY
    } else {
        let e = ((r >> 45) & 15) as i32 - 8;
        sign * mant * (2f64).powi(e)
    };
    T::from_f64(v)
}

/// The initial parameter of element `i`.
pub fn param<T: Elem>(seed: u64, i: u64) -> T {
    let r = splitmix64(key(seed, 0, i));
    let (sign, mant) = sign_mant::<T>(r);
    let e = ((r >> 45) & 7) as i32 - 4;
    T::from_f64(sign * mant * (2f64).powi(e))
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// The fixture directory.
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

/// The learning rate of a case.
#[derive(Debug, Clone)]
pub enum Lr {
    Fixed(f64),
    Schedule(String),
}

/// One fixture file: the parsed header and the raw payload.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub file: String,
    pub header: BTreeMap<String, String>,
    pub name: String,
    pub group: String,
    pub dtype: String,
    pub sizes: Vec<usize>,
    pub steps: usize,
    pub lr: Lr,
    pub decay: f64,
    pub eps: f64,
    pub initial_scale: f64,
    pub eps_in_sqrt: bool,
    pub centered: bool,
    pub momentum: Option<f64>,
    pub nesterov: bool,
    pub bias_correction: bool,
    pub grad_seed: u64,
    pub param_seed: u64,
    pub grad_fixed: bool,
    /// (step, flat index, value)
    pub overrides: Vec<(usize, usize, f64)>,
    pub count0_schedule: i32,
    pub count0_bias: i32,
    pub init_state_stored: bool,
    pub per_step: Vec<String>,
    pub step_elems: Vec<usize>,
    pub final_arrays: Vec<String>,
    pub subnormal_refs: usize,
    pub payload: Vec<u8>,
}

fn parse_bool(s: &str) -> bool {
    match s {
        "true" => true,
        "false" => false,
        _ => panic!("bad bool {s:?}"),
    }
}

fn list(s: &str) -> Vec<String> {
    if s == "-" || s.is_empty() {
        vec![]
    } else {
        s.split(',').map(str::to_string).collect()
    }
}

impl Fixture {
    pub fn load(path: &Path) -> Fixture {
        let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let nl = raw.iter().position(|&b| b == b'\n').expect("header line");
        let line = std::str::from_utf8(&raw[..nl]).expect("ASCII header");
        let mut h = BTreeMap::new();
        for kv in line.split(' ') {
            let (k, v) = kv
                .split_once('=')
                .unwrap_or_else(|| panic!("bad field {kv:?}"));
            h.insert(k.to_string(), v.to_string());
        }
        let g = |k: &str| -> &str {
            h.get(k)
                .unwrap_or_else(|| panic!("{}: no {k}", path.display()))
        };
        let f = |k: &str| -> f64 {
            g(k).parse::<f64>()
                .unwrap_or_else(|_| panic!("bad float {k}"))
        };
        let sizes: Vec<usize> = g("sizes").split(',').map(|s| s.parse().unwrap()).collect();
        let lr = match (h.get("lr"), h.get("schedule")) {
            (Some(v), None) => Lr::Fixed(v.parse().unwrap()),
            (None, Some(s)) => Lr::Schedule(s.clone()),
            _ => panic!("exactly one of lr / schedule"),
        };
        let momentum = match g("momentum") {
            "none" => None,
            v => Some(v.parse().unwrap()),
        };
        let overrides = list(g("overrides"))
            .iter()
            .map(|o| {
                let (s, rest) = o.split_once('@').unwrap();
                let (i, v) = rest.split_once(':').unwrap();
                (
                    s.parse().unwrap(),
                    i.parse().unwrap(),
                    v.parse::<f64>().unwrap(),
                )
            })
            .collect();
        let offsets: Vec<usize> = std::iter::once(0)
            .chain(sizes.iter().scan(0, |a, &s| {
                *a += s;
                Some(*a)
            }))
            .collect();
        let total = *offsets.last().unwrap();
        let step_elems = match g("step_elems") {
            "all" => (0..total).collect(),
            "headtail16" => {
                let mut v = vec![];
                for (t, &n) in sizes.iter().enumerate() {
                    let o = offsets[t];
                    v.extend(o..o + n.min(16));
                    v.extend(o + n.saturating_sub(16).max(16)..o + n);
                }
                v
            }
            other => panic!("step_elems {other}"),
        };
        Fixture {
            file: path.file_name().unwrap().to_string_lossy().into_owned(),
            name: g("name").to_string(),
            group: g("group").to_string(),
            dtype: g("dtype").to_string(),
            steps: g("steps").parse().unwrap(),
            lr,
            decay: f("decay"),
            eps: f("eps"),
            initial_scale: f("initial_scale"),
            eps_in_sqrt: parse_bool(g("eps_in_sqrt")),
            centered: parse_bool(g("centered")),
            momentum,
            nesterov: parse_bool(g("nesterov")),
            bias_correction: parse_bool(g("bias_correction")),
            grad_seed: g("grad_seed").parse().unwrap(),
            param_seed: g("param_seed").parse().unwrap(),
            grad_fixed: match g("grad_steps") {
                "fixed" => true,
                "vary" => false,
                o => panic!("grad_steps {o}"),
            },
            overrides,
            count0_schedule: g("count0_schedule").parse().unwrap(),
            count0_bias: g("count0_bias").parse().unwrap(),
            init_state_stored: match g("init_state") {
                "stored" => true,
                "default" => false,
                o => panic!("init_state {o}"),
            },
            per_step: list(g("per_step")),
            step_elems,
            final_arrays: list(g("final")),
            subnormal_refs: g("subnormal_refs").parse().unwrap(),
            sizes,
            payload: raw[nl + 1..].to_vec(),
            header: h,
        }
    }

    pub fn total(&self) -> usize {
        self.sizes.iter().sum()
    }

    pub fn offsets(&self) -> Vec<usize> {
        let mut o = vec![0];
        for &s in &self.sizes {
            o.push(o.last().unwrap() + s);
        }
        o
    }

    /// The flat gradients of step `k`, overrides applied.
    pub fn grads<T: Elem>(&self, k: usize) -> Vec<T> {
        let hs = if self.grad_fixed { 0 } else { k as u64 };
        let mut g: Vec<T> = (0..self.total() as u64)
            .map(|i| grad::<T>(self.grad_seed, hs, i))
            .collect();
        for &(s, i, v) in &self.overrides {
            if s == k {
                g[i] = T::from_f64(v);
            }
        }
        g
    }

    /// The flat initial parameters.
    pub fn params<T: Elem>(&self) -> Vec<T> {
        (0..self.total() as u64)
            .map(|i| param::<T>(self.param_seed, i))
            .collect()
    }

    pub fn schedule(&self) -> Option<Schedule> {
        match &self.lr {
            Lr::Fixed(_) => None,
            Lr::Schedule(s) => Some(parse_schedule(s)),
        }
    }

    /// The decoded payload.
    pub fn data<T: Elem>(&self) -> Data<T> {
        assert_eq!(self.dtype, <T as Elem>::DTYPE, "{}", self.file);
        let mut pos = 0usize;
        let p = &self.payload;
        let mut take = |n: usize| -> Vec<T> {
            let v = (0..n)
                .map(|i| T::from_le(&p[pos + i * T::BYTES..pos + (i + 1) * T::BYTES]))
                .collect();
            pos += n * T::BYTES;
            v
        };
        let n = self.total();
        let mut init = BTreeMap::new();
        if self.init_state_stored {
            init.insert("nu".to_string(), take(n));
            if self.centered {
                init.insert("mu".to_string(), take(n));
            }
            if self.momentum.is_some() {
                init.insert("t".to_string(), take(n));
            }
        }
        let mut steps = Vec::with_capacity(self.steps);
        for _ in 0..self.steps {
            let lr = T::from_le(&p[pos..pos + T::BYTES]);
            pos += T::BYTES;
            let cs = i32::from_le_bytes(p[pos..pos + 4].try_into().unwrap());
            let cb = i32::from_le_bytes(p[pos + 4..pos + 8].try_into().unwrap());
            pos += 8;
            let mut arrays = BTreeMap::new();
            for a in &self.per_step {
                let m = self.step_elems.len();
                let v: Vec<T> = (0..m)
                    .map(|i| T::from_le(&p[pos + i * T::BYTES..pos + (i + 1) * T::BYTES]))
                    .collect();
                pos += m * T::BYTES;
                arrays.insert(a.clone(), v);
            }
            steps.push(StepRec {
                lr,
                count_schedule: cs,
                count_bias: cb,
                arrays,
            });
        }
        let mut fin = BTreeMap::new();
        for a in &self.final_arrays {
            let v: Vec<T> = (0..n)
                .map(|i| T::from_le(&p[pos + i * T::BYTES..pos + (i + 1) * T::BYTES]))
                .collect();
            pos += n * T::BYTES;
            fin.insert(a.clone(), v);
        }
        assert_eq!(pos, p.len(), "{}: payload length", self.file);
        Data { init, steps, fin }
    }
}

/// One step's record.
#[derive(Debug, Clone)]
pub struct StepRec<T> {
    pub lr: T,
    pub count_schedule: i32,
    pub count_bias: i32,
    /// `u`, `nu`, `mu`, `t` at `step_elems`.
    pub arrays: BTreeMap<String, Vec<T>>,
}

/// A decoded payload.
#[derive(Debug, Clone)]
pub struct Data<T> {
    pub init: BTreeMap<String, Vec<T>>,
    pub steps: Vec<StepRec<T>>,
    pub fin: BTreeMap<String, Vec<T>>,
}

/// Every fixture listed in MANIFEST (the test fails if a listed file is missing or an
/// unlisted `.bin` is present).
pub fn all_fixtures() -> Vec<Fixture> {
    let dir = fixture_dir();
    let manifest = std::fs::read_to_string(dir.join("MANIFEST")).expect("tests/fixtures/MANIFEST");
    let listed: Vec<String> = manifest
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect();
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".bin"))
        .collect();
    present.sort();
    assert_eq!(
        listed, present,
        "MANIFEST and tests/fixtures/*.bin disagree"
    );
    listed.iter().map(|n| Fixture::load(&dir.join(n))).collect()
}

// ---------------------------------------------------------------------------------------
// Schedule specs: a Python expression over optax's constructors (see gen_fixtures.py)
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Expr {
    Num(f64, bool), // value, was an integer literal
    Bool(bool),
    None,
    List(Vec<Expr>),
    Dict(Vec<(Expr, Expr)>),
    Call(String, Vec<Expr>),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> u8 {
        *self.s.get(self.i).unwrap_or(&0)
    }
    fn eat(&mut self, c: u8) {
        assert_eq!(
            self.peek() as char,
            c as char,
            "schedule spec at {}",
            self.i
        );
        self.i += 1;
    }
    fn ident(&mut self) -> String {
        let st = self.i;
        while self.peek().is_ascii_alphanumeric() || self.peek() == b'_' {
            self.i += 1;
        }
        String::from_utf8(self.s[st..self.i].to_vec()).unwrap()
    }
    fn seq(&mut self, close: u8) -> Vec<Expr> {
        let mut v = vec![];
        while self.peek() != close {
            v.push(self.expr());
            if self.peek() == b',' {
                self.i += 1;
            }
        }
        self.eat(close);
        v
    }
    fn expr(&mut self) -> Expr {
        match self.peek() {
            b'[' => {
                self.i += 1;
                Expr::List(self.seq(b']'))
            }
            b'{' => {
                self.i += 1;
                let mut v = vec![];
                while self.peek() != b'}' {
                    let k = self.expr();
                    self.eat(b':');
                    let val = self.expr();
                    v.push((k, val));
                    if self.peek() == b',' {
                        self.i += 1;
                    }
                }
                self.eat(b'}');
                Expr::Dict(v)
            }
            c if c.is_ascii_digit() || c == b'-' || c == b'.' => {
                let st = self.i;
                while matches!(self.peek(), b'0'..=b'9' | b'.' | b'e' | b'E' | b'-' | b'+') {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.s[st..self.i]).unwrap();
                let int = !t.contains(['.', 'e', 'E']);
                Expr::Num(t.parse().unwrap_or_else(|_| panic!("number {t:?}")), int)
            }
            _ => {
                let id = self.ident();
                match id.as_str() {
                    "True" => Expr::Bool(true),
                    "False" => Expr::Bool(false),
                    "None" => Expr::None,
                    _ => {
                        self.eat(b'(');
                        Expr::Call(id, self.seq(b')'))
                    }
                }
            }
        }
    }
}

fn num(e: &Expr) -> f64 {
    match e {
        Expr::Num(v, _) => *v,
        o => panic!("expected a number, got {o:?}"),
    }
}

fn int(e: &Expr) -> i64 {
    match e {
        Expr::Num(v, true) => *v as i64,
        o => panic!("expected an integer, got {o:?}"),
    }
}

fn boolean(e: &Expr) -> bool {
    match e {
        Expr::Bool(b) => *b,
        o => panic!("expected a bool, got {o:?}"),
    }
}

fn opt_num(e: &Expr) -> Option<f64> {
    match e {
        Expr::None => None,
        e => Some(num(e)),
    }
}

fn to_schedule(e: &Expr) -> Schedule {
    let Expr::Call(name, a) = e else {
        panic!("expected a schedule call, got {e:?}")
    };
    let n = a.len();
    let want = |k: usize| assert_eq!(n, k, "{name}: {n} arguments");
    match name.as_str() {
        "constant_schedule" => {
            want(1);
            Schedule::Constant { value: num(&a[0]) }
        }
        "linear_schedule" => {
            want(4);
            Schedule::Linear {
                init_value: num(&a[0]),
                end_value: num(&a[1]),
                transition_steps: int(&a[2]),
                transition_begin: int(&a[3]),
            }
        }
        "polynomial_schedule" => {
            want(5);
            Schedule::Polynomial {
                init_value: num(&a[0]),
                end_value: num(&a[1]),
                power: num(&a[2]),
                transition_steps: int(&a[3]),
                transition_begin: int(&a[4]),
            }
        }
        "exponential_decay" => {
            want(6);
            Schedule::ExponentialDecay {
                init_value: num(&a[0]),
                transition_steps: int(&a[1]),
                decay_rate: num(&a[2]),
                transition_begin: int(&a[3]),
                staircase: boolean(&a[4]),
                end_value: opt_num(&a[5]),
            }
        }
        "cosine_decay_schedule" => {
            want(4);
            Schedule::CosineDecay {
                init_value: num(&a[0]),
                decay_steps: int(&a[1]),
                alpha: num(&a[2]),
                exponent: num(&a[3]),
            }
        }
        "warmup_cosine_decay_schedule" => {
            want(6);
            Schedule::WarmupCosineDecay {
                init_value: num(&a[0]),
                peak_value: num(&a[1]),
                warmup_steps: int(&a[2]),
                decay_steps: int(&a[3]),
                end_value: num(&a[4]),
                exponent: num(&a[5]),
            }
        }
        "warmup_exponential_decay_schedule" => {
            want(8);
            Schedule::WarmupExponentialDecay {
                init_value: num(&a[0]),
                peak_value: num(&a[1]),
                warmup_steps: int(&a[2]),
                transition_steps: int(&a[3]),
                decay_rate: num(&a[4]),
                transition_begin: int(&a[5]),
                staircase: boolean(&a[6]),
                end_value: opt_num(&a[7]),
            }
        }
        "piecewise_constant_schedule" => {
            want(2);
            let Expr::Dict(d) = &a[1] else {
                panic!("piecewise: expected a dict")
            };
            let mut bs: Vec<(i64, f64)> = d.iter().map(|(k, v)| (int(k), num(v))).collect();
            bs.sort_by_key(|p| p.0); // optax iterates sorted(dict.items())
            Schedule::PiecewiseConstant {
                init_value: num(&a[0]),
                boundaries_and_scales: bs,
            }
        }
        "join_schedules" => {
            want(2);
            let (Expr::List(s), Expr::List(b)) = (&a[0], &a[1]) else {
                panic!("join: expected two lists")
            };
            Schedule::Join {
                schedules: s.iter().map(to_schedule).collect(),
                boundaries: b.iter().map(int).collect(),
            }
        }
        other => panic!("unknown schedule {other}"),
    }
}

/// Parse a schedule spec string into the library's [`Schedule`].
pub fn parse_schedule(spec: &str) -> Schedule {
    let mut p = Parser {
        s: spec.as_bytes(),
        i: 0,
    };
    let e = p.expr();
    assert_eq!(p.i, spec.len(), "trailing input in schedule spec {spec:?}");
    to_schedule(&e)
}

/// Whether evaluating the schedule involves a transcendental function (pow with a
/// non-integer exponent, exp/log, cos): XLA:CPU calls the C library for these, so a Rust
/// build on another libm may round them differently.
pub fn transcendental(s: &Schedule) -> bool {
    match s {
        Schedule::Constant { .. }
        | Schedule::Linear { .. }
        | Schedule::PiecewiseConstant { .. } => false,
        Schedule::Polynomial { power, .. } => power.fract() != 0.0,
        Schedule::ExponentialDecay { .. }
        | Schedule::CosineDecay { .. }
        | Schedule::WarmupCosineDecay { .. }
        | Schedule::WarmupExponentialDecay { .. } => true,
        Schedule::Join { schedules, .. } => schedules.iter().any(transcendental),
    }
}

// ---------------------------------------------------------------------------------------
// ulps
// ---------------------------------------------------------------------------------------

/// Distance in representable values; NaN equals NaN (any payload); NaN vs a number is
/// `u64::MAX`; +0 and -0 are 0 apart.
pub fn ulps<T: Elem>(a: T, b: T) -> u64 {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => 0,
        (false, false) => a.ord_key().abs_diff(b.ord_key()),
        _ => u64::MAX,
    }
}
