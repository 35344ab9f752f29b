//! Transport security against a local https endpoint whose certificates come from a test CA made here:
//! verified with an extra CA, refused without it, refused for the wrong host name, SNI sent, and a
//! client certificate presented and checked by the server.

mod support;

use std::sync::Arc;
use std::time::Duration;

use delivery::{ActionOverrides, EngineConfig, TlsOptions, Transport};
use model::PayloadMode;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use soap::Verdict;
use support::*;

struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

struct Leaf {
    cert: CertificateDer<'static>,
    pem: String,
    key: KeyPair,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "casewire test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki { ca }
    }

    fn ca_pem(&self) -> Vec<u8> {
        self.ca.pem().into_bytes()
    }

    fn leaf(&self, names: &[&str], usage: ExtendedKeyUsagePurpose, cn: &str) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Leaf {
            cert: cert.der().clone(),
            pem: cert.pem(),
            key,
        }
    }

    /// A server configuration presenting a certificate for `names`; with `require_client_cert`,
    /// clients must present a certificate issued by this CA.
    fn server(&self, names: &[&str], require_client_cert: bool) -> Arc<rustls::ServerConfig> {
        self.server_with(names, require_client_cert, rustls::DEFAULT_VERSIONS)
    }

    fn server_with(
        &self,
        names: &[&str],
        require_client_cert: bool,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ServerConfig> {
        let leaf = self.leaf(names, ExtendedKeyUsagePurpose::ServerAuth, names[0]);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca.der().clone()).unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.serialize_der()));
        Arc::new(
            builder
                .with_single_cert(vec![leaf.cert, self.ca.der().clone()], key)
                .unwrap(),
        )
    }
}

fn transport(url: &str, tls: TlsOptions) -> Transport {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = EngineConfig::default();
    config.actions.insert(
        "A".into(),
        ActionOverrides {
            tls,
            ..Default::default()
        },
    );
    Transport::new(
        &config,
        &catalog(vec![action("A", url, PayloadMode::Latest)]),
    )
    .unwrap()
}

async fn send(t: &Transport, url: &str) -> Verdict {
    let verdict = t
        .attempt("A", url, b"<x/>".to_vec(), Duration::from_secs(5))
        .await
        .verdict;
    eprintln!("{url}: {verdict:?}");
    verdict
}

fn with_ca(pki: &Pki) -> TlsOptions {
    TlsOptions {
        extra_roots_pem: Some(pki.ca_pem()),
        client_identity_pem: None,
    }
}

#[tokio::test]
async fn a_certificate_from_the_extra_ca_is_verified_and_sni_is_sent() {
    let pki = Pki::new();
    let ep = endpoint(Some(pki.server(&["localhost"], false)), |_| Reply::ack()).await;
    let url = ep.https_url("localhost", "/inbox");
    let t = transport(&url, with_ca(&pki));
    assert_eq!(send(&t, &url).await, Verdict::Delivered);
    let seen = ep.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].sni.as_deref(), Some("localhost"));
    assert_eq!(
        seen[0].client_cert, None,
        "no client certificate configured"
    );
}

#[tokio::test]
async fn a_tls_1_2_only_endpoint_is_accepted() {
    let pki = Pki::new();
    let server = pki.server_with(&["localhost"], false, &[&rustls::version::TLS12]);
    let ep = endpoint(Some(server), |_| Reply::ack()).await;
    let url = ep.https_url("localhost", "/inbox");
    let t = transport(&url, with_ca(&pki));
    assert_eq!(
        send(&t, &url).await,
        Verdict::Delivered,
        "TLS 1.2 is the minimum, and allowed"
    );
}

#[tokio::test]
async fn without_the_extra_ca_the_certificate_is_refused() {
    let pki = Pki::new();
    let ep = endpoint(Some(pki.server(&["localhost"], false)), |_| Reply::ack()).await;
    let url = ep.https_url("localhost", "/inbox");
    let t = transport(&url, TlsOptions::default());
    let Verdict::Failed(reason) = send(&t, &url).await else {
        panic!("a certificate from an unknown CA was accepted");
    };
    assert!(
        reason.starts_with("TLS error: ") && reason.contains("UnknownIssuer"),
        "{reason}"
    );
    assert!(ep.seen().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused_with_the_names() {
    let pki = Pki::new();
    let ep = endpoint(Some(pki.server(&["inbox.example.com"], false)), |_| {
        Reply::ack()
    })
    .await;
    let url = ep.https_url("localhost", "/inbox");
    let t = transport(&url, with_ca(&pki));
    let Verdict::Failed(reason) = send(&t, &url).await else {
        panic!("a certificate for another host was accepted");
    };
    assert!(reason.starts_with("TLS error: "), "{reason}");
    assert!(
        reason.contains("not valid for name") && reason.contains("localhost"),
        "the reason names the host: {reason}"
    );
    assert!(ep.seen().is_empty());
}

#[tokio::test]
async fn a_client_certificate_is_presented_and_checked() {
    let pki = Pki::new();
    let ep = endpoint(Some(pki.server(&["localhost"], true)), |_| Reply::ack()).await;
    let url = ep.https_url("localhost", "/inbox");
    let client = pki.leaf(&[], ExtendedKeyUsagePurpose::ClientAuth, "casewire desk");
    let mut identity = client.pem.clone().into_bytes();
    identity.extend_from_slice(client.key.serialize_pem().as_bytes());
    let t = transport(
        &url,
        TlsOptions {
            extra_roots_pem: Some(pki.ca_pem()),
            client_identity_pem: Some(identity),
        },
    );
    assert_eq!(send(&t, &url).await, Verdict::Delivered);
    let seen = ep.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].client_cert.as_deref(),
        Some(client.cert.as_ref()),
        "the server verified and saw our client certificate"
    );

    // Without a client certificate the server refuses the handshake and the attempt fails.
    let bare = transport(&url, with_ca(&pki));
    let Verdict::Failed(reason) = send(&bare, &url).await else {
        panic!("accepted without a client certificate");
    };
    assert!(reason.starts_with("TLS error: "), "{reason}");
    assert_eq!(ep.seen().len(), 1, "nothing more reached the server");
}

#[test]
fn tls_material_that_does_not_parse_is_refused_naming_the_action() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = "https://localhost:8443/inbox";
    let mut config = EngineConfig::default();
    config.actions.insert(
        "A".into(),
        ActionOverrides {
            tls: TlsOptions {
                extra_roots_pem: Some(b"not a certificate".to_vec()),
                client_identity_pem: None,
            },
            ..Default::default()
        },
    );
    let err = Transport::new(
        &config,
        &catalog(vec![action("A", url, PayloadMode::Latest)]),
    )
    .err()
    .expect("refused");
    assert_eq!(
        err.to_string(),
        "action A: ca_file: holds no PEM certificate"
    );
}
