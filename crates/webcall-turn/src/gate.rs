//! The gate: the rules in front of the crate's server. Each listener
//! ([`crate::listener`]) hands it every control message before the crate sees
//! it ([`Gate::inspect`]) and every response the crate sends
//! ([`Gate::observe`]); it answers what the crate gets wrong itself, and tells
//! the data plane what the crate's successes established:
//!
//! | request | crate as shipped | gate |
//! |---|---|---|
//! | no MESSAGE-INTEGRITY | 401, adds a nonce to an unswept map | 401 with the gate's 16-character nonce, map untouched |
//! | Binding | XOR-MAPPED-ADDRESS and FINGERPRINT (2.0x the request) | XOR-MAPPED-ADDRESS; FINGERPRINT only if the request had one (1.6x) |
//! | unknown user, wrong key, bad or expired REST username | 400 | 401 |
//! | Refresh/CreatePermission/ChannelBind without an allocation | no reply | 437 |
//! | another username on an existing allocation | accepted | 441 |
//! | peer in a denied range | accepted | 403 |
//! | allocations over the user's or the server's quota | accepted | 486 |
//! | credentials of a retired key generation | (not known) | 401 (a Refresh to 0 passes) |
//!
//! Answers to unauthenticated requests carry no reason phrase and no SOFTWARE:
//! they are what a spoofed-source attacker would reflect (see [`NonceCache`]).
//!
//! MESSAGE-INTEGRITY is checked with the `stun` crate, which compares the HMAC in
//! constant time (`subtle`).
//!
//! Credential expiry is checked at Allocate only (as LiveKit does, and eturnal by
//! default): the crate asks for the key on every Refresh, CreatePermission and
//! ChannelBind too, and refusing an expired username there would cut a live call
//! off the moment its credential expires.
//!
//! A little over 500 lines, kept whole: each row of the table above is one rule
//! here, and a rule split from the others would hide which one answers first.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stun::agent::TransactionId;
use stun::attributes::{ATTR_MESSAGE_INTEGRITY, ATTR_NONCE, ATTR_REALM, ATTR_USERNAME};
use stun::error_code::{
    ErrorCode, ErrorCodeAttribute, CODE_ADDR_FAMILY_NOT_SUPPORTED, CODE_ALLOC_MISMATCH,
    CODE_ALLOC_QUOTA_REACHED, CODE_BAD_REQUEST, CODE_FORBIDDEN, CODE_STALE_NONCE,
    CODE_UNAUTHORIZED, CODE_UNKNOWN_ATTRIBUTE, CODE_WRONG_CREDENTIALS,
};
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{
    Getter, Message, MessageType, Setter, CLASS_REQUEST, METHOD_ALLOCATE, METHOD_REFRESH,
};
use stun::textattrs::{Nonce, Realm, Username};
use turn::proto::lifetime::Lifetime;

use crate::allocations::{Allocations, Owner};
use crate::credentials::{parse_rest_username, RestCredentials};
use crate::dataplane::Established;
use crate::nonces::NonceCache;
use crate::policy::PeerPolicy;
use crate::tuple::FiveTuple;
use crate::wire;

/// What the gate enforces.
pub(crate) struct GateConfig {
    pub(crate) realm: String,
    pub(crate) credentials: RestCredentials,
    pub(crate) policy: PeerPolicy,
    /// Allocations one user may hold at once.
    pub(crate) user_quota: usize,
    /// Allocations the server holds at once.
    pub(crate) total_quota: usize,
    /// Whether relayed addresses of each family can be given (a public IPv4 /
    /// IPv6 address is known); a request for another gets 440.
    pub(crate) relay_ipv4: bool,
    pub(crate) relay_ipv6: bool,
}

/// Counters of what the gate refused (exported as metrics later).
#[derive(Debug, Default)]
pub struct GateStats {
    pub auth_failures: AtomicU64,
    pub forbidden_peers: AtomicU64,
    pub quota_refusals: AtomicU64,
    pub challenges: AtomicU64,
}

/// Shared by every listener: the rules, and the allocations that exist.
pub struct Gate {
    config: GateConfig,
    /// The quotas in force: the configured ones until the operator changes them.
    user_quota: AtomicUsize,
    total_quota: AtomicUsize,
    allocations: Allocations,
    pub stats: GateStats,
}

/// What to do with an inbound datagram.
pub(crate) enum Verdict {
    /// Hand it to the crate.
    Pass,
    /// Hand the crate these bytes instead (re-signed with its nonce).
    Forward(Vec<u8>),
    /// Hand it to the crate (for its nonce) and answer it ourselves.
    PassAndReply(Vec<u8>),
    /// Answer it ourselves and do not hand it on.
    Reply(Vec<u8>),
    /// Neither.
    Drop,
}

/// What the gate makes of a response of the crate's.
#[derive(Default)]
pub(crate) struct Observed {
    /// What a success established, for the data plane.
    pub(crate) established: Option<Established>,
    /// What to send the client.
    pub(crate) answer: Answer,
}

/// What the client gets of a response of the crate's.
#[derive(Default)]
pub(crate) enum Answer {
    #[default]
    Crate,
    Instead(Vec<u8>),
    Nothing,
}

/// A request handed to the crate whose response we are waiting to see. The
/// crate's read loop answers one request before it reads the next, so one slot
/// per listener is enough.
pub(crate) struct Pending {
    client: SocketAddr,
    transaction: TransactionId,
    kind: PendingKind,
}

enum PendingKind {
    Allocate(Owner),
    Permissions(Vec<IpAddr>),
    Channel { number: u16, peer: SocketAddr },
}

impl Gate {
    pub(crate) fn new(config: GateConfig) -> Self {
        Self {
            user_quota: AtomicUsize::new(config.user_quota),
            total_quota: AtomicUsize::new(config.total_quota),
            config,
            allocations: Allocations::default(),
            stats: GateStats::default(),
        }
    }

    /// Allocations alive now.
    pub(crate) fn allocation_count(&self) -> usize {
        self.allocations.count()
    }

    /// The allocations that exist, for the operator.
    pub(crate) fn allocations(&self) -> &Allocations {
        &self.allocations
    }

    /// Allocations one user, and all together, may hold: (per user, total).
    pub(crate) fn quotas(&self) -> (usize, usize) {
        (
            self.user_quota.load(Ordering::Relaxed),
            self.total_quota.load(Ordering::Relaxed),
        )
    }

    /// Changes the quotas for the next Allocate.
    pub(crate) fn set_quotas(&self, per_user: usize, total: usize) {
        self.user_quota.store(per_user, Ordering::Relaxed);
        self.total_quota.store(total, Ordering::Relaxed);
    }

    /// The crate closed the allocation of `tuple` (expiry, Refresh 0, shutdown).
    pub(crate) fn release(&self, tuple: &FiveTuple) {
        self.allocations.release(tuple);
    }

    /// Decides what to do with a datagram from a client.
    pub(crate) fn inspect(
        &self,
        data: &[u8],
        tuple: FiveTuple,
        nonces: &NonceCache,
        pending: &Mutex<Option<Pending>>,
    ) -> Verdict {
        match wire::stun_type(data) {
            Some(
                wire::ALLOCATE_REQUEST
                | wire::REFRESH_REQUEST
                | wire::CREATE_PERMISSION_REQUEST
                | wire::CHANNEL_BIND_REQUEST,
            ) => {}
            // Binding is answered here, as small as RFC 8489 allows; other
            // requests are the crate's business, once they carry nothing it must
            // refuse to ignore (indications and responses are never answered).
            Some(typ) if wire::is_request(typ) => {
                let mut msg = Message::new();
                if msg.unmarshal_binary(data).is_err() {
                    return Verdict::Drop;
                }
                if let Some(refused) = self.refuse_unknown(&msg, None) {
                    return refused;
                }
                if typ == wire::BINDING_REQUEST {
                    return wire::binding_success(&msg, tuple.client)
                        .map_or(Verdict::Drop, Verdict::Reply);
                }
                return Verdict::Pass;
            }
            _ => return Verdict::Pass,
        }
        let mut msg = Message::new();
        if msg.unmarshal_binary(data).is_err() {
            return Verdict::Drop;
        }
        let method = msg.typ.method;
        let owner = self.allocations.owner(&tuple);
        if method != METHOD_ALLOCATE && owner.is_none() {
            return reply(&msg, CODE_ALLOC_MISMATCH, vec![], None);
        }
        if !msg.contains(ATTR_MESSAGE_INTEGRITY) {
            return self.challenge(&msg, CODE_UNAUTHORIZED, nonces, true);
        }
        let (Some(username), Some(realm), Some(nonce)) = (
            wire::text(&msg, ATTR_USERNAME),
            wire::text(&msg, ATTR_REALM),
            wire::text(&msg, ATTR_NONCE),
        ) else {
            return reply(&msg, CODE_BAD_REQUEST, vec![], None);
        };
        if !nonces.accepts(&nonce) {
            return self.challenge(&msg, CODE_STALE_NONCE, nonces, false);
        }
        let Some(rest) = parse_rest_username(&username) else {
            return self.refuse_auth(&msg, nonces);
        };
        if realm != self.config.realm {
            return self.refuse_auth(&msg, nonces);
        }
        let integrity = MessageIntegrity(self.config.credentials.long_term_key(&username, &realm));
        if integrity.check(&mut msg).is_err() {
            return self.refuse_auth(&msg, nonces);
        }
        // A retired key generation is refused like a wrong key, except for
        // letting an allocation go (the gate's own Refresh when a TCP client
        // leaves carries the allocation's username, whatever its generation).
        if !self.config.credentials.verifies(&rest) && !is_release(&msg) {
            return self.refuse_auth(&msg, nonces);
        }
        // After authentication, as RFC 8489 §6.3.1 orders it.
        if let Some(refused) = self.refuse_unknown(&msg, Some(integrity.clone())) {
            return refused;
        }

        if method == METHOD_ALLOCATE {
            if rest.expires_at < unix_now() {
                return self.refuse_auth(&msg, nonces);
            }
            if owner.is_some() {
                // The crate answers a second Allocate on a 5-tuple (437).
                return forward(&msg, nonces, &integrity);
            }
            // RFC 6156 / RFC 8656 §7.2: a relayed address of the requested family
            // (IPv4 when none is asked for), else 440. An unknown family value is
            // the crate's to answer (also 440).
            let available = match wire::requested_family(&msg) {
                Some(wire::FAMILY_IPV6) => self.config.relay_ipv6,
                None | Some(wire::FAMILY_IPV4) => self.config.relay_ipv4,
                Some(_) => true,
            };
            if !available {
                return reply(
                    &msg,
                    CODE_ADDR_FAMILY_NOT_SUPPORTED,
                    vec![],
                    Some(integrity),
                );
            }
            let (user_quota, total_quota) = self.quotas();
            if self
                .allocations
                .over_quota(rest.user, user_quota, total_quota)
            {
                self.stats.quota_refusals.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("webcall_turn_quota_refusals_total").increment(1);
                return reply(&msg, CODE_ALLOC_QUOTA_REACHED, vec![], Some(integrity));
            }
            let owner = Owner {
                user: rest.user.to_owned(),
                username,
            };
            *pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(Pending {
                client: tuple.client,
                transaction: msg.transaction_id,
                kind: PendingKind::Allocate(owner),
            });
            return forward(&msg, nonces, &integrity);
        }

        let owner = owner.expect("checked above for every method but Allocate");
        if owner.username != username {
            return reply(&msg, CODE_WRONG_CREDENTIALS, vec![], Some(integrity));
        }
        let typ = wire::stun_type(data);
        if matches!(
            typ,
            Some(wire::CREATE_PERMISSION_REQUEST | wire::CHANNEL_BIND_REQUEST)
        ) {
            let peers = wire::peer_addrs(&msg);
            // A channel names its port; a permission covers every port of an address.
            let policy = &self.config.policy;
            let denied = peers.iter().flatten().any(|&addr| {
                if typ == Some(wire::CHANNEL_BIND_REQUEST) {
                    !policy.permits_peer(addr)
                } else {
                    !policy.permits(addr.ip())
                }
            });
            if denied {
                self.stats.forbidden_peers.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("webcall_turn_forbidden_peers_total").increment(1);
                return reply(&msg, CODE_FORBIDDEN, vec![], Some(integrity));
            }
            // Remember what the crate is asked to establish; its success response
            // makes the data plane relay it.
            let peers: Option<Vec<SocketAddr>> = peers.into_iter().collect();
            let kind = match (typ, peers.as_deref()) {
                (Some(wire::CHANNEL_BIND_REQUEST), Some([peer])) => {
                    wire::channel_number(&msg).map(|number| PendingKind::Channel {
                        number,
                        peer: *peer,
                    })
                }
                (Some(wire::CREATE_PERMISSION_REQUEST), Some(peers)) if !peers.is_empty() => Some(
                    PendingKind::Permissions(peers.iter().map(SocketAddr::ip).collect()),
                ),
                _ => None,
            };
            *pending.lock().unwrap_or_else(|e| e.into_inner()) = kind.map(|kind| Pending {
                client: tuple.client,
                transaction: msg.transaction_id,
                kind,
            });
        }
        forward(&msg, nonces, &integrity)
    }

    /// 420 with UNKNOWN-ATTRIBUTES when `msg` carries comprehension-required
    /// attributes this server does not understand.
    fn refuse_unknown(
        &self,
        msg: &Message,
        integrity: Option<MessageIntegrity>,
    ) -> Option<Verdict> {
        let unknown = wire::unknown_required(msg);
        (!unknown.is_empty()).then(|| {
            reply(
                msg,
                CODE_UNKNOWN_ATTRIBUTE,
                vec![Box::new(stun::uattrs::UnknownAttributes(unknown))],
                integrity,
            )
        })
    }

    fn refuse_auth(&self, msg: &Message, nonces: &NonceCache) -> Verdict {
        self.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("webcall_turn_auth_failures_total").increment(1);
        self.challenge(msg, CODE_UNAUTHORIZED, nonces, false)
    }

    /// 401/438 with REALM and the gate's nonce. Now and then an unauthenticated
    /// request also goes to the crate, for a fresh crate nonce ([`NonceCache`]);
    /// the gate keeps the crate's answer to itself.
    fn challenge(
        &self,
        msg: &Message,
        code: ErrorCode,
        nonces: &NonceCache,
        unauthenticated: bool,
    ) -> Verdict {
        self.stats.challenges.fetch_add(1, Ordering::Relaxed);
        let answer = wire::error_response(msg, code, self.challenge_attributes(nonces), None);
        match answer {
            Some(answer) if unauthenticated && nonces.claim_refresh(msg.transaction_id) => {
                Verdict::PassAndReply(answer)
            }
            Some(answer) => Verdict::Reply(answer),
            None => Verdict::Drop,
        }
    }

    fn challenge_attributes(&self, nonces: &NonceCache) -> Vec<Box<dyn Setter>> {
        vec![
            Box::new(Realm::new(ATTR_REALM, self.config.realm.clone())),
            Box::new(Nonce::new(ATTR_NONCE, nonces.current())),
        ]
    }

    /// Watches a response from the crate to a client: what a success
    /// established, for the data plane; and for a 401/438 with the crate's nonce,
    /// the same answer with the gate's nonce to send instead.
    pub(crate) fn observe(
        &self,
        data: &[u8],
        tuple: FiveTuple,
        nonces: &NonceCache,
        pending: &Mutex<Option<Pending>>,
    ) -> Observed {
        let mut observed = Observed::default();
        observed.established = self.established(data, tuple, nonces, pending, &mut observed.answer);
        observed
    }

    fn established(
        &self,
        data: &[u8],
        tuple: FiveTuple,
        nonces: &NonceCache,
        pending: &Mutex<Option<Pending>>,
        answer: &mut Answer,
    ) -> Option<Established> {
        let typ = wire::stun_type(data)?;
        match typ {
            wire::CREATE_PERMISSION_SUCCESS => {
                metrics::counter!("webcall_turn_permissions_total").increment(1)
            }
            wire::CHANNEL_BIND_SUCCESS => {
                metrics::counter!("webcall_turn_channel_binds_total").increment(1)
            }
            _ => {}
        }
        let success = matches!(
            typ,
            wire::ALLOCATE_SUCCESS | wire::CREATE_PERMISSION_SUCCESS | wire::CHANNEL_BIND_SUCCESS
        );
        if !success && !wire::is_error_response(typ) {
            return None;
        }
        let mut msg = Message::new();
        if msg.unmarshal_binary(data).is_err() {
            return None;
        }
        if let Some(nonce) = wire::text(&msg, ATTR_NONCE) {
            nonces.adopt(nonce);
            if nonces.fetched(msg.transaction_id) {
                // The gate has answered that client already.
                *answer = Answer::Nothing;
                return None;
            }
            // A 438 to a request re-signed with a nonce the crate no longer
            // takes: the client retries with the gate's nonce, and the gate
            // now has the crate's fresh one.
            let mut code = ErrorCodeAttribute::default();
            if !msg.contains(ATTR_MESSAGE_INTEGRITY) && code.get_from(&msg).is_ok() {
                let instead =
                    wire::error_response(&msg, code.code, self.challenge_attributes(nonces), None);
                *answer = instead.map_or(Answer::Nothing, Answer::Instead);
            }
        }
        let done = {
            let mut pending = pending.lock().unwrap_or_else(|e| e.into_inner());
            if !pending
                .as_ref()
                .is_some_and(|p| p.client == tuple.client && p.transaction == msg.transaction_id)
            {
                return None;
            }
            pending.take().expect("checked")
        };
        if !success {
            return None;
        }
        match done.kind {
            PendingKind::Allocate(owner) if typ == wire::ALLOCATE_SUCCESS => {
                let relay = wire::relayed_addr(&msg)?;
                let traffic = self.allocations.register(tuple, owner, relay);
                Some(Established::Allocation { relay, traffic })
            }
            PendingKind::Permissions(ips) if typ == wire::CREATE_PERMISSION_SUCCESS => {
                Some(Established::Permissions(ips))
            }
            PendingKind::Channel { number, peer } if typ == wire::CHANNEL_BIND_SUCCESS => {
                Some(Established::Channel { number, peer })
            }
            _ => None,
        }
    }

    /// A signed Refresh(lifetime 0) for the allocation of `tuple`, to hand to the
    /// crate when the client's TCP connection is gone. It goes through the gate
    /// like a client's request, so it carries the gate's nonce.
    pub(crate) fn closing_refresh(
        &self,
        tuple: &FiveTuple,
        nonces: &NonceCache,
    ) -> Option<Vec<u8>> {
        let owner = self.allocations.owner(tuple)?;
        let nonce = nonces.current();
        let key = self
            .config
            .credentials
            .long_term_key(&owner.username, &self.config.realm);
        let setters: Vec<Box<dyn Setter>> = vec![
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(METHOD_REFRESH, CLASS_REQUEST)),
            Box::new(Lifetime(Duration::ZERO)),
            Box::new(Username::new(ATTR_USERNAME, owner.username)),
            Box::new(Realm::new(ATTR_REALM, self.config.realm.clone())),
            Box::new(Nonce::new(ATTR_NONCE, nonce)),
            Box::new(MessageIntegrity(key)),
            Box::new(FINGERPRINT),
        ];
        let mut msg = Message::new();
        msg.build(&setters).ok()?;
        Some(msg.raw)
    }
}

/// Hands an authenticated request to the crate, signed again with the crate's
/// nonce in place of the gate's.
fn forward(msg: &Message, nonces: &NonceCache, integrity: &MessageIntegrity) -> Verdict {
    wire::with_nonce(msg, &nonces.upstream(), integrity).map_or(Verdict::Drop, Verdict::Forward)
}

fn reply(
    msg: &Message,
    code: ErrorCode,
    extra: Vec<Box<dyn Setter>>,
    integrity: Option<MessageIntegrity>,
) -> Verdict {
    wire::error_response(msg, code, extra, integrity).map_or(Verdict::Drop, Verdict::Reply)
}

/// A Refresh asking for lifetime 0: the client lets its allocation go.
fn is_release(msg: &Message) -> bool {
    let mut lifetime = Lifetime::default();
    msg.typ.method == METHOD_REFRESH && lifetime.get_from(msg).is_ok() && lifetime.0.is_zero()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
