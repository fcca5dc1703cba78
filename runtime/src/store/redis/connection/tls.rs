//! TLS with rustls: the URL's CA and client files read and checked before
//! any connection is tried, so a bad file is reported as such, not as a
//! failed handshake.

use std::path::Path;

use redis::{ClientTlsConfig, TlsCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::error::ConnectError;
use super::url::TlsOptions;

/// Makes ring the process's rustls crypto provider unless one is set.
/// redis-rs builds its TLS configuration with `ClientConfig::builder()`,
/// which panics when no provider can be chosen (several compiled in, none
/// installed).
pub(crate) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may install one first: then that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The certificates for redis-rs: the CA to trust (`None`: the system's)
/// and the client certificate and key when given.
pub(crate) fn certificates(options: &TlsOptions) -> Result<TlsCertificates, ConnectError> {
    install_crypto_provider();
    let root_cert = match &options.ca_file {
        Some(path) => {
            let pem = read(path, "CA")?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(path, "CA", format!("not PEM certificates: {e}")))?;
            if certs.is_empty() {
                return Err(bad(path, "CA", "holds no certificate".into()));
            }
            Some(pem)
        }
        None => None,
    };
    let client_tls = match (&options.cert_file, &options.key_file) {
        (Some(cert_path), Some(key_path)) => {
            let client_cert = read(cert_path, "client certificate")?;
            let chain = CertificateDer::pem_slice_iter(&client_cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    bad(
                        cert_path,
                        "client certificate",
                        format!("not PEM certificates: {e}"),
                    )
                })?;
            if chain.is_empty() {
                return Err(bad(
                    cert_path,
                    "client certificate",
                    "holds no certificate".into(),
                ));
            }
            let client_key = read(key_path, "client key")?;
            // The key's contents never go into a message.
            PrivateKeyDer::from_pem_slice(&client_key).map_err(|_| {
                bad(
                    key_path,
                    "client key",
                    "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)".into(),
                )
            })?;
            Some(ClientTlsConfig {
                client_cert,
                client_key,
            })
        }
        _ => None,
    };
    Ok(TlsCertificates {
        client_tls,
        root_cert,
    })
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path).map_err(|e| bad(path, what, format!("cannot be read: {e}")))
}

fn bad(path: &Path, what: &'static str, reason: String) -> ConnectError {
    ConnectError::TlsFile {
        what,
        path: path.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_malformed_files_are_named() {
        let dir = std::env::temp_dir().join(format!("steadfast-tls-unit-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let not_pem = dir.join("not.pem");
        let _ = std::fs::write(&not_pem, "hello");
        let options = TlsOptions {
            ca_file: Some(dir.join("missing.pem")),
            ..TlsOptions::default()
        };
        let e = certificates(&options).err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("CA file") && e.contains("missing.pem")),
            "{e:?}"
        );
        let options = TlsOptions {
            ca_file: Some(not_pem),
            ..TlsOptions::default()
        };
        let e = certificates(&options).err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("holds no certificate")),
            "{e:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
