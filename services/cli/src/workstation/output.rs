//! `--output table|json|yaml` for every read command. `json` prints the API's own shapes (the
//! same field names as the HTTP API, documented in `docs/cli.md`), so scripts can rely on it;
//! tables fit the terminal width and are for people.

use super::error::{CliResult, failed};
use clap::{Args, ValueEnum};
use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;
use std::io::IsTerminal;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Yaml,
}

#[derive(Clone, Copy, Debug, Default, Args)]
pub struct OutputArgs {
    /// Output format: a table for people, or the API's JSON/YAML for scripts.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// A new table: the terminal's width on a terminal, plain ASCII otherwise.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_HORIZONTAL_ONLY);
    if !std::io::stdout().is_terminal() {
        table.load_preset(presets::ASCII_MARKDOWN);
        table.force_no_tty();
    }
    table.set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(header.to_vec());
    table
}

/// Prints `value` as JSON or YAML, or the table `tabular` builds.
pub fn print<T: Serialize>(format: Format, value: &T, tabular: impl FnOnce() -> Table) -> CliResult<()> {
    match format {
        Format::Json => {
            let text = serde_json::to_string_pretty(value).map_err(|err| failed(format!("cannot encode: {err}")))?;
            println!("{text}");
        }
        Format::Yaml => {
            let text = serde_yaml::to_string(value).map_err(|err| failed(format!("cannot encode: {err}")))?;
            print!("{text}");
        }
        Format::Table => println!("{}", tabular()),
    }
    Ok(())
}

/// Key/value rows of one object, for `show` commands.
pub fn details(rows: Vec<(&str, String)>) -> Table {
    let mut table = table(&["Field", "Value"]);
    for (name, value) in rows {
        table.add_row(vec![name.to_string(), value]);
    }
    table
}

pub fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_string()
}

pub fn joined(values: &[String]) -> String {
    values.join(", ")
}

/// Unix seconds as UTC `YYYY-MM-DD HH:MM:SS`, `-` for 0.
pub fn time(seconds: i64) -> String {
    if seconds <= 0 {
        return "-".to_string();
    }
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        (rest % 3600) / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to a (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Colours only on a terminal, and never with `NO_COLOR` set.
pub fn colours_on_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(time(0), "-");
        assert_eq!(time(1), "1970-01-01 00:00:01");
        assert_eq!(time(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(time(951_782_400), "2000-02-29 00:00:00");
    }
}
