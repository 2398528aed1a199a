//! A room's latest chat messages, kept in memory by the hub while the room has
//! peers on this instance, so that a join does not read the history from storage.
//!
//! Every chat message of a room reaches the hub of each instance with peers in it
//! (stored first, then delivered locally and to the other instances), and the hub records
//! it here. Storage is read once, when the room gets its first local peer: the
//! messages delivered while that read is in flight are kept and merged with what
//! it returns, so nothing stored before the read and nothing delivered after the
//! room appeared here is missed. Messages can arrive out of id order (two
//! instances store at once), so they are kept sorted by id, without duplicates.
//!
//! With Redis, a chat event the cluster loses (a failed publish) is missing here just
//! as it is for the peers who were in the room; the stored history (REST) has it.

use std::collections::VecDeque;

use webcall_domain::signaling::ChatMessage;

/// See the module docs.
pub(crate) struct RecentChat {
    capacity: usize,
    /// Oldest first, distinct ids, at most `capacity`.
    messages: VecDeque<ChatMessage>,
    /// The stored history has been merged in: `messages` is the room's latest.
    loaded: bool,
}

impl RecentChat {
    /// Empty and not loaded: it only collects what is delivered until [`Self::load`].
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            messages: VecDeque::new(),
            loaded: false,
        }
    }

    /// A message delivered to the room.
    pub(crate) fn record(&mut self, message: &ChatMessage) {
        let at = self.messages.partition_point(|m| m.id < message.id);
        if self.messages.get(at).is_some_and(|m| m.id == message.id) {
            return;
        }
        if at == 0 && self.messages.len() >= self.capacity {
            // Older than everything kept, and there is no room for it.
            return;
        }
        self.messages.insert(at, message.clone());
        while self.messages.len() > self.capacity {
            self.messages.pop_front();
        }
    }

    /// A message deleted from the room (a file's): a later join does not see it.
    pub(crate) fn forget(&mut self, id: i64) {
        self.messages.retain(|m| m.id != id);
    }

    /// Merges the stored history (read after this room appeared here) unless an
    /// earlier read was merged already.
    pub(crate) fn load(&mut self, stored: &[ChatMessage]) {
        if self.loaded {
            return;
        }
        for message in stored {
            self.record(message);
        }
        self.loaded = true;
    }

    /// The latest messages, oldest first; `None` until the stored history is loaded.
    pub(crate) fn latest(&self) -> Option<Vec<ChatMessage>> {
        self.loaded.then(|| self.messages.iter().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;
    use webcall_domain::model::UserId;
    use webcall_domain::signaling::{PeerId, RoomName};

    use super::*;

    fn message(id: i64) -> ChatMessage {
        ChatMessage {
            id,
            room: RoomName::parse("r").unwrap(),
            from: PeerId::from_client("p"),
            user_id: UserId(Uuid::nil()),
            username: "ada".into(),
            text: format!("#{id}"),
            ts: Utc::now(),
            attachment: None,
        }
    }

    fn ids(chat: &RecentChat) -> Option<Vec<i64>> {
        chat.latest().map(|m| m.iter().map(|m| m.id).collect())
    }

    #[test]
    fn nothing_is_served_before_the_stored_history_is_merged() {
        let mut chat = RecentChat::new(3);
        chat.record(&message(7));
        assert_eq!(ids(&chat), None);
        chat.load(&[message(5), message(6), message(7)]);
        assert_eq!(ids(&chat), Some(vec![5, 6, 7]));
    }

    #[test]
    fn messages_are_sorted_distinct_and_only_the_latest_kept() {
        let mut chat = RecentChat::new(3);
        chat.load(&[message(1), message(2)]);
        for id in [5, 3, 5, 4, 2] {
            chat.record(&message(id));
        }
        assert_eq!(ids(&chat), Some(vec![3, 4, 5]));
        chat.record(&message(1));
        assert_eq!(ids(&chat), Some(vec![3, 4, 5]), "too old to matter");
    }

    #[test]
    fn a_deleted_message_is_forgotten() {
        let mut chat = RecentChat::new(3);
        chat.load(&[message(1), message(2)]);
        chat.forget(1);
        assert_eq!(ids(&chat), Some(vec![2]));
    }

    #[test]
    fn a_second_load_changes_nothing() {
        let mut chat = RecentChat::new(3);
        chat.load(&[message(1)]);
        chat.record(&message(2));
        chat.load(&[message(0)]);
        assert_eq!(ids(&chat), Some(vec![1, 2]));
    }
}
