//! The admission decision over every access level × kind of caller × flag.
use chrono::Utc;
use webcall_domain::access::{Access, RoomAccess};
use webcall_domain::model::{PasswordHash, Role, UserId};
use webcall_domain::signaling::{Room, RoomName};

use super::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Owner,
    Admin,
    Member,
    Stranger,
}

const KINDS: [Kind; 4] = [Kind::Owner, Kind::Admin, Kind::Member, Kind::Stranger];

fn room(access: Access, password: bool, ask_to_join: bool, locked: bool, owner: UserId) -> Room {
    Room {
        name: RoomName::parse("r").unwrap(),
        owner,
        owner_name: "owner".into(),
        created_at: Utc::now(),
        locked,
        access: RoomAccess {
            access,
            password: password.then(|| PasswordHash("$argon2id$x".into())),
            ask_to_join,
        },
    }
}

/// What the decision should say, written out rule by rule.
fn expected(kind: Kind, access: Access, password: bool, lobby: bool, facts: Facts) -> Admission {
    if matches!(kind, Kind::Owner | Kind::Admin) {
        return Admission::Admit;
    }
    if facts.banned {
        return Admission::Refuse(Refusal::Banned);
    }
    if access == Access::Private && kind != Kind::Member {
        return Admission::Refuse(Refusal::Private);
    }
    if password && !facts.pass_ok {
        return Admission::Refuse(Refusal::PasswordRequired);
    }
    if lobby && !facts.admitted {
        return Admission::Wait;
    }
    Admission::Admit
}

#[test]
fn every_level_caller_and_flag() {
    let owner = UserId::new_random();
    let mut checked = 0;
    for access in [Access::Public, Access::Unlisted, Access::Private] {
        for kind in KINDS {
            for bits in 0..64u8 {
                let bit = |n: u8| bits & (1 << n) != 0;
                let (password, ask, locked) = (bit(0), bit(1), bit(2));
                let facts = Facts {
                    member: kind == Kind::Member,
                    banned: bit(3),
                    pass_ok: bit(4),
                    admitted: bit(5),
                };
                let caller = Caller {
                    user: if kind == Kind::Owner {
                        owner
                    } else {
                        UserId::new_random()
                    },
                    role: if kind == Kind::Admin {
                        Role::Admin
                    } else {
                        Role::Member
                    },
                };
                let got = decide(&room(access, password, ask, locked, owner), caller, facts);
                let want = expected(kind, access, password, ask || locked, facts);
                assert_eq!(
                    got, want,
                    "{access:?} {kind:?} pw={password} ask={ask} locked={locked} {facts:?}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 4 * 64);
}

#[test]
fn membership_is_asked_only_of_a_private_room_and_not_of_hosts() {
    let owner = UserId::new_random();
    let stranger = Caller {
        user: UserId::new_random(),
        role: Role::Member,
    };
    let admin = Caller {
        role: Role::Admin,
        ..stranger
    };
    let private = room(Access::Private, false, false, false, owner);
    assert!(needs_membership(&private, stranger));
    assert!(!needs_membership(&private, admin));
    assert!(!needs_membership(
        &private,
        Caller {
            user: owner,
            role: Role::Member
        }
    ));
    assert!(!needs_membership(
        &room(Access::Unlisted, false, false, false, owner),
        stranger
    ));
}
