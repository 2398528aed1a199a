//! Extractors that turn a request's parts into typed, checked values, answering
//! with our own error shape instead of axum's plain-text rejections.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use bytes::Bytes;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use webcall_app::AppError;
use webcall_domain::model::{TokenClaims, UserId};

use crate::{ApiError, AppState};

/// A JSON body: `Content-Type: application/json` required (415), syntax errors
/// are 400, type errors are 422 naming the field.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| match rejection {
                BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
                    ApiError::PayloadTooLarge
                }
                _ => ApiError::BadRequest,
            })?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Deserialises `bytes`, telling syntax errors (400) from type errors (422, with
/// the path of the offending field).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        classify(err.into_inner(), (path != ".").then_some(path))
    })?;
    // Trailing garbage after the value is a syntax error too.
    de.end().map_err(|err| classify(err, None))?;
    Ok(value)
}

fn classify(err: serde_json::Error, field: Option<String>) -> ApiError {
    match err.classify() {
        serde_json::error::Category::Data => ApiError::InvalidBody {
            field,
            message: err.to_string(),
        },
        _ => ApiError::MalformedJson(err.to_string()),
    }
}

/// The caller's verified, unrevoked access token (`Authorization: Bearer …`).
pub struct Authenticated(pub TokenClaims);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers).ok_or(AppError::TokenMissing)?;
        Ok(Self(state.accounts.authenticate(token).await?))
    }
}

/// The caller of an in-call endpoint: an account, or a guest (whose token
/// is good for its room's call only: the ICE servers and the socket).
pub struct CallCaller(pub UserId);

impl FromRequestParts<AppState> for CallCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers).ok_or(AppError::TokenMissing)?;
        match state.accounts.authenticate(token).await {
            Ok(claims) => Ok(Self(claims.user_id)),
            Err(AppError::TokenInvalid) => {
                let guest = state.guests.authenticate(&SecretString::from(token))?;
                Ok(Self(guest.guest_id))
            }
            Err(err) => Err(err.into()),
        }
    }
}

/// The raw bearer token, unchecked (for refresh, which checks it its own way).
pub struct BearerToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers).ok_or(AppError::TokenMissing)?;
        Ok(Self(token.to_owned()))
    }
}

pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The client's address: the socket's peer, or what `X-Forwarded-For` says when
/// that peer is a trusted proxy.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| {
                webcall_domain::DomainError::infrastructure("server started without connect info")
            })?;
        Ok(Self(state.trusted_proxies.client_ip(peer, &parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Form {
        #[allow(dead_code)]
        email: Option<String>,
    }

    #[test]
    fn syntax_errors_are_malformed_json() {
        for body in ["{", "not json", "{\"email\": }", "{} trailing"] {
            assert!(
                matches!(
                    parse_json::<Form>(body.as_bytes()),
                    Err(ApiError::MalformedJson(_))
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn type_errors_name_the_field() {
        match parse_json::<Form>(br#"{"email": 42}"#) {
            Err(ApiError::InvalidBody { field, .. }) => assert_eq!(field.as_deref(), Some("email")),
            other => panic!("{other:?}"),
        }
        match parse_json::<Form>(br#""a string""#) {
            Err(ApiError::InvalidBody { field, .. }) => assert_eq!(field, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_content_types() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        for (value, ok) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/problem+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_json(&headers), ok, "{value}");
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_required() {
        let mut headers = HeaderMap::new();
        for (value, expected) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("Basic abc", None),
            ("Bearer ", None),
            ("abc", None),
        ] {
            headers.insert(AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(bearer_token(&headers), expected, "{value}");
        }
    }
}
