//! Namespaces and their users (`deploy_namespaces`, `deploy_namespace_users`), and the
//! membership rule every service asks: [`NamespaceRepo::is_member`].

use super::runs;
use super::support::{Page, StorageError, StorageResult, id_column, now, placeholders};
use goterra_client::ids::{NamespaceId, Uid};
use goterra_core::Identity;
use goterra_db::Db;

pub const ROLE_OWNER: &str = "owner";
pub const ROLE_MEMBER: &str = "member";

/// A namespace with its owners and members.
#[derive(Clone, Debug)]
pub struct NamespaceRecord {
    pub id: NamespaceId,
    pub name: String,
    pub freeze: bool,
    pub owners: Vec<Uid>,
    pub members: Vec<Uid>,
}

impl NamespaceRecord {
    pub fn is_owner(&self, uid: &Uid) -> bool {
        self.owners.contains(uid)
    }

    /// Owners are members too.
    pub fn is_member(&self, uid: &Uid) -> bool {
        self.is_owner(uid) || self.members.contains(uid)
    }

    /// Reads and writes the namespace's catalogue.
    pub fn can_use(&self, user: &Identity) -> bool {
        user.is_admin() || self.is_member(&Uid::from_trusted(user.uid.as_str()))
    }

    /// Changes or deletes the namespace itself.
    pub fn can_manage(&self, user: &Identity) -> bool {
        user.is_admin() || self.is_owner(&Uid::from_trusted(user.uid.as_str()))
    }

    pub fn into_view(self) -> crate::model::Namespace {
        crate::model::Namespace {
            id: self.id.into_string(),
            name: self.name,
            owners: self.owners.into_iter().map(Uid::into_string).collect(),
            members: self.members.into_iter().map(Uid::into_string).collect(),
            freeze: self.freeze,
        }
    }
}

/// Which namespaces a list shows.
#[derive(Clone, Copy, Debug)]
pub enum NamespaceFilter<'a> {
    Every,
    /// Those where the user is an owner or a member.
    MemberIs(&'a Uid),
}

/// What a namespace still holds, so it cannot be deleted yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespaceContents {
    pub recipes: i64,
    pub templates: i64,
    pub applications: i64,
    pub endpoints: i64,
    /// Runs not destroyed yet (destroyed ones are history and go with the namespace).
    pub live_runs: i64,
}

#[derive(Clone, Copy)]
pub struct NamespaceRepo<'a> {
    db: &'a Db,
}

impl<'a> NamespaceRepo<'a> {
    pub fn new(db: &'a Db) -> Self {
        Self { db }
    }

    /// The membership rule: whether `uid` is an owner or a member of the namespace `id` (ids
    /// only: a namespace's name never stands for another one's id).
    pub async fn is_member(&self, id: &NamespaceId, uid: &Uid) -> StorageResult<bool> {
        let row = sqlx::query("SELECT 1 AS one FROM deploy_namespace_users WHERE namespace_id = $1 AND uid = $2")
            .bind(id.to_string())
            .bind(uid.to_string())
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.is_some())
    }

    pub async fn find(&self, id: &NamespaceId) -> StorageResult<Option<NamespaceRecord>> {
        Ok(self.find_many(std::slice::from_ref(id)).await?.pop())
    }

    pub async fn load(&self, id: &NamespaceId) -> StorageResult<NamespaceRecord> {
        self.find(id).await?.ok_or(StorageError::Missing("namespace"))
    }

    /// A namespace by id or, failing that, by name (ids win: a name cannot shadow another id).
    pub async fn load_by_id_or_name(&self, key: &str) -> StorageResult<NamespaceRecord> {
        if let Some(namespace) = self.find(&NamespaceId::from_trusted(key)).await? {
            return Ok(namespace);
        }
        let row = sqlx::query("SELECT id FROM deploy_namespaces WHERE name = $1")
            .bind(key.to_string())
            .fetch_optional(self.db.pool())
            .await?
            .ok_or(StorageError::Missing("namespace"))?;
        self.load(&id_column(&row, "id")?).await
    }

    /// Several namespaces in two queries, in the order of `ids` (at most one page); unknown ids
    /// are left out.
    pub async fn find_many(&self, ids: &[NamespaceId]) -> StorageResult<Vec<NamespaceRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = placeholders(1, ids.len());
        let pool = self.db.pool();
        let namespaces_sql = format!(r#"SELECT id, name, "freeze" FROM deploy_namespaces WHERE id IN ({list})"#);
        let mut query = sqlx::query_as::<_, (String, String, i64)>(&namespaces_sql);
        for id in ids {
            query = query.bind(id.to_string());
        }
        let rows = query.fetch_all(pool).await?;
        let users_sql = format!(
            "SELECT namespace_id, uid, role FROM deploy_namespace_users WHERE namespace_id IN ({list}) \
             ORDER BY namespace_id, position, uid"
        );
        let mut users_query = sqlx::query_as::<_, (String, String, String)>(&users_sql);
        for id in ids {
            users_query = users_query.bind(id.to_string());
        }
        let users = users_query.fetch_all(pool).await?;
        let mut records = Vec::with_capacity(ids.len());
        for id in ids {
            let Some((_, name, freeze)) = rows.iter().find(|(row_id, _, _)| id == row_id.as_str()).cloned() else {
                continue;
            };
            let mut record = NamespaceRecord {
                id: id.clone(),
                name,
                freeze: freeze != 0,
                owners: Vec::new(),
                members: Vec::new(),
            };
            for (_, uid, role) in users
                .iter()
                .filter(|(namespace_id, _, _)| record.id.as_str() == namespace_id)
            {
                let uid = Uid::from_trusted(uid.clone());
                if role == ROLE_OWNER {
                    record.owners.push(uid);
                } else {
                    record.members.push(uid);
                }
            }
            records.push(record);
        }
        Ok(records)
    }

    /// A page of namespaces, by name.
    pub async fn list(&self, filter: NamespaceFilter<'_>, page: Page) -> StorageResult<Vec<NamespaceRecord>> {
        let ids: Vec<(String,)> = match filter {
            NamespaceFilter::Every => {
                sqlx::query_as("SELECT id FROM deploy_namespaces ORDER BY name, id LIMIT $1 OFFSET $2")
                    .bind(page.limit)
                    .bind(page.skip)
                    .fetch_all(self.db.pool())
                    .await?
            }
            NamespaceFilter::MemberIs(uid) => {
                sqlx::query_as(
                    "SELECT n.id FROM deploy_namespaces n JOIN deploy_namespace_users u ON u.namespace_id = n.id \
                     WHERE u.uid = $1 ORDER BY n.name, n.id LIMIT $2 OFFSET $3",
                )
                .bind(uid.to_string())
                .bind(page.limit)
                .bind(page.skip)
                .fetch_all(self.db.pool())
                .await?
            }
        };
        let ids: Vec<NamespaceId> = ids.into_iter().map(|(id,)| NamespaceId::from_trusted(id)).collect();
        self.find_many(&ids).await
    }

    /// Ids of the namespaces where `uid` is an owner or a member.
    pub async fn ids_of_member(&self, uid: &Uid) -> StorageResult<Vec<NamespaceId>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT namespace_id FROM deploy_namespace_users WHERE uid = $1")
            .bind(uid.to_string())
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows.into_iter().map(|(id,)| NamespaceId::from_trusted(id)).collect())
    }

    /// Stores a new namespace with its users. [`StorageError::Duplicate`]: the name is taken.
    pub async fn create(&self, namespace: &NamespaceRecord) -> StorageResult<()> {
        let mut tx = self.db.pool().begin().await?;
        sqlx::query(r#"INSERT INTO deploy_namespaces (id, name, "freeze", created_at) VALUES ($1, $2, $3, $4)"#)
            .bind(namespace.id.to_string())
            .bind(namespace.name.clone())
            .bind(goterra_db::flag(namespace.freeze))
            .bind(now())
            .execute(&mut *tx)
            .await?;
        write_users(&mut tx, namespace).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Saves name, freeze and users. [`StorageError::Duplicate`]: the name is taken.
    pub async fn update(&self, namespace: &NamespaceRecord) -> StorageResult<()> {
        let mut tx = self.db.pool().begin().await?;
        sqlx::query(r#"UPDATE deploy_namespaces SET name = $2, "freeze" = $3 WHERE id = $1"#)
            .bind(namespace.id.to_string())
            .bind(namespace.name.clone())
            .bind(goterra_db::flag(namespace.freeze))
            .execute(&mut *tx)
            .await?;
        write_users(&mut tx, namespace).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn contents(&self, id: &NamespaceId) -> StorageResult<NamespaceContents> {
        let count = |table: &'static str| async move {
            let (count,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table} WHERE namespace_id = $1"))
                .bind(id.to_string())
                .fetch_one(self.db.pool())
                .await?;
            Ok::<_, StorageError>(count)
        };
        Ok(NamespaceContents {
            recipes: count("deploy_recipes").await?,
            templates: count("deploy_templates").await?,
            applications: count("deploy_apps").await?,
            endpoints: count("deploy_endpoints").await?,
            live_runs: runs::RunRepo::new(self.db).live_count_in(id).await?,
        })
    }

    /// Deletes the namespace with its users' endpoint defaults and its (destroyed) runs.
    /// [`StorageError::Referenced`]: catalogue objects were added meanwhile.
    pub async fn delete(&self, id: &NamespaceId) -> StorageResult<()> {
        let mut tx = self.db.pool().begin().await?;
        for sql in [
            "DELETE FROM deploy_endpoint_defaults WHERE namespace_id = $1",
            "DELETE FROM deploy_run_logs WHERE run_id IN (SELECT id FROM deploy_runs WHERE namespace_id = $1)",
            "DELETE FROM deploy_run_states WHERE run_id IN (SELECT id FROM deploy_runs WHERE namespace_id = $1)",
            "DELETE FROM deploy_runs WHERE namespace_id = $1",
            "DELETE FROM deploy_namespace_users WHERE namespace_id = $1",
            "DELETE FROM deploy_namespaces WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id.to_string()).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn write_users(tx: &mut sqlx::Transaction<'_, sqlx::Any>, namespace: &NamespaceRecord) -> StorageResult<()> {
    sqlx::query("DELETE FROM deploy_namespace_users WHERE namespace_id = $1")
        .bind(namespace.id.to_string())
        .execute(&mut **tx)
        .await?;
    let owners = namespace.owners.iter().map(|uid| (uid, ROLE_OWNER));
    let members = namespace.members.iter().map(|uid| (uid, ROLE_MEMBER));
    for (position, (uid, role)) in owners.chain(members).enumerate() {
        sqlx::query("INSERT INTO deploy_namespace_users (namespace_id, uid, role, position) VALUES ($1, $2, $3, $4)")
            .bind(namespace.id.to_string())
            .bind(uid.to_string())
            .bind(role)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
