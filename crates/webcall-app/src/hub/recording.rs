//! Recording a routed call: a host starts it (the room becomes routed if it
//! is not), the [`Recorder`](webcall_domain::media::Recorder) opens its files
//! and the media end writes the room's media into them; everyone in the room
//! is told (clients show a red mark: consent). A host stops it, or it stops
//! when the room empties (`media::settle_media`) or the server shuts down.

use webcall_domain::media::{MediaMode, RecordingId};
use webcall_domain::signaling::{ActiveRecording, Envelope, ModeReason, PeerId, RoomEvent};

use super::Hub;
use crate::error::MediaRefusal;
use crate::AppError;

impl Hub {
    /// A host starts recording its room.
    pub async fn start_recording(&self, from: &PeerId) -> Result<(), AppError> {
        let room = self.hosted_room(from).await?;
        let router = self.router()?;
        let recorder = self
            .deps
            .recorder
            .clone()
            .ok_or(AppError::Media(MediaRefusal::SfuUnavailable))?;
        let (_, info) = self.room_of(from)?;
        let recording = ActiveRecording {
            id: RecordingId::new_random(),
            by: from.clone(),
            username: info.username,
            started_at: self.deps.clock.now(),
        };
        {
            let mut local = self.lock();
            let local_room = local.rooms.get_mut(&room).ok_or(AppError::PeerNotFound)?;
            if local_room.media.recording.is_some() {
                return Err(AppError::Media(MediaRefusal::RecordingRunning));
            }
            local_room.media.recording = Some(recording.clone());
        }
        let started = async {
            self.switch(&room, MediaMode::Sfu, Some(from), ModeReason::Recording)
                .await?;
            let (name, id, by) = (
                room.clone(),
                recording.id.clone(),
                recording.username.clone(),
            );
            // It makes a directory and writes a manifest.
            let files = tokio::task::spawn_blocking(move || recorder.start(&name, &id, &by))
                .await
                .map_err(|e| {
                    webcall_domain::DomainError::infrastructure(format!("recorder: {e}"))
                })??;
            router.record(&room, files)?;
            Ok::<_, AppError>(())
        };
        if let Err(err) = started.await {
            let mut local = self.lock();
            if let Some(local_room) = local.rooms.get_mut(&room) {
                let media = &mut local_room.media;
                if media.recording.as_ref().map(|r| &r.id) == Some(&recording.id) {
                    media.recording = None;
                }
            }
            tracing::warn!(%room, error = %err, "recording did not start");
            return Err(err);
        }
        tracing::info!(%room, recording = %recording.id, by = %from, "recording started");
        self.dispatch(Envelope {
            room,
            to: None,
            except: None,
            event: RoomEvent::RecordingStarted { recording },
        })
        .await;
        Ok(())
    }

    /// A host stops its room's recording: its files are finished.
    pub async fn stop_recording(&self, from: &PeerId) -> Result<(), AppError> {
        let room = self.hosted_room(from).await?;
        let router = self.router()?;
        let stopped = {
            let mut local = self.lock();
            let local_room = local.rooms.get_mut(&room).ok_or(AppError::PeerNotFound)?;
            local_room.media.recording.take()
        };
        let recording = stopped.ok_or(AppError::Media(MediaRefusal::NotRecording))?;
        router.stop_recording(&room);
        tracing::info!(%room, recording = %recording.id, by = %from, "recording stopped");
        self.dispatch(Envelope {
            room,
            to: None,
            except: None,
            event: RoomEvent::RecordingStopped {
                id: recording.id,
                by: Some(from.clone()),
            },
        })
        .await;
        Ok(())
    }

    /// Stops every recording here (the server shuts down): their files are
    /// finished.
    pub(super) fn stop_recordings(&self) {
        let stopped: Vec<_> = {
            let mut local = self.lock();
            local
                .rooms
                .iter_mut()
                .filter_map(|(name, room)| Some((name.clone(), room.media.recording.take()?)))
                .collect()
        };
        let Some(router) = &self.deps.media else {
            return;
        };
        for (room, recording) in stopped {
            router.stop_recording(&room);
            tracing::info!(%room, recording = %recording.id, "recording stopped: shutting down");
        }
    }
}
