//! argon2id password hashing (OWASP's parameters: 19 MiB, 2 passes, 1 lane),
//! run on tokio's blocking pool inside the caller's tracing span.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{
    PasswordHash as PhcHash, PasswordHasher as _, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use rand::distributions::{Alphanumeric, DistString};
use webcall_domain::model::{Password, PasswordHash};
use webcall_domain::ports::PasswordHasher;
use webcall_domain::DomainError;

/// Hashes and verifies with argon2id.
pub struct Argon2Hasher {
    params: Params,
    /// Verified against when the account does not exist, to equalise timing.
    dummy: String,
    /// Hashes running at once. Each takes 19 MiB and a core for tens of
    /// milliseconds: a burst of logins queues here instead of growing the heap
    /// (and the process's memory for good) by 19 MiB a request.
    running: tokio::sync::Semaphore,
}

impl Argon2Hasher {
    pub fn new() -> Self {
        let params =
            Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid");
        let dummy_password = Alphanumeric.sample_string(&mut rand::thread_rng(), 24);
        let dummy = hash_blocking(&params, &dummy_password).expect("hashing a random password");
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            params,
            dummy,
            running: tokio::sync::Semaphore::new(cores),
        }
    }
}

impl Default for Argon2Hasher {
    fn default() -> Self {
        Self::new()
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_blocking(params: &Params, password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2(params)
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

fn verify_blocking(params: &Params, password: &str, hash: &str) -> bool {
    // The stored hash carries its own parameters; ours only matter for new hashes.
    match PhcHash::new(hash) {
        Ok(parsed) => argon2(params)
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Runs `work` on the blocking pool, keeping the caller's span.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DomainError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .map_err(DomainError::infrastructure)
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, DomainError> {
        let params = self.params.clone();
        let password = password.expose().to_owned();
        let _permit = self
            .running
            .acquire()
            .await
            .map_err(DomainError::infrastructure)?;
        off_runtime(move || hash_blocking(&params, &password))
            .await?
            .map(PasswordHash)
            .map_err(|e| DomainError::infrastructure(e.to_string()))
    }

    async fn verify(
        &self,
        password: &Password,
        hash: Option<&PasswordHash>,
    ) -> Result<bool, DomainError> {
        let params = self.params.clone();
        let password = password.expose().to_owned();
        let (hash, real) = match hash {
            Some(hash) => (hash.0.clone(), true),
            None => (self.dummy.clone(), false),
        };
        let _permit = self
            .running
            .acquire()
            .await
            .map_err(DomainError::infrastructure)?;
        let matches = off_runtime(move || verify_blocking(&params, &password, &hash)).await?;
        Ok(real && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_verifies_only_the_same_password() {
        let hasher = Argon2Hasher::new();
        let password = Password::parse("correct horse battery".into()).unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.0.starts_with("$argon2id$"));
        assert!(hasher.verify(&password, Some(&hash)).await.unwrap());
        let wrong = Password::parse("correct horse battery!".into()).unwrap();
        assert!(!hasher.verify(&wrong, Some(&hash)).await.unwrap());
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
    async fn a_corrupt_stored_hash_does_not_verify() {
        let hasher = Argon2Hasher::new();
        let password = Password::parse("whatever-password".into()).unwrap();
        let corrupt = PasswordHash("not a phc string".into());
        assert!(!hasher.verify(&password, Some(&corrupt)).await.unwrap());
    }
}
