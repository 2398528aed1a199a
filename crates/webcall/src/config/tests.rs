//! The configuration as a user sets it: defaults, what each variable does, and
//! errors that name the variable.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::ExposeSecret;

use super::*;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn dev_defaults_generate_missing_secrets() {
    let config = Config::from_vars(&vars(&[])).unwrap();
    assert_eq!(config.env, AppEnv::Dev);
    assert_eq!(config.http.port, 8000);
    // IPv4 and IPv6 (the listener falls back to 0.0.0.0 without IPv6).
    assert_eq!(config.http.host.to_string(), "::");
    assert_eq!(config.auth.jwt_expires, Duration::from_secs(3600));
    assert_eq!(
        config.storage.database_url.expose_secret(),
        "sqlite://webcall.db"
    );
    assert_eq!(
        config.generated,
        ["JWT_SECRET", "REGISTRATION_SECRET", "TURN_SECRET"]
    );
    let turn = config
        .turn
        .as_ref()
        .expect("the embedded relay runs by default");
    // Dual stack by default; the IPv6 listener only where the host has IPv6.
    assert_eq!(
        turn.listen,
        [
            "0.0.0.0:3478".parse().unwrap(),
            "[::]:3478".parse().unwrap()
        ]
    );
    assert_eq!(turn.listen_optional, ["[::]:3478".parse().unwrap()]);
    assert_eq!(turn.public_ip6, None);
    assert_eq!((turn.relay_port_min, turn.relay_port_max), (49152, 65535));
    assert_eq!(turn.realm, "webcall");
    assert_eq!((turn.user_quota, turn.total_quota), (10, 1000));
    assert!(!turn.allow_loopback_peers);
    assert_eq!(config.ice.turn_credential_ttl, Duration::from_secs(86400));
    assert!(config.auth.jwt_secret.expose_secret().len() >= 32);
    let again = Config::from_vars(&vars(&[])).unwrap();
    assert_ne!(
        again.auth.jwt_secret.expose_secret(),
        config.auth.jwt_secret.expose_secret()
    );
}

#[test]
fn metrics_are_on_loopback_unless_told_otherwise() {
    let config = Config::from_vars(&vars(&[])).unwrap();
    assert_eq!(
        config.metrics.listen,
        Some("127.0.0.1:9090".parse().unwrap())
    );
    assert!(config.metrics.token.is_none());
    let off = Config::from_vars(&vars(&[("METRICS_LISTEN", "off")])).unwrap();
    assert_eq!(off.metrics.listen, None);
    let open = Config::from_vars(&vars(&[
        ("METRICS_LISTEN", "10.0.0.5:9100"),
        ("METRICS_TOKEN", "t0ken"),
    ]))
    .unwrap();
    assert_eq!(open.metrics.listen, Some("10.0.0.5:9100".parse().unwrap()));
    assert_eq!(open.metrics.token.unwrap().expose_secret(), "t0ken");
    for bad in ["9090", "localhost:9090", "on"] {
        let err = Config::from_vars(&vars(&[("METRICS_LISTEN", bad)])).unwrap_err();
        assert_eq!(err.var, "METRICS_LISTEN");
    }
}

#[test]
fn prod_refuses_missing_or_short_secrets_naming_the_variable() {
    let long = "x".repeat(32);
    let err =
        Config::from_vars(&vars(&[("APP_ENV", "prod"), ("REGISTRATION_SECRET", "s")])).unwrap_err();
    assert_eq!(err.var, "JWT_SECRET");
    let err = Config::from_vars(&vars(&[("APP_ENV", "prod"), ("JWT_SECRET", &long)])).unwrap_err();
    assert_eq!(err.var, "REGISTRATION_SECRET");
    let short = "x".repeat(31);
    let err = Config::from_vars(&vars(&[
        ("APP_ENV", "prod"),
        ("JWT_SECRET", &short),
        ("REGISTRATION_SECRET", "s"),
    ]))
    .unwrap_err();
    assert_eq!(err.var, "JWT_SECRET");
    assert!(err
        .to_string()
        .starts_with("JWT_SECRET: must be at least 32 bytes"));
    let ok = Config::from_vars(&vars(&[
        ("APP_ENV", "prod"),
        ("JWT_SECRET", &long),
        ("REGISTRATION_SECRET", "s"),
        ("TURN_SECRET", "t"),
    ]))
    .unwrap();
    assert!(ok.generated.is_empty());
}

#[test]
fn an_external_turn_server_replaces_the_embedded_relay_unless_asked_for() {
    let external = Config::from_vars(&vars(&[
        ("TURN_URLS", "turn:turn.example:3478"),
        ("TURN_SECRET", "s"),
    ]))
    .unwrap();
    assert!(external.turn.is_none());
    let both = Config::from_vars(&vars(&[
        ("TURN_URL", "turn:t.example"),
        ("TURN_EMBEDDED", "true"),
    ]))
    .unwrap();
    assert!(both.turn.is_some());
    let off = Config::from_vars(&vars(&[("TURN_EMBEDDED", "false")])).unwrap();
    assert!(off.turn.is_none());
    assert!(off.ice.turn_secret.is_none(), "nothing needs a TURN secret");
    let static_pair = Config::from_vars(&vars(&[
        ("TURN_URL", "turn:t.example"),
        ("TURN_USERNAME", "u"),
        ("TURN_PASSWORD", "p"),
    ]))
    .unwrap();
    assert!(static_pair.ice.turn_secret.is_none());
}

#[test]
fn prod_requires_a_turn_secret_when_the_relay_runs() {
    let long = "x".repeat(32);
    let base = [
        ("APP_ENV", "prod"),
        ("JWT_SECRET", long.as_str()),
        ("REGISTRATION_SECRET", "s"),
    ];
    let err = Config::from_vars(&vars(&base)).unwrap_err();
    assert_eq!(err.var, "TURN_SECRET");
    let mut off = base.to_vec();
    off.push(("TURN_EMBEDDED", "false"));
    assert!(Config::from_vars(&vars(&off)).is_ok());
}

#[test]
fn turn_settings_are_parsed_and_checked() {
    let config = Config::from_vars(&vars(&[
        ("TURN_LISTEN", "127.0.0.1:33478"),
        ("TURN_PUBLIC_IP", "203.0.113.4"),
        ("TURN_RELAY_PORT_MIN", "40000"),
        ("TURN_RELAY_PORT_MAX", "40100"),
        ("TURN_ALLOW_LOOPBACK_PEERS", "true"),
        ("TURN_ALLOWED_PEER_CIDRS", "10.1.0.0/16"),
        ("TURN_DENIED_PEER_CIDRS", "8.8.8.8"),
        ("TURN_USER_QUOTA", "3"),
    ]))
    .unwrap();
    let turn = config.turn.unwrap();
    assert_eq!(turn.listen, ["127.0.0.1:33478".parse().unwrap()]);
    assert!(turn.listen_optional.is_empty());
    assert_eq!(turn.public_ip.unwrap().to_string(), "203.0.113.4");
    assert!(turn.allow_loopback_peers);
    assert_eq!(turn.allowed_peer_cidrs.len(), 1);
    assert_eq!(turn.denied_peer_cidrs.len(), 1);
    assert_eq!(turn.user_quota, 3);
    for (var, value) in [
        ("TURN_RELAY_PORT_MIN", "70000"),
        ("TURN_PUBLIC_IP", "turn.example.org"),
        ("TURN_PUBLIC_IP6", "203.0.113.4"),
        ("TURN_LISTEN", "3478"),
        ("TURN_LISTEN", "0.0.0.0:3478,nowhere"),
        ("TURN_EMBEDDED", "maybe"),
        ("TURN_TLS_LISTEN", "0.0.0.0"),
        ("TURN_TLS_PUBLIC_PORT", "0"),
        ("PUBLIC_HOST", "https://call.example.org"),
        ("PUBLIC_HOST", "call.example.org:443"),
        ("PUBLIC_HOST", "203.0.113.4"),
        ("HTTPS", "sometimes"),
        ("TURN_CREDENTIAL_TTL_SECS", "10"),
    ] {
        assert_eq!(
            Config::from_vars(&vars(&[(var, value)])).unwrap_err().var,
            var
        );
    }
    let inverted = Config::from_vars(&vars(&[
        ("TURN_RELAY_PORT_MIN", "50000"),
        ("TURN_RELAY_PORT_MAX", "40000"),
    ]));
    assert_eq!(inverted.unwrap_err().var, "TURN_RELAY_PORT_MIN");
}

#[test]
fn dual_stack_and_tls_settings() {
    let config = Config::from_vars(&vars(&[
        ("TURN_LISTEN", "192.0.2.1:3478, [2001:db8::1]:3478"),
        ("TURN_PUBLIC_IP6", "2001:db8::1"),
        ("TLS_CERT_FILE", "/c.pem"),
        ("TLS_KEY_FILE", "/k.pem"),
        ("HTTPS", "false"),
        ("TURN_TLS_LISTEN", "0.0.0.0:5349"),
        ("TURN_TLS_PUBLIC_PORT", "443"),
        ("PUBLIC_HOST", "Turn.Example.org"),
    ]))
    .unwrap();
    let turn = config.turn.as_ref().unwrap();
    assert_eq!(turn.listen.len(), 2);
    assert!(turn.listen[1].is_ipv6());
    assert_eq!(turn.public_ip6.unwrap().to_string(), "2001:db8::1");
    assert_eq!(turn.tls_listen.unwrap().port(), 5349);
    assert_eq!(turn.tls_public_port, Some(443));
    assert_eq!(config.http.public_host.as_deref(), Some("turn.example.org"));
    let tls = config.tls.as_ref().unwrap();
    assert!(!tls.https);
    assert_eq!(tls.redirect_port, None, "no redirect without HTTPS");

    // A TLS listener needs a certificate; ACME names the host by default.
    let no_cert = Config::from_vars(&vars(&[("TURN_TLS_LISTEN", "0.0.0.0:5349")]));
    assert_eq!(no_cert.unwrap_err().var, "TURN_TLS_LISTEN");
    let acme = Config::from_vars(&vars(&[(
        "ACME_DOMAIN",
        "call.example.org,www.example.org",
    )]))
    .unwrap();
    assert_eq!(acme.http.public_host.as_deref(), Some("call.example.org"));
    assert!(acme.tls.unwrap().https);
}

#[test]
fn signaling_settings() {
    let config = Config::from_vars(&vars(&[])).unwrap();
    assert_eq!(config.signaling.max_peers, 16);
    assert_eq!(config.ws.ping_interval, Duration::from_secs(15));
    assert_eq!(config.ws.idle_timeout, Duration::from_secs(45));
    assert_eq!(config.signaling.resume_grace, Duration::from_secs(20));
    for (var, value) in [
        ("WS_PING_SECS", "0"),
        ("ROOM_MAX_PEERS", "1"),
        ("WS_RESUME_GRACE_SECS", "x"),
    ] {
        assert_eq!(
            Config::from_vars(&vars(&[(var, value)])).unwrap_err().var,
            var
        );
    }
    let inverted = Config::from_vars(&vars(&[
        ("WS_PING_SECS", "30"),
        ("WS_IDLE_TIMEOUT_SECS", "20"),
    ]));
    assert_eq!(inverted.unwrap_err().var, "WS_IDLE_TIMEOUT_SECS");
}

#[test]
fn connection_bounds() {
    let config = Config::from_vars(&vars(&[])).unwrap();
    assert_eq!(config.ws.max_per_user, 10);
    assert_eq!(config.http.header_timeout, Duration::from_secs(10));
    assert_eq!(config.http.idle_timeout, Duration::from_secs(60));
    assert_eq!(config.http.max_connections_per_ip, 256);
    for (var, value) in [
        ("WS_MAX_PER_USER", "0"),
        ("HTTP_HEADER_TIMEOUT_SECS", "0"),
        ("HTTP_IDLE_TIMEOUT_SECS", "15"),
        ("HTTP_MAX_CONNECTIONS_PER_IP", "-1"),
    ] {
        assert_eq!(
            Config::from_vars(&vars(&[(var, value)])).unwrap_err().var,
            var
        );
    }
}

#[test]
fn empty_values_count_as_unset() {
    let config = Config::from_vars(&vars(&[("PORT", ""), ("JWT_SECRET", "  ")])).unwrap();
    assert_eq!(config.http.port, 8000);
    assert!(config.generated.contains(&"JWT_SECRET"));
}

#[test]
fn database_urls() {
    let url = |v: &str| {
        Config::from_vars(&vars(&[("DATABASE_URL", v)]))
            .map(|c| c.storage.database_url.expose_secret().to_owned())
    };
    assert_eq!(
        url("sqlite:///var/lib/webcall/webcall.db").unwrap(),
        "sqlite:///var/lib/webcall/webcall.db"
    );
    assert_eq!(
        url("postgres://u:p@db/webcall").unwrap(),
        "postgres://u:p@db/webcall"
    );
    assert_eq!(
        url("postgresql://u:p@db/webcall").unwrap(),
        "postgresql://u:p@db/webcall"
    );
    assert_eq!(
        url("postgresql+asyncpg://u:p@db:5432/webcall").unwrap(),
        "postgres://u:p@db:5432/webcall"
    );
    assert_eq!(url("mysql://db").unwrap_err().var, "DATABASE_URL");
}

#[test]
fn database_display_hides_the_password() {
    let config = Config::from_vars(&vars(&[(
        "DATABASE_URL",
        "postgres://user:hunter2@db:5432/webcall?sslmode=require",
    )]))
    .unwrap();
    assert_eq!(
        config.storage.database_display(),
        "postgres://db:5432/webcall"
    );
    assert!(!format!("{config:?}").contains("hunter2"));
}

#[test]
fn lists_and_networks() {
    let config = Config::from_vars(&vars(&[
        ("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,::1"),
        ("CORS_ORIGINS", "https://a.example, https://b.example"),
        ("TURN_URL", "turn:old.example:3478"),
        ("STUN_SERVERS", "stun:stun.example:3478"),
    ]))
    .unwrap();
    assert_eq!(config.http.trusted_proxies.len(), 3);
    assert_eq!(
        config.http.cors_origins,
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(config.ice.turn_urls, ["turn:old.example:3478"]);
    assert_eq!(config.ice.stun_servers, ["stun:stun.example:3478"]);
    let both = Config::from_vars(&vars(&[
        ("TURN_URLS", "turn:a:1,turn:b:2"),
        ("TURN_URL", "turn:old:3"),
    ]))
    .unwrap();
    assert_eq!(both.ice.turn_urls, ["turn:a:1", "turn:b:2"]);
    assert_eq!(
        Config::from_vars(&vars(&[("TRUSTED_PROXIES", "nginx")]))
            .unwrap_err()
            .var,
        "TRUSTED_PROXIES"
    );
}

#[test]
fn bad_numbers_and_env_name_the_variable() {
    for (var, value) in [
        ("PORT", "http"),
        ("JWT_EXPIRES_MIN", "0"),
        ("APP_ENV", "staging"),
        ("HOST", "localhost"),
    ] {
        let err = Config::from_vars(&vars(&[(var, value)])).unwrap_err();
        assert_eq!(err.var, var);
    }
}

#[test]
fn prod_names_every_missing_or_weak_secret_at_once() {
    let err = Config::from_vars(&vars(&[("APP_ENV", "prod")])).unwrap_err();
    let named: Vec<&str> = err.problems().map(|(var, _)| var).collect();
    assert_eq!(named, ["JWT_SECRET", "REGISTRATION_SECRET", "TURN_SECRET"]);
    let text = err.to_string();
    assert_eq!(text.lines().count(), 3, "{text}");
    let err =
        Config::from_vars(&vars(&[("APP_ENV", "prod"), ("JWT_SECRET", "short")])).unwrap_err();
    let named: Vec<&str> = err.problems().map(|(var, _)| var).collect();
    assert_eq!(named, ["JWT_SECRET", "REGISTRATION_SECRET", "TURN_SECRET"]);
    assert!(err.problem.contains("at least 32 bytes"), "{err}");
    assert!(!err.to_string().contains("short"), "{err}");
}

#[test]
fn attachment_settings_default_beside_the_database_and_parse_bytes_and_days() {
    let config = Config::from_vars(&vars(&[])).unwrap();
    let files = &config.attachments;
    assert_eq!(files.dir, std::path::PathBuf::from("./attachments"));
    assert_eq!(files.limits.max_bytes, 26_214_400);
    assert_eq!(files.limits.quota_user, 1 << 30);
    assert_eq!(files.limits.quota_total, 20 << 30);
    assert_eq!(
        files.limits.retention,
        Some(Duration::from_secs(30 * 24 * 3600))
    );

    let config = Config::from_vars(&vars(&[
        (
            "DATABASE_URL",
            "sqlite:///var/lib/webcall/webcall.db?mode=rwc",
        ),
        ("ATTACHMENT_MAX_BYTES", "1048576"),
        ("ATTACHMENT_QUOTA_USER_BYTES", "0"),
        ("ATTACHMENT_QUOTA_TOTAL_BYTES", "5000000"),
        ("ATTACHMENT_RETENTION_DAYS", "0"),
    ]))
    .unwrap();
    let files = &config.attachments;
    assert_eq!(
        files.dir,
        std::path::PathBuf::from("/var/lib/webcall/attachments")
    );
    assert_eq!(files.limits.max_bytes, 1_048_576);
    assert_eq!(files.limits.quota_user, 0, "0 is no quota");
    assert_eq!(files.limits.quota_total, 5_000_000);
    assert_eq!(files.limits.retention, None, "0 keeps files forever");

    let config = Config::from_vars(&vars(&[
        ("DATABASE_URL", "postgres://u:p@db/webcall"),
        ("ATTACHMENT_DIR", "/srv/files"),
    ]))
    .unwrap();
    assert_eq!(
        config.attachments.dir,
        std::path::PathBuf::from("/srv/files")
    );
    let config =
        Config::from_vars(&vars(&[("DATABASE_URL", "postgres://u:p@db/webcall")])).unwrap();
    assert_eq!(
        config.attachments.dir,
        std::path::PathBuf::from("./attachments")
    );

    for (var, value) in [
        ("ATTACHMENT_MAX_BYTES", "25MB"),
        ("ATTACHMENT_MAX_BYTES", "0"),
        ("ATTACHMENT_QUOTA_USER_BYTES", "-1"),
        ("ATTACHMENT_RETENTION_DAYS", "a week"),
    ] {
        let err = Config::from_vars(&vars(&[(var, value)])).unwrap_err();
        assert_eq!(err.var, var, "{value}");
    }
}
