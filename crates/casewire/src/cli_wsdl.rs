//! `casewire wsdl ACTION --config FILE`: prints the WSDL of an outbound-message action, the same bytes
//! the desk serves at `GET /services/wsdl/{action}`.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct WsdlArgs {
    /// The action's name (`name` in `[[desk.actions]]`).
    pub action: String,
    #[arg(long, short, env = "CASEWIRE_CONFIG", default_value = "casewire.toml")]
    pub config: PathBuf,
}

pub fn run(args: &WsdlArgs) -> anyhow::Result<ExitCode> {
    let config = crate::config::Config::load(&args.config)?;
    let Some(desk) = &config.desk else {
        anyhow::bail!(
            "{}: no [desk] section, so there are no outbound-message actions",
            args.config.display()
        );
    };
    // The full catalog is built, as the desk builds it at start (imported metadata included), so that
    // an action the desk would refuse (unknown object or field) is refused here too rather than described.
    let instance_url = desk
        .instance_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", desk.listen));
    let catalog = crate::desk_setup::catalog(&config, desk, instance_url)?;
    match wsdl_for(&catalog, &args.action) {
        Some(wsdl) => {
            print!("{wsdl}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let known: Vec<&str> = catalog.actions().map(|a| a.name.as_str()).collect();
            eprintln!(
                "casewire: no outbound-message action named {:?} in {} (actions: {})",
                args.action,
                args.config.display(),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            );
            Ok(ExitCode::from(2))
        }
    }
}

/// The WSDL of the action named `name`, if the catalog has it.
pub fn wsdl_for(catalog: &desk::Catalog, name: &str) -> Option<String> {
    let action = catalog.action(name)?;
    let schema = catalog.schema(&action.object)?;
    Some(soap::wsdl::generate(action, schema))
}
