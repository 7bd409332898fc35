//! The library's version, to compare with the `RMSPROP_VERSION_*` macros of the header.

use std::ffi::c_char;

/// The loaded library's version as `MAJOR * 10000 + MINOR * 100 + PATCH`; compare with
/// `RMSPROP_VERSION_NUMBER` from the header you compiled against.
///
/// Threading: any thread. Never fails.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_version_number() -> u32 {
    let p = |s: &str| s.parse::<u32>().unwrap_or(0);
    p(env!("CARGO_PKG_VERSION_MAJOR")) * 10000
        + p(env!("CARGO_PKG_VERSION_MINOR")) * 100
        + p(env!("CARGO_PKG_VERSION_PATCH"))
}

/// The loaded library's version as a static NUL-terminated string ("0.1.0").
///
/// Ownership: static storage, never free it. Threading: any thread.
#[unsafe(no_mangle)]
pub extern "C" fn rmsprop_version_string() -> *const c_char {
    const V: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    V.as_ptr().cast()
}
