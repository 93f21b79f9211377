//! Analyzers of networking: Service, Ingress, NetworkPolicy, the Gateway API (GatewayClass, Gateway, HTTPRoute) and admission webhooks.

use super::{Finding, Snapshot};

pub fn service(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn ingress(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn network_policy(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn gateway_class(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn gateway(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn http_route(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn mutating_webhook(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn validating_webhook(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}
