//! References to a model on the Hub, as other tools take them: `hf.co/OWNER/REPO`,
//! `huggingface.co/OWNER/REPO`, `hf://OWNER/REPO` or `OWNER/REPO`, each optionally with
//! `:QUANT` (`hf.co/owner/repo:Q8_0`, as llama.cpp's `-hf` and `ollama pull` take it) or
//! `/FILE.gguf`, and `@REVISION`.

use std::fmt;

use super::custom_model::valid_repo_part;

/// Which file of the repository a reference names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Select {
    /// A quantization, matched against the GGUF file names (`Q8_0`, `q4_k_m`), any case.
    Quant(String),
    /// A file by its name in the repository.
    File(String),
}

/// A parsed reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubReference {
    /// The repository's owner.
    pub owner: String,
    /// The repository's name.
    pub repo: String,
    /// The file, when the reference names one.
    pub select: Option<Select>,
    /// The revision (branch, tag or commit), when the reference names one.
    pub revision: Option<String>,
}

/// Why a reference could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a Hub reference such as hf.co/OWNER/REPO:Q8_0, OWNER/REPO/FILE.gguf or hf://OWNER/REPO@REVISION: {reason}")]
pub struct ParseReferenceError {
    input: String,
    reason: &'static str,
}

impl HubReference {
    /// `owner/repo`.
    pub fn repo_id(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }

    /// Parses a reference.
    ///
    /// ```
    /// use strata_model::catalog::{HubReference, Select};
    /// let r = HubReference::parse("hf.co/ggml-org/embeddinggemma-300M-GGUF:Q8_0@main")?;
    /// assert_eq!(r.repo_id(), "ggml-org/embeddinggemma-300M-GGUF");
    /// assert_eq!(r.select, Some(Select::Quant("Q8_0".into())));
    /// assert_eq!(r.revision.as_deref(), Some("main"));
    /// # Ok::<(), strata_model::catalog::ParseReferenceError>(())
    /// ```
    pub fn parse(input: &str) -> Result<Self, ParseReferenceError> {
        let err = |reason| ParseReferenceError { input: input.to_string(), reason };
        let mut rest = input.trim();
        for prefix in ["hf://", "https://huggingface.co/", "https://hf.co/", "huggingface.co/", "hf.co/"] {
            if rest.len() >= prefix.len() && rest[..prefix.len()].eq_ignore_ascii_case(prefix) {
                rest = &rest[prefix.len()..];
                break;
            }
        }
        let (path, revision) = match rest.rsplit_once('@') {
            Some((p, r)) if !r.is_empty() && !r.contains(char::is_whitespace) => (p, Some(r.to_string())),
            Some(_) => return Err(err("nothing after `@`")),
            None => (rest, None),
        };
        let mut parts = path.splitn(3, '/');
        let owner = parts.next().unwrap_or("");
        let repo_and_quant = parts.next().ok_or_else(|| err("expected OWNER/REPO"))?;
        let file = parts.next();
        let (repo, quant) = match repo_and_quant.split_once(':') {
            Some((r, q)) => (r, Some(q)),
            None => (repo_and_quant, None),
        };
        if !valid_repo_part(owner) || !valid_repo_part(repo) {
            return Err(err("the owner and the repository are letters, digits, `.`, `_` and `-`"));
        }
        let select = match (quant, file) {
            (Some(_), Some(_)) => return Err(err("give a quantization or a file, not both")),
            (Some(q), None) if !q.is_empty() && q.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                Some(Select::Quant(q.to_string()))
            }
            (Some(_), None) => return Err(err("a quantization is letters, digits and `_` (Q8_0)")),
            (None, Some(f)) if f.to_ascii_lowercase().ends_with(".gguf") => Some(Select::File(f.to_string())),
            (None, Some(_)) => return Err(err("a file must end in .gguf")),
            (None, None) => None,
        };
        Ok(Self { owner: owner.to_string(), repo: repo.to_string(), select, revision })
    }
}

impl fmt::Display for HubReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hf.co/{}/{}", self.owner, self.repo)?;
        match &self.select {
            Some(Select::Quant(q)) => write!(f, ":{q}")?,
            Some(Select::File(file)) => write!(f, "/{file}")?,
            None => {}
        }
        if let Some(r) = &self.revision {
            write!(f, "@{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_parses() {
        for input in [
            "hf.co/acme/tiny-GGUF",
            "huggingface.co/acme/tiny-GGUF",
            "hf://acme/tiny-GGUF",
            "acme/tiny-GGUF",
            "https://huggingface.co/acme/tiny-GGUF",
            "HF.CO/acme/tiny-GGUF",
        ] {
            let r = HubReference::parse(input).unwrap();
            assert_eq!(
                (r.repo_id(), &r.select, &r.revision),
                ("acme/tiny-GGUF".into(), &None, &None),
                "{input}"
            );
        }
        let r = HubReference::parse("acme/tiny-GGUF:q4_k_m@v1.0").unwrap();
        assert_eq!(r.select, Some(Select::Quant("q4_k_m".into())));
        assert_eq!(r.revision.as_deref(), Some("v1.0"));
        let r = HubReference::parse("hf://acme/tiny-GGUF/tiny-F16.gguf").unwrap();
        assert_eq!(r.select, Some(Select::File("tiny-F16.gguf".into())));
        assert_eq!(r.to_string(), "hf.co/acme/tiny-GGUF/tiny-F16.gguf");
        for bad in [
            "",
            "acme",
            "acme/",
            "/tiny",
            "acme/tiny:q8/x.gguf",
            "acme/tiny/x.bin",
            "acme/ti ny",
            "acme/tiny@",
            "acme/tiny:q8!",
        ] {
            assert!(HubReference::parse(bad).is_err(), "{bad:?}");
        }
    }
}
