//! `casewire import-metadata PATH`: Salesforce Workflow files into the desk's configuration.
//!
//! What an import yields is written to one TOML file (`[desk] metadata_file`, default
//! `imported-metadata.toml` beside the configuration), which the desk loads at start. A file, not the
//! database, so that it can be reviewed, diffed and committed beside the SFDX project, and so that the
//! configuration stays the one place that says what the desk runs.
//!
//! A Workflow file is the whole workflow of its object, as a Salesforce deployment treats it: importing
//! `Case.workflow` replaces every imported Case definition and leaves other objects' alone. The output is
//! deterministic, so importing the same files again changes nothing (the file is not even rewritten).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use model::{
    Criteria, CriteriaItem, FieldType, ObjectSchema, OutboundAction, PayloadMode, Rule, SfId,
    TriggerType,
};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::desk_setup;

const HEADER: &str = "# Written by `casewire import-metadata`: Salesforce Workflow metadata imported into casewire.
# Import again to refresh it (each object's workflow is replaced by the one imported last). Objects and
# fields declared in the configuration ([[desk.objects]]) take precedence over `inferred_fields`.

";

/// The imported metadata file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportedFile {
    #[serde(default)]
    pub workflow: Vec<ImportedObject>,
}

/// One object's workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportedObject {
    pub object: String,
    /// The file it came from (relative to the configuration's folder when inside it).
    pub source: String,
    /// For objects the configuration does not declare.
    pub key_prefix: String,
    /// Fields the rules and actions use that the object's built-in schema lacks, with guessed types.
    #[serde(default)]
    pub inferred_fields: Vec<InferredField>,
    #[serde(default)]
    pub actions: Vec<ImportedAction>,
    #[serde(default)]
    pub rules: Vec<ImportedRule>,
    /// What was not imported (or imported changed), and why.
    #[serde(default)]
    pub skipped: Vec<SkippedEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferredField {
    pub name: String,
    #[serde(rename = "type")]
    pub ftype: FieldType,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportedAction {
    pub name: String,
    pub id: String,
    pub endpoint_url: String,
    pub fields: Vec<String>,
    pub api_version: String,
    pub include_session_id: bool,
    pub integration_user: Option<String>,
    pub use_dead_letter_queue: bool,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportedRule {
    pub name: String,
    pub active: bool,
    pub trigger: TriggerType,
    #[serde(default)]
    pub criteria: Vec<CriteriaItem>,
    pub boolean_filter: Option<String>,
    pub formula: Option<String>,
    #[serde(default)]
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkippedEntry {
    pub kind: String,
    pub name: String,
    pub reason: String,
}

impl ImportedFile {
    /// Reads the file; a missing file is an empty import.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).with_context(|| {
                format!("{} is not a valid imported-metadata file", path.display())
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn render(&self) -> anyhow::Result<String> {
        Ok(format!("{HEADER}{}", toml::to_string(self)?))
    }
}

impl ImportedObject {
    pub fn actions(&self) -> Vec<OutboundAction> {
        self.actions
            .iter()
            .map(|a| OutboundAction {
                name: a.name.clone(),
                id: SfId::parse(&a.id).unwrap_or_else(|_| rules::action_id(&self.object, &a.name)),
                object: self.object.clone(),
                endpoint_url: a.endpoint_url.clone(),
                fields: a.fields.clone(),
                api_version: a.api_version.clone(),
                include_session_id: a.include_session_id,
                integration_user: a.integration_user.clone(),
                use_dead_letter_queue: a.use_dead_letter_queue,
                payload_mode: PayloadMode::Latest,
                description: a.description.clone(),
            })
            .collect()
    }

    pub fn rules(&self) -> Vec<Rule> {
        self.rules
            .iter()
            .map(|r| Rule {
                name: r.name.clone(),
                object: self.object.clone(),
                active: r.active,
                trigger: r.trigger,
                criteria: match &r.formula {
                    Some(f) => Criteria::Formula(f.clone()),
                    None => Criteria::Items {
                        items: r.criteria.clone(),
                        boolean_filter: r.boolean_filter.clone(),
                    },
                },
                actions: r.actions.clone(),
            })
            .collect()
    }
}

/// `*.workflow` and `*.workflow-meta.xml` files under `path` (or `path` itself), sorted.
fn workflow_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let entry = entry?;
            let kind = entry.file_type()?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if kind.is_dir() {
                // Build outputs and dependencies of an SFDX project hold copies, not sources.
                if !name.starts_with('.') && name != "node_modules" {
                    pending.push(entry.path());
                }
            } else if rules::object_for_file(&name).is_some() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn shown(path: &Path, base: &Path) -> String {
    let absolute = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let base = base.canonicalize().unwrap_or_else(|_| base.to_path_buf());
    absolute
        .strip_prefix(&base)
        .map(|p| p.to_path_buf())
        .unwrap_or(absolute)
        .display()
        .to_string()
}

/// Turns one file's import into what the desk loads, adjusting what casewire would refuse to run.
fn to_imported(imported: rules::ImportedWorkflow, source: String) -> ImportedObject {
    let schema = rules::schema_for_import(&imported.object, &imported);
    let base = if imported.object.eq_ignore_ascii_case("Case") {
        ObjectSchema::case()
    } else {
        ObjectSchema::custom(&imported.object, &schema.key_prefix, [])
    };
    let inferred_fields = schema
        .fields
        .values()
        .filter(|d| base.field_ci(&d.name).is_none())
        .map(|d| InferredField {
            name: d.name.clone(),
            ftype: d.ftype,
        })
        .collect();
    let mut skipped: Vec<SkippedEntry> = imported
        .skipped
        .iter()
        .map(|s| SkippedEntry {
            kind: s.kind.clone(),
            name: s.name.clone(),
            reason: s.reason.clone(),
        })
        .collect();
    let actions = imported
        .actions
        .iter()
        .map(|a| {
            let mut include_session_id = a.include_session_id;
            if include_session_id {
                let https = a.endpoint_url.get(..8).is_some_and(|p| p.eq_ignore_ascii_case("https://"));
                let why = if !https {
                    Some("the endpoint is not https, and casewire never sends a session id in clear text")
                } else if a.integration_user.is_none() {
                    Some("no integrationUser names whose session to send")
                } else {
                    None
                };
                if let Some(why) = why {
                    include_session_id = false;
                    skipped.push(SkippedEntry {
                        kind: "includeSessionId".to_owned(),
                        name: a.name.clone(),
                        reason: format!("imported without the session id: {why}"),
                    });
                }
            }
            ImportedAction {
                name: a.name.clone(),
                id: a.id.to_string(),
                endpoint_url: a.endpoint_url.clone(),
                fields: a.fields.clone(),
                api_version: a.api_version.clone(),
                include_session_id,
                integration_user: a.integration_user.clone(),
                use_dead_letter_queue: a.use_dead_letter_queue,
                description: a.description.clone(),
            }
        })
        .collect();
    let rules = imported
        .rules
        .iter()
        .map(|r| {
            let (criteria, boolean_filter, formula) = match &r.criteria {
                Criteria::Items {
                    items,
                    boolean_filter,
                } => (items.clone(), boolean_filter.clone(), None),
                Criteria::Formula(f) => (Vec::new(), None, Some(f.clone())),
            };
            ImportedRule {
                name: r.name.clone(),
                active: r.active,
                trigger: r.trigger,
                criteria,
                boolean_filter,
                formula,
                actions: r.actions.clone(),
            }
        })
        .collect();
    ImportedObject {
        object: imported.object,
        source,
        key_prefix: schema.key_prefix,
        inferred_fields,
        actions,
        rules,
        skipped,
    }
}

pub fn import(path: &Path, config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let desk = config.desk.as_ref().with_context(|| {
        format!(
            "{} has no [desk]: imported workflows belong to a desk",
            config_path.display()
        )
    })?;
    let files = workflow_files(path)?;
    if files.is_empty() {
        bail!(
            "no Workflow files (*.workflow, *.workflow-meta.xml) under {}",
            path.display()
        );
    }
    let mut new: BTreeMap<String, ImportedObject> = BTreeMap::new();
    for file in &files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(object) = rules::object_for_file(&name) else {
            continue;
        };
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let imported = rules::import_workflow(object, &text).with_context(|| {
            format!("{}: not a Workflow file casewire can read", file.display())
        })?;
        let source = shown(file, &config.base_dir);
        if let Some(first) = new.get(&object.to_ascii_lowercase()) {
            bail!(
                "two Workflow files for {object}: {} and {source}; import one of them",
                first.source
            );
        }
        new.insert(object.to_ascii_lowercase(), to_imported(imported, source));
    }

    let target = config.resolve(&desk.metadata_file);
    let before_text = match std::fs::read_to_string(&target) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", target.display())),
    };
    let before = ImportedFile::load(&target)?;
    let mut merged: Vec<ImportedObject> = before
        .workflow
        .into_iter()
        .filter(|o| !new.contains_key(&o.object.to_ascii_lowercase()))
        .collect();
    merged.extend(new.values().cloned());
    merged.sort_by_key(|o| o.object.to_ascii_lowercase());
    let file = ImportedFile { workflow: merged };

    print_report(path, new.values());
    // What the desk would load, checked before anything is written: a file that stops the desk from
    // starting is worse than no import.
    desk_setup::catalog_with(desk, &file, "https://localhost".to_owned()).with_context(|| {
        format!(
            "the imported definitions would not load with {}; nothing was written",
            config_path.display()
        )
    })?;
    let text = file.render()?;
    if before_text.as_deref() == Some(text.as_str()) {
        println!("{} is up to date: nothing changed", target.display());
    } else {
        let tmp = target.with_extension("toml.tmp");
        std::fs::write(&tmp, &text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &target)
            .with_context(|| format!("cannot write {}", target.display()))?;
        println!("wrote {}", target.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report<'a>(path: &Path, objects: impl Iterator<Item = &'a ImportedObject>) {
    println!("imported from {}:", path.display());
    let (mut n_actions, mut n_rules, mut n_active, mut n_skipped) = (0, 0, 0, 0);
    let mut skipped_lines = Vec::new();
    for o in objects {
        let active = o.rules.iter().filter(|r| r.active).count();
        n_actions += o.actions.len();
        n_rules += o.rules.len();
        n_active += active;
        n_skipped += o.skipped.len();
        println!(
            "  {} ({}): {} outbound message(s), {} rule(s) ({active} active)",
            o.object,
            o.source,
            o.actions.len(),
            o.rules.len()
        );
        for a in &o.actions {
            println!(
                "    action {} -> {} ({} field(s){})",
                a.name,
                a.endpoint_url,
                a.fields.len(),
                if a.include_session_id {
                    ", session id"
                } else {
                    ""
                }
            );
        }
        for r in &o.rules {
            let criteria = match (&r.formula, r.criteria.len()) {
                (Some(_), _) => "formula".to_owned(),
                (None, 0) => "no criteria".to_owned(),
                (None, n) => format!("{n} criteria item(s)"),
            };
            println!(
                "    rule {} [{}, {}, {criteria}] -> {}",
                r.name,
                r.trigger.as_str(),
                if r.active { "active" } else { "inactive" },
                if r.actions.is_empty() {
                    "no outbound message".to_owned()
                } else {
                    r.actions.join(", ")
                }
            );
        }
        if !o.inferred_fields.is_empty() {
            println!(
                "    fields inferred (declare them under [[desk.objects]] to fix their types): {}",
                o.inferred_fields
                    .iter()
                    .map(|f| format!("{} ({})", f.name, f.ftype.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for s in &o.skipped {
            skipped_lines.push(format!(
                "  {}: {} {}: {}",
                o.object, s.kind, s.name, s.reason
            ));
        }
    }
    if !skipped_lines.is_empty() {
        println!("skipped or changed (casewire does not run these as Salesforce would):");
        for line in skipped_lines {
            println!("{line}");
        }
    }
    println!(
        "{n_actions} outbound message(s), {n_rules} rule(s) ({n_active} active), {n_skipped} item(s) skipped"
    );
}
