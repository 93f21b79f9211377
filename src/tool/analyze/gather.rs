//! Fills a [`Snapshot`] as the caller: each kind the active analyzers read is listed once for
//! the namespace asked for, or once across the cluster and kept to the namespaces the caller may
//! read (or, where Kubernetes RBAC refuses a cluster-wide list, once per such namespace), with
//! at most `max_concurrency` requests in flight.
//!
//! Kubernetes: `list` on each kind an active analyzer reads (see `crate::analyze::Source`), and
//! `get` on `pods/log` for the `Log` analyzer. A kind the API server does not serve (a CRD that
//! is not installed) or that RBAC refuses is left out; the analyzers that need it skip it.

use std::collections::{BTreeSet, HashSet};

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::analyze::{Snapshot, Source};
use crate::kube::{Impersonated, KubeError, Served};

/// Objects per list page.
const PAGE: usize = 500;
/// The most list bytes one call holds (the API server's answers, before parsing).
pub const MAX_BYTES_PER_CALL: usize = 256 * 1024 * 1024;
/// The most bytes of one container's log read for `Log`.
const LOG_LIMIT_BYTES: u32 = 64 * 1024;
/// The most objects of one kind one call reads; past it the answer says the scan was cut.
pub const MAX_OBJECTS_PER_KIND: usize = 20_000;
/// Containers whose logs the `Log` analyzer reads in one call, and the lines of each.
pub const MAX_LOG_CONTAINERS: usize = 50;
pub const LOG_TAIL_LINES: u32 = 100;

/// Which namespaces a call covers.
#[derive(Debug, Clone)]
pub enum Coverage {
    /// One namespace, decided by the call's own decision.
    One(String),
    /// Every namespace the caller may read (policy-decided one by one, in order).
    Readable(Vec<String>),
}

/// What gathering found besides the objects.
#[derive(Debug, Default)]
pub struct Gathered {
    pub snapshot: Snapshot,
    /// Kinds cut at [`MAX_OBJECTS_PER_KIND`].
    pub cut: BTreeSet<Source>,
    /// Kinds the API server does not serve.
    pub not_served: BTreeSet<Source>,
    /// Kinds the caller may not list (somewhere covered).
    pub forbidden: BTreeSet<Source>,
    /// Other failures, as the caller may see them.
    pub errors: Vec<String>,
}

/// One list to send.
#[derive(Debug, Clone)]
struct Job {
    source: Source,
    /// `None`: cluster-wide (or a cluster-scoped kind).
    namespace: Option<String>,
}

/// Lists every `source` over `coverage` as `client`'s caller, `concurrency` requests at a time.
pub async fn gather(
    client: &mut Impersonated<'_>,
    sources: &BTreeSet<Source>,
    coverage: &Coverage,
    concurrency: usize,
) -> Gathered {
    let mut gathered = Gathered::default();
    gathered.snapshot.cluster_wide = matches!(coverage, Coverage::Readable(_));
    gathered.snapshot.covered = Some(match coverage {
        Coverage::One(ns) => HashSet::from([ns.clone()]),
        Coverage::Readable(names) => names.iter().cloned().collect(),
    });
    let catalog = client.kube().catalog();
    let mut jobs = Vec::new();
    let mut served_of = Vec::new();
    for &source in sources {
        let Some(served) = resolve(&catalog, source) else {
            gathered.not_served.insert(source);
            continue;
        };
        served_of.push((source, served));
        let namespace = match coverage {
            Coverage::One(ns) if source.namespaced() => Some(ns.clone()),
            _ => None,
        };
        jobs.push(Job { source, namespace });
    }
    let served = |source: Source| {
        served_of
            .iter()
            .find(|(s, _)| *s == source)
            .map(|(_, served)| served.clone())
    };
    let readable: HashSet<&str> = match coverage {
        Coverage::Readable(names) => names.iter().map(String::as_str).collect(),
        Coverage::One(_) => HashSet::new(),
    };

    // First every kind once; then, for a namespaced kind whose cluster-wide list did not
    // simply work (RBAC refused it, it failed, it was cut), once per readable namespace: what
    // a cluster-wide list says of other namespaces (their objects, their count, an error
    // quoting one of them) never reaches the caller.
    let budget = AtomicUsize::new(MAX_BYTES_PER_CALL);
    let mut retry = Vec::new();
    for (job, result) in run_jobs(client, jobs, &served, concurrency, &budget).await {
        let across = job.namespace.is_none() && job.source.namespaced();
        match result {
            Ok(listed) if !(across && listed.cut) => {
                let keep = |ns: Option<&str>| !across || ns.is_some_and(|ns| readable.contains(ns));
                absorb(&mut gathered, &job, listed, keep);
            }
            Err(KubeError::NotServed(_)) | Err(KubeError::Api { code: 404, .. }) => {
                gathered.not_served.insert(job.source);
            }
            // Retrying per namespace would only ask for more of what there is no room for.
            Err(error @ KubeError::AnswerMemory { .. }) => {
                note_failure(&mut gathered, &job, &error)
            }
            ref other if across => {
                // A cut list's pages are dropped: what they held goes back to the budget.
                if let Ok(listed) = other {
                    let held = listed.pages.iter().map(bytes::Bytes::len).sum();
                    budget.fetch_add(held, Ordering::Relaxed);
                }
                if let Coverage::Readable(names) = coverage {
                    retry.extend(names.iter().map(|ns| Job {
                        source: job.source,
                        namespace: Some(ns.clone()),
                    }));
                }
            }
            Ok(listed) => absorb(&mut gathered, &job, listed, |_| true),
            Err(error) => note_failure(&mut gathered, &job, &error),
        }
    }
    for (job, result) in run_jobs(client, retry, &served, concurrency, &budget).await {
        match result {
            Ok(listed) => absorb(&mut gathered, &job, listed, |_| true),
            // RBAC does not let the caller read this kind there: as if the namespace had none
            // of it, except that no analyzer concludes from its absence.
            Err(error) => note_failure(&mut gathered, &job, &error),
        }
    }
    gathered
}

/// Reads the recent log of each running container of `pods` (at most [`MAX_LOG_CONTAINERS`]).
pub async fn gather_logs(
    client: &mut Impersonated<'_>,
    gathered: &mut Gathered,
    concurrency: usize,
) {
    let mut wanted = Vec::new();
    for pod in &gathered.snapshot.pods {
        let (ns, name) = crate::analyze::ns_name(&pod.metadata);
        for status in pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_deref())
            .unwrap_or_default()
        {
            let running = status.state.as_ref().is_some_and(|s| s.running.is_some());
            if running && wanted.len() < MAX_LOG_CONTAINERS {
                wanted.push((ns.to_owned(), name.to_owned(), status.name.clone()));
            }
        }
    }
    let parent = &*client;
    let results: Vec<_> = futures::stream::iter(wanted)
        .map(|(ns, pod, container)| async move {
            let mut fork = parent.fork();
            let query = [
                ("container", container.clone()),
                ("tailLines", LOG_TAIL_LINES.to_string()),
                ("limitBytes", LOG_LIMIT_BYTES.to_string()),
            ];
            let log = fork.logs(&ns, &pod, &query).await;
            ((ns, pod, container), log, fork.take_calls())
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for (key, log, calls) in results {
        client.adopt(calls);
        match log {
            Ok(text) => {
                gathered
                    .snapshot
                    .logs
                    .insert(key, String::from_utf8_lossy(&text).into_owned());
            }
            Err(error) => gathered.errors.push(format!(
                "the log of container {:?} of pod {}/{} could not be read: {error}",
                key.2, key.0, key.1
            )),
        }
    }
}

/// The kind as served: a version the analyzers understand, preferred first.
fn resolve(catalog: &crate::kube::ApiCatalog, source: Source) -> Option<Served> {
    let (group, kind) = source.group_kind();
    let versions = catalog.versions_of(group, kind);
    let prefer: &[&str] = match source {
        // autoscaling/v1 lacks metrics and conditions; v2beta2 has v2's shape.
        Source::HorizontalPodAutoscalers => &["v2", "v2beta2"],
        _ => &[],
    };
    let version = prefer
        .iter()
        .find(|v| versions.iter().any(|served| served == *v))
        .map(|v| (*v).to_owned())
        .or_else(|| match source {
            Source::HorizontalPodAutoscalers => None,
            _ => versions.first().cloned(),
        })?;
    let api_version = if group.is_empty() {
        version
    } else {
        format!("{group}/{version}")
    };
    catalog.by_api_version(&api_version, kind).cloned()
}

/// A list's pages, joined.
struct Listed {
    pages: Vec<bytes::Bytes>,
    cut: bool,
}

async fn run_jobs(
    client: &mut Impersonated<'_>,
    jobs: Vec<Job>,
    served: &(dyn Fn(Source) -> Option<Served> + Sync),
    concurrency: usize,
    budget: &AtomicUsize,
) -> Vec<(Job, Result<Listed, KubeError>)> {
    let parent = &*client;
    let done: Vec<_> = futures::stream::iter(jobs)
        .map(|job| async move {
            let mut fork = parent.fork();
            let result = match served(job.source) {
                Some(served) => list_all(&mut fork, &served, &job, budget).await,
                None => Err(KubeError::NotServed(job.source.group_kind().1.to_owned())),
            };
            (job, result, fork.take_calls())
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut results = Vec::with_capacity(done.len());
    for (job, result, calls) in done {
        client.adopt(calls);
        results.push((job, result));
    }
    results
}

/// Lists one kind a page at a time, up to [`MAX_OBJECTS_PER_KIND`] and while the call's byte
/// budget lasts.
async fn list_all(
    client: &mut Impersonated<'_>,
    served: &Served,
    job: &Job,
    budget: &AtomicUsize,
) -> Result<Listed, KubeError> {
    #[derive(Deserialize)]
    struct Meta {
        #[serde(default, rename = "continue")]
        continue_token: Option<String>,
    }
    #[derive(Deserialize)]
    struct Page {
        #[serde(default)]
        metadata: Option<Meta>,
    }
    let mut listed = Listed {
        pages: Vec::new(),
        cut: false,
    };
    let mut token: Option<String> = None;
    let mut read = 0;
    loop {
        let mut query = vec![("limit", PAGE.to_string())];
        if let Some((key, value)) = job.source.selector() {
            query.push((key, value.to_owned()));
        }
        if let Some(token) = &token {
            query.push(("continue", token.clone()));
        }
        let body = client
            .list_served(served, job.namespace.as_deref(), &query)
            .await?;
        let page: Page =
            serde_json::from_slice(&body).map_err(|e| KubeError::Decode(e.to_string()))?;
        let spent = budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(body.len())
            })
            .is_err();
        if spent {
            listed.cut = true;
            return Ok(listed);
        }
        listed.pages.push(body);
        read += PAGE;
        token = page
            .metadata
            .and_then(|m| m.continue_token)
            .filter(|t| !t.is_empty());
        match &token {
            None => return Ok(listed),
            Some(_) if read >= MAX_OBJECTS_PER_KIND => {
                listed.cut = true;
                return Ok(listed);
            }
            Some(_) => {}
        }
    }
}

/// Adds a list's items to the snapshot, keeping those `keep` allows by namespace.
fn absorb(gathered: &mut Gathered, job: &Job, listed: Listed, keep: impl Fn(Option<&str>) -> bool) {
    #[derive(Deserialize)]
    struct Items<'a> {
        #[serde(borrow, default)]
        items: Option<Vec<&'a RawValue>>,
    }
    #[derive(Deserialize)]
    struct Where<'a> {
        #[serde(borrow, default)]
        metadata: Option<WhereMeta<'a>>,
    }
    #[derive(Deserialize)]
    struct WhereMeta<'a> {
        #[serde(borrow, default)]
        namespace: Option<&'a str>,
    }
    if listed.cut {
        gathered.cut.insert(job.source);
    }
    let mut kept = Vec::new();
    for page in &listed.pages {
        let Ok(items) = serde_json::from_slice::<Items<'_>>(page) else {
            gathered.snapshot.unreadable += 1;
            continue;
        };
        for item in items.items.unwrap_or_default() {
            let ns = serde_json::from_str::<Where<'_>>(item.get())
                .ok()
                .and_then(|w| w.metadata)
                .and_then(|m| m.namespace);
            if keep(ns) {
                kept.push(item);
            }
        }
    }
    gathered
        .snapshot
        .add(job.source, job.namespace.as_deref(), &kept);
}

fn note_failure(gathered: &mut Gathered, job: &Job, error: &KubeError) {
    match error {
        KubeError::Api { code: 403, .. } => {
            gathered.forbidden.insert(job.source);
        }
        KubeError::Api { code: 404, .. } | KubeError::NotServed(_) => {
            gathered.not_served.insert(job.source);
        }
        other => {
            let (_, kind) = job.source.group_kind();
            let place = match &job.namespace {
                Some(ns) => format!(" in namespace {ns:?}"),
                None => String::new(),
            };
            gathered.errors.push(format!(
                "{kind} objects could not be listed{place}: {other}"
            ));
        }
    }
}
