//! Which backend serves which label: Spin's runtime-config file
//! (<https://spinframework.dev/dynamic-configuration>, section "Key Value Store Runtime
//! Configuration"), so one file configures both Spin and this host:
//!
//! ```toml
//! [key_value_store.default]
//! type = "redis"
//! url = "redis://127.0.0.1:6379"
//!
//! [key_value_store.cache]
//! type = "spin"            # SQLite, in Spin's layout
//! path = "cache.db"        # relative to the runtime-config file's directory
//! ```
//!
//! `memory` is our own addition, for tests. Tables other than `key_value_store` belong to other
//! parts of the host (or of Spin) and are ignored here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::embedded::SqliteFile;
use crate::memory::MemoryStore;
use crate::redis::RedisStore;
use crate::{Error, Store};

/// The label every Spin application may use without a runtime-config entry.
pub const DEFAULT_LABEL: &str = "default";
/// The file name Spin gives its default store, inside its state directory (`.spin/`).
pub const DEFAULT_SQLITE_FILE: &str = "sqlite_key_value.db";

/// Open every store named in the runtime-config file at `path` (none: no file), plus the
/// `default` label if the file does not name it: the SQLite file `<data_dir>/sqlite_key_value.db`.
///
/// Entries of type `spin` (SQLite) without a `path` use that same default file: Spin would keep
/// them in memory, but a store the host calls durable should be. Relative paths resolve against
/// the runtime-config file's directory. Labels on one SQLite file share its connections; labels
/// on one Redis URL share one connection.
///
/// Blocking (it opens SQLite files); Redis connects on first use, so this needs no runtime and
/// succeeds while Redis is down.
pub fn open_from_runtime_config(
    path: Option<&Path>,
    data_dir: &Path,
) -> Result<HashMap<String, Arc<dyn Store>>, Error> {
    let (entries, base_dir) = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error(format!("cannot read {}: {e}", path.display())))?;
            let entries = parse(&text).map_err(|e| Error(format!("{}: {e}", path.display())))?;
            let base_dir = path.parent().unwrap_or(Path::new("")).to_owned();
            (entries, base_dir)
        }
        None => (Vec::new(), PathBuf::new()),
    };

    let default_file = data_dir.join(DEFAULT_SQLITE_FILE);
    let mut opener = Opener::default();
    let mut stores: HashMap<String, Arc<dyn Store>> = HashMap::new();
    for (label, backend) in entries {
        let store = match backend {
            Backend::Sqlite(None) => opener.sqlite(&default_file, &label)?,
            Backend::Sqlite(Some(file)) => opener.sqlite(&base_dir.join(file), &label)?,
            Backend::Redis(url) => opener.redis(&url)?,
            Backend::Memory => Arc::new(MemoryStore::new()),
        };
        stores.insert(label, store);
    }
    if !stores.contains_key(DEFAULT_LABEL) {
        let store = opener.sqlite(&default_file, DEFAULT_LABEL)?;
        stores.insert(DEFAULT_LABEL.to_owned(), store);
    }
    Ok(stores)
}

/// What one `[key_value_store.<label>]` table asks for.
#[derive(Debug, PartialEq, Eq)]
enum Backend {
    /// `type = "spin"`, with its optional `path`.
    Sqlite(Option<PathBuf>),
    /// `type = "redis"`, with its `url`.
    Redis(String),
    /// `type = "memory"`.
    Memory,
}

/// The `key_value_store` entries of a runtime-config document, in file order.
fn parse(text: &str) -> Result<Vec<(String, Backend)>, String> {
    let document: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let Some(section) = document.get("key_value_store") else {
        return Ok(Vec::new());
    };
    let section = section
        .as_table()
        .ok_or("`key_value_store` must be a table of stores")?;
    section
        .iter()
        .map(|(label, entry)| {
            let entry = entry
                .as_table()
                .ok_or_else(|| format!("`key_value_store.{label}` must be a table"))?;
            parse_entry(entry)
                .map(|backend| (label.clone(), backend))
                .map_err(|e| format!("`key_value_store.{label}`: {e}"))
        })
        .collect()
}

fn parse_entry(entry: &toml::Table) -> Result<Backend, String> {
    let kind = entry
        .get("type")
        .ok_or("missing `type` (one of \"spin\", \"redis\", \"memory\")")?
        .as_str()
        .ok_or("`type` must be a string")?;
    let (backend, allowed): (Backend, &[&str]) = match kind {
        "spin" => (
            Backend::Sqlite(optional_string(entry, "path")?.map(PathBuf::from)),
            &["path"],
        ),
        "redis" => {
            let url = optional_string(entry, "url")?.ok_or("type \"redis\" needs a `url`")?;
            (Backend::Redis(url), &["url"])
        }
        "memory" => (Backend::Memory, &[]),
        other => {
            return Err(format!(
                "unsupported type \"{other}\" (this host supports \"spin\", \"redis\", \"memory\")"
            ))
        }
    };
    if let Some(unknown) = entry
        .keys()
        .find(|k| *k != "type" && !allowed.contains(&k.as_str()))
    {
        return Err(format!("unknown field `{unknown}` for type \"{kind}\""));
    }
    Ok(backend)
}

fn optional_string(entry: &toml::Table, field: &str) -> Result<Option<String>, String> {
    entry
        .get(field)
        .map(|value| {
            value
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("`{field}` must be a string"))
        })
        .transpose()
}

/// Opens each SQLite file and each Redis URL once, however many labels use it.
#[derive(Default)]
struct Opener {
    sqlite_files: HashMap<PathBuf, SqliteFile>,
    redis_servers: HashMap<String, Arc<RedisStore>>,
}

impl Opener {
    fn sqlite(&mut self, path: &Path, label: &str) -> Result<Arc<dyn Store>, Error> {
        let identity = file_identity(path)?;
        let file = match self.sqlite_files.get(&identity) {
            Some(file) => file.clone(),
            None => {
                let file = SqliteFile::open(&identity)?;
                self.sqlite_files.insert(identity, file.clone());
                file
            }
        };
        Ok(Arc::new(file.store(label)))
    }

    fn redis(&mut self, url: &str) -> Result<Arc<dyn Store>, Error> {
        if let Some(store) = self.redis_servers.get(url) {
            return Ok(store.clone());
        }
        let store = Arc::new(RedisStore::open(url)?);
        self.redis_servers.insert(url.to_owned(), store.clone());
        Ok(store)
    }
}

/// One name per file however it is spelt (`./a.db`, `x/../a.db`): the canonical parent
/// directory (created if missing, as Spin does) joined with the file name.
fn file_identity(path: &Path) -> Result<PathBuf, Error> {
    let name = path
        .file_name()
        .ok_or_else(|| Error(format!("`{}` does not name a file", path.display())))?;
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent)
        .and_then(|()| parent.canonicalize())
        .map(|parent| parent.join(name))
        .map_err(|e| Error(format!("cannot create directory {}: {e}", parent.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spin_runtime_config() {
        let entries = parse(
            r#"
            [variables]
            ignored = true
            [key_value_store.default]
            type = "redis"
            url = "redis://127.0.0.1:6379"
            [key_value_store.cache]
            type = "spin"
            path = "cache.db"
            [key_value_store.plain]
            type = "spin"
            [key_value_store.scratch]
            type = "memory"
            "#,
        )
        .unwrap();
        let entries: HashMap<_, _> = entries.into_iter().collect();
        assert_eq!(
            entries["default"],
            Backend::Redis("redis://127.0.0.1:6379".into())
        );
        assert_eq!(entries["cache"], Backend::Sqlite(Some("cache.db".into())));
        assert_eq!(entries["plain"], Backend::Sqlite(None));
        assert_eq!(entries["scratch"], Backend::Memory);
    }

    #[test]
    fn no_section_means_no_entries() {
        assert_eq!(parse("[variables]\na = 1\n").unwrap(), Vec::new());
    }

    #[test]
    fn rejects_what_it_cannot_serve() {
        let cases = [
            (
                "[key_value_store.x]\ntype = \"azure_cosmos\"\n",
                "unsupported type \"azure_cosmos\"",
            ),
            (
                "[key_value_store.x]\nurl = \"redis://h\"\n",
                "missing `type`",
            ),
            ("[key_value_store.x]\ntype = \"redis\"\n", "needs a `url`"),
            (
                "[key_value_store.x]\ntype = \"spin\"\nurl = \"u\"\n",
                "unknown field `url`",
            ),
            ("[key_value_store.x]\ntype = 3\n", "`type` must be a string"),
            ("key_value_store = 3\n", "must be a table"),
            ("[key_value_store\n", "TOML parse error"),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.contains(expected), "{text:?} gave {error:?}");
        }
    }
}
