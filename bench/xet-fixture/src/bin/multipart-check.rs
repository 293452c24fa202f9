//! Reads a `multipart/byteranges` answer (as nginx wrote it) with strata-model's own parser
//! (src/sources/http/xet/multipart.rs, compiled in as is) and prints each part's offset,
//! length and SHA-256: bench/xet checks them against single-range answers.
//!
//!   multipart-check CONTENT_TYPE BODY_FILE

#[allow(dead_code)]
#[path = "../../../../src/sources/http/xet/multipart.rs"]
mod multipart;

use sha2::{Digest, Sha256};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let boundary = multipart::boundary(&args[1]).expect("not a multipart/byteranges content type");
    let body = std::fs::read(&args[2]).expect("body");
    let parts = multipart::parts(&body, &boundary).unwrap_or_else(|e| {
        eprintln!("multipart.rs refuses the answer: {e}");
        std::process::exit(1)
    });
    for p in parts {
        let h: String = Sha256::digest(&p.bytes).iter().map(|b| format!("{b:02x}")).collect();
        println!("{} {} {h}", p.start, p.bytes.len());
    }
}
