//! A connection's reader: frames in, the idle timeout, the rate limit, each
//! frame carried out through the session, replies and closes to the writer.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::stream::SplitStream;
use futures_util::{Stream, StreamExt};

use super::control::{Control, ControlQueue};
use super::protocol::{close_code, error_code, FrameError};
use super::rate_limiter::{Admit, RateLimiter};
use super::session::{Handled, PeerSession};
use super::WsOptions;

pub(super) enum Ending {
    /// `leave` or a normal close: gone now.
    Leave,
    /// Dropped, timed out, or closed by the server: keep the peer for the resume grace.
    Lost,
}

pub(super) async fn read_loop(
    stream: &mut SplitStream<WebSocket>,
    session: &PeerSession,
    control: &ControlQueue,
    options: WsOptions,
) -> Ending {
    let peer_id = session.peer_id();
    let mut limiter = RateLimiter::new(options.rate_per_sec, options.burst);
    loop {
        let message = match next_incoming(stream, options.idle_timeout).await {
            Incoming::Message(message) => message,
            Incoming::Silent => {
                tracing::info!(%peer_id, "silent connection closed");
                control.send(Control::Close(close_code::GOING_AWAY, "idle"));
                return Ending::Lost;
            }
            Incoming::TooBig => {
                control.send(Control::Close(close_code::TOO_BIG, "frame too big"));
                return Ending::Lost;
            }
            Incoming::Gone => return Ending::Lost,
        };
        let text = match message {
            Message::Text(text) => text,
            Message::Close(frame) => {
                return match frame {
                    Some(frame) if frame.code == close_code::NORMAL => Ending::Leave,
                    _ => Ending::Lost,
                };
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Binary(_) => {
                control.send(Control::Frame(
                    FrameError::new(error_code::UNSUPPORTED_FRAME, "frames are JSON text")
                        .to_json(),
                ));
                continue;
            }
        };
        metrics::counter!("webcall_ws_frames_total", "direction" => "in").increment(1);
        match limiter.take() {
            Admit::Yes => {}
            Admit::No { warn } => {
                if warn {
                    control.send(Control::Frame(
                        FrameError::new(error_code::RATE_LIMITED, "too many frames; slow down")
                            .to_json(),
                    ));
                }
                continue;
            }
            Admit::Abuse => {
                control.send(Control::Close(close_code::RATE_ABUSE, "rate limit"));
                return Ending::Lost;
            }
        }
        match Box::pin(session.handle(text.as_str())).await {
            Ok(Handled::Reply(frame)) => {
                control.send(Control::Frame(frame));
            }
            Ok(Handled::Done) => {}
            Ok(Handled::Leave) => return Ending::Leave,
            Err(error) => {
                control.send(Control::Frame(error.to_json()));
            }
        }
    }
}

/// What the reader gets next from the client.
enum Incoming {
    Message(Message),
    /// Nothing at all (not even a pong to our pings) for the idle timeout.
    Silent,
    /// A frame over `MAX_FRAME_BYTES`.
    TooBig,
    /// The connection ended or broke.
    Gone,
}

/// The client's next message, or what stopped it coming.
async fn next_incoming<S>(stream: &mut S, idle_timeout: Duration) -> Incoming
where
    S: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    match tokio::time::timeout(idle_timeout, stream.next()).await {
        Err(_) => Incoming::Silent,
        Ok(None) => Incoming::Gone,
        Ok(Some(Err(err))) if is_too_big(&err) => Incoming::TooBig,
        Ok(Some(Err(err))) => {
            tracing::debug!(error = ?err, "websocket read failed");
            Incoming::Gone
        }
        Ok(Some(Ok(message))) => Incoming::Message(message),
    }
}

/// The frame was over `MAX_FRAME_BYTES` (tungstenite's capacity error under axum's).
fn is_too_big(err: &axum::Error) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|err| matches!(err, tungstenite::Error::Capacity(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_client_silent_for_the_idle_timeout_is_cut_off_and_one_that_answers_pings_is_not() {
        let idle = Duration::from_secs(45);
        let start = tokio::time::Instant::now();
        let mut silent = futures_util::stream::pending::<Result<Message, axum::Error>>();
        assert!(matches!(
            next_incoming(&mut silent, idle).await,
            Incoming::Silent
        ));
        assert_eq!(start.elapsed(), idle);

        // A pong every 40 s (the answer to our pings) keeps it.
        let start = tokio::time::Instant::now();
        let mut answering = Box::pin(futures_util::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_secs(40)).await;
            Some((Ok(Message::Pong(Default::default())), ()))
        }));
        for _ in 0..5 {
            assert!(matches!(
                next_incoming(&mut answering, idle).await,
                Incoming::Message(Message::Pong(_))
            ));
        }
        assert_eq!(start.elapsed(), Duration::from_secs(200));
    }
}
