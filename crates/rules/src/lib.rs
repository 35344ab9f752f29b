#![warn(missing_docs)]
//! Workflow rules as Salesforce evaluates them, and import of Salesforce Workflow metadata.
//!
//! - [`compile`] checks a [`model::Rule`] against its object's schema once, at load time: fields resolved,
//!   boolean filter and formula parsed and type-checked. Whatever casewire cannot evaluate exactly as
//!   Salesforce does is refused there with the rule's name (and, for formulas, the 1-based line/column),
//!   never evaluated approximately.
//! - [`rule_fires`] and [`actions_for_save`] decide, for one save ([`Change`]), which rules fire under
//!   their evaluation mode and which outbound-message actions to queue.
//! - [`import_workflow`] turns a `*.workflow` / `*.workflow-meta.xml` file's text into actions and rules,
//!   listing what it does not import in [`ImportedWorkflow::skipped`]; [`schema_for_import`] builds a
//!   permissive schema for the imported rules when the org's object definition is not available.
//!
//! Pure: no I/O, no clock (the save's time comes in [`Change::now`]), no global state.
//!
//! Decisions where Salesforce's behaviour is not pinned down, all in the safe direction:
//! - Rules that reference `$User`, `$Profile`, `$Setup`, `$Label` (any `$` global), the current user's
//!   fields in criteria (`User.X`), record types by name, picklist order, or fields through more than one
//!   lookup are refused at compile time; the importer imports them inactive and says why.
//! - An inactive rule whose criteria do not compile still loads (it cannot fire); see
//!   [`CompiledRule::error`].
//! - Criteria items on lookup fields accept record ids (and blank) as values; Salesforce compares names
//!   there, which casewire cannot resolve, so names are refused.
//! - If the criteria cannot be evaluated on a particular save (a related record's field holds a value of
//!   an unexpected type), the rule does not fire.
//! - `TODAY()` is the UTC date of [`Change::now`].
//! - Text compares case-insensitively in criteria items and case-sensitively in formulas (`=`,
//!   `CONTAINS`, `BEGINS`, `ISPICKVAL`, `ISCHANGED`), as in Salesforce. An absent checkbox reads false
//!   (Salesforce checkboxes are never null); blank text equals null.

mod criteria;
mod engine;
mod error;
mod filter;
mod formula;
mod import;
mod infer;
mod path;
mod value;

pub use engine::{Change, CompiledRule, NoRelated, Related, actions_for_save, compile, rule_fires};
pub use error::{ImportError, Pos, RuleError};
pub use import::{
    ImportedWorkflow, METADATA_NS, Skipped, action_id, import_workflow, object_for_file,
};
pub use infer::schema_for_import;
