//! Reads policy sources (files, or every `.cedar` file of a directory), gives each policy and
//! template its id, links templates per tenant, and validates the whole set in strict mode
//! against the schema, reporting each problem as `file:line:column: message`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{
    ActionConstraint, Effect, EntityUid, Policy, PolicyId, PolicySet, Schema, SlotId, Template,
    ValidationMode, Validator,
};
use miette::Diagnostic;

use super::entities;

/// One policy file's name and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub text: String,
}

/// Links of one template, one per tenant: each slot (`?principal`, `?resource`) is filled with
/// `Tenant::"<tenant>"`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantLinks {
    /// The template's `@id`.
    pub template: String,
    pub tenants: Vec<String>,
}

/// A problem in a policy file, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub source: String,
    /// 1-based; 0 when the problem has no place in a file.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.source, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.source, self.line, self.column, self.message
            )
        }
    }
}

/// Why policies could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("the generated Cedar schema does not parse (a bug in kubegate): {0}")]
    Schema(String),
    #[error("cannot read policies from {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("policies do not parse:\n{}", list(.0))]
    Parse(Vec<Problem>),
    #[error("policy id `{0}` is used twice; every @id must be unique")]
    DuplicateId(String),
    #[error("cannot link template `{template}` for tenant `{tenant}`: {message}")]
    Link {
        template: String,
        tenant: String,
        message: String,
    },
    #[error("policies do not validate against the kubegate schema:\n{}", list(.0))]
    Validation(Vec<Problem>),
    #[error(
        "the policy files changed while they were read; they are read again on the next change"
    )]
    Changing,
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("- {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads policy files; a directory stands for the `.cedar` files in it (not hidden ones, which
/// is how Kubernetes mounts a ConfigMap's bookkeeping), in name order.
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<Source>, PolicyError> {
    let mut sources = Vec::new();
    for path in paths {
        let read_err = |source| PolicyError::Read {
            path: path.clone(),
            source,
        };
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(read_err)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|e| e == "cedar")
                        && !p
                            .file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with('.'))
                })
                .collect();
            files.sort();
            for file in files {
                sources.push(read_file(&file)?);
            }
        } else {
            sources.push(read_file(path)?);
        }
    }
    Ok(sources)
}

fn read_file(path: &Path) -> Result<Source, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(Source {
        name: path.display().to_string(),
        text,
    })
}

/// Whom a policy can apply to, from its principal scope: anyone, or those in (or equal to) one
/// entity. Slicing a set by it never changes a decision: a policy whose principal scope names an
/// entity the caller is not in cannot apply to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reach {
    Anyone,
    In(EntityUid),
}

/// A link of a template, kept so that slices of the set can link it again.
#[derive(Debug, Clone)]
pub struct Link {
    pub template: PolicyId,
    pub id: PolicyId,
    pub values: HashMap<SlotId, EntityUid>,
    pub reach: Reach,
}

/// One policy of a corpus: a static policy or a template link, by its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Static(usize),
    Link(usize),
}

/// A loaded and validated policy set, with what slicing it by caller needs.
#[derive(Debug)]
pub struct Corpus {
    /// Every policy, template and link.
    pub set: PolicySet,
    pub statics: Vec<(Policy, Reach)>,
    pub templates: HashMap<PolicyId, Template>,
    pub links: Vec<Link>,
    /// The policies that can apply to anyone.
    pub anyone: Vec<Entry>,
    /// The policies that apply only to those in (or equal to) an entity, by that entity.
    pub reached: HashMap<EntityUid, Vec<Entry>>,
    /// Each policy's (and link's) `@reason`.
    pub reasons: HashMap<PolicyId, String>,
    /// The permits (and templates) that name `Action::"reveal-secrets"` in their scope: the
    /// only ones that may grant it.
    pub reveal_permits: HashSet<PolicyId>,
    /// Things a policy author should know that are not errors.
    pub notes: Vec<String>,
}

impl Corpus {
    /// Parses, ids, links and validates `sources` against `schema`.
    /// With `links_optional`, links of templates these sources do not hold are left out (a
    /// shadow set that replaces the enforced one need not hold its templates).
    pub fn build(
        sources: &[Source],
        links: &[TenantLinks],
        links_optional: bool,
        schema: &Schema,
    ) -> Result<Corpus, PolicyError> {
        let mut set = PolicySet::new();
        let mut seen = HashSet::new();
        let mut origins: HashMap<PolicyId, usize> = HashMap::new();
        let mut parse_problems = Vec::new();
        let mut corpus = Corpus {
            set: PolicySet::new(),
            statics: Vec::new(),
            templates: HashMap::new(),
            links: Vec::new(),
            anyone: Vec::new(),
            reached: HashMap::new(),
            reasons: HashMap::new(),
            reveal_permits: HashSet::new(),
            notes: Vec::new(),
        };
        for (index, source) in sources.iter().enumerate() {
            let parsed = match PolicySet::from_str(&source.text) {
                Ok(parsed) => parsed,
                Err(errors) => {
                    parse_problems.extend(errors.iter().map(|e| locate(source, e)));
                    continue;
                }
            };
            // Cedar names a file's policies `policy0`, `policy1`, ... in file order, but
            // iterates them in no set order; sort so that `<name>#<n>` ids follow the file.
            let position = |id: &PolicyId| {
                id.to_string()
                    .trim_start_matches("policy")
                    .parse::<usize>()
                    .unwrap_or(usize::MAX)
            };
            let mut statics: Vec<&Policy> = parsed.policies().collect();
            statics.sort_by_key(|p| position(p.id()));
            let mut templates: Vec<&Template> = parsed.templates().collect();
            templates.sort_by_key(|t| position(t.id()));
            let mut id_of = |annotation: Option<&str>, n: usize| -> Result<PolicyId, PolicyError> {
                let id = annotation
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{}#{n}", source.name));
                if !seen.insert(id.clone()) {
                    return Err(PolicyError::DuplicateId(id));
                }
                Ok(PolicyId::new(id))
            };
            for policy in statics {
                let id = id_of(policy.annotation("id"), position(policy.id()))?;
                let policy = policy.new_id(id.clone());
                if policy.effect() == Effect::Permit {
                    note_scope(&mut corpus, &id, &policy.action_constraint());
                }
                set.add(policy.clone())
                    .map_err(|e| PolicyError::Parse(vec![problem(&source.name, e.to_string())]))?;
                corpus.statics.push((policy.clone(), reach_of(&policy)));
                origins.insert(id, index);
            }
            for template in templates {
                let id = id_of(template.annotation("id"), position(template.id()))?;
                let template = template.new_id(id.clone());
                if template.effect() == Effect::Permit {
                    note_scope(&mut corpus, &id, &template.action_constraint());
                }
                set.add_template(template.clone())
                    .map_err(|e| PolicyError::Parse(vec![problem(&source.name, e.to_string())]))?;
                corpus.templates.insert(id.clone(), template);
                origins.insert(id, index);
            }
        }
        if !parse_problems.is_empty() {
            return Err(PolicyError::Parse(parse_problems));
        }
        for group in links {
            let template_id = PolicyId::new(&group.template);
            if links_optional && !corpus.templates.contains_key(&template_id) {
                continue;
            }
            let template = corpus
                .templates
                .get(&template_id)
                .ok_or_else(|| PolicyError::Link {
                    template: group.template.clone(),
                    tenant: group.tenants.first().cloned().unwrap_or_default(),
                    message: "no loaded template has this @id".to_owned(),
                })?;
            let slots: Vec<SlotId> = template.slots().cloned().collect();
            for tenant in &group.tenants {
                let tenant_uid = entities::uid("Tenant", tenant);
                let values: HashMap<SlotId, EntityUid> = slots
                    .iter()
                    .map(|s| (s.clone(), tenant_uid.clone()))
                    .collect();
                let id = PolicyId::new(format!("{}/{tenant}", group.template));
                if !seen.insert(id.to_string()) {
                    return Err(PolicyError::DuplicateId(id.to_string()));
                }
                set.link(template_id.clone(), id.clone(), values.clone())
                    .map_err(|e| PolicyError::Link {
                        template: group.template.clone(),
                        tenant: tenant.clone(),
                        message: e.to_string(),
                    })?;
                let reach = set.policy(&id).map_or(Reach::Anyone, reach_of);
                corpus.links.push(Link {
                    template: template_id.clone(),
                    id,
                    values,
                    reach,
                });
            }
        }
        let validation = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
        if !validation.validation_passed() {
            let problems = validation
                .validation_errors()
                .map(|error| match origins.get(error.policy_id()) {
                    Some(&index) => locate(&sources[index], error),
                    None => problem(error.policy_id().as_ref(), error.to_string()),
                })
                .collect();
            return Err(PolicyError::Validation(problems));
        }
        corpus.reasons = set
            .policies()
            .filter_map(|p| Some((p.id().clone(), p.annotation("reason")?.to_owned())))
            .collect();
        corpus.set = set;
        corpus.index();
        Ok(corpus)
    }

    /// How many policies (static ones and template links) the corpus holds.
    pub fn len(&self) -> usize {
        self.statics.len() + self.links.len()
    }

    /// Whether it holds none (then nothing is permitted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn index(&mut self) {
        let entries = self
            .statics
            .iter()
            .enumerate()
            .map(|(n, (_, reach))| (Entry::Static(n), reach.clone()))
            .chain(
                self.links
                    .iter()
                    .enumerate()
                    .map(|(n, link)| (Entry::Link(n), link.reach.clone())),
            )
            .collect::<Vec<_>>();
        for (entry, reach) in entries {
            match reach {
                Reach::Anyone => self.anyone.push(entry),
                Reach::In(uid) => self.reached.entry(uid).or_default().push(entry),
            }
        }
    }
}

/// Notes a permit that applies to every action (it does not grant `reveal-secrets`, which a
/// permit must name), and keeps the ids of permits that do name it.
fn note_scope(corpus: &mut Corpus, id: &PolicyId, scope: &ActionConstraint) {
    let reveal = entities::uid("Action", super::REVEAL_SECRETS);
    match scope {
        ActionConstraint::Any => corpus.notes.push(format!(
            "policy `{id}` permits every action except `reveal-secrets`: revealing Secret \
             values is granted only by a permit that names Action::\"reveal-secrets\""
        )),
        ActionConstraint::Eq(action) if *action == reveal => {
            corpus.reveal_permits.insert(id.clone());
        }
        ActionConstraint::In(actions) if actions.contains(&reveal) => {
            corpus.reveal_permits.insert(id.clone());
        }
        _ => {}
    }
}

fn reach_of(policy: &Policy) -> Reach {
    use cedar_policy::PrincipalConstraint as P;
    match policy.principal_constraint() {
        P::Any | P::Is(_) => Reach::Anyone,
        P::In(uid) | P::Eq(uid) | P::IsIn(_, uid) => Reach::In(uid),
    }
}

fn problem(source: &str, message: String) -> Problem {
    Problem {
        source: source.to_owned(),
        line: 0,
        column: 0,
        message,
    }
}

/// A diagnostic placed at its first label in the source's text.
fn locate(source: &Source, error: &dyn Diagnostic) -> Problem {
    let offset = error
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset());
    let mut message = error.to_string();
    if let Some(help) = error.help() {
        message.push_str(&format!(" ({help})"));
    }
    match offset {
        Some(offset) => {
            let (line, column) = line_column(&source.text, offset);
            Problem {
                source: source.name.clone(),
                line,
                column,
                message,
            }
        }
        None => problem(&source.name, message),
    }
}

/// The 1-based line and column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
