//! The GGUF header readers (the whole key-value section, and a prefix) on any bytes: an error
//! or a header, never a panic, a hang or an unbounded allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = strata_model::gguf::read_header(data);
    let _ = strata_model::gguf::read_header_prefix(data);
});
