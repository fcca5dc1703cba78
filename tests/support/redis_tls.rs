//! A private `redis-server` speaking TLS, with a CA, a server certificate
//! (for `127.0.0.1` and `localhost`) and a client certificate generated
//! at test time with the `openssl` command, plus an unrelated CA to show
//! that a wrong one is refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::redis_proc::{RedisProcess, private_dir, require};
use super::redis_server::free_port;

/// Certificates generated for one test, in a private directory removed
/// when dropped.
pub struct TestCerts {
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub dir: PathBuf,
}

impl TestCerts {
    /// A CA, a server certificate for `127.0.0.1` and `localhost` and a
    /// client certificate signed by it, and an unrelated CA.
    pub fn generate() -> Self {
        require("openssl", "openssl");
        let dir = private_dir("tls");
        let ca = make_ca(&dir, "ca");
        let other_ca = make_ca(&dir, "other-ca");
        let (server_cert, server_key) =
            make_leaf(&dir, "server", "subjectAltName=IP:127.0.0.1,DNS:localhost");
        let (client_cert, client_key) = make_leaf(&dir, "client", "extendedKeyUsage=clientAuth");
        TestCerts {
            ca,
            other_ca,
            server_cert,
            server_key,
            client_cert,
            client_key,
            dir,
        }
    }

    /// `redis-server` arguments for a TLS port with these certificates.
    pub fn server_args(&self, tls_port: u16, require_client_cert: bool) -> Vec<String> {
        vec![
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            self.server_cert.display().to_string(),
            "--tls-key-file".into(),
            self.server_key.display().to_string(),
            "--tls-ca-cert-file".into(),
            self.ca.display().to_string(),
            "--tls-auth-clients".into(),
            if require_client_cert { "yes" } else { "no" }.into(),
        ]
    }
}

impl Drop for TestCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct RedisTls {
    pub server: RedisProcess,
    /// The TLS port (`server.port` is the plain one, kept for `redis-cli`).
    pub tls_port: u16,
    pub certs: TestCerts,
}

impl RedisTls {
    /// Starts a server with a TLS port; `require_client_cert` makes it ask
    /// clients for a certificate signed by the CA.
    pub fn start(require_client_cert: bool) -> Self {
        let certs = TestCerts::generate();
        let tls_port = free_port();
        let mut extra: Vec<String> = vec![
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
        ];
        extra.extend(certs.server_args(tls_port, require_client_cert));
        let server = RedisProcess::start(&certs.dir, None, &extra);
        RedisTls {
            server,
            tls_port,
            certs,
        }
    }

    /// `rediss://127.0.0.1:<tls port>/?ca_file=<ca>`.
    pub fn url_with_ca(&self, ca: &Path) -> String {
        format!(
            "rediss://127.0.0.1:{}/?ca_file={}",
            self.tls_port,
            ca.display()
        )
    }

    /// The URL with the CA and the client certificate and key.
    pub fn url_with_client_cert(&self) -> String {
        format!(
            "{}&cert_file={}&key_file={}",
            self.url_with_ca(&self.certs.ca),
            self.certs.client_cert.display(),
            self.certs.client_key.display()
        )
    }
}

impl Drop for RedisTls {
    fn drop(&mut self) {
        self.server.kill();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("runs openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA: `<name>.crt` and `<name>.key`.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            &format!("/CN=steadfast {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    dir.join(crt)
}

/// A certificate signed by `ca`, with the extension line `ext`.
fn make_leaf(dir: &Path, name: &str, ext: &str) -> (PathBuf, PathBuf) {
    let (crt, key, csr, extfile) = (
        format!("{name}.crt"),
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&extfile), format!("{ext}\n")).expect("writes the extension file");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN=steadfast {name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &extfile,
        ],
    );
    (dir.join(crt), dir.join(key))
}
