//! Tests of the analyzer registry and of running analyzers over a snapshot.
