//! The use cases' metrics: help texts, and every counter at zero from the
//! start. `accounts` records failed logins, wrong registration secrets,
//! throttled attempts and replayed tokens; the hub slow consumers; `attachments` uploads, their bytes and refusals by reason. The hub's peer and room gauges are sampled and described by
//! the binary.

use metrics::{counter, describe_counter};

/// Describes the use cases' metrics to the installed recorder and starts their
/// counters at zero (a series that appears only after its first event makes
/// rates and alerts misleading).
pub fn describe_metrics() {
    describe_counter!(
        "webcall_ws_slow_consumers_total",
        "Connections detached because they could not keep up"
    );
    describe_counter!(
        "webcall_auth_failures_total",
        "Failed logins (login), wrong registration secrets (registration_secret), throttled attempts (throttled) and replayed refresh tokens (token_replayed)"
    );
    for kind in [
        "login",
        "registration_secret",
        "throttled",
        "token_replayed",
    ] {
        counter!("webcall_auth_failures_total", "kind" => kind).absolute(0);
    }
    counter!("webcall_ws_slow_consumers_total").absolute(0);
    describe_counter!(
        "webcall_attachment_uploads_total",
        "Files uploaded to rooms' chat and stored"
    );
    describe_counter!(
        "webcall_attachment_upload_bytes_total",
        "Bytes of the files uploaded and stored"
    );
    describe_counter!(
        "webcall_attachment_refusals_total",
        "Uploads refused or failed, by reason (too_large, quota_exceeded, too_many_uploads, size_mismatch, forbidden, length_required, room_not_found, error)"
    );
    counter!("webcall_attachment_uploads_total").absolute(0);
    counter!("webcall_attachment_upload_bytes_total").absolute(0);
    for reason in [
        "too_large",
        "quota_exceeded",
        "too_many_uploads",
        "size_mismatch",
        "forbidden",
        "length_required",
        "room_not_found",
        "error",
    ] {
        counter!("webcall_attachment_refusals_total", "reason" => reason).absolute(0);
    }
}
