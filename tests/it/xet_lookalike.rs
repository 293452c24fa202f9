//! The Xet CAS look-alike itself (`support::xet`, through `Hub::enable_xet`), read over
//! HTTPS with plain requests as a Xet client makes them: its chunker is Xet's, its
//! reconstructions (v2 and v1) rebuild a file byte for byte from xorb ranges (every
//! compression scheme, multi-range answers), chunks are shared between versions of a file,
//! and each fault changes what is served.

use std::collections::HashMap;
use std::io::Read;

use serde_json::Value;

use crate::support::hub::{Hub, Scheme, XetFaults, XetOptions, XetTerm, REPO, REVISION};
use crate::support::{gguf_bytes, xet};

const NEW_COMMIT: &str = "fedcba9876543210fedcba9876543210fedcba98";

/// An answer: status, headers (lower-case names), body.
struct Got {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client trusting the test CA, following no redirect, reading error statuses as answers.
fn agent(hub: &Hub) -> ureq::Agent {
    let pem = std::fs::read(&hub.ca_file).unwrap();
    let cert = ureq::tls::Certificate::from_pem(&pem).unwrap();
    let tls =
        ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::new_with_certs(&[cert])).build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .build()
        .into()
}

fn call(agent: &ureq::Agent, method: &str, url: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = agent.run(req.body(()).unwrap()).unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let mut body = Vec::new();
    resp.into_body().into_reader().read_to_end(&mut body).unwrap();
    Got { status, headers, body }
}

fn get(agent: &ureq::Agent, url: &str, headers: &[(&str, &str)]) -> Got {
    call(agent, "GET", url, headers)
}

/// The resolve answer of `file` at `rev` (a `HEAD`, not followed).
fn resolve(hub: &Hub, agent: &ureq::Agent, rev: &str, file: &str) -> Got {
    let got = call(agent, "HEAD", &format!("{}/{REPO}/resolve/{rev}/{file}", hub.endpoint()), &[]);
    assert_eq!(got.status, 302);
    got
}

/// A read token, through the `rel="xet-auth"` link of a resolve answer.
fn token(agent: &ureq::Agent, resolved: &Got) -> String {
    let link = &resolved.headers["link"];
    let auth = link
        .split(", ")
        .find(|l| l.ends_with("rel=\"xet-auth\""))
        .and_then(|l| l.split(['<', '>']).nth(1))
        .unwrap_or_else(|| panic!("no xet-auth link in {link}"));
    let got = get(agent, auth, &[]);
    assert_eq!(got.status, 200, "{}", got.text());
    got.json()["accessToken"].as_str().unwrap().to_string()
}

fn reconstruction(hub: &Hub, agent: &ureq::Agent, token: &str, version: &str, id: &str) -> Got {
    let auth = format!("Bearer {token}");
    get(agent, &format!("{}/{version}/reconstructions/{id}", hub.cas_url()), &[("Authorization", &auth)])
}

/// The chunks in `data`, in order: (compression scheme, uncompressed bytes).
fn decode(mut data: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let h = data.get(..8).ok_or("a cut header")?;
        let u24 = |b: &[u8]| usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16;
        let (compressed, scheme, size) = (u24(&h[1..4]), h[4], u24(&h[5..8]));
        let body = data.get(8..8 + compressed).ok_or("a cut chunk")?;
        let lz4 = |b: &[u8]| {
            let mut v = Vec::new();
            lz4_flex::frame::FrameDecoder::new(b).read_to_end(&mut v).map(|_| v).map_err(|e| e.to_string())
        };
        let raw = match scheme {
            0 => body.to_vec(),
            1 => lz4(body)?,
            2 => {
                let g = lz4(body)?;
                let (q, r) = (g.len() / 4, g.len() % 4);
                let starts: Vec<usize> = (0..4).map(|i| i * q + i.min(r)).collect();
                (0..g.len()).map(|i| g[starts[i % 4] + i / 4]).collect()
            }
            s => return Err(format!("scheme {s}")),
        };
        if raw.len() != size {
            return Err(format!("{} bytes where the header says {size}", raw.len()));
        }
        out.push((scheme, raw));
        data = &data[8 + compressed..];
    }
    Ok(out)
}

/// The parts of a 206: `(first byte, bytes)` each, from `multipart/byteranges` or one range.
fn parts(got: &Got) -> Vec<(u64, Vec<u8>)> {
    assert_eq!(got.status, 206, "{}", got.text());
    let content_type = &got.headers["content-type"];
    let range_start =
        |v: &str| v.trim().strip_prefix("bytes ").unwrap().split('-').next().unwrap().parse().unwrap();
    let Some(boundary) = content_type.strip_prefix("multipart/byteranges; boundary=") else {
        return vec![(range_start(&got.headers["content-range"]), got.body.clone())];
    };
    let delimiter = format!("--{boundary}");
    let mut out = Vec::new();
    let mut rest = &got.body[..];
    loop {
        assert!(rest.starts_with(delimiter.as_bytes()), "a part without its delimiter");
        rest = &rest[delimiter.len()..];
        if rest.starts_with(b"--") {
            return out;
        }
        let end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = std::str::from_utf8(&rest[2..end]).unwrap();
        let range = head.lines().find_map(|l| l.strip_prefix("Content-Range:")).expect("Content-Range");
        let (a, b) =
            range.trim().strip_prefix("bytes ").unwrap().split('/').next().unwrap().split_once('-').unwrap();
        let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
        assert!(head.contains("Content-Type: application/octet-stream"));
        let body = &rest[end + 4..end + 4 + (b - a + 1) as usize];
        out.push((a, body.to_vec()));
        rest = &rest[end + 4 + body.len()..];
        rest = rest.strip_prefix(b"\r\n").expect("CRLF after a part");
    }
}

/// Rebuilds a file from a reconstruction answer (v2 or v1), fetching every xorb range (v2: one
/// request per URL, all its ranges at once); also the schemes met and the requests made.
fn rebuild(agent: &ureq::Agent, r: &Value) -> (Vec<u8>, Vec<u8>, usize) {
    let mut chunks: HashMap<(String, u64), Vec<u8>> = HashMap::new();
    let mut schemes = Vec::new();
    let mut requests = 0;
    let mut put = |hash: &str, first_chunk: u64, data: &[u8]| {
        let decoded = decode(data).unwrap_or_else(|e| panic!("xorb {hash}: {e}"));
        for (i, (scheme, raw)) in decoded.into_iter().enumerate() {
            schemes.push(scheme);
            chunks.insert((hash.to_string(), first_chunk + i as u64), raw);
        }
    };
    if let Some(xorbs) = r.get("xorbs") {
        for (hash, fetches) in xorbs.as_object().unwrap() {
            for f in fetches.as_array().unwrap() {
                let ranges = f["ranges"].as_array().unwrap();
                let spec: Vec<String> =
                    ranges.iter().map(|x| format!("{}-{}", x["bytes"]["start"], x["bytes"]["end"])).collect();
                let got = get(
                    agent,
                    f["url"].as_str().unwrap(),
                    &[("Range", &format!("bytes={}", spec.join(",")))],
                );
                requests += 1;
                let parts = parts(&got);
                assert_eq!(parts.len(), ranges.len());
                for (x, (start, bytes)) in ranges.iter().zip(parts) {
                    assert_eq!(start, x["bytes"]["start"].as_u64().unwrap());
                    put(hash, x["chunks"]["start"].as_u64().unwrap(), &bytes);
                }
            }
        }
    } else {
        for (hash, fetches) in r["fetch_info"].as_object().unwrap() {
            for f in fetches.as_array().unwrap() {
                let spec = format!("bytes={}-{}", f["url_range"]["start"], f["url_range"]["end"]);
                let got = get(agent, f["url"].as_str().unwrap(), &[("Range", &spec)]);
                requests += 1;
                let parts = parts(&got);
                assert_eq!(parts.len(), 1);
                put(hash, f["range"]["start"].as_u64().unwrap(), &parts[0].1);
            }
        }
    }
    let mut file = Vec::new();
    for t in r["terms"].as_array().unwrap() {
        let hash = t["hash"].as_str().unwrap();
        let at = file.len();
        for c in t["range"]["start"].as_u64().unwrap()..t["range"]["end"].as_u64().unwrap() {
            file.extend_from_slice(&chunks[&(hash.to_string(), c)]);
        }
        assert_eq!((file.len() - at) as u64, t["unpacked_length"].as_u64().unwrap());
    }
    (file, schemes, requests)
}

/// xet-core's test data: SplitMix64 from `seed`, little-endian words, cut to `n` bytes.
fn splitmix(n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(n);
    out
}

fn boundaries(lengths: &[usize]) -> Vec<usize> {
    lengths.iter().scan(0, |at, n| Some(*at + n).inspect(|v| *at = *v)).collect()
}

/// The look-alike cuts where xet-core does (the vectors the crate's chunker is tested with).
#[test]
fn the_chunker_is_xet_cores() {
    let want = [
        84493, 134421, 144853, 243318, 271793, 336457, 467529, 494581, 582000, 596735, 616815, 653164,
        678202, 724510, 815591, 827760, 958832, 991092, 1000000,
    ];
    assert_eq!(boundaries(&xet::chunk_lengths(&splitmix(1_000_000, 0))), want);
    let constant = boundaries(&xet::chunk_lengths(&[59u8; 1_000_000]));
    assert_eq!(constant, [131072, 262144, 393216, 524288, 655360, 786432, 917504, 1000000]);
    assert_eq!(xet::chunk_lengths(&[1u8; 100]), [100]);
}

/// A file's v2 and v1 reconstructions name the same terms and both rebuild it byte for byte
/// from its xorbs (raw, LZ4 and byte-grouped chunks); a new version that shares all but one
/// middle chunk with the old is served from the old xorb in one multi-range request; tokens,
/// signatures and ids are checked.
#[test]
fn reconstructions_v2_and_v1_rebuild_the_file() {
    let hub = Hub::start();
    let old = gguf_bytes("bert", 384, 900_000, 3);
    hub.add_file("model.gguf", old.clone());
    hub.enable_xet(XetOptions { chunks_per_xorb: 16, ..XetOptions::default() });
    let agent = agent(&hub);
    let got = resolve(&hub, &agent, REVISION, "model.gguf");
    let id = Hub::xet_file_id(&old);
    assert_eq!(got.headers["x-xet-hash"], id);
    let link = &got.headers["link"];
    let v1_link = format!("<{}/v1/reconstructions/{id}>; rel=\"xet-reconstruction-info\"", hub.cas_url());
    let auth_link =
        format!("<{}/api/models/{REPO}/xet-read-token/{REVISION}>; rel=\"xet-auth\"", hub.endpoint());
    assert_eq!(*link, format!("{v1_link}, {auth_link}"));
    let token = token(&agent, &got);
    let t =
        get(&agent, &format!("{}/api/models/{REPO}/xet-read-token/{REVISION}", hub.endpoint()), &[]).json();
    assert_ne!(t["accessToken"].as_str(), Some(token.as_str()), "each token is new");
    assert_eq!(t["casUrl"], hub.cas_url());
    assert_eq!(hub.xet_token_requests(), 2);

    let v2 = reconstruction(&hub, &agent, &token, "v2", &id);
    let v1 = reconstruction(&hub, &agent, &token, "v1", &id);
    assert_eq!((v2.status, v1.status), (200, 200), "{} {}", v2.text(), v1.text());
    let (v2, v1) = (v2.json(), v1.json());
    assert_eq!(v2["terms"], v1["terms"]);
    assert_eq!(v2["offset_into_first_range"], 0);
    let terms = hub.xet_terms(&old).unwrap();
    assert_eq!(terms.len(), v2["terms"].as_array().unwrap().len());
    assert_eq!(terms.iter().map(|t| t.unpacked_length).sum::<u64>(), old.len() as u64);
    let chunks = xet::chunk_lengths(&old).len();
    assert!(chunks >= 6 && hub.xet_xorb_count() >= 1, "{chunks} chunks");

    hub.clear_seen();
    let (file, schemes, requests) = rebuild(&agent, &v2);
    assert!(file == old, "v2 rebuilds the file");
    for s in 0..3 {
        assert!(schemes.contains(&s), "scheme {s} served: {schemes:?}");
    }
    assert_eq!(requests, v2["xorbs"].as_object().unwrap().len(), "one request per xorb");
    assert_eq!(hub.xorb_gets().len(), requests);
    let sent = hub.xet_bytes_sent();
    assert!(sent > old.len() as u64 / 2, "{sent} bytes counted");
    let (file, _, _) = rebuild(&agent, &v1);
    assert!(file == old, "v1 rebuilds the file");

    // A new version whose one middle chunk changed: the old xorb serves the chunks around it,
    // two ranges in one multipart answer.
    let lengths = xet::chunk_lengths(&old);
    let at: usize = lengths[..3].iter().sum::<usize>() + lengths[3] / 2;
    let mut new = old.clone();
    for b in &mut new[at..at + 50] {
        *b = !*b;
    }
    hub.move_main(NEW_COMMIT, &[("model.gguf", new.clone())]);
    let got = resolve(&hub, &agent, NEW_COMMIT, "model.gguf");
    let new_id = Hub::xet_file_id(&new);
    assert_eq!(got.headers["x-xet-hash"], new_id);
    assert!(got.headers["link"].contains(&format!("/xet-read-token/{NEW_COMMIT}>")));
    let r = reconstruction(&hub, &agent, &token, "v2", &new_id).json();
    let old_xorb = &terms[0].hash;
    let ranges = r["xorbs"][old_xorb][0]["ranges"].as_array().unwrap();
    assert_eq!(ranges.len(), 2, "{r}");
    hub.clear_seen();
    let (file, _, _) = rebuild(&agent, &r);
    assert!(file == new, "v2 rebuilds the new file");
    let multi = hub.xorb_gets().into_iter().filter(|s| s.headers["range"].contains(',')).count();
    assert_eq!(multi, 1);
    let (file, _, _) = rebuild(&agent, &reconstruction(&hub, &agent, &token, "v1", &new_id).json());
    assert!(file == new, "v1 rebuilds the new file");

    // No token, an unknown token, an unknown file, a URL for another xorb: refused.
    let url = format!("{}/v2/reconstructions/{id}", hub.cas_url());
    assert_eq!(get(&agent, &url, &[]).status, 401);
    assert_eq!(get(&agent, &url, &[("Authorization", "Bearer nope")]).status, 401);
    assert_eq!(reconstruction(&hub, &agent, &token, "v2", &"0".repeat(64)).status, 404);
    let signed = r["xorbs"][old_xorb][0]["url"].as_str().unwrap();
    let other = r["xorbs"].as_object().unwrap().keys().find(|k| *k != old_xorb).unwrap();
    assert_eq!(get(&agent, &signed.replace(old_xorb.as_str(), other), &[("Range", "bytes=0-9")]).status, 403);
    let unsigned = signed.split_once("sig=").unwrap().0.to_string() + "sig=999999";
    assert_eq!(get(&agent, &unsigned, &[("Range", "bytes=0-9")]).status, 403);
    assert_eq!(get(&agent, signed, &[("Range", "bytes=0-9")]).status, 206);
    assert!(!hub.cas_requests().is_empty() && hub.cas_requests().iter().all(|s| s.conn >= 1));
}

/// After `main` moves to a version whose first 100 bytes changed, the new file's terms point
/// at the old file's xorbs but for its first chunk: one new chunk, one new xorb. (Every
/// chunk byte-grouped here: a forced scheme.)
#[test]
fn a_changed_header_reuses_the_old_xorbs() {
    let hub = Hub::start();
    hub.enable_xet(XetOptions { scheme: Some(Scheme::ByteGrouping4Lz4), ..XetOptions::default() });
    let old = gguf_bytes("bert", 384, 700_000, 9);
    hub.add_file("model.gguf", old.clone());
    let (chunks, xorbs) = (hub.xet_chunk_count(), hub.xet_xorb_count());
    assert!(xorbs >= 2, "{xorbs} xorbs for {chunks} chunks");
    let mut new = old.clone();
    for b in &mut new[..100] {
        *b = b.wrapping_add(1);
    }
    hub.move_main(NEW_COMMIT, &[("model.gguf", new.clone())]);
    assert_eq!(hub.xet_chunk_count(), chunks + 1, "one new chunk");
    assert_eq!(hub.xet_xorb_count(), xorbs + 1, "one new xorb");
    let old_xorbs: Vec<String> = hub.xet_terms(&old).unwrap().into_iter().map(|t| t.hash).collect();
    let terms: Vec<XetTerm> = hub.xet_terms(&new).unwrap();
    let new_chunks: u64 =
        terms.iter().filter(|t| !old_xorbs.contains(&t.hash)).map(|t| t.end - t.start).sum();
    assert_eq!(new_chunks, 1, "{terms:?}");
    assert!(!old_xorbs.contains(&terms[0].hash));
    assert!(terms[1..].iter().all(|t| old_xorbs.contains(&t.hash)));

    // Served as stored, and rebuilt.
    let agent = agent(&hub);
    let got = resolve(&hub, &agent, NEW_COMMIT, "model.gguf");
    let token = token(&agent, &got);
    let r = reconstruction(&hub, &agent, &token, "v2", &got.headers["x-xet-hash"]).json();
    let served: Vec<&str> =
        r["terms"].as_array().unwrap().iter().map(|t| t["hash"].as_str().unwrap()).collect();
    assert_eq!(served, terms.iter().map(|t| t.hash.as_str()).collect::<Vec<_>>());
    let (file, schemes, _) = rebuild(&agent, &r);
    assert!(file == new);
    assert!(schemes.iter().all(|&s| s == Scheme::ByteGrouping4Lz4 as u8), "{schemes:?}");
}

/// Each fault changes what is served, and setting the faults back restores it.
#[test]
fn xet_faults_change_what_is_served() {
    let hub = Hub::start();
    let old = gguf_bytes("bert", 384, 600_000, 5);
    hub.add_file("model.gguf", old.clone());
    hub.enable_xet(XetOptions::default());
    let agent = agent(&hub);
    let id = Hub::xet_file_id(&old);
    let got = resolve(&hub, &agent, REVISION, "model.gguf");
    let token_url = format!("{}/api/models/{REPO}/xet-read-token/{REVISION}", hub.endpoint());
    let token = token(&agent, &got);
    let faults = |f: XetFaults| hub.set_xet_faults(f);

    faults(XetFaults { no_xet_hash: true, ..XetFaults::default() });
    let got = resolve(&hub, &agent, REVISION, "model.gguf");
    assert!(!got.headers.contains_key("x-xet-hash") && !got.headers.contains_key("link"));

    faults(XetFaults { token_status: Some(503), ..XetFaults::default() });
    assert_eq!(get(&agent, &token_url, &[]).status, 503);

    faults(XetFaults { token_ttl: 0, ..XetFaults::default() });
    let expired = get(&agent, &token_url, &[]).json();
    assert!(expired["exp"].as_u64().unwrap() <= std::time::UNIX_EPOCH.elapsed().unwrap().as_secs());
    let expired = expired["accessToken"].as_str().unwrap().to_string();
    assert_eq!(reconstruction(&hub, &agent, &expired, "v2", &id).status, 401);
    assert_eq!(reconstruction(&hub, &agent, &token, "v2", &id).status, 200, "earlier tokens live on");

    faults(XetFaults { v1_only: true, ..XetFaults::default() });
    assert_eq!(reconstruction(&hub, &agent, &token, "v2", &id).status, 404);
    assert_eq!(reconstruction(&hub, &agent, &token, "v1", &id).status, 200);

    faults(XetFaults { reconstruction_status: Some(503), ..XetFaults::default() });
    assert_eq!(reconstruction(&hub, &agent, &token, "v2", &id).status, 503);
    assert_eq!(reconstruction(&hub, &agent, &token, "v1", &id).status, 503);

    faults(XetFaults { bad_term_sizes: true, ..XetFaults::default() });
    let r = reconstruction(&hub, &agent, &token, "v2", &id).json();
    let sum: u64 =
        r["terms"].as_array().unwrap().iter().map(|t| t["unpacked_length"].as_u64().unwrap()).sum();
    assert_eq!(sum, old.len() as u64 + 1);

    faults(XetFaults { xorb_status: Some(500), ..XetFaults::default() });
    let r = reconstruction(&hub, &agent, &token, "v2", &id).json();
    let (hash, fetches) = r["xorbs"].as_object().unwrap().iter().next().unwrap();
    let url = fetches[0]["url"].as_str().unwrap().to_string();
    let range = format!("bytes=0-{}", fetches[0]["ranges"][0]["bytes"]["end"]);
    assert_eq!(get(&agent, &url, &[("Range", &range)]).status, 500);

    faults(XetFaults { expire_urls_after: Some(2), ..XetFaults::default() });
    assert_eq!(get(&agent, &url, &[("Range", &range)]).status, 206);
    assert_eq!(get(&agent, &url, &[("Range", &range)]).status, 206);
    assert_eq!(get(&agent, &url, &[("Range", &range)]).status, 403, "used up");
    let r = reconstruction(&hub, &agent, &token, "v2", &id).json();
    let fresh = r["xorbs"][hash][0]["url"].as_str().unwrap().to_string();
    assert_ne!(fresh, url);
    assert_eq!(get(&agent, &fresh, &[("Range", &range)]).status, 206, "a new reconstruction, new URLs");
    faults(XetFaults::default());
    assert_eq!(get(&agent, &url, &[("Range", &range)]).status, 206, "no limit any more");

    // The chunk faults break the newest file's first new xorb, not the old file's.
    let mut new = old.clone();
    new[..100].fill(b'!');
    hub.move_main(NEW_COMMIT, &[("model.gguf", new.clone())]);
    let new_id = Hub::xet_file_id(&new);
    let (target, chunk) = hub.xet_fault_target().unwrap();
    let whole = |hub: &Hub, file: &str| {
        let r = reconstruction(hub, &agent, &token, "v2", file).json();
        let f = r["xorbs"][&target].clone();
        let url = f[0]["url"].as_str().unwrap().to_string();
        get(&agent, &url, &[]).body
    };
    let clean = whole(&hub, &new_id);
    let clean_chunks = decode(&clean).unwrap();
    assert_ne!(clean_chunks[chunk].0, 0, "the corrupted chunk is an LZ4 one");
    faults(XetFaults { corrupt_chunk: true, ..XetFaults::default() });
    let broken = whole(&hub, &new_id);
    assert_eq!(broken.len(), clean.len());
    assert!(decode(&broken).is_err());
    assert!(rebuild(&agent, &reconstruction(&hub, &agent, &token, "v2", &id).json()).0 == old);
    faults(XetFaults { wrong_chunk_length: true, ..XetFaults::default() });
    let lying = whole(&hub, &new_id);
    assert_eq!(lying.len(), clean.len());
    assert!(decode(&lying).unwrap_err().contains("where the header says"));
    faults(XetFaults::default());
    assert!(rebuild(&agent, &reconstruction(&hub, &agent, &token, "v1", &new_id).json()).0 == new);
}

/// The crate's own Xet client (`HttpSource::xet_*`) reads the look-alike: the resolve's
/// `X-Xet-Hash`, a read token, reconstructions v2 and (on 404) v1, xorb fetches of every
/// range of a signed URL at once (its `multipart/byteranges` parser on the look-alike's
/// answers), which rebuild both versions of a file.
#[test]
fn the_crates_xet_client_reads_the_lookalike() {
    use std::borrow::Cow;
    use strata_model::sources::HttpSource;

    let hub = Hub::start();
    let old = gguf_bytes("bert", 384, 900_000, 3);
    hub.add_file("model.gguf", old.clone());
    hub.enable_xet(XetOptions { chunks_per_xorb: 16, ..XetOptions::default() });
    let lengths = xet::chunk_lengths(&old);
    let at: usize = lengths[..3].iter().sum::<usize>() + lengths[3] / 2;
    let mut new = old.clone();
    for b in &mut new[at..at + 50] {
        *b = !*b;
    }
    hub.move_main(NEW_COMMIT, &[("model.gguf", new.clone())]);
    let config = strata_model::Config::new("/unused")
        .with_hf_endpoint(hub.endpoint_url())
        .with_ca_file(Some(hub.ca_file.clone()));
    let source = HttpSource::hugging_face(&config).unwrap();
    let token = source.xet_read_token(REPO, REVISION).unwrap();
    assert!(token.is_fresh());
    assert_eq!(token.cas.as_str().trim_end_matches('/'), hub.cas_url());
    let mut multi_range = 0;
    for (revision, bytes) in [(REVISION, &old), (NEW_COMMIT, &new)] {
        let mut e = strata_model::catalog::BUILTIN[0].clone();
        e.hf_repo = Cow::Borrowed(REPO);
        e.revision = Cow::Borrowed(revision);
        e.hf_filename = Cow::Borrowed("model.gguf");
        e.size_bytes = bytes.len() as u64;
        e.sha256 = Cow::Owned(crate::support::sha256_hex(bytes));
        let id = source.inspect(&e).unwrap().xet_hash.expect("X-Xet-Hash");
        assert_eq!(id, Hub::xet_file_id(bytes));
        for v1_only in [false, true] {
            hub.set_xet_faults(XetFaults { v1_only, ..XetFaults::default() });
            hub.clear_seen();
            let r = source.xet_reconstruction(&token, &id).unwrap();
            let asked: Vec<String> = hub.cas_requests().iter().map(|s| s.path[..4].to_string()).collect();
            assert_eq!(asked, if v1_only { vec!["/v2/", "/v1/"] } else { vec!["/v2/"] });
            assert_eq!(r.size(), bytes.len() as u64);
            let mut chunks: HashMap<(String, u64), Vec<u8>> = HashMap::new();
            for (hash, fetches) in &r.fetches {
                for f in fetches {
                    multi_range += usize::from(f.ranges.len() > 1);
                    let parts = source.xet_fetch(f, &|_| true).unwrap();
                    for ((span, _), part) in f.ranges.iter().zip(parts) {
                        for (i, (_, raw)) in decode(&part).unwrap().into_iter().enumerate() {
                            chunks.insert((hash.clone(), span.start + i as u64), raw);
                        }
                    }
                }
            }
            let file: Vec<u8> = r
                .terms
                .iter()
                .flat_map(|t| (t.range.start..t.range.end).flat_map(|c| chunks[&(t.hash.clone(), c)].clone()))
                .collect();
            assert!(file == *bytes, "{revision}, v1 only: {v1_only}");
        }
    }
    assert_eq!(multi_range, 1, "the new file's v2 answer: two ranges of the old xorb");
    // A token born expired: the client sees it, and the CAS refuses it.
    hub.set_xet_faults(XetFaults { token_ttl: 0, ..XetFaults::default() });
    let expired = source.xet_read_token(REPO, REVISION).unwrap();
    assert!(!expired.is_fresh());
    let err = source.xet_reconstruction(&expired, &Hub::xet_file_id(&old)).unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
}
