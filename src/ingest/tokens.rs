//! Bearer tokens: a file of `name token` lines, checked on every call of the ingest service and
//! of reflection before a single message is read (health stays open for probes), and reloaded
//! on demand (the binary does it on SIGHUP) without touching open streams.
//!
//! Only SHA-256 digests of the tokens are kept, and a presented token is compared with every
//! one of them in constant time, so neither memory nor timing gives a token away. Logs and
//! metrics name a token by its name, never by its value.
//!
//! ```text
//! # name  token
//! loader  3q2+7w...
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use tonic::{Request, Status};

/// Why a token file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file could not be read.
    #[error("reading the token file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not `name token`.
    #[error("{}:{line}: expected `name token`", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
    },
}

/// One known token: its name and its digest.
#[derive(Debug)]
struct Known {
    name: Arc<str>,
    digest: [u8; 32],
}

/// The tokens of a file, swapped whole on reload.
#[derive(Debug)]
pub struct Tokens {
    path: PathBuf,
    known: RwLock<Arc<Vec<Known>>>,
}

fn digest(token: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token);
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn parse(path: &Path) -> Result<Vec<Known>, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut known = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(name), Some(token), None) = (words.next(), words.next(), words.next()) else {
            return Err(TokenError::Malformed {
                path: path.to_owned(),
                line: index + 1,
            });
        };
        known.push(Known {
            name: name.into(),
            digest: digest(token.as_bytes()),
        });
    }
    Ok(known)
}

impl Tokens {
    /// Loads the tokens of `path`.
    ///
    /// # Errors
    ///
    /// The file cannot be read or a line is not `name token`.
    pub fn load(path: &Path) -> Result<Tokens, TokenError> {
        Ok(Tokens {
            known: RwLock::new(Arc::new(parse(path)?)),
            path: path.to_owned(),
        })
    }

    /// Reads the file again and swaps the tokens whole: calls already admitted go on; new ones
    /// are checked against the new tokens. On error the old tokens stay.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn reload(&self) -> Result<usize, TokenError> {
        let known = Arc::new(parse(&self.path)?);
        let count = known.len();
        *self.known.write().unwrap_or_else(PoisonError::into_inner) = known;
        Ok(count)
    }

    /// The name of the token `presented`, if it is known. Compares with every known digest,
    /// without stopping at a match, in constant time per comparison.
    pub fn name_of(&self, presented: &[u8]) -> Option<Arc<str>> {
        use subtle::ConstantTimeEq;
        let presented = digest(presented);
        let known = Arc::clone(&self.known.read().unwrap_or_else(PoisonError::into_inner));
        let mut found = None;
        for entry in known.iter() {
            if bool::from(entry.digest.ct_eq(&presented)) {
                found.get_or_insert_with(|| Arc::clone(&entry.name));
            }
        }
        found
    }

    /// Admits a call carrying `authorization: Bearer <token>` with a known token; anything else
    /// gets `UNAUTHENTICATED`.
    pub fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "));
        let Some(presented) = presented else {
            metrics::counter!("sluicegate_ingest_auth_refused_total", "why" => "missing")
                .increment(1);
            // Per call, so debug: a client hammering without a token must not flood the log;
            // the metric counts every refusal.
            tracing::debug!("refused a call without a bearer token");
            return Err(Status::unauthenticated(
                "missing `authorization: Bearer <token>`",
            ));
        };
        match self.name_of(presented) {
            Some(name) => {
                metrics::counter!("sluicegate_ingest_auth_accepted_total", "token" => name.to_string())
                    .increment(1);
                tracing::debug!(token = %name, "call admitted");
                Ok(request)
            }
            None => {
                metrics::counter!("sluicegate_ingest_auth_refused_total", "why" => "unknown")
                    .increment(1);
                tracing::debug!("refused a call with an unknown token");
                Err(Status::unauthenticated("unknown token"))
            }
        }
    }
}

/// The interceptor of the services that need a token: clones share the tokens.
#[derive(Debug, Clone)]
pub struct RequireToken(pub Option<Arc<Tokens>>);

impl tonic::service::Interceptor for RequireToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        match &self.0 {
            Some(tokens) => tokens.check(request),
            None => Ok(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(authorization: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(value) = authorization {
            request
                .metadata_mut()
                .insert("authorization", value.parse().unwrap());
        }
        request
    }

    #[test]
    fn known_tokens_are_admitted_by_name_and_others_refused_until_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.txt");
        std::fs::write(&path, "# comment\n\nloader s3cret\nother 0ther\n").unwrap();
        let tokens = Tokens::load(&path).unwrap();
        assert_eq!(tokens.name_of(b"s3cret").as_deref(), Some("loader"));
        assert_eq!(tokens.name_of(b"s3cre"), None);
        assert!(tokens.check(request(Some("Bearer 0ther"))).is_ok());
        for refused in [
            None,
            Some("Bearer nope"),
            Some("s3cret"),
            Some("Basic s3cret"),
        ] {
            let status = tokens.check(request(refused)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{refused:?}");
            assert!(!status.message().contains("s3cret"));
        }
        std::fs::write(&path, "other 0ther\n").unwrap();
        assert_eq!(tokens.reload().unwrap(), 1);
        assert!(
            tokens.check(request(Some("Bearer s3cret"))).is_err(),
            "revoked"
        );
        std::fs::write(&path, "broken\n").unwrap();
        assert!(matches!(
            tokens.reload(),
            Err(TokenError::Malformed { line: 1, .. })
        ));
        assert!(
            tokens.check(request(Some("Bearer 0ther"))).is_ok(),
            "a bad file keeps the old tokens"
        );
    }
}
