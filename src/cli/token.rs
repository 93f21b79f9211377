//! `kubegate token`: mints a dev JWT (ES256) with the local dev issuer key and prints it.
//! For the demo and tests only: production tokens come from your identity provider.

use std::path::PathBuf;

use anyhow::Context;
use kubegate::dev::{self, TokenRequest};

#[derive(clap::Args)]
pub struct Args {
    /// The dev issuer's private key (made by `kubegate dev-certs`).
    #[arg(long, default_value = "certs/dev-issuer-key.pem")]
    key: PathBuf,
    /// The username (`sub` claim).
    #[arg(long)]
    user: String,
    /// A group (`groups` claim); repeat for several.
    #[arg(long = "group")]
    groups: Vec<String>,
    /// The tenant (`tenant` claim).
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long)]
    email: Option<String>,
    #[arg(long, default_value = dev::DEV_ISSUER)]
    issuer: String,
    #[arg(long, default_value = dev::DEV_AUDIENCE)]
    audience: String,
    /// How long the token is valid, e.g. `12h`, `30m`.
    #[arg(long, default_value = "12h")]
    ttl: jiff::SignedDuration,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let lifetime = args
        .ttl
        .try_into()
        .context("--ttl must be a positive duration")?;
    let token = dev::mint_token_from_file(
        &args.key,
        &TokenRequest {
            issuer: args.issuer,
            audience: args.audience,
            subject: args.user,
            groups: args.groups,
            tenant: args.tenant,
            email: args.email,
            lifetime,
        },
    )?;
    println!("{token}");
    Ok(())
}
