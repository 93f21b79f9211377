//! The audit log's hash chain and signed checkpoints, as both the writer and `kubegate audit
//! verify` see them.
//!
//! Every line ends with two fields the writer adds: `seq`, one more than the line before, and
//! `prevHash`, the SHA-256 of the line before (its bytes, without the newline). The first line
//! of a chain has `seq` 0 and a `prevHash` of zeros. Among the lines are checkpoints
//! (`"kind":"Checkpoint"`), each signed with Ed25519 over its own `seq`, `prevHash`, reason and
//! time (and everything else it says): a checkpoint vouches for every line before it, so a
//! rewritten chain cannot carry a valid one without the key. A checkpoint says, signed, within
//! how many seconds the next one follows, which is how a cut tail is told from a live one; a
//! cut made exactly at a closing checkpoint (a clean stop) cannot be told from the end of the
//! log without an anchor kept elsewhere (a copy of the last checkpoint's hash).

use std::path::Path;

use base64::Engine as _;
use ring::signature::{self, Ed25519KeyPair, KeyPair as _};
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prevHash` of a chain's first line.
pub const GENESIS: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// The `prevHash` of the line after `line` (given without its newline).
pub fn hash_of(line: &[u8]) -> String {
    let digest = Sha256::digest(line);
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256:");
    for byte in digest {
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    text
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends to `out` the JSON object `object` (serialized, ending in `}`) with the chain fields
/// added as its last members, and a newline. Returns the hash of the line, for the next one.
pub fn seal_into(out: &mut Vec<u8>, object: &[u8], seq: u64, prev_hash: &str) -> String {
    let start = out.len();
    match object.strip_suffix(b"}") {
        Some(open) => {
            out.extend_from_slice(open);
            if open.len() > 1 {
                out.push(b',');
            }
        }
        // Not an object (never made by kubegate): keep it whole under a field of its own.
        None => {
            out.extend_from_slice(b"{\"unexpected\":");
            out.extend_from_slice(object);
            out.push(b',');
        }
    }
    out.extend_from_slice(b"\"seq\":");
    out.extend_from_slice(seq.to_string().as_bytes());
    out.extend_from_slice(b",\"prevHash\":\"");
    out.extend_from_slice(prev_hash.as_bytes());
    out.extend_from_slice(b"\"}");
    let hash = hash_of(&out[start..]);
    out.push(b'\n');
    hash
}

/// The chain fields every line carries.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    #[serde(default)]
    pub kind: Option<String>,
    pub seq: u64,
    pub prev_hash: String,
}

/// Why a checkpoint was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// The first line of a new chain.
    Started,
    /// kubegate opened a log it had written before; the chain goes on.
    Resumed,
    /// The first line of a file after rotation or a reopen; the chain goes on from the file before.
    Continued,
    /// Every so many records or seconds.
    Periodic,
    /// The last line of a file kubegate rotated away (by size).
    Rotated,
    /// The last line of a file before a reopen (SIGHUP, for logrotate).
    Reopening,
    /// The last line before kubegate stopped.
    Shutdown,
}

impl Reason {
    /// Whether a file ends here: nothing more is written to it.
    pub fn closes_file(self) -> bool {
        matches!(self, Reason::Rotated | Reason::Reopening | Reason::Shutdown)
    }
}

/// A checkpoint line, without its chain fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub kind: String,
    pub api_version: String,
    pub reason: Reason,
    pub stage_timestamp: jiff::Timestamp,
    /// The next checkpoint follows within this many seconds, unless the file is closed.
    pub seals_within_seconds: u64,
    /// When resumed: whether the log's last line was a closing checkpoint (if not, kubegate
    /// stopped without closing it: killed, or the machine went down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_closed: Option<bool>,
    #[serde(rename = "keyID", default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// What a checkpoint's signature covers: its place in the chain and everything it says (why,
/// when, when the next is due, whether the log before was closed, the key).
pub fn signed_message(seq: u64, prev_hash: &str, checkpoint: &Checkpoint) -> Vec<u8> {
    let reason = serde_json::to_value(checkpoint.reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let closed = match checkpoint.previous_closed {
        None => "-",
        Some(true) => "closed",
        Some(false) => "open",
    };
    format!(
        "kubegate-audit-checkpoint/v2\n{seq}\n{prev_hash}\n{reason}\n{}\n{}\n{closed}\n{}",
        checkpoint.stage_timestamp,
        checkpoint.seals_within_seconds,
        checkpoint.key_id.as_deref().unwrap_or("-"),
    )
    .into_bytes()
}

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the key file {0}")]
    Read(String, #[source] std::io::Error),
    #[error("{0} holds no PEM {1} block")]
    Pem(String, &'static str),
    #[error("{0} is not an Ed25519 key ({1})")]
    NotEd25519(String, String),
}

/// The key checkpoints are signed with.
pub struct Signer {
    pair: Ed25519KeyPair,
    id: String,
}

impl Signer {
    /// Reads a PKCS#8 PEM Ed25519 private key (`kubegate audit keygen`, or
    /// `openssl genpkey -algorithm ed25519`).
    pub fn from_file(path: &Path) -> Result<Signer, KeyError> {
        let name = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| KeyError::Read(name.clone(), e))?;
        let der = rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(&pem)
            .map_err(|_| KeyError::Pem(name.clone(), "PRIVATE KEY"))?;
        Signer::from_pkcs8(der.secret_pkcs8_der()).map_err(|e| KeyError::NotEd25519(name, e))
    }

    /// From PKCS#8 DER (version 1, as OpenSSL writes, or 2, as ring does).
    pub fn from_pkcs8(der: &[u8]) -> Result<Signer, String> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| e.to_string())?;
        let id = key_id(pair.public_key().as_ref());
        Ok(Signer { pair, id })
    }

    /// A short name of the public key, written into each checkpoint.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The public key, as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), for `verify --key`.
    pub fn public_pem(&self) -> String {
        public_pem(self.pair.public_key().as_ref())
    }

    /// Signs a checkpoint's message; base64.
    pub fn sign(&self, message: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.pair.sign(message))
    }
}

/// Makes a new Ed25519 key: its PKCS#8 PEM and its public PEM.
pub fn generate() -> Result<(String, String), String> {
    let rng = ring::rand::SystemRandom::new();
    let der = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| e.to_string())?;
    let signer = Signer::from_pkcs8(der.as_ref())?;
    Ok((pem("PRIVATE KEY", der.as_ref()), signer.public_pem()))
}

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn public_pem(key: &[u8]) -> String {
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(key);
    pem("PUBLIC KEY", &der)
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(chunk));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

fn key_id(public: &[u8]) -> String {
    hash_of(public)["sha256:".len()..][..16].to_owned()
}

/// The key checkpoints are checked with.
pub struct Verifier {
    key: Vec<u8>,
    id: String,
}

impl Verifier {
    /// Reads a PEM `PUBLIC KEY` (as `kubegate audit keygen` writes it, or
    /// `openssl pkey -pubout`).
    pub fn from_file(path: &Path) -> Result<Verifier, KeyError> {
        let name = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| KeyError::Read(name.clone(), e))?;
        let der = rustls::pki_types::SubjectPublicKeyInfoDer::from_pem_slice(&pem)
            .map_err(|_| KeyError::Pem(name.clone(), "PUBLIC KEY"))?;
        let key = der
            .strip_prefix(&SPKI_PREFIX[..])
            .filter(|key| key.len() == 32)
            .ok_or_else(|| KeyError::NotEd25519(name, "not an Ed25519 public key".into()))?;
        Ok(Verifier {
            id: key_id(key),
            key: key.to_vec(),
        })
    }

    /// The key's short name, as checkpoints carry it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether `signature` (base64) signs `message` with this key.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(signature) else {
            return false;
        };
        signature::UnparsedPublicKey::new(&signature::ED25519, &self.key)
            .verify(message, &bytes)
            .is_ok()
    }
}
