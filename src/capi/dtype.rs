//! Element types: the dtype an optimizer computes in, chosen at creation.

use super::boundary::CError;
pub(crate) use crate::element::Dtype;

/// Element type of an optimizer (an `int32_t` in the ABI).
pub type RmspropDtype = i32;
/// `float` buffers.
pub const RMSPROP_DTYPE_F32: RmspropDtype = 1;
/// `double` buffers.
pub const RMSPROP_DTYPE_F64: RmspropDtype = 2;

// The C values are the core's dtype tags (literals here, so that cbindgen can print them).
const _: () = assert!(
    RMSPROP_DTYPE_F32 == Dtype::F32 as RmspropDtype
        && RMSPROP_DTYPE_F64 == Dtype::F64 as RmspropDtype
);

/// Check a dtype argument against the core's dtype tags (`RMSPROP_DTYPE_F32`,
/// `RMSPROP_DTYPE_F64`), else `RMSPROP_ERR_BAD_ENUM`.
pub(crate) fn dtype_arg(d: RmspropDtype) -> Result<Dtype, CError> {
    Dtype::from_tag(d.into()).ok_or(CError::BadEnum {
        what: "dtype",
        value: d.into(),
    })
}
