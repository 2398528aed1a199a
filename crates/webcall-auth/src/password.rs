//! argon2id password hashing (OWASP's parameters: 19 MiB, 2 passes, 1 lane) on a
//! fixed pool of worker threads.
//!
//! Each worker owns one 19 MiB block buffer and reuses it for every hash, so the
//! process's memory grows by at most `workers × 19 MiB` however many logins
//! arrive at once (tokio's blocking pool ran each hash on any of its many
//! threads, and every thread's malloc arena kept its 19 MiB: hundreds of MB after
//! a burst). Work waits in a bounded queue in front of the workers; beyond it a
//! request is refused at once with [`DomainError::Overloaded`] (HTTP 503).

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash as PhcHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use rand::distributions::{Alphanumeric, DistString};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use webcall_domain::model::{Password, PasswordHash};
use webcall_domain::ports::PasswordHasher;
use webcall_domain::DomainError;

/// How many hashes may wait per worker before new ones are refused. A hash takes
/// tens of milliseconds, so a full queue is well under a second of work.
pub const QUEUE_PER_WORKER: usize = 16;

/// What a refused request is told to wait before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Hashes and verifies with argon2id on its own worker threads; see the module docs.
pub struct Argon2Hasher {
    jobs: SyncSender<Job>,
    /// Verified against when the account does not exist, to equalise timing.
    dummy: String,
    workers: usize,
}

enum Task {
    Hash(SecretString),
    Verify {
        password: SecretString,
        hash: String,
    },
}

enum Done {
    Hashed(String),
    Verified(bool),
}

type Reply = Box<dyn FnOnce(Result<Done, argon2::password_hash::Error>) + Send>;

struct Job {
    task: Task,
    span: tracing::Span,
    reply: Reply,
}

impl Argon2Hasher {
    /// One worker per core, [`QUEUE_PER_WORKER`] waiting hashes per worker.
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::with_limits(cores, cores * QUEUE_PER_WORKER)
    }

    /// `workers` threads (each holding one 19 MiB buffer once it has hashed) and
    /// up to `queue` hashes waiting for them.
    pub fn with_limits(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        let params = params();
        let (jobs, waiting) = mpsc::sync_channel::<Job>(queue.max(1));
        let waiting = Arc::new(Mutex::new(waiting));
        for i in 0..workers {
            let waiting = waiting.clone();
            let params = params.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || work(&params, &waiting))
                .expect("spawning a password hashing thread");
        }
        // The dummy is hashed by a worker too, so no other thread's heap keeps 19 MiB.
        let (tx, rx) = mpsc::channel();
        let password = SecretString::from(Alphanumeric.sample_string(&mut rand::thread_rng(), 24));
        jobs.send(Job {
            task: Task::Hash(password),
            span: tracing::Span::current(),
            reply: Box::new(move |done| {
                let _ = tx.send(done);
            }),
        })
        .expect("the hashing workers just started");
        let dummy = match rx.recv() {
            Ok(Ok(Done::Hashed(hash))) => hash,
            _ => panic!("hashing a random password with static parameters failed"),
        };
        Self {
            jobs,
            dummy,
            workers,
        }
    }

    /// How many worker threads hash (and so how many 19 MiB buffers there are).
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Queues `task` and waits for its result; refuses at once when the queue is full.
    async fn run(&self, task: Task) -> Result<Done, DomainError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = Job {
            task,
            span: tracing::Span::current(),
            reply: Box::new(move |done| {
                let _ = tx.send(done);
            }),
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                metrics::counter!("webcall_password_hash_refused_total").increment(1);
                return Err(DomainError::Overloaded {
                    retry_after: RETRY_AFTER,
                });
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(DomainError::infrastructure(
                    "password hashing workers stopped",
                ))
            }
        }
        rx.await
            .map_err(DomainError::infrastructure)?
            .map_err(|e| DomainError::infrastructure(e.to_string()))
    }
}

impl Default for Argon2Hasher {
    fn default() -> Self {
        Self::new()
    }
}

fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid")
}

/// A worker: takes jobs until the hasher is dropped, hashing in its one buffer.
fn work(params: &Params, waiting: &Mutex<Receiver<Job>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let next = waiting.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(job) = next else { return };
        let _entered = job.span.enter();
        let done = match job.task {
            Task::Hash(password) => {
                hash_with(params, password.expose_secret(), &mut memory).map(Done::Hashed)
            }
            Task::Verify { password, hash } => Ok(Done::Verified(verify_with(
                params,
                password.expose_secret(),
                &hash,
                &mut memory,
            ))),
        };
        (job.reply)(done);
    }
}

/// The first `blocks` of `memory`, grown (once) to that size.
fn blocks(memory: &mut Vec<Block>, blocks: usize) -> &mut [Block] {
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    &mut memory[..blocks]
}

fn hash_with(
    params: &Params,
    password: &str,
    memory: &mut Vec<Block>,
) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            blocks(memory, params.block_count()),
        )?;
    let phc = PhcHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `hash` (which carries its own
/// parameters). A corrupt hash, or one needing more memory than our own
/// parameters (only ever made by hand), does not match.
fn verify_with(params: &Params, password: &str, hash: &str, memory: &mut Vec<Block>) -> bool {
    try_verify(params, password, hash, memory).unwrap_or(false)
}

fn try_verify(
    params: &Params,
    password: &str,
    hash: &str,
    memory: &mut Vec<Block>,
) -> Result<bool, argon2::password_hash::Error> {
    let phc = PhcHash::new(hash)?;
    let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
        return Ok(false);
    };
    let algorithm = Algorithm::try_from(phc.algorithm)?;
    let version = phc
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let stored = Params::try_from(&phc)?;
    if stored.block_count() > params.block_count() {
        tracing::warn!(
            m_cost = stored.m_cost(),
            "a stored password hash needs more memory than the hasher allows"
        );
        return Ok(false);
    }
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf)?;
    let mut out = vec![0u8; expected.len()];
    let count = stored.block_count();
    Argon2::new(algorithm, version, stored).hash_password_into_with_memory(
        password.as_bytes(),
        salt_bytes,
        &mut out,
        blocks(memory, count),
    )?;
    Ok(out.ct_eq(expected.as_bytes()).into())
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, DomainError> {
        let task = Task::Hash(SecretString::from(password.expose().to_owned()));
        match self.run(task).await? {
            Done::Hashed(hash) => Ok(PasswordHash(hash)),
            Done::Verified(_) => Err(DomainError::infrastructure("hasher answered a verify")),
        }
    }

    async fn verify(
        &self,
        password: &Password,
        hash: Option<&PasswordHash>,
    ) -> Result<bool, DomainError> {
        let (hash, real) = match hash {
            Some(hash) => (hash.0.clone(), true),
            None => (self.dummy.clone(), false),
        };
        let task = Task::Verify {
            password: SecretString::from(password.expose().to_owned()),
            hash,
        };
        match self.run(task).await? {
            Done::Verified(matches) => Ok(real && matches),
            Done::Hashed(_) => Err(DomainError::infrastructure("hasher answered a hash")),
        }
    }
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    #[tokio::test]
    async fn hash_verifies_only_the_same_password() {
        let hasher = Argon2Hasher::new();
        let password = Password::parse("correct horse battery".into()).unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.0.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher.verify(&password, Some(&hash)).await.unwrap());
        let wrong = Password::parse("correct horse battery!".into()).unwrap();
        assert!(!hasher.verify(&wrong, Some(&hash)).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_agree_with_the_argon2_crate_both_ways() {
        let hasher = Argon2Hasher::with_limits(1, 4);
        let password = Password::parse("correct horse battery".into()).unwrap();
        let ours = hasher.hash(&password).await.unwrap();
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        let parsed = PhcHash::new(&ours.0).unwrap();
        assert!(reference
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok());
        // An older, cheaper hash made by the crate itself still verifies.
        let cheap = Params::new(8 * 1024, 1, 1, None).unwrap();
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, cheap)
            .hash_password(
                password.expose().as_bytes(),
                &SaltString::generate(&mut OsRng),
            )
            .unwrap()
            .to_string();
        assert!(hasher
            .verify(&password, Some(&PasswordHash(theirs)))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn same_password_gets_a_different_salt() {
        let hasher = Argon2Hasher::new();
        let password = Password::parse("correct horse battery".into()).unwrap();
        assert_ne!(
            hasher.hash(&password).await.unwrap(),
            hasher.hash(&password).await.unwrap()
        );
    }

    #[tokio::test]
    async fn unknown_account_never_verifies() {
        let hasher = Argon2Hasher::new();
        let password = Password::parse("whatever-password".into()).unwrap();
        assert!(!hasher.verify(&password, None).await.unwrap());
    }

    #[tokio::test]
    async fn a_corrupt_or_oversized_stored_hash_does_not_verify() {
        let hasher = Argon2Hasher::new();
        let password = Password::parse("whatever-password".into()).unwrap();
        let corrupt = PasswordHash("not a phc string".into());
        assert!(!hasher.verify(&password, Some(&corrupt)).await.unwrap());
        let huge = PasswordHash(
            "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                .into(),
        );
        assert!(!hasher.verify(&password, Some(&huge)).await.unwrap());
    }

    #[tokio::test]
    async fn beyond_the_queue_requests_are_refused_not_queued() {
        let hasher = Arc::new(Argon2Hasher::with_limits(1, 2));
        let password = Arc::new(Password::parse("whatever-password".into()).unwrap());
        let attempts: Vec<_> = (0..12)
            .map(|_| {
                let (hasher, password) = (hasher.clone(), password.clone());
                tokio::spawn(async move { hasher.verify(&password, None).await })
            })
            .collect();
        let mut refused = 0;
        for attempt in attempts {
            match attempt.await.unwrap() {
                Ok(false) => {}
                Err(DomainError::Overloaded { retry_after }) => {
                    assert!(retry_after >= Duration::from_secs(1));
                    refused += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        // One running and two waiting at most: most of twelve at once are refused.
        assert!(refused >= 12 - 3 - 2, "{refused} refused");
    }
}
