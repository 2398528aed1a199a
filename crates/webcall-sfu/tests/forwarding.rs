//! Real str0m participants over loopback UDP against `Sfu::bind`: forwarding,
//! simulcast layer choice, pausing, the loudest speakers, bad input and
//! participants leaving.

mod support;

use std::time::Duration;

use support::{room, sfu, sfu_on, wait_until, Peer, Sends};
use webcall_domain::media::{MediaRouter, SfuSignal, TileView, TrackSource};

/// Whether `peer` got `sender`'s audio and video, on m-lines the server said
/// carry `sender`'s mic and camera.
fn got_both_from(peer: &Peer, sender: &Peer) -> bool {
    let frames = peer.frames();
    let owned = |video: bool, source: TrackSource| {
        frames.iter().any(|f| {
            f.video == video
                && f.sender == sender.index
                && f.owner
                    .as_ref()
                    .is_some_and(|o| o.peer_id == sender.id && o.source == source)
        })
    };
    owned(false, TrackSource::Mic) && owned(true, TrackSource::Camera)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_participants_get_each_others_audio_and_video() {
    let sfu = sfu(3).await;
    let room = room("three");
    let mut peers = Vec::new();
    for i in 0..3 {
        // The last one's session is open a while before it offers: the
        // others' tracks come meanwhile.
        let offer_after = Duration::from_millis(if i == 2 { 1500 } else { 0 });
        let sends = Sends {
            offer_after,
            ..Sends::default()
        };
        peers.push(Peer::join(&sfu, &room, i, sends).await);
    }
    for p in &peers {
        for other in peers.iter().filter(|o| o.index != p.index) {
            wait_until(&format!("{} gets {}", p.id, other.id), || {
                got_both_from(p, other)
            })
            .await;
        }
    }
    for p in &peers {
        let frames = p.frames();
        assert!(
            frames.iter().all(|f| f.sender != p.index),
            "nobody gets its own media back"
        );
        // Before any View the server sends the middle layer.
        assert!(
            frames.iter().filter(|f| f.video).all(|f| f.layer == 1),
            "{frames:?}"
        );
        assert!(frames.iter().all(|f| f
            .owner
            .as_ref()
            .is_some_and(|o| o.peer_id.as_str() == format!("peer{}", f.sender))));
        assert!(p.errors().is_empty(), "{:?}", p.errors());
        // Each of the others' tracks on exactly one m-line.
        let seen = p.seen.lock().unwrap();
        let mut tracks: Vec<_> = seen
            .offers
            .last()
            .unwrap()
            .iter()
            .map(|t| (t.peer_id.clone(), t.source))
            .collect();
        tracks.sort_by(|a, b| a.0.cmp(&b.0));
        let count = tracks.len();
        tracks.dedup();
        assert_eq!((count, tracks.len()), (4, 4), "{tracks:?}");
    }
    let stats = sfu.stats();
    assert_eq!((stats.sessions, stats.rooms), (3, 1));
    wait_until("forwarded packets counted", || {
        sfu.stats().forwarded_packets > 0
    })
    .await;
    sfu.shutdown();
}

/// One dual-stack socket (`[::]`) serves an IPv6 participant and an IPv4 one:
/// each gets the other's audio and video, over its own family.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_and_an_ipv4_participant_share_the_dual_stack_socket() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        // Unlike the browser tests, this is a property of the machine, not of
        // what is installed: a host without IPv6 cannot run it.
        eprintln!("SKIPPED: no IPv6 loopback on this machine");
        assert!(
            std::env::var_os("CI").is_none(),
            "CI machines have IPv6 loopback"
        );
        return;
    }
    let sfu = sfu_on((std::net::Ipv6Addr::UNSPECIFIED, 0).into(), 3).await;
    assert!(
        sfu.candidates().iter().any(|c| c.is_ipv4()),
        "{:?}",
        sfu.candidates()
    );
    assert!(
        sfu.candidates().iter().any(|c| c.is_ipv6()),
        "{:?}",
        sfu.candidates()
    );
    let room = room("families");
    let six = Peer::join(
        &sfu,
        &room,
        0,
        Sends {
            ipv6: true,
            ..Sends::default()
        },
    )
    .await;
    let four = Peer::join(&sfu, &room, 1, Sends::default()).await;
    wait_until("each gets the other's audio and video", || {
        got_both_from(&six, &four) && got_both_from(&four, &six)
    })
    .await;
    for peer in [&six, &four] {
        assert!(peer.errors().is_empty(), "{:?}", peer.errors());
    }
    sfu.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_switches_the_layer_at_a_key_frame_and_zero_pauses_it() {
    let sfu = sfu(3).await;
    let room = room("views");
    let a = Peer::join(&sfu, &room, 0, Sends::default()).await;
    let b = Peer::join(&sfu, &room, 1, Sends::default()).await;
    let from_a = |layer: u8| {
        move |s: &support::Seen| {
            s.frames
                .iter()
                .any(|f| f.video && f.sender == 0 && f.layer == layer)
        }
    };
    b.wait_for("b gets a's h layer", from_a(1)).await;

    let view = |width, height| SfuSignal::View {
        tiles: vec![TileView {
            peer_id: a.id.clone(),
            source: TrackSource::Camera,
            width,
            height,
        }],
    };
    sfu.signal(&b.id, view(1280, 720));
    b.wait_for("b gets a's f layer", from_a(2)).await;
    sfu.signal(&b.id, view(320, 180));
    b.wait_for("b gets a's q layer", from_a(0)).await;

    // Every change of layer happened at a key frame of the new layer.
    let video: Vec<_> = b
        .frames()
        .into_iter()
        .filter(|f| f.video && f.sender == 0)
        .collect();
    assert!(video[0].key_frame);
    for pair in video.windows(2) {
        if pair[0].layer != pair[1].layer {
            assert!(
                pair[1].key_frame,
                "switched to layer {} on an inter frame",
                pair[1].layer
            );
        }
    }

    // Not shown: nothing more arrives (give in-flight frames time to land).
    sfu.signal(&b.id, view(0, 0));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = b
        .frames()
        .iter()
        .filter(|f| f.video && f.sender == 0)
        .count();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = b
        .frames()
        .iter()
        .filter(|f| f.video && f.sender == 0)
        .count();
    assert_eq!(before, after, "a paused video kept coming");
    // Audio still flows while the video is paused.
    let audio_before = b.frames().iter().filter(|f| !f.video).count();
    wait_until("audio keeps flowing", || {
        b.frames().iter().filter(|f| !f.video).count() > audio_before
    })
    .await;

    // Shown again: it resumes with a key frame.
    sfu.signal(&b.id, view(640, 360));
    wait_until("a's video resumes", || {
        b.frames()
            .iter()
            .filter(|f| f.video && f.sender == 0)
            .count()
            > after
    })
    .await;
    let resumed = b
        .frames()
        .into_iter()
        .filter(|f| f.video && f.sender == 0)
        .nth(after)
        .unwrap();
    assert!(resumed.key_frame && resumed.layer == 1, "{resumed:?}");
    sfu.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_five_speakers_each_gets_only_the_three_loudest() {
    let sfu = sfu(3).await;
    let room = room("loud");
    let mut peers = Vec::new();
    for i in 0..5u8 {
        let sends = Sends {
            video: false,
            audio_level: 10 + 20 * i as i8,
            ..Sends::default()
        };
        peers.push(Peer::join(&sfu, &room, i, sends).await);
    }
    // Everyone hears someone, then the choice settles.
    for p in &peers {
        wait_until("audio arrives", || !p.frames().is_empty()).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for p in &peers {
        p.clear();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for p in &peers {
        let mut senders: Vec<u8> = p.frames().iter().map(|f| f.sender).collect();
        senders.sort_unstable();
        senders.dedup();
        let expected: Vec<u8> = (0..3).filter(|&s| s != p.index).collect();
        assert_eq!(
            senders, expected,
            "peer {} hears the three loudest but itself",
            p.index
        );
    }
    sfu.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_the_others_keep_flowing() {
    let sfu = sfu(3).await;
    let room = room("bad");
    let a = Peer::join(&sfu, &room, 0, Sends::default()).await;
    let b = Peer::join(&sfu, &room, 1, Sends::default()).await;
    wait_until("a and b exchange media", || {
        got_both_from(&a, &b) && got_both_from(&b, &a)
    })
    .await;

    let (tx, mut errors) = tokio::sync::mpsc::unbounded_channel();
    let c = webcall_domain::signaling::PeerId::from_client("mallory");
    sfu.open(
        &room,
        &c,
        "mallory",
        std::sync::Arc::new(move |r| drop(tx.send(r))),
    )
    .unwrap();
    sfu.signal(
        &c,
        SfuSignal::Offer {
            sdp: "v=0\r\nthis is not sdp".into(),
            tracks: Vec::new(),
            fresh: true,
        },
    );
    sfu.signal(
        &c,
        SfuSignal::Candidate {
            candidate: "candidate:nonsense".into(),
            sdp_mid: None,
        },
    );
    let mut codes = Vec::new();
    for _ in 0..2 {
        match tokio::time::timeout(support::PATIENCE, errors.recv())
            .await
            .unwrap()
            .unwrap()
        {
            webcall_domain::media::SfuReply::Error { code, .. } => codes.push(code),
            other => panic!("unexpected reply {other:?}"),
        }
    }
    assert_eq!(codes, ["bad_sdp", "bad_candidate"]);

    let (a_before, b_before) = (a.frames().len(), b.frames().len());
    wait_until("media keeps flowing", || {
        a.frames().len() > a_before + 50 && b.frames().len() > b_before + 50
    })
    .await;
    assert!(a.errors().is_empty(), "{:?}", a.errors());
    sfu.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_leaving_brings_an_offer_without_its_tracks() {
    let sfu = sfu(3).await;
    let room = room("leave");
    let peers = [
        Peer::join(&sfu, &room, 0, Sends::default()).await,
        Peer::join(&sfu, &room, 1, Sends::default()).await,
        Peer::join(&sfu, &room, 2, Sends::default()).await,
    ];
    wait_until("a gets b and c", || {
        got_both_from(&peers[0], &peers[1]) && got_both_from(&peers[0], &peers[2])
    })
    .await;
    let offers_before = peers[0].seen.lock().unwrap().offers.len();
    sfu.close(&peers[2].id);
    peers[2].stop();
    peers[0]
        .wait_for("an offer without c's tracks", |s| {
            s.offers.len() > offers_before
                && s.offers
                    .last()
                    .unwrap()
                    .iter()
                    .all(|t| t.peer_id != peers[2].id)
                && s.offers
                    .last()
                    .unwrap()
                    .iter()
                    .filter(|t| t.peer_id == peers[1].id)
                    .count()
                    == 2
        })
        .await;
    wait_until("one session fewer", || sfu.stats().sessions == 2).await;
    peers[0].clear();
    wait_until("b's media still comes", || {
        got_both_from(&peers[0], &peers[1])
    })
    .await;
    assert!(peers[0].frames().iter().all(|f| f.sender != 2));
    assert!(peers[0].errors().is_empty(), "{:?}", peers[0].errors());
    sfu.shutdown();
}

/// An offer of a participant's own, made with a bare str0m peer (no network).
fn bare_offer(rtc: &mut str0m::Rtc, video: bool) -> SfuSignal {
    use str0m::media::{Direction, MediaKind};
    let mut api = rtc.sdp_api();
    let (kind, source) = if video {
        (MediaKind::Video, TrackSource::Camera)
    } else {
        (MediaKind::Audio, TrackSource::Mic)
    };
    let mid = api.add_media(kind, Direction::SendOnly, None, None, None);
    let (offer, _pending) = api.apply().unwrap();
    SfuSignal::Offer {
        sdp: offer.to_sdp_string(),
        tracks: vec![webcall_domain::media::SentTrack {
            mid: mid.to_string(),
            source,
        }],
        fresh: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_while_the_servers_is_outstanding_is_busy() {
    use webcall_domain::media::SfuReply;
    let sfu = sfu(3).await;
    let room = room("glare");
    let open = |name: &str| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let peer = webcall_domain::signaling::PeerId::from_client(name);
        sfu.open(
            &room,
            &peer,
            name,
            std::sync::Arc::new(move |r| drop(tx.send(r))),
        )
        .unwrap();
        (peer, rx)
    };
    async fn recv(rx: &mut tokio::sync::mpsc::UnboundedReceiver<SfuReply>, what: &str) -> SfuReply {
        match tokio::time::timeout(support::PATIENCE, rx.recv()).await {
            Ok(Some(reply)) => reply,
            _ => panic!("no reply: {what}"),
        }
    }

    let (x, mut x_replies) = open("x");
    let mut x_rtc = str0m::Rtc::new(std::time::Instant::now());
    sfu.signal(&x, bare_offer(&mut x_rtc, false));
    assert!(matches!(
        recv(&mut x_replies, "x answered").await,
        SfuReply::Answer { .. }
    ));

    // y (a connected participant) starts sending: the server offers y's tracks
    // to x (tracks are offered once their sender is connected).
    let y = Peer::join(&sfu, &room, 1, Sends::default()).await;
    match recv(&mut x_replies, "offer to x").await {
        SfuReply::Offer { tracks, .. } => {
            assert!(!tracks.is_empty());
            assert!(tracks.iter().all(|t| t.peer_id == y.id));
        }
        other => panic!("expected the server's offer, got {other:?}"),
    }
    // x offers too before answering: busy.
    sfu.signal(&x, bare_offer(&mut x_rtc, true));
    match recv(&mut x_replies, "busy").await {
        SfuReply::Error { code, .. } => assert_eq!(code, "busy"),
        other => panic!("expected busy, got {other:?}"),
    }
    sfu.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_participants_joining_over_each_other_all_get_everyone() {
    let sfu = sfu(10).await;
    let room = room("six");
    let mut peers = Vec::new();
    for i in 0..6 {
        peers.push(Peer::join(&sfu, &room, i, Sends::default()).await);
        tokio::time::sleep(Duration::from_millis(u64::from(i % 3) * 40)).await;
    }
    for p in &peers {
        for other in peers.iter().filter(|o| o.index != p.index) {
            wait_until(&format!("{} gets {}", p.id, other.id), || {
                got_both_from(p, other)
            })
            .await;
        }
    }
    sfu.shutdown();
}
