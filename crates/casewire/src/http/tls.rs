//! The inbox's HTTPS: a rustls server configuration from PEM files (TLS 1.2 and 1.3 only, ring as the
//! crypto provider, h2 and http/1.1 offered), optional client-certificate verification against a CA
//! file, and the subject of a verified client certificate rendered the way `openssl x509 -noout
//! -subject -nameopt RFC2253` prints it, for the routes' `client_certificate_subjects`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use crate::inbox_config::{ClientAuth, TlsConfig};

fn certificates(path: &Path, key: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("{key}: cannot read {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{key}: {} is not PEM", path.display()))?;
    if certs.is_empty() {
        bail!("{key}: {} holds no CERTIFICATE", path.display());
    }
    Ok(certs)
}

/// Builds the server configuration; every file problem names its key.
pub fn server_config(
    tls: &TlsConfig,
    resolve: impl Fn(&Path) -> std::path::PathBuf,
) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(
        &resolve(&tls.certificate_chain),
        "inbox.tls.certificate_chain",
    )?;
    let key_path = resolve(&tls.private_key);
    let key = PrivateKeyDer::from_pem_file(&key_path).with_context(|| {
        format!(
            "inbox.tls.private_key: no private key in {}",
            key_path.display()
        )
    })?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("inbox.tls: TLS versions")?;
    let builder = match (tls.client_auth, &tls.client_ca) {
        (ClientAuth::Off, _) | (_, None) => builder.with_no_client_auth(),
        (mode, Some(ca)) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(&resolve(ca), "inbox.tls.client_ca")? {
                roots
                    .add(cert)
                    .context("inbox.tls.client_ca: not a usable CA certificate")?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if mode == ClientAuth::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .context("inbox.tls.client_ca: cannot verify clients with it")?,
            )
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .context("inbox.tls: the private key does not match the certificate")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

// ---------------------------------------------------------------------------------------------------
// The subject of a certificate: a small DER reader for exactly the path to `subject` in RFC 5280's
// `Certificate`, so that no X.509 library is needed for one field. The certificate was verified by
// rustls before this runs; a structure this reader does not expect yields `None` (refused).

struct Der<'a> {
    data: &'a [u8],
}

impl<'a> Der<'a> {
    /// The next element: (tag, content).
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.data.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        let (content, rest) = rest.split_at(len);
        self.data = rest;
        Some((tag, content))
    }
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;

fn oid_text(bytes: &[u8]) -> Option<String> {
    let (&first, rest) = bytes.split_first()?;
    let mut parts = vec![u64::from(first / 40).min(2), 0];
    parts[1] = u64::from(first) - parts[0] * 40;
    let mut value = 0u64;
    for &b in rest {
        value = value.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            parts.push(value);
            value = 0;
        }
    }
    Some(
        parts
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

fn attribute_name(oid: &str) -> String {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "serialNumber",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "emailAddress",
        other => other,
    }
    .to_ascii_uppercase()
}

fn string_value(tag: u8, bytes: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, NumericString, VisibleString
        0x0c | 0x13 | 0x16 | 0x12 | 0x1a => String::from_utf8(bytes.to_vec()).ok(),
        // TeletexString: in practice Latin-1.
        0x14 => Some(bytes.iter().map(|b| char::from(*b)).collect()),
        // BMPString: UTF-16BE.
        0x1e if bytes.len().is_multiple_of(2) => String::from_utf16(
            &bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect::<Vec<_>>(),
        )
        .ok(),
        _ => None,
    }
}

/// RFC 4514 escaping of an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The subject of a DER certificate as `CN=client,O=Example,C=US` (most specific first, as RFC 4514
/// writes it), attribute types upper-cased.
pub fn certificate_subject(der: &[u8]) -> Option<String> {
    let (tag, certificate) = Der { data: der }.next()?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs) = Der { data: certificate }.next()?;
    if tag != SEQUENCE {
        return None;
    }
    let mut fields = Der { data: tbs };
    let (mut tag, _) = fields.next()?;
    if tag == 0xa0 {
        // [0] version, then the serial number.
        (tag, _) = fields.next()?;
    }
    if tag != 0x02 {
        return None;
    }
    let _signature = fields.next()?;
    let _issuer = fields.next()?;
    let _validity = fields.next()?;
    let (tag, subject) = fields.next()?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rdns = Vec::new();
    let mut names = Der { data: subject };
    while !names.data.is_empty() {
        let (tag, set) = names.next()?;
        if tag != SET {
            return None;
        }
        let mut parts = Vec::new();
        let mut atvs = Der { data: set };
        while !atvs.data.is_empty() {
            let (tag, atv) = atvs.next()?;
            if tag != SEQUENCE {
                return None;
            }
            let mut inner = Der { data: atv };
            let (tag, oid) = inner.next()?;
            if tag != OID {
                return None;
            }
            let (value_tag, value) = inner.next()?;
            let name = attribute_name(&oid_text(oid)?);
            parts.push(format!(
                "{name}={}",
                escape(&string_value(value_tag, value)?)
            ));
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test certificates made with openssl (see crates/casewire/tests/data/tls/README.md).
    fn pem(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/tls")
            .join(name);
        CertificateDer::from_pem_file(path).unwrap().to_vec()
    }

    #[test]
    fn subjects_as_openssl_prints_them() {
        assert_eq!(
            certificate_subject(&pem("client.pem")).as_deref(),
            Some("CN=sf-client,OU=Integration,O=Example Corp\\, Inc.,C=US")
        );
        assert_eq!(
            certificate_subject(&pem("other-client.pem")).as_deref(),
            Some("CN=intruder,O=Example Corp\\, Inc.,C=US")
        );
        assert_eq!(
            certificate_subject(&pem("server.pem")).as_deref(),
            Some("CN=localhost")
        );
        assert_eq!(certificate_subject(b"\x30\x03\x02\x01\x00"), None);
        assert_eq!(certificate_subject(b""), None);
        assert_eq!(certificate_subject(b"\x30\x84\xff\xff\xff\xff"), None);
    }

    #[test]
    fn oids_and_escapes() {
        assert_eq!(oid_text(&[0x55, 0x04, 0x03]).as_deref(), Some("2.5.4.3"));
        assert_eq!(
            oid_text(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]).as_deref(),
            Some("1.2.840.113549.1.9.1")
        );
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape(" #x "), "\\ #x\\ ");
    }
}
