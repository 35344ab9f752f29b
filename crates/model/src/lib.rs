//! The vocabulary every other crate speaks: Salesforce ids, typed field values, object schemas, and the
//! definitions of outbound-message actions and workflow rules. Nothing here performs I/O or reads a clock
//! except [`id::IdGenerator`], which takes time from its caller.

pub mod action;
pub mod id;
pub mod rule;
pub mod schema;
pub mod value;

pub use action::{OutboundAction, PayloadMode};
pub use id::{IdError, IdGenerator, IdValidation, SfId};
pub use rule::{Criteria, CriteriaItem, Rule, TriggerType};
pub use schema::{CaseStatus, FieldDef, ObjectSchema, SchemaError};
pub use value::{FieldType, FieldValue, Record, ValueError};
