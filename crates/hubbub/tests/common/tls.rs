//! TLS for tests: a throwaway certificate authority and a server
//! certificate it signs (rcgen), written as PEM files into a temporary
//! directory removed with the [`TestPki`], and rustls clients that trust
//! one such authority only.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::{Client, WAIT};

/// A certificate authority and the server certificate it issued, as files.
pub struct TestPki {
    dir: tempfile::TempDir,
    /// The server's chain (PEM): what `--tls-cert` names.
    pub cert: PathBuf,
    /// The server's private key (PEM): what `--tls-key` names.
    pub key: PathBuf,
    /// The authority's certificate (PEM), for clients to trust.
    pub ca_file: PathBuf,
    /// The authority clients trust to reach this server.
    pub ca: CertificateDer<'static>,
    /// The server certificate now in the files.
    pub leaf: CertificateDer<'static>,
    /// The names (DNS names, IP addresses) certificates are issued for.
    names: Vec<String>,
}

impl TestPki {
    /// A new authority and a certificate for `localhost` and 127.0.0.1.
    pub fn new() -> TestPki {
        TestPki::for_names(&["localhost", "127.0.0.1"])
    }

    /// A new authority and a certificate for `names` (DNS names or IP
    /// addresses).
    pub fn for_names(names: &[&str]) -> TestPki {
        let dir = tempfile::Builder::new()
            .prefix("hubbub-tls-")
            .tempdir()
            .expect("temp dir");
        let mut pki = TestPki {
            cert: dir.path().join("fullchain.pem"),
            key: dir.path().join("privkey.pem"),
            ca_file: dir.path().join("ca.pem"),
            dir,
            ca: CertificateDer::from(Vec::new()),
            leaf: CertificateDer::from(Vec::new()),
            names: names.iter().map(|n| n.to_string()).collect(),
        };
        pki.reissue("hubbub test CA");
        pki
    }

    /// Replaces the files with a certificate from a new authority named
    /// `ca_name` (as a renewal from another CA would); clients trusting the
    /// old authority no longer trust the server's next handshakes.
    pub fn reissue(&mut self, ca_name: &str) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, ca_name);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(self.names.clone()).unwrap();
        let leaf = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(&self.cert, leaf.pem() + &ca_cert.pem()).unwrap();
        std::fs::write(&self.key, key.serialize_pem()).unwrap();
        std::fs::write(&self.ca_file, ca_cert.pem()).unwrap();
        self.ca = ca_cert.der().clone();
        self.leaf = leaf.der().clone();
    }

    /// Where the files are.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A client configuration that trusts this authority only.
    pub fn client(&self) -> Arc<ClientConfig> {
        client_trusting(&self.ca, &[])
    }
}

/// The test configuration ([`super::config`]) with TLS on, with `pki`'s
/// files, every listener on loopback port 0.
pub fn server_config(pki: &TestPki) -> hubbub::Config {
    hubbub::Config {
        tls_cert: Some(pki.cert.clone()),
        tls_key: Some(pki.key.clone()),
        tls_tcp_addr: Some("127.0.0.1:0".into()),
        https_addr: Some("127.0.0.1:0".into()),
        ..super::config()
    }
}

/// A client configuration that trusts `ca` only and offers `alpn`.
pub fn client_trusting(ca: &CertificateDer<'static>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).expect("a valid CA certificate");
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Opens a TLS connection to `addr` (as server name 127.0.0.1).
///
/// # Errors
/// The connection or the handshake failed (an untrusted certificate).
pub async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    tokio::time::timeout(WAIT, TlsConnector::from(config).connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

/// The certificate the server presented on `stream`.
pub fn presented(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("the server presents a certificate")
        .clone()
        .into_owned()
}

/// A line client over TLS, after the greeting.
pub async fn line_client(addr: SocketAddr, config: Arc<ClientConfig>) -> Client {
    let stream = connect(addr, config).await.expect("TLS connect");
    let local = stream.get_ref().0.local_addr().unwrap().to_string();
    Client::greeted_over(stream, local).await
}
