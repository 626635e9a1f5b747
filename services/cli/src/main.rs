//! `goterra-cli`: the workstation CLI of the platform (login, namespaces, catalogue, runs,
//! users; see `workstation`), and the client VMs use to exchange data through the store at boot
//! (`get KEY`, `put KEY VALUE`, `put KEY @FILE`) with the original's flags and environment. The
//! store commands exist both at the top level (the original forms) and under `store`.

#[cfg(test)]
mod docs;
mod store_client;
mod value_codec;
mod workstation;

use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;
use store_client::{Failure, StoreClient};
use value_codec::Decoded;

/// Largest file `put KEY @FILE` reads; only its last bytes are sent beyond that.
const MAX_FILE_BYTES: usize = 10_000_000;

const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "goterra-cli",
    version,
    about = "Goterra client: drive the platform from a terminal, and exchange data between the VMs of a deployment through the store",
    after_help = "Start with `goterra-cli login --url URL`, then `goterra-cli ns list`.\n\
                  Exit codes: 0 done, 1 failed (refused by the server, run failed, timed out), 2 usage error,\n\
                  3 credentials refused, 4 cannot reach the server.\n\
                  Go-style single-dash flags (-url U, -timeout=5) are accepted too."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    global: workstation::commands::Global,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args)]
struct Connection {
    /// Base URL of goterra (env GOT_URL).
    #[arg(long, env = "GOT_URL", global = true)]
    url: Option<String>,
    /// Deployment id (env GOT_DEPLOYMENT).
    #[arg(long, env = "GOT_DEPLOYMENT", global = true)]
    deployment: Option<String>,
    /// Deployment token (env GOT_TOKEN; prefer the environment, command lines show in `ps`).
    #[arg(long, env = "GOT_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Minutes `get` keeps waiting for the key.
    #[arg(long, default_value_t = 30, global = true)]
    timeout: u64,
    /// User API key, for `create` (env GOT_APIKEY).
    #[arg(long, env = "GOT_APIKEY", global = true, hide_env_values = true)]
    apikey: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Store(StoreCommand),
    /// The same store commands, under their modern name, and `dump`/`watch` of a run's
    /// deployment (`get`/`put` take `--run` too).
    #[command(name = "store", subcommand)]
    Modern(ModernStore),
    #[command(flatten)]
    Work(workstation::commands::WorkCommand),
}

#[derive(Subcommand)]
enum ModernStore {
    #[command(flatten)]
    Vm(StoreCommand),
    #[command(flatten)]
    Run(workstation::commands::RunStoreCommand),
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Print the value of KEY, waiting for it to be set (up to --timeout minutes).
    Get {
        key: String,
        #[command(flatten)]
        target: workstation::commands::StoreTarget,
        /// Print the value as stored, without decoding `base64:` values.
        #[arg(long)]
        raw: bool,
        /// Write the value's exact bytes to this file instead of stdout.
        #[arg(long, short = 'o')]
        output: Option<std::path::PathBuf>,
    },
    /// Set KEY to VALUE, or to the content of FILE with `@FILE` (last GOT_TRIM bytes if set).
    Put {
        key: String,
        #[arg(allow_hyphen_values = true)]
        value: String,
        #[command(flatten)]
        target: workstation::commands::StoreTarget,
    },
    /// Create a deployment with a user API key; prints url=, id= and token= lines.
    Create {
        /// Namespace (id or name) whose members may also use the deployment.
        #[arg(long)]
        ns: Option<String>,
    },
    /// Delete the deployment and all its keys.
    Delete,
}

/// Go's flag package accepted `-flag`; clap wants `--flag` for long names.
fn normalize_go_flags(args: impl IntoIterator<Item = String>) -> Vec<String> {
    const LONG: &[&str] = &[
        "url",
        "deployment",
        "token",
        "timeout",
        "apikey",
        "version",
        "help",
        "raw",
        "output",
        "ns",
    ];
    let mut normalized = Vec::new();
    let mut rest = false;
    for arg in args {
        if !rest && arg == "--" {
            rest = true;
        }
        let is_go_long = !rest
            && arg.starts_with('-')
            && !arg.starts_with("--")
            && LONG.contains(&arg[1..].split('=').next().unwrap_or_default());
        normalized.push(if is_go_long { format!("-{arg}") } else { arg });
    }
    normalized
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(normalize_go_flags(std::env::args())) {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(EXIT_USAGE));
        }
    };
    let Some(command) = cli.command else {
        eprintln!("No command specified\n");
        let _ = <Cli as clap::CommandFactory>::command().write_help(&mut std::io::stderr());
        return ExitCode::from(EXIT_USAGE);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    let overrides = workstation::Overrides {
        url: cli.connection.url.as_deref(),
        apikey: cli.connection.apikey.as_deref(),
    };
    let command = match command {
        Command::Store(command) | Command::Modern(ModernStore::Vm(command)) => command,
        Command::Modern(ModernStore::Run(command)) => {
            return exit_with(runtime.block_on(run_store(&cli.connection, &cli.global, overrides, command)));
        }
        Command::Work(command) => {
            return exit_with(runtime.block_on(workstation::run(&cli.global, overrides, command)));
        }
    };
    if let StoreCommand::Get { target, .. } | StoreCommand::Put { target, .. } = &command
        && target.run.is_some()
    {
        return exit_with(runtime.block_on(run_store_key(&cli.connection, &cli.global, overrides, command)));
    }
    match runtime.block_on(run(&cli.connection, command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Outcome::Usage(message)) => {
            eprintln!("error: {message}\n\nRun `goterra-cli --help` for usage.");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Outcome::Failure(failure)) => {
            eprintln!("error: {}", failure.message());
            ExitCode::from(failure.exit_code())
        }
    }
}

fn exit_with(result: workstation::error::CliResult<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            ExitCode::from(err.exit_code())
        }
    }
}

/// `store dump|watch`, with the user's credentials.
async fn run_store(
    connection: &Connection,
    global: &workstation::commands::Global,
    overrides: workstation::Overrides<'_>,
    command: workstation::commands::RunStoreCommand,
) -> workstation::error::CliResult<()> {
    use workstation::commands::RunStoreCommand;
    let session = workstation::session(global, overrides)?;
    let deployment = connection.deployment.as_deref();
    match command {
        RunStoreCommand::Dump { target, filter, out } => {
            workstation::store::dump(&session, &target, deployment, filter.as_deref(), out.output).await
        }
        RunStoreCommand::Watch {
            target,
            filter,
            interval,
        } => {
            let timeout = Duration::from_secs(connection.timeout.saturating_mul(60));
            let interval = Duration::from_secs(interval.max(1));
            workstation::store::watch(&session, &target, deployment, filter.as_deref(), interval, timeout).await
        }
    }
}

/// `get|put --run RUN`: the in-VM forms' value encoding, with the user's credentials.
async fn run_store_key(
    connection: &Connection,
    global: &workstation::commands::Global,
    overrides: workstation::Overrides<'_>,
    command: StoreCommand,
) -> workstation::error::CliResult<()> {
    use workstation::error::failed;
    let session = workstation::session(global, overrides)?;
    let deployment = connection.deployment.as_deref();
    let as_failure = |outcome: Outcome| match outcome {
        Outcome::Usage(message) => workstation::error::CliError::Usage(message),
        Outcome::Failure(failure) => failed(failure.message()),
    };
    match command {
        StoreCommand::Get {
            key,
            target,
            raw,
            output,
        } => {
            let (client, id) = workstation::store::deployment(&session, &target, deployment).await?;
            // The server waits at most ten minutes at a time.
            let wait = Duration::from_secs(connection.timeout.saturating_mul(60).min(600));
            let value = client.store_get(&id, key.trim(), wait).await?;
            let decoded = if raw {
                Decoded::Text(value)
            } else {
                value_codec::decode(value)
            };
            write_value(decoded, output.as_deref()).map_err(as_failure)
        }
        StoreCommand::Put { key, value, target } => {
            let (client, id) = workstation::store::deployment(&session, &target, deployment).await?;
            let value = match value.strip_prefix('@') {
                Some(path) => value_codec::encode(&read_file(path).map_err(as_failure)?),
                None => value_codec::encode(value.trim().as_bytes()),
            };
            client.store_put(&id, key.trim(), &value).await?;
            Ok(())
        }
        StoreCommand::Create { .. } | StoreCommand::Delete => Err(workstation::error::CliError::Usage(
            "--run applies to get and put only".into(),
        )),
    }
}

/// An error on stderr (`error:` in red on a terminal without `NO_COLOR`), with a hint.
fn report(err: &workstation::error::CliError) {
    let label = if workstation::output::colours_on_stderr() {
        "\x1b[31merror:\x1b[0m"
    } else {
        "error:"
    };
    eprintln!("{label} {err}");
    if let Some(hint) = err.hint() {
        eprintln!("hint: {hint}");
    }
}

enum Outcome {
    Usage(String),
    Failure(Failure),
}

impl From<Failure> for Outcome {
    fn from(failure: Failure) -> Self {
        Self::Failure(failure)
    }
}

fn required<'a>(value: &'a Option<String>, what: &str) -> Result<&'a str, Outcome> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Outcome::Usage(format!("missing {what}")))
}

async fn run(connection: &Connection, command: StoreCommand) -> Result<(), Outcome> {
    let url = required(&connection.url, "--url (or GOT_URL)")?;
    let token = connection
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from);
    let client = StoreClient::new(url, token).map_err(Outcome::Usage)?;
    match command {
        StoreCommand::Get { key, raw, output, .. } => {
            let deployment = required(&connection.deployment, "--deployment (or GOT_DEPLOYMENT)")?;
            let timeout = Duration::from_secs(connection.timeout.saturating_mul(60));
            let value = client.get(deployment, key.trim(), timeout).await?;
            let decoded = if raw {
                Decoded::Text(value)
            } else {
                value_codec::decode(value)
            };
            write_value(decoded, output.as_deref())
        }
        StoreCommand::Put { key, value, .. } => {
            let deployment = required(&connection.deployment, "--deployment (or GOT_DEPLOYMENT)")?;
            let value = match value.strip_prefix('@') {
                Some(path) => value_codec::encode(&read_file(path)?),
                None => value_codec::encode(value.trim().as_bytes()),
            };
            client.put(deployment, key.trim(), &value).await?;
            Ok(())
        }
        StoreCommand::Create { ns } => {
            let api_key = required(&connection.apikey, "--apikey (or GOT_APIKEY)")?;
            let created = client.create(api_key, ns.as_deref()).await?;
            println!("url={}\nid={}\ntoken={}", created.url, created.id, created.token);
            Ok(())
        }
        StoreCommand::Delete => {
            let deployment = required(&connection.deployment, "--deployment (or GOT_DEPLOYMENT)")?;
            client.delete(deployment).await?;
            Ok(())
        }
    }
}

/// Text goes to stdout followed by a newline, as the original printed it; decoded bytes go out
/// exactly, so `get KEY > file` restores a file put with `put KEY @file`.
fn write_value(decoded: Decoded, output: Option<&std::path::Path>) -> Result<(), Outcome> {
    let failed = |err: std::io::Error| Outcome::Failure(Failure::Failed(format!("cannot write the value: {err}")));
    match (decoded, output) {
        (Decoded::Bytes(bytes), Some(path)) => std::fs::write(path, bytes).map_err(failed),
        (Decoded::Text(text), Some(path)) => std::fs::write(path, text).map_err(failed),
        (Decoded::Bytes(bytes), None) => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&bytes).and_then(|()| stdout.flush()).map_err(failed)
        }
        (Decoded::Text(text), None) => {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{text}").and_then(|()| stdout.flush()).map_err(failed)
        }
    }
}

/// A file's content, or its last GOT_TRIM bytes (at most 10 MB either way).
fn read_file(path: &str) -> Result<Vec<u8>, Outcome> {
    let bytes = std::fs::read(path)
        .map_err(|err| Outcome::Failure(Failure::Failed(format!("cannot read file {path}: {err}"))))?;
    let limit = match std::env::var("GOT_TRIM") {
        Ok(trim) if !trim.trim().is_empty() => trim.trim().parse().unwrap_or(MAX_FILE_BYTES).min(MAX_FILE_BYTES),
        _ => MAX_FILE_BYTES,
    };
    if bytes.len() <= limit {
        return Ok(bytes);
    }
    let tail = value_codec::tail(&bytes, limit);
    eprintln!("read only partial file {path}: last {} bytes", tail.len());
    Ok(tail.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(args: &[&str]) -> Vec<String> {
        normalize_go_flags(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn go_style_flags_become_long_flags() {
        assert_eq!(
            normalized(&["cli", "-url", "http://x", "-timeout=5", "--token", "t", "get", "k"]),
            ["cli", "--url", "http://x", "--timeout=5", "--token", "t", "get", "k"]
        );
        assert_eq!(normalized(&["cli", "put", "k", "-o"]), ["cli", "put", "k", "-o"]);
        assert_eq!(normalized(&["cli", "put", "--", "-url"]), ["cli", "put", "--", "-url"]);
    }

    #[test]
    fn both_forms_parse() {
        let cli = Cli::try_parse_from(normalized(&["cli", "-deployment", "d", "get", "k"])).unwrap();
        assert!(matches!(cli.command, Some(Command::Store(StoreCommand::Get { .. }))));
        assert_eq!(cli.connection.deployment.as_deref(), Some("d"));
        let cli = Cli::try_parse_from(["cli", "store", "put", "k", "v", "--deployment", "d"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Modern(ModernStore::Vm(StoreCommand::Put { .. })))
        ));
        assert!(Cli::try_parse_from(["cli", "get"]).is_err());
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
