//! Recording taps: a recorded room's frames reach its recording, timed and
//! with key frame sizes, until the recording stops or the room empties.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::recording::{Keeper, Tape};
use support::{room, sfu, wait_until, Peer, Sends, SIZES};
use webcall_domain::media::{MediaKind, MediaRouter, TrackSource};
use webcall_domain::DomainError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_gets_every_participants_frames_in_order() {
    let sfu = sfu(3).await;
    let room = room("recorded");
    let a = Peer::join(&sfu, &room, 0, Sends::default()).await;
    let b = Peer::join(&sfu, &room, 1, Sends::default()).await;
    wait_until("media flows", || {
        a.frames().iter().any(|f| f.video) && b.frames().iter().any(|f| f.video)
    })
    .await;

    let tape = Arc::new(Mutex::new(Tape::default()));
    sfu.record(&room, Box::new(Keeper(tape.clone()))).unwrap();
    let second = sfu.record(
        &room,
        Box::new(Keeper(Arc::new(Mutex::new(Tape::default())))),
    );
    assert!(matches!(
        second,
        Err(DomainError::Invalid {
            field: "recording",
            ..
        })
    ));

    let enough = |t: &Tape, peer: &webcall_domain::signaling::PeerId| {
        let mine = t.frames.iter().filter(|f| f.peer == *peer);
        let (audio, video): (Vec<_>, Vec<_>) = mine.partition(|f| f.kind == MediaKind::Audio);
        audio.len() > 50 && video.len() > 25
    };
    wait_until("both participants recorded", || {
        let t = tape.lock().unwrap();
        enough(&t, &a.id) && enough(&t, &b.id)
    })
    .await;

    {
        let t = tape.lock().unwrap();
        for peer in [&a, &b] {
            let video: Vec<_> = t
                .frames
                .iter()
                .filter(|f| f.peer == peer.id && f.kind == MediaKind::Video)
                .collect();
            // The highest layer, from a key frame on, with its size read from the header.
            assert!(video[0].keyframe);
            assert_eq!(video[0].size, Some(SIZES[2]));
            assert!(video
                .iter()
                .all(|f| f.source == TrackSource::Camera && f.data[10..12] == [peer.index, 2]));
            assert!(video.iter().all(|f| f.keyframe == f.size.is_some()));
            let audio: Vec<_> = t
                .frames
                .iter()
                .filter(|f| f.peer == peer.id && f.kind == MediaKind::Audio)
                .collect();
            assert!(audio
                .iter()
                .all(|f| f.keyframe && f.source == TrackSource::Mic));
            for frames in [&video, &audio] {
                assert!(
                    frames.windows(2).all(|w| w[0].at < w[1].at),
                    "times increase"
                );
            }
            // 25 video frames take about a second of the sender's clock.
            let span = video.last().unwrap().at - video[0].at;
            assert!(span > Duration::from_millis(500), "{span:?}");
        }
        assert!(t.left.is_empty() && !t.finished);
    }

    sfu.close(&b.id);
    b.stop();
    wait_until("b's files are finished", || {
        tape.lock().unwrap().left == [b.id.clone()]
    })
    .await;
    assert!(sfu.stop_recording(&room));
    wait_until("the recording is finished", || {
        tape.lock().unwrap().finished
    })
    .await;
    assert!(!sfu.stop_recording(&room), "nothing left to stop");
    sfu.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_ends_with_its_room_or_the_server() {
    let sfu = sfu(3).await;
    let emptied = room("emptied");
    let a = Peer::join(&sfu, &emptied, 0, Sends::default()).await;
    let tape = Arc::new(Mutex::new(Tape::default()));
    sfu.record(&emptied, Box::new(Keeper(tape.clone())))
        .unwrap();
    wait_until("a recorded", || !tape.lock().unwrap().frames.is_empty()).await;
    sfu.close(&a.id);
    a.stop();
    wait_until("finished when the room empties", || {
        tape.lock().unwrap().finished
    })
    .await;
    assert_eq!(tape.lock().unwrap().left, std::slice::from_ref(&a.id));

    let other = room("other");
    let tape = Arc::new(Mutex::new(Tape::default()));
    sfu.record(&other, Box::new(Keeper(tape.clone()))).unwrap();
    sfu.shutdown();
    wait_until("finished at shutdown", || tape.lock().unwrap().finished).await;
}
