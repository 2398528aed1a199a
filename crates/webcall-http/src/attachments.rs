//! Files in a room's chat over HTTP: `POST /api/v1/rooms/{room}/attachments`
//! (the raw bytes of one file, streamed), `GET …/attachments/{id}` (the file,
//! streamed, with one byte range at most) and `GET …/attachments/{id}/thumbnail`
//! (its preview), `DELETE …/attachments/{id}`. Each handler calls one
//! [`Attachments`](webcall_app::attachments::Attachments) use case.
//!
//! A file is served so that a browser never runs it: `Content-Disposition:
//! attachment` (with an ASCII fallback name and the UTF-8 one, RFC 5987),
//! `nosniff` and `Content-Security-Policy: sandbox` (the router's
//! `security_headers` keeps a CSP a handler set). The token may come as
//! `?token=` for `<img src>` and download links; the router never logs query
//! strings.

use std::time::Duration;

use async_trait::async_trait;
use axum::body::{Body, BodyDataStream};
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::StreamExt;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value};
use webcall_app::admission::Caller;
use webcall_app::attachments::{FileCaller, UploadBody, UploadRequest};
use webcall_app::AppError;
use webcall_domain::attachments::{Attachment, FileRead};
use webcall_domain::signaling::{ChatMessage, RoomName};

use crate::download::{content_disposition, insert, parse_range, safety_headers, Ranged};
use crate::extract::bearer_token;
use crate::room_access::RoomCaller;
use crate::rooms::query;
use crate::ws::chat_frames;
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/rooms/{room}/attachments",
            // The body is streamed to the store and counted there against
            // ATTACHMENT_MAX_BYTES, not buffered under the JSON limit.
            post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/v1/rooms/{room}/attachments/{id}",
            get(download).delete(delete),
        )
        .route(
            "/api/v1/rooms/{room}/attachments/{id}/thumbnail",
            get(thumbnail),
        )
}

#[derive(Deserialize, Default)]
struct FileQuery {
    /// The access or guest token, when no `Authorization` header can be sent.
    token: Option<String>,
    /// A room pass, for a room with a password.
    pass: Option<String>,
    /// The file's name (upload).
    name: Option<String>,
    /// The uploader's peer id in the call (upload).
    peer: Option<String>,
}

/// The caller of a file endpoint: an account (its role read with it) or a
/// guest token, from `Authorization: Bearer` or `?token=`.
async fn file_caller(
    state: &AppState,
    headers: &HeaderMap,
    query: &FileQuery,
) -> Result<FileCaller, ApiError> {
    let token = bearer_token(headers)
        .or(query.token.as_deref().filter(|t| !t.is_empty()))
        .ok_or(AppError::TokenMissing)?;
    match state.accounts.authenticate_user(token).await {
        Ok((_, user)) => Ok(FileCaller::Account {
            caller: Caller {
                user: user.id,
                role: user.role,
            },
            username: user.username.as_str().to_owned(),
        }),
        Err(AppError::TokenInvalid) => {
            let guest = state
                .guests
                .authenticate(&SecretString::from(token.to_owned()))?;
            Ok(FileCaller::Guest { room: guest.room })
        }
        Err(err) => Err(err.into()),
    }
}

fn room_name(raw: &str) -> Result<RoomName, ApiError> {
    RoomName::parse(raw).map_err(|_| AppError::RoomNotFound.into())
}

/// A request body as the upload reads it.
struct HttpBody(BodyDataStream);

#[async_trait]
impl UploadBody for HttpBody {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, AppError> {
        match self.0.next().await {
            None => Ok(None),
            Some(Ok(chunk)) => Ok(Some(chunk)),
            // Cut short: the client went away or the connection broke.
            Some(Err(_)) => Err(AppError::SizeMismatch),
        }
    }
}

/// How long a refused upload's body is read (and thrown away) at most before
/// the answer goes out.
const DRAIN_FOR: Duration = Duration::from_secs(30);

/// `POST /api/v1/rooms/{room}/attachments?name=…[&peer=…][&pass=…]`: the body
/// is the file; 201 `{"message": <chat frame>}`.
///
/// A refusal (no token, no access, quota, too many uploads…) is answered
/// after the rest of the body is read and thrown away, when the body is no
/// longer than a file may be: a reverse proxy still sending it would
/// otherwise see the connection close and answer 502 in place of our error
/// (nginx does), and a browser would see a network error. A body over the
/// limit is refused at once (a proxy's own body limit stops it first).
async fn upload(
    State(state): State<AppState>,
    Path(room): Path<String>,
    params: Result<Query<FileQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let declared_len = match headers.get(header::CONTENT_LENGTH) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(ApiError::BadRequest)?,
        ),
    };
    let mut body = HttpBody(body.into_data_stream());
    let result = share(&state, room, params, &headers, declared_len, &mut body).await;
    if result.is_err()
        && declared_len.is_some_and(|len| len <= state.attachments.limits().max_bytes)
    {
        let _ = tokio::time::timeout(DRAIN_FOR, async {
            while let Ok(Some(_)) = body.next_chunk().await {}
        })
        .await;
    }
    let message = result?;
    let frame = chat_frames(std::slice::from_ref(&message))
        .pop()
        .unwrap_or(Value::Null);
    Ok((StatusCode::CREATED, Json(json!({ "message": frame }))))
}

/// The upload's checks and the upload itself.
async fn share(
    state: &AppState,
    room: String,
    params: Result<Query<FileQuery>, QueryRejection>,
    headers: &HeaderMap,
    declared_len: Option<u64>,
    body: &mut HttpBody,
) -> Result<ChatMessage, ApiError> {
    let params = query(params, "name, peer, pass and token must be text")?;
    let caller = file_caller(state, headers, &params).await?;
    let room = room_name(&room)?;
    let request = UploadRequest {
        room,
        pass: params.pass.filter(|p| !p.is_empty()),
        name: params.name.unwrap_or_default(),
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        declared_len,
        peer: params.peer,
    };
    Ok(state.attachments.upload(caller, request, body).await?)
}

/// `GET /api/v1/rooms/{room}/attachments/{id}`: the file, or one range of it.
async fn download(
    State(state): State<AppState>,
    Path((room, id)): Path<(String, String)>,
    params: Result<Query<FileQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (attachment, _) = find(&state, &room, &id, params, &headers).await?;
    let size = attachment.size;
    let (status, start, len) = match parse_range(headers.get(header::RANGE), size) {
        Ranged::Whole => (StatusCode::OK, 0, size),
        Ranged::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Ranged::Unsatisfiable => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            let headers = response.headers_mut();
            insert(headers, header::CONTENT_RANGE, &format!("bytes */{size}"));
            file_headers(headers, &attachment);
            return Ok(response);
        }
    };
    let read = state
        .attachments
        .read(&attachment, start, (len < size).then_some(len))
        .await?;
    let mut response = Response::new(Body::from_stream(chunks(read)));
    *response.status_mut() = status;
    let out = response.headers_mut();
    file_headers(out, &attachment);
    insert(out, header::CONTENT_LENGTH, &len.to_string());
    insert(out, header::CONTENT_TYPE, attachment.content_type.as_str());
    insert(
        out,
        header::CONTENT_DISPOSITION,
        &content_disposition(attachment.name.as_str()),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        insert(
            out,
            header::CONTENT_RANGE,
            &format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    Ok(response)
}

/// `GET /api/v1/rooms/{room}/attachments/{id}/thumbnail`: the preview, inline.
async fn thumbnail(
    State(state): State<AppState>,
    Path((room, id)): Path<(String, String)>,
    params: Result<Query<FileQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (attachment, _) = find(&state, &room, &id, params, &headers).await?;
    let (bytes, media_type) = state.attachments.thumbnail(&attachment).await?;
    let mut response = Response::new(Body::from(bytes));
    let out = response.headers_mut();
    safety_headers(out);
    insert(out, header::CONTENT_TYPE, media_type);
    insert(out, header::CONTENT_DISPOSITION, "inline");
    insert(
        out,
        header::ETAG,
        &format!("\"{}-thumb\"", attachment.sha256),
    );
    Ok(response)
}

/// `DELETE /api/v1/rooms/{room}/attachments/{id}`: by its sender or a host.
async fn delete(
    State(state): State<AppState>,
    RoomCaller(caller): RoomCaller,
    Path((room, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let room = room_name(&room)?;
    state.attachments.delete(caller, &room, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn find(
    state: &AppState,
    room: &str,
    id: &str,
    params: Result<Query<FileQuery>, QueryRejection>,
    headers: &HeaderMap,
) -> Result<(Attachment, FileCaller), ApiError> {
    let params = query(params, "pass and token must be text")?;
    let caller = file_caller(state, headers, &params).await?;
    let room = room_name(room)?;
    let pass = params.pass.as_deref().filter(|p| !p.is_empty());
    let attachment = state.attachments.find(&caller, &room, id, pass).await?;
    Ok((attachment, caller))
}

/// The file read chunk by chunk, as a response body stream.
fn chunks(
    read: Box<dyn FileRead>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures_util::stream::unfold(Some(read), |read| async move {
        let mut read = read?;
        match read.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(read))),
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(error = %err, "a file could not be read to its end");
                Some((Err(std::io::Error::other(err.to_string())), None))
            }
        }
    })
}

fn file_headers(headers: &mut HeaderMap, attachment: &Attachment) {
    safety_headers(headers);
    insert(headers, header::ETAG, &format!("\"{}\"", attachment.sha256));
    insert(headers, header::ACCEPT_RANGES, "bytes");
}
