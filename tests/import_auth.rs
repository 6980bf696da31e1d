//! Imports authenticated through Entra ID as the emulator plays it: client
//! secret and certificate credentials, a managed identity, tokens expiring
//! and keys rotating mid-run, a missing role; and secrets that never leak.

mod common;

use acgbulk::emulator::auth::Client;
use acgbulk::emulator::{EmulatorConfig, SeedSource, TlsSource};
use common::{Run, Server};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const SECRET: &str = "s3cret-Value-never-to-be-printed";

/// A CA and a server certificate for 127.0.0.1, as PEM files.
fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

fn config(dir: &Path, clients: Vec<Client>) -> EmulatorConfig {
    let (_, cert, key) = if dir.join("ca.pem").exists() {
        (
            dir.join("ca.pem"),
            dir.join("server.pem"),
            dir.join("server.key"),
        )
    } else {
        tls_files(dir)
    };
    EmulatorConfig {
        rate_limit: None,
        seed: SeedSource::Demo,
        clients: Some(clients),
        tls: Some(TlsSource::Files { cert, key }),
        ..EmulatorConfig::default()
    }
}

fn sheet(dir: &Path, rows: u64) -> PathBuf {
    let path = dir.join("numbers.csv");
    let mut csv =
        String::from("telephoneNumber,accountName,serviceDetails_teamsDirectRouting_enabled\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "+1425{:07},{},true\n",
            2_000_000 + i,
            ["contoso", "fabrikam"][i as usize % 2]
        ));
    }
    std::fs::write(&path, csv).unwrap();
    path
}

/// Runs `acgbulk ARGS` with exactly the environment `env` adds.
fn run_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(common::bin());
    command.args(args).current_dir(dir).stdin(Stdio::null());
    for name in [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
        "AZURE_AUTHORITY_HOST",
        "ACG_TOKEN",
        "ACG_ENDPOINT",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "MSI_ENDPOINT",
        "RUST_LOG",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap().into()
}

/// The certificate of the client `loader` and its RSA key, made for the
/// test (no system OpenSSL): the certificate alone (what the emulator
/// registers) and certificate + key in one PEM (what the client reads).
struct LoaderCertificate {
    cert_only: PathBuf,
    with_key: PathBuf,
    cert_der: Vec<u8>,
    key_pkcs8: Vec<u8>,
}

fn loader_certificate(dir: &Path) -> LoaderCertificate {
    use rcgen::{CertificateParams, DnType, KeyPair, PKCS_RSA_SHA256};
    let key = KeyPair::generate_for(&PKCS_RSA_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "acgbulk-loader");
    let cert = params.self_signed(&key).unwrap();
    let cert_only = dir.join("loader.crt");
    std::fs::write(&cert_only, cert.pem()).unwrap();
    let with_key = dir.join("loader.pem");
    std::fs::write(&with_key, format!("{}{}", cert.pem(), key.serialize_pem())).unwrap();
    LoaderCertificate {
        cert_only,
        with_key,
        cert_der: cert.der().to_vec(),
        key_pkcs8: key.serialize_der(),
    }
}

/// A PKCS#12 file of the certificate and key as AWS-LC writes it (3DES
/// for the key, RC2 for the certificate, as Windows and Key Vault exports
/// long did).
fn pkcs12(loader: &LoaderCertificate, password: &str) -> Vec<u8> {
    use aws_lc_sys as ffi;
    use std::ffi::CString;
    use std::ptr;
    let password = CString::new(password).unwrap();
    let name = CString::new("acgbulk-loader").unwrap();
    // SAFETY: each pointer comes from AWS-LC and is freed once, after use;
    // the inputs are live slices of the lengths given.
    unsafe {
        let mut input = loader.key_pkcs8.as_ptr();
        let key = ffi::d2i_AutoPrivateKey(ptr::null_mut(), &mut input, loader.key_pkcs8.len() as _);
        let mut input = loader.cert_der.as_ptr();
        let cert = ffi::d2i_X509(ptr::null_mut(), &mut input, loader.cert_der.len() as _);
        assert!(!key.is_null() && !cert.is_null());
        let p12 = ffi::PKCS12_create(
            password.as_ptr(),
            name.as_ptr(),
            key,
            cert,
            ptr::null(),
            0,
            0,
            0,
            0,
            0,
        );
        assert!(!p12.is_null(), "PKCS12_create");
        let mut out = ptr::null_mut();
        let len = ffi::i2d_PKCS12(p12, &mut out);
        assert!(len > 0);
        let der = std::slice::from_raw_parts(out, len as usize).to_vec();
        ffi::OPENSSL_free(out.cast());
        ffi::PKCS12_free(p12);
        ffi::X509_free(cert);
        ffi::EVP_PKEY_free(key);
        der
    }
}

fn secret_env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AZURE_TENANT_ID", "contoso-tenant".to_owned()),
        ("AZURE_CLIENT_ID", "loader".to_owned()),
        ("AZURE_CLIENT_SECRET", SECRET.to_owned()),
        ("AZURE_AUTHORITY_HOST", url.to_owned()),
    ]
}

fn borrow<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn client_secret_over_tls_survives_expiring_tokens_and_never_leaks() {
    let dir = common::tempdir();
    let server = Server::start(EmulatorConfig {
        token_lifetime: Duration::from_secs(2),
        ..config(
            dir.path(),
            vec![Client::parse_secret(&format!("loader:{SECRET}:Read,Write")).unwrap()],
        )
    });
    let input = sheet(dir.path(), 2_500);
    let url = server.url();
    let ca = dir.path().join("ca.pem");
    let env = secret_env(&url);
    // 25 batches at 500 a minute: three seconds, past the tokens' lifetime.
    let run = run_env(
        dir.path(),
        &[
            "import",
            input.to_str().unwrap(),
            "--endpoint",
            &url,
            "--ca-cert",
            ca.to_str().unwrap(),
            "--rate-limit",
            "500/min",
            "-vv",
            // Kept to look inside: it holds the run's settings, not its secret.
            "--keep-checkpoint",
        ],
        &borrow(&env),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let stats = server.stats();
    assert!(
        stats.counters.tokens_issued >= 2,
        "tokens were renewed: {stats:?}"
    );
    assert_eq!(
        stats.counters.unauthorized, 0,
        "renewed before they expired"
    );
    assert_eq!(server.numbers().len(), 2_500);
    // The secret is nowhere: output, logs, checkpoint, results.
    assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET));
    for file in [
        "numbers.results.csv",
        "numbers.results.csv.checkpoint",
        "numbers.report.csv",
    ] {
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        assert!(!text.contains(SECRET), "{file} holds the secret");
        assert!(!text.contains("eyJ"), "{file} holds a token");
    }
    // TLS is verified: without the CA, the token endpoint (the same server
    // here) is refused, a configuration error.
    let started = std::time::Instant::now();
    let run = run_env(
        dir.path(),
        &[
            "import",
            input.to_str().unwrap(),
            "--endpoint",
            &url,
            "--results",
            "no-ca.csv",
            "--max-attempts",
            "1",
        ],
        &borrow(&env),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("UnknownIssuer") || run.stderr.contains("certificate"),
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "no minute of retrying a TLS error"
    );
    // Without authentication at all, the API's own TLS check refuses it,
    // at the check before the first request: one line, nothing is sent.
    let run = run_env(
        dir.path(),
        &[
            "import",
            input.to_str().unwrap(),
            "--endpoint",
            &url,
            "--results",
            "no-ca2.csv",
            "--max-attempts",
            "1",
            "--auth",
            "none",
        ],
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("nothing was sent")
            && run.stderr.contains("UnknownIssuer")
            && run.stderr.trim().lines().count() == 1,
        "{}",
        run.stderr
    );
    assert!(!dir.path().join("no-ca2.csv.checkpoint").exists());
}

#[test]
fn a_rotated_key_gets_one_fresh_token_and_the_run_goes_on() {
    let dir = common::tempdir();
    let state = dir.path().join("emulator.json");
    let clients = vec![Client::parse_secret(&format!("loader:{SECRET}:Admin")).unwrap()];
    let server = Server::start(EmulatorConfig {
        state: Some(state.clone()),
        ..config(dir.path(), clients.clone())
    });
    let addr = server.addr();
    let url = server.url();
    let input = sheet(dir.path(), 3_000);
    let ca = dir.path().join("ca.pem");
    let mut child = Command::new(common::bin())
        .args([
            "import",
            input.to_str().unwrap(),
            "--endpoint",
            &url,
            "--ca-cert",
            ca.to_str().unwrap(),
            "--rate-limit",
            "600/min",
        ])
        .args([
            "--retry-backoff",
            "50ms",
            "--max-backoff",
            "300ms",
            "--max-attempts",
            "30",
        ])
        .envs(secret_env(&url))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the client holds a token (a write went through), restart. A
    // fixed sleep raced a slow start on a busy machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while server.stats().counters.writes_applied == 0 {
        assert!(std::time::Instant::now() < deadline, "no write arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    // A restart signs with a new key: the token the client holds no longer
    // verifies, though it has not expired.
    server.stop();
    let server = Server::start(EmulatorConfig {
        listen: addr,
        state: Some(state),
        ..config(dir.path(), clients)
    });
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    let stats = server.stats();
    assert!(
        stats.counters.unauthorized >= 1,
        "the old token was refused: {stats:?}"
    );
    assert!(
        stats.counters.tokens_issued >= 1,
        "and a fresh one obtained"
    );
    assert_eq!(server.numbers().len(), 3_000);
    assert_eq!(stats.max_writes_per_number, 1);
}

#[test]
fn a_missing_role_fails_the_run_with_a_clear_message() {
    let dir = common::tempdir();
    let server = Server::start(config(
        dir.path(),
        vec![Client::parse_secret(&format!("loader:{SECRET}:Read")).unwrap()],
    ));
    let input = sheet(dir.path(), 300);
    let url = server.url();
    let ca = dir.path().join("ca.pem");
    let env = secret_env(&url);
    let run = run_env(
        dir.path(),
        &[
            "import",
            input.to_str().unwrap(),
            "--endpoint",
            &url,
            "--ca-cert",
            ca.to_str().unwrap(),
            "--rate-limit",
            "off",
        ],
        &borrow(&env),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("ProvisioningAPI.Write"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("acgbulk resume"), "{}", run.stderr);
    assert!(server.numbers().is_empty());
    // A wrong secret: refused at the token endpoint.
    let mut env = secret_env(&url);
    env[2].1 = "wrong".to_owned();
    let run = run_env(
        dir.path(),
        &[
            "import",
            input.to_str().unwrap(),
            "--endpoint",
            &url,
            "--ca-cert",
            ca.to_str().unwrap(),
            "--restart",
        ],
        &borrow(&env),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("Invalid client secret"),
        "{}",
        run.stderr
    );
    // A token given as is, that the service refuses, even after one retry.
    std::fs::write(dir.path().join("token"), "not-a-token\n").unwrap();
    let run = run_env(
        dir.path(),
        &[
            "import",
            input.to_str().unwrap(),
            "--endpoint",
            &url,
            "--ca-cert",
            ca.to_str().unwrap(),
            "--token-file",
            "token",
            "--restart",
        ],
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("refused the credentials twice"),
        "{}",
        run.stderr
    );
    // There is no flag that takes a secret.
    let run = run_env(
        dir.path(),
        &["import", "x.csv", "--client-secret", SECRET],
        &[],
    );
    assert_eq!(run.code, 2);
}

#[test]
fn certificate_credentials_sign_their_assertion() {
    let dir = common::tempdir();
    let loader = loader_certificate(dir.path());
    let server = Server::start(config(
        dir.path(),
        vec![Client::parse_certificate(&format!(
            "loader:{}:Write,Read",
            loader.cert_only.display()
        ))
        .unwrap()],
    ));
    let url = server.url();
    let input = sheet(dir.path(), 200);
    let ca = dir.path().join("ca.pem");
    let import = |certificate: &Path, extra: &[(&str, &str)]| {
        let mut env = vec![
            ("AZURE_TENANT_ID", "contoso-tenant"),
            ("AZURE_CLIENT_ID", "loader"),
            (
                "AZURE_CLIENT_CERTIFICATE_PATH",
                certificate.to_str().unwrap(),
            ),
            ("AZURE_AUTHORITY_HOST", url.as_str()),
        ];
        env.extend_from_slice(extra);
        run_env(
            dir.path(),
            &[
                "import",
                input.to_str().unwrap(),
                "--endpoint",
                &url,
                "--ca-cert",
                ca.to_str().unwrap(),
                "--rate-limit",
                "off",
                "--restart",
            ],
            &env,
        )
    };
    let run = import(&loader.with_key, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.numbers().len(), 200);
    let tokens = server.stats().counters.tokens_issued;
    assert!(tokens >= 1);

    // The same certificate and key from a PKCS#12 file, with the chain sent.
    let password = "pfx-Password-1";
    let pfx = dir.path().join("loader.pfx");
    std::fs::write(&pfx, pkcs12(&loader, password)).unwrap();
    let run = import(
        &pfx,
        &[
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", password),
            ("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "true"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains(password), "{}", run.stderr);
    assert!(server.stats().counters.tokens_issued > tokens);
}

#[test]
fn unusable_certificates_are_refused_before_any_request() {
    let dir = common::tempdir();
    let loader = loader_certificate(dir.path());
    let other = {
        let other_dir = dir.path().join("other");
        std::fs::create_dir(&other_dir).unwrap();
        loader_certificate(&other_dir)
    };
    let mismatched = dir.path().join("mismatched.pem");
    std::fs::write(
        &mismatched,
        [
            std::fs::read(&loader.cert_only).unwrap(),
            std::fs::read_to_string(&other.with_key)
                .unwrap()
                .split_once("-----BEGIN PRIVATE KEY-----")
                .map(|(_, key)| format!("-----BEGIN PRIVATE KEY-----{key}"))
                .unwrap()
                .into_bytes(),
        ]
        .concat(),
    )
    .unwrap();
    let pfx = dir.path().join("loader.pfx");
    std::fs::write(&pfx, pkcs12(&loader, "right")).unwrap();
    let input = sheet(dir.path(), 5);
    let missing = dir.path().join("missing.pem");
    let cases: [(&Path, Option<&str>, &str); 4] = [
        (&missing, None, "cannot read the certificate"),
        (&loader.cert_only, None, "no PEM private key"),
        (
            &mismatched,
            None,
            "the private key is not the certificate's",
        ),
        (&pfx, Some("wrong"), "cannot open it as PKCS#12"),
    ];
    for (certificate, password, expected) in cases {
        let mut env = vec![
            ("AZURE_TENANT_ID", "contoso-tenant"),
            ("AZURE_CLIENT_ID", "loader"),
            (
                "AZURE_CLIENT_CERTIFICATE_PATH",
                certificate.to_str().unwrap(),
            ),
        ];
        if let Some(password) = password {
            env.push(("AZURE_CLIENT_CERTIFICATE_PASSWORD", password));
        }
        // Nothing listens there: the run must stop on the certificate.
        let run = run_env(
            dir.path(),
            &[
                "import",
                input.to_str().unwrap(),
                "--endpoint",
                "https://127.0.0.1:9",
            ],
            &env,
        );
        assert_eq!(run.code, 2, "{expected}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{expected}: {}", run.stderr);
        assert!(
            run.stderr.contains(&certificate.display().to_string()),
            "names the file: {}",
            run.stderr
        );
    }
}

#[test]
fn managed_identity_gets_its_token_from_the_identity_endpoint() {
    let dir = common::tempdir();
    let server = Server::start(EmulatorConfig {
        managed_identity: Some(
            Client::parse_managed_identity("identity-header-value:Admin").unwrap(),
        ),
        ..config(dir.path(), Vec::new())
    });
    let url = server.url();
    let input = sheet(dir.path(), 150);
    let ca = dir.path().join("ca.pem");
    let endpoint = format!("{url}/msi/token");
    let run = run_env(
        dir.path(),
        &[
            "import",
            input.to_str().unwrap(),
            "--endpoint",
            &url,
            "--ca-cert",
            ca.to_str().unwrap(),
            "--rate-limit",
            "off",
            "--auth",
            "managed-identity",
        ],
        &[
            ("IDENTITY_ENDPOINT", &endpoint),
            ("IDENTITY_HEADER", "identity-header-value"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.numbers().len(), 150);
}
