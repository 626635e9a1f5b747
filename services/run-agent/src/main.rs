fn main() -> std::process::ExitCode {
    goterra_core::service::standalone_main(goterra_run_agent::spec(), goterra_bus::platform_event_bus)
}
