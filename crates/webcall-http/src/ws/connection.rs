//! One signaling connection's socket: the join (through the lobby, `lobby`), the reader (in `reader`) and
//! the writer task that owns the sink (hub events, replies, pings, the close
//! frame, written in batches), then the linger for the client's close reply and
//! the leave, or the detach with what was never written handed back.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use chrono::{DateTime, Utc};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use webcall_app::hub::{CloseReason, Hub, JoinRequest, Outbox};

use super::control::{Control, ControlQueue};
use super::lobby;
use super::protocol::{close_code, hub_close, outbound_frame, ServerFrame, MAX_FRAME_BYTES};
use super::reader::{read_loop, Ending};
use super::session::Joined;
use super::WsOptions;
use crate::memory;

/// The upgrade with the socket's frame limit and buffer sizes.
pub(super) fn sized(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        // tungstenite's defaults (128 KiB each) would cost a quarter MiB per idle
        // peer; signaling frames are small (and its read buffer is zero-filled,
        // so every byte of it counts). Frames queued together are written
        // together (see `send_queued`), up to this much.
        .read_buffer_size(1024)
        .write_buffer_size(WRITE_BATCH_BYTES)
}

/// Runs one upgraded connection: the join, then its reader (this task) and
/// writer until it ends, then the leave or the detach.
pub(super) async fn serve(
    mut socket: WebSocket,
    hub: Arc<Hub>,
    request: JoinRequest,
    expires_at: DateTime<Utc>,
    options: WsOptions,
) {
    // Boxed, as is each frame's handling: a connection's task then holds only
    // what waiting for the next frame needs (about 5 KiB less per peer).
    // The join, through the room's lobby when it says so.
    let Some(joined) = Box::pin(lobby::enter(&mut socket, hub, request, options)).await else {
        return;
    };
    let Joined {
        session,
        welcome,
        outbound,
        close,
    } = joined;
    let closed_by_hub = close.clone();
    let (sink, mut stream) = socket.split();
    let control = Arc::new(ControlQueue::default());
    let mut writer = tokio::spawn(write_loop(
        sink,
        ServerFrame::Welcome(&welcome, options.attachment_max_bytes).to_json(),
        outbound,
        close,
        control.clone(),
        expires_at,
        options.ping_interval,
    ));
    // A writer that gave up (the client stopped reading) ends the connection too.
    let mut unsent = None;
    let ending = tokio::select! {
        ending = read_loop(&mut stream, &session, &control, options) => ending,
        done = &mut writer => {
            unsent = Some(done.ok());
            Ending::Lost
        }
    };
    match &ending {
        Ending::Leave => Box::pin(session.leave()).await,
        Ending::Lost => session.detach(),
    }
    // The writer sends what is queued and the close frame. Meanwhile keep reading
    // (and discarding) until the client answers the close: closing a socket with
    // unread input makes the kernel send a reset, which can destroy our close
    // frame before the client reads it.
    control.close();
    let linger = tokio::time::sleep(CLOSE_LINGER);
    tokio::pin!(linger);
    loop {
        tokio::select! {
            () = &mut linger => break,
            done = &mut writer, if unsent.is_none() => unsent = Some(done.ok()),
            next = stream.next() => match next {
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let unsent = match unsent {
        Some(done) => done,
        None => tokio::time::timeout(CLOSE_LINGER, writer)
            .await
            .ok()
            .and_then(Result::ok),
    };
    // Frames queued for a lost connection but never written go back to the hub,
    // ahead of what it buffered since, for the resume.
    if let (Ending::Lost, Some(mut queue)) = (ending, unsent) {
        let mut frames = Vec::new();
        while let Some(frame) = queue.try_recv() {
            frames.push(frame);
        }
        session.requeue(frames);
    }
    if *closed_by_hub.borrow() == Some(CloseReason::SlowConsumer) {
        // Its queue is freed now, its resume buffer when the grace ends.
        memory::trim_after(Duration::ZERO);
        memory::trim_after(session.resume_grace() + Duration::from_secs(1));
    }
}

/// How long a closing connection waits for the client's close reply.
const CLOSE_LINGER: Duration = Duration::from_secs(3);

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    welcome: String,
    mut outbound: Outbox,
    mut close: watch::Receiver<Option<CloseReason>>,
    control: Arc<ControlQueue>,
    expires_at: DateTime<Utc>,
    ping_interval: Duration,
) -> Outbox {
    let expiry = (expires_at - Utc::now()).to_std().unwrap_or_default();
    let expired = tokio::time::sleep(expiry);
    tokio::pin!(expired);
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
    if !send_queued(&mut sink, welcome, &mut outbound).await {
        return outbound;
    }
    let closing: (u16, &'static str) = loop {
        tokio::select! {
            biased;
            item = control.recv() => match item {
                Some(Control::Frame(frame)) => {
                    if !send(&mut sink, Message::Text(frame.into())).await { return outbound; }
                }
                Some(Control::Close(code, reason)) => break (code, reason),
                // The reader is done: close with the hub's reason, if it gave one
                // (a `leave`), else just let the connection go.
                None => match *close.borrow() {
                    Some(reason) => break hub_close(reason),
                    None => return outbound,
                },
            },
            changed = close.changed() => {
                let reason = if changed.is_ok() { *close.borrow() } else { None };
                match reason {
                    // The peer is gone for good (a deleted room's last words are
                    // the others' `peer_left`): what is queued goes out first. A
                    // slow consumer's or replaced connection's queue is kept for
                    // its resume instead, and a shutdown does not wait.
                    Some(
                        reason @ (CloseReason::RoomDeleted
                        | CloseReason::Kicked
                        | CloseReason::TokenRevoked
                        | CloseReason::Banned),
                    ) => {
                        if !send_all_queued(&mut sink, &mut outbound).await { return outbound; }
                        break hub_close(reason)
                    }
                    Some(reason) => break hub_close(reason),
                    // The hub let go of this connection (it was detached).
                    None if changed.is_err() => break (close_code::NORMAL, "closed"),
                    None => continue,
                }
            }
            frame = outbound.recv() => match frame {
                Some(frame) => {
                    let text = outbound_frame(&frame);
                    // Let the tasks that are ready run first: in a burst (a room's
                    // peers joining at once) more of the room's events queue up
                    // behind this one and go out in the same write.
                    tokio::task::yield_now().await;
                    if !send_queued(&mut sink, text, &mut outbound).await { return outbound; }
                }
                None => break (close_code::NORMAL, "closed"),
            },
            _ = ping.tick() => {
                if !send(&mut sink, Message::Ping(Default::default())).await { return outbound; }
            }
            () = &mut expired => break (close_code::TOKEN, "token expired"),
        }
    };
    send(
        &mut sink,
        Message::Close(Some(CloseFrame {
            code: closing.0,
            reason: Utf8Bytes::from_static(closing.1),
        })),
    )
    .await;
    outbound
}

/// A client that does not read for this long is cut off (its reader may be
/// stuck too; the hub has detached it as a slow consumer already).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of frames the writer buffers before writing them out.
const WRITE_BATCH_BYTES: usize = 2 * 1024;

/// Most frames written with one flush.
const WRITE_BATCH_FRAMES: usize = 64;

/// Writes the frame `first` and the hub's frames queued behind it already with
/// one flush, so a burst of room events (a room's peers joining at once) costs
/// one write, not one per frame.
async fn send_queued(
    sink: &mut SplitSink<WebSocket, Message>,
    first: String,
    outbound: &mut Outbox,
) -> bool {
    let write = async {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(text) = next.take() {
            metrics::counter!("webcall_ws_frames_total", "direction" => "out").increment(1);
            sink.feed(Message::Text(text.into())).await?;
            while taken < WRITE_BATCH_FRAMES && next.is_none() {
                let Some(frame) = outbound.try_recv() else {
                    break;
                };
                taken += 1;
                next = Some(outbound_frame(&frame));
            }
        }
        sink.flush().await
    };
    matches!(tokio::time::timeout(SEND_TIMEOUT, write).await, Ok(Ok(())))
}

/// Writes every frame the hub has queued already.
async fn send_all_queued(sink: &mut SplitSink<WebSocket, Message>, outbound: &mut Outbox) -> bool {
    while let Some(frame) = outbound.try_recv() {
        let text = outbound_frame(&frame);
        if !send_queued(sink, text, outbound).await {
            return false;
        }
    }
    true
}

async fn send(sink: &mut SplitSink<WebSocket, Message>, message: Message) -> bool {
    if matches!(message, Message::Text(_)) {
        metrics::counter!("webcall_ws_frames_total", "direction" => "out").increment(1);
    }
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, sink.send(message)).await,
        Ok(Ok(()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of what `f` returns (a future), without calling it.
    fn returned<A, B, C, D, E, R>(_: impl Fn(A, B, C, D, E) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    fn returned7<A, B, C, D, E, F, G, R>(_: impl Fn(A, B, C, D, E, F, G) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// Every idle peer holds its reader and writer tasks: the join, a frame's
    /// handling and the leave are boxed so they do not size them (the reader
    /// was 5,240 bytes before).
    #[test]
    fn an_idle_connections_tasks_stay_small() {
        let (reader, writer) = (returned(serve), returned7(write_loop));
        assert!(reader <= 3 * 1024, "serve: {reader} bytes");
        assert!(writer <= 1024, "write_loop: {writer} bytes");
    }
}
