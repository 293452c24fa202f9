//! The one mockall source of the test suite, for the resolver's logic (order, retries,
//! verification) where a real server cannot produce the answer on demand.

use std::fmt;

use strata_model::{Fetch, FetchRequest, ModelEntry, ModelSource, SourceError};

mockall::mock! {
    /// A source whose answers a test scripts.
    pub Source {}
    impl ModelSource for Source {
        fn fetch(&self, entry: &ModelEntry, request: &FetchRequest) -> Result<Fetch, SourceError>;
        fn is_network(&self) -> bool;
    }
    impl fmt::Display for Source {
        fn fmt<'a>(&self, f: &mut fmt::Formatter<'a>) -> fmt::Result;
    }
}

impl fmt::Debug for MockSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MockSource")
    }
}

/// A mock that names itself `name` and counts as a network source.
pub fn named(name: &'static str) -> MockSource {
    let mut m = MockSource::new();
    m.expect_fmt().returning(move |f| f.write_str(name));
    m.expect_is_network().return_const(true);
    m
}
