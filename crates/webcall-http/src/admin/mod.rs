//! `/api/v1/admin/*`: the admin API (and `POST /api/v1/auth/password-reset`,
//! where a reset link is used). Handlers stay thin: [`AdminCaller`] gets the
//! caller admitted by the use-case layer's guard (`Admin::admit`: 401 without a
//! valid token, 403 `forbidden` for a non-admin, 429 past its budget) and each
//! handler calls one use case with it.
//!
//! Layout: `users`, `rooms`, `calls`, `audit` are the endpoints of each tab;
//! `reset` is the password-reset link's public end; `turn` the relay's
//! allocations and quotas, `keys` the signing keys' rotation.

mod audit;
mod calls;
mod keys;
mod reset;
mod rooms;
mod turn;
mod users;

pub(crate) use users::origin;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;
use axum::Router;
use serde::Deserialize;
use webcall_app::admin::{Access, Actor};
use webcall_app::AppError;

use crate::extract::bearer_token;
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(users::router())
        .merge(rooms::router())
        .merge(calls::router())
        .merge(audit::router())
        .merge(reset::router())
        .merge(turn::router())
        .merge(keys::router())
}

/// An admin, admitted for this request by `Admin::admit` (a GET counts as a
/// read, any other method as a change).
pub struct AdminCaller(pub Actor);

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers).ok_or(AppError::TokenMissing)?;
        let (_, user) = state.accounts.authenticate_user(token).await?;
        let access = if parts.method == Method::GET || parts.method == Method::HEAD {
            Access::Read
        } else {
            Access::Change
        };
        Ok(Self(state.admin.admit(&user, access)?))
    }
}

/// `?cursor=&limit=` of a paged list.
#[derive(Deserialize)]
struct Page {
    cursor: Option<String>,
    limit: Option<u32>,
}

/// A cursor that is not one this server gave (422 naming `cursor`).
fn bad_cursor() -> ApiError {
    ApiError::InvalidBody {
        field: Some("cursor".into()),
        message: "cursor must be a next_cursor this server gave".into(),
    }
}
