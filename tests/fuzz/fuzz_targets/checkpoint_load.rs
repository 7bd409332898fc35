//! cargo-fuzz target: the input is a mode byte and a checkpoint; see `common::checkpoint_load`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/mod.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::checkpoint_load(data));
