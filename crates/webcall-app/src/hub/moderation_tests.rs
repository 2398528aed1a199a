//! The rules of moderation in a call (`moderation.rs`), as users see them: who
//! may moderate, what the target and the others are told, what "only hosts may
//! speak" refuses, what a ban keeps out and for how long, and the same across
//! two instances. On the set-up of `tests.rs`.

use webcall_domain::model::Role;
use webcall_domain::ports::{ClusterListener, Presence};
use webcall_domain::signaling::{
    ClusterMessage, Command, HostAction, LeaveReason, PeerState, RoomEvent,
};

use super::tests::{closed, events, left, name, refused, request, World};
use super::{CloseReason, JoinRequest, Session};
use crate::AppError;

fn talking() -> PeerState {
    PeerState {
        audio: true,
        video: true,
        screen: false,
        hand: false,
    }
}

fn state_of(peer: &Session, state: PeerState) -> RoomEvent {
    RoomEvent::PeerState {
        peer_id: peer.peer_id.clone(),
        state,
    }
}

fn moderated(by: &Session, action: HostAction) -> RoomEvent {
    RoomEvent::Moderated {
        by: by.peer_id.clone(),
        action,
    }
}

/// Each session's unread events are dropped.
fn clear(sessions: &mut [&mut Session]) {
    for session in sessions {
        drop(events(session));
    }
}

#[tokio::test]
async fn the_owner_mutes_a_peer_who_is_told_and_everyone_sees_it_muted() {
    let world = World::alone();
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    let mut bob = world.join(&world.user("bob"), "lobby").await;
    let mut carol = world.join(&world.user("carol"), "lobby").await;
    assert!(ada.welcome.host && !bob.welcome.host);
    world.hub.set_state(&bob.peer_id, talking()).await.unwrap();
    clear(&mut [&mut ada, &mut bob, &mut carol]);

    world.hub.mute(&ada.peer_id, &bob.peer_id).await.unwrap();
    let muted = PeerState {
        audio: false,
        ..talking()
    };
    assert_eq!(events(&mut bob), [moderated(&ada, HostAction::Mute)]);
    for session in [&mut ada, &mut carol] {
        assert_eq!(events(session), [state_of(&bob, muted)]);
    }
    let peers = world.presence.peers(&name("lobby")).await.unwrap();
    let in_presence = peers.iter().find(|p| p.peer_id == bob.peer_id).unwrap();
    assert_eq!(in_presence.state, muted, "a later joiner sees it too");
    // Not "only hosts may speak": Bob may turn his microphone on again.
    world.hub.set_state(&bob.peer_id, talking()).await.unwrap();
    assert_eq!(events(&mut carol), [state_of(&bob, talking())]);
}

#[tokio::test]
async fn the_owner_stops_a_screen_share() {
    let world = World::alone();
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    let mut bob = world.join(&world.user("bob"), "lobby").await;
    let sharing = PeerState {
        screen: true,
        ..talking()
    };
    world.hub.set_state(&bob.peer_id, sharing).await.unwrap();
    clear(&mut [&mut ada, &mut bob]);

    world
        .hub
        .stop_screen(&ada.peer_id, &bob.peer_id)
        .await
        .unwrap();
    assert_eq!(events(&mut bob), [moderated(&ada, HostAction::StopScreen)]);
    assert_eq!(events(&mut ada), [state_of(&bob, talking())]);
}

#[tokio::test]
async fn someone_who_is_not_a_host_moderates_nothing() {
    let world = World::alone();
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    let mut bob = world.join(&world.user("bob"), "lobby").await;
    let mut carol = world.join(&world.user("carol"), "lobby").await;
    world
        .hub
        .set_state(&carol.peer_id, talking())
        .await
        .unwrap();
    clear(&mut [&mut ada, &mut bob, &mut carol]);

    let hub = &world.hub;
    let (by, to) = (&bob.peer_id, &carol.peer_id);
    for result in [
        hub.mute(by, to).await,
        hub.stop_screen(by, to).await,
        hub.mute_all(by).await,
        hub.set_hosts_only(by, true).await,
        hub.kick(by, to, true).await,
    ] {
        assert!(matches!(result, Err(AppError::NotRoomOwner)), "{result:?}");
    }
    for session in [&mut ada, &mut bob, &mut carol] {
        assert_eq!(events(session), [], "nothing happened");
    }
    assert_eq!(closed(&carol), None);
    let rules = world.hub.rules(&name("lobby")).await.unwrap();
    assert!(!rules.hosts_only && rules.banned.is_empty());
    // And a host's target must be in the room.
    let elsewhere = world.join(&world.user("dave"), "other").await;
    let result = hub.mute(&ada.peer_id, &elsewhere.peer_id).await;
    assert!(matches!(result, Err(AppError::PeerNotFound)), "{result:?}");
}

#[tokio::test]
async fn mute_all_mutes_everyone_but_the_hosts_and_tells_only_who_was_talking() {
    let world = World::alone();
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    let mut bob = world.join(&world.user("bob"), "lobby").await;
    let mut carol = world.join(&world.user("carol"), "lobby").await;
    world.hub.set_state(&ada.peer_id, talking()).await.unwrap();
    world.hub.set_state(&bob.peer_id, talking()).await.unwrap();
    clear(&mut [&mut ada, &mut bob, &mut carol]);

    world.hub.mute_all(&ada.peer_id).await.unwrap();
    let muted = PeerState {
        audio: false,
        ..talking()
    };
    assert_eq!(events(&mut bob), [moderated(&ada, HostAction::Mute)]);
    assert_eq!(events(&mut carol), [state_of(&bob, muted)], "was silent");
    assert_eq!(
        events(&mut ada),
        [state_of(&bob, muted)],
        "the host talks on"
    );
}

#[tokio::test]
async fn while_only_hosts_may_speak_the_others_cannot_unmute() {
    let world = World::alone();
    let mut ada = world.join(&world.user("ada"), "lobby").await;
    let mut bob = world.join(&world.user("bob"), "lobby").await;
    world.hub.set_state(&bob.peer_id, talking()).await.unwrap();
    clear(&mut [&mut ada, &mut bob]);

    world.hub.set_hosts_only(&ada.peer_id, true).await.unwrap();
    let on = RoomEvent::HostsOnly {
        on: true,
        by: ada.peer_id.clone(),
    };
    let muted = PeerState {
        audio: false,
        ..talking()
    };
    assert_eq!(
        events(&mut bob),
        [on.clone(), moderated(&ada, HostAction::Mute)]
    );
    assert_eq!(events(&mut ada), [on, state_of(&bob, muted)]);

    let unmute = world.hub.set_state(&bob.peer_id, talking()).await;
    assert!(matches!(unmute, Err(AppError::HostsOnly)), "{unmute:?}");
    assert_eq!(events(&mut ada), [], "nothing changed");
    // His camera and hand are his: only the microphone is refused.
    let hand = PeerState {
        hand: true,
        ..muted
    };
    world.hub.set_state(&bob.peer_id, hand).await.unwrap();
    world.hub.set_state(&ada.peer_id, talking()).await.unwrap();
    // Stored with the room: a later joiner is told, and is refused too.
    let mut carol = world.join(&world.user("carol"), "lobby").await;
    assert!(carol.welcome.hosts_only);
    let unmute = world.hub.set_state(&carol.peer_id, talking()).await;
    assert!(matches!(unmute, Err(AppError::HostsOnly)));

    world.hub.set_hosts_only(&ada.peer_id, false).await.unwrap();
    let off = RoomEvent::HostsOnly {
        on: false,
        by: ada.peer_id.clone(),
    };
    assert_eq!(events(&mut carol), [off]);
    world.hub.set_state(&bob.peer_id, talking()).await.unwrap();
}

#[tokio::test]
async fn a_banned_account_is_kicked_everywhere_in_the_room_and_refused_until_the_room_goes() {
    let world = World::alone();
    let (ada_user, bob_user) = (world.user("ada"), world.user("bob"));
    let mut ada = world.join(&ada_user, "lobby").await;
    let phone = world.join(&bob_user, "lobby").await;
    let laptop = world.join(&bob_user, "lobby").await;
    clear(&mut [&mut ada]);

    world
        .hub
        .kick(&ada.peer_id, &phone.peer_id, true)
        .await
        .unwrap();
    assert_eq!(closed(&phone), Some(CloseReason::Kicked));
    assert_eq!(closed(&laptop), Some(CloseReason::Kicked));
    assert_eq!(
        events(&mut ada),
        [
            left(&phone, LeaveReason::Kicked),
            left(&laptop, LeaveReason::Kicked)
        ]
    );
    let again = refused(world.hub.join(request(&bob_user, "lobby")).await);
    assert!(matches!(again, AppError::BannedFromRoom), "{again:?}");
    // Once the room is empty its rules are read from storage: still banned.
    world.hub.leave(&ada.peer_id, ada.generation).await;
    let again = refused(world.hub.join(request(&bob_user, "lobby")).await);
    assert!(matches!(again, AppError::BannedFromRoom), "{again:?}");
    // Only from this room, and only while it exists.
    world.join(&bob_user, "other").await;
    world
        .hub
        .delete_room(&name("lobby"), ada_user.id)
        .await
        .unwrap();
    let back = world.join(&bob_user, "lobby").await;
    assert!(back.welcome.host, "the room is new, and his");
}

#[tokio::test]
async fn an_admin_is_a_host_in_anyones_room_and_a_ban_never_keeps_a_host_out() {
    let world = World::alone();
    let (ada_user, root_user) = (world.user("ada"), world.user("root"));
    let mut ada = world.join(&ada_user, "lobby").await;
    let admin = JoinRequest {
        role: Role::Admin,
        ..request(&root_user, "lobby")
    };
    let root = world.hub.join(admin).await.unwrap();
    assert!(root.welcome.host);
    assert!(root.welcome.peers[0].host, "ada owns it");
    world.hub.set_state(&ada.peer_id, talking()).await.unwrap();
    clear(&mut [&mut ada]);

    world.hub.mute(&root.peer_id, &ada.peer_id).await.unwrap();
    assert_eq!(events(&mut ada), [moderated(&root, HostAction::Mute)]);
    world
        .hub
        .kick(&root.peer_id, &ada.peer_id, true)
        .await
        .unwrap();
    assert_eq!(closed(&ada), Some(CloseReason::Kicked));
    let owner = world.join(&ada_user, "lobby").await;
    assert!(owner.welcome.host, "the owner is not kept out of her room");
}

#[tokio::test]
async fn moderation_reaches_peers_on_another_instance() {
    let home = World::clustered();
    let other = home.another_instance();
    let bob_user = home.user("bob");
    let mut ada = home.join(&home.user("ada"), "lobby").await;
    let mut bob = other.join(&bob_user, "lobby").await;
    let mut carol = other.join(&home.user("carol"), "lobby").await;
    other.hub.set_state(&bob.peer_id, talking()).await.unwrap();
    for message in other.cluster().take_published() {
        home.hub.receive(message).await;
    }
    home.cluster().take_published();
    clear(&mut [&mut ada, &mut bob, &mut carol]);

    // Ada, on the home instance, turns "only hosts may speak" on.
    home.hub.set_hosts_only(&ada.peer_id, true).await.unwrap();
    let published = home.cluster().take_published();
    assert!(matches!(
        &published[..],
        [ClusterMessage::Command(Command::Moderate { .. })]
    ));
    for message in published {
        other.hub.receive(message).await;
    }
    let on = RoomEvent::HostsOnly {
        on: true,
        by: ada.peer_id.clone(),
    };
    assert_eq!(
        events(&mut bob),
        [on.clone(), moderated(&ada, HostAction::Mute)]
    );
    let muted = PeerState {
        audio: false,
        ..talking()
    };
    assert_eq!(events(&mut carol), [on.clone(), state_of(&bob, muted)]);
    for message in other.cluster().take_published() {
        home.hub.receive(message).await;
    }
    assert_eq!(events(&mut ada), [on, state_of(&bob, muted)]);
    let unmute = other.hub.set_state(&bob.peer_id, talking()).await;
    assert!(matches!(unmute, Err(AppError::HostsOnly)), "{unmute:?}");

    // She bans Bob: his instance closes him, and refuses him from now on.
    home.hub
        .kick(&ada.peer_id, &bob.peer_id, true)
        .await
        .unwrap();
    for message in home.cluster().take_published() {
        other.hub.receive(message).await;
    }
    assert_eq!(closed(&bob), Some(CloseReason::Kicked));
    let again = refused(other.hub.join(request(&bob_user, "lobby")).await);
    assert!(matches!(again, AppError::BannedFromRoom), "{again:?}");
}

#[tokio::test]
async fn rules_changed_while_the_instances_were_apart_are_read_again() {
    let home = World::clustered();
    let other = home.another_instance();
    let bob_user = home.user("bob");
    let ada = home.join(&home.user("ada"), "lobby").await;
    let bob = other.join(&bob_user, "lobby").await;
    // Ada turns "only hosts may speak" on; the other instance never hears of it.
    home.hub.set_hosts_only(&ada.peer_id, true).await.unwrap();
    home.cluster().take_published();
    let stale = other.hub.set_state(&bob.peer_id, talking()).await;
    assert!(stale.is_ok(), "the other instance holds the old rules");

    // Its connection to the others is back: it reads the rules again.
    other.hub.reconnected().await.unwrap();
    let unmute = other.hub.set_state(&bob.peer_id, talking()).await;
    assert!(matches!(unmute, Err(AppError::HostsOnly)), "{unmute:?}");
}

#[tokio::test]
async fn a_rooms_rules_are_read_once_while_it_has_peers_here() {
    let world = World::alone();
    let (ada_user, bob_user) = (world.user("ada"), world.user("bob"));
    let ada = world.join(&ada_user, "lobby").await;
    assert_eq!(world.store.rules_reads(), 1, "the first joiner reads them");
    let bob = world.join(&bob_user, "lobby").await;
    world.hub.set_state(&bob.peer_id, talking()).await.unwrap();
    world.hub.set_hosts_only(&ada.peer_id, true).await.unwrap();
    let refused = world.hub.set_state(&bob.peer_id, talking()).await;
    assert!(matches!(refused, Err(AppError::HostsOnly)), "{refused:?}");
    assert_eq!(
        world.store.rules_reads(),
        1,
        "later joins and frames do not"
    );
    // An empty room is forgotten: its next joiner reads them again, as stored.
    world.hub.leave(&ada.peer_id, ada.generation).await;
    world.hub.leave(&bob.peer_id, bob.generation).await;
    let again = world.join(&bob_user, "lobby").await;
    assert!(again.welcome.hosts_only);
    assert_eq!(world.store.rules_reads(), 2);
}
