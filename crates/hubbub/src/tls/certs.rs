//! The server's certificate: read from PEM files, and swapped in place when
//! the operator reloads it (SIGHUP), so that handshakes from then on use the
//! new one while connections already open keep the session they have.
//!
//! A file that cannot be read or parsed, or a key that does not match its
//! certificate, is an error naming the file: at start it stops the server,
//! on a reload the certificate in use stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The certificate chain and key files, and what was last loaded from them.
#[derive(Debug)]
pub struct ReloadableCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    /// Read by every handshake, written by a reload: a lock held for a
    /// pointer copy.
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    /// Loads the chain at `cert_path` (PEM, leaf first) and the private key
    /// at `key_path` (PEM: PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    /// A file that cannot be read, holds no certificate or key, or a key
    /// that does not belong to the certificate.
    pub fn load(
        cert_path: &Path,
        key_path: &Path,
        provider: Arc<CryptoProvider>,
    ) -> anyhow::Result<ReloadableCert> {
        let current = certified_key(cert_path, key_path, &provider)?;
        Ok(ReloadableCert {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// Reads the files again and uses what they hold from the next
    /// handshake on.
    ///
    /// # Errors
    /// As [`ReloadableCert::load`]; the certificate in use is then kept.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = certified_key(&self.cert_path, &self.key_path, &self.provider)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        Ok(())
    }

    /// The certificate handshakes use now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The chain and key in the files, checked to belong together.
fn certified_key(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> anyhow::Result<CertifiedKey> {
    let chain = read_chain(cert_path)?;
    let key = read_key(key_path)?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        anyhow::anyhow!(
            "--tls-key {} does not fit --tls-cert {}: {e}",
            key_path.display(),
            cert_path.display()
        )
    })
}

fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem =
        std::fs::read(path).with_context(|| format!("--tls-cert: reading {}", path.display()))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--tls-cert {}: bad PEM: {e}", path.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "--tls-cert {}: no CERTIFICATE in the file (PEM expected)",
        path.display()
    );
    Ok(chain)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem =
        std::fs::read(path).with_context(|| format!("--tls-key: reading {}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        anyhow::anyhow!(
            "--tls-key {}: no usable private key (PEM PKCS#8, RSA or EC expected): {e}",
            path.display()
        )
    })
}
