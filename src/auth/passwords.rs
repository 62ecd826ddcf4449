//! Password hashing and verification on a small, fixed pool of OS threads.
//!
//! argon2id with OWASP's parameters needs 19 MiB of working memory per hash. Run on
//! tokio's blocking pool (up to 512 threads, each allocating and freeing its own 19 MiB)
//! a burst of registrations or logins grew the process by gigabytes, and the system
//! allocator kept the freed blocks. Here each of `threads` workers allocates its block
//! once, on its first job, and reuses it for every hash after, so argon2 never holds more
//! than `threads × 19 MiB` however many requests arrive. Jobs wait in a bounded queue;
//! when it is full the caller is refused at once ([`PasswordError::Busy`], answered 503
//! with `Retry-After`) rather than queued without limit.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{anyhow, bail};
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

use crate::http::error::ApiError;

/// argon2id with OWASP's recommended minimum: 19 MiB, 2 passes, 1 lane.
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
pub const ARGON2_PASSES: u32 = 2;
const OUTPUT_LEN: usize = 32;

/// The salt hashed for a login of an unknown username, so that it costs one argon2 run
/// with the same parameters as checking a real password. Its output is thrown away.
const UNKNOWN_USER_SALT: &[u8] = b"pica-unknown-user-salt";

fn params() -> Params {
    Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, 1, Some(OUTPUT_LEN))
        .expect("valid argon2 parameters")
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Every thread is busy and the queue is full.
    #[error("Too many password checks in progress; retry shortly")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<PasswordError> for ApiError {
    fn from(err: PasswordError) -> Self {
        match err {
            PasswordError::Busy => ApiError::Unavailable(err.to_string()),
            PasswordError::Failed(e) => ApiError::Internal(e),
        }
    }
}

enum Work {
    Hash(String),
    /// `None`: the username is unknown; do the same work and answer false.
    Verify(String, Option<String>),
}

enum Done {
    Hashed(String),
    Verified(bool),
}

struct Job {
    work: Work,
    reply: oneshot::Sender<anyhow::Result<Done>>,
}

pub struct PasswordPool {
    queue: SyncSender<Job>,
    threads: usize,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    /// argon2 runs done (hashes and verifications, unknown users included).
    runs: AtomicU64,
    /// Requests refused because the queue was full.
    refused: AtomicU64,
}

impl PasswordPool {
    /// Starts `threads` workers (at least one) behind a queue of `queue` waiting jobs
    /// (at least one). The workers stop when the pool is dropped.
    pub fn new(threads: usize, queue: usize) -> Self {
        let threads = threads.max(1);
        let (tx, rx) = sync_channel::<Job>(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let counts = Arc::new(Counts::default());
        for i in 0..threads {
            let (rx, counts) = (rx.clone(), counts.clone());
            std::thread::Builder::new()
                .name(format!("pica-argon2-{i}"))
                .spawn(move || worker(&rx, &counts))
                .expect("spawn a password hashing thread");
        }
        Self {
            queue: tx,
            threads,
            counts,
        }
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// argon2 runs done so far: every hash and every password check.
    pub fn runs(&self) -> u64 {
        self.counts.runs.load(Ordering::Relaxed)
    }

    /// Requests refused so far because the pool was full.
    pub fn refused(&self) -> u64 {
        self.counts.refused.load(Ordering::Relaxed)
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`) for `password`.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        match self.submit(Work::Hash(password)).await? {
            Done::Hashed(phc) => Ok(phc),
            Done::Verified(_) => Err(anyhow!("hashing answered a verification").into()),
        }
    }

    /// Whether `password` matches the stored `hash`; with no hash (unknown user) the
    /// same argon2 work is done and the answer is false.
    pub async fn verify(
        &self,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, PasswordError> {
        match self.submit(Work::Verify(password, hash)).await? {
            Done::Verified(ok) => Ok(ok),
            Done::Hashed(_) => Err(anyhow!("verification answered a hash").into()),
        }
    }

    async fn submit(&self, work: Work) -> Result<Done, PasswordError> {
        let (reply, answer) = oneshot::channel();
        match self.queue.try_send(Job { work, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.counts.refused.fetch_add(1, Ordering::Relaxed);
                return Err(PasswordError::Busy);
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(anyhow!("the password hashing threads have stopped").into());
            }
        }
        Ok(answer
            .await
            .map_err(|_| anyhow!("a password hashing thread dropped its job"))??)
    }
}

fn worker(rx: &Mutex<Receiver<Job>>, counts: &Counts) {
    // Allocated on the first job, then reused for every hash this thread does.
    let mut memory: Vec<Block> = Vec::new();
    loop {
        // One worker at a time waits on the channel; the lock is released as soon as it
        // has a job, so the others can take the next one.
        let job = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else {
            return; // the pool was dropped
        };
        // The request gave up while queued (timeout, client gone): skip the work.
        if job.reply.is_closed() {
            continue;
        }
        if memory.is_empty() {
            memory = vec![Block::default(); params().block_count()];
        }
        counts.runs.fetch_add(1, Ordering::Relaxed);
        // A panic inside argon2 must not take the thread (and the pool's capacity) away.
        let done = std::panic::catch_unwind(AssertUnwindSafe(|| run(job.work, &mut memory)))
            .unwrap_or_else(|_| Err(anyhow!("password hashing panicked")));
        let _ = job.reply.send(done);
    }
}

fn run(work: Work, memory: &mut [Block]) -> anyhow::Result<Done> {
    match work {
        Work::Hash(password) => hash_with(password.as_bytes(), memory).map(Done::Hashed),
        Work::Verify(password, Some(phc)) => {
            verify_with(password.as_bytes(), &phc, memory).map(Done::Verified)
        }
        Work::Verify(password, None) => {
            let mut out = [0u8; OUTPUT_LEN];
            argon2()
                .hash_password_into_with_memory(
                    password.as_bytes(),
                    UNKNOWN_USER_SALT,
                    &mut out,
                    &mut *memory,
                )
                .map_err(|e| anyhow!("hashing failed: {e}"))?;
            Ok(Done::Verified(false))
        }
    }
}

/// What `Argon2::hash_password` produces, computed in the caller's memory.
fn hash_with(password: &[u8], memory: &mut [Block]) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_buf)
        .map_err(|e| anyhow!("salt: {e}"))?;
    let mut out = [0u8; OUTPUT_LEN];
    argon2()
        .hash_password_into_with_memory(password, salt_bytes, &mut out, memory)
        .map_err(|e| anyhow!("hashing failed: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params()).map_err(|e| anyhow!("params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| anyhow!("output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// What `Argon2::verify_password` decides, computed in the caller's memory. The hash's
/// own parameters are used, so hashes made with other settings still verify.
fn verify_with(password: &[u8], phc: &str, memory: &mut [Block]) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(phc).map_err(|e| anyhow!("stored hash: {e}"))?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| anyhow!("{e}"))?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| anyhow!("{e}"))?
        .unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(|e| anyhow!("stored hash: {e}"))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        bail!("stored hash has no salt or no output");
    };
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_buf)
        .map_err(|e| anyhow!("stored salt: {e}"))?;
    let mut buf = [0u8; Output::MAX_LENGTH];
    let out = &mut buf[..expected.len()];
    let hasher = Argon2::new(algorithm, version, params.clone());
    let result = if params.block_count() <= memory.len() {
        hasher.hash_password_into_with_memory(password, salt_bytes, out, memory)
    } else {
        // Stored with more memory than the pool's block: allocate for this one.
        hasher.hash_password_into(password, salt_bytes, out)
    };
    result.map_err(|e| anyhow!("hashing failed: {e}"))?;
    // `Output` compares in constant time.
    Ok(Output::new(out).map_err(|e| anyhow!("output: {e}"))? == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[tokio::test]
    async fn hashes_are_standard_phc_strings_both_ways() {
        let pool = PasswordPool::new(1, 4);
        let ours = pool.hash("correct horse 1".into()).await.unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        // The stock verifier accepts our hash...
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            argon2()
                .verify_password(b"correct horse 1", &parsed)
                .is_ok()
        );
        assert!(argon2().verify_password(b"wrong horse 1", &parsed).is_err());
        // ...and we accept the stock hasher's, including one with other parameters.
        let salt = SaltString::generate(&mut OsRng);
        let stock = argon2()
            .hash_password(b"battery staple 2", &salt)
            .unwrap()
            .to_string();
        assert!(
            pool.verify("battery staple 2".into(), Some(stock.clone()))
                .await
                .unwrap()
        );
        assert!(
            !pool
                .verify("battery staple 3".into(), Some(stock))
                .await
                .unwrap()
        );
        let bigger = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(2 * ARGON2_MEMORY_KIB, 1, 1, None).unwrap(),
        )
        .hash_password(b"bigger memory 4", &salt)
        .unwrap()
        .to_string();
        assert!(
            pool.verify("bigger memory 4".into(), Some(bigger))
                .await
                .unwrap()
        );
        // Reused memory does not leak into the next answer.
        assert!(
            pool.verify("correct horse 1".into(), Some(ours))
                .await
                .unwrap()
        );
        assert!(!pool.verify("correct horse 1".into(), None).await.unwrap());
        assert!(matches!(
            pool.verify("x".into(), Some("not a hash".into())).await,
            Err(PasswordError::Failed(_))
        ));
        assert_eq!(pool.runs(), 7);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let pool = Arc::new(PasswordPool::new(1, 2));
        // One job running plus two waiting fill the pool; the rest are refused.
        let jobs: Vec<_> = (0..10)
            .map(|i| {
                let pool = pool.clone();
                async move { pool.hash(format!("password-{i}")).await }
            })
            .collect();
        let results = futures_util::future::join_all(jobs).await;
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(PasswordError::Busy)))
            .count();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok + busy, 10);
        assert!((1..=3).contains(&ok), "ok {ok}, busy {busy}");
        assert_eq!(pool.refused(), busy as u64);
        assert_eq!(pool.runs(), ok as u64);
    }
}
