//! From configuration to the desk's [`desk::Catalog`]: object schemas (the built-in Case, configured
//! objects and custom fields, fields inferred from imported metadata), users, configured and imported
//! actions and rules, with endpoint rewrites applied. `serve`, the demo, `token create` and
//! `import-metadata` all build the catalog here, so they agree on what the desk runs.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use anyhow::{Context, bail};
use model::{FieldDef, FieldType, ObjectSchema, OutboundAction, Rule, SfId};
use serde::Deserialize;

use crate::config::{Config, DeskConfig};
use crate::metadata::ImportedFile;

/// `[[desk.objects]]`: a further object, or (named `Case`) custom fields added to the built-in Case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectConfig {
    pub name: String,
    /// The 3-character id prefix; standard objects get theirs, others one derived from the name.
    pub key_prefix: Option<String>,
    #[serde(default)]
    pub fields: Vec<FieldConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub ftype: FieldType,
    /// Whether REST clients may write it (default true).
    #[serde(default = "yes")]
    pub updateable: bool,
}

fn yes() -> bool {
    true
}

/// `[[desk.users]]`: someone tokens can be minted for, and actions can send a session of.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The user name, e.g. `integration@example.com` (what actions' `integration_user` names).
    pub name: String,
    /// The `005` id; derived from the name when absent, so it is stable.
    pub id: Option<String>,
}

pub fn default_metadata_file() -> PathBuf {
    PathBuf::from("imported-metadata.toml")
}

/// Fields every object has and only the system writes (see `ObjectSchema::custom`).
const SYSTEM_FIELDS: &[&str] = &[
    "Id",
    "IsDeleted",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
];

/// Prefixes casewire gives other meanings.
const RESERVED_PREFIXES: &[&str] = &["00D", "005", "04k", "04l"];

fn is_api_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.ends_with('_')
        && !s.contains("___")
}

/// The key prefix a standard object has, else one derived from the name (as the importer derives it).
fn default_key_prefix(object: &str) -> String {
    rules::schema_for_import(
        object,
        &rules::ImportedWorkflow {
            object: object.to_owned(),
            actions: Vec::new(),
            rules: Vec::new(),
            skipped: Vec::new(),
        },
    )
    .key_prefix
}

/// Checks `[desk]` keys this module owns; errors name the key.
pub fn validate(desk: &DeskConfig) -> anyhow::Result<()> {
    let mut names = BTreeSet::new();
    let mut prefixes: HashMap<String, String> =
        HashMap::from([("500".to_owned(), "Case".to_owned())]);
    for (i, object) in desk.objects.iter().enumerate() {
        let key = format!("desk.objects[{i}] ({})", object.name);
        if !is_api_name(&object.name) {
            bail!("{key}: name must be an API name (letters, digits, _; starting with a letter)");
        }
        if !names.insert(object.name.to_ascii_lowercase()) {
            bail!("{key}: the object is configured twice; list all its fields in one entry");
        }
        let is_case = object.name.eq_ignore_ascii_case("Case");
        if is_case && object.key_prefix.as_deref().is_some_and(|p| p != "500") {
            bail!("{key}: key_prefix: Case's ids start with 500");
        }
        if !is_case {
            let prefix = object
                .key_prefix
                .clone()
                .unwrap_or_else(|| default_key_prefix(&object.name));
            if prefix.len() != 3 || !prefix.bytes().all(|b| b.is_ascii_alphanumeric()) {
                bail!("{key}: key_prefix {prefix:?} must be 3 letters or digits");
            }
            if RESERVED_PREFIXES.contains(&prefix.as_str()) {
                bail!(
                    "{key}: key_prefix {prefix} is reserved (organization, user, action, notification ids)"
                );
            }
            if let Some(other) = prefixes.insert(prefix.clone(), object.name.clone()) {
                bail!(
                    "{key}: key_prefix {prefix} is also {other}'s; set key_prefix to tell them apart"
                );
            }
        }
        let builtin = if is_case {
            ObjectSchema::case()
        } else {
            ObjectSchema::custom(&object.name, "000", [])
        };
        let mut fields = BTreeSet::new();
        for (j, field) in object.fields.iter().enumerate() {
            let fkey = format!("{key}.fields[{j}] ({})", field.name);
            if !is_api_name(&field.name) {
                bail!("{fkey}: name must be an API name");
            }
            if !fields.insert(field.name.to_ascii_lowercase()) {
                bail!("{fkey}: the field is listed twice");
            }
            if builtin.field_ci(&field.name).is_some()
                || SYSTEM_FIELDS
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(&field.name))
            {
                bail!("{fkey}: {} has this field already (built in)", object.name);
            }
            if is_case && !field.name.ends_with("__c") {
                bail!("{fkey}: fields added to Case are custom fields, whose names end in __c");
            }
            if field.ftype == FieldType::Id {
                bail!("{fkey}: type id is only for the Id field; a lookup is type reference");
            }
        }
    }
    let mut users = BTreeSet::new();
    for (i, user) in desk.users.iter().enumerate() {
        let key = format!("desk.users[{i}] ({})", user.name);
        if user.name.trim().is_empty() || user.name.trim() != user.name {
            bail!("{key}: name must be a user name without surrounding spaces");
        }
        if !users.insert(user.name.to_ascii_lowercase()) {
            bail!("{key}: the user is configured twice");
        }
        if let Some(id) = &user.id {
            SfId::parse_prefixed(id, model::id::prefix::USER)
                .with_context(|| format!("{key}: id {id:?}"))?;
        }
    }
    if desk.tls_cert.is_some() != desk.tls_key.is_some() {
        bail!("desk.tls_cert and desk.tls_key go together: give both (https) or neither (http)");
    }
    for (i, action) in desk.actions.iter().enumerate() {
        let key = format!("desk.actions[{i}] ({})", action.name);
        if action.include_session_id {
            let https = reqwest::Url::parse(&mapped_endpoint(desk, &action.endpoint_url))
                .is_ok_and(|u| u.scheme() == "https");
            if !https {
                bail!(
                    "{key}: include_session_id needs an https endpoint_url (a session id is never sent in clear text), not {:?}",
                    action.endpoint_url
                );
            }
            match &action.integration_user {
                None => bail!(
                    "{key}: include_session_id needs integration_user: the user whose session is sent"
                ),
                Some(u) if !desk.users.iter().any(|c| c.name.eq_ignore_ascii_case(u)) => {
                    bail!("{key}: integration_user {u:?} is not among [[desk.users]]")
                }
                Some(_) => {}
            }
        }
    }
    for (from, to) in &desk.endpoint_map {
        for url in [from, to] {
            reqwest::Url::parse(url)
                .with_context(|| format!("desk.endpoint_map: {url:?} is not a URL"))?;
        }
    }
    Ok(())
}

/// `url` after `desk.endpoint_map`: the longest matching prefix is replaced.
pub fn mapped_endpoint(desk: &DeskConfig, url: &str) -> String {
    desk.endpoint_map
        .iter()
        .filter(|(from, _)| url.starts_with(from.as_str()))
        .max_by_key(|(from, _)| from.len())
        .map_or_else(
            || url.to_owned(),
            |(from, to)| format!("{to}{}", &url[from.len()..]),
        )
}

/// The users of `[[desk.users]]`.
pub fn users(desk: &DeskConfig) -> anyhow::Result<Vec<desk::User>> {
    desk.users
        .iter()
        .map(|u| {
            let id = match &u.id {
                Some(id) => {
                    SfId::parse(id).with_context(|| format!("desk.users ({}): id", u.name))?
                }
                None => SfId::derived(model::id::prefix::USER, &u.name.to_ascii_lowercase()),
            };
            Ok(desk::User {
                id,
                name: u.name.clone(),
            })
        })
        .collect()
}

/// The imported metadata file of this configuration, if one was written.
pub fn imported(config: &Config, desk: &DeskConfig) -> anyhow::Result<ImportedFile> {
    let path = config.resolve(&desk.metadata_file);
    ImportedFile::load(&path)
}

/// The desk's catalog from the configuration and the imported metadata file.
pub fn catalog(
    config: &Config,
    desk: &DeskConfig,
    instance_url: String,
) -> anyhow::Result<desk::Catalog> {
    let imported = imported(config, desk)?;
    catalog_with(desk, &imported, instance_url).with_context(|| {
        format!(
            "desk configuration (with the metadata imported in {})",
            config.resolve(&desk.metadata_file).display()
        )
    })
}

/// The catalog from `desk` and explicitly given imported metadata (`import-metadata` checks what it
/// would write this way).
pub fn catalog_with(
    desk: &DeskConfig,
    imported: &ImportedFile,
    instance_url: String,
) -> anyhow::Result<desk::Catalog> {
    let org = desk::Org {
        id: SfId::parse(&desk.organization_id)?,
        instance_url,
    };
    let schemas = schemas(desk, imported);
    let mut actions: Vec<OutboundAction> = desk.actions();
    let mut rules: Vec<Rule> = desk.rules();
    for object in &imported.workflow {
        actions.extend(object.actions());
        rules.extend(object.rules());
    }
    for action in &mut actions {
        action.endpoint_url = mapped_endpoint(desk, &action.endpoint_url);
    }
    let catalog = desk::Catalog::new(org, desk.case_statuses.clone(), schemas, actions, rules)?
        .with_users(users(desk)?)?;
    Ok(catalog)
}

/// Case, the configured objects, and the imported ones; configured definitions win over inferred ones.
fn schemas(desk: &DeskConfig, imported: &ImportedFile) -> Vec<ObjectSchema> {
    let mut out: Vec<ObjectSchema> = vec![ObjectSchema::case()];
    for object in &desk.objects {
        let fields = object.fields.iter().map(|f| FieldDef {
            name: f.name.clone(),
            ftype: f.ftype,
            updateable: f.updateable,
        });
        if object.name.eq_ignore_ascii_case("Case") {
            for f in fields {
                out[0].add_field(f);
            }
        } else {
            let prefix = object
                .key_prefix
                .clone()
                .unwrap_or_else(|| default_key_prefix(&object.name));
            out.push(ObjectSchema::custom(&object.name, &prefix, fields));
        }
    }
    for object in &imported.workflow {
        let existing = out
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(&object.object));
        let index = match existing {
            Some(i) => i,
            None => {
                out.push(ObjectSchema::custom(&object.object, &object.key_prefix, []));
                out.len() - 1
            }
        };
        for field in &object.inferred_fields {
            if out[index].field_ci(&field.name).is_none() {
                out[index].add_field(FieldDef {
                    name: field.name.clone(),
                    ftype: field.ftype,
                    updateable: true,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn error(desk_extra: &str) -> String {
        let text = format!(
            "[desk]\nlisten = \"127.0.0.1:0\"\ndatabase = \"d.db\"\norganization_id = \"00D5g000004XyZaEAK\"\n{desk_extra}"
        );
        match Config::parse(&text, Path::new(".")) {
            Ok(_) => String::new(),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn object_and_user_mistakes_are_refused_naming_the_key() {
        for (extra, wanted) in [
            (
                "[[desk.objects]]\nname = \"Case\"\nfields = [{ name = \"Score\", type = \"int\" }]",
                "desk.objects[0] (Case).fields[0] (Score): fields added to Case are custom fields",
            ),
            (
                "[[desk.objects]]\nname = \"Case\"\nfields = [{ name = \"Subject\", type = \"string\" }]",
                "has this field already",
            ),
            (
                "[[desk.objects]]\nname = \"Account\"\nfields = [{ name = \"CreatedDate\", type = \"datetime\" }]",
                "desk.objects[0] (Account).fields[0] (CreatedDate)",
            ),
            (
                "[[desk.objects]]\nname = \"Account\"\n[[desk.objects]]\nname = \"account\"",
                "desk.objects[1] (account): the object is configured twice",
            ),
            (
                "[[desk.objects]]\nname = \"Thing__c\"\nkey_prefix = \"005\"",
                "key_prefix 005 is reserved",
            ),
            (
                "[[desk.objects]]\nname = \"Thing__c\"\nkey_prefix = \"500\"",
                "key_prefix 500 is also Case's",
            ),
            (
                "[[desk.objects]]\nname = \"Thing__c\"\nkey_prefix = \"a-1\"",
                "must be 3 letters or digits",
            ),
            (
                "[[desk.objects]]\nname = \"Bad Name\"",
                "desk.objects[0] (Bad Name): name must be an API name",
            ),
            (
                "[[desk.objects]]\nname = \"Thing__c\"\nfields = [{ name = \"X__c\", type = \"text\" }]",
                "unknown variant `text`",
            ),
            (
                "[[desk.users]]\nname = \"a@example.com\"\n[[desk.users]]\nname = \"A@example.com\"",
                "desk.users[1] (A@example.com): the user is configured twice",
            ),
            (
                "[[desk.users]]\nname = \"a@example.com\"\nid = \"0015g000004XyZaEAK\"",
                "desk.users[0] (a@example.com): id",
            ),
            (
                "tls_cert = \"c.pem\"",
                "desk.tls_cert and desk.tls_key go together",
            ),
            (
                "[desk.endpoint_map]\n\"legacy\" = \"http://127.0.0.1:1\"",
                "desk.endpoint_map: \"legacy\" is not a URL",
            ),
        ] {
            let e = error(extra);
            assert!(e.contains(wanted), "{extra}\n=> {e}");
        }
        assert_eq!(
            error(
                "[[desk.objects]]\nname = \"Case\"\nfields = [{ name = \"Score__c\", type = \"int\" }]\n[[desk.objects]]\nname = \"Account\"\nfields = [{ name = \"Name\", type = \"string\" }]\n[[desk.users]]\nname = \"a@example.com\""
            ),
            ""
        );
    }

    #[test]
    fn endpoint_map_replaces_the_longest_matching_prefix() {
        let text = "[desk]\nlisten = \"127.0.0.1:0\"\ndatabase = \"d.db\"\norganization_id = \"00D5g000004XyZaEAK\"\n[desk.endpoint_map]\n\"https://a.example.com\" = \"http://127.0.0.1:1\"\n\"https://a.example.com/special\" = \"http://127.0.0.1:2/s\"\n";
        let config = Config::parse(text, Path::new(".")).unwrap();
        let desk = config.desk.as_ref().unwrap();
        assert_eq!(
            super::mapped_endpoint(desk, "https://a.example.com/x?y=1"),
            "http://127.0.0.1:1/x?y=1"
        );
        assert_eq!(
            super::mapped_endpoint(desk, "https://a.example.com/special/1"),
            "http://127.0.0.1:2/s/1"
        );
        assert_eq!(
            super::mapped_endpoint(desk, "https://b.example.com/"),
            "https://b.example.com/"
        );
    }
}
