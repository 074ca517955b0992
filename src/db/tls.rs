//! TLS to tenants' external databases, with libpq's `sslmode` meanings: `disable` (plain),
//! `prefer` (TLS if offered, unverified), `require` (TLS, unverified unless the database has a
//! CA of its own, which makes it `verify-ca`, as libpq does with a root certificate),
//! `verify-ca` (the chain must reach a trusted root) and `verify-full` (and name the host).
//! Without `sslmode`, a database on another machine gets `verify-full` and a local one (a
//! socket, or a loopback address) `prefer`. Trusted roots: the system's, plus the database's
//! `ca_pem`.
//!
//! tokio-postgres knows only `disable|prefer|require`, so the URL's `sslmode` is read here and
//! taken out before it parses the rest.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How an external database is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS if the server offers it, not verified.
    Prefer,
    /// TLS, not verified (unless the database has a CA: then as `VerifyCa`).
    Require,
    /// TLS with a chain to a trusted root.
    VerifyCa,
    /// TLS with a chain to a trusted root, for the host connected to.
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<SslMode, String> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "prefer" | "allow" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode {other:?}: disable, prefer, require, verify-ca or verify-full"
                ));
            }
        })
    }
}

/// An external database's URL, parsed: its settings for tokio-postgres and its TLS mode.
pub fn parse_url(url: &str) -> Result<(tokio_postgres::Config, SslMode), String> {
    let (rest, mode) = take_sslmode(url)?;
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
    let mode = mode.unwrap_or_else(|| {
        if is_local(&config) {
            SslMode::Prefer
        } else {
            SslMode::VerifyFull
        }
    });
    config.ssl_mode(match mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    Ok((config, mode))
}

/// The URL without its `sslmode`, and that mode. Both the URL form (`?sslmode=...&...`) and
/// the key=value form (`host=... sslmode=...`) are read.
fn take_sslmode(url: &str) -> Result<(String, Option<SslMode>), String> {
    let mut mode = None;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_string(), None));
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            match pair.strip_prefix("sslmode=") {
                Some(value) => mode = Some(SslMode::parse(value)?),
                None => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, mode));
    }
    let mut kept = Vec::new();
    for word in url.split_whitespace() {
        match word.strip_prefix("sslmode=") {
            Some(value) => mode = Some(SslMode::parse(value.trim_matches('\''))?),
            None => kept.push(word),
        }
    }
    Ok((kept.join(" "), mode))
}

/// Whether every host is this machine: a socket, or a loopback name or address.
fn is_local(config: &tokio_postgres::Config) -> bool {
    config.get_hosts().iter().all(|host| match host {
        tokio_postgres::config::Host::Tcp(name) => {
            name == "localhost"
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(_) => true,
    })
}

/// The TLS connector for `mode`, trusting the system's roots and `ca_pem`.
pub fn connector(mode: SslMode, ca_pem: Option<&str>) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(pem) = ca_pem {
        use rustls::pki_types::pem::PemObject;
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("ca_pem: {e}"))?;
        if certs.is_empty() {
            return Err("ca_pem: no certificate in it".into());
        }
        for cert in certs {
            roots.add(cert).map_err(|e| format!("ca_pem: {e}"))?;
        }
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("TLS roots: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, ca_pem) {
        (SslMode::VerifyFull, _) => webpki,
        (SslMode::VerifyCa, _) | (SslMode::Require, Some(_)) => Arc::new(ChainOnly(webpki)),
        _ => Arc::new(Unverified(provider.clone())),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// `verify-ca`: the chain must reach a trusted root; the name in it is not compared.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a CA: encrypted, not authenticated (libpq's meaning); the
/// handshake's signatures are still checked.
#[derive(Debug)]
struct Unverified(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
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

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_read_in_both_forms_and_defaults_by_locality() {
        let (config, mode) =
            parse_url("postgresql://u:p@db.example.com/x?sslmode=verify-ca&application_name=a")
                .unwrap();
        assert_eq!(mode, SslMode::VerifyCa);
        assert_eq!(config.get_application_name(), Some("a"));
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert_eq!(
            parse_url("postgresql://u@db.example.com/x").unwrap().1,
            SslMode::VerifyFull
        );
        assert_eq!(
            parse_url("postgresql://u@127.0.0.1/x").unwrap().1,
            SslMode::Prefer
        );
        assert_eq!(
            parse_url("host=/run/pg dbname=x user=u").unwrap().1,
            SslMode::Prefer
        );
        let (config, mode) = parse_url("host=db.example.com dbname=x sslmode=disable").unwrap();
        assert_eq!(
            (mode, config.get_ssl_mode()),
            (SslMode::Disable, tokio_postgres::config::SslMode::Disable)
        );
        assert!(
            parse_url("postgresql://u@h/x?sslmode=sometimes")
                .unwrap_err()
                .contains("sometimes")
        );
    }

    #[test]
    fn a_bad_ca_is_refused() {
        assert!(connector(SslMode::VerifyFull, Some("not a pem")).is_err());
        assert!(connector(SslMode::VerifyFull, None).is_ok());
    }
}
