//! The `kubegate` command: serve MCP over HTTPS, mint dev tokens, make dev certificates, and
//! print the Cedar schema. Each subcommand is a thin file under `cli/` calling into the library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
