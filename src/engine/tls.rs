//! TLS configuration on rustls for the v1.23 SSL options: server certificate and key,
//! client-certificate verification, client trust (system roots plus a CA file, or
//! "allow self-signed"), and the OpenSSL cipher-list string mapped onto rustls suites.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{aws_lc_rs, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::sync::Arc;

/// Where Debian (and most distributions) keep the system trust bundle.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// OpenSSL names of the TLS 1.2 suites rustls implements.
const OPENSSL_NAMES: &[(&str, &str)] = &[
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
];

/// rustls' aws-lc-rs provider with the key-exchange groups of the library's earlier
/// *ring* provider (X25519, P-256, P-384, in that order of preference): the post-quantum
/// hybrid X25519MLKEM768 that aws-lc-rs adds is left out, so that the handshake a
/// client sees, and its cost, do not change with the provider. The cipher suites are
/// the provider's defaults (the same six TLS 1.2 and three TLS 1.3 suites as *ring*).
pub fn base_provider() -> CryptoProvider {
    use aws_lc_rs::kx_group::{SECP256R1, SECP384R1, X25519};
    CryptoProvider {
        kx_groups: vec![X25519, SECP256R1, SECP384R1],
        ..aws_lc_rs::default_provider()
    }
}

/// Runs aws-lc's one-time initialisation (CPU-feature detection, the random generator's
/// global state) by using each kind of primitive a handshake uses once: a hash, random
/// bytes and a key-exchange key. Called once, under a mutex, at the first context
/// creation (see `io::threads::warm_up_once`), so that thread checkers never see two
/// threads race to fill these caches.
pub fn warm_up() {
    let provider = base_provider();
    let mut bytes = [0u8; 32];
    let _ = provider.secure_random.fill(&mut bytes);
    for s in &provider.cipher_suites {
        if let rustls::SupportedCipherSuite::Tls13(t) = s {
            let _ = t.common.hash_provider.hash(&bytes);
            break;
        }
    }
    for kx in &provider.kx_groups {
        let _ = kx.start();
    }
}

/// The crypto provider after applying an OpenSSL-style cipher list.
///
/// Named TLS 1.2 suites that rustls has restrict the TLS 1.2 suites to those; TLS 1.3
/// suites are unaffected (as with OpenSSL's cipher list). Keywords (`HIGH`,
/// `DEFAULT`, `!aNULL`...) and names rustls lacks (RC4, CBC, DES...: all weaker) are
/// ignored with a warning: the list can narrow the choice, never weaken it.
pub fn provider_for(cipher_list: Option<&str>) -> (CryptoProvider, Vec<String>) {
    let mut provider = base_provider();
    let mut warnings = Vec::new();
    let Some(list) = cipher_list.map(str::trim).filter(|l| !l.is_empty()) else {
        return (provider, warnings);
    };
    let mut wanted = Vec::new();
    for tok in list.split([':', ',', ' ']).filter(|t| !t.is_empty()) {
        let tok = tok.trim_start_matches(['+', '-', '!']);
        match OPENSSL_NAMES
            .iter()
            .find(|(o, _)| o.eq_ignore_ascii_case(tok))
        {
            Some((_, iana)) => wanted.push(*iana),
            None => {
                if !tok
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '@' || c.is_ascii_digit())
                    || tok.contains('-')
                {
                    warnings.push(format!(
                        "cipher '{tok}' is not available with rustls; ignored"
                    ));
                }
            }
        }
    }
    if !wanted.is_empty() {
        provider.cipher_suites.retain(|s| match s {
            rustls::SupportedCipherSuite::Tls13(_) => true,
            rustls::SupportedCipherSuite::Tls12(_) => {
                let name = format!("{:?}", s.suite());
                wanted.iter().any(|w| *w == name)
            }
        });
    } else {
        warnings.push(format!(
            "ssl_cipher_list '{list}' names no suite rustls implements; using the defaults"
        ));
    }
    (provider, warnings)
}

fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{path}: {e}"))?
        .collect();
    let certs = certs.map_err(|e| format!("{path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{path}: no certificate found"));
    }
    Ok(certs)
}

fn load_roots(ca_file: Option<&str>, system: bool) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    if system {
        if let Some(bundle) = SYSTEM_BUNDLES
            .iter()
            .find(|p| std::path::Path::new(p).exists())
        {
            if let Ok(certs) = load_certs(bundle) {
                roots.add_parsable_certificates(certs);
            }
        }
    }
    if let Some(ca) = ca_file {
        for c in load_certs(ca)? {
            roots.add(c).map_err(|e| format!("{ca}: {e}"))?;
        }
    }
    Ok(roots)
}

/// Server configuration from PEM files (RSA or ECDSA key, full chain). With
/// `require_client_cert`, clients must present a certificate that chains to `ca_file`.
pub fn server_config(
    cert_file: &str,
    key_file: &str,
    ca_file: Option<&str>,
    require_client_cert: bool,
    cipher_list: Option<&str>,
) -> Result<(Arc<ServerConfig>, Vec<String>), String> {
    let (provider, warnings) = provider_for(cipher_list);
    let provider = Arc::new(provider);
    let certs = load_certs(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| format!("{key_file}: {e}"))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if require_client_cert {
        let Some(ca) = ca_file else {
            return Err("client certificates required but no ssl_ca_filepath given".into());
        };
        let roots = Arc::new(load_roots(Some(ca), false)?);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| e.to_string())?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate/key: {e}"))?;
    cfg.alpn_protocols.clear();
    Ok((Arc::new(cfg), warnings))
}

/// Client configuration: `verify` checks the chain against the system roots plus
/// `ca_file`, and the host name; without it any certificate is accepted (the
/// original's `ssl_connection == 2`, "allow self-signed"), signatures still checked.
pub fn client_config(
    verify: bool,
    ca_file: Option<&str>,
    cipher_list: Option<&str>,
) -> Result<Arc<ClientConfig>, String> {
    let (provider, _) = provider_for(cipher_list);
    let provider = Arc::new(provider);
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let cfg = if verify {
        builder
            .with_root_certificates(load_roots(ca_file, true)?)
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth()
    };
    Ok(Arc::new(cfg))
}

/// The server name to verify and send as SNI.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let h = host.trim_matches(|c| c == '[' || c == ']');
    let h = h
        .split(':')
        .next()
        .filter(|_| !h.contains("::"))
        .unwrap_or(h);
    ServerName::try_from(h.to_string()).map_err(|e| format!("{host}: {e}"))
}

/// "Allow self-signed": any certificate, but handshake signatures are still verified.
#[derive(Debug)]
struct AcceptAnyCert(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCert {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_list_narrows_tls12_only() {
        let all = base_provider().cipher_suites.len();
        let (p, w) = provider_for(Some("ECDHE-RSA-AES128-GCM-SHA256:HIGH:!aNULL:RC4-MD5"));
        assert!(p.cipher_suites.len() < all);
        assert!(p
            .cipher_suites
            .iter()
            .any(|s| matches!(s, rustls::SupportedCipherSuite::Tls13(_))));
        assert!(w.iter().any(|m| m.contains("RC4-MD5")));
        let (p, w) = provider_for(Some("RC4-MD5:DES-CBC3-SHA"));
        assert_eq!(p.cipher_suites.len(), all);
        assert!(!w.is_empty());
    }

    #[test]
    fn server_names() {
        assert!(server_name("example.com").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("::1").is_ok());
    }
}
