//! Certificates for the TLS tests, generated with rcgen: a CA, a server certificate for
//! `localhost` signed by it, client certificates, and PEM files for all of them.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};
use sluicegate::ingest::{ClientTls, ServerTls};

/// A CA, a server certificate for `localhost` signed by it, and PEM files for both.
pub struct Pki {
    dir: tempfile::TempDir,
    ca: CertificateParams,
    ca_key: KeyPair,
}

impl Pki {
    pub fn new() -> Pki {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct names: a leaf whose subject equals its issuer looks self-signed to OpenSSL
        // (grpcio's BoringSSL refuses it).
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name
            .push(DnType::CommonName, "sluicegate test CA");
        let ca_key = KeyPair::generate().unwrap();
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
            ca_key,
            ca,
        };
        let ca_pem = pki.ca.self_signed(&pki.ca_key).unwrap().pem();
        std::fs::write(pki.path("ca.pem"), ca_pem).unwrap();
        pki.leaf("server", &["localhost"]);
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `<name>.pem` and `<name>.key`, a certificate for `names` signed by the CA.
    pub fn leaf(&self, name: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.ca, &self.ca_key);
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &issuer).unwrap();
        self.write(name, &cert.pem(), &key)
    }

    /// Writes `<name>.pem` and `<name>.key`, a self-signed certificate no one trusts.
    pub fn untrusted(&self, name: &str) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["intruder".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        self.write(name, &cert.pem(), &key)
    }

    pub fn write(&self, name: &str, pem: &str, key: &KeyPair) -> (PathBuf, PathBuf) {
        let (cert_path, key_path) = (
            self.path(&format!("{name}.pem")),
            self.path(&format!("{name}.key")),
        );
        std::fs::write(&cert_path, pem).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    pub fn server_tls(&self, mutual: bool) -> ServerTls {
        ServerTls {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            client_ca: mutual.then(|| self.path("ca.pem")),
        }
    }

    pub fn client_tls(&self, identity: Option<(PathBuf, PathBuf)>) -> ClientTls {
        ClientTls {
            ca: self.path("ca.pem"),
            domain: Some("localhost".into()),
            identity,
        }
    }
}
