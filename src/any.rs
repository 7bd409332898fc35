//! [`AnyOptimizer`]: an optimizer whose element type is chosen at run time (by the C API's
//! `dtype` argument, or by a checkpoint), and [`with_any!`](crate::with_any), which runs
//! the same code on whichever optimizer it holds, so that callers never match on the dtype
//! by hand.
//!
//! ```
//! use rmsprop::{AnyOptimizer, Config, Dtype, with_any};
//! let mut any = AnyOptimizer::new(Dtype::F64, Config::new(0.1), &[2, 1]).unwrap();
//! assert_eq!(any.dtype(), Dtype::F64);
//! let total = with_any!(&any, o => o.layout().total());
//! assert_eq!(total, 3);
//! let opt = any.get_mut::<f64>().unwrap();
//! let _ = opt.step(&mut [1.0; 3], &[0.5; 3]).unwrap();
//! assert!(any.get::<f32>().is_err());
//! ```

use crate::config::Config;
use crate::element::{Dtype, Real};
use crate::error::Result;
use crate::lowp::{Bf16, F16};
use crate::optimizer::Optimizer;

/// An optimizer of either dtype. Adding an element type adds a variant here, an
/// [`AnyElement`] impl and an arm in [`with_any!`](crate::with_any).
#[derive(Debug)]
pub enum AnyOptimizer {
    /// Computing in `f32`.
    F32(Optimizer<f32>),
    /// Computing in `f64`.
    F64(Optimizer<f64>),
    /// bfloat16 parameters and state, computed as XLA does ([`crate::lowp`]).
    Bf16(Optimizer<Bf16>),
    /// float16 parameters and state, computed as XLA does ([`crate::lowp`]).
    F16(Optimizer<F16>),
}

/// Run an expression on the optimizer inside an [`AnyOptimizer`] (or a reference to one),
/// whatever its dtype: `with_any!(any, o => o.layout().total())`. The expression is
/// compiled once per dtype, with `o` bound to that dtype's optimizer.
#[macro_export]
macro_rules! with_any {
    ($any:expr, $o:ident => $body:expr) => {
        match $any {
            $crate::AnyOptimizer::F32($o) => $body,
            $crate::AnyOptimizer::F64($o) => $body,
            $crate::AnyOptimizer::Bf16($o) => $body,
            $crate::AnyOptimizer::F16($o) => $body,
        }
    };
}

/// The optimizer holds another dtype than the one asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtypeMismatch {
    /// The optimizer's dtype.
    pub optimizer: Dtype,
    /// The dtype asked for.
    pub requested: Dtype,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for crate::lowp::Bf16 {}
    impl Sealed for crate::lowp::F16 {}
}

/// The element types an [`AnyOptimizer`] can hold (sealed): how to wrap and unwrap.
pub trait AnyElement: Real + sealed::Sealed {
    /// Wrap an optimizer.
    fn wrap(o: Optimizer<Self>) -> AnyOptimizer;
    /// The optimizer, if `any` holds this dtype.
    fn peek(any: &AnyOptimizer) -> Option<&Optimizer<Self>>;
    /// The optimizer, if `any` holds this dtype.
    fn peek_mut(any: &mut AnyOptimizer) -> Option<&mut Optimizer<Self>>;
}

macro_rules! any_element {
    ($t:ty, $v:ident) => {
        impl AnyElement for $t {
            fn wrap(o: Optimizer<Self>) -> AnyOptimizer {
                AnyOptimizer::$v(o)
            }
            fn peek(any: &AnyOptimizer) -> Option<&Optimizer<Self>> {
                match any {
                    AnyOptimizer::$v(o) => Some(o),
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
            fn peek_mut(any: &mut AnyOptimizer) -> Option<&mut Optimizer<Self>> {
                match any {
                    AnyOptimizer::$v(o) => Some(o),
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        }

        impl From<Optimizer<$t>> for AnyOptimizer {
            fn from(o: Optimizer<$t>) -> Self {
                AnyOptimizer::$v(o)
            }
        }
    };
}
any_element!(f32, F32);
any_element!(f64, F64);
any_element!(Bf16, Bf16);
any_element!(F16, F16);

impl AnyOptimizer {
    /// [`Optimizer::new`] in the given dtype.
    pub fn new(dtype: Dtype, config: Config, sizes: &[usize]) -> Result<Self> {
        Ok(match dtype {
            Dtype::F32 => AnyOptimizer::F32(Optimizer::new(config, sizes)?),
            Dtype::F64 => AnyOptimizer::F64(Optimizer::new(config, sizes)?),
            Dtype::Bf16 => AnyOptimizer::Bf16(Optimizer::new(config, sizes)?),
            Dtype::F16 => AnyOptimizer::F16(Optimizer::new(config, sizes)?),
        })
    }

    /// The dtype it computes in.
    pub fn dtype(&self) -> Dtype {
        fn of<T: Real>(_: &Optimizer<T>) -> Dtype {
            T::DTYPE
        }
        with_any!(self, o => of(o))
    }

    /// The optimizer as `Optimizer<T>`, or which dtype it really has.
    pub fn get<T: AnyElement>(&self) -> Result<&Optimizer<T>, DtypeMismatch> {
        let optimizer = self.dtype();
        T::peek(self).ok_or(DtypeMismatch {
            optimizer,
            requested: T::DTYPE,
        })
    }

    /// The optimizer as `Optimizer<T>`, or which dtype it really has.
    pub fn get_mut<T: AnyElement>(&mut self) -> Result<&mut Optimizer<T>, DtypeMismatch> {
        let optimizer = self.dtype();
        T::peek_mut(self).ok_or(DtypeMismatch {
            optimizer,
            requested: T::DTYPE,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_unwraps_each_dtype() {
        for d in Dtype::ALL {
            let mut a = AnyOptimizer::new(d, Config::new(0.01), &[4]).unwrap();
            assert_eq!(a.dtype(), d);
            assert_eq!(with_any!(&a, o => o.layout().total()), 4);
            assert_eq!(a.get::<f32>().is_ok(), d == Dtype::F32);
            assert_eq!(a.get_mut::<f64>().is_ok(), d == Dtype::F64);
            assert_eq!(a.get::<Bf16>().is_ok(), d == Dtype::Bf16);
            assert_eq!(a.get_mut::<F16>().is_ok(), d == Dtype::F16);
            let other = if d == Dtype::F32 {
                Dtype::F64
            } else {
                Dtype::F32
            };
            let e = match other {
                Dtype::F32 => a.get::<f32>().map(|_| ()).unwrap_err(),
                _ => a.get::<f64>().map(|_| ()).unwrap_err(),
            };
            assert_eq!(
                e,
                DtypeMismatch {
                    optimizer: d,
                    requested: other
                }
            );
        }
        let a: AnyOptimizer = Optimizer::<f64>::new(Config::new(0.1), &[]).unwrap().into();
        assert_eq!(a.dtype(), Dtype::F64);
        assert!(AnyOptimizer::new(Dtype::F32, Config::new(f64::NAN), &[1]).is_err());
    }
}
