//! `kubegate dev-certs`: makes a dev CA, a server certificate and a dev JWT issuer key in a folder
//! (kept if already there). For the demo and tests only.

use std::path::PathBuf;

use kubegate::dev;

#[derive(clap::Args)]
pub struct Args {
    /// The folder to write into.
    #[arg(long, default_value = "certs")]
    dir: PathBuf,
    /// Names and addresses the server certificate is valid for; repeat for several.
    #[arg(long = "host", default_values = ["127.0.0.1", "localhost"])]
    hosts: Vec<String>,
    /// Make new ones even if they exist (tokens signed by the old issuer key stop working).
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let hosts: Vec<&str> = args.hosts.iter().map(String::as_str).collect();
    let files = dev::write_dev_pki(&args.dir, &hosts, args.force)?;
    println!("CA certificate:       {}", files.ca_cert.display());
    println!("server certificate:   {}", files.server_cert.display());
    println!("server key:           {}", files.server_key.display());
    println!("dev issuer key:       {}", files.issuer_key.display());
    println!(
        "dev issuer public key: {}",
        files.issuer_public_key.display()
    );
    Ok(())
}
