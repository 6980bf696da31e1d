//! Profiles (`--profile`, `--config`): a profile's settings reach the
//! commands, their precedence (flag, environment, profile, default) shown
//! by `config show --json`, and secrets, unknown profiles and unknown keys
//! refused with exit 2.

mod common;

use common::{Run, Server};
use std::path::{Path, PathBuf};

fn config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `acgbulk ARGS` with no connection settings of the test runner's own.
fn acg(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all_env = vec![
        ("ACGBULK_PROFILE", ""),
        ("ACGBULK_CONFIG", ""),
        ("AZURE_TENANT_ID", ""),
        ("AZURE_CLIENT_SECRET", ""),
        ("ACG_TOKEN", ""),
    ];
    all_env.retain(|(name, _)| !env.iter().any(|(given, _)| given == name));
    all_env.extend_from_slice(env);
    let mut cmd = std::process::Command::new(common::bin());
    cmd.args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("ACG_ENDPOINT")
        .env_remove("ACG_SCOPE")
        .env("ACGBULK_STATE_DIR", common::test_state_dir())
        .stdin(std::process::Stdio::null());
    for (name, value) in all_env {
        if value.is_empty() {
            cmd.env_remove(name);
        } else {
            cmd.env(name, value);
        }
    }
    cmd.output().expect("the binary runs").into()
}

fn shown(run: &Run) -> serde_json::Value {
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).expect("one JSON object")
}

#[test]
fn an_import_and_an_export_take_the_endpoint_and_pace_from_the_profile() {
    let server = Server::start(acgbulk::emulator::EmulatorConfig {
        rate_limit: None,
        ..acgbulk::emulator::EmulatorConfig::default()
    });
    let dir = common::tempdir();
    let file = config(
        dir.path(),
        &format!(
            "[profiles.lab]\nendpoint = \"{}\"\nrate_limit = \"6000/min\"\npage_size = 2\n\n\
             [profiles.prod]\nendpoint = \"http://127.0.0.1:9/\"\n",
            server.url()
        ),
    );
    let sheet = dir.path().join("n.csv");
    std::fs::write(
        &sheet,
        "telephoneNumber,accountName,serviceDetails_teamsDirectRouting_enabled\n\
         +442079460001,contoso,true\n+442079460002,contoso,true\n+442079460003,fabrikam,true\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let run = acg(
        dir.path(),
        &["--profile", "lab", "import", sheet.to_str().unwrap()],
        &[("ACGBULK_CONFIG", file)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let held = server.numbers();
    for n in [442079460001u64, 442079460002, 442079460003] {
        assert!(held.contains_key(&n), "{n} not imported: {held:?}");
    }

    // The page size too: three numbers in pages of two.
    let out = dir.path().join("out.csv");
    let run = acg(
        dir.path(),
        &[
            "export",
            "numbers",
            "-o",
            out.to_str().unwrap(),
            "--json",
            "--config",
            file,
        ],
        &[("ACGBULK_PROFILE", "lab")],
    );
    let summary = shown(&run);
    assert!(summary["pages"].as_u64().unwrap_or(0) >= 2, "{summary}");
    assert_eq!(common::read_csv(&out).len(), 4);

    // The other profile points elsewhere, and a flag beats it.
    let run = acg(
        dir.path(),
        &[
            "export",
            "numbers",
            "-o",
            out.to_str().unwrap(),
            "--config",
            file,
            "--profile",
            "prod",
        ],
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("127.0.0.1:9"), "{}", run.stderr);
    let run = acg(
        dir.path(),
        &[
            "export",
            "numbers",
            "-o",
            out.to_str().unwrap(),
            "--config",
            file,
            "--profile",
            "prod",
            "--endpoint",
            &server.url(),
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn a_flag_beats_the_environment_which_beats_the_profile_which_beats_the_default() {
    let dir = common::tempdir();
    let file = config(
        dir.path(),
        "[profiles.prod]\nendpoint = \"https://provapi.profile.example\"\n\
         tenant_id = \"tenant-profile\"\nclient_id = \"client-profile\"\n\
         rate_limit = 300\nscope = \"api://profile/.default\"\n",
    );
    let run = acg(
        dir.path(),
        &[
            "config",
            "show",
            "--json",
            "--config",
            file.to_str().unwrap(),
            "--profile",
            "prod",
            "--tenant-id",
            "tenant-flag",
        ],
        &[
            ("ACG_ENDPOINT", "https://provapi.env.example/"),
            ("AZURE_TENANT_ID", "tenant-env"),
            ("AZURE_CLIENT_SECRET", "very-secret-value"),
        ],
    );
    let shown = shown(&run);
    let settings = &shown["settings"];
    let profile_source = format!("profile prod ({})", file.display());
    for (key, value, source) in [
        (
            "tenant_id",
            serde_json::Value::from("tenant-flag"),
            "flag".to_owned(),
        ),
        (
            "endpoint",
            "https://provapi.env.example/".into(),
            "env ACG_ENDPOINT".to_owned(),
        ),
        ("client_id", "client-profile".into(), profile_source.clone()),
        ("rate_limit", 300.into(), profile_source.clone()),
        ("scope", "api://profile/.default".into(), profile_source),
        (
            "authority_host",
            "https://login.microsoftonline.com".into(),
            "default".to_owned(),
        ),
        ("page_size", 1000.into(), "default".to_owned()),
    ] {
        let entry = &settings[key];
        assert_eq!(entry["value"], value, "{key}: {shown}");
        assert_eq!(entry["source"], source.as_str(), "{key}: {shown}");
    }
    assert_eq!(shown["profile"], "prod");
    assert_eq!(shown["secrets"]["AZURE_CLIENT_SECRET"], "set (hidden)");
    assert!(!run.stdout.contains("very-secret-value"));

    // No profile: the defaults.
    let run = acg(dir.path(), &["config", "show", "--json"], &[]);
    let shown = self::shown(&run);
    assert_eq!(shown["profile"], serde_json::Value::Null);
    assert_eq!(shown["settings"]["rate_limit"]["value"], 100);
    assert_eq!(shown["settings"]["rate_limit"]["source"], "default");
}

#[test]
fn a_secret_in_the_config_file_is_refused_without_echoing_it() {
    let dir = common::tempdir();
    for line in [
        "client_secret = \"Sup3r-s3cret-0001\"",
        "token = \"Sup3r-s3cret-0001\"",
        "access_key = \"Sup3r-s3cret-0001\"",
        "password = \"Sup3r-s3cret-0001\"",
        "my_secret = \"Sup3r-s3cret-0001\"",
        "connection_string = \"endpoint=https://x.communication.azure.com/;accesskey=Sup3r-s3cret-0001\"",
    ] {
        let key = line.split(' ').next().unwrap();
        let file = config(
            dir.path(),
            &format!("[profiles.prod]\nendpoint = \"https://provapi.example\"\n{line}\n"),
        );
        for json in [false, true] {
            let mut args = vec![
                "--config",
                file.to_str().unwrap(),
                "--profile",
                "prod",
                "config",
                "show",
            ];
            if json {
                args.push("--json");
            }
            let run = acg(dir.path(), &args, &[]);
            assert_eq!(run.code, 2, "{line}: {}", run.stderr);
            let said = if json { &run.stdout } else { &run.stderr };
            assert!(said.contains(&format!("key '{key}'")), "{line}: {said}");
            assert!(said.contains("profile 'prod'"), "{line}: {said}");
            assert!(said.contains("config.toml"), "{line}: {said}");
            assert!(
                !run.stdout.contains("Sup3r") && !run.stderr.contains("Sup3r"),
                "{line}: the secret was echoed: {} {}",
                run.stdout,
                run.stderr
            );
        }
    }
}

#[test]
fn an_unknown_profile_key_or_value_is_a_clear_error() {
    let dir = common::tempdir();
    let file = config(
        dir.path(),
        "[profiles.lab]\nendpoint = \"http://127.0.0.1:8080/\"\n\n[profiles.prod]\nrate_limit = \"100/min\"\n",
    );
    let file = file.to_str().unwrap();
    let run = acg(
        dir.path(),
        &["config", "show", "--config", file, "--profile", "staging"],
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("no profile 'staging'") && run.stderr.contains("lab, prod"),
        "{}",
        run.stderr
    );

    for (line, expected) in [
        ("colour = \"blue\"", "key 'colour': unknown key"),
        ("rate_limit = \"fast\"", "key 'rate_limit'"),
        ("page_size = 0", "key 'page_size'"),
        ("endpoint = \"not a url\"", "key 'endpoint'"),
        ("auth = \"magic\"", "key 'auth'"),
    ] {
        let file = config(dir.path(), &format!("[profiles.lab]\n{line}\n"));
        let run = acg(
            dir.path(),
            &[
                "config",
                "show",
                "--config",
                file.to_str().unwrap(),
                "--profile",
                "lab",
            ],
            &[],
        );
        assert_eq!(run.code, 2, "{line}: {}", run.stderr);
        assert!(
            run.stderr.contains(expected) && run.stderr.contains("profile 'lab'"),
            "{line}: {}",
            run.stderr
        );
    }

    // An explicit config file that is missing.
    let run = acg(
        dir.path(),
        &[
            "config",
            "show",
            "--config",
            "nowhere.toml",
            "--profile",
            "lab",
        ],
        &[],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("nowhere.toml"), "{}", run.stderr);
}
