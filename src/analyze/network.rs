//! Finds Services, Ingresses and NetworkPolicies that are broken; the Gateway API's analyzers
//! (GatewayClass, Gateway, HTTPRoute) are in `gateway_api`, the admission webhooks' in `webhook`.
//!
//! Each reports what k8sgpt's analyzer of the same name reports. A check about another kind (the
//! Service an Ingress routes to) concludes "does not exist" only where that kind was read: an
//! object the caller may not see is not a missing one.

mod gateway_api;
mod selector;
mod webhook;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::networking::v1::IngressSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub use gateway_api::{gateway, gateway_class, http_route};
use selector::{describe, selects, selects_all};
pub use webhook::{mutating_webhook, validating_webhook};

use super::json::{list, or, warnings};
use super::{Failure, Finding, Snapshot, Source, docs, ns_name};

/// An object's labels, or a Service's selector.
type Labels = BTreeMap<String, String>;

/// Services with a selector but no endpoints, with endpoints not ready, or with warning events.
pub fn service(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    let endpoints: HashMap<(&str, &str), &Endpoints> = snapshot
        .endpoints
        .iter()
        .map(|e| (ns_name(&e.metadata), e))
        .collect();
    for service in &snapshot.services {
        let (ns, name) = ns_name(&service.metadata);
        let mut failures = Vec::new();
        // Without a selector (ExternalName, endpoints kept by hand) nothing fills the endpoints.
        if let Some(selector) = selector_of(service) {
            match endpoints.get(&(ns, name)) {
                Some(endpoints) => failures.extend(endpoint_failure(name, selector, endpoints)),
                None if snapshot.has_in(Source::Endpoints, ns) => {
                    failures.push(no_endpoints(name, selector));
                }
                None => {}
            }
        }
        failures.extend(warnings(snapshot, ns, "Service", name));
        let parent = snapshot.parent_of(ns, &service.metadata);
        out.extend(Finding::namespaced("Service", ns, name, failures, parent));
    }
}

fn endpoint_failure(name: &str, selector: &Labels, endpoints: &Endpoints) -> Option<Failure> {
    let subsets = endpoints.subsets.as_deref().unwrap_or_default();
    let some_ready = subsets
        .iter()
        .any(|s| s.addresses.as_ref().is_some_and(|a| !a.is_empty()));
    let not_ready: Vec<String> = subsets
        .iter()
        .flat_map(|s| s.not_ready_addresses.iter().flatten())
        .map(|address| match &address.target_ref {
            Some(r) => format!(
                "{}/{}",
                or(r.kind.as_deref().unwrap_or_default(), "Pod"),
                r.name.as_deref().unwrap_or_default()
            ),
            None => address.ip.clone(),
        })
        .collect();
    if not_ready.is_empty() {
        return (!some_ready).then(|| no_endpoints(name, selector));
    }
    let state = if some_ready {
        "endpoints that are not ready"
    } else {
        "no ready endpoints; not ready"
    };
    let text = format!("Service {name} has {state}: {}", list(&not_ready));
    Some(Failure::doc(text, docs::SERVICES))
}

fn no_endpoints(name: &str, selector: &Labels) -> Failure {
    Failure::doc(
        format!(
            "Service {name} has no endpoints; expected pods with labels {}",
            pairs(selector)
        ),
        docs::SERVICES,
    )
}

/// The selector of a Service that selects pods: set, not empty, and not of an ExternalName one.
fn selector_of(service: &Service) -> Option<&Labels> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().filter(|s| !s.is_empty())
}

/// Ingresses without a class or with an unknown one, and the backend Services and TLS Secrets they
/// name that do not exist.
pub fn ingress(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    let services = names(snapshot.services.iter().map(|s| &s.metadata));
    let secrets = names(snapshot.secrets.iter().map(|s| &s.metadata));
    let classes: HashSet<&str> = snapshot
        .ingress_classes
        .iter()
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    for ingress in &snapshot.ingresses {
        let (ns, name) = ns_name(&ingress.metadata);
        let spec = ingress.spec.as_ref();
        let mut failures = Vec::new();
        let class = spec
            .and_then(|s| s.ingress_class_name.as_deref())
            .or_else(|| annotation(&ingress.metadata, "kubernetes.io/ingress.class"))
            .filter(|c| !c.is_empty());
        match class {
            None => failures.push(Failure::doc(
                format!(
                    "Ingress {name} does not specify an Ingress class (neither \
                     spec.ingressClassName nor the kubernetes.io/ingress.class annotation)"
                ),
                docs::INGRESS,
            )),
            Some(class) if snapshot.has(Source::IngressClasses) && !classes.contains(class) => {
                failures.push(Failure::doc(
                    format!("Ingress {name} uses the Ingress class {class}, which does not exist"),
                    docs::INGRESS,
                ));
            }
            Some(_) => {}
        }
        if snapshot.has_in(Source::Services, ns) {
            for backend in backends(spec).filter(|b| !services.contains(&(ns, *b))) {
                failures.push(Failure::doc(
                    format!(
                        "Ingress {name} routes to Service {ns}/{backend}, which does not exist"
                    ),
                    docs::INGRESS,
                ));
            }
        }
        if snapshot.has_in(Source::Secrets, ns) {
            let tls = spec.and_then(|s| s.tls.as_deref()).unwrap_or_default();
            let named: BTreeSet<&str> = tls
                .iter()
                .filter_map(|t| t.secret_name.as_deref())
                .collect();
            for secret in named.into_iter().filter(|s| !secrets.contains(&(ns, *s))) {
                failures.push(Failure::doc(
                    format!(
                        "Ingress {name} uses Secret {ns}/{secret} as its TLS certificate, which \
                         does not exist"
                    ),
                    docs::INGRESS,
                ));
            }
        }
        let parent = snapshot.parent_of(ns, &ingress.metadata);
        out.extend(Finding::namespaced("Ingress", ns, name, failures, parent));
    }
}

/// The Services an Ingress routes to (default backend and every path), each once.
fn backends(spec: Option<&IngressSpec>) -> impl Iterator<Item = &str> {
    let default = spec.and_then(|s| s.default_backend.as_ref());
    let paths = spec
        .and_then(|s| s.rules.as_deref())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r.http.as_ref())
        .flat_map(|http| &http.paths)
        .map(|p| &p.backend);
    let named: BTreeSet<&str> = default
        .into_iter()
        .chain(paths)
        .filter_map(|b| b.service.as_ref())
        .map(|s| s.name.as_str())
        .collect();
    named.into_iter()
}

/// NetworkPolicies that select every pod of their namespace, or no pod at all.
pub fn network_policy(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    let mut pods: HashMap<&str, Vec<Option<&Labels>>> = HashMap::new();
    for pod in &snapshot.pods {
        let (ns, _) = ns_name(&pod.metadata);
        pods.entry(ns)
            .or_default()
            .push(pod.metadata.labels.as_ref());
    }
    for policy in &snapshot.network_policies {
        let (ns, name) = ns_name(&policy.metadata);
        let selector = policy.spec.as_ref().and_then(|s| s.pod_selector.as_ref());
        let failure = match selector.filter(|s| !selects_all(s)) {
            // An absent podSelector is defaulted to the empty one, which selects every pod.
            None => Some(format!(
                "NetworkPolicy {name} applies to every pod in namespace {ns}: its podSelector is \
                 empty"
            )),
            Some(selector)
                if snapshot.has_in(Source::Pods, ns)
                    && !pods
                        .get(ns)
                        .into_iter()
                        .flatten()
                        .any(|l| selects(selector, *l)) =>
            {
                Some(format!(
                    "NetworkPolicy {name} applies to no pod: no pod in namespace {ns} matches \
                     its podSelector {}",
                    describe(selector)
                ))
            }
            Some(_) => None,
        };
        let failures = failure
            .map(|text| Failure::doc(text, docs::NETWORK_POLICIES))
            .into_iter()
            .collect();
        out.extend(Finding::namespaced(
            "NetworkPolicy",
            ns,
            name,
            failures,
            None,
        ));
    }
}

/// The (namespace, name) of every object.
fn names<'a>(metas: impl Iterator<Item = &'a ObjectMeta>) -> HashSet<(&'a str, &'a str)> {
    metas.map(ns_name).collect()
}

fn annotation<'m>(meta: &'m ObjectMeta, key: &str) -> Option<&'m str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// `app=web, tier=front`.
fn pairs(labels: &Labels) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join(", ")
}

#[cfg(test)]
mod tests;
