//! `login`, `logout`, `whoami`, `config` and `user ...`.

use super::commands::UserCommand;
use super::config::{ConfigFile, Profile, Resolved, TokenCache};
use super::error::{CliResult, usage};
use super::output::{self, Format};
use super::prompt;
use super::session::Session;
use goterra_client::auth::{PasswordRequest, RegisterRequest, UpdateUserRequest, UserView};
use goterra_client::{Client, Sensitive, Uid};
use serde::Serialize;

pub async fn login(session: &Session, mut file: ConfigFile, apikey_stdin: bool, activate: bool) -> CliResult<()> {
    let url = session.resolved.url()?.to_string();
    let key = if apikey_stdin {
        prompt::stdin_line("API key")?
    } else if let Some(key) = &session.resolved.apikey
        && session.resolved.apikey_from != "profile"
    {
        key.expose().clone()
    } else {
        prompt::hidden("API key")?
    };
    let key = key.trim().to_string();
    if key.is_empty() {
        return Err(usage("the API key cannot be empty"));
    }
    let checked = Session {
        resolved: Resolved {
            url: Some(url.clone()),
            apikey: Some(Sensitive::new(key.clone())),
            ..session.resolved.clone()
        },
        paths: session.paths.clone(),
        verbose: session.verbose,
    };
    let (_, user) = checked.login().await?;
    let profile = session.resolved.profile.clone();
    file.profiles.insert(
        profile.clone(),
        Profile {
            url: url.clone(),
            apikey: key,
        },
    );
    if activate || file.active.is_none() {
        file.active = Some(profile.clone());
    }
    file.save(&session.paths)?;
    println!("Logged in to {url} as {} (profile {profile})", user.uid);
    Ok(())
}

pub fn logout(session: &Session, mut file: ConfigFile) -> CliResult<()> {
    let profile = &session.resolved.profile;
    let mut cache = TokenCache::load(&session.paths);
    let had_token = cache.forget(profile);
    if had_token {
        cache.save(&session.paths)?;
    }
    let had_key = match file.profiles.get_mut(profile) {
        Some(stored) if !stored.apikey.is_empty() => {
            stored.apikey.clear();
            true
        }
        _ => false,
    };
    if had_key {
        file.save(&session.paths)?;
    }
    if had_key || had_token {
        println!("Logged out of profile {profile}");
    } else {
        println!("Profile {profile} holds no credential");
    }
    Ok(())
}

pub async fn whoami(session: &Session, format: Format) -> CliResult<()> {
    let user = session.run(|client| async move { Ok(client.me().await?) }).await?;
    output::print(format, &user, || user_table(&user))
}

/// What `config` shows: never the key, only whether there is one.
#[derive(Serialize)]
struct ConfigView {
    profile: String,
    config_file: String,
    url: Option<String>,
    url_from: &'static str,
    apikey: &'static str,
    apikey_from: &'static str,
    profiles: Vec<String>,
}

pub fn show_config(session: &Session, file: &ConfigFile, format: Format) -> CliResult<()> {
    let resolved = &session.resolved;
    let view = ConfigView {
        profile: resolved.profile.clone(),
        config_file: session.paths.config.display().to_string(),
        url: resolved.url.clone(),
        url_from: resolved.url_from,
        apikey: if resolved.apikey.is_some() { "set" } else { "not set" },
        apikey_from: resolved.apikey_from,
        profiles: file.profiles.keys().cloned().collect(),
    };
    output::print(format, &view, || {
        output::details(vec![
            ("profile", view.profile.clone()),
            ("config file", view.config_file.clone()),
            (
                "url",
                format!("{} ({})", view.url.as_deref().unwrap_or("-"), view.url_from),
            ),
            ("API key", format!("{} ({})", view.apikey, view.apikey_from)),
            ("profiles", view.profiles.join(", ")),
        ])
    })
}

fn user_table(user: &UserView) -> comfy_table::Table {
    output::details(vec![
        ("uid", user.uid.clone()),
        ("email", user.email.clone()),
        ("admin", output::yes_no(user.admin)),
        ("super", output::yes_no(user.super_user)),
        (
            "kind",
            if user.kind.is_empty() {
                "local".into()
            } else {
                user.kind.clone()
            },
        ),
        ("ssh key", user.pub_key.clone()),
    ])
}

fn uid(text: &str) -> CliResult<Uid> {
    text.trim()
        .parse()
        .map_err(|err| usage(format!("invalid user id {text:?}: {err}")))
}

/// A new password: from stdin with `from_stdin`, else typed twice without echo.
fn new_password(from_stdin: bool) -> CliResult<String> {
    if from_stdin {
        return prompt::stdin_line("password");
    }
    let first = prompt::hidden("New password")?;
    let again = prompt::hidden("Again")?;
    if first != again {
        return Err(usage("the two passwords differ"));
    }
    Ok(first)
}

pub async fn user(session: &Session, command: UserCommand) -> CliResult<()> {
    match command {
        UserCommand::List(out) => {
            let users = session
                .run(|client| async move { Ok(client.users(None, Some(500)).await?) })
                .await?;
            output::print(out.output, &users, || {
                let mut table = output::table(&["UID", "Email", "Admin", "Super", "Kind"]);
                for user in &users {
                    table.add_row(vec![
                        user.uid.clone(),
                        user.email.clone(),
                        output::yes_no(user.admin),
                        output::yes_no(user.super_user),
                        user.kind.clone(),
                    ]);
                }
                table
            })
        }
        UserCommand::Show { uid: who, out } => {
            let who = uid(&who)?;
            let user = session
                .run(|client| {
                    let who = who.clone();
                    async move { Ok(client.user(&who).await?) }
                })
                .await?;
            output::print(out.output, &user, || user_table(&user))
        }
        UserCommand::Create {
            uid: who,
            email,
            admin,
            super_user,
            kind,
            pub_key,
            password_stdin,
        } => {
            let who = uid(&who)?;
            let password = new_password(password_stdin)?;
            let request = RegisterRequest {
                uid: who.to_string(),
                password,
                email: email.unwrap_or_default(),
                pub_key: pub_key.unwrap_or_default(),
                kind,
                admin: admin.then_some(true),
                super_user: super_user.then_some(true),
            };
            let created = session
                .run(|client| {
                    let request = request.clone();
                    async move { Ok(client.register(&request).await?) }
                })
                .await?;
            println!(
                "User {} created. Its API key (shown once):\n{}",
                created.id, created.apikey
            );
            Ok(())
        }
        UserCommand::Edit {
            uid: who,
            email,
            pub_key,
            admin,
            super_user,
            kind,
        } => {
            let who = uid(&who)?;
            let patch = UpdateUserRequest {
                email,
                pub_key,
                admin,
                super_user,
                kind,
            };
            let user = session
                .run(|client| {
                    let (who, patch) = (who.clone(), patch.clone());
                    async move { Ok(client.update_user(&who, &patch).await?) }
                })
                .await?;
            println!("User {} updated", user.uid);
            Ok(())
        }
        UserCommand::Password {
            uid: who,
            password_stdin,
        } => {
            let who = uid(&who)?;
            let client = session.client().await?;
            let me = client.me().await?;
            let password = new_password(password_stdin)?;
            let current_password = if me.uid == who.as_str() && !me.admin {
                Some(if password_stdin {
                    prompt::stdin_line("current password")?
                } else {
                    prompt::hidden("Current password")?
                })
            } else {
                None
            };
            let request = PasswordRequest {
                password,
                current_password,
            };
            change_password(&client, &who, &request).await?;
            println!("Password of {who} changed");
            Ok(())
        }
        UserCommand::Apikey { uid: who } => {
            let who = uid(&who)?;
            let key = session
                .run(|client| {
                    let who = who.clone();
                    async move { Ok(client.regenerate_api_key(&who).await?) }
                })
                .await?;
            println!(
                "New API key of {who} (shown once; the old one no longer works):\n{}",
                key.expose()
            );
            eprintln!("hint: if it is your own key, run `goterra-cli login` with the new one");
            Ok(())
        }
        UserCommand::Delete { uid: who, yes } => {
            let who = uid(&who)?;
            prompt::confirm(&format!("Delete user {who}?"), yes)?;
            session
                .run(|client| {
                    let who = who.clone();
                    async move { Ok(client.delete_user(&who).await?) }
                })
                .await?;
            println!("User {who} deleted");
            Ok(())
        }
    }
}

async fn change_password(client: &Client, who: &Uid, request: &PasswordRequest) -> CliResult<()> {
    client.change_password(who, request).await?;
    Ok(())
}
