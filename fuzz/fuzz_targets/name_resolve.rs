//! Name resolution (`name`, `name:quant`, aliases, file names, any case) on any string: an
//! entry or an UnknownModel/UnknownQuant error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(name) = std::str::from_utf8(data) {
        let catalog = strata_model::Catalog::builtin();
        match catalog.resolve(name) {
            Ok(entry) => assert!(!entry.hf_filename.is_empty()),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
});
