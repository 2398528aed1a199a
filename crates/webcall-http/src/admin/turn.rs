//! `/api/v1/admin/turn/*`: this instance's relay allocations (with traffic and
//! rate), ending one, and the quotas (applied on every instance).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use webcall_domain::operations::{RelayAllocation, RelayQuotas, RelayTransport};

use super::AdminCaller;
use crate::extract::ApiJson;
use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/turn/allocations", get(list))
        .route("/api/v1/admin/turn/allocations/{id}", delete(end))
        .route("/api/v1/admin/turn/quotas", get(quotas).put(set_quotas))
}

fn transport(transport: RelayTransport) -> &'static str {
    match transport {
        RelayTransport::Udp => "udp",
        RelayTransport::Tcp => "tcp",
        RelayTransport::Tls => "tls",
    }
}

fn allocation_json(allocation: &RelayAllocation, username: Option<&str>) -> Value {
    let traffic = &allocation.traffic;
    json!({
        "id": allocation.id,
        "user_id": allocation.user_id.map(|id| id.to_string()).unwrap_or_else(|| allocation.user.clone()),
        "username": username,
        "transport": transport(allocation.transport),
        "client": allocation.client.to_string(),
        "relayed": allocation.relayed.to_string(),
        "age_secs": allocation.age.as_secs(),
        "bytes_in": traffic.bytes_in,
        "bytes_out": traffic.bytes_out,
        "packets_in": traffic.packets_in,
        "packets_out": traffic.packets_out,
        "rate_in_bps": allocation.rate_in_bps,
        "rate_out_bps": allocation.rate_out_bps,
    })
}

fn quotas_json(quotas: RelayQuotas) -> Value {
    json!({"per_user": quotas.per_user, "total": quotas.total})
}

async fn list(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let listing = state.operations.allocations(&actor).await?;
    let totals = &listing.totals;
    Ok(Json(json!({
        "instance": listing.instance,
        "allocations": listing
            .allocations
            .iter()
            .map(|(allocation, username)| allocation_json(allocation, username.as_deref()))
            .collect::<Vec<_>>(),
        "totals": {
            "allocations": totals.allocations,
            "users": totals.users,
            "bytes_in": totals.traffic.bytes_in,
            "bytes_out": totals.traffic.bytes_out,
            "packets_in": totals.traffic.packets_in,
            "packets_out": totals.traffic.packets_out,
            "rate_in_bps": totals.rate_in_bps,
            "rate_out_bps": totals.rate_out_bps,
            "quotas": totals.quotas.map(quotas_json),
        },
    })))
}

async fn end(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.operations.end_allocation(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn quotas(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(quotas_json(state.operations.quotas(&actor)?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotasBody {
    per_user: u32,
    total: u32,
}

async fn set_quotas(
    State(state): State<AppState>,
    AdminCaller(actor): AdminCaller,
    ApiJson(body): ApiJson<QuotasBody>,
) -> Result<StatusCode, ApiError> {
    let quotas = RelayQuotas::new(body.per_user, body.total)?;
    state.operations.set_quotas(&actor, quotas).await?;
    Ok(StatusCode::NO_CONTENT)
}
