//! A wrapper for secrets so they cannot reach a log line or an error message by accident. It is
//! defined with the JSON shapes in `goterra-client`, which carries secrets in request bodies.

pub use goterra_client::sensitive::Sensitive;
