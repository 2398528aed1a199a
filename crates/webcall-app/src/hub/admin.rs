//! What an admin does to calls and accounts through the hub, on every
//! instance: end a room's call (the room stays), ban an account (its
//! connections close with 4403), and make every instance forget an account or
//! a room an admin changed, so that none goes on with a stale copy.

use webcall_domain::model::UserId;
use webcall_domain::signaling::{Command, RoomName};

use super::{AccountHook, Hub};

impl Hub {
    /// Sets what to call, on every instance, when an admin changed an account:
    /// the binary makes its account cache forget it. Set once, at start-up.
    pub fn on_account_change(&self, forget: impl Fn(UserId) + Send + Sync + 'static) {
        let hook: AccountHook = Box::new(forget);
        if self.account_changed.set(hook).is_err() {
            tracing::warn!("the account-change hook was set twice; the first one stays");
        }
    }

    /// The account is banned: every instance forgets it and closes its
    /// connections with 4403 (the others in its rooms hear it left).
    pub async fn ban_user(&self, user: UserId) {
        self.command(Command::BanUser { user }).await;
    }

    /// The account changed (role, ban lifted, password): every instance
    /// forgets it, so that it is read again.
    pub async fn account_changed(&self, user: UserId) {
        self.command(Command::UserChanged { user }).await;
    }

    /// The room changed (locked, new owner): every instance reads it again at
    /// the next join.
    pub async fn room_changed(&self, room: &RoomName) {
        self.command(Command::RoomChanged { room: room.clone() })
            .await;
    }

    /// Ends the room's call on every instance as a deletion does (everyone
    /// hears the others left with `room_deleted`, then 4004); the stored room
    /// is the caller's to keep or delete.
    pub async fn end_call(&self, room: &RoomName) {
        let peers = self.peers_everywhere(room).await;
        self.command(Command::EndRoom {
            room: room.clone(),
            peers,
        })
        .await;
        tracing::info!(%room, "call ended by an admin");
    }

    pub(super) fn forget_account(&self, user: UserId) {
        if let Some(forget) = self.account_changed.get() {
            forget(user);
        }
    }

    /// Forgets the room as stored here; a lookup in flight, which may have
    /// read it before the change, is not remembered either.
    pub(super) fn forget_room(&self, room: &RoomName) {
        let mut local = self.lock();
        local.deletions += 1;
        local.lookups.remove(room);
        if let Some(local_room) = local.rooms.get_mut(room) {
            local_room.stored = None;
        }
    }
}
