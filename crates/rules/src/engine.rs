//! Compiling rules against a schema and deciding, for one save, which rules fire.

use chrono::{DateTime, Utc};
use model::{Criteria, ObjectSchema, Record, Rule, TriggerType};

use crate::criteria::{self, ItemsError};
use crate::error::RuleError;
use crate::formula::{Ctx, Program};
use crate::path::Scope;
use crate::value::EvalResult;

/// Looks up records across one lookup field (`Case.AccountId` -> Account) for `Account.Name`-style
/// references.
///
/// `object` is the target object's API name when it is known: from the id's key prefix for common
/// objects (`001` Account, `003` Contact, `005` User, `00G` Group, ...), else from a standard
/// relationship's name (`Account`, `Contact`, `Owner` -> User, `Parent` -> the rule's object). For a
/// custom relationship (`Foo__r`) whose id has an unfamiliar prefix it is empty: find the record by id
/// alone. Returning `None` makes every field of the related record read as null, as in Salesforce when
/// the lookup is empty.
pub trait Related {
    /// The record `id` of `object` (empty `object`: unknown, see above), or `None`.
    fn get(&self, object: &str, id: &str) -> Option<Record>;
}

/// No related records: every cross-object reference reads as null.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRelated;

impl Related for NoRelated {
    fn get(&self, _object: &str, _id: &str) -> Option<Record> {
        None
    }
}

/// Any `Fn(object, id)` serves as a lookup, which keeps tests and small callers short.
impl<F> Related for F
where
    F: Fn(&str, &str) -> Option<Record>,
{
    fn get(&self, object: &str, id: &str) -> Option<Record> {
        self(object, id)
    }
}

static NO_RELATED: NoRelated = NoRelated;

/// What a save looks like to rules. `old` is None on insert.
#[derive(Clone, Copy)]
pub struct Change<'a> {
    /// The record before the save; `None` on insert.
    pub old: Option<&'a Record>,
    /// The record as saved.
    pub new: &'a Record,
    /// The time of the save, for `TODAY()` and `NOW()` (UTC: casewire has no user time zones).
    pub now: DateTime<Utc>,
    /// Resolves `Account.Name`-style references.
    pub related: &'a dyn Related,
}

impl<'a> Change<'a> {
    /// An insert, without related records.
    pub fn insert(new: &'a Record, now: DateTime<Utc>) -> Self {
        Self {
            old: None,
            new,
            now,
            related: &NO_RELATED,
        }
    }

    /// An update from `old` to `new`, without related records.
    pub fn update(old: &'a Record, new: &'a Record, now: DateTime<Utc>) -> Self {
        Self {
            old: Some(old),
            new,
            now,
            related: &NO_RELATED,
        }
    }

    /// The same change, resolving cross-object references through `related`.
    pub fn with_related(self, related: &'a dyn Related) -> Self {
        Self { related, ..self }
    }
}

impl std::fmt::Debug for Change<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Change")
            .field("old", &self.old)
            .field("new", &self.new)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
enum Compiled {
    Items(criteria::Items),
    Formula(Program),
}

impl Compiled {
    fn holds(
        &self,
        record: &Record,
        prior: Option<&Record>,
        is_new: bool,
        change: &Change<'_>,
    ) -> EvalResult<bool> {
        match self {
            Compiled::Items(items) => items.eval(record, change.related),
            Compiled::Formula(program) => program.eval(&Ctx {
                record,
                prior,
                is_new,
                now: change.now,
                related: change.related,
            }),
        }
    }
}

/// A rule checked and compiled at load time (formula parsed, boolean filter parsed, fields resolved
/// against the schema).
///
/// An *inactive* rule whose criteria do not compile still compiles: it never fires, and its error is kept
/// in [`CompiledRule::error`]. The importer deactivates rules it cannot evaluate exactly, and those must
/// still load; activating such a rule makes [`compile`] fail with the error.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    /// The rule as given.
    pub rule: Rule,
    criteria: Result<Compiled, RuleError>,
}

impl CompiledRule {
    /// Why the criteria of this (inactive) rule could not be compiled; `None` when they compiled.
    pub fn error(&self) -> Option<&RuleError> {
        self.criteria.as_ref().err()
    }
}

/// Compiles `rule` against the schema of its object.
pub fn compile(rule: &Rule, schema: &ObjectSchema) -> Result<CompiledRule, RuleError> {
    if !rule.object.eq_ignore_ascii_case(&schema.name) {
        return Err(RuleError::ObjectMismatch {
            rule: rule.name.clone(),
            rule_object: rule.object.clone(),
            schema_object: schema.name.clone(),
        });
    }
    let scope = Scope {
        object: &schema.name,
        schema: Some(schema),
    };
    match compile_criteria(rule, scope) {
        Ok(compiled) => Ok(CompiledRule {
            rule: rule.clone(),
            criteria: Ok(compiled),
        }),
        Err(e) if !rule.active => Ok(CompiledRule {
            rule: rule.clone(),
            criteria: Err(e),
        }),
        Err(e) => Err(e),
    }
}

/// Checks everything that does not need a schema: syntax, functions, globals, operations, reference shapes,
/// standard fields' types. What the importer uses to decide whether a rule can run in casewire.
pub(crate) fn check_without_schema(rule: &Rule) -> Result<(), RuleError> {
    let scope = Scope {
        object: &rule.object,
        schema: None,
    };
    compile_criteria(rule, scope).map(|_| ())
}

fn compile_criteria(rule: &Rule, scope: Scope<'_>) -> Result<Compiled, RuleError> {
    match &rule.criteria {
        Criteria::Items {
            items,
            boolean_filter,
        } => criteria::compile(scope, items, boolean_filter.as_deref())
            .map(Compiled::Items)
            .map_err(|e| match e {
                ItemsError::Unknown { field } => RuleError::UnknownField {
                    rule: rule.name.clone(),
                    object: scope.object.to_owned(),
                    field,
                },
                ItemsError::Item {
                    item,
                    field,
                    message,
                } => RuleError::CriteriaItem {
                    rule: rule.name.clone(),
                    item,
                    field,
                    message,
                },
                ItemsError::Filter { pos, message } => RuleError::BooleanFilter {
                    rule: rule.name.clone(),
                    filter: boolean_filter.clone().unwrap_or_default(),
                    pos,
                    message,
                },
            }),
        Criteria::Formula(source) => Program::compile(scope, rule.trigger, source)
            .map(Compiled::Formula)
            .map_err(|(pos, message)| RuleError::Formula {
                rule: rule.name.clone(),
                pos,
                message,
            }),
    }
}

/// Whether `rule` fires for this save, by its evaluation mode:
/// - `onCreateOnly`: on insert, when the criteria hold;
/// - `onAllChanges`: on insert and on every update, when the criteria hold for the new record;
/// - `onCreateOrTriggeringUpdate`: on insert when the criteria hold, and on update only when they did not
///   hold for the old record and do for the new one.
///
/// Inactive rules, rules of another object, and criteria that cannot be evaluated on this save (a related
/// record's field of an unexpected type) do not fire.
pub fn rule_fires(rule: &CompiledRule, change: &Change<'_>) -> bool {
    if !rule.rule.active || !rule.rule.object.eq_ignore_ascii_case(&change.new.object) {
        return false;
    }
    let Ok(criteria) = &rule.criteria else {
        return false;
    };
    let holds_now = || {
        matches!(
            criteria.holds(change.new, change.old, change.old.is_none(), change),
            Ok(true)
        )
    };
    match (rule.rule.trigger, change.old) {
        (_, None) => holds_now(),
        (TriggerType::OnCreateOnly, Some(_)) => false,
        (TriggerType::OnAllChanges, Some(_)) => holds_now(),
        (TriggerType::OnCreateOrTriggeringUpdate, Some(old)) => {
            // Not knowing whether the old record met the criteria is not a transition.
            holds_now() && matches!(criteria.holds(old, None, false, change), Ok(false))
        }
    }
}

/// The names of the actions to queue for this save, each once, in first-seen order, from all active rules
/// of `new.object`.
pub fn actions_for_save(rules: &[CompiledRule], change: &Change<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for rule in rules.iter().filter(|r| rule_fires(r, change)) {
        for action in &rule.rule.actions {
            if !out.contains(action) {
                out.push(action.clone());
            }
        }
    }
    out
}
