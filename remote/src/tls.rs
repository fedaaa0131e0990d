//! Mutual TLS material: a cluster CA, node identities, and the QUIC configs
//! built from them.
//!
//! Every node presents a certificate signed by the cluster's CA and accepts
//! only peers that do, in both directions: a peer with no certificate, one
//! from another CA, or an expired one fails the handshake before it can
//! send a byte of application data. rustls runs on the ring provider only.
//!
//! The CA is the trust boundary, as with Akka's TLS transport: every
//! certificate it signed is good for any node. A certificate does not name
//! the address or system its holder may claim (all carry
//! [`SERVER_NAME`]), so a holder of one can present itself under any root
//! path. Issue node certificates only to machines you would let speak for
//! the whole cluster, and use a CA per cluster.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

/// The name every node certificate carries and every dialer expects: nodes
/// are told apart by their incarnation id, not their certificate.
pub(crate) const NODE_NAME: &str = "compaktor-node";

/// The server name every node certificate carries; dial nodes with it.
pub const SERVER_NAME: &str = NODE_NAME;
const ALPN: &[u8] = b"compaktor/1";

/// TLS material could not be made, read or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Generating a key or certificate failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A PEM input did not hold what was expected.
    #[error("invalid PEM: {0}")]
    Pem(String),
    /// rustls refused the material.
    #[error("TLS configuration refused: {0}")]
    Config(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("client verifier: {0}")]
    Verifier(String),
}

/// A cluster's certificate authority: issues node identities.
///
/// ```
/// use compaktor_remote::CertificateAuthority;
///
/// let ca = CertificateAuthority::generate("my cluster").unwrap();
/// let node = ca.issue().unwrap();
/// assert!(ca.cert_pem().contains("BEGIN CERTIFICATE"));
/// # let _ = node;
/// ```
pub struct CertificateAuthority {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl CertificateAuthority {
    /// A fresh CA named `name`.
    pub fn generate(name: &str) -> Result<Self, TlsError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(CertificateAuthority { cert, key })
    }

    /// The CA certificate, PEM-encoded: what every node trusts.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// A node identity signed by this CA, valid from 1975 to 4096.
    pub fn issue(&self) -> Result<NodeIdentity, TlsError> {
        self.issue_with(CertificateParams::new(vec![NODE_NAME.to_owned()])?)
    }

    /// A node identity whose certificate expired long ago; for tests of
    /// the rejection path.
    #[doc(hidden)]
    pub fn issue_expired(&self) -> Result<NodeIdentity, TlsError> {
        let mut params = CertificateParams::new(vec![NODE_NAME.to_owned()])?;
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        self.issue_with(params)
    }

    fn issue_with(&self, mut params: CertificateParams) -> Result<NodeIdentity, TlsError> {
        params.distinguished_name.push(DnType::CommonName, NODE_NAME);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(NodeIdentity {
            ca: self.cert.der().clone(),
            chain: vec![cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }
}

/// What a node proves itself with and whom it trusts: its certificate
/// chain, its private key, and the cluster CA.
///
/// ```
/// use compaktor_remote::{CertificateAuthority, NodeIdentity};
///
/// let ca = CertificateAuthority::generate("c").unwrap();
/// let (ca_pem, cert_pem, key_pem) = ca.issue().unwrap().to_pem();
/// let again = NodeIdentity::from_pem(&ca_pem, &cert_pem, &key_pem).unwrap();
/// # let _ = again;
/// ```
pub struct NodeIdentity {
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
}

// Keys for the endpoint that stay the same on every start with this
// identity, so that a restarted node recognises the connection ids its
// previous incarnation handed out and can reset those connections.
impl NodeIdentity {
    /// A secret derived from the node's private key for one `purpose`.
    fn derive(&self, purpose: &[u8]) -> ring::hmac::Tag {
        let secret = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.key.secret_pkcs8_der());
        ring::hmac::sign(&secret, purpose)
    }

    /// The key of the endpoint's stateless resets.
    pub(crate) fn reset_key(&self) -> ring::hmac::Key {
        let derived = self.derive(b"compaktor/1 stateless reset key");
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref())
    }

    /// The key of the endpoint's connection ids.
    pub(crate) fn connection_id_key(&self) -> u64 {
        let derived = self.derive(b"compaktor/1 connection id key");
        let mut key = [0; 8];
        key.copy_from_slice(&derived.as_ref()[..8]);
        u64::from_le_bytes(key)
    }
}

impl Clone for NodeIdentity {
    fn clone(&self) -> Self {
        NodeIdentity {
            ca: self.ca.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl std::fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl NodeIdentity {
    /// A throwaway CA and an identity from it, shared by every node of
    /// this process that calls `dev` — so dev nodes in one process trust
    /// each other, and nothing else does. Logs a warning: not secure.
    pub fn dev() -> Result<Self, TlsError> {
        static DEV_CA: std::sync::OnceLock<Result<CertificateAuthority, String>> = std::sync::OnceLock::new();
        tracing::warn!("remoting uses a generated throwaway CA (dev mode): NOT SECURE, do not use in production");
        let ca = DEV_CA
            .get_or_init(|| CertificateAuthority::generate("compaktor dev CA").map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| TlsError::Pem(e.clone()))?;
        ca.issue()
    }

    /// Reads an identity from PEM text: the CA certificate, the node's
    /// certificate chain, and its PKCS#8 private key.
    pub fn from_pem(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Self, TlsError> {
        let pem = |what: &str, e: rustls::pki_types::pem::Error| TlsError::Pem(format!("{what}: {e}"));
        let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(|e| pem("CA certificate", e))?;
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem("node certificate", e))?;
        if chain.is_empty() {
            return Err(TlsError::Pem("no node certificate".into()));
        }
        let key = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| pem("private key", e))?;
        Ok(NodeIdentity { ca, chain, key })
    }

    /// The CA certificate, the node certificate and its key, as PEM text.
    pub fn to_pem(&self) -> (String, String, String) {
        let encode = |label: &str, der: &[u8]| {
            let mut out = format!("-----BEGIN {label}-----\n");
            for line in base64(der).as_bytes().chunks(64) {
                out.push_str(std::str::from_utf8(line).unwrap_or_default());
                out.push('\n');
            }
            out.push_str(&format!("-----END {label}-----\n"));
            out
        };
        let chain: String = self.chain.iter().map(|c| encode("CERTIFICATE", c)).collect();
        (
            encode("CERTIFICATE", &self.ca),
            chain,
            encode("PRIVATE KEY", self.key.secret_pkcs8_der()),
        )
    }

    fn roots(&self) -> Result<Arc<RootCertStore>, TlsError> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone())?;
        Ok(Arc::new(roots))
    }

    /// The QUIC server side a node uses: TLS 1.3 on ring, requires a
    /// client certificate from our CA. Public for tools and benchmarks that
    /// speak raw QUIC with a node's security (dial with [`SERVER_NAME`]).
    pub fn server_config(&self) -> Result<quinn::ServerConfig, TlsError> {
        let provider = provider();
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots()?, provider.clone())
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), PrivateKeyDer::Pkcs8(self.key.clone_key()))?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto =
            quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| TlsError::Verifier(e.to_string()))?;
        Ok(quinn::ServerConfig::with_crypto(Arc::new(crypto)))
    }

    /// The QUIC client side a node uses: presents our certificate, trusts
    /// only our CA.
    pub fn client_config(&self) -> Result<quinn::ClientConfig, TlsError> {
        let mut tls = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(self.chain.clone(), PrivateKeyDer::Pkcs8(self.key.clone_key()))?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto =
            quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| TlsError::Verifier(e.to_string()))?;
        Ok(quinn::ClientConfig::new(Arc::new(crypto)))
    }
}

/// ring, and only ring: two providers compiled in make rustls panic.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Standard base64 with padding, for PEM output.
fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn an_identity_survives_pem_and_builds_both_configs() {
        let ca = CertificateAuthority::generate("t").unwrap();
        let (a, b, c) = ca.issue().unwrap().to_pem();
        let id = NodeIdentity::from_pem(&a, &b, &c).unwrap();
        id.server_config().unwrap();
        id.client_config().unwrap();
        assert!(matches!(NodeIdentity::from_pem("x", &b, &c), Err(TlsError::Pem(_))));
    }
}
