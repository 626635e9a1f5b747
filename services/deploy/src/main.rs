fn main() -> std::process::ExitCode {
    goterra_core::service::standalone_main(goterra_deploy::spec(), goterra_bus::platform_event_bus)
}
