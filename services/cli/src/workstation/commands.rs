//! The workstation command tree (clap). `docs/cli.md` is generated from it.

use super::output::OutputArgs;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Options of every workstation command.
#[derive(Args, Clone, Debug, Default)]
pub struct Global {
    /// Profile of the configuration file to use (env GOT_PROFILE; default: the active one).
    #[arg(long, env = "GOT_PROFILE", global = true)]
    pub profile: Option<String>,
    /// Print each HTTP call (method, URL, status, time) on stderr; never a credential.
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
}

#[derive(Subcommand, Debug)]
pub enum WorkCommand {
    /// Save the server URL and your API key in a profile, and check them.
    #[command(after_help = "Examples:\n  goterra-cli login --url https://goterra.example.org\n  \
                            echo \"$KEY\" | goterra-cli login --url https://goterra.example.org --apikey-stdin\n  \
                            goterra-cli --profile staging login --url https://staging.example.org")]
    Login {
        /// Read the API key from standard input (for scripts) instead of a hidden prompt.
        #[arg(long)]
        apikey_stdin: bool,
        /// Make this profile the active one.
        #[arg(long)]
        activate: bool,
    },
    /// Forget the profile's API key and cached token.
    Logout,
    /// Who the API key belongs to.
    Whoami(OutputArgs),
    /// The active profile, its URL and where each setting comes from (never the key).
    Config(OutputArgs),
    /// Namespaces: teams and their catalogue.
    #[command(subcommand, visible_alias = "namespace")]
    Ns(NsCommand),
    /// Endpoints (clouds), your secret for one, and your default input values.
    #[command(subcommand)]
    Endpoint(EndpointCommand),
    /// Recipes: scripts run in the VMs at boot.
    #[command(subcommand)]
    Recipe(ItemCommand),
    /// Templates: one Terraform file per endpoint kind.
    #[command(subcommand)]
    Template(ItemCommand),
    /// Applications: a template and the recipes of each VM role.
    #[command(subcommand, visible_alias = "application")]
    App(ItemCommand),
    /// Import or check a directory laid out like the community catalogue.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Runs: start, follow, inspect, cancel and destroy deployments.
    #[command(subcommand)]
    Run(RunCommand),
    /// Users (admins; yourself where allowed).
    #[command(subcommand)]
    User(UserCommand),
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  goterra-cli completions bash > /etc/bash_completion.d/goterra-cli")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub enum NsCommand {
    /// Your namespaces (`--all`: every namespace, admins).
    List {
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// One namespace, by id or name.
    Show {
        ns: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Create a namespace; you become its owner.
    Create { name: String },
    /// Change owners, members, or the freeze flag (admins).
    #[command(after_help = "Example:\n  goterra-cli ns edit team --add-member bob --remove-owner carol")]
    Edit {
        ns: String,
        #[arg(long, value_name = "UID")]
        add_owner: Vec<String>,
        #[arg(long, value_name = "UID")]
        add_member: Vec<String>,
        #[arg(long, value_name = "UID")]
        remove_owner: Vec<String>,
        #[arg(long, value_name = "UID")]
        remove_member: Vec<String>,
        /// Refuse new runs in the namespace (admins).
        #[arg(long, conflicts_with = "unfreeze")]
        freeze: bool,
        #[arg(long)]
        unfreeze: bool,
        /// Rename the namespace.
        #[arg(long)]
        name: Option<String>,
    },
    /// Delete an empty namespace.
    Delete {
        ns: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// `list|show|create|update|delete` of one catalogue kind.
#[derive(Subcommand, Debug)]
pub enum ItemCommand {
    /// The namespace's objects with `--ns`, else the public ones.
    List {
        #[arg(long)]
        ns: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// One object, by id or name.
    Show {
        item: String,
        #[arg(long)]
        ns: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Create from a YAML or JSON file: the API's object, or a community catalogue file
    /// (`recipe.yaml` beside `recipe.sh`, `template.yaml` beside `<kind>/<file>`, `app.yaml`,
    /// `endpoint.yaml`), whose `name/version` references are resolved in the namespace.
    #[command(
        after_help = "Examples:\n  goterra-cli recipe create --ns team recipes/k3s/v1.0/recipe.yaml\n  \
                            goterra-cli app create --ns team app.json --public"
    )]
    Create {
        file: PathBuf,
        #[arg(long)]
        ns: String,
        /// Make it usable from every namespace.
        #[arg(long)]
        public: bool,
    },
    /// Change an object (by id or name) with the fields of a YAML or JSON file.
    Update {
        item: String,
        file: PathBuf,
        #[arg(long)]
        ns: String,
    },
    /// Delete an object (by id or name).
    Delete {
        item: String,
        #[arg(long)]
        ns: String,
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum EndpointCommand {
    #[command(flatten)]
    Item(ItemCommand),
    /// Your credential for an endpoint (stored encrypted, never shown).
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Your default input values for an endpoint; `--set` changes them.
    #[command(after_help = "Example:\n  goterra-cli endpoint defaults cloud --ns team --set flavor=m1.small,m1.large")]
    Defaults {
        endpoint: String,
        #[arg(long)]
        ns: String,
        /// `NAME=VALUE[,VALUE...]`, repeatable; replaces your defaults.
        #[arg(long, value_name = "NAME=VALUES")]
        set: Vec<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Store your cloud user name and password for the endpoint (the password is read without
    /// echo, or from stdin with `--password-stdin`).
    Set {
        endpoint: String,
        #[arg(long)]
        ns: String,
        /// Cloud user name.
        #[arg(long = "user")]
        user: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Whether you have a secret for the endpoint, and its user name.
    Show {
        endpoint: String,
        #[arg(long)]
        ns: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Forget your secret for the endpoint.
    Delete {
        endpoint: String,
        #[arg(long)]
        ns: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Import `apps/<name>/<version>/`, `recipes/…`, `templates/…`, `endpoints/<name>/` into a
    /// namespace: references resolved, dependencies first, each item upserted by (directory
    /// name, version), so a second import changes nothing.
    #[command(
        after_help = "Example:\n  goterra-cli catalog import ./goterra-community --ns goterra --public --dry-run"
    )]
    Import {
        dir: PathBuf,
        #[arg(long)]
        ns: String,
        /// Make every imported item public.
        #[arg(long)]
        public: bool,
        /// Report what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Check a catalogue directory offline: files, required fields, references.
    Lint {
        dir: PathBuf,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum RunCommand {
    /// Start a run of an application (name or id) on an endpoint (name or id).
    #[command(
        after_help = "Examples:\n  goterra-cli run start cluster --ns demo --endpoint local -i workers=2 --wait\n  \
                            goterra-cli run start cluster --ns demo --endpoint local --inputs-file inputs.yaml --follow"
    )]
    Start {
        app: String,
        #[arg(long)]
        ns: String,
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        name: Option<String>,
        /// `NAME=VALUE` input, repeatable.
        #[arg(long = "input", short = 'i', value_name = "NAME=VALUE")]
        inputs: Vec<String>,
        /// YAML or JSON map of inputs (the original's `params:` form is read too).
        #[arg(long)]
        inputs_file: Option<PathBuf>,
        /// Sensitive input NAME, read without echo (or `NAME=VALUE` from a script); repeatable.
        #[arg(long = "secret", value_name = "NAME")]
        secrets: Vec<String>,
        /// Wait until the deployment ends, then print its outputs; exit 1 if it failed.
        #[arg(long)]
        wait: bool,
        /// Stream the Terraform log until the deployment ends.
        #[arg(long, conflicts_with = "wait")]
        follow: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Your runs (`--ns`: a namespace's; `--all`: every run you may see).
    List {
        #[arg(long)]
        ns: Option<String>,
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// A run, its outputs, and each VM's recipe status from the store.
    Show {
        run: String,
        #[arg(long)]
        ns: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// The run's Terraform log (`-f`: follow it live).
    Logs {
        run: String,
        #[arg(long)]
        ns: Option<String>,
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Stop the action in progress.
    Cancel {
        run: String,
        #[arg(long)]
        ns: Option<String>,
    },
    /// Destroy the run's resources.
    Destroy {
        run: String,
        #[arg(long)]
        ns: Option<String>,
        /// Wait until the destruction ends; exit 1 if it failed.
        #[arg(long)]
        wait: bool,
    },
    /// Wait until the run's action ends; exit 1 if it failed.
    Wait {
        run: String,
        #[arg(long)]
        ns: Option<String>,
    },
}

/// Which run's store deployment (`--deployment`/`GOT_DEPLOYMENT` gives one directly).
#[derive(Args, Clone, Debug, Default)]
pub struct StoreTarget {
    /// Run whose deployment to use (your credentials, not a deployment token).
    #[arg(long)]
    pub run: Option<String>,
    /// Namespace of `--run` (found among your runs when left out).
    #[arg(long = "run-ns", value_name = "NS")]
    pub ns: Option<String>,
}

/// Store commands on a run's deployment, beside the in-VM `get`/`put`/`create`/`delete`.
#[derive(Subcommand, Debug)]
pub enum RunStoreCommand {
    /// Every key of a run's deployment.
    #[command(after_help = "Example:\n  goterra-cli store dump --run RUN_ID --filter status_")]
    Dump {
        #[command(flatten)]
        target: StoreTarget,
        /// Only keys starting with this prefix.
        #[arg(long)]
        filter: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Print `key = value` for each key as it appears or changes, until --timeout minutes.
    #[command(after_help = "Example:\n  goterra-cli store watch --run RUN_ID --filter status_ --timeout 10")]
    Watch {
        #[command(flatten)]
        target: StoreTarget,
        #[arg(long)]
        filter: Option<String>,
        /// Seconds between two looks.
        #[arg(long, default_value_t = 2)]
        interval: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Every user (admins).
    List(OutputArgs),
    /// One user.
    Show {
        uid: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Create a user (admins); prints its API key once. The password is read without echo,
    /// or from stdin with `--password-stdin`.
    Create {
        uid: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        admin: bool,
        #[arg(long = "super")]
        super_user: bool,
        /// `""` for local accounts.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        pub_key: Option<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's email, SSH key or roles.
    Edit {
        uid: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        pub_key: Option<String>,
        #[arg(long)]
        admin: Option<bool>,
        #[arg(long = "super")]
        super_user: Option<bool>,
        #[arg(long)]
        kind: Option<String>,
    },
    /// Change a password (read without echo, or from stdin: new password, then the current one
    /// when changing your own).
    Password {
        uid: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Issue a new API key (the old one stops working); prints it once.
    Apikey { uid: String },
    /// Delete a user.
    Delete {
        uid: String,
        #[arg(long, short = 'y')]
        yes: bool,
    },
}
