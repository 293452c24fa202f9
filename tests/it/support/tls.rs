//! A test certificate authority: server certificates for 127.0.0.1 (and `localhost`,
//! 127.0.0.2, 127.0.0.3) that the client trusts through `SSL_CERT_FILE`, as PEM files for servers that
//! run as processes (the CNCF registry) or as a rustls configuration for those in the tests.

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub struct TestCa {
    pub pem: String,
    cert: Certificate,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate signed by the test CA, with its key.
pub struct Leaf {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key: KeyPair,
}

impl TestCa {
    pub fn new() -> Self {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name.push(DnType::CommonName, "strata-model test CA");
        let ca_key = KeyPair::generate().unwrap();
        let cert = ca.self_signed(&ca_key).unwrap();
        Self { pem: cert.pem(), cert, issuer: Issuer::new(ca, ca_key) }
    }

    /// A server certificate for `localhost`, 127.0.0.1, 127.0.0.2 and 127.0.0.3.
    pub fn server(&self) -> Leaf {
        let names = vec!["localhost".to_string(), "127.0.0.1".into(), "127.0.0.2".into(), "127.0.0.3".into()];
        let mut leaf = CertificateParams::new(names).unwrap();
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.distinguished_name.push(DnType::CommonName, "localhost");
        self.sign(leaf)
    }

    /// A certificate for signing tokens (a registry's token issuer).
    pub fn signer(&self) -> Leaf {
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, "strata-model test token issuer");
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.sign(leaf)
    }

    fn sign(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert_pem: cert.pem(), cert_der: cert.der().to_vec(), key }
    }

    /// A rustls server configuration presenting a fresh server certificate and the CA.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let leaf = self.server();
        let chain = vec![CertificateDer::from(leaf.cert_der), CertificateDer::from(self.cert.der().to_vec())];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Arc::new(config)
    }
}

/// The head of the next HTTP/1.1 request on a connection of a test server: its request line
/// and its headers (names lower-cased), or `None` when the client has closed it.
pub fn read_head(r: &mut impl BufRead) -> Option<(String, HashMap<String, String>)> {
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Some((line, headers))
}
