//! Microsoft's published Python libraries (`azure-communication-phonenumbers`,
//! `azure-identity`, MSAL), unmodified, against the real `acgbulk emulator`
//! binary over TLS: searches and a purchase with an access key and with an
//! Entra token, a wrong key refused, and tokens from client secrets,
//! certificates (RS256/x5t and PS256/x5t#S256) and a managed identity that
//! work on the Provisioning API. The checks themselves are in
//! `tests/azure_sdk/check_emulator.py`.
//!
//! The libraries go into a virtual environment under `target/` (made once,
//! again when `requirements.txt` changes). Without python3, its venv module
//! or PyPI the test says so and passes, unless `ACGBULK_REQUIRE_AZURE_SDK=1`
//! (set in CI), which makes that a failure.

mod common;

use rcgen::{CertificateParams, DnType, KeyPair, PKCS_RSA_SHA256};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SECRET_CLIENT: &str = "sdk-secret-client";
const SECRET: &str = "emulator-test-secret";
const CERT_CLIENT: &str = "sdk-certificate-client";
const IDENTITY_HEADER: &str = "emulator-identity-header";
/// base64 of 32 bytes: the emulator's test access key.
const ACCESS_KEY: &str = "ZW11bGF0b3ItdGVzdC1hY2Nlc3Mta2V5LTMyLWJ5dGU=";

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/` of this build (the binary is in `target/debug/`).
fn target_dir() -> PathBuf {
    common::bin()
        .parent()
        .and_then(Path::parent)
        .map(Path::to_owned)
        .unwrap_or_else(|| manifest().join("target"))
}

/// Ends the test: a skip is a pass with a message, unless CI requires the
/// libraries to be there.
fn unavailable(why: &str) {
    if std::env::var("ACGBULK_REQUIRE_AZURE_SDK").as_deref() == Ok("1") {
        panic!("the Azure SDK test cannot run: {why}");
    }
    eprintln!("SKIPPED azure_sdk: {why}");
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The venv's python, made and filled if needed; `Err` says why it cannot be.
fn venv() -> Result<PathBuf, String> {
    let requirements = manifest().join("tests/azure_sdk/requirements.txt");
    let wanted = hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        &std::fs::read(&requirements).expect("requirements.txt"),
    ));
    let dir = target_dir().join("azure-sdk-venv");
    let python = dir.join("bin/python");
    let stamp = dir.join("acgbulk-requirements.sha256");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        return Ok(python);
    }
    let system = match Command::new("python3").arg("--version").output() {
        Ok(output) if output.status.success() => "python3",
        _ => return Err("python3 is not installed".into()),
    };
    let made = Command::new(system)
        .args(["-m", "venv", "--clear"])
        .arg(&dir)
        .output()
        .map_err(|e| format!("python3 -m venv: {e}"))?;
    if !made.status.success() {
        return Err(format!(
            "python3 has no working venv module: {}",
            text(&made)
        ));
    }
    let installed = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements)
        .output()
        .map_err(|e| format!("pip: {e}"))?;
    if !installed.status.success() {
        let output = text(&installed);
        let offline = [
            "NewConnectionError",
            "Max retries exceeded",
            "Temporary failure in name resolution",
            "Network is unreachable",
            "ConnectTimeoutError",
            "No matching distribution found",
        ]
        .iter()
        .any(|sign| output.contains(sign));
        if offline {
            return Err(format!("PyPI is not reachable: {output}"));
        }
        panic!("pip install -r tests/azure_sdk/requirements.txt failed:\n{output}");
    }
    std::fs::write(&stamp, wanted).expect("the venv stamp is written");
    Ok(python)
}

/// An RSA key and a certificate for it, as the certificate client's.
fn client_certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let key = KeyPair::generate_for(&PKCS_RSA_SHA256).expect("an RSA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "acgbulk SDK test client");
    let cert = params.self_signed(&key).expect("a certificate");
    let key_pem = dir.join("client.key.pem");
    let cert_pem = dir.join("client.cert.pem");
    let both = dir.join("client.pem");
    std::fs::write(&key_pem, key.serialize_pem()).unwrap();
    std::fs::write(&cert_pem, cert.pem()).unwrap();
    std::fs::write(&both, format!("{}{}", key.serialize_pem(), cert.pem())).unwrap();
    (key_pem, cert_pem, both)
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

#[test]
fn microsoft_client_libraries_work_against_the_emulator() {
    let python = match venv() {
        Ok(python) => python,
        Err(why) => return unavailable(&why),
    };
    let dir = common::tempdir();
    let (key_pem, cert_pem, both) = client_certificate(dir.path());
    let ca = dir.path().join("ca.pem");
    let key_file = dir.path().join("access.key");
    std::fs::write(&key_file, ACCESS_KEY).unwrap();
    let mut child = Command::new(common::bin())
        .args(["emulator", "--listen", "127.0.0.1:0", "--rate-limit", "off"])
        .arg("--tls-self-signed")
        .arg(&ca)
        .args(["--auth", "entra"])
        .args(["--client", &format!("{SECRET_CLIENT}:{SECRET}:Admin")])
        .arg("--client-certificate")
        .arg(format!("{CERT_CLIENT}:{}:Read", cert_pem.display()))
        .args(["--managed-identity", &format!("{IDENTITY_HEADER}:Read")])
        .arg("--acs-access-key-file")
        .arg(&key_file)
        .args(["--acs-operation-delay", "300ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the emulator starts");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let emulator = Running(child);
    let endpoint = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line was {line:?}"))
        .to_owned();
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");

    let started = Instant::now();
    let mut script = Command::new(&python)
        .arg(manifest().join("tests/azure_sdk/check_emulator.py"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("EMULATOR_ENDPOINT", &endpoint)
        .env("EMULATOR_TENANT", TENANT)
        .env("EMULATOR_ACCESS_KEY", ACCESS_KEY)
        .env("SECRET_CLIENT_ID", SECRET_CLIENT)
        .env("SECRET_CLIENT_SECRET", SECRET)
        .env("CERT_CLIENT_ID", CERT_CLIENT)
        .env("CERT_KEY_AND_CERT_PEM", &both)
        .env("CERT_KEY_PEM", &key_pem)
        .env("CERT_PEM", &cert_pem)
        .env(
            "PROVISIONING_SCOPE",
            format!("{}/.default", acgbulk::emulator::auth::DEFAULT_AUDIENCE),
        )
        .env("IDENTITY_ENDPOINT", format!("{endpoint}/msi/token"))
        .env("IDENTITY_HEADER", IDENTITY_HEADER)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("SSL_CERT_FILE", &ca)
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the script runs");
    let deadline = started + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = script.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = script.kill();
            break script.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    let mut err = String::new();
    script
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    script
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    drop(emulator);
    println!("{out}");
    assert!(
        status.success(),
        "the SDK checks failed ({status}) after {:?}:\n{out}\n{err}",
        started.elapsed()
    );
    for expected in [
        "toll-free search found",
        "geographic search in 425",
        "purchase of search",
        "a wrong access key gets 401",
        "ClientSecretCredential got a token",
        "Entra token: toll-free search",
        "CertificateCredential (RS256, x5t",
        "a PS256 assertion with x5t#S256",
        "ManagedIdentityCredential (App Service) got a token",
        "all checks passed",
    ] {
        assert!(out.contains(expected), "'{expected}' missing from:\n{out}");
    }
}
