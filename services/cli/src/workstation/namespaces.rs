//! `ns list|show|create|edit|delete`.

use super::commands::NsCommand;
use super::error::CliResult;
use super::output::{self, Format};
use super::prompt;
use super::resolve;
use super::session::Session;
use goterra_client::NamespaceId;
use goterra_client::deploy::{Namespace, NamespacePatch};

fn namespaces_table(namespaces: &[Namespace]) -> comfy_table::Table {
    let mut table = output::table(&["ID", "Name", "Owners", "Members", "Frozen"]);
    for ns in namespaces {
        table.add_row(vec![
            ns.id.clone(),
            ns.name.clone(),
            output::joined(&ns.owners),
            output::joined(&ns.members),
            output::yes_no(ns.freeze),
        ]);
    }
    table
}

fn print_one(format: Format, ns: &Namespace) -> CliResult<()> {
    output::print(format, ns, || namespaces_table(std::slice::from_ref(ns)))
}

/// Adds `added` (each once) and drops `removed`, keeping the order.
fn edited(mut users: Vec<String>, added: &[String], removed: &[String]) -> Vec<String> {
    for uid in added {
        if !users.contains(uid) {
            users.push(uid.clone());
        }
    }
    users.retain(|uid| !removed.contains(uid));
    users
}

pub async fn run(session: &Session, command: NsCommand) -> CliResult<()> {
    match command {
        NsCommand::List { all, out } => {
            let namespaces = session
                .run(|client| async move { Ok(client.namespaces(all).await?) })
                .await?;
            output::print(out.output, &namespaces, || namespaces_table(&namespaces))
        }
        NsCommand::Show { ns, out } => {
            let found = session
                .run(|client| {
                    let ns = ns.clone();
                    async move { resolve::namespace(&client, &ns).await }
                })
                .await?;
            print_one(out.output, &found)
        }
        NsCommand::Create { name } => {
            let id = session
                .run(|client| {
                    let name = name.clone();
                    async move { Ok(client.create_namespace(&name).await?) }
                })
                .await?;
            println!("Namespace {name} created: {id}");
            Ok(())
        }
        NsCommand::Edit {
            ns,
            add_owner,
            add_member,
            remove_owner,
            remove_member,
            freeze,
            unfreeze,
            name,
        } => {
            let updated = session
                .run(|client| {
                    let (ns, name) = (ns.clone(), name.clone());
                    let (add_owner, add_member) = (add_owner.clone(), add_member.clone());
                    let (remove_owner, remove_member) = (remove_owner.clone(), remove_member.clone());
                    async move {
                        let current = resolve::namespace(&client, &ns).await?;
                        let owners_changed = !add_owner.is_empty() || !remove_owner.is_empty();
                        let members_changed = !add_member.is_empty() || !remove_member.is_empty();
                        let patch = NamespacePatch {
                            name,
                            owners: owners_changed.then(|| edited(current.owners.clone(), &add_owner, &remove_owner)),
                            members: members_changed
                                .then(|| edited(current.members.clone(), &add_member, &remove_member)),
                            freeze: if freeze {
                                Some(true)
                            } else if unfreeze {
                                Some(false)
                            } else {
                                None
                            },
                        };
                        let id = NamespaceId::from_trusted(current.id);
                        Ok(client.update_namespace(&id, &patch).await?)
                    }
                })
                .await?;
            println!("Namespace {} updated", updated.name);
            Ok(())
        }
        NsCommand::Delete { ns, yes } => {
            prompt::confirm(&format!("Delete namespace {ns}?"), yes)?;
            session
                .run(|client| {
                    let ns = ns.clone();
                    async move {
                        let id = resolve::namespace_id(&client, &ns).await?;
                        Ok(client.delete_namespace(&id).await?)
                    }
                })
                .await?;
            println!("Namespace {ns} deleted");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_add_once_and_remove() {
        let users = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            edited(users, &["b".into(), "c".into()], &["a".into()]),
            vec!["b".to_string(), "c".to_string()]
        );
    }
}
