//! Application variables and the templates that use them.
//!
//! Precedence, lowest first: the manifest's `default`, then the host's own defaults
//! ([`Options::variable_defaults`](crate::Options::variable_defaults)), then a `.env` file,
//! then the process environment. A variable `foo_bar` is read from `SPIN_VARIABLE_FOO_BAR` (Spin's own name) or
//! from `FOO_BAR`; when both are set in the same source, the `SPIN_VARIABLE_` one wins, as it is
//! the more specific. Component variables are templates (`"{{ name }}"`, with literal text around)
//! over application variables, resolved once at start-up: a missing required variable stops the
//! start with its name.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::Error;
use crate::manifest::VariableSpec;

/// Resolved application variables.
#[derive(Clone, Default)]
pub struct Variables {
    values: BTreeMap<String, String>,
}

// Values may be secrets: debug output shows names only.
impl std::fmt::Debug for Variables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl Variables {
    /// Resolves every application variable from `env`, the `.env` file's pairs and the
    /// host's defaults (which only replace the defaults of variables the manifest declares).
    pub fn resolve(
        specs: &BTreeMap<String, VariableSpec>,
        env: &HashMap<String, String>,
        dotenv: &HashMap<String, String>,
        host_defaults: &HashMap<String, String>,
    ) -> Result<Self, Error> {
        let mut values = BTreeMap::new();
        for (name, spec) in specs {
            let value = lookup(env, name)
                .or_else(|| lookup(dotenv, name))
                .or_else(|| host_defaults.get(name).cloned())
                .or_else(|| spec.default.clone());
            match value {
                Some(v) => {
                    values.insert(name.clone(), v);
                }
                None => {
                    return Err(Error::MissingVariable {
                        name: name.clone(),
                        env: env_name(name),
                    })
                }
            }
        }
        Ok(Variables { values })
    }

    /// The value of application variable `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Every template of `templates` (a component's `variables` table) expanded over the
    /// application variables: the configuration the component sees.
    pub fn expand_all(
        &self,
        templates: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, String> {
        templates
            .iter()
            .map(|(name, template)| {
                self.expand(template, None)
                    .map(|value| (name.clone(), value))
                    .map_err(|e| format!("variable `{name}`: {e}"))
            })
            .collect()
    }

    /// Expands `{{ name }}` references in `template`, looking names up in `first` and then in
    /// the application variables.
    pub fn expand(
        &self,
        template: &str,
        first: Option<&BTreeMap<String, String>>,
    ) -> Result<String, String> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("unclosed `{{{{` in template {template:?}"))?;
            let name = after[..end].trim();
            let value = first
                .and_then(|m| m.get(name).map(String::as_str))
                .or_else(|| self.get(name))
                .ok_or_else(|| {
                    format!("template {template:?} refers to undeclared variable `{name}`")
                })?;
            out.push_str(value);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// The pairs of a `.env` file; an absent file is empty.
pub fn read_dotenv(path: &Path) -> Result<HashMap<String, String>, Error> {
    if !path.exists() {
        return Ok(HashMap::new());
    }
    let iter = dotenvy::from_path_iter(path).map_err(|e| Error::DotEnv {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    iter.map(|pair| {
        pair.map_err(|e| Error::DotEnv {
            path: path.to_owned(),
            message: e.to_string(),
        })
    })
    .collect()
}

fn lookup(source: &HashMap<String, String>, name: &str) -> Option<String> {
    source
        .get(&env_name(name))
        .or_else(|| source.get(&name.to_ascii_uppercase()))
        .cloned()
}

/// Spin's environment name for a variable: `SPIN_VARIABLE_` + upper case.
fn env_name(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> BTreeMap<String, VariableSpec> {
        let var = |default: Option<&str>, required| VariableSpec {
            default: default.map(str::to_owned),
            required,
            secret: false,
            description: None,
        };
        BTreeMap::from([
            ("foo_bar".to_owned(), var(Some("default"), false)),
            ("needed".to_owned(), var(None, true)),
        ])
    }

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn precedence_is_default_then_host_default_then_dotenv_then_env() {
        let base = [("NEEDED", "x")];
        let v =
            Variables::resolve(&specs(), &map(&base), &HashMap::new(), &HashMap::new()).unwrap();
        assert_eq!(v.get("foo_bar"), Some("default"));
        // The host's defaults replace the manifest's, for declared variables only.
        let host = map(&[("foo_bar", "host"), ("undeclared", "y")]);
        let v = Variables::resolve(&specs(), &map(&base), &HashMap::new(), &host).unwrap();
        assert_eq!(v.get("foo_bar"), Some("host"));
        assert_eq!(v.get("undeclared"), None);
        let dotenv = map(&[("FOO_BAR", "dotenv")]);
        let v = Variables::resolve(&specs(), &map(&base), &dotenv, &host).unwrap();
        assert_eq!(v.get("foo_bar"), Some("dotenv"));
        let env = map(&[("NEEDED", "x"), ("FOO_BAR", "env")]);
        let v = Variables::resolve(&specs(), &env, &dotenv, &HashMap::new()).unwrap();
        assert_eq!(v.get("foo_bar"), Some("env"));
        let env = map(&[
            ("NEEDED", "x"),
            ("FOO_BAR", "env"),
            ("SPIN_VARIABLE_FOO_BAR", "spin"),
        ]);
        let v = Variables::resolve(&specs(), &env, &dotenv, &HashMap::new()).unwrap();
        assert_eq!(v.get("foo_bar"), Some("spin"));
    }

    #[test]
    fn missing_required_names_the_variable() {
        let err = Variables::resolve(&specs(), &HashMap::new(), &HashMap::new(), &HashMap::new())
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`needed`"), "{text}");
        assert!(text.contains("SPIN_VARIABLE_NEEDED"), "{text}");
    }

    #[test]
    fn templates_expand_and_refuse_unknown_names() {
        let env = map(&[("NEEDED", "n")]);
        let v = Variables::resolve(&specs(), &env, &HashMap::new(), &HashMap::new()).unwrap();
        assert_eq!(
            v.expand("https://{{ foo_bar }}:{{needed}}/x", None)
                .unwrap(),
            "https://default:n/x"
        );
        let local = BTreeMap::from([("foo_bar".to_owned(), "local".to_owned())]);
        assert_eq!(v.expand("{{ foo_bar }}", Some(&local)).unwrap(), "local");
        assert!(v.expand("{{ nope }}", None).unwrap_err().contains("`nope`"));
        assert!(v.expand("{{ foo_bar", None).is_err());
        assert_eq!(v.expand("plain", None).unwrap(), "plain");
    }
}
