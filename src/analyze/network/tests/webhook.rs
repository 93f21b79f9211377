//! The admission webhook analyzers: the Service each webhook calls, and its pods.

use super::*;

/// A webhook configuration whose one webhook calls Service `ns`/`service`.
fn config(name: &str, webhook: &str, ns: &str, service: &str) -> Value {
    json!({
        "metadata": { "name": name },
        "webhooks": [{
            "name": webhook,
            "clientConfig": { "service": { "namespace": ns, "name": service, "port": 443 } },
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
        }],
    })
}

fn policy_webhook() -> Value {
    config(
        "policy",
        "mutate.policy.example.com",
        "policy",
        "policy-webhook",
    )
}

fn receiver() -> Value {
    service(
        "policy",
        "policy-webhook",
        json!({ "app": "policy" }),
        &[443],
    )
}

#[test]
fn a_missing_service_is_named_with_its_webhook() {
    let snapshot = snapshot(&[
        (Source::MutatingWebhooks, vec![policy_webhook()]),
        (
            Source::Services,
            vec![service("other", "policy-webhook", Value::Null, &[443])],
        ),
    ]);
    let finding = only(
        network::mutating_webhook,
        &snapshot,
        "MutatingWebhookConfiguration",
        "policy",
    );
    assert_says(
        &finding,
        &[
            "mutate.policy.example.com",
            "Service policy/policy-webhook, which does not exist",
        ],
    );
    assert_eq!(finding.failures[0].doc, docs::WEBHOOKS);
}

#[test]
fn a_service_namespace_not_read_says_nothing() {
    let mut snapshot = snapshot(&[(Source::MutatingWebhooks, vec![policy_webhook()])]);
    assert_silent(network::mutating_webhook, &snapshot);
    read_only_in(&mut snapshot, Source::Services, "default");
    assert_silent(network::mutating_webhook, &snapshot);
}

#[test]
fn a_service_without_pods_is_reported() {
    let snapshot = snapshot(&[
        (Source::MutatingWebhooks, vec![policy_webhook()]),
        (Source::Services, vec![receiver()]),
        (
            Source::Pods,
            vec![pod("policy", "other", json!({ "app": "other" }), "Running")],
        ),
    ]);
    let finding = only(
        network::mutating_webhook,
        &snapshot,
        "MutatingWebhookConfiguration",
        "policy",
    );
    assert_says(
        &finding,
        &[
            "mutate.policy.example.com",
            "no pod has its labels app=policy",
        ],
    );
}

#[test]
fn pods_not_running_are_named_with_their_phase() {
    let snapshot = snapshot(&[
        (
            Source::ValidatingWebhooks,
            vec![config(
                "guard",
                "validate.guard.io",
                "policy",
                "policy-webhook",
            )],
        ),
        (Source::Services, vec![receiver()]),
        (
            Source::Pods,
            vec![
                pod("policy", "policy-1", json!({ "app": "policy" }), "Running"),
                pod("policy", "policy-2", json!({ "app": "policy" }), "Pending"),
            ],
        ),
    ]);
    let finding = only(
        network::validating_webhook,
        &snapshot,
        "ValidatingWebhookConfiguration",
        "guard",
    );
    assert_says(
        &finding,
        &["validate.guard.io", "not running: policy-2 (Pending)"],
    );
    assert_eq!(finding.failures.len(), 1, "{:#?}", finding.failures);
}

#[test]
fn pods_not_read_say_nothing_about_pods() {
    let snapshot = snapshot(&[
        (
            Source::ValidatingWebhooks,
            vec![config(
                "guard",
                "validate.guard.io",
                "policy",
                "policy-webhook",
            )],
        ),
        (Source::Services, vec![receiver()]),
    ]);
    assert_silent(network::validating_webhook, &snapshot);
}

#[test]
fn webhooks_with_running_pods_or_a_url_say_nothing() {
    let by_url = json!({
        "metadata": { "name": "external" },
        "webhooks": [{
            "name": "hook.example.com",
            "clientConfig": { "url": "https://hooks.example.com/mutate" },
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
        }],
    });
    let snapshot = snapshot(&[
        (Source::MutatingWebhooks, vec![policy_webhook(), by_url]),
        (Source::Services, vec![receiver()]),
        (
            Source::Pods,
            vec![pod(
                "policy",
                "policy-1",
                json!({ "app": "policy" }),
                "Running",
            )],
        ),
    ]);
    assert_silent(network::mutating_webhook, &snapshot);
}
