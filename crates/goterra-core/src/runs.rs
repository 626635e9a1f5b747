//! Wire types of a run's life, shared by deploy (which creates runs and answers agents) and the
//! run agent (which executes them). Defined with every JSON shape in `goterra-client`.
//!
//! The queue carries only a [`RunJob`] (`{"action","id"}`): secrets never travel through the
//! broker. An agent that takes a job asks deploy for the [`RunSpec`] over HTTPS with its agent
//! credential, streams [`LogLines`], and reports a [`RunReport`]. The agent routes on deploy are:
//!
//! | Method and path | Body | Answer |
//! |---|---|---|
//! | `GET /deploy/agent/run/{id}/spec?action=deploy\|destroy` | – | [`RunSpec`] |
//! | `POST /deploy/agent/run/{id}/started` | – | [`AgentAnswer`] |
//! | `POST /deploy/agent/run/{id}/log` | [`LogLines`] | [`AgentAnswer`] |
//! | `POST /deploy/agent/run/{id}/heartbeat` | – | [`AgentAnswer`] |
//! | `POST /deploy/agent/run/{id}/finished` | [`RunReport`] | [`AgentAnswer`] |

pub use goterra_client::runs::{
    AgentAnswer, CLAIM_HEADER, LogLines, RunAction, RunJob, RunReport, RunSpec, RunStatus, StateBackend,
};
pub use goterra_client::sensitive::sensitive_serde;
