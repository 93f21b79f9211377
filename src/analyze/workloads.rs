//! Analyzers of workloads: Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob, HorizontalPodAutoScaler, PodDisruptionBudget and Log.

use super::{Finding, Snapshot};

pub fn pod(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn deployment(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn replica_set(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn stateful_set(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn daemon_set(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn job(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn cron_job(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn hpa(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn pdb(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn log(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}
