//! Element types: the dtype an optimizer computes in, chosen at creation.

use super::boundary::CError;
pub(crate) use crate::element::Dtype;

/// Element type of an optimizer (an `int32_t` in the ABI).
pub type RmspropDtype = i32;
/// `float` buffers.
pub const RMSPROP_DTYPE_F32: RmspropDtype = 1;
/// `double` buffers.
pub const RMSPROP_DTYPE_F64: RmspropDtype = 2;
/// bfloat16 buffers, each element a `uint16_t` holding the bits (sign, 8 exponent bits, 7
/// fraction bits). The state is bfloat16 too and every operation rounds to bfloat16, as
/// jitted optax on XLA:CPU computes (see docs/element-types.md).
pub const RMSPROP_DTYPE_BF16: RmspropDtype = 3;
/// IEEE binary16 (`_Float16`) buffers, each element a `uint16_t` holding the bits. The
/// state is float16 too and every operation rounds to float16, as jitted optax on XLA:CPU.
/// Mind `eps`: optax's default 1e-8 rounds to 0 in float16 (docs/element-types.md).
pub const RMSPROP_DTYPE_F16: RmspropDtype = 4;

// The C values are the core's dtype tags (literals here, so that cbindgen can print them).
const _: () = assert!(
    RMSPROP_DTYPE_F32 == Dtype::F32 as RmspropDtype
        && RMSPROP_DTYPE_F64 == Dtype::F64 as RmspropDtype
        && RMSPROP_DTYPE_BF16 == Dtype::Bf16 as RmspropDtype
        && RMSPROP_DTYPE_F16 == Dtype::F16 as RmspropDtype
);

/// Check a dtype argument against the core's dtype tags (`RMSPROP_DTYPE_F32`,
/// `RMSPROP_DTYPE_F64`, `RMSPROP_DTYPE_BF16`, `RMSPROP_DTYPE_F16`), else `RMSPROP_ERR_BAD_ENUM`.
pub(crate) fn dtype_arg(d: RmspropDtype) -> Result<Dtype, CError> {
    Dtype::from_tag(d.into()).ok_or(CError::BadEnum {
        what: "dtype",
        value: d.into(),
    })
}
