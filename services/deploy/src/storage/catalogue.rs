//! The catalogue tables (`deploy_recipes`, `deploy_templates`, `deploy_apps`,
//! `deploy_endpoints`): one row per object, its JSON body plus the columns queries need, and the
//! relation rows derived from it. [`Stored`] says how each kind maps to its table.

use super::runs::{RunRepo, RunUse};
use super::support::{Page, StorageResult, column, id_column};
use crate::app_recipes::recipe_ids;
use crate::model::{Application, Endpoint, Recipe, Template};
use goterra_client::deploy::CatalogueItem;
use goterra_client::ids::{ApplicationId, EndpointId, NamespaceId, RecipeId, TemplateId, TypedId};
use goterra_db::Db;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use std::future::Future;
use std::marker::PhantomData;

/// An object that uses another one (and so keeps it from being deleted or made private).
#[derive(Clone, Debug)]
pub struct Dependent {
    pub kind: &'static str,
    pub name: String,
    pub namespace_id: NamespaceId,
}

/// How a catalogue kind is stored. Its id type, name and namespace come from the shape's
/// [`CatalogueItem`].
pub trait Stored: CatalogueItem + Serialize + DeserializeOwned + Send + Sync + 'static {
    const TABLE: &'static str;
    /// Kind-specific columns, written from [`Stored::extra_values`] in this order.
    const EXTRA_COLUMNS: &'static [&'static str];
    /// Relation rows `(table, owner column, related column)` derived from the object
    /// ([`Stored::related_ids`]), rewritten on every write.
    const RELATION: Option<(&'static str, &'static str, &'static str)> = None;
    /// Rows of other tables owned by the object `(table, column)`, removed with it.
    const OWNED: &'static [(&'static str, &'static str)] = &[];

    fn is_public(&self) -> bool;
    fn is_frozen(&self) -> bool;
    fn ts(&self) -> i64;
    fn set_server_fields(&mut self, id: &Self::Id, namespace: &NamespaceId, ts: i64);
    fn extra_values(&self) -> Vec<Option<String>>;

    fn related_ids(&self) -> Vec<String> {
        Vec::new()
    }

    /// Objects (or runs) that use the object `id`.
    fn dependents(db: &Db, id: &Self::Id) -> impl Future<Output = StorageResult<Vec<Dependent>>> + Send;
}

/// Which objects a list shows.
#[derive(Clone, Copy, Debug)]
pub enum CatalogueFilter<'a> {
    InNamespace(&'a NamespaceId),
    Public,
    /// Public ones and those of the namespace.
    UsableFrom(&'a NamespaceId),
}

pub struct CatalogueRepo<'a, K> {
    db: &'a Db,
    kind: PhantomData<K>,
}

impl<'a, K: Stored> CatalogueRepo<'a, K> {
    pub fn new(db: &'a Db) -> Self {
        Self { db, kind: PhantomData }
    }

    fn decode(row: &AnyRow) -> StorageResult<K> {
        let mut object: K = serde_json::from_str(&column::<String>(row, "body")?)?;
        let id: K::Id = id_column(row, "id")?;
        let namespace: NamespaceId = id_column(row, "namespace_id")?;
        object.set_server_fields(&id, &namespace, column(row, "ts")?);
        Ok(object)
    }

    /// One object by id, whatever its namespace.
    pub async fn find(&self, id: &K::Id) -> StorageResult<Option<K>> {
        let sql = format!("SELECT id, namespace_id, ts, body FROM {} WHERE id = $1", K::TABLE);
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(Self::decode).transpose()
    }

    /// A page of objects, by name.
    pub async fn list(&self, filter: CatalogueFilter<'_>, page: Page) -> StorageResult<Vec<K>> {
        let (condition, bind) = match filter {
            CatalogueFilter::InNamespace(namespace) => ("namespace_id = $1", Some(namespace)),
            CatalogueFilter::Public => ("public = 1", None),
            CatalogueFilter::UsableFrom(namespace) => ("public = 1 OR namespace_id = $1", Some(namespace)),
        };
        let first = if bind.is_some() { 2 } else { 1 };
        let sql = format!(
            "SELECT id, namespace_id, ts, body FROM {} WHERE {condition} ORDER BY name, id LIMIT ${first} OFFSET ${}",
            K::TABLE,
            first + 1
        );
        let mut query = sqlx::query(&sql);
        if let Some(value) = bind {
            query = query.bind(value.to_string());
        }
        let rows = query.bind(page.limit).bind(page.skip).fetch_all(self.db.pool()).await?;
        rows.iter().map(Self::decode).collect()
    }

    /// Stores a new object. [`super::StorageError::Duplicate`]: its name is taken in its
    /// namespace; [`super::StorageError::Referenced`]: an object it refers to is gone.
    pub async fn insert(&self, object: &K) -> StorageResult<()> {
        let extra = K::EXTRA_COLUMNS;
        let columns: String = extra.iter().map(|c| format!(", {c}")).collect();
        let values: String = (0..extra.len()).map(|i| format!(", ${}", 8 + i)).collect();
        let sql = format!(
            "INSERT INTO {} (id, namespace_id, name, public, frozen, ts, body{columns}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7{values})",
            K::TABLE
        );
        let query = sqlx::query(&sql)
            .bind(object.id().to_string())
            .bind(object.namespace().to_string())
            .bind(object.name().to_string())
            .bind(goterra_db::flag(object.is_public()))
            .bind(goterra_db::flag(object.is_frozen()))
            .bind(object.ts())
            .bind(serde_json::to_string(object)?);
        self.write(object, query).await
    }

    /// Saves a changed object (same errors as [`Self::insert`]).
    pub async fn update(&self, object: &K) -> StorageResult<()> {
        let extra: String = K::EXTRA_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| format!(", {c} = ${}", 7 + i))
            .collect();
        let sql = format!(
            "UPDATE {} SET name = $2, public = $3, frozen = $4, ts = $5, body = $6{extra} WHERE id = $1",
            K::TABLE
        );
        let query = sqlx::query(&sql)
            .bind(object.id().to_string())
            .bind(object.name().to_string())
            .bind(goterra_db::flag(object.is_public()))
            .bind(goterra_db::flag(object.is_frozen()))
            .bind(object.ts())
            .bind(serde_json::to_string(object)?);
        self.write(object, query).await
    }

    /// Binds the kind's extra columns after the common ones, then runs the statement and
    /// rewrites the object's relation rows in one transaction.
    async fn write<'q>(
        &self,
        object: &K,
        mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> StorageResult<()> {
        for value in object.extra_values() {
            query = query.bind(value);
        }
        let mut tx = self.db.pool().begin().await?;
        query.execute(&mut *tx).await?;
        if let Some((table, owner, related)) = K::RELATION {
            sqlx::query(&format!("DELETE FROM {table} WHERE {owner} = $1"))
                .bind(object.id().to_string())
                .execute(&mut *tx)
                .await?;
            for id in object.related_ids() {
                sqlx::query(&format!("INSERT INTO {table} ({owner}, {related}) VALUES ($1, $2)"))
                    .bind(object.id().to_string())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the object and the rows it owns. [`super::StorageError::Referenced`]: something
    /// started using it meanwhile.
    pub async fn delete(&self, id: &K::Id) -> StorageResult<()> {
        let mut tx = self.db.pool().begin().await?;
        for (table, column) in K::OWNED {
            sqlx::query(&format!("DELETE FROM {table} WHERE {column} = $1"))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(&format!("DELETE FROM {} WHERE id = $1", K::TABLE))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn dependents(&self, id: &K::Id) -> StorageResult<Vec<Dependent>> {
        K::dependents(self.db, id).await
    }
}

/// Dependents found by a query selecting `name` and `namespace_id`, bound to `id`.
async fn dependents_by(db: &Db, kind: &'static str, sql: &str, id: &impl TypedId) -> StorageResult<Vec<Dependent>> {
    let rows: Vec<(String, String)> = sqlx::query_as(sql).bind(id.to_string()).fetch_all(db.pool()).await?;
    Ok(rows
        .into_iter()
        .map(|(name, namespace_id)| Dependent {
            kind,
            name,
            namespace_id: NamespaceId::from_trusted(namespace_id),
        })
        .collect())
}

/// Live runs using an application or endpoint: a run's destroy needs them to still exist.
async fn live_runs(db: &Db, object: RunUse<'_>) -> StorageResult<Vec<Dependent>> {
    let runs = RunRepo::new(db).live_runs_using(object).await?;
    Ok(runs
        .into_iter()
        .map(|(name, namespace_id)| Dependent {
            kind: "run",
            name,
            namespace_id,
        })
        .collect())
}

/// Accessors every kind implements the same way.
macro_rules! common_accessors {
    () => {
        fn is_public(&self) -> bool {
            self.public
        }
        fn ts(&self) -> i64 {
            self.ts
        }
        fn set_server_fields(&mut self, id: &Self::Id, namespace: &NamespaceId, ts: i64) {
            self.id = id.to_string();
            self.namespace = namespace.to_string();
            self.ts = ts;
        }
    };
}

impl Stored for Recipe {
    const TABLE: &'static str = "deploy_recipes";
    const EXTRA_COLUMNS: &'static [&'static str] = &["parent_id"];

    common_accessors!();

    fn is_frozen(&self) -> bool {
        self.frozen
    }

    fn extra_values(&self) -> Vec<Option<String>> {
        vec![Some(self.parent.clone()).filter(|parent| !parent.is_empty())]
    }

    /// Applications running it, and its child recipes.
    async fn dependents(db: &Db, id: &RecipeId) -> StorageResult<Vec<Dependent>> {
        let mut users = dependents_by(
            db,
            "application",
            "SELECT a.name, a.namespace_id FROM deploy_app_recipes r JOIN deploy_apps a ON a.id = r.app_id \
             WHERE r.recipe_id = $1 ORDER BY a.name",
            id,
        )
        .await?;
        users.extend(
            dependents_by(
                db,
                "recipe",
                "SELECT name, namespace_id FROM deploy_recipes WHERE parent_id = $1 ORDER BY name",
                id,
            )
            .await?,
        );
        Ok(users)
    }
}

impl Stored for Template {
    const TABLE: &'static str = "deploy_templates";
    const EXTRA_COLUMNS: &'static [&'static str] = &[];

    common_accessors!();

    fn is_frozen(&self) -> bool {
        self.frozen
    }

    fn extra_values(&self) -> Vec<Option<String>> {
        Vec::new()
    }

    /// Applications built on it.
    async fn dependents(db: &Db, id: &TemplateId) -> StorageResult<Vec<Dependent>> {
        dependents_by(
            db,
            "application",
            "SELECT name, namespace_id FROM deploy_apps WHERE template_id = $1 ORDER BY name",
            id,
        )
        .await
    }
}

impl Stored for Application {
    const TABLE: &'static str = "deploy_apps";
    const EXTRA_COLUMNS: &'static [&'static str] = &["template_id"];
    const RELATION: Option<(&'static str, &'static str, &'static str)> =
        Some(("deploy_app_recipes", "app_id", "recipe_id"));
    const OWNED: &'static [(&'static str, &'static str)] = &[("deploy_app_recipes", "app_id")];

    common_accessors!();

    fn is_frozen(&self) -> bool {
        self.frozen
    }

    fn extra_values(&self) -> Vec<Option<String>> {
        vec![Some(self.template.clone())]
    }

    fn related_ids(&self) -> Vec<String> {
        recipe_ids(&self.templaterecipes)
            .into_iter()
            .map(RecipeId::into_string)
            .collect()
    }

    async fn dependents(db: &Db, id: &ApplicationId) -> StorageResult<Vec<Dependent>> {
        live_runs(db, RunUse::Application(id)).await
    }
}

impl Stored for Endpoint {
    const TABLE: &'static str = "deploy_endpoints";
    const EXTRA_COLUMNS: &'static [&'static str] = &["kind"];
    /// The users' credentials and suggested values for the endpoint go with it.
    const OWNED: &'static [(&'static str, &'static str)] = &[
        ("deploy_endpoint_secrets", "endpoint_id"),
        ("deploy_endpoint_defaults", "endpoint_id"),
    ];

    common_accessors!();

    fn is_frozen(&self) -> bool {
        false
    }

    fn extra_values(&self) -> Vec<Option<String>> {
        vec![Some(self.kind.clone())]
    }

    async fn dependents(db: &Db, id: &EndpointId) -> StorageResult<Vec<Dependent>> {
        live_runs(db, RunUse::Endpoint(id)).await
    }
}
