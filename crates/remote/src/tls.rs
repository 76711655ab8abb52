//! The TLS client side of STARTTLS (rustls, ring provider, through rgtls).
//!
//! Two policies (docs/DELIVERY.md): opportunistic, used whenever the hop
//! offers STARTTLS: encryption without checking who answers, as Postfix's
//! `may` (signatures over the handshake are still checked, so the session
//! keys belong to whoever holds the certificate's key); and required
//! (`-t`): the chain must lead to a root in `CONTROLDIR/remotecas.pem` when
//! that file exists, else to a system root, and the certificate must name
//! the hop. Roots are loaded only under `-t` (parsing the system bundle
//! costs milliseconds that an opportunistic attempt need not pay).

use std::io;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use rgcore::control;
use rgcore::diag::Failure;
use rgtls::rustls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, StreamOwned};

/// The system's root bundle (Debian's ca-certificates).
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Our own roots in CONTROLDIR, used instead of the system's when present.
pub const REMOTECAS: &str = "remotecas.pem";

/// An encrypted SMTP connection.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts any certificate chain but checks the handshake signatures.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        verify_tls12_signature(
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
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The configuration for opportunistic TLS (no verification).
pub fn opportunistic() -> Result<Arc<ClientConfig>, Failure> {
    let p = provider();
    let config = ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::temp(format!("unable to set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Unverified(p)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The configuration for required TLS: roots from `remotecas.pem` in
/// `controldir` when present, else [`SYSTEM_ROOTS`].
pub fn verified(controldir: &Path) -> Result<Arc<ClientConfig>, Failure> {
    let (pem, from) = match control::read_raw(controldir, REMOTECAS)? {
        Some(pem) => (pem, controldir.join(REMOTECAS)),
        None => {
            let path = Path::new(SYSTEM_ROOTS);
            let pem = std::fs::read(path)
                .map_err(|e| Failure::io(&format!("read {SYSTEM_ROOTS}"), &e))?;
            (pem, path.to_path_buf())
        }
    };
    let roots = roots_from_pem(&pem)
        .map_err(|e| Failure::temp(format!("unable to load {}: {e}", from.display())))?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::temp(format!("unable to set up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Every certificate of a PEM bundle as a trust anchor; at least one.
pub fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad PEM certificate: {e:?}"))?;
    let mut roots = RootCertStore::empty();
    let (good, _bad) = roots.add_parsable_certificates(certs);
    if good == 0 {
        return Err("no usable certificate".into());
    }
    Ok(roots)
}

/// The name the certificate must carry (and the SNI we send): a host name,
/// or an IP address for a hop given by address.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Some(ip) = rgcore::ip::parse(bare) {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_string()).map_err(|_| format!("bad TLS server name {host}"))
}

/// Run the TLS handshake on `tcp` to the end; errors are one line.
pub fn handshake(
    mut tcp: TcpStream,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
) -> Result<TlsStream, String> {
    let mut conn =
        ClientConnection::new(config, name).map_err(|e| format!("TLS setup failed: {e}"))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(describe)?;
    }
    Ok(StreamOwned::new(conn, tcp))
}

fn describe(e: io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "TLS handshake timed out".into(),
        io::ErrorKind::UnexpectedEof => "TLS handshake failed: connection closed".into(),
        _ => format!("TLS handshake failed: {}", rgcore::diag::describe_io(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("[2001:db8::1]"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("mx.example.org"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(server_name("bad name").is_err());
    }

    #[test]
    fn roots_need_a_certificate() {
        assert!(roots_from_pem(b"").is_err());
        assert!(roots_from_pem(b"garbage\n").is_err());
    }

    #[test]
    fn opportunistic_builds() {
        assert!(opportunistic().is_ok());
    }
}
