//! The embedded store: one SQLite file in the layout of Spin's default key-value store
//! (`.spin/sqlite_key_value.db`), so a data directory moves between `spin up` and
//! `mcp-auth serve`.
//!
//! Layout (Spin's): table `spin_key_value (store TEXT, key TEXT, value BLOB, PRIMARY KEY (store,
//! key))`; `store` holds the label, so several labels share one file; counters are 8-byte
//! little-endian integers in `value`.
//!
//! Durability: WAL journal. A write is answered once its transaction has committed, which
//! puts it in the OS page cache: it survives the host process being killed. Surviving a power
//! loss or an OS crash takes an fsync of the WAL, which [`SqliteFile::sync`] does and the host
//! calls before every response, so nothing a client was told is ever lost (a rolled-back
//! redemption counter would let an authorization code be used twice). SQLite runs with
//! `synchronous=NORMAL`, which is crash-consistent in WAL mode: after a power loss the file
//! holds a prefix of the committed transactions, and every transaction a response depended on
//! lies within that prefix because the response waited for a sync that covered it. The
//! difference from `synchronous=FULL` is what waits for the disk: not every write (a refresh
//! grant makes about twenty, one after the other, each paying a multi-millisecond fsync), but
//! every response, and concurrent responses share one fsync.
//!
//! Group commit keeps the writer cheap: one writer thread owns the only writing connection
//! (SQLite allows one writer at a time anyway) and runs every write waiting in its queue in one
//! `BEGIN IMMEDIATE` transaction, each in its own savepoint so one refused write does not undo
//! the others, then commits once and only then answers them all. Within a batch writes run in
//! arrival order and see each other, so `increment` and `compare_and_swap` stay atomic.
//!
//! Reads go to a few reader connections, which WAL lets run beside the writer, on tokio's
//! blocking pool. The busy timeout covers another process (Spin) holding the write lock on the
//! same file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tokio::sync::oneshot;

use crate::{counter, Error, Store};

/// How long a statement waits for another process's lock before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Most writes one commit carries: bounds the latency a write waits behind others.
const MAX_BATCH: usize = 256;
/// Reader connections per file: the blocking pool rarely runs more SQLite reads at once on the
/// small machines this host targets.
const READERS: usize = 4;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS spin_key_value (
    store TEXT NOT NULL,
    key   TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (store, key)
)";
const SELECT_VALUE: &str = "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2";
const SELECT_EXISTS: &str = "SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2";
const SELECT_KEYS: &str = "SELECT key FROM spin_key_value WHERE store = ?1";
const UPSERT: &str = "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
    ON CONFLICT (store, key) DO UPDATE SET value = excluded.value";
const DELETE: &str = "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2";

/// One open SQLite file: its connections, shared by every label stored in it.
#[derive(Clone)]
pub struct SqliteFile {
    inner: Arc<Connections>,
}

struct Connections {
    path: PathBuf,
    /// The writer thread's queue; the thread ends when the last sender goes.
    writes: mpsc::Sender<Write>,
    /// Transactions committed so far (counted by the writer thread, once each commit is done).
    commits: Arc<AtomicU64>,
    /// How many of them an fsync of the WAL has covered.
    durable: AtomicU64,
    /// Whether the directory entry of the WAL has been flushed (once is enough: the WAL keeps
    /// its name while the file is open).
    wal_named: std::sync::atomic::AtomicBool,
    /// Taken by the one caller of [`SqliteFile::sync`] that flushes; the others wait for it
    /// and usually find their commits covered.
    flushing: tokio::sync::Mutex<()>,
    readers: Mutex<Vec<Connection>>,
    reader_returned: Condvar,
}

impl SqliteFile {
    /// Open (creating if needed, with its parent directories) the file at `path` and make sure
    /// it has Spin's table. Blocking: call it at start-up or from a blocking task.
    pub fn open(path: &Path) -> Result<Self, Error> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error(format!("cannot create directory {}: {e}", parent.display())))?;
        }
        let failed = |e: rusqlite::Error| Error(format!("cannot open {}: {e}", path.display()));
        let writer = Connection::open(path).map_err(failed)?;
        writer.busy_timeout(BUSY_TIMEOUT).map_err(failed)?;
        // `journal_mode` answers with the mode now in force; anything but WAL (a file system
        // without shared memory, for instance) would silently lose reader concurrency.
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(failed)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error(format!(
                "cannot open {}: SQLite refused WAL journaling (got `{mode}`)",
                path.display()
            )));
        }
        writer
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(failed)?;
        writer.execute(CREATE_TABLE, []).map_err(failed)?;

        let readers = (0..READERS)
            .map(|_| {
                let reader = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                reader.busy_timeout(BUSY_TIMEOUT)?;
                Ok(reader)
            })
            .collect::<Result<Vec<_>, rusqlite::Error>>()
            .map_err(failed)?;

        let commits = Arc::new(AtomicU64::new(0));
        Ok(Self {
            inner: Arc::new(Connections {
                path: path.to_owned(),
                writes: start_writer(writer, path, commits.clone())?,
                commits,
                durable: AtomicU64::new(0),
                wal_named: std::sync::atomic::AtomicBool::new(false),
                flushing: tokio::sync::Mutex::new(()),
                readers: Mutex::new(readers),
                reader_returned: Condvar::new(),
            }),
        })
    }

    /// The store of one label (`store` column) in this file.
    pub fn store(&self, label: &str) -> SqliteStore {
        SqliteStore {
            file: self.clone(),
            label: label.into(),
        }
    }

    /// The file's path, as given to [`SqliteFile::open`].
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Make every transaction committed so far durable (an fsync of the WAL, and of its
    /// directory the first time, which is what `synchronous=FULL` adds to each commit). Callers that arrive
    /// while a flush runs wait for it and then flush once for all of them, if still needed.
    pub async fn sync(&self) -> Result<(), Error> {
        let inner = &self.inner;
        let wanted = inner.commits.load(Ordering::Acquire);
        if inner.durable.load(Ordering::Acquire) >= wanted {
            return Ok(());
        }
        let _flushing = inner.flushing.lock().await;
        if inner.durable.load(Ordering::Acquire) >= wanted {
            return Ok(());
        }
        let covered = inner.commits.load(Ordering::Acquire);
        let path = inner.path.clone();
        let named = inner.wal_named.load(Ordering::Acquire);
        run_blocking(move || flush_wal(&path, !named)).await?;
        inner.wal_named.store(true, Ordering::Release);
        inner.durable.fetch_max(covered, Ordering::AcqRel);
        Ok(())
    }

    /// Run `op` on a reader connection: right here when one is free, else on the blocking pool.
    ///
    /// A read is one primary-key lookup in pages SQLite's cache or the OS almost always holds,
    /// a few microseconds; a hand-off to the blocking pool costs two context switches, more
    /// than the read. Under load those switches were the largest part of an introspection.
    async fn read<T, F>(&self, op: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        if let Some(reader) = self.inner.try_take_reader() {
            return self.inner.read_on(reader, op);
        }
        let inner = self.inner.clone();
        run_blocking(move || {
            let reader = inner.take_reader();
            inner.read_on(reader, op)
        })
        .await
    }

    /// Queue `op` for the writer thread and wait until the transaction that ran it committed.
    async fn write<T, F>(&self, op: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Failure> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let inner = self.inner.clone();
        let write: Write = Box::new(move |began: Option<&Connection>| {
            let outcome = began.map(|conn| {
                in_savepoint(conn, op).map_err(|failure| match failure {
                    Failure::Sql(e) => inner.error(e),
                    Failure::Refused(e) => e,
                })
            });
            Box::new(move |committed: Result<(), &Error>| {
                let result = match (committed, outcome) {
                    (Err(e), _) => Err(e.clone()),
                    (Ok(()), Some(outcome)) => outcome,
                    (Ok(()), None) => Err(inner.error_text("a write was skipped")),
                };
                let _ = answer.send(result);
            })
        });
        self.inner
            .writes
            .send(write)
            .map_err(|_| self.inner.error_text("the writer thread has stopped"))?;
        answered
            .await
            .map_err(|_| self.inner.error_text("the writer thread dropped a write"))?
    }
}

/// Why a write did not happen: SQLite failed, or the operation refused the stored data.
enum Failure {
    Sql(rusqlite::Error),
    Refused(Error),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self::Refused(e)
    }
}

/// A write waiting for the writer thread: it runs inside the batch's transaction (given the
/// connection once `BEGIN` succeeded, nothing otherwise) and returns what answers its caller
/// once the batch's fate is known.
type Write = Box<dyn FnOnce(Option<&Connection>) -> Answer + Send>;
type Answer = Box<dyn FnOnce(Result<(), &Error>) + Send>;

/// fsync the WAL of the database at `path` (the same inode SQLite writes through its own
/// descriptor) and, with `directory`, the directory holding it, so that its name is durable.
fn flush_wal(path: &Path, directory: bool) -> Result<(), Error> {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let failed = |e: std::io::Error| Error(format!("cannot flush {}: {e}", path.display()));
    std::fs::File::open(&wal)
        .and_then(|f| f.sync_data())
        .map_err(failed)?;
    if !directory {
        return Ok(());
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    std::fs::File::open(dir.unwrap_or(Path::new(".")))
        .and_then(|d| d.sync_all())
        .map_err(failed)
}

/// Start the thread that owns `conn` and commits queued writes in batches, counting commits.
fn start_writer(
    conn: Connection,
    path: &Path,
    commits: Arc<AtomicU64>,
) -> Result<mpsc::Sender<Write>, Error> {
    let (writes, queue) = mpsc::channel::<Write>();
    let thread_path = path.to_owned();
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || {
            while let Ok(first) = queue.recv() {
                let batch: Vec<Write> = std::iter::once(first)
                    .chain(std::iter::from_fn(|| queue.try_recv().ok()).take(MAX_BATCH - 1))
                    .collect();
                commit_batch(&conn, &thread_path, batch, &commits);
            }
        })
        .map_err(|e| {
            Error(format!(
                "cannot start the writer thread for {}: {e}",
                path.display()
            ))
        })?;
    Ok(writes)
}

/// Run `batch` in one `BEGIN IMMEDIATE` transaction, commit, then answer every write.
fn commit_batch(conn: &Connection, path: &Path, batch: Vec<Write>, commits: &AtomicU64) {
    let began = conn.execute_batch("BEGIN IMMEDIATE");
    let answers: Vec<Answer> = batch
        .into_iter()
        .map(|write| write(began.is_ok().then_some(conn)))
        .collect();
    let committed = began
        .and_then(|()| conn.execute_batch("COMMIT"))
        .map_err(|e| {
            // A failed COMMIT can leave the transaction open: close it for the next batch.
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Error(format!("{}: {e}", path.display()))
        });
    if committed.is_ok() {
        // Before any answer: a caller's later `sync` then covers its write.
        commits.fetch_add(1, Ordering::AcqRel);
    }
    for answer in answers {
        answer(committed.as_ref().map(|_| ()));
    }
}

/// Run `op` in a savepoint: kept if it succeeds, undone if it fails, the batch going on.
fn in_savepoint<T>(
    conn: &Connection,
    op: impl FnOnce(&Connection) -> Result<T, Failure>,
) -> Result<T, Failure> {
    conn.execute_batch("SAVEPOINT write")?;
    let outcome = op(conn);
    let end = match outcome {
        Ok(_) => "RELEASE write",
        Err(_) => "ROLLBACK TO write; RELEASE write",
    };
    conn.execute_batch(end)?;
    outcome
}

impl Connections {
    fn take_reader(&self) -> Connection {
        let mut readers = lock(&self.readers);
        loop {
            if let Some(reader) = readers.pop() {
                return reader;
            }
            readers = self
                .reader_returned
                .wait(readers)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Run `op` on `reader`, then give the connection back.
    fn read_on<T>(
        &self,
        reader: Connection,
        op: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, Error> {
        let result = op(&reader);
        self.return_reader(reader);
        result.map_err(|e| self.error(e))
    }

    fn try_take_reader(&self) -> Option<Connection> {
        lock(&self.readers).pop()
    }

    fn return_reader(&self, reader: Connection) {
        lock(&self.readers).push(reader);
        self.reader_returned.notify_one();
    }

    fn error(&self, e: rusqlite::Error) -> Error {
        self.error_text(e)
    }

    fn error_text(&self, e: impl std::fmt::Display) -> Error {
        Error(format!("{}: {e}", self.path.display()))
    }
}

/// A label's view of a [`SqliteFile`].
#[derive(Clone)]
pub struct SqliteStore {
    file: SqliteFile,
    label: Arc<str>,
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let (label, key) = (self.label.clone(), key.to_owned());
        self.file
            .read(move |conn| select_value(conn, &label, &key))
            .await
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        let (label, key, value) = (self.label.clone(), key.to_owned(), value.to_vec());
        self.file
            .write(move |tx| Ok(upsert(tx, &label, &key, &value)?))
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let (label, key) = (self.label.clone(), key.to_owned());
        self.file
            .write(move |tx| {
                tx.prepare_cached(DELETE)?.execute((&*label, &key))?;
                Ok(())
            })
            .await
    }

    /// One read transaction, so every value comes from the same snapshot of the file.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let (label, keys) = (self.label.clone(), keys.to_vec());
        self.file
            .read(move |conn| {
                conn.execute_batch("BEGIN")?;
                let values: rusqlite::Result<Vec<_>> = keys
                    .iter()
                    .map(|key| select_value(conn, &label, key))
                    .collect();
                // Ended whatever happened, so the connection goes back to the pool outside a
                // transaction.
                let ended = conn.execute_batch("COMMIT");
                let values = values?;
                ended.map(|()| values)
            })
            .await
    }

    /// One write of the group commit: every pair or none.
    async fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), Error> {
        let (label, entries) = (self.label.clone(), entries.to_vec());
        self.file
            .write(move |tx| {
                for (key, value) in &entries {
                    upsert(tx, &label, key, value)?;
                }
                Ok(())
            })
            .await
    }

    /// One write of the group commit: every key or none.
    async fn delete_many(&self, keys: &[String]) -> Result<(), Error> {
        let (label, keys) = (self.label.clone(), keys.to_vec());
        self.file
            .write(move |tx| {
                let mut delete = tx.prepare_cached(DELETE)?;
                for key in &keys {
                    delete.execute((&*label, key))?;
                }
                Ok(())
            })
            .await
    }

    async fn exists(&self, key: &str) -> Result<bool, Error> {
        let (label, key) = (self.label.clone(), key.to_owned());
        self.file
            .read(move |conn| conn.prepare_cached(SELECT_EXISTS)?.exists((&*label, &key)))
            .await
    }

    async fn list_keys(&self) -> Result<Vec<String>, Error> {
        let label = self.label.clone();
        self.file
            .read(move |conn| {
                conn.prepare_cached(SELECT_KEYS)?
                    .query_map([&*label], |row| row.get(0))?
                    .collect()
            })
            .await
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        let (label, key) = (self.label.clone(), key.to_owned());
        self.file
            .write(move |tx| {
                let stored = select_value(tx, &label, &key)?;
                let new = counter::add(&key, counter::decode(&key, stored.as_deref())?, delta)?;
                upsert(tx, &label, &key, &counter::encode(new))?;
                Ok(new)
            })
            .await
    }

    async fn sync(&self) -> Result<(), Error> {
        self.file.sync().await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, Error> {
        let (label, key) = (self.label.clone(), key.to_owned());
        let (current, new) = (current.map(<[u8]>::to_vec), new.to_vec());
        self.file
            .write(move |tx| {
                if select_value(tx, &label, &key)? != current {
                    return Ok(false);
                }
                upsert(tx, &label, &key, &new)?;
                Ok(true)
            })
            .await
    }
}

fn upsert(conn: &Connection, label: &str, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached(UPSERT)?.execute((label, key, value))?;
    Ok(())
}

fn select_value(conn: &Connection, label: &str, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached(SELECT_VALUE)?
        .query_row((label, key), |row| row.get(0))
        .optional()
}

/// Run blocking SQLite work off the async executor.
async fn run_blocking<T, F>(work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error(format!("SQLite task failed: {e}")))?
}

/// Lock the reader list, which stays whole even if a holder panicked: it is only pushed and
/// popped.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With every reader connection busy, a read waits on the blocking pool for one to come
    /// back, then answers as a read on the calling task does.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_waits_for_a_reader_when_all_are_busy() {
        let dir = tempfile::tempdir().unwrap();
        let file = SqliteFile::open(&dir.path().join("kv.db")).unwrap();
        let store = file.store("default");
        store.set("k", b"v").await.unwrap();
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        let busy: Vec<Connection> = std::iter::from_fn(|| file.inner.try_take_reader()).collect();
        assert_eq!(busy.len(), READERS);
        let waiting = tokio::spawn({
            let store = store.clone();
            async move { store.get("k").await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "read without a reader connection");
        for reader in busy {
            file.inner.return_reader(reader);
        }
        assert_eq!(waiting.await.unwrap().unwrap().as_deref(), Some(&b"v"[..]));
    }
}
