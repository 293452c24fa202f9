//! Xet, the Hub's storage, read as a client of its CAS (hub-docs `docs/xet/`; xet-core; the
//! reader of huggingface.js `XetBlob.ts`): the pieces an update needs to rebuild a new
//! version of a file from a verified older one plus only the chunks that changed.
//!
//! - [`chunking`]: a file's content-defined chunk boundaries, found locally;
//! - [`xorb`]: chunks as a xorb stores them (raw, LZ4 frames, byte-grouped LZ4);
//! - [`reconstruction`]: the CAS's reconstruction answer (v2 and v1) and the `Plan` that
//!   says which of a new file's chunks the old file already holds;
//! - [`client`]: the requests — a read token, a reconstruction, a xorb's ranges — on the Hub
//!   source's HTTPS client;
//! - [`multipart`]: the parts of a `multipart/byteranges` answer.
//!
//! `download/delta.rs` uses them to rebuild a file (`update`).

pub mod chunking;
pub mod client;
pub mod multipart;
pub mod reconstruction;
pub mod xorb;
