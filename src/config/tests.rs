use std::path::Path;

use super::*;

const EXAMPLE: &str = r#"
listen = "127.0.0.1:9443"
cluster_name = "local"

[tls]
cert = "certs/server.pem"
key = "/etc/kubegate/server-key.pem"

[[auth.jwt]]
issuer.url = "https://issuer.example"
issuer.audiences = ["kubegate"]
issuer.keys = [{ file = "certs/issuer.pub.pem", algorithm = "ES256" }]
claimMappings.username = { claim = "sub", prefix = "" }
claimMappings.groups = { claim = "groups", prefix = "" }
tenant = { claim = "tenant" }

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
    if let Some(tls) = config.tls.as_mut() {
        strip(&mut tls.cert);
        strip(&mut tls.key);
    }
    strip(&mut config.audit.path);
    config.policy.files.iter_mut().for_each(strip);
    if let Some(shadow) = config.policy.shadow.as_mut() {
        shadow.files.iter_mut().for_each(strip);
    }
    Ok(config)
}

#[test]
fn relative_paths_follow_the_file_and_absolute_ones_stay() {
    let config = load(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.listen.port(), 9443);
    let tls = config
        .tls
        .as_ref()
        .unwrap_or_else(|| panic!("[tls] is given"));
    assert_eq!(tls.cert, Path::new("<dir>/certs/server.pem"));
    assert_eq!(tls.key, Path::new("/etc/kubegate/server-key.pem"));
    assert_eq!(config.audit.path, Path::new("<dir>/audit.log"));
    assert_eq!(config.audit.level, AuditLevel::Metadata);
    assert_eq!(config.tenant_label(), DEFAULT_TENANT_LABEL);
    let auth = config
        .auth
        .as_ref()
        .unwrap_or_else(|| panic!("[auth] is given"));
    assert_eq!(auth.jwt[0].claim_mappings.username.claim, "sub");
    assert!(
        auth.jwt[0].issuer.keys[0]
            .file
            .ends_with("certs/issuer.pub.pem")
            && auth.jwt[0].issuer.keys[0].file.is_absolute(),
        "key files follow the configuration file"
    );
}

/// The configuration with `from` replaced by `to`, loaded; the error's text if it fails.
fn refusal(from: &str, to: &str) -> String {
    assert!(EXAMPLE.contains(from), "{from:?} is in the example");
    load(&EXAMPLE.replace(from, to))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

#[test]
fn the_single_issuer_form_gets_its_rewrite_in_the_error() {
    let legacy = EXAMPLE.replace(
        &EXAMPLE
            [EXAMPLE.find("[[auth.jwt]]").unwrap_or(0)..EXAMPLE.find("[kubernetes]").unwrap_or(0)],
        "[auth]\nissuer = \"https://login.example\"\naudiences = [\"kubegate\"]\n\
         keys = [{ file = \"k.pem\", algorithm = \"RS256\" }]\nusername_prefix = \"oidc:\"\n\n",
    );
    let error = load(&legacy)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("single-issuer form"), "{error}");
    assert!(
        error.contains("issuer.url = \"https://login.example\""),
        "{error}"
    );
    assert!(
        error.contains("claimMappings.username = { claim = \"sub\", prefix = \"oidc:\" }"),
        "{error}"
    );
    // The rewrite it proposes is itself a configuration that loads.
    let rewrite = &error[error.rfind("[[auth.jwt]]").unwrap_or(0)..];
    let fixed = legacy.replace(
        &legacy[legacy.find("[auth]").unwrap_or(0)..legacy.find("[kubernetes]").unwrap_or(0)],
        &format!("{rewrite}\n"),
    );
    assert!(load(&fixed).is_ok(), "{fixed}");
}

#[test]
fn issuers_that_would_blur_names_or_trust_are_refused() {
    assert!(
        refusal(
            r#"prefix = "" }
claimMappings.groups"#,
            "}\nclaimMappings.groups"
        )
        .contains("claimMappings.username.prefix is required")
    );
    assert!(refusal("https://issuer.example", "http://issuer.example").contains("https://"));
    assert!(refusal("tenant = { claim = \"tenant\" }", "tenant = {}").contains("exactly one"));
    assert!(
        refusal(
            "[kubernetes]",
            "[auth]\nleeway_seconds = 3600\n\n[kubernetes]"
        )
        .contains("at most 300")
    );
    assert!(
        refusal(
            "claimMappings.groups = { claim = \"groups\", prefix = \"\" }",
            "claimMappings.groups = { claim = \"groups\", expression = \"claims.groups\" }"
        )
        .contains("CEL expressions are not supported")
    );
    // A second issuer: its prefixes must not overlap the first's ("" overlaps everything).
    let second = |user: &str, group: &str| {
        format!(
            "[[auth.jwt]]\nissuer.url = \"https://team-b.example\"\nissuer.audiences = [\"kubegate\"]\n\
             claimMappings.username = {{ claim = \"sub\", prefix = \"{user}\" }}\n\
             claimMappings.groups = {{ claim = \"groups\", prefix = \"{group}\" }}\n\
             tenant = {{ value = \"team-b\" }}\n\n[kubernetes]"
        )
    };
    assert!(refusal("[kubernetes]", &second("b:", "b:")).contains("overlap"));
    let both = EXAMPLE
        .replace("prefix = \"\" }", "prefix = \"corp:\" }")
        .replace("[kubernetes]", &second("team-b:", "team-b:"));
    let loaded = load(&both).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.auth.map(|a| a.jwt.len()), Some(2));
    assert!(
        load(&both.replace("\"team-b:\" }\ntenant", "\"corp:x\" }\ntenant"))
            .err()
            .is_some_and(|e| e.to_string().contains("group prefixes")),
        "corp: is a prefix of corp:x"
    );
}

#[test]
fn unknown_fields_and_unusable_settings_are_refused() {
    let typo = EXAMPLE.replace("cluster_name", "clustr_name");
    let error = load(&typo).err().map(|e| format!("{:?}", e));
    assert!(error.is_some_and(|e| e.contains("clustr_name")));
    let no_audience = EXAMPLE.replace(r#"audiences = ["kubegate"]"#, "audiences = []");
    assert!(
        matches!(load(&no_audience), Err(ConfigError::Invalid(m)) if m.contains("[auth] resource is not set"))
    );
    let resource_default = no_audience.replace(
        "[[auth.jwt]]",
        "[auth]\nresource = \"https://kubegate.example.com/mcp\"\n\n[[auth.jwt]]",
    );
    let loaded = load(&resource_default).unwrap_or_else(|e| panic!("{e}"));
    let auth = loaded.auth.as_ref().unwrap_or_else(|| panic!("[auth]"));
    assert_eq!(
        auth.audiences(&auth.jwt[0]),
        ["https://kubegate.example.com/mcp"]
    );
    let no_issuer = EXAMPLE.replace("[[auth.jwt]]", "[auth]\n[[auth.other]]");
    assert!(matches!(load(&no_issuer), Err(ConfigError::Invalid(_))));
    let bad_level = EXAMPLE.replace(r#"level = "metadata""#, r#"level = "everything""#);
    assert!(matches!(load(&bad_level), Err(ConfigError::Parse { .. })));
    assert!(matches!(
        Config::load(Path::new("/nonexistent/kubegate.toml")),
        Err(ConfigError::Read { .. })
    ));
}

#[test]
fn allow_only_non_destructive_tools_is_true_or_false_and_nothing_else() {
    let mut config = load(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    assert!(!config.non_destructive());
    config
        .apply_env(Some("false"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!config.non_destructive());
    config
        .apply_env(Some(" TRUE "))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(config.non_destructive());
    assert!(config.policy_sources().non_destructive);
    for typo in ["on", "TRUE1", "1", "yes", ""] {
        let refused = config.apply_env(Some(typo));
        assert!(
            matches!(&refused, Err(ConfigError::Invalid(m)) if m.contains("ALLOW_ONLY_NON_DESTRUCTIVE_TOOLS") && m.contains("\"true\" or \"false\"")),
            "{typo:?}: {refused:?}"
        );
    }
}

#[test]
fn policy_links_and_a_shadow_set_are_read_with_paths_beside_the_file() {
    let text = EXAMPLE.replace(
        "[policy]\nfiles = [\"policies/tenant-isolation.cedar\"]\n",
        "[policy]\nfiles = [\"policies/\"]\nread_only = true\nwatch = false\n\n\
         [[policy.links]]\ntemplate = \"tenant-read\"\ntenants = [\"team-a\", \"team-b\"]\n\n\
         [policy.shadow]\nfiles = [\"trial/\"]\nwith_enforced = false\n",
    );
    let config = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let sources = config.policy_sources();
    assert_eq!(sources.paths, [Path::new("<dir>/policies/")]);
    assert!(sources.read_only && !config.policy.watch);
    assert_eq!(sources.links[0].tenants, ["team-a", "team-b"]);
    let shadow = sources.shadow.unwrap_or_default();
    assert!(!shadow.with_enforced);
    assert_eq!(shadow.paths, [Path::new("<dir>/trial/")]);
    // A misspelt key is refused, as everywhere in the file.
    let typo = EXAMPLE.replace("[policy]\n", "[policy]\nnon_destrutive = true\n");
    assert!(matches!(load(&typo), Err(ConfigError::Parse { .. })));
}

#[test]
fn the_seeds_sse_switch_and_port_keep_their_meaning() {
    let mut config = load(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    assert!(!config.mcp.sse);
    config
        .apply_seed_env(Some("1"), Some("3001"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(config.mcp.sse);
    assert_eq!(config.listen.port(), 3001);
    assert!(config.apply_seed_env(Some("yes please"), None).is_err());
    assert!(config.apply_seed_env(Some("true"), Some("http")).is_err());
    // A PORT set for something else does not move kubegate.
    let mut other = load(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    other
        .apply_seed_env(None, Some("9999"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(other.listen.port(), 9443);
}

#[test]
fn client_certificates_and_the_plain_listener_are_configured_safely() {
    let mtls = |lines: &str| {
        refusal(
            "key = \"/etc/kubegate/server-key.pem\"\n",
            &format!("key = \"/etc/kubegate/server-key.pem\"\nclient_ca = \"ca.pem\"\n{lines}"),
        )
    };
    assert!(mtls("").contains("client_username_prefix and client_group_prefix"));
    assert!(
        mtls("client_username_prefix = \"m:\"\nclient_group_prefix = \"m:\"\n")
            .contains("client_tenant")
    );
    // The example's issuer uses "" prefixes: every certificate name would overlap.
    assert!(
        mtls(
            "client_username_prefix = \"m:\"\nclient_group_prefix = \"m:\"\nclient_tenant = \"p\"\n"
        )
        .contains("overlaps the username prefix")
    );
    assert!(
        refusal("[kubernetes]", "[http]\nplain_listen = \"127.0.0.1:8080\"\ntrusted_proxies = [\"proxy.local\"]\n\n[kubernetes]")
            .contains("trusted_proxies")
    );
    let plain_only = EXAMPLE
        .replace(
            "[tls]\ncert = \"certs/server.pem\"\nkey = \"/etc/kubegate/server-key.pem\"\n",
            "",
        )
        .replace(
            "[kubernetes]",
            "[http]\nplain_listen = \"127.0.0.1:8080\"\n\n[kubernetes]",
        );
    assert!(
        load(&plain_only)
            .err()
            .is_some_and(|e| e.to_string().contains("allowed_hosts"))
    );
    assert!(
        refusal(
            "tenant = { claim = \"tenant\" }",
            "tenant = { claim = \"tenant\" }\nclaimMappings.extra = [{ key = \"authentication.kubernetes.io/node\", claim = \"n\" }]"
        )
        .contains("domain-prefixed")
    );
}

/// EXAMPLE with its one cluster's settings replaced by `clusters` (TOML tables).
fn with_clusters(clusters: &str) -> String {
    EXAMPLE.replace("cluster_name = \"local\"\n", "").replace(
        "kubeconfig = \"kubegate.kubeconfig\"\n",
        "tenant_label = \"team\"\n",
    ) + clusters
}

#[test]
fn one_cluster_is_named_by_cluster_name_and_reached_by_kubernetes() {
    let config = load(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    let clusters = config.clusters();
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].name, "local");
    assert!(
        clusters[0]
            .kubeconfig
            .as_ref()
            .is_some_and(|p| p.ends_with("kubegate.kubeconfig"))
    );
    assert_eq!(clusters[0].tenant_label, DEFAULT_TENANT_LABEL);
    let unnamed =
        load(&EXAMPLE.replace("cluster_name = \"local\"\n", "")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(unnamed.cluster_name(), DEFAULT_CLUSTER_NAME);
}

#[test]
fn several_clusters_come_default_first_with_their_own_settings() {
    let text = with_clusters(
        r#"
[[clusters]]
name = "dev"
kubeconfig = "dev.kubeconfig"

[[clusters]]
name = "staging"
in_cluster = true
"#,
    );
    // An unknown key in a cluster's table is refused, as anywhere else.
    let unknown = load(&text)
        .err()
        .map(|e| format!("{e:?}"))
        .unwrap_or_default();
    assert!(unknown.contains("in_cluster"), "{unknown}");
    let text = with_clusters(
        r#"
[[clusters]]
name = "dev"
kubeconfig = "dev.kubeconfig"

[[clusters]]
name = "staging"
context = "kubegate@staging"
tenant_label = "example.com/tenant"

[[clusters]]
name = "prod"
kubeconfig = "/etc/kubegate/prod.kubeconfig"
default = true
"#,
    );
    let config = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let clusters = config.clusters();
    let names: Vec<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["prod", "dev", "staging"],
        "the default first, then in order"
    );
    assert_eq!(config.cluster_name(), "prod");
    assert_eq!(
        clusters[0].kubeconfig.as_deref(),
        Some(Path::new("/etc/kubegate/prod.kubeconfig"))
    );
    assert!(
        clusters[1]
            .kubeconfig
            .as_ref()
            .is_some_and(|p| p.is_absolute() && p.ends_with("dev.kubeconfig"))
    );
    assert_eq!(clusters[2].kubeconfig, None);
    assert_eq!(clusters[2].context.as_deref(), Some("kubegate@staging"));
    // A cluster's own tenant label, else [kubernetes]'s.
    assert_eq!(clusters[2].tenant_label, "example.com/tenant");
    assert_eq!(clusters[0].tenant_label, "team");
}

#[test]
fn clusters_that_cannot_be_told_apart_or_named_in_cedar_are_refused() {
    let two = |a: &str, b: &str| with_clusters(&format!("[[clusters]]\n{a}\n[[clusters]]\n{b}\n"));
    let cases = [
        (
            two("name = \"dev\"", "name = \"dev\""),
            "cluster name `dev` is given twice",
        ),
        (
            two(
                "name = \"dev\"\ndefault = true",
                "name = \"prod\"\ndefault = true",
            ),
            "more than one of [[clusters]]",
        ),
        (two("name = \"dev/x\"", "name = \"prod\""), "is not usable"),
        (two("name = \"\"", "name = \"prod\""), "is not usable"),
        (
            EXAMPLE.to_owned() + "[[clusters]]\nname = \"dev\"\n",
            "cluster_name is set beside [[clusters]]",
        ),
        (
            EXAMPLE.replace("cluster_name = \"local\"\n", "") + "[[clusters]]\nname = \"dev\"\n",
            "[kubernetes] kubeconfig is set beside [[clusters]]",
        ),
        (
            EXAMPLE.replace("cluster_name = \"local\"", "cluster_name = \"\""),
            "cluster_name is empty",
        ),
    ];
    for (text, expected) in cases {
        match load(&text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(error) => assert!(error.to_string().contains(expected), "{error} / {expected}"),
        }
    }
}
