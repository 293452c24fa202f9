//! The first bytes of a file at its source (the Hub, an OCI registry), read by range for its
//! GGUF header.

use std::io::{self, Read};

use super::{FIRST_READ, HEADER_READ_LIMIT};
use crate::catalog::ModelEntry;
use crate::error::{ErrorKind, SourceError};
use crate::sources::{FetchRequest, ModelSource};

/// The first bytes of a file, read with range requests of growing size (256 KiB, then 4
/// times more each time) up to [`HEADER_READ_LIMIT`]: one request for any usual header.
pub(in crate::registry) struct Prefix<'a> {
    source: &'a dyn ModelSource,
    entry: &'a ModelEntry,
    body: Option<Box<dyn Read + Send>>,
    validator: Option<String>,
    /// Bytes read so far.
    pub(super) read: u64,
    /// Where the current body ends.
    body_end: u64,
    /// Bytes asked for, over every range request.
    pub(super) asked: u64,
    next: u64,
    pub(super) hit_limit: bool,
    pub(in crate::registry) error: Option<SourceError>,
    /// The file's size and where it is, as the source first said them (a `Content-Range`'s
    /// total, or a whole answer's length), when it did.
    pub(super) total: Option<(u64, String)>,
}

impl<'a> Prefix<'a> {
    pub(in crate::registry) fn new(source: &'a dyn ModelSource, entry: &'a ModelEntry) -> Self {
        Self {
            source,
            entry,
            body: None,
            validator: None,
            read: 0,
            body_end: 0,
            asked: 0,
            next: FIRST_READ,
            hit_limit: false,
            error: None,
            total: None,
        }
    }
}

impl Read for Prefix<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(body) = &mut self.body {
                let n = body.read(buf)?;
                if n > 0 {
                    self.read += n as u64;
                    return Ok(n);
                }
                if self.read < self.body_end {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                self.body = None;
            }
            let end = self.entry.size_bytes.min(HEADER_READ_LIMIT);
            if self.read >= end {
                if end < self.entry.size_bytes {
                    self.hit_limit = true;
                    return Err(io::Error::other("header read limit"));
                }
                return Ok(0);
            }
            let want = (self.read + self.next).min(end);
            self.next = self.next.saturating_mul(4);
            let request =
                FetchRequest { offset: self.read, end: Some(want), if_range: self.validator.clone() };
            match self.source.fetch(self.entry, &request) {
                Ok(fetch) if fetch.start == self.read => {
                    self.validator = self.validator.take().or(fetch.validator);
                    if self.total.is_none() {
                        self.total = fetch.total.map(|t| (t, fetch.location.clone()));
                    }
                    self.body = Some(fetch.body);
                    self.asked += want - self.read;
                    self.body_end = want;
                }
                Ok(fetch) => {
                    self.error = Some(SourceError::failed(
                        ErrorKind::Network,
                        format!(
                            "{}: asked for bytes from {}, got from {}",
                            fetch.location, self.read, fetch.start
                        ),
                    ));
                    return Err(io::Error::other("range refused"));
                }
                Err(e) => {
                    self.error = Some(e);
                    return Err(io::Error::other("fetch failed"));
                }
            }
        }
    }
}
