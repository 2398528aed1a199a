//! `webcall doctor`: checks what usually goes wrong before anyone joins a call
//! (configuration, database, ports, the files directory, routed calls' port, the advertised address, STUN, and the relay
//! over UDP, TCP and TLS) and prints, per check, what it found and, when it is
//! not ok, a `fix:` line in plain words; then one summary line.
//!
//! When a WebCall server already runs (it holds the HTTP port and the relay
//! port), the doctor says so and tests that server's relay instead of starting
//! its own. Layout: `report` (the lines printed), `probe` (who holds the HTTP
//! port), `files` (the directory of files shared in the chat), `sfu` (routed
//! calls' media port), `turn` (the relay checks).

mod files;
mod probe;
mod report;
mod sfu;
mod turn;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::time::Duration;

use secrecy::ExposeSecret;
use webcall_domain::ports::HealthCheck;
use webcall_turn::RestCredentials;

use crate::config::{AppEnv, Config, ConfigError, TlsSettings, TurnSettings};
use report::{fail, info, ok, warn, Outcome, Report};
use turn::Refusal;

/// What the fix is for a secret the configuration lacks.
const SECRET_FIX: &str =
    "set it in .env or the environment (a good secret: openssl rand -base64 48)";

/// Runs every check and prints the report; `Ok(true)` when none failed.
pub async fn run(config: &Config) -> anyhow::Result<bool> {
    let mut report = Report::default();
    report.check("config", configuration(config));
    report.check("database", database(config).await);
    report.check("http port", http_port(config).await);
    report.check("files", files::check(config).await);
    report.check("sfu", sfu::check(config));
    match &config.turn {
        Some(settings) => relay(config, settings, &mut report).await,
        None => report.check(
            "turn",
            info("embedded relay off (TURN_EMBEDDED=false or TURN_URLS set)"),
        ),
    }
    Ok(report.finish())
}

/// The report when the configuration cannot even be read: every problem, each
/// with its fix (all the missing or weak secrets at once).
pub fn report_config_error(err: &ConfigError) {
    let mut report = Report::default();
    for (var, problem) in err.problems() {
        let fix = if problem.starts_with("must be set") || problem.contains("bytes") {
            SECRET_FIX.to_owned()
        } else {
            format!("correct {var} in .env or the environment")
        };
        report.check("config", fail(format!("{var}: {problem}"), fix));
    }
    report.finish();
}

fn configuration(config: &Config) -> Outcome {
    let env = match config.env {
        AppEnv::Dev => "dev",
        AppEnv::Prod => "prod",
    };
    if config.generated.is_empty() {
        ok(format!("APP_ENV={env}"))
    } else {
        info(format!(
            "APP_ENV={env}; generated for this run only: {} (set them in .env to keep them across restarts)",
            config.generated.join(", ")
        ))
    }
}

async fn database(config: &Config) -> Outcome {
    let shown = config.storage.database_display();
    match webcall_db::SqlStore::connect_and_migrate(config.storage.database_url.expose_secret())
        .await
    {
        Ok(store) => {
            let answered = store.check().await;
            store.close().await;
            match answered {
                Ok(()) => ok(format!("{shown} answers, migrations applied")),
                Err(e) => fail(
                    format!("{shown} does not answer queries: {e}"),
                    "check that the database server is up and healthy",
                ),
            }
        }
        Err(err) => fail(
            format!("{shown}: {err:#}"),
            "check DATABASE_URL (host, port, user, password, database name) and that the database server runs",
        ),
    }
}

/// Free, or held by a running WebCall (fine), or by something else.
async fn http_port(config: &Config) -> Outcome {
    let addr = SocketAddr::new(config.http.host, config.http.port);
    let err = match std::net::TcpListener::bind(addr) {
        Ok(_) => return ok(format!("{addr} is free")),
        Err(err) => err,
    };
    let tls_name =
        config.tls.as_ref().filter(|tls| tls.https).map(|tls| {
            crate::tls::certificate_host(config, tls).unwrap_or_else(|| "localhost".into())
        });
    match probe::holder(probe::reachable(addr), tls_name.as_deref()).await {
        probe::Holder::WebCall => info(format!(
            "{addr} is in use by a running WebCall (its /healthz answers): the relay checks below test that server"
        )),
        probe::Holder::Other(answer) => fail(
            format!("{addr} is in use ({err}) by something that is not WebCall; it answered {answer:?}"),
            "stop that process, or set PORT (and HOST) to a free port",
        ),
        probe::Holder::Unknown(why) => fail(
            format!("{addr} is in use ({err}); {why}"),
            "if that is your running WebCall, nothing to do; otherwise stop the process that holds it, or set PORT (and HOST)",
        ),
    }
}

/// Why `ip` cannot be reached from the internet, if it cannot.
fn unreachable_from_outside(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_private() {
                Some("a private (RFC 1918) address")
            } else if v4.is_link_local() {
                Some("a link-local address")
            } else if a == 100 && (64..128).contains(&b) {
                Some("a carrier-grade NAT (100.64.0.0/10) address")
            } else if v4.is_unspecified() {
                Some("the unspecified address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return unreachable_from_outside(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a unique local (ULA, fc00::/7) address")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else {
                None
            }
        }
    }
}

fn public_ip(configured: Option<IpAddr>, found: Option<IpAddr>) -> Outcome {
    let Some(ip) = found else {
        return fail(
            "no primary address found on this host",
            "set TURN_PUBLIC_IP to the address browsers reach this host by",
        );
    };
    let source = if configured.is_some() {
        "TURN_PUBLIC_IP"
    } else {
        "detected"
    };
    match unreachable_from_outside(ip) {
        Some(kind) => warn(
            format!("{ip} ({source}) is {kind}: browsers outside this network cannot reach the relay there"),
            "set TURN_PUBLIC_IP to this host's public address (behind 1:1 NAT or a cloud's floating IP, that public address); leave it only if every caller is on this network",
        ),
        None if configured.is_some() => ok(format!("{ip} (TURN_PUBLIC_IP)")),
        None => ok(format!(
            "{ip} (detected; behind 1:1 NAT set TURN_PUBLIC_IP to the public address)"
        )),
    }
}

/// The relay: its public address, its ports, STUN, and TURN over UDP, TCP and TLS.
async fn relay(config: &Config, settings: &TurnSettings, report: &mut Report) {
    let found = settings.public_ip.or_else(webcall_turn::detect_public_ip);
    report.check("public ip", public_ip(settings.public_ip, found));
    let secret = config
        .ice
        .turn_secret
        .clone()
        .unwrap_or_else(crate::config::random_secret);
    let credentials = RestCredentials::new(secret, config.ice.turn_credential_ttl);
    turn::adopt_stored_key(config.storage.database_url.expose_secret(), &credentials).await;
    let port = settings.listen[0].port();
    // An IPv6 host is bracketed in a URL, as `SocketAddr` writes it.
    let at = SocketAddr::new(found.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)), port);
    report.note(
        "ice servers",
        format!(
            "stun:{at}, turn:{at}?transport=udp, turn:{at}?transport=tcp (REST credentials, ttl {} s)",
            config.ice.turn_credential_ttl.as_secs()
        ),
    );

    // A relay of its own for the self-test, unless one already runs on the port.
    let free = StdUdpSocket::bind(settings.listen[0]).is_ok()
        && std::net::TcpListener::bind(settings.listen[0]).is_ok();
    let temporary = if free {
        match crate::relay::start_on(config, settings, found, Vec::new()).await {
            Ok(relay) => Some(relay),
            Err(err) => {
                report.check(
                    "turn ports",
                    fail(
                        format!("{err:#}"),
                        "free the ports, or set TURN_LISTEN and TURN_RELAY_PORT_MIN/MAX to ports this host can bind",
                    ),
                );
                return;
            }
        }
    } else {
        None
    };
    match &temporary {
        Some(relay) => report.check(
            "turn ports",
            ok(format!("UDP and TCP {:?} bind", relay.listen_addrs())),
        ),
        None => report.check(
            "turn ports",
            info(format!(
                "{} is in use: testing the relay that runs there",
                settings.listen[0]
            )),
        ),
    }
    let listening = temporary
        .as_ref()
        .map_or(settings.listen[0], |relay| relay.udp_addr());
    let target = probe::reachable(listening);
    // With TURN_LISTEN on port 0 the doctor's own relay has UDP and TCP on different ports.
    let tcp_target = probe::reachable(
        temporary
            .as_ref()
            .map_or(settings.listen[0], |relay| relay.tcp_addr()),
    );
    let mut refusals = Refusals {
        running: temporary.is_none(),
        generated_secret: config.generated.contains(&"TURN_SECRET"),
        explained: false,
    };
    report.check(
        "stun",
        refusals.outcome("STUN", turn::stun_binding(target).await),
    );
    report.check(
        "turn udp",
        refusals.outcome("UDP", turn::udp_round_trip(target, &credentials).await),
    );
    report.check(
        "turn tcp",
        refusals.outcome(
            "TCP",
            tcp_allocate(tcp_target, &credentials, &settings.realm).await,
        ),
    );
    if let Some(tls) = &config.tls {
        // With no server running, a TLS front of its own in front of the
        // temporary relay, on the ports the server would use.
        let stop = tokio_util::sync::CancellationToken::new();
        let front = match &temporary {
            Some(relay) => {
                crate::tls::serve_turn_tls_for_doctor(config, tls, relay, stop.clone()).await
            }
            None => Ok(()),
        };
        let outcome = match front {
            Ok(()) => match turns_target(config, settings, tls) {
                Ok((host, port)) => refusals.outcome(
                    "TLS",
                    tls_allocate(&host, port, &credentials, &settings.realm).await,
                ),
                Err(outcome) => outcome,
            },
            Err(err) => fail(
                format!("{err:#}"),
                "free the HTTPS port (HOST/PORT) or TURN_TLS_LISTEN, or stop the process that holds it",
            ),
        };
        report.check("turn tls", outcome);
        stop.cancel();
    }
    if let Some(relay) = temporary {
        relay.close().await;
    }
}

/// Turns a relay check's refusal into what to do; a 401 is explained once.
struct Refusals {
    /// Testing a running server's relay (not one of the doctor's own).
    running: bool,
    /// `TURN_SECRET` was generated for this run (dev without it).
    generated_secret: bool,
    explained: bool,
}

impl Refusals {
    fn outcome(&mut self, transport: &str, result: Result<String, Refusal>) -> Outcome {
        match result {
            Ok(text) => ok(text),
            Err(Refusal::Failed { text, fix }) => fail(text, fix),
            Err(Refusal::Unauthorized) if self.explained => {
                let text = format!("Allocate over {transport} refused too (401 Unauthorized): the same TURN_SECRET mismatch");
                let fix = "as above: the same TURN_SECRET for the server and the doctor";
                if self.generated_secret {
                    warn(text, fix)
                } else {
                    fail(text, fix)
                }
            }
            Err(Refusal::Unauthorized) => {
                self.explained = true;
                match (self.running, self.generated_secret) {
                    (true, true) => warn(
                        format!("the running server's relay refused this check's credentials over {transport} (401 Unauthorized): TURN_SECRET is not set, so the server and this doctor each generated their own, and they differ"),
                        "set TURN_SECRET in .env (e.g. the output of: openssl rand -base64 32) so that both share it, restart the server, and run the doctor again",
                    ),
                    (true, false) => fail(
                        format!("the running server's relay refused credentials signed with this TURN_SECRET over {transport} (401 Unauthorized): the server runs with another one"),
                        "give the server and the doctor the same TURN_SECRET (the one in .env), restart the server, and run the doctor again",
                    ),
                    (false, _) => fail(
                        format!("the relay refused credentials it issued over {transport} (401 Unauthorized)"),
                        "check TURN_SECRET and TURN_CREDENTIAL_TTL_SECS, and that this host's clock is right",
                    ),
                }
            }
        }
    }
}

/// An Allocate over TCP on the relay's port, as a browser behind a firewall
/// that lets out no UDP makes one (`turn:…?transport=tcp`).
async fn tcp_allocate(
    target: SocketAddr,
    credentials: &RestCredentials,
    realm: &str,
) -> Result<String, Refusal> {
    let mut tcp = match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(target),
    )
    .await
    {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            return Err(Refusal::Failed {
                text: format!("{target}: {e}"),
                fix: "the relay must listen on TCP too, on the TURN_LISTEN port; let TCP to it through the firewall".into(),
            })
        }
        Err(_) => {
            return Err(Refusal::Failed {
                text: format!("{target} does not answer on TCP in 5 s"),
                fix: "let TCP to the TURN port through the firewall".into(),
            })
        }
    };
    let relayed = turn::allocate_on_stream(&mut tcp, credentials, realm).await?;
    Ok(format!("Allocate over TCP at {target}: relayed {relayed}"))
}

/// Where browsers are sent for TURN over TLS: `PUBLIC_HOST` (or the certificate's
/// name) and the `turns:` port, as `/api/v1/webrtc/ice-servers` says.
fn turns_target(
    config: &Config,
    settings: &TurnSettings,
    tls: &TlsSettings,
) -> Result<(String, u16), Outcome> {
    let Some(host) = crate::tls::certificate_host(config, tls) else {
        return Err(fail(
            "no DNS name for the certificate: browsers are offered no turns: URL, and networks that let out only 443 cannot call",
            "set PUBLIC_HOST to the name the certificate is for",
        ));
    };
    let port = crate::ice::turns_port(
        settings,
        tls.https,
        config.http.port,
        settings.tls_listen.map(|a| a.port()),
    )
    .ok_or_else(|| fail("no turns: port", "set PORT or TURN_TLS_PUBLIC_PORT"))?;
    Ok((host, port))
}

/// A real Allocate over TLS at `host:port`, checking the certificate against the
/// system's trust store (`SSL_CERT_FILE` too) as a browser would.
async fn tls_allocate(
    host: &str,
    port: u16,
    credentials: &RestCredentials,
    realm: &str,
) -> Result<String, Refusal> {
    let failed = |text: String, fix: &str| Refusal::Failed {
        text,
        fix: fix.to_owned(),
    };
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| failed(format!("{host}: {e}"), "set PUBLIC_HOST to a DNS name"))?;
    let tcp = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    .map_err(|_| {
        failed(
            format!("{host}:{port} does not answer in 5 s"),
            "is the port open, and does PUBLIC_HOST point at this server?",
        )
    })?
    .map_err(|e| {
        failed(
            format!("{host}:{port}: {e}"),
            "is webcall listening there, and does PUBLIC_HOST point at this server?",
        )
    })?;
    let mut tls = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_rustls::TlsConnector::from(turn::tls_client_config()).connect(name, tcp),
    )
    .await
    .map_err(|_| failed(format!("{host}:{port}: TLS handshake timed out"), "is it TLS on that port?"))?
    .map_err(|e| {
        failed(
            format!("{host}:{port}: the certificate is not trusted here ({e})"),
            "browsers will refuse it too: the certificate must be valid for PUBLIC_HOST and signed by a trusted authority",
        )
    })?;
    let relayed = turn::allocate_on_stream(&mut tls, credentials, realm).await?;
    Ok(format!(
        "Allocate over TLS at {host}:{port} (certificate trusted): relayed {relayed}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_browsers_outside_cannot_reach_are_named() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.10",
            "169.254.0.5",
            "100.64.0.1",
            "100.127.255.254",
            "::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:192.168.1.1",
        ] {
            assert!(
                unreachable_from_outside(ip.parse().unwrap()).is_some(),
                "{ip}"
            );
        }
        for ip in [
            "203.0.113.7",
            "100.128.0.1",
            "8.8.8.8",
            "2001:db8::1",
            "2a00:1450::1",
        ] {
            assert!(
                unreachable_from_outside(ip.parse().unwrap()).is_none(),
                "{ip}"
            );
        }
    }
}
