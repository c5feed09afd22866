//! TLS for `https://` and `wss://`, through rustls with the ring provider.
//!
//! A client trusts the system's CA certificates (read once per process from where OpenSSL and
//! curl read them, `/etc/ssl/certs` and `SSL_CERT_FILE`/`SSL_CERT_DIR`), or, with souphttpsrc's
//! `ssl-ca-file`, only the CAs of that PEM file; `ssl-strict=false` accepts any certificate, as
//! gst does (the handshake's signatures are still checked). A server (`websocketsrc port=`)
//! serves the chain and key of `tls-cert-file` and `tls-key-file`.
//!
//! Files are read when the element is built, so a missing or unreadable file is a
//! configuration error before anything runs. A certificate that does not verify is an error
//! naming the URL, rustls's reason and the two properties that change the verdict.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::element::prelude::*;

/// A client's URL taken apart.
pub(super) struct ClientUrl {
    pub(super) uri: http::Uri,
    /// The scheme is the secure one (`https`, `wss`): the connection runs TLS.
    pub(super) tls: bool,
    /// Without an IPv6 address's brackets.
    pub(super) host: String,
    /// The URL's, or 443 with TLS and 80 without.
    pub(super) port: u16,
}

impl ClientUrl {
    /// Takes `url` apart when its scheme is `plain` or `secure`; the errors name `element`, the
    /// location and the schemes `wanted` (`an http:// or https:// URL`).
    pub(super) fn parse(
        url: &str,
        element: &str,
        [plain, secure]: [&str; 2],
        wanted: &str,
    ) -> Result<ClientUrl, ElementError> {
        let bad = |why: &str| ElementError::Config(format!("{element}: location `{url}` {why}"));
        let uri: http::Uri = url.parse().map_err(|_| bad("is not a URL"))?;
        let tls = match uri.scheme_str() {
            Some(s) if s == plain => false,
            Some(s) if s == secure => true,
            _ => return Err(bad(&format!("is not {wanted}"))),
        };
        let authority = uri.authority().ok_or_else(|| bad("names no host"))?;
        Ok(ClientUrl {
            tls,
            host: authority.host().trim_matches(['[', ']']).to_owned(),
            port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            uri,
        })
    }
}

pub(super) const SSL_CA_FILE: PropSpec = PropSpec::string(
    "ssl-ca-file",
    None,
    "Location of a PEM file of the CA certificates to trust (instead of the system's)",
);
pub(super) const SSL_STRICT: PropSpec = PropSpec::bool(
    "ssl-strict",
    true,
    "Strict SSL certificate checking (false: accept any certificate)",
);
pub(super) const TLS_CERT_FILE: PropSpec = PropSpec::string(
    "tls-cert-file",
    None,
    "When listening: a PEM file of the certificate chain to serve wss:// with",
);
pub(super) const TLS_KEY_FILE: PropSpec = PropSpec::string(
    "tls-key-file",
    None,
    "When listening: a PEM file of the private key of tls-cert-file",
);

/// A connection, plain or TLS, as one type.
pub(super) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The ring provider, named explicitly: the process-wide default would be ambiguous if another
/// crate in the build enabled a second provider.
///
/// rustls deprecates ring's provider because it has no post-quantum key exchange (its key
/// exchanges are the classical X25519 and NIST curves); the provider that has one, aws-lc-rs,
/// needs cmake and several minutes more to build. Revisit when ring gains ML-KEM.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's CA certificates, read once; none when the system has none (every
/// certificate then fails as of an unknown issuer, and the hint says what to do).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        if found.certs.is_empty() {
            tracing::warn!(errors = ?found.errors, "No system CA certificates found");
        }
        found.certs
    })
}

/// Reads a PEM file of certificates; at least one must be there.
fn read_certs(
    path: &str,
    prop: &str,
    element: &str,
) -> Result<Vec<CertificateDer<'static>>, ElementError> {
    let bad = |why: String| ElementError::Config(format!("{element}: {prop} `{path}`: {why}"));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
        ));
    }
    Ok(certs)
}

/// The client side of an element: whom it trusts. The rustls configuration is made at the
/// first TLS connection, so an element that only speaks plain HTTP never reads the system's
/// certificates.
pub(super) struct TlsClient {
    element: &'static str,
    /// The CAs of ssl-ca-file, when set.
    cas: Option<Vec<CertificateDer<'static>>>,
    strict: bool,
    config: OnceLock<Arc<ClientConfig>>,
}

/// Why a TLS handshake failed, and whether trying again may help: a certificate that does not
/// verify will not verify next time; a connection that broke during the handshake may not break.
pub(super) struct HandshakeError {
    pub(super) message: String,
    pub(super) transient: bool,
}

impl TlsClient {
    pub(super) fn from_props(p: &Props, element: &'static str) -> Result<TlsClient, ElementError> {
        let cas = match p.string("ssl-ca-file")? {
            None | Some("") => None,
            Some(path) => Some(read_certs(path, "ssl-ca-file", element)?),
        };
        Ok(TlsClient {
            element,
            cas,
            strict: p.bool("ssl-strict")?,
            config: OnceLock::new(),
        })
    }

    fn config(&self) -> Result<Arc<ClientConfig>, String> {
        if let Some(config) = self.config.get() {
            return Ok(config.clone());
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let config = if self.strict {
            let mut roots = RootCertStore::empty();
            let cas = self.cas.as_deref().unwrap_or_else(|| system_roots());
            let (_, ignored) = roots.add_parsable_certificates(cas.iter().cloned());
            if ignored > 0 {
                tracing::debug!(ignored, element = self.element, "Unusable CA certificates");
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
                .with_no_client_auth()
        };
        Ok(self.config.get_or_init(|| Arc::new(config)).clone())
    }

    /// Runs the client handshake over `tcp` with `host` (a name or an address), for `url`.
    pub(super) async fn connect(
        &self,
        tcp: TcpStream,
        host: &str,
        url: &str,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, HandshakeError> {
        let refused = |message: String| HandshakeError {
            message,
            transient: false,
        };
        let config = self.config().map_err(refused)?;
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| refused(format!("{url}: `{host}` is not a TLS server name: {e}")))?;
        tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| handshake_error(&e, url))
    }
}

/// The error for a failed client handshake: rustls's reason in words, and for a certificate
/// the properties that would let it pass.
fn handshake_error(e: &std::io::Error, url: &str) -> HandshakeError {
    let Some(tls) = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) else {
        return HandshakeError {
            message: format!("TLS handshake with {url} broke off: {e}"),
            transient: true,
        };
    };
    let message = match tls {
        rustls::Error::InvalidCertificate(cert) => {
            let reason = match cert {
                CertificateError::UnknownIssuer => {
                    "unknown issuer: no trusted CA signed it".to_owned()
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    format!("name mismatch: {cert}")
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    format!("expired: {cert}")
                }
                CertificateError::Other(other) if other.to_string() == "CaUsedAsEndEntity" => {
                    "CA used as end entity: the server presents a CA certificate (CA:TRUE, as \
                     `openssl req -x509` makes by default) as its own"
                        .to_owned()
                }
                other => reason_words(&other.to_string()),
            };
            format!(
                "{url}: the server's certificate does not verify ({reason}); trust its CA with \
                 ssl-ca-file=FILE.pem, or accept any certificate with ssl-strict=false"
            )
        }
        other => format!("TLS handshake with {url} failed: {other}"),
    };
    HandshakeError {
        message,
        transient: false,
    }
}

/// rustls and webpki print some reasons as their Rust names (`BadSignature`,
/// `Other(OtherError(UnsupportedSignatureAlgorithm))`): those read as words. A text with spaces
/// is already words and is kept.
fn reason_words(text: &str) -> String {
    if text.contains(' ') {
        return text.to_owned();
    }
    let name = text
        .rsplit('(')
        .next()
        .unwrap_or(text)
        .trim_end_matches(')');
    let mut words = String::new();
    for (i, c) in name.char_indices() {
        if c.is_ascii_uppercase() && i > 0 {
            words.push(' ');
        }
        words.push(c.to_ascii_lowercase());
    }
    words
}

/// The server side: the certificate chain and key to serve, when both files are given.
pub(super) fn server_config(
    p: &Props,
    element: &str,
) -> Result<Option<Arc<ServerConfig>>, ElementError> {
    let (cert, key) = match (p.string("tls-cert-file")?, p.string("tls-key-file")?) {
        (None | Some(""), None | Some("")) => return Ok(None),
        (Some(cert), Some(key)) if !cert.is_empty() && !key.is_empty() => (cert, key),
        _ => {
            return Err(ElementError::Config(format!(
                "{element}: give both tls-cert-file and tls-key-file to serve wss://"
            )))
        }
    };
    let chain = read_certs(cert, "tls-cert-file", element)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        ElementError::Config(format!(
            "{element}: tls-key-file `{key}`: no private key read ({e})"
        ))
    })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| {
            ElementError::Config(format!(
                "{element}: tls-cert-file `{cert}` and its key cannot serve TLS: {e}"
            ))
        })?;
    Ok(Some(Arc::new(config)))
}

/// ssl-strict=false: any certificate is taken, but the handshake's signatures are still
/// checked against it, so the peer must hold the key of the certificate it shows.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_names_of_reasons_read_as_words() {
        assert_eq!(reason_words("BadSignature"), "bad signature");
        assert_eq!(
            reason_words("Other(OtherError(UnsupportedSignatureAlgorithm))"),
            "unsupported signature algorithm"
        );
        assert_eq!(
            reason_words("certificate expired: verification time 5"),
            "certificate expired: verification time 5"
        );
    }

    #[test]
    fn a_certificate_verdict_names_the_reason_and_the_way_out_and_is_not_retried() {
        let e = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let h = handshake_error(&e, "https://h/x");
        assert!(!h.transient);
        assert_eq!(
            h.message,
            "https://h/x: the server's certificate does not verify (unknown issuer: no trusted CA \
             signed it); trust its CA with ssl-ca-file=FILE.pem, or accept any certificate with \
             ssl-strict=false"
        );
        let e = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "eof");
        let h = handshake_error(&e, "https://h/x");
        assert!(h.transient, "a broken handshake may pass next time");
        assert_eq!(h.message, "TLS handshake with https://h/x broke off: eof");
    }
}
