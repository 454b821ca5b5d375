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

/// See `warm_up`.
const WARM_UP_RSA: &[u8] = include_bytes!("warm_up_rsa.der");

/// See `warm_up`: a SubjectPublicKeyInfo of an elliptic-curve key on the curve named
/// 1.3.6.1 (no curve).
const UNKNOWN_CURVE: &[u8] = &[
    0x30, 0x15, 0x30, 0x0e, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x03, 0x2b,
    0x06, 0x01, 0x03, 0x03, 0x00, 0x04, 0x00,
];

/// Runs aws-lc's one-time initialisations: the CPU-feature detection, the random
/// generator's global state and the static method tables (digests, HMAC, AEADs, the
/// elliptic-curve groups, RSA's default method) that aws-lc fills on first use under
/// `pthread_once`, whose fast path thread checkers (helgrind, drd) do not see as
/// ordering. Every primitive the library's TLS uses is used once here: the hashes and
/// HMACs of the suites, each AEAD both ways, each key exchange, an ECDSA and an Ed25519
/// signature made and checked with throwaway keys, and RSA-PSS and PKCS#1 (see
/// WARM_UP_RSA: generating an RSA key would be slow). Called once, under a mutex, at
/// the first TLS configuration (`io::threads::tls_warm_up_once`), so that every later first
/// use in another thread is ordered after it.
pub fn warm_up() {
    use ::aws_lc_rs::{aead, agreement, digest, hkdf, hmac, rand, signature};
    use signature::KeyPair;
    let msg = b"warm-up";
    let rng = rand::SystemRandom::new();
    let mut bytes = [0u8; 32];
    let _ = rand::fill(&mut bytes);
    for alg in [&digest::SHA256, &digest::SHA384, &digest::SHA512] {
        let _ = digest::digest(alg, msg);
    }
    for alg in [hmac::HMAC_SHA256, hmac::HMAC_SHA384] {
        let tag = hmac::sign(&hmac::Key::new(alg, &bytes), msg);
        let _ = hmac::verify(&hmac::Key::new(alg, &bytes), msg, tag.as_ref());
    }
    for alg in [hkdf::HKDF_SHA256, hkdf::HKDF_SHA384] {
        let prk = hkdf::Salt::new(alg, &bytes).extract(msg);
        let mut out = [0u8; 32];
        if let Ok(okm) = prk.expand(&[msg], hkdf::HKDF_SHA256) {
            let _ = okm.fill(&mut out);
        }
    }
    for alg in [&aead::AES_128_GCM, &aead::AES_256_GCM] {
        for id in [aead::TlsProtocolId::TLS12, aead::TlsProtocolId::TLS13] {
            let (Ok(mut seal), Ok(open)) = (
                aead::TlsRecordSealingKey::new(alg, id, &bytes[..alg.key_len()]),
                aead::TlsRecordOpeningKey::new(alg, id, &bytes[..alg.key_len()]),
            ) else {
                continue;
            };
            let mut data = msg.to_vec();
            let nonce = || aead::Nonce::assume_unique_for_key([0u8; aead::NONCE_LEN]);
            if seal
                .seal_in_place_append_tag(nonce(), aead::Aad::from(msg), &mut data)
                .is_ok()
            {
                let _ = open.open_in_place(nonce(), aead::Aad::from(msg), &mut data);
            }
        }
    }
    for alg in [
        &aead::AES_128_GCM,
        &aead::AES_256_GCM,
        &aead::CHACHA20_POLY1305,
    ] {
        let Ok(key) = aead::UnboundKey::new(alg, &bytes[..alg.key_len()]) else {
            continue;
        };
        let key = aead::LessSafeKey::new(key);
        let mut data = msg.to_vec();
        let nonce = || aead::Nonce::assume_unique_for_key([7u8; aead::NONCE_LEN]);
        if key
            .seal_in_place_append_tag(nonce(), aead::Aad::from(msg), &mut data)
            .is_ok()
        {
            let _ = key.open_in_place(nonce(), aead::Aad::from(msg), &mut data);
        }
    }
    for alg in [
        &agreement::X25519,
        &agreement::ECDH_P256,
        &agreement::ECDH_P384,
    ] {
        let (Ok(a), Ok(b)) = (
            agreement::EphemeralPrivateKey::generate(alg, &rng),
            agreement::EphemeralPrivateKey::generate(alg, &rng),
        ) else {
            continue;
        };
        if let Ok(pb) = b.compute_public_key() {
            let peer = agreement::UnparsedPublicKey::new(alg, pb.as_ref().to_vec());
            let _ = agreement::agree_ephemeral(a, peer, (), |_| Ok(()));
        }
    }
    for (sign, verify) in [
        (
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &signature::ECDSA_P256_SHA256_ASN1,
        ),
        (
            &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
            &signature::ECDSA_P384_SHA384_ASN1,
        ),
    ] {
        if let Ok(k) = signature::EcdsaKeyPair::generate(sign) {
            if let Ok(sig) = k.sign(&rng, msg) {
                let public = signature::UnparsedPublicKey::new(verify, k.public_key().as_ref());
                let _ = public.verify(msg, sig.as_ref());
            }
        }
    }
    // Parsing a key names its curve: aws-lc looks the name up in its table of groups,
    // setting each up on the way; an unknown name makes it go through all of them.
    let _ = signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, UNKNOWN_CURVE)
        .verify(msg, msg);
    if let Ok(k) = signature::Ed25519KeyPair::generate() {
        let sig = k.sign(msg);
        let public =
            signature::UnparsedPublicKey::new(&signature::ED25519, k.public_key().as_ref());
        let _ = public.verify(msg, sig.as_ref());
    }
    // RSA: parsing a private key (RSA's default method, the key checks) and signing
    // with it (Montgomery and blinding set-up, PSS and PKCS#1 padding), then a
    // verification. WARM_UP_RSA is not a usable key: an RSAPrivateKey whose two
    // "factors" are random odd 1024-bit numbers, not primes, with the other fields
    // consistent so that the checks made when parsing pass; signing with it fails
    // aws-lc's own check of the result, after going through the same code.
    if let Ok(k) = ::aws_lc_rs::rsa::KeyPair::from_der(WARM_UP_RSA) {
        let mut sig = vec![0u8; k.public_modulus_len()];
        for alg in [&signature::RSA_PSS_SHA256, &signature::RSA_PKCS1_SHA256] {
            let _ = k.sign(alg, &rng, msg, &mut sig);
        }
        for alg in [
            &signature::RSA_PSS_2048_8192_SHA256,
            &signature::RSA_PKCS1_2048_8192_SHA256,
        ] {
            let public = signature::UnparsedPublicKey::new(alg, k.public_key().as_ref());
            let _ = public.verify(msg, &sig);
        }
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

    /// The warm-up's RSA structure passes aws-lc's parse-time checks (so the warm-up
    /// runs the key set-up and signing code), is not a usable signing key, and the
    /// whole warm-up stays cheap.
    #[test]
    fn warm_up_covers_rsa_and_is_cheap() {
        let k = ::aws_lc_rs::rsa::KeyPair::from_der(WARM_UP_RSA).expect("parses");
        assert_eq!(k.public_modulus_len(), 256);
        let mut sig = vec![0u8; 256];
        let rng = ::aws_lc_rs::rand::SystemRandom::new();
        let signed = k.sign(
            &::aws_lc_rs::signature::RSA_PSS_SHA256,
            &rng,
            b"m",
            &mut sig,
        );
        assert!(signed.is_err(), "composite factors: no valid signature");
        let t = std::time::Instant::now();
        warm_up();
        let first = t.elapsed();
        println!("warm_up: {first:?}");
        assert!(first < std::time::Duration::from_secs(2), "{first:?}");
    }

    #[test]
    fn server_names() {
        assert!(server_name("example.com").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("::1").is_ok());
    }
}
