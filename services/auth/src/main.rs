fn main() -> std::process::ExitCode {
    goterra_core::service::standalone_main(goterra_auth::spec(), goterra_bus::platform_event_bus)
}
