//! The room pass: what a right room password buys, presented when joining
//! (`?pass=` on the WebSocket URL), so that the password itself never travels
//! in a URL. It is `EXPIRY.MAC`, the MAC an HMAC-SHA256 of the room, the
//! account and the expiry, keyed by the room's password hash: stateless (every
//! instance checks it against the stored room), bound to one account and one
//! room, and void as soon as the password changes.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use webcall_domain::model::{PasswordHash, UserId};
use webcall_domain::signaling::{Room, RoomName};

/// Mints and checks room passes.
#[derive(Debug, Clone, Copy)]
pub struct RoomPasses {
    /// How long a pass works: a call's length, so that a reconnect within it
    /// needs no password again.
    pub lifetime: Duration,
}

impl Default for RoomPasses {
    fn default() -> Self {
        Self {
            lifetime: Duration::hours(12),
        }
    }
}

impl RoomPasses {
    /// A pass for `user` into `room` whose password hash is `hash`, and when
    /// it expires.
    pub fn mint(
        &self,
        room: &RoomName,
        user: UserId,
        hash: &PasswordHash,
        now: DateTime<Utc>,
    ) -> (String, DateTime<Utc>) {
        let expires = now + self.lifetime;
        let secs = expires.timestamp();
        (format!("{secs}.{}", mac(room, user, hash, secs)), expires)
    }

    /// Whether `pass` is a live pass for `user` into `room` as its password is now.
    pub fn check(
        &self,
        pass: &str,
        room: &RoomName,
        user: UserId,
        hash: &PasswordHash,
        now: DateTime<Utc>,
    ) -> bool {
        let Some((secs, given)) = pass.split_once('.') else {
            return false;
        };
        let Ok(secs) = secs.parse::<i64>() else {
            return false;
        };
        if secs <= now.timestamp() {
            return false;
        }
        let expected = mac(room, user, hash, secs);
        expected.as_bytes().ct_eq(given.as_bytes()).into()
    }
}

fn mac(room: &RoomName, user: UserId, hash: &PasswordHash, secs: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(hash.0.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("room-pass\n{}\n{user}\n{secs}", room.as_str()).as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `pass` is a live room pass of the caller for the room's current
/// password.
pub(crate) fn pass_ok(
    passes: &RoomPasses,
    room: &Room,
    caller: super::Caller,
    pass: Option<&str>,
    now: DateTime<Utc>,
) -> bool {
    match (&room.access.password, pass) {
        (Some(hash), Some(pass)) => passes.check(pass, &room.name, caller.user, hash, now),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_works_for_its_room_account_and_password_until_it_expires() {
        let passes = RoomPasses::default();
        let (room, other_room) = (RoomName::parse("a").unwrap(), RoomName::parse("b").unwrap());
        let (user, other_user) = (UserId::new_random(), UserId::new_random());
        let hash = PasswordHash("$argon2id$one".into());
        let now = Utc::now();
        let (pass, expires) = passes.mint(&room, user, &hash, now);
        assert!(passes.check(&pass, &room, user, &hash, now));
        assert!(!passes.check(&pass, &other_room, user, &hash, now));
        assert!(!passes.check(&pass, &room, other_user, &hash, now));
        let changed = PasswordHash("$argon2id$two".into());
        assert!(!passes.check(&pass, &room, user, &changed, now));
        assert!(!passes.check(&pass, &room, user, &hash, expires));
        let forged = format!(
            "{}.{}",
            expires.timestamp() + 3600,
            pass.split_once('.').unwrap().1
        );
        assert!(!passes.check(&forged, &room, user, &hash, now));
        for junk in ["", ".", "x.y", "1.", &pass[..pass.len() - 1]] {
            assert!(!passes.check(junk, &room, user, &hash, now), "{junk}");
        }
    }
}
