//! Analyzers that integrations bring: KEDA's ScaledObject, Kyverno's PolicyReport and ClusterPolicyReport.

use super::{Finding, Snapshot};

pub fn scaled_object(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn policy_report(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn cluster_policy_report(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}
