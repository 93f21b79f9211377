//! Asks a language model to explain what `analyze` found, through the caller's own MCP client
//! (`sampling/createMessage`, when the client offered sampling): kubegate holds no model and no
//! model credentials, and the caller's client decides (and shows its user) what is sent.
//!
//! With `anonymize`, object and namespace names are replaced by placeholders before the text
//! leaves kubegate, and put back in the answer.

use std::time::Duration;

use serde_json::{Value, json};

use crate::analyze::Finding;
use crate::mcp::peer::Peer;

/// The most results explained in one call (one sampling request each).
pub const MAX_EXPLAINED: usize = 10;
/// How long the client has to answer one sampling request (its user may be asked first).
const SAMPLING_TIMEOUT: Duration = Duration::from_secs(120);
/// The most characters of an explanation kept.
const MAX_EXPLANATION: usize = 4000;

pub const NO_MODEL: &str = "no language model is available to explain the problems: your MCP \
                            client did not offer sampling, and kubegate has no model of its own; \
                            the problems are listed as found";

const SYSTEM_PROMPT: &str = "You are a Kubernetes expert helping an engineer fix a cluster. \
                             Explain the problem in plain words and give the most likely fix as \
                             short numbered steps (kubectl commands where they help). Be brief.";

/// Explains each finding (up to [`MAX_EXPLAINED`]), in order; an empty string where the client
/// gave no explanation. With it, a note for the answer if not every one was explained.
pub async fn by_sampling(
    peer: &Peer<'_>,
    findings: &[Finding],
    anonymize: bool,
) -> (Vec<String>, Option<String>) {
    let mut explained = Vec::new();
    let mut failed = None;
    let total = findings.len().min(MAX_EXPLAINED);
    for (i, finding) in findings.iter().take(MAX_EXPLAINED).enumerate() {
        peer.progress(
            i as u64,
            Some(total as u64),
            &format!("explaining {} {}", finding.kind, finding.name),
        )
        .await;
        let masks = if anonymize {
            Masks::of(finding)
        } else {
            Masks::default()
        };
        let prompt = masks.hide(&prompt(finding));
        let params = json!({
            "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
            "systemPrompt": SYSTEM_PROMPT,
            "includeContext": "none",
            "maxTokens": 600,
            "modelPreferences": {"intelligencePriority": 0.7, "speedPriority": 0.5},
        });
        match peer.sample(params, SAMPLING_TIMEOUT).await {
            Ok(result) => {
                let text = result
                    .pointer("/content/text")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let text: String = text.chars().take(MAX_EXPLANATION).collect();
                explained.push(masks.restore(&text));
            }
            Err(error) => {
                failed = Some(format!("the explanation was cut short: {error}"));
                break;
            }
        }
    }
    let note = match failed {
        Some(note) => Some(note),
        None if findings.len() > MAX_EXPLAINED => Some(format!(
            "only the first {MAX_EXPLAINED} problems were explained"
        )),
        None => None,
    };
    (explained, note)
}

/// What the model is asked about one finding.
fn prompt(finding: &Finding) -> String {
    let mut text = format!("Kubernetes {} {}", finding.kind, finding.name);
    if !finding.parent_object.is_empty() {
        text.push_str(&format!(" (owned by {})", finding.parent_object));
    }
    text.push_str(" has these problems:\n");
    for failure in &finding.failures {
        text.push_str(&format!("- {}\n", failure.text));
    }
    text
}

/// Placeholders for the names in one finding.
#[derive(Debug, Default)]
struct Masks {
    /// (real, placeholder), longest real name first so that a name inside another is not cut.
    pairs: Vec<(String, String)>,
}

impl Masks {
    fn of(finding: &Finding) -> Masks {
        let mut names: Vec<(String, &str)> = Vec::new();
        match finding.name.split_once('/') {
            Some((namespace, name)) => {
                names.push((namespace.to_owned(), "namespace"));
                names.push((name.to_owned(), "object"));
            }
            None => names.push((finding.name.clone(), "object")),
        }
        if let Some((_, parent)) = finding.parent_object.split_once('/') {
            names.push((parent.to_owned(), "owner"));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (i, (real, what)) in names.into_iter().enumerate() {
            if real.len() >= 2 && !pairs.iter().any(|(r, _)| *r == real) {
                pairs.push((real, format!("{what}-{}", i + 1)));
            }
        }
        pairs.sort_by_key(|(real, _)| std::cmp::Reverse(real.len()));
        Masks { pairs }
    }

    fn hide(&self, text: &str) -> String {
        self.pairs.iter().fold(text.to_owned(), |t, (real, mask)| {
            t.replace(real.as_str(), mask)
        })
    }

    fn restore(&self, text: &str) -> String {
        self.pairs.iter().fold(text.to_owned(), |t, (real, mask)| {
            t.replace(mask.as_str(), real)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Failure;

    #[test]
    fn anonymized_prompts_name_no_object_and_answers_get_the_names_back() {
        let finding = Finding {
            kind: "Pod",
            name: "team-a/web-7d4b9c6f5-x2k4p".into(),
            failures: vec![Failure::new(
                "container \"app\" of pod web-7d4b9c6f5-x2k4p in team-a is in CrashLoopBackOff",
            )],
            parent_object: "Deployment/web".into(),
        };
        let masks = Masks::of(&finding);
        let hidden = masks.hide(&prompt(&finding));
        for real in ["team-a", "web-7d4b9c6f5-x2k4p"] {
            assert!(!hidden.contains(real), "{real} leaked: {hidden}");
        }
        assert!(
            hidden.contains("CrashLoopBackOff") && hidden.contains("Deployment/owner-3"),
            "{hidden}"
        );
        let answer = "Restart object-2 in namespace-1 after fixing owner-3's image.";
        assert_eq!(
            masks.restore(answer),
            "Restart web-7d4b9c6f5-x2k4p in team-a after fixing web's image."
        );
    }
}
