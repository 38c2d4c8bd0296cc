//! The command tree: `<bin> <noun> <verb>`, `<bin> plan <verb>`, `<bin> endpoints`.
//!
//! The verbs are clap derive types generic over the framework's own options
//! ([`NodeOptions`]). A framework either uses the whole tree ([`Cli`], built
//! by [`CliSpec::command`] with its noun and environment variables) or embeds
//! [`NodeCommand`] and [`PlanCommand`] in its own clap tree next to its own
//! commands and calls [`CliSpec::configure`] on the result.

use std::time::Duration;

use clap::{ArgMatches, Args, FromArgMatches, Subcommand, ValueEnum};
use serde_json::Value;

use crate::error::CliError;

/// A framework's own node options (e.g. Kafka's `--heap`), turned into the
/// configuration JSON the scheduler's service reads.
pub trait NodeOptions: Args + Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The settings the options stand for, as a JSON object. Options that were
    /// not given must be left out, so that `update` changes only what is named
    /// and `add` leaves the rest to the service's defaults.
    fn to_config(&self) -> Result<Value, String>;
}

/// No framework options: only `--config-json` and `--set`.
#[derive(Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct NoOptions {}

impl NodeOptions for NoOptions {
    fn to_config(&self) -> Result<Value, String> {
        Ok(Value::Object(Default::default()))
    }
}

/// Options every command takes.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct GlobalArgs {
    /// The scheduler's REST API
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "SCHEDULER_API",
        default_value = "http://127.0.0.1:7000"
    )]
    pub api: String,
    /// Bearer token for the API, when the scheduler requires one
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "SCHEDULER_API_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Print JSON for scripts instead of tables
    #[arg(long, global = true)]
    pub json: bool,
}

/// Generic configuration on top of the framework's options.
#[derive(Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigArgs {
    /// Settings as a JSON object, merged over the options above
    #[arg(long = "config-json", value_name = "JSON")]
    pub config_json: Option<String>,
    /// One setting, merged last; VALUE is read as JSON when it parses (2048,
    /// true, "text") and as text otherwise; KEY may be a.b for a nested setting
    /// (keys that contain dots go through --config-json); repeatable
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// How a command that starts a plan waits for it.
#[derive(Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct FollowArgs {
    /// Return once the plan is started instead of following it to its end
    #[arg(long)]
    pub no_wait: bool,
    /// Give up following after this long (e.g. 90s, 10m, 1h); the plan goes on
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
}

/// Which output stream of a node's service.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// The API's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Commands on nodes; `node` in the help is replaced by the framework's noun.
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum NodeCommand<O: NodeOptions> {
    /// Add nodes and deploy them (IDS: e.g. 0..2)
    Add {
        /// New IDs: 0, 0..2, 0,3,5
        ids: String,
        #[command(flatten)]
        options: O,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// List nodes with their stage, host and endpoints
    List {
        /// Only these (an ID expression such as 0..2 or *[rack=r1])
        ids: Option<String>,
        /// Include removed nodes
        #[arg(long)]
        removed: bool,
    },
    /// Show one node in full
    Show {
        /// Node ID
        id: String,
    },
    /// Change the configuration of nodes; rolled out one node at a time
    Update {
        /// Which: 0, 0..2, *, *[rack=r1]
        ids: String,
        #[command(flatten)]
        options: O,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// Add new nodes with the configuration of an existing one
    Clone {
        /// The node to copy
        source: String,
        /// The new IDs
        ids: String,
        #[command(flatten)]
        options: O,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// Start stopped or failed nodes
    Start {
        /// Which: 0, 0..2, *, *[rack=r1]
        ids: String,
    },
    /// Stop nodes, keeping their reservations and data
    Stop {
        /// Which: 0, 0..2, *, *[rack=r1]
        ids: String,
    },
    /// Restart nodes one at a time, each after the safety check
    Restart {
        /// Which: 0, 0..2, *, *[rack=r1]
        ids: String,
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// Move nodes to new agents (their data is not moved)
    Replace {
        /// Which: 0, 0..2, *, *[rack=r1]
        ids: String,
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// Remove nodes for good: destroys their volumes and data
    Remove {
        /// Which: 0, 0..2, *, *[rack=r1]
        ids: String,
        /// Confirm that the data of these nodes may be destroyed
        #[arg(long)]
        yes: bool,
    },
    /// Print the last lines of a node's service output
    Log {
        /// Node ID
        id: String,
        /// Which stream
        #[arg(long, value_enum, default_value = "stdout")]
        stream: Stream,
        /// How many lines (1 to 1000)
        #[arg(long, short = 'n', default_value_t = 100)]
        lines: u32,
    },
    /// Explain why a node is not placed: the last decline reasons per agent
    Explain {
        /// Node ID
        id: String,
    },
    /// Run an allow-listed admin command on a node
    Admin {
        /// Node ID
        id: String,
        /// Command name
        name: String,
        /// Arguments, when the command accepts them
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Commands on plans. Without an ID they act on the open plan.
#[derive(Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum PlanCommand {
    /// List plans
    List,
    /// Show a plan and its steps (default: the open or latest plan)
    Show {
        /// Plan ID
        id: Option<String>,
    },
    /// Pause a plan: no new step starts
    Pause {
        /// Plan ID (default: the open plan)
        id: Option<String>,
    },
    /// Resume a paused plan
    Resume {
        /// Plan ID (default: the open plan)
        id: Option<String>,
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// Abort a plan for good
    Abort {
        /// Plan ID (default: the open plan)
        id: Option<String>,
    },
    /// Follow a plan to its end with a progress bar
    Watch {
        /// Plan ID (default: the open or latest plan)
        id: Option<String>,
        /// Give up following after this long (e.g. 90s, 10m)
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        timeout: Option<Duration>,
    },
}

/// The shared top-level commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CliCommand<O: NodeOptions> {
    /// `<bin> <noun> …`
    Node(NodeCommand<O>),
    /// `<bin> plan …`
    Plan(PlanCommand),
    /// `<bin> endpoints`
    Endpoints,
}

/// A parsed command line of the shared tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cli<O: NodeOptions> {
    /// Options every command takes.
    pub global: GlobalArgs,
    /// What to do.
    pub command: CliCommand<O>,
}

/// How a framework names its binary, its nodes and its environment variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliSpec {
    /// Binary name, e.g. `kafka-mesos`.
    pub bin: String,
    /// What one node is called, e.g. `broker`.
    pub noun: String,
    /// Variable that sets `--api`, e.g. `KAFKA_MESOS_API`.
    pub api_env: String,
    /// Variable that sets `--token`, e.g. `KAFKA_MESOS_TOKEN`.
    pub token_env: String,
}

impl CliSpec {
    /// The spec of `bin` whose nodes are `noun`s, with variables
    /// `<BIN>_API` and `<BIN>_TOKEN` (`kafka-mesos` → `KAFKA_MESOS_API`).
    pub fn new(bin: &str, noun: &str) -> Self {
        let prefix: String = bin
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        CliSpec {
            bin: bin.to_owned(),
            noun: noun.to_owned(),
            api_env: format!("{prefix}_API"),
            token_env: format!("{prefix}_TOKEN"),
        }
    }

    /// The whole shared command tree.
    pub fn command<O: NodeOptions>(&self) -> clap::Command {
        let nodes = NodeCommand::<O>::augment_subcommands(
            clap::Command::new(self.noun.clone())
                .about(format!("Manage the {}s", self.noun))
                .subcommand_required(true)
                .arg_required_else_help(true),
        );
        let plans = PlanCommand::augment_subcommands(
            clap::Command::new("plan")
                .about("Follow and control deploys, rolling restarts and updates")
                .subcommand_required(true)
                .arg_required_else_help(true),
        );
        let root = GlobalArgs::augment_args(
            clap::Command::new(self.bin.clone())
                .subcommand_required(true)
                .arg_required_else_help(true),
        )
        .subcommand(nodes)
        .subcommand(plans)
        .subcommand(clap::Command::new("endpoints").about("Show how clients reach the service"));
        self.configure(root)
    }

    /// Sets the framework's variables on `--api`/`--token` and its noun in the
    /// help of the node commands, on a tree that contains them.
    pub fn configure(&self, command: clap::Command) -> clap::Command {
        let mut command = command
            .mut_arg("api", |a| a.env(self.api_env.clone()))
            .mut_arg("token", |a| a.env(self.token_env.clone()));
        if command.find_subcommand(&self.noun).is_some() {
            let noun = self.noun.clone();
            command = command.mut_subcommand(&self.noun, |nodes| {
                let verbs: Vec<String> = nodes
                    .get_subcommands()
                    .map(|c| c.get_name().to_owned())
                    .collect();
                verbs.into_iter().fold(nodes, |nodes, verb| {
                    nodes.mut_subcommand(&verb, |c| {
                        let about = c
                            .get_about()
                            .map(|a| a.to_string().replace("node", &noun))
                            .unwrap_or_default();
                        c.about(about)
                    })
                })
            });
        }
        command
    }

    /// Parses `args` (program name first) with the shared tree.
    pub fn try_parse_from<O, I, T>(&self, args: I) -> Result<Cli<O>, clap::Error>
    where
        O: NodeOptions,
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = self.command::<O>().try_get_matches_from(args)?;
        self.from_matches(&matches)
    }

    /// Reads a [`Cli`] from the matches of [`CliSpec::command`].
    pub fn from_matches<O: NodeOptions>(
        &self,
        matches: &ArgMatches,
    ) -> Result<Cli<O>, clap::Error> {
        let global = GlobalArgs::from_arg_matches(matches)?;
        let command = match matches.subcommand() {
            Some(("plan", sub)) => CliCommand::Plan(PlanCommand::from_arg_matches(sub)?),
            Some(("endpoints", _)) => CliCommand::Endpoints,
            Some((name, sub)) if name == self.noun => {
                CliCommand::Node(NodeCommand::<O>::from_arg_matches(sub)?)
            }
            _ => {
                return Err(clap::Error::raw(
                    clap::error::ErrorKind::MissingSubcommand,
                    format!("name a command: {} | plan | endpoints\n", self.noun),
                ));
            }
        };
        Ok(Cli { global, command })
    }
}

/// Parses `90s`, `10m`, `1h`, `500ms` or a number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 90s, 10m or 1h"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`; use ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

/// Deep merge: objects merge key by key; anything else, `null` included, replaces.
fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(target.entry(key).or_insert(Value::Null), value);
            }
        }
        (target, patch) => *target = patch,
    }
}

/// The configuration (or patch) for `add`, `update` and `clone`: the
/// framework's options, then `--config-json`, then each `--set`.
pub fn build_config<O: NodeOptions>(options: &O, extra: &ConfigArgs) -> Result<Value, CliError> {
    let mut config = options.to_config().map_err(CliError::Usage)?;
    if !config.is_object() {
        return Err(CliError::Usage(format!(
            "the options give {config}, not a JSON object of settings"
        )));
    }
    if let Some(text) = &extra.config_json {
        let parsed: Value = serde_json::from_str(text).map_err(|e| {
            CliError::Usage(format!(
                "--config-json is not valid JSON ({e}); write e.g. --config-json '{{\"mem\": 4096}}'"
            ))
        })?;
        if !parsed.is_object() {
            return Err(CliError::Usage(format!(
                "--config-json must be a JSON object such as '{{\"mem\": 4096}}', not {parsed}"
            )));
        }
        merge(&mut config, parsed);
    }
    for setting in &extra.set {
        let Some((key, raw)) = setting.split_once('=') else {
            return Err(CliError::Usage(format!(
                "--set {setting:?} has no `=`; write --set KEY=VALUE, e.g. --set mem=4096"
            )));
        };
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(CliError::Usage(format!(
                "--set {setting:?}: the key is empty or has an empty part; write e.g. --set mem=4096 or --set jvm.heap_mb=1024"
            )));
        }
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
        let nested = key
            .rsplit('.')
            .fold(value, |inner, part| serde_json::json!({ part: inner }));
        merge(&mut config, nested);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_duration("soon").is_err_and(|e| e.contains("90s")));
        assert!(parse_duration("5d").is_err_and(|e| e.contains("unknown unit")));
    }

    #[test]
    fn config_layers_merge_in_order() {
        let extra = ConfigArgs {
            config_json: Some(r#"{"mem": 2048, "jvm": {"heap_mb": 512, "gc": "g1"}}"#.into()),
            set: vec![
                "mem=4096".into(),
                "jvm.heap_mb=1024".into(),
                "name=broker a".into(),
                r#"quoted="7""#.into(),
                "flag=true".into(),
                "gone=null".into(),
            ],
        };
        let config = build_config(&NoOptions {}, &extra).expect("config");
        assert_eq!(
            config,
            json!({
                "mem": 4096,
                "jvm": {"heap_mb": 1024, "gc": "g1"},
                "name": "broker a",
                "quoted": "7",
                "flag": true,
                "gone": null,
            })
        );
    }

    #[test]
    fn bad_config_arguments_are_usage_errors() {
        let bad = |extra: ConfigArgs| {
            let error = build_config(&NoOptions {}, &extra).expect_err("bad");
            assert_eq!(error.exit_code(), 2);
            error.to_string()
        };
        assert!(
            bad(ConfigArgs {
                config_json: Some("{".into()),
                set: vec![]
            })
            .contains("not valid JSON")
        );
        assert!(
            bad(ConfigArgs {
                config_json: Some("[1]".into()),
                set: vec![]
            })
            .contains("JSON object")
        );
        assert!(
            bad(ConfigArgs {
                config_json: None,
                set: vec!["mem".into()]
            })
            .contains("has no `=`")
        );
        assert!(
            bad(ConfigArgs {
                config_json: None,
                set: vec!["a..b=1".into()]
            })
            .contains("empty part")
        );
    }
}
