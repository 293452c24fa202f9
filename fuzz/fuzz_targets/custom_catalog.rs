//! The custom catalog parser on any bytes: entries or an error naming the problem, never a
//! panic; every accepted entry holds the catalog's invariants.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = strata_model::catalog::custom::parse(std::path::Path::new("fuzz.json"), data) {
        for e in entries {
            assert!(e.hf_filename.to_ascii_lowercase().ends_with(".gguf"));
            assert!(!e.hf_filename.contains(['/', '\\']) && !e.hf_filename.starts_with('.'));
            assert!(!e.hf_filename.contains(".."));
            assert_eq!(e.sha256.len(), 64);
            assert_eq!(e.revision.len(), 40);
            assert!(e.size_bytes > 0);
        }
    }
});
