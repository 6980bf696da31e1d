//! `acgbulk completions SHELL` and `acgbulk man`: the real binary's output,
//! checked for naming what the command line has.

mod common;

use common::{run, tempdir};

const SUBCOMMANDS: [&str; 13] = [
    "validate",
    "import",
    "delete",
    "resume",
    "export",
    "reconcile",
    "accounts",
    "rfis",
    "acs",
    "emulator",
    "sample",
    "completions",
    "man",
];

#[test]
fn every_shell_gets_a_script_naming_the_subcommands() {
    let dir = tempdir();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = run(dir.path(), &["completions", shell]);
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        assert!(out.stdout.len() > 1000, "{shell}: {}", out.stdout);
        for name in SUBCOMMANDS {
            assert!(out.stdout.contains(name), "{shell} script lacks {name}");
        }
        // Flags of subcommands too, not only the top level.
        assert!(out.stdout.contains("rate-limit"), "{shell}");
        assert!(out.stdout.contains("emulator-state"), "{shell}");
    }
    let bad = run(dir.path(), &["completions", "tcsh"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn the_bash_script_is_valid_bash() {
    let dir = tempdir();
    let out = run(dir.path(), &["completions", "bash"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let script = dir.path().join("acgbulk.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    match std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
    {
        Ok(check) => assert!(
            check.status.success(),
            "bash -n: {}",
            String::from_utf8_lossy(&check.stderr)
        ),
        Err(error) => eprintln!("bash is not here ({error}): the syntax check is skipped"),
    }
}

#[test]
fn man_writes_a_roff_page_per_command_naming_its_flags() {
    let dir = tempdir();
    let out = run(dir.path(), &["man", "-o", "pages/man1"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let pages = dir.path().join("pages/man1");
    let page = |name: &str| {
        std::fs::read_to_string(pages.join(name))
            .unwrap_or_else(|e| panic!("{name} is not written: {e}"))
    };
    let top = page("acgbulk.1");
    assert!(top.contains(".TH acgbulk 1"), "{top}");
    for name in SUBCOMMANDS {
        let sub = page(&format!("acgbulk-{name}.1"));
        assert!(sub.contains(&format!(".TH acgbulk-{name} 1")), "{name}");
        assert!(top.contains(name), "acgbulk.1 does not list {name}");
    }
    // Nested subcommands get their own pages too.
    for name in [
        "accounts-import",
        "accounts-delete",
        "rfis-update",
        "acs-search",
    ] {
        page(&format!("acgbulk-{name}.1"));
    }
    // roff escapes '-' as '\-' in flag names.
    let import = page("acgbulk-import.1");
    for flag in ["rate\\-limit", "default\\-account", "emulator", "endpoint"] {
        assert!(import.contains(flag), "acgbulk-import.1 lacks {flag}");
    }
    assert!(
        import.contains("Examples:") && import.contains("acgbulk import samples/"),
        "acgbulk-import.1 has no examples"
    );
    let export = page("acgbulk-export.1");
    assert!(export.contains("output"), "acgbulk-export.1 lacks --output");

    // Without -o, into the current directory.
    let here = run(dir.path(), &["man"]);
    assert_eq!(here.code, 0, "{}", here.stderr);
    assert!(dir.path().join("acgbulk-validate.1").is_file());
}
