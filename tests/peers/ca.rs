//! A test certificate authority made with openssl: one CA per test, and
//! server certificates it signs for the peers (Postfix's STARTTLS) and
//! for relaygate's own servers. ECDSA P-256 keys: quick to make, and
//! rustls, Postfix and swaks all take them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A CA: its key and self-signed certificate in a directory of its own.
pub struct TestCa {
    dir: PathBuf,
    key: PathBuf,
    cert: PathBuf,
}

/// A server certificate the CA issued.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert: PathBuf,
    /// Its private key, PEM (mode 0600).
    pub key: PathBuf,
    /// Certificate then key in one file: relaygate's `servercert.pem`.
    pub chain_and_key: PathBuf,
}

impl TestCa {
    /// Make a CA below `dir` (created if missing): `dir/ca.key`, `dir/ca.pem`.
    pub fn new(dir: &Path) -> TestCa {
        fs::create_dir_all(dir).expect("create CA dir");
        let (key, cert) = (dir.join("ca.key"), dir.join("ca.pem"));
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key.display().to_string(),
            "-out",
            &cert.display().to_string(),
            "-days",
            "30",
            "-subj",
            "/CN=relaygate test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        TestCa {
            dir: dir.to_path_buf(),
            key,
            cert,
        }
    }

    /// The CA certificate (PEM): what a client trusts, e.g. relaygate's
    /// `CONTROLDIR/remotecas.pem` or swaks's `--tls-ca-path`.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// Issue a server certificate for DNS name `name` (subject CN and SAN)
    /// and the IP addresses `ips` (IP SANs). Files `dir/NAME.pem`,
    /// `NAME.key` and `NAME.chain+key.pem`; issuing the same name again
    /// replaces them.
    pub fn issue(&self, name: &str, ips: &[&str]) -> Issued {
        let base = self.dir.join(name);
        let with = |ext: &str| PathBuf::from(format!("{}{ext}", base.display()));
        let (key, csr, cert, ext) = (with(".key"), with(".csr"), with(".pem"), with(".ext"));
        let mut san = format!("DNS:{name}");
        for ip in ips {
            san.push_str(&format!(",IP:{ip}"));
        }
        fs::write(
            &ext,
            format!(
                "subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n\
                 keyUsage=critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage=serverAuth\n"
            ),
        )
        .expect("write extensions");
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key.display().to_string(),
            "-out",
            &csr.display().to_string(),
            "-subj",
            &format!("/CN={name}"),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &csr.display().to_string(),
            "-CA",
            &self.cert.display().to_string(),
            "-CAkey",
            &self.key.display().to_string(),
            "-set_serial",
            &serial(),
            "-days",
            "30",
            "-extfile",
            &ext.display().to_string(),
            "-out",
            &cert.display().to_string(),
        ]);
        let chain_and_key = with(".chain+key.pem");
        let mut both = fs::read(&cert).expect("read issued cert");
        both.extend(fs::read(&key).expect("read issued key"));
        fs::write(&chain_and_key, both).expect("write chain and key");
        Issued {
            cert,
            key,
            chain_and_key,
        }
    }
}

/// A serial number unlikely to repeat within one CA (time and a counter).
fn serial() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!("{}", (t >> 4) + N.fetch_add(1, Ordering::SeqCst))
}

/// Run openssl, panicking with its output when it fails.
fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {} failed: {}",
        args.first().unwrap_or(&""),
        String::from_utf8_lossy(&out.stderr)
    );
}
