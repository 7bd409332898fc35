//! Element types: the dtype an optimizer computes in, chosen at creation.

use super::boundary::CError;

/// Element type of an optimizer (an `int32_t` in the ABI).
pub type RmspropDtype = i32;
/// `float` buffers.
pub const RMSPROP_DTYPE_F32: RmspropDtype = 1;
/// `double` buffers.
pub const RMSPROP_DTYPE_F64: RmspropDtype = 2;

/// A checked [`RmspropDtype`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dtype {
    F32,
    F64,
}

/// Check a dtype argument: `RMSPROP_DTYPE_F32` or `RMSPROP_DTYPE_F64`, else `RMSPROP_ERR_BAD_ENUM`.
pub(crate) fn dtype_arg(d: RmspropDtype) -> Result<Dtype, CError> {
    match d {
        RMSPROP_DTYPE_F32 => Ok(Dtype::F32),
        RMSPROP_DTYPE_F64 => Ok(Dtype::F64),
        other => Err(CError::BadEnum {
            what: "dtype",
            value: other as i64,
        }),
    }
}
