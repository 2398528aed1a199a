//! `/api/v1/auth/*`: register, login, refresh, me, logout.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use webcall_app::accounts::{Login, Registration};
use webcall_app::AppError;
use webcall_domain::model::{IssuedToken, User};

use crate::extract::{ApiJson, Authenticated, BearerToken, ClientIp};
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/refresh", post(refresh))
        .route("/api/v1/auth/me", get(me).delete(delete_me))
        .route("/api/v1/auth/logout", post(logout))
}

#[derive(Deserialize)]
struct RegisterRequest {
    email: Option<String>,
    username: Option<String>,
    password: Option<String>,
    secret: Option<String>,
}

#[derive(Deserialize)]
struct DeleteRequest {
    password: Option<String>,
}

#[derive(Deserialize)]
struct LoginRequest {
    email: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// A user as the API shows it (never the password hash).
#[derive(Serialize)]
pub struct UserBody {
    id: String,
    email: String,
    username: String,
    created_at: String,
    /// `admin` or `member`.
    role: &'static str,
}

impl From<User> for UserBody {
    fn from(user: User) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.as_str().to_owned(),
            username: user.username.as_str().to_owned(),
            created_at: rfc3339(user.created_at),
            role: user.role.as_str(),
        }
    }
}

pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[derive(Serialize)]
struct TokenBody {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
}

impl From<IssuedToken> for TokenBody {
    fn from(issued: IssuedToken) -> Self {
        Self {
            expires_in: issued.expires_in_secs(),
            access_token: issued.token.expose_secret().to_owned(),
            token_type: "bearer",
        }
    }
}

async fn register(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<UserBody>), ApiError> {
    let form = Registration {
        email: body.email,
        username: body.username,
        password: body.password,
        secret: body.secret,
    };
    let user = state.accounts.register(form, client).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<TokenBody>, ApiError> {
    let form = Login {
        email: body.email,
        username: body.username,
        password: body.password,
    };
    let issued = state.accounts.login(form, client).await?;
    Ok(Json(issued.into()))
}

async fn refresh(
    State(state): State<AppState>,
    BearerToken(token): BearerToken,
) -> Result<Json<TokenBody>, ApiError> {
    match state.accounts.refresh(&token).await {
        Ok(issued) => Ok(Json(issued.into())),
        Err(AppError::TokenReplayed { login }) => {
            // Whoever holds the family's live token (the thief or the owner) is
            // cut off too, calls included (close 4401); the account's other
            // logins are not.
            state.hub.end_login(login).await;
            Err(AppError::TokenReplayed { login }.into())
        }
        Err(err) => Err(err.into()),
    }
}

async fn me(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<Json<UserBody>, ApiError> {
    Ok(Json(state.accounts.me(&claims).await?.into()))
}

/// Deletes the caller's account (password required; never the last admin:
/// 409 `last_admin`): its rooms are deleted (their calls end with 4004), then
/// its own connections close with 4401.
async fn delete_me(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    ClientIp(client): ClientIp,
    ApiJson(body): ApiJson<DeleteRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .accounts
        .confirm_password(&claims, body.password, client)
        .await?;
    state.admin.check_leaving(claims.user_id).await?;
    state.hub.delete_rooms_of(claims.user_id).await?;
    state.accounts.delete_account(&claims).await?;
    state.hub.revoke_user(claims.user_id).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn logout(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
) -> Result<StatusCode, ApiError> {
    state.accounts.logout(&claims).await?;
    // The login's calls end too (close 4401), also those opened with a token
    // it has refreshed since.
    state.hub.end_login(claims.family).await;
    Ok(StatusCode::NO_CONTENT)
}
