//! acct's JSON shapes, defined once in `goterra-client` (see [`goterra_client::acct`]).

pub use goterra_client::acct::*;
