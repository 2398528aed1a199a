//! `/api/v1/admin/users`: search and page, ban, unban, role, delete, and a
//! one-time password-reset link.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;
use webcall_app::admin::{page_size, AdminUser};
use webcall_app::AppError;
use webcall_domain::model::{Role, UserId};

use super::AdminCaller;
use crate::auth::rfc3339;
use crate::extract::ApiJson;
use crate::rooms::query;
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/users", get(list))
        .route("/api/v1/admin/users/{id}", delete(remove))
        .route("/api/v1/admin/users/{id}/ban", post(ban))
        .route("/api/v1/admin/users/{id}/unban", post(unban))
        .route("/api/v1/admin/users/{id}/role", put(role))
        .route("/api/v1/admin/users/{id}/password-reset", post(reset_link))
}

/// An id that is no UUID names no account: 404, like an unknown one.
fn user_id(raw: &str) -> Result<UserId, ApiError> {
    Uuid::parse_str(raw)
        .map(UserId)
        .map_err(|_| AppError::UserNotFound.into())
}

fn user_json(entry: &AdminUser) -> Value {
    let user = &entry.user;
    json!({
        "id": user.id.to_string(),
        "email": user.email.as_str(),
        "username": user.username.as_str(),
        "role": user.role.as_str(),
        "banned": user.banned_at.is_some(),
        "banned_at": user.banned_at.map(rfc3339),
        "created_at": rfc3339(user.created_at),
        "online": entry.online,
    })
}

#[derive(Deserialize)]
struct Search {
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

async fn list(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    search: Result<Query<Search>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let search = query(search, "limit must be a whole number")?;
    let found = state
        .admin
        .users(
            &actor,
            search.q.as_deref(),
            search.cursor.as_deref(),
            page_size(search.limit),
        )
        .await?;
    Ok(Json(json!({
        "users": found.users.iter().map(user_json).collect::<Vec<_>>(),
        "next_cursor": found.next_cursor,
    })))
}

async fn ban(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.admin.ban(&actor, user_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unban(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.admin.unban(&actor, user_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct RoleBody {
    role: Option<String>,
}

async fn role(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<StatusCode, ApiError> {
    let target = user_id(&id)?;
    let role = Role::parse(body.role.as_deref().unwrap_or_default())?;
    state.admin.set_role(&actor, target, role).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.admin.delete_user(&actor, user_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where the link points: the origin of the page that asked (its `Origin`
/// header), else the `Host` it was asked on (https unless that is an address
/// or localhost).
pub(crate) fn origin(headers: &HeaderMap) -> String {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let safe = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]/_".contains(c))
    };
    if let Some(origin) = text(header::ORIGIN) {
        if (origin.starts_with("https://") || origin.starts_with("http://")) && safe(origin) {
            return origin.trim_end_matches('/').to_owned();
        }
    }
    let host = text(header::HOST)
        .filter(|h| safe(h) && !h.contains('/'))
        .unwrap_or("localhost");
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let plain =
        name == "localhost" || name.starts_with('[') || name.parse::<std::net::IpAddr>().is_ok();
    format!("{}://{host}", if plain { "http" } else { "https" })
}

async fn reset_link(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let link = state.admin.reset_link(&actor, user_id(&id)?).await?;
    let url = format!("{}/reset#{}", origin(&headers), link.token.expose_secret());
    Ok((
        StatusCode::CREATED,
        Json(json!({"url": url, "expires_at": rfc3339(link.expires_at)})),
    ))
}
