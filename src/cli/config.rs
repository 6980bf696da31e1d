//! `acgbulk config show`: the connection settings a command would use, and
//! where each comes from (flag, environment, profile or default). Secrets
//! are never shown, only whether they are set.

use super::flags::{settings_of, ConnectionArgs, PageArgs};
use super::{profile, ui, Status};
use clap::parser::ValueSource;
use serde_json::{json, Map, Value};

pub const CONFIG_EXAMPLES: &str = "\
Examples:
  # Which connection settings a command would use, and where each comes from
  acgbulk config show
";

const SHOW_EXAMPLES: &str = "\
Examples:
  # The settings and their sources (flag, env NAME, profile NAME (FILE), default)
  acgbulk config show

  # What a flag given on the command line changes, as JSON for a script
  acgbulk config show --rate-limit 600/min --json

  # A profile's settings (exit 2: this directory has no config file)
  acgbulk --config ./none.toml --profile lab config show
";

/// Look at the configuration
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Print the effective connection settings and the source of each
    ///
    /// The source is flag, env NAME, profile NAME (FILE) or default;
    /// secrets show only as set (hidden) or not set.
    #[command(after_long_help = SHOW_EXAMPLES)]
    Show(Box<ShowArgs>),
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(flatten)]
    pub page: PageArgs,

    /// Print the settings as one JSON object on standard output
    #[arg(long, help_heading = "Output")]
    pub json: bool,
}

/// The secrets a connection may take from the environment.
const SECRET_ENV: [&str; 3] = [
    "AZURE_CLIENT_SECRET",
    "ACG_TOKEN",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
];

pub fn run(command: Command, matches: &clap::ArgMatches) -> anyhow::Result<Status> {
    let Command::Show(args) = command;
    let mut effective = settings_of(&profile::apply(&args.connection));
    effective.extend(settings_of(&profile::apply(&args.page)));
    let definitions = <ShowArgs as clap::Args>::augment_args(clap::Command::new("show"));
    let active = profile::active();
    let mut settings = Map::new();
    for key in profile::KEYS {
        let source = match matches.value_source(key) {
            Some(ValueSource::CommandLine) => "flag".to_owned(),
            Some(ValueSource::EnvVariable) => {
                let env = definitions
                    .get_arguments()
                    .find(|arg| arg.get_id() == key)
                    .and_then(|arg| arg.get_env())
                    .map(|env| env.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!("env {env}")
            }
            _ => match active.filter(|p| p.settings.contains_key(key)) {
                Some(p) => format!("profile {} ({})", p.name, p.file.display()),
                None => "default".to_owned(),
            },
        };
        let value = effective.get(key).cloned().unwrap_or(Value::Null);
        settings.insert(key.to_owned(), json!({ "value": value, "source": source }));
    }
    let secrets: Map<String, Value> = SECRET_ENV
        .iter()
        .map(|name| {
            let set = std::env::var_os(name).is_some_and(|v| !v.is_empty());
            let shown = if set { "set (hidden)" } else { "not set" };
            ((*name).to_owned(), Value::from(shown))
        })
        .collect();
    if args.json {
        ui::print_json(&json!({
            "profile": active.map(|p| p.name.clone()),
            "config": active.map(|p| p.file.display().to_string()),
            "settings": settings,
            "secrets": secrets,
        }))?;
        return Ok(Status::Done);
    }
    match active {
        Some(p) => println!("profile {} ({})", p.name, p.file.display()),
        None => println!("no profile (--profile NAME or ACGBULK_PROFILE selects one)"),
    }
    for (key, entry) in &settings {
        let value = match &entry["value"] {
            Value::Null => "-".to_owned(),
            Value::String(text) => text.clone(),
            other if key == "rate_limit" => format!("{other}/min"),
            other => other.to_string(),
        };
        let value = if key == "rate_limit" && entry["value"].is_null() {
            "off".to_owned()
        } else {
            value
        };
        let source = entry["source"].as_str().unwrap_or_default();
        println!("{key:<18} {value:<44} {source}");
    }
    for (name, shown) in &secrets {
        println!("{name}: {}", shown.as_str().unwrap_or_default());
    }
    Ok(Status::Done)
}
