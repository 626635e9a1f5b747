//! JSON shapes of the run routes, defined once in `goterra-client`. Field names are the
//! original's (reference §4.8): `appID`, `UID`, `secretinputs` (always `null` in answers),
//! `start`/`end`, `outputs` as the raw text of `terraform output -json`.

pub use goterra_client::runs::{Run, RunCreated, RunEvent, RunList, RunLog, RunRequest, TerraformPreview};
