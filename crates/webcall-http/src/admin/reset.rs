//! `POST /api/v1/auth/password-reset`: the one-time link's public end. Its
//! owner sends the token (from `/reset#TOKEN`) and a new password; every login
//! of the account ends.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;

use crate::extract::{ApiJson, ClientIp};
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/auth/password-reset", post(reset))
}

#[derive(Deserialize)]
struct ResetBody {
    token: Option<String>,
    password: Option<String>,
}

async fn reset(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(body): ApiJson<ResetBody>,
) -> Result<StatusCode, ApiError> {
    state
        .admin
        .reset_password(body.token, body.password, client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
