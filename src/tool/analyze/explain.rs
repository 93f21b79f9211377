//! Asks a language model to explain what `analyze` found: first through the caller's own MCP
//! client (`sampling/createMessage`, when the client offered sampling), so that the caller's
//! client decides (and shows its user) what is sent; otherwise through the OpenAI-compatible
//! chat completions endpoint the operator configured (`[analysis.model]`); otherwise not at all,
//! with a note saying so.
//!
//! With `anonymize`, the problem object's name, its namespace and its owner's name are replaced
//! by placeholders before the text leaves kubegate, and put back in the answer; other names a
//! message quotes (a missing Service, an image) go as they are.

use std::time::Duration;

use serde_json::{Value, json};

use super::custom::CustomClient;
use crate::analyze::Finding;
use crate::config::ModelConfig;
use crate::mcp::peer::Peer;

/// The most results explained in one call (one sampling request each).
pub const MAX_EXPLAINED: usize = 10;
/// How long the client has to answer one sampling request (its user may be asked first).
const SAMPLING_TIMEOUT: Duration = Duration::from_secs(120);
/// The most characters of an explanation kept.
const MAX_EXPLANATION: usize = 4000;

pub const NO_MODEL: &str = "no language model is available to explain the problems: your MCP \
                            client did not offer sampling, and kubegate has no model configured; \
                            the problems are listed as found";
/// How long the configured model has to answer one question.
const MODEL_TIMEOUT: Duration = Duration::from_secs(60);

/// The operator's model: where it is, which one, and the key it wants.
pub struct Model {
    endpoint: String,
    model: String,
    api_key: Option<ApiKey>,
}

/// An API key; its `Debug` shows nothing.
struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("endpoint", &self.endpoint)
            .field("model", &self.model)
            .field("api_key", &self.api_key)
            .finish()
    }
}

impl Model {
    /// The configured model, its key read from its file.
    pub fn from_config(config: &ModelConfig) -> Result<Model, String> {
        if !(config.endpoint.starts_with("https://") || config.endpoint.starts_with("http://")) {
            return Err(format!(
                "[analysis.model] endpoint {:?} must be an http(s) URL",
                config.endpoint
            ));
        }
        let api_key = match &config.api_key_file {
            Some(path) => {
                let key = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                Some(ApiKey(key.trim().to_owned()))
            }
            None => None,
        };
        Ok(Model {
            endpoint: config.endpoint.clone(),
            model: config.model.clone(),
            api_key,
        })
    }
}

const SYSTEM_PROMPT: &str = "You are a Kubernetes expert helping an engineer fix a cluster. \
                             Explain the problem in plain words and give the most likely fix as \
                             short numbered steps (kubectl commands where they help). Be brief.";

/// Who answers.
pub enum Explainer<'a> {
    /// The caller's own client, by sampling.
    Client(&'a Peer<'a>),
    /// The operator's model.
    Model(&'a Model, &'a CustomClient),
}

impl Explainer<'_> {
    /// The answer's `provider`.
    pub fn provider(&self) -> &'static str {
        match self {
            Explainer::Client(_) => "mcp-sampling",
            Explainer::Model(..) => "openai-compatible",
        }
    }

    async fn ask(&self, prompt: String) -> Result<String, String> {
        match self {
            Explainer::Client(peer) => {
                let params = json!({
                    "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                    "systemPrompt": SYSTEM_PROMPT,
                    "includeContext": "none",
                    "maxTokens": 600,
                    "modelPreferences": {"intelligencePriority": 0.7, "speedPriority": 0.5},
                });
                let result = peer
                    .sample(params, SAMPLING_TIMEOUT)
                    .await
                    .map_err(|e| e.to_string())?;
                // One content block, or (2025-11-25) a list of them: the text ones, joined.
                let content = result.get("content").cloned().unwrap_or(Value::Null);
                let blocks = match content {
                    Value::Array(blocks) => blocks,
                    block => vec![block],
                };
                let text: Vec<&str> = blocks
                    .iter()
                    .filter(|b| b["type"] == "text")
                    .filter_map(|b| b["text"].as_str())
                    .collect();
                Ok(text.join("\n"))
            }
            Explainer::Model(model, client) => {
                let body = json!({
                    "model": model.model,
                    "messages": [
                        {"role": "system", "content": SYSTEM_PROMPT},
                        {"role": "user", "content": prompt},
                    ],
                    "max_tokens": 600,
                });
                let key = model.api_key.as_ref().map(|k| k.0.as_str());
                let bytes = client
                    .post_json(&model.endpoint, body.to_string(), key, MODEL_TIMEOUT)
                    .await
                    .map_err(|e| format!("the model {e}"))?;
                let answer: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("the model's answer is not JSON: {e}"))?;
                answer
                    .pointer("/choices/0/message/content")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| "the model's answer has no choices[0].message.content".into())
            }
        }
    }
}

/// Explains each finding (up to [`MAX_EXPLAINED`]), in order; an empty string where no
/// explanation came. With it, a note for the answer if not every one was explained.
pub async fn explain(
    explainer: &Explainer<'_>,
    progress: Option<&Peer<'_>>,
    findings: &[Finding],
    anonymize: bool,
) -> (Vec<String>, Option<String>) {
    let mut explained = Vec::new();
    let mut failed = None;
    let total = findings.len().min(MAX_EXPLAINED);
    for (i, finding) in findings.iter().take(MAX_EXPLAINED).enumerate() {
        if let Some(peer) = progress {
            // After the analysis's own two steps; names stay out of progress messages.
            let what = format!("explaining problem {} of {total}", i + 1);
            peer.progress(2 + i as u64, Some(2 + total as u64), &what)
                .await;
        }
        let masks = if anonymize {
            Masks::of(finding)
        } else {
            Masks::default()
        };
        let prompt = masks.hide(&prompt(finding));
        match explainer.ask(prompt).await {
            Ok(text) => {
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
