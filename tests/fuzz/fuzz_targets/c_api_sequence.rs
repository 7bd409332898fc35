//! cargo-fuzz target: the input is a program of C API calls; see `common::c_api_sequence`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/mod.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::c_api_sequence(data));
