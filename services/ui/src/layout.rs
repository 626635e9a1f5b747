//! The page shell (navigation, messages) and small pieces every page uses. Maud escapes every
//! interpolated value, so data from the API is always shown as text.

use crate::assets;
use crate::session::{CSRF_FIELD, Session};
use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, html};

/// What the shell needs to know about the request.
pub struct Chrome<'a> {
    pub session: Option<&'a Session>,
    /// A one-off message (after a redirect).
    pub flash: Option<String>,
    /// Which top-level section is current, for `aria-current`.
    pub section: Section,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    None,
    Namespaces,
    Runs,
    Users,
    Usage,
    Api,
    Profile,
}

pub fn url(path: &str) -> String {
    format!("{}{path}", crate::PREFIX)
}

pub fn page(chrome: &Chrome<'_>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Goterra" }
                link rel="stylesheet" href=(assets::STYLESHEET.url());
                script src=(assets::SCRIPT.url()) defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="topbar" {
                    a class="brand" href=(url("")) { "Goterra" }
                    @if let Some(session) = chrome.session {
                        nav aria-label="Main" {
                            ul {
                                (nav_link(chrome.section, Section::Namespaces, "/ns", "Namespaces"))
                                (nav_link(chrome.section, Section::Runs, "/run", "Runs"))
                                @if session.admin {
                                    (nav_link(chrome.section, Section::Users, "/users", "Users"))
                                    (nav_link(chrome.section, Section::Usage, "/usage", "Usage"))
                                }
                                (nav_link(chrome.section, Section::Api, "/api", "API"))
                                (nav_link(chrome.section, Section::Profile, "/profile", &session.uid))
                            }
                        }
                        form method="post" action=(url("/logout")) class="logout" {
                            (csrf_field(session))
                            button type="submit" class="link" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    @if let Some(message) = &chrome.flash {
                        p class="flash" role="status" { (message) }
                    }
                    (body)
                }
            }
        }
    }
}

fn nav_link(current: Section, section: Section, path: &str, label: &str) -> Markup {
    html! {
        li {
            a href=(url(path)) aria-current=[(current == section).then_some("page")] { (label) }
        }
    }
}

/// The hidden field of every state-changing form.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(session.csrf()); }
}

/// A page for an error, without the navigation (the session may be gone).
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    let chrome = Chrome {
        session: None,
        flash: None,
        section: Section::None,
    };
    page(
        &chrome,
        status.canonical_reason().unwrap_or("Error"),
        html! {
            h1 { (status.canonical_reason().unwrap_or("Error")) }
            p class="error" role="alert" { (message) }
            p { a href=(url("")) { "Back to Goterra" } }
        },
    )
}

/// An inline error next to a form.
pub fn form_error(message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message {
            p class="error" role="alert" { (message) }
        }
    }
}

/// A run status, coloured by its phase.
pub fn status_badge(status: &str) -> Markup {
    html! { span class=(format!("status {}", status_class(status))) { (status) } }
}

pub fn status_class(status: &str) -> &'static str {
    if status.ends_with("_success") {
        "ok"
    } else if status.ends_with("_failure") {
        "failed"
    } else if status.ends_with("_in_progress") {
        "busy"
    } else if status == "canceled" {
        "canceled"
    } else {
        "pending"
    }
}

/// Whether a run status is final (no action in flight).
pub fn is_terminal(status: &str) -> bool {
    status.ends_with("_success") || status.ends_with("_failure") || status == "canceled"
}

/// A unix time as an absolute UTC time, with a relative one added in the browser.
pub fn time(unix: i64) -> Markup {
    if unix <= 0 {
        return html! { span class="muted" { "—" } };
    }
    let text = format_utc(unix);
    html! { time datetime=(text) data-relative="" title=(text) { (text) } }
}

/// `YYYY-MM-DDTHH:MM:SSZ` from unix seconds (civil-from-days, proleptic Gregorian).
pub fn format_utc(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// A duration in seconds, for people: `42 s`, `3 min 5 s`, `2 h 10 min`.
pub fn duration(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    match total {
        0..60 => format!("{total} s"),
        60..3600 => format!("{} min {} s", total / 60, total % 60),
        _ => format!("{} h {} min", total / 3600, (total % 3600) / 60),
    }
}

/// Public/private marker of a catalogue object.
pub fn visibility(public: bool) -> Markup {
    html! {
        @if public { span class="tag public" { "public" } } @else { span class="tag" { "private" } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_are_formatted() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_764_806_399), "2025-12-03T23:59:59Z");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(42.4), "42 s");
        assert_eq!(duration(185.0), "3 min 5 s");
        assert_eq!(duration(7_800.0), "2 h 10 min");
    }

    #[test]
    fn statuses_have_phases() {
        assert_eq!(status_class("deploy_success"), "ok");
        assert_eq!(status_class("destroy_failure"), "failed");
        assert_eq!(status_class("deploy_in_progress"), "busy");
        assert_eq!(status_class("deploy_pending"), "pending");
        assert!(is_terminal("canceled") && !is_terminal("destroy_pending"));
    }
}
