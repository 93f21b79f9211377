//! Analyzers of nodes, storage and configuration: Node, PersistentVolumeClaim, Storage, ConfigMap and Security.

use super::{Finding, Snapshot};

pub fn node(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn pvc(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn storage(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn config_map(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}

pub fn security(_snapshot: &Snapshot, _out: &mut Vec<Finding>) {}
