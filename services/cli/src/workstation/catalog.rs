//! Catalogue files: the API's own JSON/YAML objects, and the community catalogue format
//! (`recipes/<dir>/<version>/recipe.yaml` with `recipe.sh`, `templates/<dir>/<version>/template.yaml`
//! with `<kind>/<file>`, `apps/<dir>/<version>/app.yaml`, `endpoints/<dir>/endpoint.yaml`), read
//! into the bodies the API takes. References between items (`parent`, an app's `template` and
//! `recipes`) are `dir/version` in the community format and are resolved to ids later.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemKind {
    Recipe,
    Template,
    Endpoint,
    App,
}

impl ItemKind {
    /// Top-level key of the community YAML file, and its file name.
    pub fn community_key(self) -> &'static str {
        match self {
            Self::Recipe => "recipe",
            Self::Template => "template",
            Self::Endpoint => "endpoint",
            Self::App => "application",
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Self::Recipe => "recipe.yaml",
            Self::Template => "template.yaml",
            Self::Endpoint => "endpoint.yaml",
            Self::App => "app.yaml",
        }
    }

    fn directory(self) -> &'static str {
        match self {
            Self::Recipe => "recipes",
            Self::Template => "templates",
            Self::Endpoint => "endpoints",
            Self::App => "apps",
        }
    }
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Recipe => "recipe",
            Self::Template => "template",
            Self::Endpoint => "endpoint",
            Self::App => "app",
        })
    }
}

/// A reference to another item: `dir/version` (community format), or an id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference(pub String);

impl Reference {
    /// `(dir, version)` when the reference has the community form.
    pub fn split(&self) -> Option<(&str, &str)> {
        self.0
            .split_once('/')
            .filter(|(dir, version)| !dir.is_empty() && !version.is_empty())
    }
}

/// What an item refers to, by field.
#[derive(Clone, Debug, Default)]
pub struct References {
    /// A recipe's `parent`.
    pub parent: Option<Reference>,
    /// An app's `template`.
    pub template: Option<Reference>,
    /// An app's recipes per template recipe variable.
    pub recipes: BTreeMap<String, Vec<Reference>>,
}

/// One item read from files: its API body (references not filled in yet), its identity in the
/// catalogue (`remote` = directory name, `rversion` = version directory) and its references.
#[derive(Clone, Debug)]
pub struct ItemFile {
    pub kind: ItemKind,
    pub remote: String,
    pub version: String,
    pub body: Map<String, Value>,
    pub references: References,
}

impl ItemFile {
    /// `dir/version` (or `dir` for endpoints), as references and reports name it.
    pub fn key(&self) -> String {
        if self.version.is_empty() {
            self.remote.clone()
        } else {
            format!("{}/{}", self.remote, self.version)
        }
    }
}

/// Why a file cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub kind: ItemKind,
    pub key: String,
    pub reason: String,
}

fn read_document(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let is_json = path.extension().is_some_and(|ext| ext == "json");
    let parsed = if is_json {
        serde_json::from_str::<Value>(&text).map_err(|err| err.to_string())
    } else {
        serde_yaml::from_str::<Value>(&text).map_err(|err| err.to_string())
    };
    parsed.map_err(|err| format!("invalid {}: {err}", if is_json { "JSON" } else { "YAML" }))
}

/// Reads an item file for `recipe|template|app|endpoint create/update`: the community format
/// (one top-level key, with its sibling files) or the API's own object.
pub fn read_item_file(kind: ItemKind, path: &Path) -> Result<ItemFile, String> {
    let document = read_document(path)?;
    let Value::Object(mut top) = document else {
        return Err(format!("{}: expected an object", path.display()));
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    if let Some(Value::Object(fields)) = top.remove(kind.community_key()) {
        let (remote, version) = identity_from_path(kind, dir);
        return community_item(kind, fields, dir, remote, version);
    }
    // The API's shape: ids as they are, nothing to resolve.
    let remote = string(&top, "remote");
    let version = string(&top, "rversion");
    Ok(ItemFile {
        kind,
        remote,
        version,
        body: top,
        references: References::default(),
    })
}

/// `(dir, version)` from `.../<dir>/<version>/<file>` (endpoints: `.../<dir>/<file>`).
fn identity_from_path(kind: ItemKind, dir: &Path) -> (String, String) {
    let name_of = |path: &Path| {
        path.file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if kind == ItemKind::Endpoint {
        (name_of(dir), String::new())
    } else {
        (name_of(dir.parent().unwrap_or(dir)), name_of(dir))
    }
}

fn string(fields: &Map<String, Value>, name: &str) -> String {
    fields.get(name).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Copies the listed fields that are set (not null) into `body`.
fn copy(fields: &Map<String, Value>, body: &mut Map<String, Value>, names: &[&str]) {
    for name in names {
        if let Some(value) = fields.get(*name).filter(|v| !v.is_null()) {
            body.insert((*name).to_string(), value.clone());
        }
    }
}

fn required_text(fields: &Map<String, Value>, name: &str) -> Result<String, String> {
    let value = string(fields, name);
    if value.trim().is_empty() {
        Err(format!("missing required field {name:?}"))
    } else {
        Ok(value)
    }
}

fn references_list(value: Option<&Value>) -> Vec<Reference> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|text| Reference(text.to_string()))
            .collect(),
        Some(Value::String(text)) => vec![Reference(text.clone())],
        _ => Vec::new(),
    }
}

/// The API body of a community item.
fn community_item(
    kind: ItemKind,
    fields: Map<String, Value>,
    dir: &Path,
    remote: String,
    version: String,
) -> Result<ItemFile, String> {
    let mut body = Map::new();
    required_text(&fields, "name")?;
    let mut references = References::default();
    match kind {
        ItemKind::Recipe => {
            copy(
                &fields,
                &mut body,
                &["name", "description", "inputs", "base", "tags", "defaults"],
            );
            let parent = string(&fields, "parent");
            if !parent.trim().is_empty() {
                references.parent = Some(Reference(parent.trim().to_string()));
            } else if fields.get("base").and_then(Value::as_array).is_none_or(Vec::is_empty) {
                return Err("missing required field \"base\" (or a \"parent\")".to_string());
            }
            let script_path = dir.join("recipe.sh");
            let script = std::fs::read_to_string(&script_path)
                .map_err(|_| format!("missing {} (the recipe's script)", script_path.display()))?;
            body.insert("script".into(), Value::String(script));
        }
        ItemKind::Template => {
            copy(
                &fields,
                &mut body,
                &["name", "description", "inputs", "tags", "defaults"],
            );
            if let Some(variables) = fields.get("recipes").filter(|v| !v.is_null()) {
                body.insert("varrecipes".into(), variables.clone());
            }
            let files = fields
                .get("files")
                .and_then(Value::as_object)
                .filter(|files| !files.is_empty())
                .ok_or_else(|| "missing required field \"files\" (cloud kind → Terraform file)".to_string())?;
            let mut data = Map::new();
            for (cloud, file) in files {
                let file = file.as_str().unwrap_or_default();
                let file_path = dir.join(cloud).join(file);
                let text = std::fs::read_to_string(&file_path)
                    .map_err(|_| format!("missing {} (the {cloud} Terraform file)", file_path.display()))?;
                data.insert(cloud.clone(), Value::String(text));
            }
            body.insert("data".into(), Value::Object(data));
        }
        ItemKind::Endpoint => {
            required_text(&fields, "kind")?;
            copy(
                &fields,
                &mut body,
                &["name", "kind", "inputs", "features", "config", "images", "defaults"],
            );
        }
        ItemKind::App => {
            copy(&fields, &mut body, &["name", "description", "defaults"]);
            let template = required_text(&fields, "template")?;
            references.template = Some(Reference(template.trim().to_string()));
            if let Some(recipes) = fields.get("recipes").and_then(Value::as_object) {
                for (variable, list) in recipes {
                    references.recipes.insert(variable.clone(), references_list(Some(list)));
                }
            }
        }
    }
    body.insert("remote".into(), Value::String(remote.clone()));
    if kind != ItemKind::Endpoint {
        body.insert("rversion".into(), Value::String(version.clone()));
        body.insert("version".into(), Value::String(version.clone()));
    }
    Ok(ItemFile {
        kind,
        remote,
        version,
        body,
        references,
    })
}

/// Every item of a catalogue directory, and the problems of those that cannot be read.
pub fn read_directory(root: &Path) -> Result<(Vec<ItemFile>, Vec<Problem>), String> {
    if !root.is_dir() {
        return Err(format!("{} is not a directory", root.display()));
    }
    let mut items = Vec::new();
    let mut problems = Vec::new();
    for kind in [ItemKind::Recipe, ItemKind::Template, ItemKind::Endpoint, ItemKind::App] {
        let base = root.join(kind.directory());
        for dir in sorted_dirs(&base) {
            let versions = if kind == ItemKind::Endpoint {
                vec![dir.clone()]
            } else {
                sorted_dirs(&dir)
            };
            for version_dir in versions {
                let file = version_dir.join(kind.file_name());
                let (remote, version) = identity_from_path(kind, &version_dir);
                let key = if version.is_empty() {
                    remote.clone()
                } else {
                    format!("{remote}/{version}")
                };
                if !file.is_file() {
                    problems.push(Problem {
                        kind,
                        key,
                        reason: format!("no {}", kind.file_name()),
                    });
                    continue;
                }
                match read_document(&file).and_then(|document| {
                    let Value::Object(mut top) = document else {
                        return Err("expected an object".to_string());
                    };
                    match top.remove(kind.community_key()) {
                        Some(Value::Object(fields)) => {
                            community_item(kind, fields, &version_dir, remote.clone(), version.clone())
                        }
                        _ => Err(format!("missing the top-level key {:?}", kind.community_key())),
                    }
                }) {
                    Ok(item) => items.push(item),
                    Err(reason) => problems.push(Problem { kind, key, reason }),
                }
            }
        }
    }
    Ok((items, problems))
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.is_dir())
                .filter(|path| {
                    !path
                        .file_name()
                        .is_some_and(|name| name.to_string_lossy().starts_with('.'))
                })
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// Orders items so every item comes after what it refers to (recipes by parent, then
/// templates, endpoints, apps), and reports the items whose references cannot be resolved
/// within the set or by `known` (items already on the server, by `dir/version`). Items that
/// depend on a skipped item are skipped too.
pub fn plan(items: Vec<ItemFile>, known: &dyn Fn(ItemKind, &str) -> bool) -> (Vec<ItemFile>, Vec<Problem>) {
    let mut ordered: Vec<ItemFile> = Vec::new();
    let mut problems = Vec::new();
    let mut pending: Vec<ItemFile> = items;
    pending.sort_by_key(|item| (item.kind, item.key()));
    loop {
        let mut progressed = false;
        let mut still = Vec::new();
        for item in pending {
            match check_references(&item, &ordered, known) {
                Resolution::Ready => {
                    ordered.push(item);
                    progressed = true;
                }
                Resolution::Waiting => still.push(item),
                Resolution::Broken(reason) => {
                    problems.push(Problem {
                        kind: item.kind,
                        key: item.key(),
                        reason,
                    });
                    progressed = true;
                }
            }
        }
        pending = still;
        if pending.is_empty() || !progressed {
            break;
        }
    }
    for item in pending {
        problems.push(Problem {
            kind: item.kind,
            key: item.key(),
            reason: "its references form a cycle, or refer to a skipped item".to_string(),
        });
    }
    (ordered, problems)
}

enum Resolution {
    Ready,
    Waiting,
    Broken(String),
}

/// Ready when every reference is in `done` (or already on the server, or an id-like text for
/// files in the API's format); waiting when it is one of the items not placed yet.
fn check_references(item: &ItemFile, done: &[ItemFile], known: &dyn Fn(ItemKind, &str) -> bool) -> Resolution {
    let mut wanted: Vec<(ItemKind, &Reference, &str)> = Vec::new();
    if let Some(parent) = &item.references.parent {
        wanted.push((ItemKind::Recipe, parent, "parent"));
    }
    if let Some(template) = &item.references.template {
        wanted.push((ItemKind::Template, template, "template"));
    }
    for list in item.references.recipes.values() {
        for recipe in list {
            wanted.push((ItemKind::Recipe, recipe, "recipe"));
        }
    }
    let mut waiting = false;
    for (kind, reference, field) in wanted {
        if done.iter().any(|d| d.kind == kind && d.key() == reference.0) || known(kind, &reference.0) {
            continue;
        }
        if reference.split().is_none() {
            return Resolution::Broken(format!(
                "broken reference: {field} {:?} is not of the form name/version",
                reference.0
            ));
        }
        waiting = true;
    }
    if waiting {
        Resolution::Waiting
    } else {
        Resolution::Ready
    }
}

/// Marks the items whose references point to nothing in the set nor on the server as broken,
/// before ordering (a reference to an item that will be placed later only waits).
pub fn unresolvable(items: &[ItemFile], known: &dyn Fn(ItemKind, &str) -> bool) -> Vec<Problem> {
    let mut problems = Vec::new();
    for item in items {
        let mut missing = Vec::new();
        let exists = |kind: ItemKind, reference: &Reference| {
            items
                .iter()
                .any(|other| other.kind == kind && other.key() == reference.0)
                || known(kind, &reference.0)
        };
        if let Some(parent) = &item.references.parent
            && !exists(ItemKind::Recipe, parent)
        {
            missing.push(format!("parent recipe {}", parent.0));
        }
        if let Some(template) = &item.references.template
            && !exists(ItemKind::Template, template)
        {
            missing.push(format!("template {}", template.0));
        }
        for list in item.references.recipes.values() {
            for recipe in list {
                if !exists(ItemKind::Recipe, recipe) {
                    missing.push(format!("recipe {}", recipe.0));
                }
            }
        }
        if !missing.is_empty() {
            problems.push(Problem {
                kind: item.kind,
                key: item.key(),
                reason: format!("broken reference: no {}", missing.join(", ")),
            });
        }
    }
    problems
}

/// The body with references replaced by ids (`resolve` maps a reference of a kind to an id).
pub fn resolved_body(
    item: &ItemFile,
    resolve: &dyn Fn(ItemKind, &Reference) -> Option<String>,
) -> Result<Map<String, Value>, String> {
    let mut body = item.body.clone();
    let lookup = |kind: ItemKind, reference: &Reference| {
        resolve(kind, reference).ok_or_else(|| format!("broken reference: no {kind} {}", reference.0))
    };
    if let Some(parent) = &item.references.parent {
        body.insert("parent".into(), Value::String(lookup(ItemKind::Recipe, parent)?));
    }
    if let Some(template) = &item.references.template {
        body.insert("template".into(), Value::String(lookup(ItemKind::Template, template)?));
    }
    if item.kind == ItemKind::App {
        let mut recipes = Map::new();
        for (variable, list) in &item.references.recipes {
            let ids = list
                .iter()
                .map(|recipe| lookup(ItemKind::Recipe, recipe).map(Value::String))
                .collect::<Result<Vec<_>, _>>()?;
            recipes.insert(variable.clone(), Value::Array(ids));
        }
        if !recipes.is_empty() || !body.contains_key("templaterecipes") {
            body.insert("templaterecipes".into(), Value::Object(recipes));
        }
    }
    Ok(body)
}

/// True when every field of `wanted` has the same value in `stored` (null, missing and empty
/// collections count as the same).
pub fn same_fields(wanted: &Map<String, Value>, stored: &Value) -> bool {
    wanted.iter().all(|(name, value)| {
        let stored_value = stored.get(name).unwrap_or(&Value::Null);
        normalized(value) == normalized(stored_value)
    })
}

fn normalized(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::Array(items) if items.is_empty() => Value::Null,
        Value::Object(fields) if fields.is_empty() => Value::Null,
        Value::String(text) if text.is_empty() => Value::Null,
        Value::Bool(false) => Value::Null,
        other => other.clone(),
    }
}

/// The `public` flag given to every imported item.
pub fn set_public(body: &mut Map<String, Value>, public: bool) {
    body.insert("public".into(), json!(public));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn a_community_directory_is_read_and_ordered_by_references() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "recipes/child/v1/recipe.yaml",
            "recipe:\n  name: child\n  license: MIT\n  parent: base/v1\n",
        );
        write(root, "recipes/child/v1/recipe.sh", "echo child\n");
        write(
            root,
            "recipes/base/v1/recipe.yaml",
            "recipe:\n  name: base\n  license: MIT\n  base: [debian]\n",
        );
        write(root, "recipes/base/v1/recipe.sh", "echo base\n");
        write(
            root,
            "templates/tpl/v1/template.yaml",
            "template:\n  name: tpl\n  license: MIT\n  recipes: [vm]\n  files:\n    local: main.tf\n",
        );
        write(root, "templates/tpl/v1/local/main.tf", "output \"x\" { value = 1 }\n");
        write(
            root,
            "apps/app/v1/app.yaml",
            "application:\n  name: app\n  template: tpl/v1\n  recipes:\n    vm: [child/v1]\n",
        );
        write(
            root,
            "apps/broken/v1/app.yaml",
            "application:\n  name: broken\n  template: nothere/v1\n",
        );
        write(
            root,
            "endpoints/here/endpoint.yaml",
            "endpoint:\n  name: here\n  kind: local\n",
        );
        write(root, "recipes/bad/v1/recipe.yaml", "recipe: [not, an, object]\n");

        let (items, problems) = read_directory(root).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "bad/v1");
        let none = |_: ItemKind, _: &str| false;
        let broken = unresolvable(&items, &none);
        assert_eq!(broken.len(), 1);
        assert_eq!(broken[0].key, "broken/v1");
        assert!(broken[0].reason.contains("template nothere/v1"));
        let usable: Vec<ItemFile> = items.into_iter().filter(|item| item.key() != "broken/v1").collect();
        let (ordered, problems) = plan(usable, &none);
        assert!(problems.is_empty(), "{problems:?}");
        let keys: Vec<String> = ordered
            .iter()
            .map(|item| format!("{} {}", item.kind, item.key()))
            .collect();
        assert_eq!(
            keys,
            [
                "recipe base/v1",
                "recipe child/v1",
                "template tpl/v1",
                "endpoint here",
                "app app/v1"
            ]
        );
        let app = ordered.last().unwrap();
        let body = resolved_body(app, &|kind, reference| Some(format!("{kind}-{}", reference.0))).unwrap();
        assert_eq!(body["template"], json!("template-tpl/v1"));
        assert_eq!(body["templaterecipes"], json!({"vm": ["recipe-child/v1"]}));
        assert_eq!(body["remote"], json!("app"));
        assert_eq!(
            ordered[2].body["data"],
            json!({"local": "output \"x\" { value = 1 }\n"})
        );
    }

    #[test]
    fn fields_compare_with_empty_values_alike() {
        let wanted = json!({"name": "a", "tags": [], "public": false});
        assert!(same_fields(
            wanted.as_object().unwrap(),
            &json!({"name": "a", "tags": null})
        ));
        assert!(!same_fields(wanted.as_object().unwrap(), &json!({"name": "b"})));
    }
}
