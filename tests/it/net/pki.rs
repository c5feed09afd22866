//! A certificate authority made at test time (rcgen), its certificate in a PEM file for
//! `ssl-ca-file`, and rustls configurations for the tests' own TLS servers and clients.

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::*;

/// A CA, a server certificate signed by it for 127.0.0.1 and localhost (in PEM files, for the
/// elements), and one for another name only.
pub struct Pki {
    _dir: tempfile::TempDir,
    /// The CA's certificate.
    pub ca: PathBuf,
    /// The server's certificate and key, for 127.0.0.1 and localhost.
    pub cert: PathBuf,
    pub key: PathBuf,
    ca_der: CertificateDer<'static>,
    server: Arc<rustls::ServerConfig>,
    mismatched: Arc<rustls::ServerConfig>,
}

#[allow(deprecated)] // ring's provider: see elements/net/tls.rs.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(chain: Vec<CertificateDer<'static>>, key: &KeyPair) -> Arc<rustls::ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    )
}

impl Pki {
    pub fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "parallax test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let leaf = |names: &[&str]| {
            let key = KeyPair::generate().unwrap();
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &ca)
                .unwrap();
            (cert, key)
        };
        let (cert, key) = leaf(&["127.0.0.1", "localhost"]);
        let (other, other_key) = leaf(&["elsewhere.example"]);
        let dir = tmp();
        let pki = Pki {
            ca: file(dir.path(), "ca.pem", ca.pem().as_bytes()),
            cert: file(dir.path(), "server.pem", cert.pem().as_bytes()),
            key: file(dir.path(), "server.key", key.serialize_pem().as_bytes()),
            ca_der: ca.der().clone(),
            server: server_config(vec![cert.der().clone(), ca.der().clone()], &key),
            mismatched: server_config(vec![other.der().clone()], &other_key),
            _dir: dir,
        };
        pki
    }

    /// A server presenting the certificate for 127.0.0.1 and localhost.
    pub fn server(&self) -> Arc<rustls::ServerConfig> {
        self.server.clone()
    }

    /// A server presenting a certificate for `elsewhere.example` only.
    pub fn mismatched(&self) -> Arc<rustls::ServerConfig> {
        self.mismatched.clone()
    }

    /// A client trusting the CA.
    pub fn client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}
