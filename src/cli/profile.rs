//! Named profiles: `[profiles.NAME]` tables in a TOML config file whose
//! keys are the connection flags' names in snake_case. A profile is one
//! more layer under the flags and the environment (and, for `resume`, under
//! the checkpoint's kept settings), applied with the same
//! [`flags::resolve`] step as a resume's kept settings.
//!
//! Secrets are refused in the file: they stay in the environment, a file
//! given by a `--*-file` flag, or a credential source.

use super::flags::{self, parse_rate, AuthMode};
use acgbulk::runner::Settings;
use anyhow::{bail, Context};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The keys a profile may hold: the connection settings and the page size.
pub const KEYS: [&str; 10] = [
    "endpoint",
    "auth",
    "tenant_id",
    "client_id",
    "scope",
    "authority_host",
    "certificate_path",
    "ca_cert",
    "rate_limit",
    "page_size",
];

/// One profile read from a config file.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub file: PathBuf,
    /// Its values, as `flags::settings_of` would give them.
    pub settings: Settings,
}

/// The config file used when `--config` (and `ACGBULK_CONFIG`) is not given.
pub fn default_config() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if cfg!(windows) {
        if let Some(appdata) = non_empty("APPDATA") {
            return Some(PathBuf::from(appdata).join("acgbulk").join("config.toml"));
        }
    }
    if let Some(xdg) = non_empty("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(xdg).join("acgbulk").join("config.toml"));
    }
    non_empty("HOME").map(|home| {
        PathBuf::from(home)
            .join(".config")
            .join("acgbulk")
            .join("config.toml")
    })
}

/// The profile `name` from `config` (or the default file). No name: no
/// profile, and the file is not read.
pub fn load(name: Option<&str>, config: Option<&Path>) -> anyhow::Result<Option<Profile>> {
    let Some(name) = name else { return Ok(None) };
    let file = match config {
        Some(file) => file.to_owned(),
        None => default_config().context(
            "--profile needs a config file: give --config FILE (no HOME to find the default)",
        )?,
    };
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "cannot read the config file {} for --profile {name}",
            file.display()
        )
    })?;
    let profiles = parse(&text, &file)?;
    match profiles.into_iter().find(|(found, _)| found == name) {
        Some((name, settings)) => Ok(Some(Profile {
            name,
            file,
            settings,
        })),
        None => bail!(
            "{}: there is no profile '{name}' (the profiles there: {})",
            file.display(),
            known_names(&text, &file)
        ),
    }
}

fn known_names(text: &str, file: &Path) -> String {
    let names: Vec<String> = parse(text, file)
        .map(|all| all.into_iter().map(|(name, _)| name).collect())
        .unwrap_or_default();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Every profile in a config file's `text`, checked: no secret, no
/// unknown key, no bad value (the error names the file, profile and key,
/// and never echoes a value).
pub fn parse(text: &str, file: &Path) -> anyhow::Result<Vec<(String, Settings)>> {
    let shown = file.display();
    let document: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        // The message only: toml's own rendering quotes the line, which
        // could hold a secret.
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
        match line {
            Some(line) => anyhow::anyhow!(
                "{shown}: line {line}: not valid TOML: {}",
                e.message().trim()
            ),
            None => anyhow::anyhow!("{shown}: not valid TOML: {}", e.message().trim()),
        }
    })?;
    let mut profiles = Vec::new();
    for (key, value) in &document {
        if key != "profiles" {
            bail!("{shown}: unknown key '{key}' (the file holds [profiles.NAME] tables)");
        }
        let Some(tables) = value.as_table() else {
            bail!("{shown}: 'profiles' must hold [profiles.NAME] tables");
        };
        for (name, table) in tables {
            let Some(table) = table.as_table() else {
                bail!("{shown}: profile '{name}' must be a table, [profiles.{name}]");
            };
            let mut settings = Settings::new();
            for (key, value) in table {
                if let Some(why) = secret(key, value) {
                    bail!(
                        "{shown}: profile '{name}', key '{key}': {why}; a secret is never read \
                         from the config file: keep it in the environment (AZURE_CLIENT_SECRET, \
                         ACG_TOKEN, AZURE_CLIENT_CERTIFICATE_PASSWORD), a file (--client-secret-file, \
                         --token-file) or a credential source"
                    );
                }
                let converted = convert(key, value).map_err(|expected| {
                    anyhow::anyhow!("{shown}: profile '{name}', key '{key}': {expected}")
                })?;
                settings.insert(key.clone(), converted);
            }
            profiles.push((name.clone(), settings));
        }
    }
    Ok(profiles)
}

/// Why `key = value` is a secret, if it is.
fn secret(key: &str, value: &toml::Value) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    // A `*_file` key names where a secret is, not the secret (and is not a
    // profile key either: it is refused as unknown).
    let names_a_secret =
        (lower.contains("secret") || lower.contains("password")) && !lower.ends_with("_file");
    if ["client_secret", "token", "access_key", "password"].contains(&lower.as_str())
        || names_a_secret
    {
        return Some("this is a secret");
    }
    let holds_key = |v: &toml::Value| {
        v.as_str().is_some_and(|s| {
            let s = s.to_ascii_lowercase();
            s.contains("accesskey=") || s.contains("sharedaccesskey=")
        })
    };
    let any_key = match value {
        toml::Value::Array(items) => items.iter().any(holds_key),
        other => holds_key(other),
    };
    any_key.then_some("the value holds an access key (a connection string with a key)")
}

/// A profile's value as the flag group's settings hold it, or what was
/// expected.
fn convert(key: &str, value: &toml::Value) -> Result<Value, String> {
    let text = || {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "expected a string".to_owned())
    };
    match key {
        "endpoint" => {
            let endpoint = text()?;
            url::Url::parse(&endpoint)
                .map_err(|e| format!("expected a URL such as https://provapi.example.com ({e})"))?;
            Ok(Value::String(endpoint))
        }
        "auth" => {
            let mode = text()?;
            <AuthMode as clap::ValueEnum>::from_str(&mode, true).map_err(|_| {
                "expected one of auto, none, token, secret, certificate, managed-identity"
                    .to_owned()
            })?;
            Ok(Value::String(mode.to_ascii_lowercase()))
        }
        "tenant_id" | "client_id" | "scope" | "authority_host" | "certificate_path" => {
            Ok(Value::String(text()?))
        }
        "ca_cert" => match value {
            toml::Value::String(path) => Ok(Value::Array(vec![path.clone().into()])),
            toml::Value::Array(items) => items
                .iter()
                .map(|item| item.as_str().map(Value::from))
                .collect::<Option<Vec<_>>>()
                .map(Value::Array)
                .ok_or_else(|| "expected a file name or a list of file names".to_owned()),
            _ => Err("expected a file name or a list of file names".to_owned()),
        },
        "rate_limit" => {
            let rate = match value {
                toml::Value::Integer(n) => parse_rate(&n.to_string()),
                toml::Value::String(rate) => parse_rate(rate),
                _ => Err("expected N/min (for example \"100/min\") or \"off\"".to_owned()),
            }?;
            Ok(serde_json::to_value(rate).expect("a rate is JSON"))
        }
        "page_size" => match value.as_integer() {
            Some(n) if n >= 1 => Ok(Value::from(n)),
            _ => Err("expected a whole number of at least 1".to_owned()),
        },
        _ => Err(format!(
            "unknown key: a profile may hold {}",
            KEYS.join(", ")
        )),
    }
}

/// The profile of this run and the leaf command's matches (which say
/// which flags were given), set once by `main`.
struct Active {
    profile: Option<Profile>,
    matches: clap::ArgMatches,
    /// Set by a resume, whose checkpoint's settings already went over the
    /// profile's: the profile is not applied again.
    used: AtomicBool,
}

static ACTIVE: OnceLock<Active> = OnceLock::new();

/// Called once by `main` before the command runs.
pub fn install(profile: Option<Profile>, matches: clap::ArgMatches) {
    let _ = ACTIVE.set(Active {
        profile,
        matches,
        used: AtomicBool::new(false),
    });
}

/// The profile of this run, if any.
pub fn active() -> Option<&'static Profile> {
    ACTIVE.get().and_then(|active| active.profile.as_ref())
}

/// `group` with the profile's values where no flag (or its environment
/// variable) was given.
pub fn apply<T: Serialize + DeserializeOwned + Clone>(group: &T) -> T {
    match ACTIVE.get() {
        Some(Active {
            profile: Some(profile),
            matches,
            used,
        }) if !used.load(Ordering::SeqCst) => flags::resolve(group, &profile.settings, matches),
        _ => group.clone(),
    }
}

/// A resume's kept settings over the profile's: the checkpoint's value
/// beats the profile's. The profile is not applied again afterwards.
pub fn under_kept(kept: &Settings) -> Settings {
    let Some(active) = ACTIVE.get() else {
        return kept.clone();
    };
    active.used.store(true, Ordering::SeqCst);
    match &active.profile {
        Some(profile) => kept_over(&profile.settings, kept),
        None => kept.clone(),
    }
}

fn kept_over(profile: &Settings, kept: &Settings) -> Settings {
    let mut merged = profile.clone();
    merged.extend(kept.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged
}

#[cfg(test)]
mod tests {
    use super::{kept_over, parse};
    use crate::cli::flags::{resolve, RateLimit};
    use clap::{CommandFactory, FromArgMatches};
    use std::path::Path;

    #[test]
    fn a_resume_takes_a_flag_then_the_checkpoint_then_the_profile() {
        let profile = &parse(
            "[profiles.p]\nrate_limit = 300\ntenant_id = \"tenant-profile\"\npage_size = 7\n\
             client_id = \"client-profile\"\n",
            Path::new("c.toml"),
        )
        .unwrap()[0]
            .1;
        let kept: acgbulk::runner::Settings = [
            ("rate_limit".to_owned(), 600.into()),
            ("tenant_id".to_owned(), "tenant-kept".into()),
        ]
        .into_iter()
        .collect();
        let matches = crate::cli::Cli::command()
            .try_get_matches_from(["acgbulk", "resume", "x.checkpoint", "--client-id", "flag"])
            .unwrap();
        let given = matches.subcommand().unwrap().1.clone();
        let args = crate::cli::resume::Args::from_arg_matches(&given).unwrap();
        let connection = resolve(&args.connection, &kept_over(profile, &kept), &given);
        assert_eq!(connection.transport.rate_limit, RateLimit(Some(600)));
        assert_eq!(connection.auth.tenant_id.as_deref(), Some("tenant-kept"));
        assert_eq!(connection.auth.client_id.as_deref(), Some("flag"));
        // Not kept (an older checkpoint): the profile's.
        let connection = resolve(
            &args.connection,
            &kept_over(profile, &Default::default()),
            &given,
        );
        assert_eq!(connection.transport.rate_limit, RateLimit(Some(300)));
    }

    #[test]
    fn profiles_hold_the_connection_keys_as_the_flags_do() {
        let text = r#"
[profiles.lab]
endpoint = "http://127.0.0.1:8080/"
rate_limit = "600/min"
ca_cert = "lab-ca.pem"
page_size = 200
auth = "None"

[profiles.prod]
endpoint = "https://provapi.example.com"
rate_limit = "off"
"#;
        let profiles = parse(text, Path::new("c.toml")).unwrap();
        let lab = &profiles.iter().find(|(n, _)| n == "lab").unwrap().1;
        assert_eq!(lab["rate_limit"], 600);
        assert_eq!(lab["ca_cert"], serde_json::json!(["lab-ca.pem"]));
        assert_eq!(lab["auth"], "none");
        let prod = &profiles.iter().find(|(n, _)| n == "prod").unwrap().1;
        assert!(prod["rate_limit"].is_null());
    }

    #[test]
    fn secrets_unknown_keys_and_bad_values_are_refused_without_the_value() {
        for (line, named) in [
            ("client_secret = \"s3cr3t-value\"", "client_secret"),
            ("token = \"s3cr3t-value\"", "token"),
            ("my_secret_thing = \"s3cr3t-value\"", "my_secret_thing"),
            (
                "connection_string = \"endpoint=https://x/;accesskey=s3cr3t-value\"",
                "connection_string",
            ),
            ("colour = \"blue\"", "colour"),
            ("rate_limit = \"fast\"", "rate_limit"),
            ("page_size = 0", "page_size"),
        ] {
            let text = format!("[profiles.p]\n{line}\n");
            let error = parse(&text, Path::new("c.toml")).unwrap_err().to_string();
            assert!(error.contains("c.toml") && error.contains("'p'"), "{error}");
            assert!(error.contains(named), "{error}");
            assert!(!error.contains("s3cr3t-value"), "{error}");
        }
        let error = parse(
            "[profiles.p\nclient_secret = \"s3cr3t-value\"",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(!error.contains("s3cr3t-value"), "{error}");
    }
}
