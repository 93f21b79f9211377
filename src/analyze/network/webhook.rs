//! Finds admission webhooks, mutating and validating, whose Service is missing or has no
//! running pods.

use std::collections::HashMap;

use k8s_openapi::api::admissionregistration::v1::ServiceReference;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::selector::has_labels;
use super::{pairs, selector_of};
use crate::analyze::json::list;
use crate::analyze::{Failure, Finding, Snapshot, Source, docs, ns_name};

/// Mutating webhooks whose Service is missing or has no running pods.
pub fn mutating_webhook(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    let receivers = Receivers::of(snapshot);
    for config in &snapshot.mutating_webhooks {
        let hooks = config.webhooks.iter().flatten();
        let hooks = hooks.map(|w| (w.name.as_str(), w.client_config.service.as_ref()));
        let kind = "MutatingWebhookConfiguration";
        out.extend(receivers.finding(kind, &config.metadata, hooks));
    }
}

/// Validating webhooks whose Service is missing or has no running pods.
pub fn validating_webhook(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    let receivers = Receivers::of(snapshot);
    for config in &snapshot.validating_webhooks {
        let hooks = config.webhooks.iter().flatten();
        let hooks = hooks.map(|w| (w.name.as_str(), w.client_config.service.as_ref()));
        let kind = "ValidatingWebhookConfiguration";
        out.extend(receivers.finding(kind, &config.metadata, hooks));
    }
}

/// The Services and pods webhooks call, by namespace and name.
struct Receivers<'s> {
    snapshot: &'s Snapshot,
    services: HashMap<(&'s str, &'s str), &'s Service>,
    pods: HashMap<&'s str, Vec<&'s Pod>>,
}

impl<'s> Receivers<'s> {
    fn of(snapshot: &'s Snapshot) -> Receivers<'s> {
        let mut pods: HashMap<&str, Vec<&Pod>> = HashMap::new();
        for pod in &snapshot.pods {
            pods.entry(ns_name(&pod.metadata).0).or_default().push(pod);
        }
        Receivers {
            snapshot,
            services: snapshot
                .services
                .iter()
                .map(|s| (ns_name(&s.metadata), s))
                .collect(),
            pods,
        }
    }

    /// A finding about a webhook configuration: its webhooks (name, Service called, if any).
    fn finding<'h>(
        &self,
        kind: &'static str,
        config: &ObjectMeta,
        hooks: impl Iterator<Item = (&'h str, Option<&'h ServiceReference>)>,
    ) -> Option<Finding> {
        let failures = hooks
            .filter_map(|(hook, service)| self.failure(hook, service?))
            .collect();
        Finding::cluster(kind, config.name.as_deref().unwrap_or_default(), failures)
    }

    /// What is wrong with the Service webhook `hook` calls: missing, no pods, pods not running.
    fn failure(&self, hook: &str, to: &ServiceReference) -> Option<Failure> {
        let (ns, name) = (to.namespace.as_str(), to.name.as_str());
        let text = match self.services.get(&(ns, name)) {
            // A namespace that was not read may hold it: the caller may not see it.
            None if !self.snapshot.has_in(Source::Services, ns) => return None,
            None => format!("Webhook {hook} calls Service {ns}/{name}, which does not exist"),
            Some(service) => {
                let selector = selector_of(service)?;
                if !self.snapshot.has_in(Source::Pods, ns) {
                    return None;
                }
                let selected: Vec<&Pod> = self
                    .pods
                    .get(ns)
                    .into_iter()
                    .flatten()
                    .filter(|p| has_labels(p.metadata.labels.as_ref(), selector))
                    .copied()
                    .collect();
                let inactive: Vec<String> = selected
                    .iter()
                    .filter_map(|p| {
                        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                        let pod = p.metadata.name.as_deref().unwrap_or_default();
                        (phase != Some("Running"))
                            .then(|| format!("{pod} ({})", phase.unwrap_or("no phase")))
                    })
                    .collect();
                if selected.is_empty() {
                    format!(
                        "Webhook {hook} calls Service {ns}/{name}, but no pod has its labels {}",
                        pairs(selector)
                    )
                } else if !inactive.is_empty() {
                    format!(
                        "Webhook {hook} calls Service {ns}/{name}, whose pods are not running: {}",
                        list(&inactive)
                    )
                } else {
                    return None;
                }
            }
        };
        Some(Failure::doc(text, docs::WEBHOOKS))
    }
}
