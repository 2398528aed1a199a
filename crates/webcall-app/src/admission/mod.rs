//! Who may enter a room: the one admission decision ([`decide`]) and what it
//! rests on. The WebSocket join (`Hub::join`), `GET /api/v1/rooms/{room}` and
//! the room list ask it; nothing else decides.
//!
//! Layout: this file is the decision and who is a host ([`is_host`]); `pass`
//! the short-lived room pass a right room password buys. The REST use cases
//! around it (create a room with its access, change it, members, unlock with
//! the password, what the pre-join screen and the room list may show) are
//! `crate::room_access`'s.

mod pass;
#[cfg(test)]
mod tests;

pub(crate) use pass::pass_ok;
pub use pass::RoomPasses;

use webcall_domain::access::Access;
use webcall_domain::model::{Role, UserId};
use webcall_domain::signaling::Room;

use crate::AppError;

/// Who wants in.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user: UserId,
    /// The account's role (an admin is a host everywhere).
    pub role: Role,
}

/// What is known about the caller and the room besides the room itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts {
    /// The caller is a member of the room (asked only of a private room).
    pub member: bool,
    /// A host banned the caller from the room.
    pub banned: bool,
    /// The caller presented a valid room pass (the room's password was right).
    pub pass_ok: bool,
    /// A host let the caller in from the lobby.
    pub admitted: bool,
}

/// The answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admit,
    /// Into the lobby until a host admits or denies (locked or "ask to join").
    Wait,
    Refuse(Refusal),
}

/// Why a caller may not enter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A host banned them from the room.
    Banned,
    /// A private room and they are no member.
    Private,
    /// The room has a password and they presented no valid pass.
    PasswordRequired,
}

impl From<Refusal> for AppError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Banned => AppError::BannedFromRoom,
            Refusal::Private => AppError::RoomPrivate,
            Refusal::PasswordRequired => AppError::RoomPasswordRequired,
        }
    }
}

/// The admission decision. Hosts (the owner, admins) always enter; then a
/// ban, a private room's membership and the password refuse; then a locked
/// room or one that asks to join puts the caller in the lobby, unless a host
/// admitted them from it already.
pub fn decide(room: &Room, caller: Caller, facts: Facts) -> Admission {
    if is_host(room, caller.user, caller.role) {
        return Admission::Admit;
    }
    if facts.banned {
        return Admission::Refuse(Refusal::Banned);
    }
    if room.access.access == Access::Private && !facts.member {
        return Admission::Refuse(Refusal::Private);
    }
    if room.access.password.is_some() && !facts.pass_ok {
        return Admission::Refuse(Refusal::PasswordRequired);
    }
    if (room.locked || room.access.ask_to_join) && !facts.admitted {
        return Admission::Wait;
    }
    Admission::Admit
}

/// Whether the decision needs to know if the caller is a member (one query,
/// asked only when it matters).
pub fn needs_membership(room: &Room, caller: Caller) -> bool {
    room.access.access == Access::Private && !is_host(room, caller.user, caller.role)
}

/// Whether `user` (whose role is `role`) is a host of `room`: its owner, or an
/// admin. A host may moderate the call, speaks when only hosts may, and is
/// never refused by a ban. The one place that decides it.
pub fn is_host(room: &Room, user: UserId, role: Role) -> bool {
    role == Role::Admin || room.owner == user
}
