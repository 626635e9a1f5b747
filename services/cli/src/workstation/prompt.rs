//! Reading from the user: hidden secrets, a line, a confirmation; or stdin for scripts.

use super::error::{CliError, CliResult, usage};
use std::io::{BufRead, IsTerminal, Write};

pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// A secret typed without echo on a terminal.
pub fn hidden(label: &str) -> CliResult<String> {
    if !interactive() {
        return Err(usage(format!("{label}: not a terminal; give it on stdin (see --help)")));
    }
    rpassword::prompt_password(format!("{label}: "))
        .map(|text| text.trim_end_matches(['\r', '\n']).to_string())
        .map_err(|err| CliError::Failed(format!("cannot read {label}: {err}")))
}

/// One line of stdin (trailing newline removed).
pub fn stdin_line(label: &str) -> CliResult<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|err| CliError::Failed(format!("cannot read {label} from stdin: {err}")))?;
    let line = line.trim_end_matches(['\r', '\n']).to_string();
    if line.is_empty() {
        return Err(usage(format!("{label}: stdin is empty")));
    }
    Ok(line)
}

/// A visible answer on a terminal.
pub fn line(label: &str) -> CliResult<String> {
    eprint!("{label}: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|err| CliError::Failed(format!("cannot read {label}: {err}")))?;
    Ok(answer.trim().to_string())
}

/// Asks before a deletion; off a terminal `--yes` is required.
pub fn confirm(question: &str, yes: bool) -> CliResult<()> {
    if yes {
        return Ok(());
    }
    if !interactive() {
        return Err(usage(format!("{question}: add --yes to confirm (not a terminal)")));
    }
    if line(&format!("{question} [y/N]"))?.eq_ignore_ascii_case("y") {
        Ok(())
    } else {
        Err(CliError::Failed("canceled".into()))
    }
}
