//! `goterra`: the whole platform in one process (`goterra up`), or one service (`goterra serve`).

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use goterra_core::service::{Prepare, PrepareFuture, ServerFlags, Topology};
use goterra_core::{Claims, Identity, Platform, Sensitive, ServiceSpec};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "goterra",
    version,
    about = "Deploy virtual machines on several clouds through Terraform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in this process, on one port, with embedded backends.
    Up {
        #[command(flatten)]
        flags: ServerFlags,
        /// Load the `local` demo catalogue (namespace `demo`, application `cluster`) before
        /// serving; its "VMs" are processes under `<data-dir>/vms`.
        #[arg(long)]
        demo: bool,
    },
    /// Run one service (production topology: one process per service behind a proxy).
    Serve {
        service: Service,
        #[command(flatten)]
        flags: ServerFlags,
    },
    /// Apply database migrations of every service, then exit.
    Migrate {
        #[command(flatten)]
        flags: ServerFlags,
    },
    /// Print the version.
    Version,
}

#[derive(Clone, Copy, ValueEnum)]
enum Service {
    Auth,
    Deploy,
    Store,
    RunAgent,
    Acct,
    Ui,
}

impl Service {
    fn spec(self) -> ServiceSpec {
        match self {
            Self::Auth => goterra_auth::spec(),
            Self::Deploy => goterra_deploy::spec(),
            Self::Store => goterra_store::spec(),
            Self::RunAgent => goterra_run_agent::spec(),
            Self::Acct => goterra_acct::spec(),
            Self::Ui => goterra_ui::spec(),
        }
    }
}

fn all_services() -> Vec<ServiceSpec> {
    [
        Service::Auth,
        Service::Deploy,
        Service::Store,
        Service::RunAgent,
        Service::Acct,
        Service::Ui,
    ]
    .into_iter()
    .map(Service::spec)
    .collect()
}

async fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Up { flags, demo } => {
            let config = flags.load_config()?;
            goterra_core::service::run_prepared(
                config,
                Topology::AllInOne,
                &all_services(),
                goterra_bus::platform_event_bus,
                demo.then(|| -> Prepare {
                    Box::new(|platform, router| -> PrepareFuture { Box::pin(load_demo(platform, router)) })
                }),
            )
            .await
        }
        Command::Serve { service, flags } => {
            let config = flags.load_config()?;
            goterra_core::service::run(
                config,
                Topology::Standalone,
                &[service.spec()],
                goterra_bus::platform_event_bus,
            )
            .await
        }
        Command::Migrate { flags } => {
            let config = flags.load_config()?;
            let db = goterra_core::service::open_database(&config, &all_services()).await?;
            db.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Version => {
            println!("goterra {}", goterra_core::http::VERSION);
            Ok(())
        }
    }
}

/// Loads the demo catalogue as the bootstrap admin (the template uses `local-exec`) and
/// prints how to start a run.
async fn load_demo(platform: Platform, router: axum::Router) -> anyhow::Result<()> {
    let admin = Identity {
        uid: goterra_auth::bootstrap::ADMIN_UID.to_string(),
        admin: true,
        super_user: false,
        email: String::new(),
        kind: String::new(),
    };
    let bearer = Sensitive::new(platform.tokens.issue(&Claims::for_user(&admin)));
    // Terraform's local-exec runs in the agent's temporary run directory: a relative path
    // would put the "VMs" there.
    let vms = std::path::absolute(platform.config.data_dir.join("vms")).context("cannot resolve the data dir")?;
    let demo = goterra_deploy::demo::load_through(router, bearer, &vms)
        .await
        .context("cannot load the demo catalogue")?;
    let ids = platform.config.data_dir.join("demo.env");
    std::fs::write(&ids, demo.shell_variables()).with_context(|| format!("cannot write {}", ids.display()))?;
    let key_file = platform.config.data_dir.join(goterra_auth::bootstrap::ADMIN_KEY_FILE);
    println!("{}", demo.instructions(&platform.config.public_url(), &key_file));
    println!("(the ids are in {} as NS, ENDPOINT and APP)", ids.display());
    println!(
        "or in a browser: {}/app (sign in with the admin API key, then demo -> cluster -> Run)",
        platform.config.public_url()
    );
    Ok(())
}

fn main() -> ExitCode {
    goterra_core::http::init_tracing();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
