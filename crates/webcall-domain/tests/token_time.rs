//! A token made in the second of a password reset is dated so that it is
//! accepted (`iat` has whole seconds; the reset refuses tokens from before it).

use chrono::{DateTime, Utc};
use webcall_domain::model::{Email, User, UserId, Username};
use webcall_domain::role::Role;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// What a verifier sees of a token made at `t`: `iat` keeps whole seconds.
fn iat(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap()
}

#[test]
fn a_token_made_in_the_second_of_a_reset_is_dated_so_that_it_is_accepted() {
    let mut user = User {
        id: UserId::new_random(),
        email: Email::parse("ada@example.org").unwrap(),
        username: Username::parse("ada").unwrap(),
        created_at: at("2026-01-01T00:00:00Z"),
        role: Role::Member,
        banned_at: None,
        tokens_valid_from: None,
    };
    let now = at("2026-12-07T10:00:00.700Z");
    assert_eq!(user.token_time(now), now, "no reset");

    user.tokens_valid_from = Some(at("2026-12-07T10:00:00.300Z"));
    let made = user.token_time(now);
    assert_eq!(made, at("2026-12-07T10:00:01Z"), "the next whole second");
    assert!(user.accepts_token_from(iat(made)));
    assert!(
        !user.accepts_token_from(iat(now)),
        "dated now, it would be refused"
    );
    assert!(
        !user.accepts_token_from(iat(at("2026-12-07T10:00:00.200Z"))),
        "one from before the reset stays refused"
    );

    user.tokens_valid_from = Some(at("2026-12-07T09:59:59.300Z"));
    assert_eq!(user.token_time(now), now, "a reset in an earlier second");
    user.tokens_valid_from = Some(at("2026-12-07T10:00:00Z"));
    assert_eq!(user.token_time(now), now, "a reset on the whole second");
}
