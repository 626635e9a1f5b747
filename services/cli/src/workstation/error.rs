//! How a workstation command fails, and the exit code each failure gives.

use goterra_client::ClientError;

pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_AUTH: u8 = 3;
pub const EXIT_UNREACHABLE: u8 = 4;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or input files: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Refused by the server, or a run that failed: exit 1.
    #[error("{0}")]
    Failed(String),
    /// No credential, or a wrong or expired one: exit 3.
    #[error("{0}")]
    Auth(String),
    /// The server cannot be reached: exit 4.
    #[error("{0}")]
    Unreachable(String),
}

pub type CliResult<T> = Result<T, CliError>;

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => EXIT_USAGE,
            Self::Failed(_) => EXIT_FAILURE,
            Self::Auth(_) => EXIT_AUTH,
            Self::Unreachable(_) => EXIT_UNREACHABLE,
        }
    }

    /// A hint printed under the error, where one helps.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Auth(_) => Some("log in with `goterra-cli login`, or set GOT_APIKEY"),
            Self::Unreachable(_) => Some("check the URL (`goterra-cli config`, GOT_URL) and that the server is up"),
            Self::Usage(_) => Some("see `goterra-cli --help`"),
            Self::Failed(_) => None,
        }
    }
}

impl From<ClientError> for CliError {
    fn from(err: ClientError) -> Self {
        match &err {
            ClientError::Unauthorized { .. } => Self::Auth(err.to_string()),
            ClientError::Unreachable { .. } => Self::Unreachable(err.to_string()),
            ClientError::InvalidUrl { .. } => Self::Usage(err.to_string()),
            ClientError::Server { .. } | ClientError::TooManyRequests { .. } | ClientError::Decode { .. } => {
                Self::Failed(err.to_string())
            }
        }
    }
}

pub fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

pub fn failed(message: impl Into<String>) -> CliError {
    CliError::Failed(message.into())
}
