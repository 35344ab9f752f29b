//! The workflow formula subset: parse, type-check against the object's schema, evaluate.
//!
//! Supported: `AND`, `OR`, `NOT`, `&&`, `||`, `!`, `=`, `==`, `!=`, `<>`, `<`, `>`, `<=`, `>=`, `+`, `-`,
//! `&`, `ISCHANGED`, `PRIORVALUE`, `ISNEW`, `ISPICKVAL`, `INCLUDES`, `ISBLANK`, `ISNULL`, `TEXT`,
//! `CONTAINS`, `BEGINS`, `IF`, `CASE`, `NULLVALUE`, `BLANKVALUE`, `LEN`, `UPPER`, `LOWER`, `TODAY`, `NOW`,
//! text/number/boolean/null literals, `/* comments */`, field references and one-lookup references
//! (`Account.Name`). Everything else (other functions, `$` globals, `*`, `/`, `^`, references through two
//! lookups) is refused at compile time with its position.

mod check;
mod eval;
pub(crate) mod syntax;

use model::TriggerType;

pub(crate) use eval::Ctx;

use crate::error::Pos;
use crate::path::Scope;
use crate::value::EvalResult;

/// A checked formula, ready to evaluate.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    root: check::Node,
}

impl Program {
    pub fn compile(
        scope: Scope<'_>,
        trigger: TriggerType,
        source: &str,
    ) -> Result<Program, (Pos, String)> {
        let ast = syntax::parse(source)?;
        let root = check::Checker { scope, trigger }.check_root(&ast)?;
        Ok(Program { root })
    }

    pub fn eval(&self, ctx: &Ctx<'_>) -> EvalResult<bool> {
        self.root.truth(ctx)
    }
}
