//! Callers known by a client certificate (mTLS): rustls has verified it against `[tls]
//! client_ca`; its subject's CN becomes the username and each O a group, as the API server's
//! own x509 authenticator maps them, with the configured prefixes and under the same name rules
//! as tokens (printable, not empty, not reserved, not on the deny-list).

use std::sync::Arc;

use x509_parser::prelude::{FromDer, X509Certificate};

use super::issuer::kubernetes_name;
use super::{AuthError, Caller};
use crate::config::TlsConfig;

/// How certificate subjects become callers.
#[derive(Debug, Clone)]
pub struct CertificateNames {
    username_prefix: String,
    group_prefix: String,
    tenant: String,
    never: Vec<String>,
}

impl CertificateNames {
    /// From `[tls]`; none unless client certificates are asked for.
    pub fn from_config(tls: Option<&TlsConfig>, never: &[String]) -> Option<CertificateNames> {
        let tls = tls?;
        tls.client_ca.as_ref()?;
        Some(CertificateNames {
            username_prefix: tls.client_username_prefix.clone().unwrap_or_default(),
            group_prefix: tls.client_group_prefix.clone().unwrap_or_default(),
            tenant: tls.client_tenant.clone(),
            never: never.to_vec(),
        })
    }

    /// The caller a verified leaf certificate (DER) names.
    pub fn caller(&self, der: &[u8]) -> Result<Arc<Caller>, AuthError> {
        let unreadable = AuthError::Certificate("its subject cannot be read");
        let (_, cert) = X509Certificate::from_der(der).map_err(|_| unreadable)?;
        let subject = cert.subject();
        let mut names = subject.iter_common_name();
        let cn = match (names.next(), names.next()) {
            (Some(cn), None) => cn
                .as_str()
                .map_err(|_| AuthError::Certificate("its CN is not text"))?,
            (None, _) => return Err(AuthError::Certificate("its subject has no CN")),
            (Some(_), Some(_)) => return Err(AuthError::Certificate("its subject has two CNs")),
        };
        let username = kubernetes_name(&self.username_prefix, cn, "CN", &self.never)?;
        let groups = subject
            .iter_organization()
            .map(|o| {
                let o = o
                    .as_str()
                    .map_err(|_| AuthError::Certificate("an O is not text"))?;
                kubernetes_name(&self.group_prefix, o, "O", &self.never)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Arc::new(Caller {
            username,
            groups,
            tenant: self.tenant.clone(),
            issuer: Some(format!("x509:{}", cert.issuer())),
            ..Caller::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::{DevCa, Usage};
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    fn names() -> CertificateNames {
        CertificateNames {
            username_prefix: "mtls:".into(),
            group_prefix: "mtls:".into(),
            tenant: "platform".into(),
            never: vec!["kubeadm:*".into()],
        }
    }

    fn der(cn: &str, o: Option<&str>) -> Vec<u8> {
        let ca = DevCa::generate("test CA").unwrap_or_else(|e| panic!("{e}"));
        let cert = ca
            .issue(cn, &[], o, Usage::Client)
            .unwrap_or_else(|e| panic!("{e}"));
        CertificateDer::from_pem_slice(cert.cert_pem.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"))
            .to_vec()
    }

    #[test]
    fn cn_and_o_become_prefixed_names() {
        let caller = names()
            .caller(&der("ci-deployer", Some("release-bots")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(caller.username, "mtls:ci-deployer");
        assert_eq!(caller.groups, ["mtls:release-bots"]);
        assert_eq!(caller.tenant, "platform");
        assert!(
            caller
                .issuer
                .as_deref()
                .is_some_and(|i| i.contains("test CA"))
        );
    }

    #[test]
    fn unusable_subjects_are_refused() {
        let refused = |cn: &str| names().caller(&der(cn, None)).err().map(|e| e.to_string());
        assert!(refused("bad\u{7f}name").is_some_and(|e| e.contains("cannot pass")));
        assert!(names().caller(b"not a certificate").is_err());
        let open = CertificateNames {
            username_prefix: String::new(),
            ..names()
        };
        assert!(
            open.caller(&der("system:admin", None))
                .err()
                .is_some_and(|e| e.to_string().contains("never impersonates"))
        );
    }
}
