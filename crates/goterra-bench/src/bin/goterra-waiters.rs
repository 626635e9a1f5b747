//! Holds many waiting store requests and measures what they cost the server; prints
//! `name=value` lines (see `goterra_bench::waiters`).

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// The store's address, e.g. 127.0.0.1:8080 (it must run with GOT_FEAT_ANONYMOUS=1).
    #[arg(long)]
    server: std::net::SocketAddr,
    /// The store's process id.
    #[arg(long)]
    pid: u32,
    #[arg(long, default_value_t = 100_000)]
    waiters: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let report = goterra_bench::waiters::run(&goterra_bench::waiters::Scenario {
        server: args.server,
        pid: args.pid,
        waiters: args.waiters,
    })
    .await?;
    print!("{}", report.lines());
    Ok(())
}
