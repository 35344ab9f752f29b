//! Load-time errors. Evaluation itself never fails loudly: a rule whose criteria cannot be evaluated on a
//! given save simply does not fire (see [`crate::rule_fires`]).

use std::fmt;

/// A position in a formula or boolean filter: 1-based line and 1-based column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters (a tab is one).
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Most formulas are one line; naming line 1 every time would only add noise.
        if self.line <= 1 {
            write!(f, "column {}", self.column)
        } else {
            write!(f, "line {}, column {}", self.line, self.column)
        }
    }
}

/// Why a rule could not be compiled. Every variant names the rule.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    /// The rule was handed the schema of another object.
    #[error(
        "rule {rule:?} is for {rule_object}, but was compiled against the schema of {schema_object}"
    )]
    ObjectMismatch {
        /// The rule's name.
        rule: String,
        /// The rule's object.
        rule_object: String,
        /// The schema's object.
        schema_object: String,
    },
    /// A criteria item names a field the object's schema does not have. (A formula's unknown field is a
    /// [`RuleError::Formula`], with its position.)
    #[error("rule {rule:?}: {object} has no field {field:?}")]
    UnknownField {
        /// The rule's name.
        rule: String,
        /// The object searched.
        object: String,
        /// The missing field (for `Rel.Field`, the lookup field `RelId` / `Rel__c`).
        field: String,
    },
    /// A criteria item (1-based `item`, as `booleanFilter` numbers them) that casewire refuses.
    #[error("rule {rule:?}: criteria item {item} ({field}): {message}")]
    CriteriaItem {
        /// The rule's name.
        rule: String,
        /// 1-based item number.
        item: usize,
        /// The item's field as written.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The `booleanFilter` expression is malformed or does not match the criteria items.
    #[error("rule {rule:?}: boolean filter {filter:?}: {message} at {pos}")]
    BooleanFilter {
        /// The rule's name.
        rule: String,
        /// The filter as written.
        filter: String,
        /// Where in the filter.
        pos: Pos,
        /// What is wrong.
        message: String,
    },
    /// A formula that casewire cannot evaluate exactly as Salesforce would: a syntax error, an unsupported
    /// function or global, or a type error.
    #[error("rule {rule:?}: formula: {message} at {pos}")]
    Formula {
        /// The rule's name.
        rule: String,
        /// Where in the formula.
        pos: Pos,
        /// What is wrong or unsupported, naming it.
        message: String,
    },
}

impl RuleError {
    /// The name of the rule the error is about.
    pub fn rule(&self) -> &str {
        match self {
            RuleError::ObjectMismatch { rule, .. }
            | RuleError::UnknownField { rule, .. }
            | RuleError::CriteriaItem { rule, .. }
            | RuleError::BooleanFilter { rule, .. }
            | RuleError::Formula { rule, .. } => rule,
        }
    }

    /// The message without the rule name, for reports that already group by rule.
    pub fn detail(&self) -> String {
        match self {
            RuleError::ObjectMismatch { .. } => self.to_string(),
            RuleError::UnknownField { object, field, .. } => {
                format!("{object} has no field {field:?}")
            }
            RuleError::CriteriaItem {
                item,
                field,
                message,
                ..
            } => format!("criteria item {item} ({field}): {message}"),
            RuleError::BooleanFilter {
                filter,
                pos,
                message,
                ..
            } => {
                format!("boolean filter {filter:?}: {message} at {pos}")
            }
            RuleError::Formula { pos, message, .. } => format!("{message} at {pos}"),
        }
    }
}

/// Why a Workflow metadata file could not be imported at all. Problems with single definitions are not
/// errors: they are reported in [`crate::ImportedWorkflow::skipped`].
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ImportError {
    /// The text is not well-formed XML (byte offset into the input).
    #[error("not well-formed XML at byte {offset}: {message}")]
    Xml {
        /// Byte offset of the problem.
        offset: u64,
        /// The parser's message.
        message: String,
    },
    /// A document type declaration: refused so that no entity is ever expanded.
    #[error("DTDs are not allowed in Workflow metadata")]
    Dtd,
    /// The document nests deeper than any Workflow file does.
    #[error("elements nest deeper than {0} levels")]
    TooDeep(usize),
    /// The root element is not `{http://soap.sforce.com/2006/04/metadata}Workflow`.
    #[error("expected a Workflow element in namespace {expected}, found {found}")]
    NotWorkflow {
        /// [`crate::METADATA_NS`].
        expected: &'static str,
        /// The root element found, as `{namespace}name`.
        found: String,
    },
    /// The object name (from the file name) is empty or not an API name.
    #[error("{0:?} is not an object API name")]
    BadObject(String),
}
