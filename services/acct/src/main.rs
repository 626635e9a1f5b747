fn main() -> std::process::ExitCode {
    goterra_core::service::standalone_main(goterra_acct::spec(), goterra_bus::platform_event_bus)
}
