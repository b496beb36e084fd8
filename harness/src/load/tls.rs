//! [`Trust`]: which certificate authorities a load run trusts for `https` targets, and the rustls client
//! configuration built from it (aws-lc-rs provider set explicitly, so no process-wide default is needed).

use std::{path::PathBuf, sync::Arc};

use rustls::{
    pki_types::{pem::PemObject, CertificateDer},
    ClientConfig, RootCertStore,
};

use super::Error;

/// The CAs an `https` load target's certificate must chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The platform's certificate store (rustls-native-certs: `SSL_CERT_FILE` / `SSL_CERT_DIR` when set, else
    /// where this system keeps its CAs).
    System,
    /// The CA certificates in a PEM file (e.g. the self-signed CA of the local front door).
    PemFile(PathBuf),
    /// CA certificates as PEM text.
    Pem(Vec<u8>),
}

impl Trust {
    /// The rustls client configuration trusting these CAs, offering HTTP/1.1 by ALPN.
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, Error> {
        let (certs, origin): (Vec<CertificateDer<'static>>, String) = match self {
            Trust::System => {
                let found = rustls_native_certs::load_native_certs();
                let why = found.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                (
                    found.certs,
                    format!(
                        "the system's certificate store{}",
                        if why.is_empty() { String::new() } else { format!(" ({why})") }
                    ),
                )
            }
            Trust::PemFile(path) => (pem_certs(&read(path)?, &path.display().to_string())?, path.display().to_string()),
            Trust::Pem(bytes) => (pem_certs(bytes, "inline PEM")?, "inline PEM".to_string()),
        };
        let mut roots = RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(Error::CaPem { origin, reason: "no CERTIFICATE block that parses".into() });
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn pem_certs(pem: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| Error::CaPem { origin: origin.to_string(), reason: e.to_string() })
}

fn read(path: &PathBuf) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::CaFile { path: path.clone(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_empty_ca_is_a_clear_error() {
        let e = Trust::PemFile("/nonexistent/ca.pem".into()).client_config().unwrap_err().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let e = Trust::Pem(b"not a pem".to_vec()).client_config().unwrap_err().to_string();
        assert!(e.contains("inline PEM"), "{e}");
    }

    /// The system store is the platform's, as rustls-native-certs finds it: `SSL_CERT_DIR` is honoured (a
    /// path hard-coded to one distribution's bundle would not see it).
    #[test]
    fn the_system_store_honours_ssl_cert_dir() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("only.pem"), ca.pem()).unwrap();
        let empty = tempfile::NamedTempFile::new().unwrap();
        // This test's process only (nextest runs each test in its own process).
        std::env::set_var("SSL_CERT_FILE", empty.path());
        std::env::set_var("SSL_CERT_DIR", dir.path());
        let found = rustls_native_certs::load_native_certs();
        assert_eq!(found.certs.len(), 1, "{:?}", found.errors);
        assert!(Trust::System.client_config().is_ok());
    }

    #[test]
    fn a_generated_ca_is_accepted() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        let config = Trust::Pem(ca.pem().into_bytes()).client_config().unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
