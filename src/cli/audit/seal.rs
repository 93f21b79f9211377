//! `kubegate audit verify` and `kubegate audit keygen`: check a log's hash chain and signed
//! checkpoints ([`kubegate::audit::verify`]), and make the key that signs them.

use std::path::PathBuf;

use anyhow::Context;
use kubegate::audit::chain::{self, Verifier};
use kubegate::audit::verify::{self, Report};

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// kubegate audit logs: the current file, rotated ones, other replicas' (any order).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The public key checkpoints are signed with (PEM). Without it, only the chain is
    /// checked, which a rewrite of the whole log would pass.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Judge the log as of this time (RFC 3339) instead of now: a log not closed whose last
    /// checkpoint is overdue by then counts as cut.
    #[arg(long)]
    at: Option<jiff::Timestamp>,
}

#[derive(clap::Args)]
pub struct KeygenArgs {
    /// Where to write the private key (PKCS#8 PEM, owner-only); the public key goes beside it,
    /// with `.pub` before the extension.
    #[arg(long)]
    out: PathBuf,
}

/// Verifies, prints the report, and fails if any chain is broken.
pub fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let key = match &args.key {
        Some(path) => Some(Verifier::from_file(path)?),
        None => None,
    };
    let at = args.at.unwrap_or_else(jiff::Timestamp::now);
    let report = verify::verify(&args.files, key.as_ref(), at);
    print!("{}", describe(&report));
    if report.is_intact() {
        Ok(())
    } else {
        anyhow::bail!("the audit log does not verify")
    }
}

fn describe(report: &Report) -> String {
    let mut text = String::new();
    for (path, error) in &report.unreadable {
        text.push_str(&format!("cannot read {}: {error}\n", path.display()));
    }
    for chain in &report.chains {
        let files: Vec<String> = chain
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        let span = match (chain.first_seq, chain.last_seq) {
            (Some(first), Some(last)) => format!("seq {first}..={last}"),
            _ => "no lines".to_owned(),
        };
        text.push_str(&format!(
            "chain through {}: {} records, {} checkpoints, {span}: {}\n",
            files.join(" → "),
            chain.records,
            chain.checkpoints,
            if chain.problem.is_some() {
                "BROKEN"
            } else {
                "intact"
            }
        ));
        if let Some(problem) = &chain.problem {
            text.push_str(&format!("  first broken line: {problem}\n"));
        }
        for note in &chain.notes {
            text.push_str(&format!("  note: {note}\n"));
        }
    }
    text
}

/// Makes a new Ed25519 key pair for `audit.signing_key`.
pub fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let (private, public) = chain::generate().map_err(anyhow::Error::msg)?;
    let public_path = public_path(&args.out);
    write_new(&args.out, &private, 0o600)?;
    write_new(&public_path, &public, 0o644)?;
    println!(
        "wrote {} (set audit.signing_key to it) and {} (for kubegate audit verify --key)",
        args.out.display(),
        public_path.display()
    );
    Ok(())
}

/// Creates `path` (never overwriting: a key in use must not be replaced by accident).
fn write_new(path: &std::path::Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| {
            format!(
                "cannot create {} (kubegate never overwrites a key)",
                path.display()
            )
        })?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

fn public_path(private: &std::path::Path) -> PathBuf {
    let stem = private
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "audit-signing".to_owned());
    let extension = private
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    private.with_file_name(format!("{stem}.pub{extension}"))
}
