//! Recordings of routed calls over HTTP, for the room's hosts:
//! `GET /api/v1/rooms/{room}/recordings` (`{"recordings": [...]}`, newest
//! first), `GET …/recordings/{id}/files/{name}` (one WebM, streamed, with
//! one byte range at most) and `DELETE …/recordings/{id}` (204). Each
//! handler calls one [`RecordingsService`] use case; without one (this
//! server does not record) every route answers 404 `recording_disabled`.
//!
//! A file is served like an attachment (see `download`): a download, never
//! run or sniffed by the browser. The token may come as `?token=` for a
//! download link; the router never logs query strings.

use std::path::Path as FilePath;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use webcall_app::admission::Caller;
use webcall_app::recordings::RecordingsService;
use webcall_app::AppError;
use webcall_domain::signaling::RoomName;
use webcall_domain::DomainError;

use crate::download::{content_disposition, insert, parse_range, safety_headers, Ranged};
use crate::extract::bearer_token;
use crate::room_access::RoomCaller;
use crate::rooms::query;
use crate::{ApiError, AppState};

/// Bytes read from the disk at a time.
const CHUNK: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rooms/{room}/recordings", get(list))
        .route("/api/v1/rooms/{room}/recordings/{id}", delete(remove))
        .route(
            "/api/v1/rooms/{room}/recordings/{id}/files/{name}",
            get(download),
        )
}

fn service(state: &AppState) -> Result<&Arc<RecordingsService>, ApiError> {
    state
        .recordings
        .as_ref()
        .ok_or_else(|| AppError::RecordingDisabled.into())
}

fn room_name(raw: &str) -> Result<RoomName, ApiError> {
    RoomName::parse(raw).map_err(|_| AppError::RoomNotFound.into())
}

/// `GET /api/v1/rooms/{room}/recordings`.
async fn list(
    State(state): State<AppState>,
    RoomCaller(caller): RoomCaller,
    Path(room): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let recordings = service(&state)?;
    let list = recordings.list(caller, &room_name(&room)?).await?;
    Ok(Json(json!({ "recordings": list })))
}

/// `DELETE /api/v1/rooms/{room}/recordings/{id}`.
async fn remove(
    State(state): State<AppState>,
    RoomCaller(caller): RoomCaller,
    Path((room, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let recordings = service(&state)?;
    recordings.delete(caller, &room_name(&room)?, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
struct TokenQuery {
    /// The access token, when no `Authorization` header can be sent.
    token: Option<String>,
}

/// `GET /api/v1/rooms/{room}/recordings/{id}/files/{name}`: the file, or
/// one range of it.
async fn download(
    State(state): State<AppState>,
    Path((room, id, name)): Path<(String, String, String)>,
    params: Result<Query<TokenQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = query(params, "token must be text")?;
    let token = bearer_token(&headers)
        .or(params.token.as_deref().filter(|t| !t.is_empty()))
        .ok_or(AppError::TokenMissing)?;
    let (_, user) = state.accounts.authenticate_user(token).await?;
    let caller = Caller {
        user: user.id,
        role: user.role,
    };
    let recordings = service(&state)?;
    let path = recordings
        .file(caller, &room_name(&room)?, &id, &name)
        .await?;
    serve(&path, &name, headers.get(header::RANGE)).await
}

async fn serve(
    path: &FilePath,
    name: &str,
    range: Option<&axum::http::HeaderValue>,
) -> Result<Response, ApiError> {
    let gone = |err: std::io::Error| -> ApiError {
        if err.kind() == std::io::ErrorKind::NotFound {
            AppError::RecordingNotFound.into()
        } else {
            DomainError::infrastructure(err).into()
        }
    };
    let mut file = tokio::fs::File::open(path).await.map_err(gone)?;
    let size = file.metadata().await.map_err(gone)?.len();
    let (status, start, len) = match parse_range(range, size) {
        Ranged::Whole => (StatusCode::OK, 0, size),
        Ranged::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Ranged::Unsatisfiable => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            let out = response.headers_mut();
            safety_headers(out);
            insert(out, header::ACCEPT_RANGES, "bytes");
            insert(out, header::CONTENT_RANGE, &format!("bytes */{size}"));
            return Ok(response);
        }
    };
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(gone)?;
    }
    let mut response = Response::new(Body::from_stream(chunks(file, len)));
    *response.status_mut() = status;
    let out = response.headers_mut();
    safety_headers(out);
    insert(out, header::ACCEPT_RANGES, "bytes");
    insert(out, header::CONTENT_LENGTH, &len.to_string());
    insert(out, header::CONTENT_TYPE, "video/webm");
    insert(out, header::CONTENT_DISPOSITION, &content_disposition(name));
    if status == StatusCode::PARTIAL_CONTENT {
        insert(
            out,
            header::CONTENT_RANGE,
            &format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    Ok(response)
}

/// `len` bytes of `file` from where it stands, chunk by chunk.
fn chunks(
    file: tokio::fs::File,
    len: u64,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures_util::stream::unfold((file, len), |(mut file, remaining)| async move {
        if remaining == 0 {
            return None;
        }
        let want = usize::try_from(remaining).map_or(CHUNK, |r| r.min(CHUNK));
        let mut buf = vec![0; want];
        match file.read(&mut buf).await {
            Ok(0) => Some((
                Err(std::io::Error::other(
                    "the recording ended before its range",
                )),
                (file, 0),
            )),
            Ok(read) => {
                buf.truncate(read);
                Some((Ok(Bytes::from(buf)), (file, remaining - read as u64)))
            }
            Err(err) => {
                tracing::warn!(error = %err, "a recording could not be read to its end");
                Some((Err(err), (file, 0)))
            }
        }
    })
}
