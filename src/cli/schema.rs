//! `kubegate schema`: prints the Cedar schema generated from the tool catalog, or writes it.

use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Write the schema to this file instead of printing it.
    #[arg(long)]
    write: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let schema = kubegate::policy::schema::render();
    match args.write {
        Some(path) => std::fs::write(&path, schema)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{schema}"),
    }
    Ok(())
}
