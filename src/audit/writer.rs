//! The audit log's one writer: a dedicated thread that owns the file, chains each line to the
//! one before, and commits records of concurrent calls in groups.
//!
//! Callers hand it encoded records over a bounded channel and wait (asynchronously) for its
//! answer; the thread never runs on the async workers. It takes everything waiting, seals each
//! record into the chain, writes the group in one buffer and, if any record of the group must be
//! durable, `fdatasync`s once before answering any waiter. A record that need not be durable (a
//! read's) may instead be appended by its caller, in place ([`Writer::append_now`] under the
//! shared lock), when the file is free, nothing waits for the thread and no rotation is due: the
//! same sealing and write, without the hop to the thread and back. A failed or short write is
//! cut back (`ftruncate`) to the last whole line before anything else is written, so no line is
//! ever glued to a fragment, and the chain goes on from the last line that is on disk.
//!
//! Checkpoints are written every so many records and seconds (also when idle), when a file is
//! rotated or reopened, and on shutdown; see [`super::chain`].

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::chain::{self, Checkpoint, Reason, Signer};

/// Where a record's writer answers: `Ok` once it is in the file (and on disk, if durable).
pub type Done = oneshot::Sender<Result<(), String>>;

/// A record waiting in a group: its object, whether it must be durable, its waiter.
type Pending = (Vec<u8>, bool, Done);

/// What callers ask of the writer.
pub enum Message {
    /// Append one record (a JSON object, without chain fields).
    Record {
        object: Vec<u8>,
        durable: bool,
        done: Done,
    },
    /// Close the file and open its path again (after logrotate moved it).
    Reopen {
        done: oneshot::Sender<Result<(), String>>,
    },
    /// Write the closing checkpoint and stop.
    Close { done: oneshot::Sender<()> },
}

/// How the writer seals and rotates.
pub struct Settings {
    pub path: PathBuf,
    pub signer: Option<Signer>,
    pub checkpoint_every: u64,
    pub checkpoint_interval: Duration,
    /// Rotate when the file reaches this size (0: never).
    pub max_file_bytes: u64,
    /// Also make records of reads durable before answering.
    pub sync_reads: bool,
}

/// What the writer reports about its work, for metrics.
pub trait Observer: Send + 'static {
    fn committed(&self, records: usize, synced: bool, took: Duration);
    fn failed(&self, records: usize);
}

/// No metrics.
pub struct Unobserved;

impl Observer for Unobserved {
    fn committed(&self, _: usize, _: bool, _: Duration) {}
    fn failed(&self, _: usize) {}
}

/// The most records committed in one group.
const MAX_GROUP: usize = 1024;

/// Where a chain ends: its last line's `seq` and hash (none yet: the next line is seq 0).
#[derive(Clone)]
struct Head {
    last: Option<u64>,
    hash: String,
}

impl Head {
    fn genesis() -> Head {
        Head {
            last: None,
            hash: chain::GENESIS.to_owned(),
        }
    }

    fn next_seq(&self) -> u64 {
        self.last.map_or(0, |seq| seq.saturating_add(1))
    }
}

/// The open file and where the chain stands.
pub struct Writer {
    settings: Settings,
    file: File,
    /// Bytes of whole lines in the file: what a failed write is cut back to.
    len: u64,
    /// A failed write whose cut-back failed too: retried before anything else is written.
    needs_repair: bool,
    /// The chain's end, counting lines in the buffer.
    chain: Head,
    /// The chain's end on disk: what a failed write rolls back to.
    written: Head,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    /// The checkpoint counters as they are on disk, restored with `written`.
    written_checkpoint: (u64, Instant),
    /// The size at which to rotate next (pushed on when a rotation fails, so a failing rename is
    /// not retried on every commit).
    rotate_at: u64,
    /// A new file's `Continued` checkpoint is still to be written.
    pending_continued: bool,
    /// The closing checkpoint is written: nothing more is appended.
    closed: bool,
    buffer: Vec<u8>,
}

/// The writer, shared by its thread and by callers appending in place.
pub type Shared = Arc<Mutex<Writer>>;

/// Takes the writer. A panic while it was held leaves it as consistent as any failed write does
/// (the chain rolls back to what is on disk before the next line), so the lock is taken anyway.
fn hold(shared: &Mutex<Writer>) -> MutexGuard<'_, Writer> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Why the audit log cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the audit log {0}")]
    Io(String, #[source] std::io::Error),
    #[error(
        "the last line of the audit log {0} is not part of a kubegate hash chain (written by an \
         older kubegate, or edited); move the file aside to start a new chain"
    )]
    Unchained(String),
}

impl Writer {
    /// Opens (creating, owner-only) the log for appending. A torn last line (a write cut short
    /// by a crash) is removed; an existing chain is resumed with a checkpoint.
    pub fn open(settings: Settings) -> Result<Writer, OpenError> {
        let name = settings.path.display().to_string();
        let io = |e| OpenError::Io(name.clone(), e);
        let (mut file, existed) = open_append(&settings.path).map_err(io)?;
        let (len, last) = last_whole_line(&mut file).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        if last.is_none() && file_len > 0 {
            // Not one whole line: not a log kubegate wrote (a wrong path?); leave it be.
            return Err(OpenError::Unchained(name));
        }
        if file_len > len {
            tracing::warn!(
                audit.path = %name,
                bytes = file_len - len,
                "the audit log ended in a torn line (a write cut short); removed it"
            );
            file.set_len(len).map_err(io)?;
        }
        let mut writer = Writer {
            settings,
            file,
            len,
            needs_repair: false,
            chain: Head::genesis(),
            written: Head::genesis(),
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            written_checkpoint: (0, Instant::now()),
            rotate_at: 0,
            pending_continued: false,
            closed: false,
            buffer: Vec::new(),
        };
        writer.rotate_at = writer.settings.max_file_bytes;
        let reason = match last {
            None => Reason::Started,
            Some(line) => {
                let link: chain::Link = serde_json::from_slice(&line)
                    .map_err(|_| OpenError::Unchained(name.clone()))?;
                writer.chain = Head {
                    last: Some(link.seq),
                    hash: chain::hash_of(&line),
                };
                writer.written = writer.chain.clone();
                let closed = link.kind.as_deref() == Some("Checkpoint")
                    && serde_json::from_slice::<Checkpoint>(&line)
                        .is_ok_and(|c| c.reason.closes_file());
                if !closed {
                    tracing::warn!(
                        audit.path = %name,
                        "the audit log was not closed by kubegate (killed?); resuming its chain"
                    );
                }
                writer.buffer_checkpoint(Reason::Resumed, Some(closed));
                writer.commit_buffer(true).map_err(io)?;
                return Ok(writer);
            }
        };
        writer.buffer_checkpoint(reason, None);
        writer.commit_buffer(true).map_err(io)?;
        if !existed {
            sync_parent(&writer.settings.path);
        }
        Ok(writer)
    }

    /// Runs until `Close` or until every sender is gone. `queued` counts the messages sent and
    /// not yet handled; a group leaves it only once written, so callers do not append in place
    /// ahead of records already waiting for the thread.
    pub fn run(
        shared: Shared,
        messages: Receiver<Message>,
        queued: Arc<AtomicUsize>,
        observer: impl Observer,
    ) {
        let mut group = Vec::new();
        loop {
            let due = {
                let writer = hold(&shared);
                writer
                    .settings
                    .checkpoint_interval
                    .saturating_sub(writer.last_checkpoint.elapsed())
            };
            let first = match messages.recv_timeout(due) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => {
                    let mut writer = hold(&shared);
                    // Records appended in place may have written a checkpoint meanwhile.
                    if writer.last_checkpoint.elapsed() >= writer.settings.checkpoint_interval {
                        writer.periodic_checkpoint();
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    hold(&shared).close();
                    return;
                }
            };
            group.push(first);
            while group.len() < MAX_GROUP {
                match messages.try_recv() {
                    Ok(message) => group.push(message),
                    Err(_) => break,
                }
            }
            let taken = group.len();
            let mut writer = hold(&shared);
            let stop = writer.handle(&mut group, &observer);
            queued.fetch_sub(taken, Ordering::Release);
            if stop {
                return;
            }
            // Under a steady stream of records the wait above never times out.
            if writer.last_checkpoint.elapsed() >= writer.settings.checkpoint_interval {
                writer.periodic_checkpoint();
            }
        }
    }

    /// Appends one record that need not be durable, in place: sealed and written as the thread
    /// would in a group of one. `None` once the log is closed. A rotation (a sync, a rename, a
    /// new file) is left to the thread: see [`Writer::rotation_due`].
    pub fn append_now(
        &mut self,
        object: &[u8],
        observer: &impl Observer,
    ) -> Option<Result<(), String>> {
        if self.closed {
            return None;
        }
        Some(self.commit_objects(&[object], self.settings.sync_reads, observer))
    }

    /// The file has passed its size limit: the next record goes through the thread, which
    /// rotates once it is written.
    pub fn rotation_due(&self) -> bool {
        self.settings.max_file_bytes > 0 && self.len >= self.rotate_at
    }

    /// Handles a group in arrival order; true when asked to stop.
    fn handle(&mut self, group: &mut Vec<Message>, observer: &impl Observer) -> bool {
        let mut records = Vec::new();
        for message in group.drain(..) {
            match message {
                Message::Record {
                    object,
                    durable,
                    done,
                } => records.push((object, durable, done)),
                Message::Reopen { done } => {
                    self.commit(std::mem::take(&mut records), observer);
                    let _ = done.send(self.reopen());
                }
                Message::Close { done } => {
                    self.commit(std::mem::take(&mut records), observer);
                    self.close();
                    let _ = done.send(());
                    return true;
                }
            }
        }
        self.commit(records, observer);
        false
    }

    /// Writes a group of records, syncs if any must be durable, then answers their waiters.
    fn commit(&mut self, records: Vec<Pending>, observer: &impl Observer) {
        if records.is_empty() {
            return;
        }
        let sync = self.settings.sync_reads || records.iter().any(|(_, durable, _)| *durable);
        let objects: Vec<&[u8]> = records
            .iter()
            .map(|(object, _, _)| object.as_slice())
            .collect();
        let answer = self.commit_objects(&objects, sync, observer);
        for (_, _, done) in records {
            let _ = done.send(answer.clone());
        }
        self.rotate_if_due(&answer);
    }

    /// Seals and writes `objects` as the chain's next lines (with any checkpoint that falls due
    /// among them), synced if `sync`.
    fn commit_objects(
        &mut self,
        objects: &[&[u8]],
        sync: bool,
        observer: &impl Observer,
    ) -> Result<(), String> {
        let started = Instant::now();
        let count = objects.len();
        if let Err(error) = self.start_continued() {
            tracing::error!(%error, records = count, "cannot write to the audit log");
            observer.failed(count);
            return Err(format!("the audit log cannot be written: {error}"));
        }
        for object in objects {
            self.buffer_line(object);
            if self.since_checkpoint >= self.settings.checkpoint_every {
                self.buffer_checkpoint(Reason::Periodic, None);
            }
        }
        let answer = self.commit_buffer(sync).map_err(|error| {
            tracing::error!(%error, records = count, "cannot write to the audit log");
            format!("the audit log cannot be written: {error}")
        });
        match &answer {
            Ok(()) => observer.committed(count, sync, started.elapsed()),
            Err(_) => observer.failed(count),
        }
        answer
    }

    /// Rotates once a successful write took the file past its limit.
    fn rotate_if_due(&mut self, answer: &Result<(), String>) {
        if answer.is_ok() && self.rotation_due() {
            self.rotate();
        }
    }

    /// Seals one object into the buffer as the chain's next line.
    fn buffer_line(&mut self, object: &[u8]) {
        let seq = self.chain.next_seq();
        self.chain.hash = chain::seal_into(&mut self.buffer, object, seq, &self.chain.hash);
        self.chain.last = Some(seq);
        self.since_checkpoint += 1;
    }

    /// Seals a checkpoint into the buffer.
    fn buffer_checkpoint(&mut self, reason: Reason, previous_closed: Option<bool>) {
        let seq = self.chain.next_seq();
        let mut checkpoint = Checkpoint {
            kind: "Checkpoint".to_owned(),
            api_version: "audit.kubegate.io/v1".to_owned(),
            reason,
            stage_timestamp: jiff::Timestamp::now(),
            seals_within_seconds: self.settings.checkpoint_interval.as_secs().max(1),
            previous_closed,
            key_id: self.settings.signer.as_ref().map(|s| s.id().to_owned()),
            signature: None,
        };
        if let Some(signer) = &self.settings.signer {
            let message = chain::signed_message(seq, &self.chain.hash, &checkpoint);
            checkpoint.signature = Some(signer.sign(&message));
        }
        // A struct of strings, numbers and a timestamp always encodes.
        let object = serde_json::to_vec(&checkpoint).unwrap_or_default();
        self.buffer_line(&object);
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
    }

    /// Writes the buffer as it stands; on failure cuts the file back and forgets the buffer's
    /// lines, so the chain goes on from what is on disk.
    fn commit_buffer(&mut self, sync: bool) -> std::io::Result<()> {
        let result = self.try_write(sync);
        match result {
            Ok(()) => {
                self.written = self.chain.clone();
                self.written_checkpoint = (self.since_checkpoint, self.last_checkpoint);
            }
            Err(_) => {
                self.chain = self.written.clone();
                (self.since_checkpoint, self.last_checkpoint) = self.written_checkpoint;
            }
        }
        self.buffer.clear();
        result
    }

    fn try_write(&mut self, sync: bool) -> std::io::Result<()> {
        if self.needs_repair {
            self.file.set_len(self.len)?;
            self.needs_repair = false;
        }
        if let Err(error) = self.file.write_all(&self.buffer) {
            self.cut_back();
            return Err(error);
        }
        if sync && let Err(error) = self.file.sync_data() {
            // What reached the disk is unknown: cut back to the last line known there.
            self.cut_back();
            return Err(error);
        }
        self.len += self.buffer.len() as u64;
        Ok(())
    }

    fn cut_back(&mut self) {
        if self.file.set_len(self.len).is_err() {
            self.needs_repair = true;
        }
    }

    fn periodic_checkpoint(&mut self) {
        self.buffer_checkpoint(Reason::Periodic, None);
        if let Err(error) = self.commit_buffer(true) {
            tracing::error!(%error, "cannot write an audit checkpoint");
        }
    }

    /// Ends the current file with `closing` and starts the file at `path` from the chain. The
    /// new file is opened before the old one is closed: if it cannot be, kubegate goes on
    /// writing the old file (under its new name, if it was renamed), which stays unclosed.
    fn switch(&mut self, closing: Reason, rename_to: Option<&Path>) -> Result<(), String> {
        if let Some(to) = rename_to {
            std::fs::rename(&self.settings.path, to)
                .map_err(|e| format!("cannot rotate the audit log to {}: {e}", to.display()))?;
        }
        let (file, _) = open_append(&self.settings.path)
            .map_err(|e| format!("cannot open the audit log again: {e}"))?;
        self.buffer_checkpoint(closing, None);
        if let Err(error) = self.commit_buffer(true) {
            // The new file's first checkpoint chains on from the old file's last line anyway.
            tracing::error!(%error, "cannot write the closing checkpoint of the old audit log");
        }
        self.len = file.metadata().map(|m| m.len()).unwrap_or(0);
        self.file = file;
        self.needs_repair = false;
        self.pending_continued = true;
        self.start_continued()
            .map_err(|e| format!("cannot start the new audit log: {e}"))?;
        sync_parent(&self.settings.path);
        Ok(())
    }

    /// Writes the `Continued` checkpoint a new file begins with, if it is still owed (a failed
    /// attempt is made again before the next record).
    fn start_continued(&mut self) -> std::io::Result<()> {
        if !self.pending_continued {
            return Ok(());
        }
        self.buffer_checkpoint(Reason::Continued, None);
        self.commit_buffer(true)?;
        self.pending_continued = false;
        Ok(())
    }

    fn rotate(&mut self) {
        let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.6fZ");
        let mut name = self.settings.path.clone().into_os_string();
        name.push(format!(".{stamp}"));
        let to = PathBuf::from(name);
        match self.switch(Reason::Rotated, Some(&to)) {
            Ok(()) => {
                self.rotate_at = self.settings.max_file_bytes;
                tracing::info!(audit.rotated_to = %to.display(), "rotated the audit log");
            }
            Err(error) => {
                // Try again once the file has grown by another limit, not on every commit.
                self.rotate_at = self.len.saturating_add(self.settings.max_file_bytes);
                tracing::error!(%error, "audit log rotation failed; writing on to the same file");
            }
        }
    }

    fn reopen(&mut self) -> Result<(), String> {
        self.switch(Reason::Reopening, None)?;
        tracing::info!(audit.path = %self.settings.path.display(), "reopened the audit log");
        Ok(())
    }

    fn close(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        self.buffer_checkpoint(Reason::Shutdown, None);
        if let Err(error) = self.commit_buffer(true) {
            tracing::error!(%error, "cannot close the audit log");
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<(File, bool)> {
    use std::os::unix::fs::OpenOptionsExt;
    let existed = path.exists();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    Ok((file, existed))
}

/// Makes a new file's directory entry durable.
fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(dir) = File::open(parent)
    {
        let _ = dir.sync_all();
    }
}

/// The length up to the end of the last newline, and the last whole line (without newline).
fn last_whole_line(file: &mut File) -> std::io::Result<(u64, Option<Vec<u8>>)> {
    let len = file.metadata()?.len();
    let Some(end) = last_newline_before(file, len)? else {
        return Ok((0, None));
    };
    let line = read_line_before(file, end + 1)?;
    Ok((end + 1, line))
}

/// The whole line that ends (with its newline) just before `end`.
fn read_line_before(file: &mut File, end: u64) -> std::io::Result<Option<Vec<u8>>> {
    if end == 0 {
        return Ok(None);
    }
    let start = last_newline_before(file, end - 1)?.map_or(0, |n| n + 1);
    let mut line = vec![0; usize::try_from(end - 1 - start).unwrap_or(0)];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut line)?;
    Ok(Some(line))
}

/// The offset of the last `\n` before `end`, reading backwards in blocks.
fn last_newline_before(file: &mut File, end: u64) -> std::io::Result<Option<u64>> {
    const BLOCK: u64 = 64 * 1024;
    let mut block = vec![0; BLOCK as usize];
    let mut stop = end;
    while stop > 0 {
        let start = stop.saturating_sub(BLOCK);
        let chunk = &mut block[..usize::try_from(stop - start).unwrap_or(0)];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(at) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(start + at as u64));
        }
        stop = start;
    }
    Ok(None)
}
