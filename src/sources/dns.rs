//! Name resolution for the shared HTTPS client: the system's resolver, except for the hosts
//! given to [`Config::with_resolve`](crate::Config::with_resolve) (as curl's `--resolve`), and
//! a name that does not exist told apart from a resolver that could not answer.

use std::net::SocketAddr;

use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// The system's resolver, except for the hosts given to
/// [`Config::with_resolve`](crate::Config::with_resolve), which get their addresses as given.
#[derive(Debug, Default)]
pub(crate) struct Resolve {
    overrides: Vec<(String, Vec<SocketAddr>)>,
}

impl Resolve {
    pub(crate) fn new(overrides: &[(String, Vec<SocketAddr>)]) -> Self {
        Self { overrides: overrides.to_vec() }
    }
}

impl Resolver for Resolve {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().map(|h| h.trim_start_matches('[').trim_end_matches(']'));
        let Some((_, addrs)) =
            host.and_then(|h| self.overrides.iter().find(|(o, _)| o.eq_ignore_ascii_case(h)))
        else {
            return DefaultResolver::default().resolve(uri, config, timeout).map_err(no_such_host);
        };
        let mut out = self.empty();
        for addr in addrs {
            if out.try_push(*addr).is_err() {
                break;
            }
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

/// A name the system's resolver answered does not exist (NXDOMAIN, `EAI_NONAME`) is
/// [`ureq::Error::HostNotFound`]: no retry makes it exist (a wrong `HF_ENDPOINT` or mirror
/// host). A resolver that could not answer (`EAI_AGAIN`: no network yet) stays an I/O error,
/// which is retried. The standard library gives the resolver's words only as text.
fn no_such_host(e: ureq::Error) -> ureq::Error {
    const NO_SUCH_NAME: &[&str] = &[
        "Name or service not known",           // glibc, musl
        "No address associated with hostname", // glibc
        "nodename nor servname provided",      // macOS, BSD
        "No such host is known",               // Windows
    ];
    match e {
        ureq::Error::Io(io) if NO_SUCH_NAME.iter().any(|m| io.to_string().contains(m)) => {
            ureq::Error::HostNotFound
        }
        other => other,
    }
}
