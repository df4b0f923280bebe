//! TLS for the server and the load client, from PEM files: tonic's rustls (with ring, see the
//! `tls` feature in Cargo.toml). Without the `tls` feature, asking for TLS is an error rather
//! than a silent plaintext fallback.

use std::path::{Path, PathBuf};

/// The server's TLS settings (`--tls-cert`, `--tls-key`, `--tls-client-ca`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// The server's certificate chain, PEM.
    pub cert: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
    /// If set, clients must present a certificate signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// The load client's TLS settings (`--tls-ca`, `--tls-domain`, `--tls-client-cert`,
/// `--tls-client-key`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// The CA that signed the server's certificate, PEM.
    pub ca: PathBuf,
    /// The name to verify the server's certificate against (default: the host of `--server`).
    pub domain: Option<String>,
    /// A client certificate and key, PEM, for a server that asks for one (mutual TLS).
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// rustls refused the certificates or key.
    #[error("TLS configuration: {0}")]
    Config(String),
    /// This build has no TLS.
    #[error("this build has no TLS (the `tls` feature)")]
    Unsupported,
}

#[cfg_attr(not(feature = "tls"), allow(dead_code))]
fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(feature = "tls")]
impl ServerTls {
    /// Reads the files into tonic's server configuration, with `handshake_timeout` for every
    /// handshake (a client that connects and says nothing holds a connection that long at most).
    ///
    /// # Errors
    ///
    /// A file cannot be read.
    pub fn load(
        &self,
        handshake_timeout: std::time::Duration,
    ) -> Result<tonic::transport::ServerTlsConfig, TlsError> {
        use tonic::transport::{Certificate, Identity, ServerTlsConfig};
        let identity = Identity::from_pem(read(&self.cert)?, read(&self.key)?);
        let mut config = ServerTlsConfig::new()
            .identity(identity)
            .timeout(handshake_timeout);
        if let Some(ca) = &self.client_ca {
            config = config.client_ca_root(Certificate::from_pem(read(ca)?));
        }
        Ok(config)
    }
}

#[cfg(feature = "tls")]
impl ClientTls {
    /// Reads the files into tonic's client configuration.
    ///
    /// # Errors
    ///
    /// A file cannot be read.
    pub fn load(&self) -> Result<tonic::transport::ClientTlsConfig, TlsError> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let mut config =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&self.ca)?));
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        Ok(config)
    }
}
