use std::path::Path;

use super::*;

const EXAMPLE: &str = r#"
listen = "127.0.0.1:9443"
cluster_name = "local"

[tls]
cert = "certs/server.pem"
key = "/etc/kubegate/server-key.pem"

[auth]
issuer = "https://issuer.example"
audiences = ["kubegate"]
keys = [{ file = "certs/issuer.pub.pem", algorithm = "ES256" }]

[kubernetes]
kubeconfig = "kubegate.kubeconfig"

[policy]
files = ["policies/tenant-isolation.cedar"]

[audit]
path = "audit.log"
level = "metadata"
"#;

fn load(text: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().map_err(|e| ConfigError::Invalid(e.to_string()))?;
    let path = dir.path().join("kubegate.toml");
    std::fs::write(&path, text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    let config = Config::load(&path)?;
    // Paths are relative to the file's folder; strip it so tests can compare them.
    let mut config = config;
    let strip = |p: &mut PathBuf| {
        if let Ok(rest) = p.strip_prefix(dir.path()) {
            *p = Path::new("<dir>").join(rest);
        }
    };
    strip(&mut config.tls.cert);
    strip(&mut config.tls.key);
    strip(&mut config.audit.path);
    Ok(config)
}

#[test]
fn relative_paths_follow_the_file_and_absolute_ones_stay() {
    let config = load(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.listen.port(), 9443);
    assert_eq!(config.tls.cert, Path::new("<dir>/certs/server.pem"));
    assert_eq!(config.tls.key, Path::new("/etc/kubegate/server-key.pem"));
    assert_eq!(config.audit.path, Path::new("<dir>/audit.log"));
    assert_eq!(config.audit.level, AuditLevel::Metadata);
    assert_eq!(config.tenant_label(), DEFAULT_TENANT_LABEL);
    assert_eq!(config.auth.username_claim, "sub");
}

#[test]
fn unknown_fields_and_unusable_settings_are_refused() {
    let typo = EXAMPLE.replace("cluster_name", "clustr_name");
    let error = load(&typo).err().map(|e| format!("{:?}", e));
    assert!(error.is_some_and(|e| e.contains("clustr_name")));
    let no_audience = EXAMPLE.replace(r#"audiences = ["kubegate"]"#, "audiences = []");
    assert!(matches!(load(&no_audience), Err(ConfigError::Invalid(_))));
    let no_keys = EXAMPLE.replace(
        r#"keys = [{ file = "certs/issuer.pub.pem", algorithm = "ES256" }]"#,
        "keys = []",
    );
    assert!(matches!(load(&no_keys), Err(ConfigError::Invalid(_))));
    let bad_level = EXAMPLE.replace(r#"level = "metadata""#, r#"level = "everything""#);
    assert!(matches!(load(&bad_level), Err(ConfigError::Parse { .. })));
    assert!(matches!(
        Config::load(Path::new("/nonexistent/kubegate.toml")),
        Err(ConfigError::Read { .. })
    ));
}
