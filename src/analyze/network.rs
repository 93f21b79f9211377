//! Analyzers of networking: Service, Ingress, NetworkPolicy, the Gateway API (GatewayClass, Gateway, HTTPRoute) and admission webhooks.
//!
//! Each reports what k8sgpt's analyzer of the same name reports. A check about another kind (the
//! Service an Ingress routes to) concludes "does not exist" only where that kind was read: an
//! object the caller may not see is not a missing one.
//!
//! Gateway API objects are JSON ([`Value`]s), read with the small readers at the end of this
//! file, which the integrations' analyzers share.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use k8s_openapi::api::admissionregistration::v1::ServiceReference;
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::networking::v1::IngressSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::Value;

use super::{Failure, Finding, Snapshot, Source, docs, ns_name};

/// An object's labels, or a Service's selector.
type Labels = BTreeMap<String, String>;

/// How many names a failure lists before it says "and N more".
const LISTED: usize = 10;

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

/// Whether `selector` selects an object with `labels`, as the API server decides: every
/// `matchLabels` pair and every `matchExpressions` requirement holds, so the empty selector
/// selects everything.
pub(super) fn selects(selector: &LabelSelector, labels: Option<&Labels>) -> bool {
    let value = |key: &str| labels.and_then(|l| l.get(key));
    let pairs = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| value(k) == Some(v));
    pairs
        && selector.match_expressions.iter().flatten().all(|r| {
            let values = r.values.as_deref().unwrap_or_default();
            match r.operator.as_str() {
                "In" => value(&r.key).is_some_and(|v| values.contains(v)),
                "NotIn" => value(&r.key).is_none_or(|v| !values.contains(v)),
                "Exists" => value(&r.key).is_some(),
                "DoesNotExist" => value(&r.key).is_none(),
                // The API server accepts no other operator; a selector it would refuse selects
                // nothing rather than everything.
                _ => false,
            }
        })
}

/// Whether `selector` is the empty one, which selects everything.
fn selects_all(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty())
}

/// A selector as `kubectl` writes it: `app=web, tier in (a,b), !debug`.
pub(super) fn describe(selector: &LabelSelector) -> String {
    let pairs = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"));
    let expressions = selector.match_expressions.iter().flatten().map(|r| {
        let values = r.values.as_deref().unwrap_or_default().join(",");
        match r.operator.as_str() {
            "Exists" => r.key.clone(),
            "DoesNotExist" => format!("!{}", r.key),
            "In" => format!("{} in ({values})", r.key),
            "NotIn" => format!("{} notin ({values})", r.key),
            other => format!("{} {other} ({values})", r.key),
        }
    });
    pairs.chain(expressions).collect::<Vec<_>>().join(", ")
}

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

/// Whether `labels` hold every pair of a Service's `selector`.
fn has_labels(labels: Option<&Labels>, selector: &Labels) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// GatewayClasses whose controller has not accepted them.
pub fn gateway_class(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    for class in &snapshot.gateway_classes {
        let name = text(class, "/metadata/name");
        let mut failures = Vec::new();
        if let Some(accepted) = condition(class, "Accepted")
            && text(accepted, "/status") != "True"
        {
            let controller = text(class, "/spec/controllerName");
            failures.push(Failure::doc(
                format!(
                    "GatewayClass {name} is not accepted by its controller {controller}{}",
                    detail(accepted)
                ),
                docs::GATEWAY_API,
            ));
        }
        out.extend(Finding::cluster("GatewayClass", name, failures));
    }
}

/// Gateways naming a missing GatewayClass, not accepted, or not programmed.
pub fn gateway(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    let classes: HashSet<&str> = snapshot
        .gateway_classes
        .iter()
        .map(|c| text(c, "/metadata/name"))
        .collect();
    for gateway in &snapshot.gateways {
        let (ns, name) = json_ns_name(gateway);
        let mut failures = Vec::new();
        let class = text(gateway, "/spec/gatewayClassName");
        if class.is_empty() {
            failures.push(format!("Gateway {name} names no GatewayClass"));
        } else if snapshot.has(Source::GatewayClasses) && !classes.contains(class) {
            failures.push(format!(
                "Gateway {name} uses the GatewayClass {class}, which does not exist"
            ));
        }
        if let Some(accepted) = condition(gateway, "Accepted")
            && text(accepted, "/status") != "True"
        {
            failures.push(format!(
                "Gateway {name} is not accepted{}",
                detail(accepted)
            ));
        }
        if let Some(programmed) = condition(gateway, "Programmed")
            && text(programmed, "/status") == "False"
        {
            failures.push(format!(
                "Gateway {name} is not programmed{}",
                detail(programmed)
            ));
        }
        let failures = failures
            .into_iter()
            .map(|t| Failure::doc(t, docs::GATEWAY_API))
            .collect();
        out.extend(Finding::namespaced("Gateway", ns, name, failures, None));
    }
}

/// HTTPRoutes naming a missing Gateway (or one that refuses routes from their namespace), or a
/// missing backend Service, or a port the Service does not have.
pub fn http_route(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    let gateways: HashMap<(&str, &str), &Value> = snapshot
        .gateways
        .iter()
        .map(|g| (json_ns_name(g), g))
        .collect();
    let services: HashMap<(&str, &str), &Service> = snapshot
        .services
        .iter()
        .map(|s| (ns_name(&s.metadata), s))
        .collect();
    for route in &snapshot.http_routes {
        let (ns, name) = json_ns_name(route);
        let mut failures = Vec::new();
        let parents = items(route, "/spec/parentRefs")
            .filter(|r| is_ref_to(r, "gateway.networking.k8s.io", "Gateway"))
            .map(|r| {
                (
                    or(text(r, "/namespace"), ns),
                    text(r, "/name"),
                    r.pointer("/sectionName").and_then(Value::as_str),
                )
            })
            .collect::<BTreeSet<_>>();
        for (gateway_ns, gateway, section) in parents {
            match gateways.get(&(gateway_ns, gateway)) {
                None if snapshot.has_in(Source::Gateways, gateway_ns) => failures.push(format!(
                    "HTTPRoute {name} attaches to Gateway {gateway_ns}/{gateway}, which does not \
                     exist"
                )),
                Some(found) if !admits(found, section, ns, gateway_ns) => failures.push(format!(
                    "HTTPRoute {name} attaches to Gateway {gateway_ns}/{gateway}, whose listeners \
                     accept routes only from namespace {gateway_ns}"
                )),
                _ => {}
            }
        }
        let backends = items(route, "/spec/rules")
            .flat_map(|rule| items(rule, "/backendRefs"))
            .filter(|r| is_ref_to(r, "", "Service"))
            .map(|r| {
                (
                    or(text(r, "/namespace"), ns),
                    text(r, "/name"),
                    r.pointer("/port").and_then(Value::as_i64),
                )
            })
            .collect::<BTreeSet<_>>();
        for (service_ns, service, port) in backends {
            if !snapshot.has_in(Source::Services, service_ns) {
                continue;
            }
            let Some(found) = services.get(&(service_ns, service)) else {
                failures.push(format!(
                    "HTTPRoute {name} routes to Service {service_ns}/{service}, which does not exist"
                ));
                continue;
            };
            let ports: Vec<i64> = found
                .spec
                .iter()
                .flat_map(|s| s.ports.iter().flatten())
                .map(|p| i64::from(p.port))
                .collect();
            if let Some(port) = port
                && !ports.contains(&port)
            {
                let has: Vec<String> = ports.iter().map(i64::to_string).collect();
                failures.push(format!(
                    "HTTPRoute {name} routes to port {port} of Service {service_ns}/{service}, \
                     which has no such port (it has {})",
                    or(&has.join(", "), "none")
                ));
            }
        }
        let failures = failures
            .into_iter()
            .map(|t| Failure::doc(t, docs::GATEWAY_API))
            .collect();
        out.extend(Finding::namespaced("HTTPRoute", ns, name, failures, None));
    }
}

/// Whether a `parentRef`/`backendRef` names an object of this group and kind (its defaults).
fn is_ref_to(reference: &Value, group: &str, kind: &str) -> bool {
    let named_group = reference.pointer("/group").and_then(Value::as_str);
    let named_kind = reference.pointer("/kind").and_then(Value::as_str);
    named_group.unwrap_or(group) == group && named_kind.unwrap_or(kind) == kind
}

/// Whether the listeners of `gateway` a route attaches to (the one named `section`, or all) let
/// in a route from `route_ns`: `allowedRoutes.namespaces.from` is `Same` unless set. `Selector`
/// needs the namespace's labels, which the snapshot lacks: it counts as letting in.
fn admits(gateway: &Value, section: Option<&str>, route_ns: &str, gateway_ns: &str) -> bool {
    let mut listeners = items(gateway, "/spec/listeners")
        .filter(|l| section.is_none_or(|s| text(l, "/name") == s))
        .peekable();
    listeners.peek().is_none()
        || listeners.any(|l| {
            let from = or(text(l, "/allowedRoutes/namespaces/from"), "Same");
            from != "Same" || route_ns == gateway_ns
        })
}

/// The Warning events about an object, quoted, one failure each.
pub(super) fn warnings(snapshot: &Snapshot, ns: &str, kind: &str, name: &str) -> Vec<Failure> {
    snapshot
        .events_about(ns, kind, name)
        .map(|event| {
            let reason = event.reason.as_deref().unwrap_or("Warning");
            let message = event.message.as_deref().unwrap_or_default().trim();
            Failure::new(format!(
                "{kind} {name} has a warning event {reason}: \"{message}\""
            ))
        })
        .collect()
}

/// The namespace and name of a JSON object (empty when absent).
pub(super) fn json_ns_name(object: &Value) -> (&str, &str) {
    (
        text(object, "/metadata/namespace"),
        text(object, "/metadata/name"),
    )
}

/// The string at `pointer` in a JSON object, or "" when absent or not a string.
pub(super) fn text<'v>(value: &'v Value, pointer: &str) -> &'v str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The elements of the array at `pointer`: none when absent or not an array.
pub(super) fn items<'v>(value: &'v Value, pointer: &str) -> impl Iterator<Item = &'v Value> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The status condition of this type.
pub(super) fn condition<'v>(value: &'v Value, kind: &str) -> Option<&'v Value> {
    items(value, "/status/conditions").find(|c| text(c, "/type") == kind)
}

/// A condition's message (or else its reason) as the end of a sentence: ": …", or "".
pub(super) fn detail(condition: &Value) -> String {
    match or(text(condition, "/message"), text(condition, "/reason")).trim() {
        "" => String::new(),
        said => format!(": {said}"),
    }
}

/// `value`, or `default` when it is empty.
pub(super) fn or<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.is_empty() { default } else { value }
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

/// `a, b, c`, or the first few and "and N more".
pub(super) fn list(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(LISTED).map(String::as_str).collect();
    match names.len().saturating_sub(LISTED) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

#[cfg(test)]
mod tests;
