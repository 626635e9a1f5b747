//! The workstation commands of `goterra-cli`: everything a platform user does from a terminal,
//! through the typed client (`goterra-client`). The in-VM store commands live beside them in
//! `main.rs` and are untouched.

mod account;
pub mod catalog;
pub mod commands;
mod config;
pub mod error;
mod import;
mod items;
mod namespaces;
pub mod output;
mod prompt;
mod resolve;
mod runs;
mod session;
pub mod store;

use commands::{Global, WorkCommand};
use config::{ConfigFile, Paths, Resolved};
use error::CliResult;
pub use session::Session;

/// The URL and key given on the command line or in the environment (they win over profiles).
pub struct Overrides<'a> {
    pub url: Option<&'a str>,
    pub apikey: Option<&'a str>,
}

/// The session of a command: profile, URL and key resolved.
pub fn session(global: &Global, overrides: Overrides<'_>) -> CliResult<Session> {
    Ok(session_and_config(global, overrides)?.0)
}

fn session_and_config(global: &Global, overrides: Overrides<'_>) -> CliResult<(Session, ConfigFile)> {
    let paths = Paths::locate()?;
    let file = ConfigFile::load(&paths)?;
    let profile = file.profile_name(global.profile.as_deref());
    let resolved = Resolved::new(&file, profile, overrides.url, overrides.apikey);
    let session = Session {
        resolved,
        paths,
        verbose: global.verbose,
    };
    Ok((session, file))
}

/// Runs one workstation command.
pub async fn run(global: &Global, overrides: Overrides<'_>, command: WorkCommand) -> CliResult<()> {
    if let WorkCommand::Completions { shell } = command {
        let mut cli = <crate::Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut cli, "goterra-cli", &mut std::io::stdout());
        return Ok(());
    }
    let (session, file) = session_and_config(global, overrides)?;
    match command {
        WorkCommand::Completions { .. } => Ok(()),
        WorkCommand::Login { apikey_stdin, activate } => account::login(&session, file, apikey_stdin, activate).await,
        WorkCommand::Logout => account::logout(&session, file),
        WorkCommand::Whoami(out) => account::whoami(&session, out.output).await,
        WorkCommand::Config(out) => account::show_config(&session, &file, out.output),
        WorkCommand::Ns(command) => namespaces::run(&session, command).await,
        WorkCommand::Endpoint(command) => items::endpoint(&session, command).await,
        WorkCommand::Recipe(command) => items::run::<goterra_client::deploy::Recipe>(&session, command).await,
        WorkCommand::Template(command) => items::run::<goterra_client::deploy::Template>(&session, command).await,
        WorkCommand::App(command) => items::run::<goterra_client::deploy::Application>(&session, command).await,
        WorkCommand::Catalog(command) => import::run(&session, command).await,
        WorkCommand::Run(command) => runs::run(&session, command).await,
        WorkCommand::User(command) => account::user(&session, command).await,
    }
}
