//! relaygate TLS: loads `CONTROLDIR/servercert.pem` into a rustls server
//! configuration for STARTTLS and SMTPS.
//!
//! The file holds the certificate chain (leaf first) and the private key
//! (PKCS#8, PKCS#1 RSA or SEC1 EC), PEM, in one file, like qmail's
//! `servercert.pem`. Keys the ring provider signs with: RSA of 2048 to 8192
//! bits, ECDSA P-256 and P-384, Ed25519 (not P-521, Ed448, RSA under 2048
//! bits, nor an encrypted key: smtpd(8) says how to make one). Three states: absent means no TLS (`Ok(None)`), present
//! and good gives the configuration, anything else is an error with a
//! one-line reason (smtpd logs it and runs without STARTTLS). Holds no
//! state. Crypto: rustls with the ring provider, TLS 1.2 and 1.3, rustls's
//! safe default cipher suites.
#![forbid(unsafe_code)]

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use rgcore::diag::describe_io;

pub use rustls;

/// The certificate file's name in CONTROLDIR.
pub const SERVERCERT: &str = "servercert.pem";

/// Load `controldir/servercert.pem`. `Ok(None)` when the file does not
/// exist; `Err` when it cannot be read, holds no certificate or no key, or
/// the key does not belong to the first certificate.
pub fn server_config(controldir: &Path) -> Result<Option<Arc<ServerConfig>>, String> {
    let path = controldir.join(SERVERCERT);
    let pem = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "unable to read {}: {}",
                path.display(),
                describe_io(&e)
            ))
        }
    };
    config_from_pem(&pem)
        .map(Some)
        .map_err(|e| format!("unable to load {}: {e}", path.display()))
}

/// The refusal of a passphrase-protected key: smtpd runs unattended and
/// cannot type the passphrase.
pub const ENCRYPTED_KEY: &str =
    "private key is encrypted (no passphrase can be given): write it without one with openssl pkey -in KEY -out KEY.plain";

/// Does the PEM hold an encrypted private key (PKCS#8 `ENCRYPTED PRIVATE
/// KEY`, or OpenSSL's traditional `Proc-Type: 4,ENCRYPTED` header)? Such a
/// block is skipped or unparseable as a key; this names the real cause.
pub fn has_encrypted_key(pem: &[u8]) -> bool {
    let has = |needle: &[u8]| pem.windows(needle.len()).any(|w| w == needle);
    has(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || has(b"Proc-Type: 4,ENCRYPTED")
}

/// Build the server configuration from PEM bytes (chain and key).
pub fn config_from_pem(pem: &[u8]) -> Result<Arc<ServerConfig>, String> {
    if has_encrypted_key(pem) {
        return Err(ENCRYPTED_KEY.into());
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad PEM certificate: {}", pem_error(&e)))?;
    if certs.is_empty() {
        return Err("no certificate in file".into());
    }
    let key = match PrivateKeyDer::from_pem_slice(pem) {
        Ok(k) => k,
        Err(pem::Error::NoItemsFound) => return Err("no private key in file".into()),
        Err(e) => return Err(format!("bad PEM private key: {}", pem_error(&e))),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate or key rejected: {e}"))?;
    Ok(Arc::new(config))
}

fn pem_error(e: &pem::Error) -> String {
    match e {
        pem::Error::Io(io) => describe_io(io),
        other => format!("{other:?}"),
    }
}

/// For tests: write a self-signed certificate and its key for `cn` into
/// `path` (one PEM file, as servercert.pem wants) with `openssl req`. Also
/// writes `path` + `.crt` holding the certificate alone, for clients that
/// want to trust it.
pub fn make_test_cert(path: &Path, cn: &str) -> Result<(), String> {
    let key = path.with_extension("key.tmp");
    let crt = path.with_extension("crt.tmp");
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        ])
        .arg(format!("/CN={cn}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{cn}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("unable to run openssl: {}", describe_io(&e)))?;
    if !out.status.success() {
        return Err(format!(
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| format!("unable to read {}: {}", p.display(), describe_io(&e)))
    };
    let (c, k) = (read(&crt)?, read(&key)?);
    let mut pem = c.clone();
    pem.extend_from_slice(&k);
    let write = |p: &Path, d: &[u8]| {
        std::fs::write(p, d)
            .map_err(|e| format!("unable to write {}: {}", p.display(), describe_io(&e)))
    };
    write(path, &pem)?;
    let mut alone = path.as_os_str().to_owned();
    alone.push(".crt");
    write(Path::new(&alone), &c)?;
    let _ = std::fs::remove_file(&key);
    let _ = std::fs::remove_file(&crt);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> rgcore::testing::TempDir {
        rgcore::testing::TempDir::new(&format!("rgtls-{tag}")).unwrap()
    }

    fn have_openssl() -> bool {
        std::process::Command::new("openssl")
            .arg("version")
            .output()
            .is_ok()
    }

    #[test]
    fn absent_is_none() {
        let d = tmpdir("absent");
        assert!(server_config(&d).unwrap().is_none());
    }

    #[test]
    fn good_and_bad_files() {
        if !have_openssl() {
            eprintln!("skipping: openssl not installed");
            return;
        }
        let d = tmpdir("files");
        let p = d.join(SERVERCERT);
        make_test_cert(&p, "mx.example.org").unwrap();
        assert!(server_config(&d).unwrap().is_some());
        let pem = std::fs::read(&p).unwrap();
        let text = String::from_utf8(pem.clone()).unwrap();
        let cut = text.find("-----BEGIN PRIVATE KEY-----").unwrap();

        // certificate only, key only, garbage, empty
        std::fs::write(&p, &text[..cut]).unwrap();
        assert!(server_config(&d).unwrap_err().contains("no private key"));
        std::fs::write(&p, &text[cut..]).unwrap();
        assert!(server_config(&d).unwrap_err().contains("no certificate"));
        std::fs::write(&p, b"hello\n").unwrap();
        assert!(server_config(&d).unwrap_err().contains("no certificate"));
        std::fs::write(&p, b"").unwrap();
        assert!(server_config(&d).is_err());
        // truncated base64 inside the certificate
        std::fs::write(&p, text.replacen("MII", "M!I", 1)).unwrap();
        assert!(server_config(&d).is_err());

        // a key that belongs to another certificate
        let other = d.join("other.pem");
        make_test_cert(&other, "other.example.org").unwrap();
        let other_text = std::fs::read_to_string(&other).unwrap();
        let ocut = other_text.find("-----BEGIN PRIVATE KEY-----").unwrap();
        std::fs::write(&p, format!("{}{}", &text[..cut], &other_text[ocut..])).unwrap();
        let e = server_config(&d).unwrap_err();
        assert!(e.contains("rejected"), "{e}");

        // a passphrase-protected key, PKCS#8 and traditional: said so
        let plain_key = &text[cut..];
        for args in [&["-aes256"][..], &["-traditional", "-aes256"][..]] {
            let key = d.join("plain.key");
            std::fs::write(&key, plain_key).unwrap();
            let out = std::process::Command::new("openssl")
                .args(["pkey", "-in"])
                .arg(&key)
                .args(args)
                .args(["-passout", "pass:secret"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let enc = String::from_utf8(out.stdout).unwrap();
            std::fs::write(&p, format!("{}{enc}", &text[..cut])).unwrap();
            let e = server_config(&d).unwrap_err();
            assert!(e.contains("private key is encrypted"), "{args:?}: {e}");
        }

        // unreadable (a directory in its place)
        std::fs::remove_file(&p).unwrap();
        std::fs::create_dir(&p).unwrap();
        assert!(server_config(&d).unwrap_err().contains("unable to read"));
    }
}
