//! TLS material: the configured certificate, or a self-signed one for localhost use.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;

/// A rustls server config from PEM files, or a fresh self-signed certificate
/// for `names` when no files are given.
pub fn server_config(
    cert: Option<&Path>,
    key: Option<&Path>,
    names: &[String],
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let (certs, key) = match (cert, key) {
        (Some(c), Some(k)) => {
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(c)
                .map_err(|e| anyhow::anyhow!("tls_cert {}: {e}", c.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("tls_cert {}: {e}", c.display()))?;
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(k)
                .map_err(|e| anyhow::anyhow!("tls_key {}: {e}", k.display()))?;
            (certs, key)
        }
        (None, None) => {
            let ck = rcgen::generate_simple_self_signed(names.to_vec())?;
            let key =
                rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
            (vec![ck.cert.der().clone()], key)
        }
        _ => anyhow::bail!("tls_cert and tls_key go together"),
    };
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}
