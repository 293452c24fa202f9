//! Xet, the Hub's storage, read as a client of its CAS (hub-docs `docs/xet/`; xet-core; the
//! reader of huggingface.js `XetBlob.ts`): the pieces an update needs to rebuild a new
//! version of a file from a verified older one plus only the chunks that changed.
//!
//! - [`chunking`]: a file's content-defined chunk boundaries, found locally;
//! - [`xorb`]: chunks as a xorb stores them (raw, LZ4 frames, byte-grouped LZ4);
//! - [`reconstruction`]: the CAS's reconstruction answer (v2 and v1) and the `Plan` that
//!   says which of a new file's chunks the old file already holds.
//!
//! Groundwork for issue 23 (delta updates): the requests (token, reconstruction, xorb ranges)
//! and the transfer strategy that uses these come next; nothing here is on a download's path
//! yet.

#![allow(dead_code)] // groundwork: the delta strategy (issue 23) will use it

pub mod chunking;
pub mod client;
pub mod multipart;
pub mod reconstruction;
pub mod xorb;
