//! A delta update done offline with strata-model's own Xet modules (src/sources/http/xet/
//! chunking.rs, reconstruction.rs, xorb.rs, compiled in as they are) on bench/xet's fixture: the
//! old version's chunk lengths found locally, the plan for the new version from the two
//! reconstructions, the planned xorb ranges read from the fixture's xorb files and decoded,
//! and the new file rebuilt from the old file's pieces and those chunks, byte for byte.
//! What the product's `update` should fetch, before any network is involved.
//!
//!   plan-check FIXTURE_DIR OLD_LABEL NEW_LABEL

#![allow(dead_code)]

#[path = "../../../../src/sources/http/xet/chunking.rs"]
mod chunking;
#[path = "../../../../src/sources/http/xet/reconstruction.rs"]
mod reconstruction;
#[path = "../../../../src/sources/http/xet/xorb.rs"]
mod xorb;

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use reconstruction::{Piece, Plan, Reconstruction};
use sha2::{Digest, Sha256};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(&args[1]);
    let tsv = fs::read_to_string(dir.join("fixture.tsv")).unwrap();
    let mut lines = tsv.lines();
    let head: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let rows: HashMap<String, HashMap<&str, String>> = lines
        .map(|l| {
            let r: HashMap<&str, String> =
                head.iter().copied().zip(l.split('\t').map(String::from)).collect();
            (r["label"].clone(), r)
        })
        .collect();
    let (old, new) = (&rows[&args[2]], &rows[&args[3]]);
    let rec = |r: &HashMap<&str, String>| {
        Reconstruction::parse(&fs::read(dir.join("cas/reconstructions").join(&r["file_id"])).unwrap())
            .expect("the crate's parser refuses the fixture's reconstruction")
    };
    let (old_rec, new_rec) = (rec(old), rec(new));
    let old_path = dir.join("files").join(&old["commit"]).join(&old["file"]);
    let old_bytes = fs::read(&old_path).unwrap();
    let t = std::time::Instant::now();
    let lengths = chunking::chunk_lengths(&mut &old_bytes[..]).unwrap();
    let chunk_secs = t.elapsed().as_secs_f64();
    let plan = Plan::new(&new_rec, &old_rec.terms, &lengths).expect("no plan");
    // The fetches, as client.rs makes them: every range of the URL at once.
    let mut chunks: HashMap<(String, u64), Vec<u8>> = HashMap::new();
    let mut fetched = 0u64;
    for (hash, i) in &plan.fetches {
        let f = &new_rec.fetches[hash][*i];
        let xorb_file = fs::read(dir.join("cas/xorbs").join(hash)).unwrap();
        for (c, b) in &f.ranges {
            let data = &xorb_file[b.start as usize..=b.end as usize];
            fetched += data.len() as u64;
            let decoded =
                xorb::decode_chunks(data, (c.end - c.start) as usize).expect("xorb.rs refuses the chunks");
            for (k, d) in decoded.into_iter().enumerate() {
                chunks.insert((hash.clone(), c.start + k as u64), d);
            }
        }
    }
    let mut sha = Sha256::new();
    let mut size = 0u64;
    for p in &plan.pieces {
        match p {
            Piece::Old { offset, len } => {
                sha.update(&old_bytes[*offset as usize..(*offset + *len) as usize]);
                size += len;
            }
            Piece::Fetch { hash, chunks: span } => {
                for c in span.start..span.end {
                    let d = &chunks[&(hash.clone(), c)];
                    sha.update(d);
                    size += d.len() as u64;
                }
            }
        }
    }
    let got: String = sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let ok = got == new["sha256"] && size.to_string() == new["size"];
    println!(
        "plan {}→{} with strata-model's modules: {} bytes reused from {}, {} fetch(es) of {} xorb bytes ({:.3} % of {}), \
         old file chunked in {:.2} s; rebuilt {} {}",
        args[2],
        args[3],
        plan.reused(),
        args[2],
        plan.fetches.len(),
        fetched,
        100.0 * fetched as f64 / size as f64,
        size,
        chunk_secs,
        args[3],
        if ok { "byte for byte" } else { "WRONG" }
    );
    if !ok {
        std::process::exit(1);
    }
}
