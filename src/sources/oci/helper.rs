//! Docker's credential helpers: the program `docker-credential-NAME` named by `credsStore` or
//! `credHelpers`, run as docker runs it (`get`, the registry's server URL on standard input,
//! `{"ServerURL", "Username", "Secret"}` on standard output; `Username` `<token>` makes
//! `Secret` an identity token), within a bounded wait. Its answer is never logged nor put in
//! an error; its exit, and the first line of what it printed on standard error, may be.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::Secret;

/// How long a helper may take to answer (a keychain may ask the user to unlock it).
pub(crate) const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// The server URL docker gives a helper for `host` (`host[:port]`): the host itself, but
/// Docker Hub's historical index URL for Docker Hub.
pub(crate) fn server_url(host: &str) -> String {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/".into(),
        other => other.to_string(),
    }
}

/// A helper's answer: a user name and its secret (a password, or an identity token when the
/// user is `<token>`).
pub(crate) struct Answered {
    /// The user name (`<token>`: the secret is an identity token).
    pub(crate) user: String,
    /// The password or token.
    pub(crate) secret: Secret,
}

/// Runs `docker-credential-<helper> get` for `server` (the registry, as [`server_url`] names
/// it). `Ok(None)`: the helper has nothing for it. `Err`: why it could not be asked, naming
/// the program and `named_in` (the file that names the helper), never the secret.
pub(crate) fn get(
    helper: &str,
    server: &str,
    named_in: &str,
    timeout: Duration,
) -> Result<Option<Answered>, String> {
    let program = format!("docker-credential-{helper}");
    if helper.is_empty()
        || !helper.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "{named_in} names the credential helper `{}`, which is not a helper's name",
            helper.escape_debug()
        ));
    }
    let mut child = match Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{named_in} keeps registry credentials in the credential helper `{program}`, which is not installed \
                 (not found on PATH): install it, or log in with podman (podman login) or set REGISTRY_AUTH_FILE \
                 to a file with an `auth` entry"
            ))
        }
        Err(e) => return Err(format!("cannot run the credential helper `{program}` (named in {named_in}): {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // Docker writes the server URL with no newline, then closes the pipe.
        let _ = stdin.write_all(server.as_bytes());
    }
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.by_ref().take(1 << 20).read_to_end(&mut out);
            }
            out
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the credential helper `{program}` (named in {named_in}) did not answer within {} s; \
                     check that it works (`echo {server} | {program} get`)",
                    timeout.as_secs()
                ));
            }
            Err(e) => return Err(format!("cannot wait for the credential helper `{program}`: {e}")),
        }
    };
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    if !status.success() {
        // docker-credential-helpers say so on standard output, in these words.
        if String::from_utf8_lossy(&out).contains("credentials not found") {
            return Ok(None);
        }
        let said = String::from_utf8_lossy(&err);
        let first = said.lines().next().unwrap_or("").trim();
        let first: String = first.chars().take(200).collect();
        return Err(format!(
            "the credential helper `{program}` (named in {named_in}) failed ({status}){}",
            if first.is_empty() { String::new() } else { format!(": {first}") }
        ));
    }
    let answer: Answer = serde_json::from_slice(&out).map_err(|_| {
        format!("the credential helper `{program}` (named in {named_in}) printed something that is not its JSON answer")
    })?;
    Ok((!answer.secret.is_empty())
        .then(|| Answered { user: answer.username, secret: Secret::new(answer.secret) }))
}
