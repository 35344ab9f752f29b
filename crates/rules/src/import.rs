//! Salesforce Workflow metadata (`Case.workflow`, `Case.workflow-meta.xml`) into casewire actions and rules.
//!
//! Only outbound messages and the rules that call them run in casewire. Everything else in the file is
//! listed in [`ImportedWorkflow::skipped`], so that an import never fails on a definition casewire does not
//! support and never silently drops one either. A rule whose criteria casewire cannot evaluate exactly is
//! imported with `active = false` and a `skipped` entry saying why: a rule that is off is visible and
//! harmless, a rule evaluated differently from Salesforce would send wrong messages.

use std::collections::BTreeSet;

use model::{Criteria, CriteriaItem, OutboundAction, PayloadMode, Rule, SfId, TriggerType};
use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use crate::engine::check_without_schema;
use crate::error::ImportError;
use crate::path::is_api_name;

/// The Metadata API namespace every Workflow file declares.
pub const METADATA_NS: &str = "http://soap.sforce.com/2006/04/metadata";

/// Workflow files nest five levels deep; anything far deeper is not a Workflow file.
const MAX_DEPTH: usize = 32;

/// What one Workflow file yields.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedWorkflow {
    /// The object, as passed to [`import_workflow`].
    pub object: String,
    /// Outbound-message actions in file order.
    pub actions: Vec<OutboundAction>,
    /// Rules in file order; `actions` hold only outbound-message names.
    pub rules: Vec<Rule>,
    /// Everything not imported (or imported deactivated), in file order.
    pub skipped: Vec<Skipped>,
}

/// A definition or part of one that casewire did not import, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The metadata element (`fieldUpdates`, `alerts`, `tasks`, `outboundMessages`, `rules`,
    /// `workflowTimeTriggers`), `actions` for a rule's non-outbound-message action, `formula` or
    /// `criteriaItems` for criteria casewire cannot evaluate, `triggerType` for a defaulted trigger.
    pub kind: String,
    /// The definition's `fullName`, or the rule's for rule parts.
    pub name: String,
    /// Why, in words for a person reading an import report.
    pub reason: String,
}

/// The object a Workflow file is about, from its file name: `Case.workflow` and `Case.workflow-meta.xml`
/// give `Case`. `None` for other files.
pub fn object_for_file(file_name: &str) -> Option<&str> {
    let stem = file_name
        .strip_suffix(".workflow-meta.xml")
        .or_else(|| file_name.strip_suffix(".workflow"))?;
    is_api_name(stem).then_some(stem)
}

/// A tiny element tree: Workflow files are small, and a tree keeps the mapping below readable.
#[derive(Debug, Default)]
struct Element {
    name: String,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    fn children<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Element> + 's {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Trimmed text of a child, `None` when absent or blank.
    fn value(&self, name: &str) -> Option<String> {
        self.child(name)
            .map(|c| c.text.trim().to_owned())
            .filter(|t| !t.is_empty())
    }
}

fn xml_error(reader: &NsReader<&[u8]>, e: impl std::fmt::Display) -> ImportError {
    ImportError::Xml {
        offset: reader.error_position(),
        message: e.to_string(),
    }
}

fn parse_tree(xml: &str) -> Result<Element, ImportError> {
    // A byte-order mark is not part of the document.
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let mut reader = NsReader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let (ns, event) = match reader.read_resolved_event() {
            Ok((ResolveResult::Bound(n), event)) => (Some(n.0.to_owned()), event),
            Ok((_, event)) => (None, event),
            Err(e) => return Err(xml_error(&reader, e)),
        };
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() && stack.is_empty() => {
                return Err(xml_error(&reader, "a second root element"));
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = e.local_name().into_inner().to_owned();
                if stack.is_empty() && (name != "Workflow" || ns.as_deref() != Some(METADATA_NS)) {
                    return Err(ImportError::NotWorkflow {
                        expected: METADATA_NS,
                        found: match ns {
                            Some(ns) => format!("{{{ns}}}{name}"),
                            None => name,
                        },
                    });
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(ImportError::TooDeep(MAX_DEPTH));
                }
                let element = Element {
                    name,
                    ..Element::default()
                };
                if matches!(event, Event::Start(_)) {
                    stack.push(element);
                } else {
                    attach(&mut stack, &mut root, element);
                }
            }
            Event::End(_) => {
                if let Some(done) = stack.pop() {
                    attach(&mut stack, &mut root, done);
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| xml_error(&reader, e))? {
                    Some(c) => c,
                    None => match r.xml10_content().as_ref() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => {
                            return Err(xml_error(&reader, format!("unknown entity &{other};")));
                        }
                    },
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push(resolved);
                }
            }
            Event::DocType(_) => return Err(ImportError::Dtd),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(ImportError::Xml {
            offset: xml.len() as u64,
            message: format!(
                "unclosed element <{}>",
                stack.last().map_or("", |e| e.name.as_str())
            ),
        });
    }
    root.ok_or(ImportError::Xml {
        offset: 0,
        message: "no root element".to_owned(),
    })
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

/// `xsd:boolean`.
fn boolean(text: &str) -> Option<bool> {
    match text.trim() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// The `04k` id of an imported action: a function of the object and the action's `fullName` only
/// (`SfId::derived` over `"{object}.{fullName}"`, as for actions defined in configuration), so that
/// importing the same file again, anywhere, yields the same ids and an action moved from metadata to
/// configuration keeps its id (receivers may key on `ActionId`).
pub fn action_id(object: &str, full_name: &str) -> SfId {
    SfId::derived(
        model::id::prefix::OUTBOUND_MESSAGE,
        &format!("{object}.{full_name}"),
    )
}

/// Parses one Workflow file. `object` comes from the file name (see [`object_for_file`]).
///
/// Decisions where Salesforce leaves room:
/// - a rule without `triggerType` gets `onCreateOnly` (the Setup UI's default, and the mode that fires
///   least), reported in `skipped` with kind `triggerType`;
/// - a rule without `active` is inactive; a rule without criteria items and formula always matches, as in
///   Salesforce;
/// - `useDeadLetterQueue` and `includeSessionId` default to false; `payload_mode` is `Latest`;
/// - `fullName` is kept as written (percent-encoded characters such as `%28` included), since it is the
///   identifier Salesforce uses;
/// - an outbound message lacking `fullName`, `endpointUrl` or `apiVersion`, or a rule lacking `fullName`
///   or with an unknown `triggerType`, is skipped as a whole;
/// - outbound messages called only from time triggers are still imported (a later version may schedule
///   them), but never attached to the rule's immediate actions.
pub fn import_workflow(object: &str, xml: &str) -> Result<ImportedWorkflow, ImportError> {
    if !is_api_name(object) {
        return Err(ImportError::BadObject(object.to_owned()));
    }
    let root = parse_tree(xml)?;
    let mut out = ImportedWorkflow {
        object: object.to_owned(),
        actions: Vec::new(),
        rules: Vec::new(),
        skipped: Vec::new(),
    };
    for element in root.children("outboundMessages") {
        match outbound_message(object, element) {
            Ok(action) => out.actions.push(action),
            Err(skip) => out.skipped.push(skip),
        }
    }
    let defined: BTreeSet<String> = out.actions.iter().map(|a| a.name.clone()).collect();
    for element in &root.children {
        match element.name.as_str() {
            "outboundMessages" | "fullName" => {}
            "rules" => rule(object, element, &defined, &mut out),
            kind => out.skipped.push(Skipped {
                kind: kind.to_owned(),
                name: element.value("fullName").unwrap_or_default(),
                reason: match kind {
                    "fieldUpdates" | "alerts" | "tasks" | "knowledgePublishes" | "flowActions"
                    | "send" => {
                        format!("{kind} are not run by casewire (only outbound messages are)")
                    }
                    _ => format!("unknown Workflow element {kind}"),
                },
            }),
        }
    }
    Ok(out)
}

fn outbound_message(object: &str, e: &Element) -> Result<OutboundAction, Skipped> {
    let name = e.value("fullName");
    let skip = |reason: String| Skipped {
        kind: "outboundMessages".to_owned(),
        name: name.clone().unwrap_or_default(),
        reason,
    };
    let full_name = name.clone().ok_or_else(|| skip("no fullName".to_owned()))?;
    let endpoint_url = e
        .value("endpointUrl")
        .ok_or_else(|| skip("no endpointUrl".to_owned()))?;
    let api_version = e
        .value("apiVersion")
        .ok_or_else(|| skip("no apiVersion".to_owned()))?;
    let flag = |field: &str| -> Result<bool, Skipped> {
        match e.value(field) {
            None => Ok(false),
            Some(text) => boolean(&text)
                .ok_or_else(|| skip(format!("{field} is {text:?}, not true or false"))),
        }
    };
    let include_session_id = flag("includeSessionId")?;
    let use_dead_letter_queue = flag("useDeadLetterQueue")?;
    let id = action_id(object, &full_name);
    Ok(OutboundAction {
        name: full_name,
        id,
        object: object.to_owned(),
        endpoint_url,
        fields: e
            .children("fields")
            .map(|f| f.text.trim().to_owned())
            .filter(|f| !f.is_empty())
            .collect(),
        api_version,
        include_session_id,
        integration_user: e.value("integrationUser"),
        use_dead_letter_queue,
        payload_mode: PayloadMode::Latest,
        description: e.value("description"),
    })
}

fn rule(object: &str, e: &Element, defined: &BTreeSet<String>, out: &mut ImportedWorkflow) {
    let Some(name) = e.value("fullName") else {
        out.skipped.push(Skipped {
            kind: "rules".to_owned(),
            name: String::new(),
            reason: "no fullName".to_owned(),
        });
        return;
    };
    let skip = |kind: &str, reason: String| Skipped {
        kind: kind.to_owned(),
        name: name.clone(),
        reason,
    };
    let mut skipped = Vec::new();
    let trigger = match e.value("triggerType").as_deref() {
        Some("onCreateOnly") => TriggerType::OnCreateOnly,
        Some("onAllChanges") => TriggerType::OnAllChanges,
        Some("onCreateOrTriggeringUpdate") => TriggerType::OnCreateOrTriggeringUpdate,
        None => {
            skipped.push(skip(
                "triggerType",
                "no triggerType: imported as onCreateOnly".to_owned(),
            ));
            TriggerType::OnCreateOnly
        }
        Some(other) => {
            out.skipped
                .push(skip("rules", format!("unknown triggerType {other:?}")));
            return;
        }
    };
    let mut actions = Vec::new();
    for action in e.children("actions") {
        let action_name = action.value("name").unwrap_or_default();
        match action.value("type").as_deref() {
            Some("OutboundMessage") if defined.contains(&action_name) => {
                if !actions.contains(&action_name) {
                    actions.push(action_name);
                }
            }
            Some("OutboundMessage") => skipped.push(skip(
                "actions",
                format!("OutboundMessage {action_name} is not defined in this file"),
            )),
            other => skipped.push(skip(
                "actions",
                format!(
                    "{} {action_name} is not run by casewire (only outbound messages are)",
                    other.unwrap_or("untyped action")
                ),
            )),
        }
    }
    for time_trigger in e.children("workflowTimeTriggers") {
        let called: Vec<String> = time_trigger
            .children("actions")
            .map(|a| {
                format!(
                    "{} ({})",
                    a.value("name").unwrap_or_default(),
                    a.value("type").unwrap_or_default()
                )
            })
            .collect();
        let offset = format!(
            "{} {} from {}",
            time_trigger.value("timeLength").unwrap_or_default(),
            time_trigger
                .value("workflowTimeTriggerUnit")
                .unwrap_or_default(),
            time_trigger
                .value("offsetFromField")
                .unwrap_or_else(|| "the rule trigger date".to_owned()),
        );
        skipped.push(skip(
            "workflowTimeTriggers",
            format!(
                "time-dependent actions are not supported: {offset}: {}",
                called.join(", ")
            ),
        ));
    }
    let items: Vec<CriteriaItem> = e
        .children("criteriaItems")
        .map(|item| CriteriaItem {
            field: item.value("field").unwrap_or_default(),
            operation: item.value("operation").unwrap_or_default(),
            value: item
                .child("value")
                .map(|v| v.text.trim().to_owned())
                .filter(|v| !v.is_empty()),
        })
        .collect();
    let formula = e
        .child("formula")
        .map(|f| f.text.clone())
        .filter(|f| !f.trim().is_empty());
    let both = formula.is_some() && !items.is_empty();
    let criteria = match formula {
        Some(formula) if items.is_empty() => Criteria::Formula(formula),
        _ => Criteria::Items {
            items,
            boolean_filter: e.value("booleanFilter"),
        },
    };
    let was_active = e
        .value("active")
        .as_deref()
        .and_then(boolean)
        .unwrap_or(false);
    let mut rule = Rule {
        name: name.clone(),
        object: object.to_owned(),
        active: was_active,
        trigger,
        criteria,
        actions,
    };
    let problem = if both {
        Some("has both criteria items and a formula".to_owned())
    } else {
        check_without_schema(&rule).err().map(|e| e.detail())
    };
    if let Some(problem) = problem {
        let kind = match rule.criteria {
            Criteria::Formula(_) => "formula",
            Criteria::Items { .. } => "criteriaItems",
        };
        let reason = if was_active {
            format!("rule imported inactive: {problem}")
        } else {
            format!("rule (inactive in the file) cannot be activated in casewire: {problem}")
        };
        skipped.push(skip(kind, reason));
        rule.active = false;
    }
    out.rules.push(rule);
    out.skipped.extend(skipped);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_ids_are_deterministic_and_valid() {
        let a = action_id("Case", "SendSurvey");
        assert_eq!(a, action_id("Case", "SendSurvey"));
        assert_ne!(a, action_id("Lead", "SendSurvey"));
        assert_ne!(a, action_id("Case", "SendSurvey2"));
        assert_eq!(a.key_prefix(), "04k");
        assert!(a.has_valid_checksum());
    }

    #[test]
    fn file_names_give_objects() {
        assert_eq!(object_for_file("Case.workflow"), Some("Case"));
        assert_eq!(
            object_for_file("Asset__c.workflow-meta.xml"),
            Some("Asset__c")
        );
        assert_eq!(object_for_file("Case.xml"), None);
        assert_eq!(object_for_file(".workflow"), None);
    }
}
