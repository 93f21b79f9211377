//! `kubegate audit verify`: follows the hash chain through a set of audit files (rotated ones,
//! several replicas' own) and checks every checkpoint's signature; reports the first broken
//! line of each chain and why.
//!
//! Files are put in order by the chain itself: a file continues the one whose last line hashes
//! to its first line's `prevHash`. Each replica writes a chain of its own, so a set of files
//! may hold several chains.

use std::path::{Path, PathBuf};

use super::chain::{self, Checkpoint, Link, Reason, Verifier};

/// What was found, chain by chain.
#[derive(Debug, Default)]
pub struct Report {
    pub chains: Vec<ChainReport>,
    /// Files that could not be read at all.
    pub unreadable: Vec<(PathBuf, String)>,
}

impl Report {
    /// Whether every chain verified (a live, still open tail is not a problem).
    pub fn is_intact(&self) -> bool {
        self.unreadable.is_empty() && self.chains.iter().all(|c| c.problem.is_none())
    }
}

/// One chain: the files it runs through, what it holds, and its first problem.
#[derive(Debug, Default)]
pub struct ChainReport {
    pub files: Vec<PathBuf>,
    pub lines: u64,
    pub records: u64,
    pub checkpoints: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The first line that breaks the chain; nothing after it is vouched for.
    pub problem: Option<Problem>,
    /// Whether it ends where its file was rotated or reopened (it goes on in a file not given).
    pub continues_elsewhere: bool,
    /// Things a reviewer should know that do not break the chain.
    pub notes: Vec<String>,
}

/// Where the chain broke and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line number in `file`.
    pub line: usize,
    pub why: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.why)
    }
}

/// One file's lines, read whole.
struct File {
    path: PathBuf,
    lines: Vec<Vec<u8>>,
    /// Bytes after the last newline (a write cut short).
    torn: usize,
}

impl File {
    fn read(path: &Path) -> std::io::Result<File> {
        let bytes = std::fs::read(path)?;
        let mut lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        // The piece after the last newline: empty for a whole file.
        let torn = lines.pop().map_or(0, |rest| rest.len());
        Ok(File {
            path: path.to_owned(),
            lines,
            torn,
        })
    }

    fn first_link(&self) -> Option<Link> {
        serde_json::from_slice(self.lines.first()?).ok()
    }

    fn last_hash(&self) -> Option<String> {
        self.lines.last().map(|line| chain::hash_of(line))
    }
}

/// Verifies `paths` as of `now` (a log not closed, whose last checkpoint is older than twice its
/// promised interval, counts as cut). Without `key`, signatures are not checked (noted).
pub fn verify(paths: &[PathBuf], key: Option<&Verifier>, now: jiff::Timestamp) -> Report {
    let mut report = Report::default();
    let mut files = Vec::new();
    for path in paths {
        match File::read(path) {
            Ok(file) => files.push(file),
            Err(error) => report.unreadable.push((path.clone(), error.to_string())),
        }
    }
    for order in chains(&files) {
        let chain: Vec<&File> = order.iter().map(|&i| &files[i]).collect();
        report.chains.push(walk(&chain, key, now));
    }
    find_gaps(&mut report);
    report
}

/// A chain that ends where its file was rotated away and another that starts further on, in
/// the same set, are one replica's chain with a file missing between them: a removed file.
/// (A set of several replicas' partial files can be flagged too; give each replica's whole set.)
fn find_gaps(report: &mut Report) {
    let ends: Vec<(u64, PathBuf)> = report
        .chains
        .iter()
        .filter(|c| c.problem.is_none() && c.continues_elsewhere)
        .filter_map(|c| Some((c.last_seq?, c.files.last()?.clone())))
        .collect();
    for chain in &mut report.chains {
        let (Some(first), None) = (chain.first_seq, &chain.problem) else {
            continue;
        };
        if first == 0 {
            continue;
        }
        if let Some((last, file)) = ends.iter().find(|(last, _)| *last < first) {
            chain.problem = Some(Problem {
                file: chain.files[0].clone(),
                line: 1,
                why: format!(
                    "the chain ended at seq {last} in {} (rotated away) and resumes here at seq \
                     {first}: a file between them is missing",
                    file.display()
                ),
            });
        }
    }
}

/// Groups files into chains, each in order: a file follows the one whose last line's hash is
/// its first line's `prevHash`.
fn chains(files: &[File]) -> Vec<Vec<usize>> {
    let next_of = |i: usize| {
        let hash = files[i].last_hash()?;
        (0..files.len()).find(|&j| {
            j != i
                && files[j]
                    .first_link()
                    .is_some_and(|link| link.prev_hash == hash)
        })
    };
    let has_previous = |j: usize| (0..files.len()).any(|i| i != j && next_of(i) == Some(j));
    let mut used = vec![false; files.len()];
    let mut chains = Vec::new();
    // Chains from their first files, then whatever is left (a cycle cannot be made by a
    // writer; a forged one is walked once and breaks).
    let starts: Vec<usize> = (0..files.len())
        .filter(|&j| !has_previous(j))
        .chain(0..files.len())
        .collect();
    for start in starts {
        if used[start] {
            continue;
        }
        let mut order = Vec::new();
        let mut at = Some(start);
        while let Some(i) = at.filter(|&i| !used[i]) {
            used[i] = true;
            order.push(i);
            at = next_of(i);
        }
        chains.push(order);
    }
    chains
}

/// Where the walk stands.
struct Walk<'k> {
    key: Option<&'k Verifier>,
    report: ChainReport,
    prev: Option<(u64, String)>,
    last_checkpoint: Option<Checkpoint>,
    since_checkpoint: u64,
    unsigned: u64,
}

fn walk(files: &[&File], key: Option<&Verifier>, now: jiff::Timestamp) -> ChainReport {
    let mut walk = Walk {
        key,
        report: ChainReport {
            files: files.iter().map(|f| f.path.clone()).collect(),
            ..ChainReport::default()
        },
        prev: None,
        last_checkpoint: None,
        since_checkpoint: 0,
        unsigned: 0,
    };
    for (index, file) in files.iter().enumerate() {
        let last_file = index + 1 == files.len();
        // Whether the line before, in this file, was a checkpoint that closed it.
        let mut closed = false;
        for (number, line) in file.lines.iter().enumerate() {
            if let Err(why) = walk.line(line) {
                walk.report.problem = Some(Problem {
                    file: file.path.clone(),
                    line: number + 1,
                    why,
                });
                return walk.report;
            }
            let checkpoint = walk
                .last_checkpoint
                .as_ref()
                .filter(|_| walk.since_checkpoint == 0)
                .map(|c| c.reason);
            // Only kubegate opening the same file again may follow a closing checkpoint.
            let reopened = matches!(checkpoint, Some(Reason::Resumed | Reason::Continued));
            if closed && !reopened {
                walk.report.problem = Some(Problem {
                    file: file.path.clone(),
                    line: number + 1,
                    why: "a line after the checkpoint that closed this file, and not kubegate \
                          opening it again: it was added afterwards"
                        .to_owned(),
                });
                return walk.report;
            }
            closed = checkpoint.is_some_and(Reason::closes_file);
        }
        if file.torn > 0 {
            walk.report.notes.push(format!(
                "{} ends in a torn line of {} bytes (a write cut short; kubegate removes it \
                 when it opens the file again)",
                file.path.display(),
                file.torn
            ));
        }
        if last_file {
            walk.end(file, now);
        }
    }
    if walk.unsigned > 0 {
        walk.report.notes.push(match key {
            None => format!(
                "{} checkpoint signatures not checked (no --key): an edited log with its \
                 chain recomputed would pass",
                walk.unsigned
            ),
            Some(_) => format!("{} checkpoints are unsigned", walk.unsigned),
        });
    }
    walk.report
}

impl Walk<'_> {
    /// Checks one line against the one before; the reason if it breaks the chain.
    fn line(&mut self, line: &[u8]) -> Result<(), String> {
        let link: Link = serde_json::from_slice(line).map_err(|_| {
            "not a chained audit line (no JSON object with seq and prevHash): edited, or \
             not written by kubegate"
                .to_owned()
        })?;
        match &self.prev {
            None if link.prev_hash == chain::GENESIS => {
                if link.seq != 0 {
                    return Err(format!("a chain's first line has seq {}, not 0", link.seq));
                }
            }
            None => {
                // A file that goes on from another begins with kubegate's `continued`
                // checkpoint: anything else means its first lines were cut away.
                let continued = link.kind.as_deref() == Some("Checkpoint")
                    && serde_json::from_slice::<Checkpoint>(line)
                        .is_ok_and(|c| c.reason == Reason::Continued);
                if !continued {
                    return Err(
                        "the chain starts here without the checkpoint a continued file begins \
                         with: the lines before it were removed"
                            .to_owned(),
                    );
                }
                self.report.notes.push(format!(
                    "the chain starts at seq {}: the files before it were not given (or were \
                     removed)",
                    link.seq
                ));
            }
            Some((seq, hash)) => {
                let expected = seq.checked_add(1).ok_or("seq overflows")?;
                if link.seq != expected {
                    return Err(if link.seq > expected {
                        format!(
                            "seq jumps from {seq} to {}: {} lines were removed before this one",
                            link.seq,
                            link.seq - expected
                        )
                    } else {
                        format!(
                            "seq goes from {seq} back to {}: lines were inserted or reordered",
                            link.seq
                        )
                    });
                }
                if &link.prev_hash != hash {
                    return Err(
                        "prevHash does not match the line before: that line was edited (or \
                         this one was, or one was swapped in)"
                            .to_owned(),
                    );
                }
            }
        }
        if link.kind.as_deref() == Some("Checkpoint") {
            self.checkpoint(line, &link)?;
        } else {
            self.report.records += 1;
            self.since_checkpoint += 1;
        }
        self.report.lines += 1;
        self.report.first_seq.get_or_insert(link.seq);
        self.report.last_seq = Some(link.seq);
        self.prev = Some((link.seq, chain::hash_of(line)));
        Ok(())
    }

    fn checkpoint(&mut self, line: &[u8], link: &Link) -> Result<(), String> {
        let checkpoint: Checkpoint = serde_json::from_slice(line)
            .map_err(|e| format!("a checkpoint that does not parse: {e}"))?;
        match (self.key, &checkpoint.signature) {
            (None, _) => self.unsigned += 1,
            (Some(_), None) => {
                return Err("an unsigned checkpoint where signed ones are expected".to_owned());
            }
            (Some(key), Some(signature)) => {
                let message = chain::signed_message(link.seq, &link.prev_hash, &checkpoint);
                if checkpoint.key_id.as_deref() != Some(key.id()) {
                    return Err(format!(
                        "a checkpoint signed with another key ({}), not {}",
                        checkpoint.key_id.as_deref().unwrap_or("none"),
                        key.id()
                    ));
                }
                if !key.verifies(&message, signature) {
                    return Err(
                        "a checkpoint whose signature does not verify: forged, or edited"
                            .to_owned(),
                    );
                }
            }
        }
        if checkpoint.reason == Reason::Resumed && checkpoint.previous_closed == Some(false) {
            self.report.notes.push(format!(
                "kubegate stopped without closing the log before seq {} (killed, or the \
                 machine went down); the {} records before were sealed when it resumed",
                link.seq, self.since_checkpoint
            ));
        }
        self.report.checkpoints += 1;
        self.since_checkpoint = 0;
        self.last_checkpoint = Some(checkpoint);
        Ok(())
    }

    /// Judges the chain's end: closed, live, or cut.
    fn end(&mut self, file: &File, now: jiff::Timestamp) {
        let Some(last) = &self.last_checkpoint else {
            if self.report.lines > 0 {
                self.report.problem = Some(Problem {
                    file: file.path.clone(),
                    line: file.lines.len(),
                    why: "no checkpoint at all: nothing in this chain is sealed".to_owned(),
                });
            }
            return;
        };
        if self.since_checkpoint == 0 && last.reason.closes_file() {
            if last.reason != Reason::Shutdown {
                self.report.continues_elsewhere = true;
                self.report.notes.push(format!(
                    "the chain goes on in a file after {} (rotated or reopened), not given",
                    file.path.display()
                ));
            }
            return;
        }
        let promised =
            i64::try_from(last.seals_within_seconds.saturating_mul(2)).unwrap_or(i64::MAX);
        let due = last
            .stage_timestamp
            .checked_add(jiff::SignedDuration::from_secs(promised))
            .unwrap_or(jiff::Timestamp::MAX);
        if now > due {
            self.report.problem = Some(Problem {
                file: file.path.clone(),
                line: file.lines.len(),
                why: format!(
                    "the log ends {} records after its last checkpoint ({}), with no \
                     checkpoint since though kubegate writes one every {} s: the tail was \
                     cut, or kubegate stopped without closing the log (killed, crashed)",
                    self.since_checkpoint, last.stage_timestamp, last.seals_within_seconds
                ),
            });
        } else {
            self.report.notes.push(format!(
                "a live log: the last {} records are chained but not yet sealed by a \
                 checkpoint (the next is due by {due})",
                self.since_checkpoint
            ));
        }
    }
}

#[cfg(test)]
mod tests;
