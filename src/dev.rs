//! Makes what a local demo or test run needs: a dev CA, certificates it signs, a dev JWT issuer key,
//! and dev tokens signed with it. Never for production: production brings its own PKI and issuer.

use std::path::{Path, PathBuf};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use serde_json::{Value, json};

/// Why a dev credential could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("cannot generate a certificate or key")]
    Generate(#[from] rcgen::Error),
    #[error("cannot generate the audit signing key: {0}")]
    AuditKey(String),
    #[error("cannot sign the token with the dev issuer key")]
    Sign(#[source] jsonwebtoken::errors::Error),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the dev issuer key {path}")]
    ReadKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The dev issuer as one `[[auth.jwt]]` table's keys (without its header): its static key file,
/// names unprefixed as the shipped policies write them, the tenant from the `tenant` claim.
pub fn dev_issuer_toml(public_key_file: &str) -> String {
    format!(
        "issuer.url = {DEV_ISSUER:?}\n\
         issuer.audiences = [{DEV_AUDIENCE:?}]\n\
         issuer.keys = [{{ file = {public_key_file:?}, algorithm = \"ES256\" }}]\n\
         claimMappings.username = {{ claim = \"sub\", prefix = \"\" }}\n\
         claimMappings.groups = {{ claim = \"groups\", prefix = \"\" }}\n\
         tenant = {{ claim = \"tenant\" }}\n"
    )
}

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct CertifiedKey {
    pub cert_pem: String,
    pub key_pem: String,
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Server,
    Client,
}

/// A local certificate authority, valid for a year from today.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    cert: CertifiedKey,
}

impl DevCa {
    /// Generates a new CA with an ECDSA P-256 key.
    pub fn generate(common_name: &str) -> Result<DevCa, DevError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = distinguished_name(common_name, None);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params);
        let cert_pem = params.self_signed(&key)?.pem();
        let key_pem = key.serialize_pem();
        Ok(DevCa {
            issuer: Issuer::new(params, key),
            cert: CertifiedKey { cert_pem, key_pem },
        })
    }

    /// The CA certificate, PEM: what clients trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert.cert_pem
    }

    /// The CA certificate and key, PEM.
    pub fn certified_key(&self) -> &CertifiedKey {
        &self.cert
    }

    /// Issues a certificate for `common_name` with the given subject alternative names (DNS names or
    /// IP addresses) and Kubernetes-style organisations (groups, for client certificates).
    pub fn issue(
        &self,
        common_name: &str,
        alt_names: &[&str],
        organisation: Option<&str>,
        usage: Usage,
    ) -> Result<CertifiedKey, DevError> {
        let key = KeyPair::generate()?;
        let names: Vec<String> = alt_names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(names)?;
        params.distinguished_name = distinguished_name(common_name, organisation);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(CertifiedKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn distinguished_name(common_name: &str, organisation: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(org) = organisation {
        dn.push(DnType::OrganizationName, org);
    }
    dn
}

/// Valid from yesterday (clock skew) to a year from today.
fn set_validity(params: &mut CertificateParams) {
    let today = jiff::Zoned::now().date();
    let from = today.yesterday().unwrap_or(today);
    let until = today
        .checked_add(jiff::Span::new().years(1))
        .unwrap_or(today);
    let to_rcgen = |d: jiff::civil::Date| {
        rcgen::date_time_ymd(i32::from(d.year()), d.month() as u8, d.day() as u8)
    };
    params.not_before = to_rcgen(from);
    params.not_after = to_rcgen(until);
}

/// A dev JWT issuer's ECDSA P-256 key pair (ES256): PKCS#8 private key and SPKI public key, PEM.
pub struct IssuerKey {
    pub private_pem: String,
    pub public_pem: String,
}

impl IssuerKey {
    pub fn generate() -> Result<IssuerKey, DevError> {
        let key = KeyPair::generate()?;
        Ok(IssuerKey {
            private_pem: key.serialize_pem(),
            public_pem: key.public_key_pem(),
        })
    }
}

/// What a dev token says about its bearer.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub issuer: String,
    pub audience: String,
    pub subject: String,
    pub groups: Vec<String>,
    pub tenant: Option<String>,
    pub email: Option<String>,
    pub lifetime: std::time::Duration,
}

/// The issuer and audience that `kubegate dev-certs` and the demo configuration use.
pub const DEV_ISSUER: &str = "https://kubegate.dev.local";
pub const DEV_AUDIENCE: &str = "kubegate";

/// Signs a dev token (ES256) with a PKCS#8 EC private key.
pub fn mint_token(private_key_pem: &[u8], request: &TokenRequest) -> Result<String, DevError> {
    let key = EncodingKey::from_ec_pem(private_key_pem).map_err(DevError::Sign)?;
    let now = jiff::Timestamp::now().as_second();
    let mut claims = json!({
        "iss": request.issuer,
        "aud": request.audience,
        "sub": request.subject,
        "groups": request.groups,
        "iat": now,
        "nbf": now,
        "exp": now.saturating_add(i64::try_from(request.lifetime.as_secs()).unwrap_or(i64::MAX)),
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    if let Some(tenant) = &request.tenant {
        claims["tenant"] = Value::from(tenant.as_str());
    }
    if let Some(email) = &request.email {
        claims["email"] = Value::from(email.as_str());
    }
    jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &key).map_err(DevError::Sign)
}

/// Reads a dev issuer private key file and signs a token with it.
pub fn mint_token_from_file(key_file: &Path, request: &TokenRequest) -> Result<String, DevError> {
    let pem = std::fs::read(key_file).map_err(|source| DevError::ReadKey {
        path: key_file.to_owned(),
        source,
    })?;
    mint_token(&pem, request)
}

/// The files `write_dev_pki` leaves in its folder.
pub struct DevPkiFiles {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub issuer_key: PathBuf,
    pub issuer_public_key: PathBuf,
    /// The Ed25519 key that signs the audit log's checkpoints, and its public half for
    /// `kubegate audit verify --key`.
    pub audit_key: PathBuf,
    pub audit_public_key: PathBuf,
}

impl DevPkiFiles {
    pub fn in_dir(dir: &Path) -> DevPkiFiles {
        DevPkiFiles {
            ca_cert: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            issuer_key: dir.join("dev-issuer-key.pem"),
            issuer_public_key: dir.join("dev-issuer.pub.pem"),
            audit_key: dir.join("audit-signing-key.pem"),
            audit_public_key: dir.join("audit-signing.pub.pem"),
        }
    }

    fn all_exist(&self) -> bool {
        [
            &self.ca_cert,
            &self.server_cert,
            &self.server_key,
            &self.issuer_key,
            &self.issuer_public_key,
            &self.audit_key,
            &self.audit_public_key,
        ]
        .iter()
        .all(|p| p.exists())
    }
}

/// Makes a dev CA, a server certificate for `hosts` and a dev issuer key in `dir`, unless all are
/// already there (then it keeps them, so tokens minted earlier stay valid). The CA's own key is
/// not kept: nothing else is ever signed with it.
pub fn write_dev_pki(dir: &Path, hosts: &[&str], force: bool) -> Result<DevPkiFiles, DevError> {
    let files = DevPkiFiles::in_dir(dir);
    if files.all_exist() && !force {
        return Ok(files);
    }
    std::fs::create_dir_all(dir).map_err(|source| DevError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let ca = DevCa::generate("kubegate dev CA")?;
    let server = ca.issue("kubegate", hosts, None, Usage::Server)?;
    let issuer = IssuerKey::generate()?;
    write_file(&files.ca_cert, ca.cert_pem(), false)?;
    write_file(&files.server_cert, &server.cert_pem, false)?;
    write_file(&files.server_key, &server.key_pem, true)?;
    write_file(&files.issuer_key, &issuer.private_pem, true)?;
    write_file(&files.issuer_public_key, &issuer.public_pem, false)?;
    let (audit_key, audit_public) = crate::audit::chain::generate().map_err(DevError::AuditKey)?;
    write_file(&files.audit_key, &audit_key, true)?;
    write_file(&files.audit_public_key, &audit_public, false)?;
    Ok(files)
}

/// Writes a file; private ones are readable by their owner only.
pub fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), DevError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(if private { 0o600 } else { 0o644 })
            .open(path)?;
        if private {
            // `mode` applies only to a file it creates: an existing key file keeps its old mode
            // unless narrowed here, before the key is written into it.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(contents.as_bytes())
    };
    write().map_err(|source| DevError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_private_file_is_owner_only_even_when_it_existed_readable() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("key.pem");
        std::fs::write(&path, "old").unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("{e}"));
        write_file(&path, "secret", true).unwrap_or_else(|e| panic!("{e}"));
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_default();
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap_or_default(), "secret");
    }
}
