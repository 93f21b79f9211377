//! Finds Gateway API objects that are broken: the GatewayClass, Gateway and HTTPRoute analyzers.
//!
//! Their objects are JSON ([`Value`]s: the CRDs' versions vary), read with the readers of
//! `analyze::json`, which the integrations' analyzers share.

use std::collections::{BTreeSet, HashMap, HashSet};

use k8s_openapi::api::core::v1::Service;
use serde_json::Value;

use crate::analyze::json::{condition, detail, items, json_ns_name, or, text};
use crate::analyze::{Failure, Finding, Snapshot, Source, docs, ns_name};

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
