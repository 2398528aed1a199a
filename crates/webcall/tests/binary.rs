//! The `webcall` executable as a newcomer runs it: no configuration at all, the
//! dev registration secret read off its output, and what it must never print.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_webcall");

/// A running `webcall` process whose stdout and stderr are collected.
struct Process {
    child: Child,
    output: Arc<Mutex<String>>,
}

fn collect(stream: impl AsyncRead + Unpin + Send + 'static, into: Arc<Mutex<String>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut out = into.lock().unwrap();
            out.push_str(&line);
            out.push('\n');
        }
    });
}

fn command(dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // Tests run in parallel: no fixed TURN or metrics port.
        .env("TURN_LISTEN", "127.0.0.1:0")
        .env("METRICS_LISTEN", "127.0.0.1:0")
        .env("SFU_UDP_PORT", "0")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

impl Process {
    fn start(dir: &Path, vars: &[(&str, &str)]) -> Self {
        let mut child = command(dir, vars, &[]).spawn().unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        collect(child.stdout.take().unwrap(), output.clone());
        collect(child.stderr.take().unwrap(), output.clone());
        Self { child, output }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// Waits until the output contains `needle`, then returns the rest of that line.
    async fn wait_for(&self, needle: &str) -> String {
        for _ in 0..300 {
            if let Some(at) = self.output().find(needle) {
                let rest = &self.output()[at + needle.len()..];
                return rest.lines().next().unwrap_or_default().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("never printed {needle:?}; output:\n{}", self.output());
    }

    /// The line after the dev banner: the generated registration secret.
    async fn registration_secret(&self) -> String {
        self.wait_for("Development registration secret").await;
        let out = self.output();
        let after = out.split("Development registration secret").nth(1).unwrap();
        after
            .lines()
            .skip(1)
            .map(str::trim)
            .find(|l| !l.is_empty())
            .expect("the secret follows the banner")
            .to_owned()
    }

    async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().unwrap() as i32;
        // kill(1) sends SIGTERM without an unsafe libc call.
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("exits within 10 s of SIGTERM")
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        (status, self.output())
    }
}

/// `/metrics` is not on the public port (404 there, like any unknown path): it is
/// served on `METRICS_LISTEN`, and with `METRICS_TOKEN` only to a scraper that
/// sends it (the token is never logged).
#[tokio::test]
async fn metrics_are_served_on_their_own_address_only() {
    let dir = tempfile::tempdir().unwrap();
    let token = "scrape-token-9d3f1c0e";
    let app = Process::start(
        dir.path(),
        &[
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
            ("METRICS_TOKEN", token),
        ],
    );
    let public = app.wait_for("listening addr=").await;
    let public = public.split_whitespace().next().unwrap().to_owned();
    let http = reqwest::Client::new();

    let on_public = http
        .get(format!("http://{public}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(on_public.status(), 404);
    let body = on_public.text().await.unwrap();
    assert!(!body.contains("webcall_"), "{body}");

    let metrics = app.wait_for("serving metrics addr=").await;
    let metrics = metrics.split_whitespace().next().unwrap().to_owned();
    assert_ne!(public, metrics);

    let url = format!("http://{metrics}/metrics");
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    let wrong = http.get(&url).bearer_auth("guess").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let scraped = http.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped
        .text()
        .await
        .unwrap()
        .contains("webcall_ws_frames_total{direction=\"in\"}"));
    // Only metrics there.
    let other = http
        .get(format!("http://{metrics}/api/v1/rooms"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);

    let (status, output) = app.terminate().await;
    assert!(status.success(), "{output}");
    assert!(
        !output.contains(token),
        "the token is never logged:\n{output}"
    );
}

/// With no HOST, the web app and the relay answer on IPv4 and IPv6 alike (an
/// IPv6-only person can open the page and reach the relay).
#[tokio::test]
async fn by_default_it_listens_on_ipv4_and_ipv6() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "CI machines have IPv6 on loopback"
        );
        eprintln!("SKIPPED: no IPv6 on this host");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The relay's default is 0.0.0.0:3478,[::]:3478; a free port here.
    let server = Process::start(
        dir.path(),
        &[("PORT", "0"), ("TURN_LISTEN", "0.0.0.0:0,[::]:0")],
    );
    let addr = server.wait_for("listening addr=").await;
    let port = addr.trim().rsplit(':').next().unwrap().to_owned();
    assert!(addr.trim().starts_with("[::]:"), "{addr}");
    for host in ["127.0.0.1", "[::1]"] {
        let health = reqwest::get(format!("http://{host}:{port}/healthz"))
            .await
            .unwrap();
        assert_eq!(health.status(), 200, "{host}");
    }
    let relay = server
        .wait_for("TURN/STUN relay listening listen=[0.0.0.0:")
        .await;
    let turn_port = relay.split(',').next().unwrap();
    assert!(
        relay.contains(&format!(", [::]:{turn_port}]")),
        "the relay on both families, one port: {relay}"
    );
    let (status, output) = server.terminate().await;
    assert!(status.success(), "{output}");
}

#[tokio::test]
async fn a_newcomer_runs_it_with_no_configuration_and_nothing_secret_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start(dir.path(), &[("HOST", "127.0.0.1"), ("PORT", "0")]);
    let secret = server.registration_secret().await;
    let addr = server.wait_for("listening addr=").await;
    let base = format!("http://{}", addr.trim());
    assert!(
        dir.path().join("webcall.db").exists(),
        "SQLite file in the working directory"
    );

    let http = reqwest::Client::new();
    let password = "a very secret password";
    let register = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": "new@example.org", "username": "newcomer", "password": password, "secret": secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), 201);
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "new@example.org", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    let me = http
        .get(format!("{base}/api/v1/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    // A token in a query string (as the WebSocket URL will carry it) must not be logged.
    http.get(format!("{base}/ws/rooms/lobby?token={token}"))
        .send()
        .await
        .unwrap();
    http.get(format!("{base}/api/v1/auth/me?token={token}"))
        .send()
        .await
        .unwrap();
    let logout = http
        .post(format!("{base}/api/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let refused = http
        .get(format!("{base}/api/v1/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let (status, output) = server.terminate().await;
    assert!(
        status.success(),
        "graceful exit on SIGTERM: {status:?}\n{output}"
    );
    assert!(
        output.contains("/ws/rooms/lobby"),
        "requests are logged:\n{output}"
    );
    for (what, value) in [("token", token.as_str()), ("password", password)] {
        assert!(!output.contains(value), "the {what} was logged:\n{output}");
    }
    // The secret appears exactly once: in the dev banner.
    assert_eq!(output.matches(&secret).count(), 1, "{output}");
}

#[tokio::test]
async fn prod_without_secrets_refuses_to_start_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(
        dir.path(),
        &[("APP_ENV", "prod"), ("REGISTRATION_SECRET", "x")],
        &[],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("JWT_SECRET: must be set"), "{stderr}");

    let short = command(
        dir.path(),
        &[
            ("APP_ENV", "prod"),
            ("REGISTRATION_SECRET", "x"),
            ("JWT_SECRET", "too-short"),
        ],
        &[],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(short.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(
        stderr.contains("JWT_SECRET: must be at least 32 bytes"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("too-short"),
        "the secret itself is not echoed: {stderr}"
    );
}

#[tokio::test]
async fn migrate_applies_migrations_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("data/app.db").display());
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let out = command(dir.path(), &[("DATABASE_URL", &url)], &["migrate"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = webcall_db::SqlStore::connect(&url).await.unwrap();
    store
        .execute_raw("SELECT id, email, username FROM users")
        .await
        .unwrap();
    store.close().await;
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = command(dir.path(), &[("HOST", "127.0.0.1"), ("PORT", &port)], &[])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_turn_port_in_use_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let out = command(
        dir.path(),
        &[
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
            ("TURN_LISTEN", &listen),
        ],
        &[],
    )
    .output()
    .await
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot bind TURN UDP {listen} (TURN_LISTEN)")),
        "{stderr}"
    );
}

#[tokio::test]
async fn sigterm_closes_calls_with_1001_and_exits_cleanly_within_10_s() {
    use futures_util::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start(
        dir.path(),
        &[
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
            ("REGISTRATION_SECRET", "let-me-in"),
        ],
    );
    let addr = server.wait_for("listening addr=").await;
    let base = format!("http://{}", addr.trim());
    let http = reqwest::Client::new();
    http.post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": "a@example.org", "username": "ada", "password": "a long password", "secret": "let-me-in"}))
        .send()
        .await
        .unwrap();
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "ada", "password": "a long password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    let url = format!("ws://{}/ws/rooms/team?token={token}", addr.trim());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.next().await.unwrap().unwrap(); // welcome

    let started = std::time::Instant::now();
    let (status, output) = server.terminate().await;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame)))) => {
                break frame.map(|f| u16::from(f.code))
            }
            Ok(Some(Ok(_))) => continue,
            _ => break None,
        }
    };
    assert_eq!(close, Some(1001), "calls are told the server is going away");
    assert!(status.success(), "{status:?}\n{output}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(output.contains("TURN relay stopped"), "{output}");
    assert!(output.contains("stopped"), "{output}");
}

#[tokio::test]
async fn doctor_checks_everything_and_names_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = command(
        dir.path(),
        &[
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
            ("TURN_PUBLIC_IP", "127.0.0.1"),
        ],
        &["doctor"],
    )
    .output()
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&healthy.stdout);
    let stderr = String::from_utf8_lossy(&healthy.stderr);
    assert!(healthy.status.success(), "{report}\n{stderr}");
    for check in [
        "database",
        "http port",
        "files",
        "turn ports",
        "stun",
        "turn udp",
        "turn tcp",
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(check)),
            "{check} not ok:\n{report}"
        );
    }
    assert!(report.contains("round trip"), "{report}");
    assert!(
        report.contains("Allocate over TCP at 127.0.0.1:"),
        "{report}"
    );
    // Secrets generated for the run are said, not failed.
    assert!(line_with(&report, "config").starts_with("info"), "{report}");
    // A loopback TURN_PUBLIC_IP works here, but not for anyone elsewhere.
    let public = line_with(&report, "public ip");
    assert!(
        public.starts_with("WARN") && public.contains("loopback"),
        "{report}"
    );
    assert!(
        fix_after(&report, "public ip").contains("set TURN_PUBLIC_IP"),
        "{report}"
    );
    assert_clean(&report, &stderr);
    assert_eq!(summaries(&report), 1, "{report}");
    assert!(
        report
            .trim_end()
            .ends_with("1 to look at (public ip); see the fix: lines above"),
        "{report}"
    );

    // A files directory that cannot be one (a plain file is in the way).
    let in_the_way = dir.path().join("not-a-dir");
    std::fs::write(&in_the_way, b"x").unwrap();
    let broken = command(
        dir.path(),
        &[
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
            ("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"),
            ("ATTACHMENT_DIR", in_the_way.to_str().unwrap()),
        ],
        &["doctor"],
    )
    .output()
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&broken.stdout);
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert_eq!(broken.status.code(), Some(1), "{report}");
    assert!(
        line_with(&report, "database").starts_with("FAIL"),
        "{report}"
    );
    assert!(
        fix_after(&report, "database").contains("DATABASE_URL"),
        "{report}"
    );
    assert!(line_with(&report, "files").starts_with("FAIL"), "{report}");
    assert!(
        fix_after(&report, "files").contains("ATTACHMENT_DIR"),
        "{report}"
    );
    // The summary once, on stdout; nothing repeats it on stderr.
    assert_eq!(summaries(&report), 1, "{report}");
    assert!(report.contains("failed (database, files)"), "{report}");
    assert!(!stderr.contains("failed"), "{stderr}");
    assert_clean(&report, &stderr);

    // In prod every missing secret is named at once, in the report too.
    let prod = command(dir.path(), &[("APP_ENV", "prod")], &["doctor"])
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&prod.stdout);
    assert_eq!(prod.status.code(), Some(2), "{report}");
    for var in ["JWT_SECRET", "REGISTRATION_SECRET", "TURN_SECRET"] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("FAIL") && l.contains(&format!("{var}: must be set"))),
            "{var}:\n{report}"
        );
    }
    assert_eq!(report.matches("fix: set it in .env").count(), 3, "{report}");
}

/// The report's line for `check` (the first one).
fn line_with<'a>(report: &'a str, check: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(check)))
        .unwrap_or_else(|| panic!("no {check} line:\n{report}"))
}

/// The `fix:` line under `check`'s line.
fn fix_after<'a>(report: &'a str, check: &str) -> &'a str {
    let line = line_with(report, check);
    let mut lines = report.lines().skip_while(|l| *l != line).skip(1);
    let fix = lines.next().unwrap_or_default();
    assert!(fix.trim_start().starts_with("fix: "), "{check}:\n{report}");
    fix
}

fn summaries(report: &str) -> usize {
    report
        .lines()
        .filter(|l| l.starts_with("all ") || l.contains(" checks: "))
        .count()
}

/// No log line in the report, and no error logged next to it.
fn assert_clean(report: &str, stderr: &str) {
    for line in report.lines() {
        assert!(
            !line.starts_with("20") && !line.contains(" INFO ") && !line.contains(" WARN "),
            "a log line in the report: {line}\n{report}"
        );
    }
    assert!(!stderr.contains("ERROR"), "{stderr}");
}

/// A port free on loopback for both UDP and TCP (for a relay two processes share).
fn free_turn_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The doctor beside a running server: the HTTP port held by WebCall is said
/// (not failed), and it tests that server's relay over UDP and TCP. In dev
/// without TURN_SECRET each process makes up its own, so the relay refuses the
/// doctor's credentials: the doctor says exactly that and how to fix it.
/// Something else on the port is a failure.
#[tokio::test]
async fn doctor_recognises_a_running_webcall_and_explains_a_turn_secret_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let turn = format!("127.0.0.1:{}", free_turn_port());
    let shared = "a-turn-secret-both-processes-share";
    let vars = [
        ("HOST", "127.0.0.1"),
        ("PORT", port.as_str()),
        ("TURN_LISTEN", turn.as_str()),
        ("TURN_PUBLIC_IP", "127.0.0.1"),
    ];
    let server = Process::start(
        dir.path(),
        &[&vars[..], &[("TURN_SECRET", shared)]].concat(),
    );
    server.wait_for("listening addr=").await;

    let unset = command(dir.path(), &vars, &["doctor"])
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&unset.stdout);
    let stderr = String::from_utf8_lossy(&unset.stderr);
    let http = line_with(&report, "http port");
    assert!(
        http.starts_with("info") && http.contains("running WebCall"),
        "{report}"
    );
    assert!(
        line_with(&report, "turn ports").starts_with("info"),
        "{report}"
    );
    assert!(line_with(&report, "stun").starts_with("ok"), "{report}");
    let udp = line_with(&report, "turn udp");
    assert!(
        udp.starts_with("WARN")
            && udp.contains("401")
            && udp.contains("TURN_SECRET is not set")
            && udp.contains("each generated their own"),
        "{report}"
    );
    assert!(
        fix_after(&report, "turn udp").contains("set TURN_SECRET in .env"),
        "{report}"
    );
    assert!(line_with(&report, "turn tcp").contains("401"), "{report}");
    assert!(
        unset.status.success(),
        "a warning is not a failure: {report}"
    );
    assert_clean(&report, &stderr);

    let same = command(
        dir.path(),
        &[&vars[..], &[("TURN_SECRET", shared)]].concat(),
        &["doctor"],
    )
    .output()
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&same.stdout);
    for check in ["turn udp", "turn tcp"] {
        assert!(line_with(&report, check).starts_with("ok"), "{report}");
    }
    assert!(
        report.contains(&format!("Allocate over TCP at {turn}")),
        "{report}"
    );

    let other = command(
        dir.path(),
        &[
            &vars[..],
            &[("TURN_SECRET", "another-secret-than-the-server")],
        ]
        .concat(),
        &["doctor"],
    )
    .output()
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&other.stdout);
    assert_eq!(other.status.code(), Some(1), "{report}");
    assert!(
        line_with(&report, "turn udp").starts_with("FAIL")
            && line_with(&report, "turn udp").contains("runs with another one"),
        "{report}"
    );
    let (status, output) = server.terminate().await;
    assert!(status.success(), "{output}");

    // A port held by something that is not WebCall fails, saying what to do.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap().port().to_string();
    let held = command(
        dir.path(),
        &[("HOST", "127.0.0.1"), ("PORT", taken.as_str())],
        &["doctor"],
    )
    .output()
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&held.stdout);
    assert!(
        line_with(&report, "http port").starts_with("FAIL"),
        "{report}"
    );
    assert!(
        fix_after(&report, "http port").contains("set PORT"),
        "{report}"
    );
}

/// Start-up says which address to open; loading a page logs the page and the
/// API calls, not each file it loads (those are at DEBUG).
#[tokio::test]
async fn start_up_prints_the_address_to_open_and_a_page_load_is_not_a_line_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start(dir.path(), &[("HOST", "127.0.0.1"), ("PORT", "0")]);
    let addr = server.wait_for("listening addr=").await;
    let port = addr.trim().rsplit(':').next().unwrap().to_owned();
    let open = format!("Open http://127.0.0.1:{port}/");
    assert!(
        server.output().lines().any(|l| l == open),
        "a plain line {open:?}:\n{}",
        server.output()
    );
    let base = format!("http://{}", addr.trim());
    let http = reqwest::Client::new();
    for path in [
        "/r/team",
        "/static/css/app.css",
        "/static/js/app.js",
        "/static/js/i18n.js",
        "/static/favicon.svg",
        "/favicon.ico",
        "/healthz",
        "/api/v1/rooms",
    ] {
        http.get(format!("{base}{path}")).send().await.unwrap();
    }
    let (status, output) = server.terminate().await;
    assert!(status.success(), "{output}");
    assert!(
        output.contains("path=/r/team"),
        "the page is logged:\n{output}"
    );
    assert!(
        output.contains("path=/api/v1/rooms"),
        "the API is logged:\n{output}"
    );
    for quiet in ["/static/", "path=/favicon.ico", "path=/healthz"] {
        assert!(!output.contains(quiet), "{quiet} logged:\n{output}");
    }

    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let v6 = Process::start(dir.path(), &[("HOST", "::1"), ("PORT", "0")]);
        let addr = v6.wait_for("listening addr=").await;
        let port = addr.trim().rsplit(':').next().unwrap().to_owned();
        let open = v6.wait_for("Open ").await;
        assert_eq!(open, format!("http://[::1]:{port}/"));
        v6.terminate().await;
    }
}

/// In prod, `webcall` names every missing secret at once.
#[tokio::test]
async fn prod_names_every_missing_secret_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path(), &[("APP_ENV", "prod")], &[])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for var in ["JWT_SECRET", "REGISTRATION_SECRET", "TURN_SECRET"] {
        assert!(
            stderr.contains(&format!("{var}: must be set when APP_ENV=prod")),
            "{var}:\n{stderr}"
        );
    }
}

mod https {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    /// A self-signed certificate for `localhost`, written to `dir` as cert.pem/key.pem.
    fn write_cert(dir: &Path) -> rustls::pki_types::CertificateDer<'static> {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), certified.key_pair.serialize_pem()).unwrap();
        certified.cert.der().clone()
    }

    /// GET `path` over TLS trusting only `root`; `None` if the handshake fails.
    async fn get(
        addr: &str,
        root: &rustls::pki_types::CertificateDer<'static>,
        path: &str,
    ) -> Option<String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(root.clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        tls.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        tls.read_to_string(&mut response).await.ok()?;
        Some(response)
    }

    #[tokio::test]
    async fn the_binary_serves_https_redirects_http_and_reloads_its_certificate_on_sighup() {
        let dir = tempfile::tempdir().unwrap();
        let first = write_cert(dir.path());
        let redirect_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
            .to_string();
        let cert = dir.path().join("cert.pem").display().to_string();
        let key = dir.path().join("key.pem").display().to_string();
        let server = Process::start(
            dir.path(),
            &[
                ("HOST", "127.0.0.1"),
                ("PORT", "0"),
                ("TLS_CERT_FILE", &cert),
                ("TLS_KEY_FILE", &key),
                ("HTTP_REDIRECT_PORT", &redirect_port),
            ],
        );
        let addr = server.wait_for("listening addr=").await.trim().to_owned();
        let port = addr.rsplit(':').next().unwrap().to_owned();
        server.wait_for("redirecting HTTP to HTTPS").await;

        let health = get(&addr, &first, "/healthz").await.expect("TLS handshake");
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");

        let mut plain = TcpStream::connect(format!("127.0.0.1:{redirect_port}"))
            .await
            .unwrap();
        plain
            .write_all(b"GET /r/team?forceRelay=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        plain.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 308"), "{response}");
        let location = format!("\r\nlocation: https://localhost:{port}/r/team?forceRelay=1\r\n");
        assert!(response.contains(&location), "{response}");

        // Renewal: new files, SIGHUP, and the new certificate is served.
        let second = write_cert(dir.path());
        let pid = server.pid().to_string();
        assert!(std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
        server.wait_for("TLS certificate reloaded").await;
        assert!(get(&addr, &second, "/healthz")
            .await
            .is_some_and(|r| r.starts_with("HTTP/1.1 200")));
        assert!(
            get(&addr, &first, "/healthz").await.is_none(),
            "the old certificate is gone"
        );

        let (status, output) = server.terminate().await;
        assert!(status.success(), "{output}");
    }

    #[tokio::test]
    async fn acme_is_configured_from_the_environment_and_keeps_serving_while_it_retries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("acme");
        let cache_arg = cache.display().to_string();
        // A directory on loopback that refuses connections: no traffic leaves the machine.
        let server = Process::start(
            dir.path(),
            &[
                ("HOST", "127.0.0.1"),
                ("PORT", "0"),
                ("HTTP_REDIRECT_PORT", "off"),
                ("ACME_DOMAIN", "call.example.org"),
                ("ACME_EMAIL", "admin@example.org"),
                ("ACME_CACHE_DIR", &cache_arg),
                ("ACME_DIRECTORY", "https://127.0.0.1:9/directory"),
            ],
        );
        server.wait_for("ACME: certificates will be obtained").await;
        server.wait_for("listening addr=").await;
        server.wait_for("ACME: will retry").await;
        assert!(cache.is_dir(), "the cache directory is created");
        let (status, output) = server.terminate().await;
        assert!(status.success(), "{output}");
        assert!(output.contains("call.example.org"), "{output}");

        for (vars, var) in [
            (
                vec![
                    ("ACME_DOMAIN", "call.example.org"),
                    ("TLS_CERT_FILE", "/c.pem"),
                    ("TLS_KEY_FILE", "/k.pem"),
                ],
                "ACME_DOMAIN",
            ),
            (vec![("ACME_DOMAIN", "localhost")], "ACME_DOMAIN"),
            (
                vec![
                    ("ACME_DOMAIN", "call.example.org"),
                    ("ACME_DIRECTORY", "http://insecure.example/dir"),
                ],
                "ACME_DIRECTORY",
            ),
            (
                vec![
                    ("ACME_DOMAIN", "call.example.org"),
                    ("ACME_STAGING", "maybe"),
                ],
                "ACME_STAGING",
            ),
        ] {
            let out = command(dir.path(), &vars, &[]).output().await.unwrap();
            assert_eq!(out.status.code(), Some(2), "{vars:?}");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains(&format!("{var}:")),
                "{vars:?}"
            );
        }
    }

    /// `webcall doctor` makes a real Allocate over TLS at the `turns:` host and
    /// port, trusting what the system trusts (here `SSL_CERT_FILE`), as browsers do.
    #[tokio::test]
    async fn doctor_allocates_over_tls_at_the_public_host_and_says_when_it_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        write_cert(dir.path());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
            .to_string();
        let cert = dir.path().join("cert.pem").display().to_string();
        let key = dir.path().join("key.pem").display().to_string();
        let vars = [
            ("HOST", "127.0.0.1"),
            ("PORT", port.as_str()),
            ("TURN_PUBLIC_IP", "127.0.0.1"),
            ("TLS_CERT_FILE", cert.as_str()),
            ("TLS_KEY_FILE", key.as_str()),
            ("HTTP_REDIRECT_PORT", "off"),
        ];
        let trusted = command(
            dir.path(),
            &[&vars[..], &[("SSL_CERT_FILE", cert.as_str())]].concat(),
            &["doctor"],
        )
        .output()
        .await
        .unwrap();
        let report = String::from_utf8_lossy(&trusted.stdout);
        assert!(trusted.status.success(), "{report}");
        let line = report
            .lines()
            .find(|l| l.contains("turn tls"))
            .unwrap_or_else(|| panic!("no turn tls line:\n{report}"));
        assert!(line.starts_with("ok"), "{report}");
        assert!(
            line.contains(&format!("Allocate over TLS at localhost:{port}")),
            "{line}"
        );

        // The same certificate, not trusted by the system: browsers would refuse it.
        let untrusted = command(
            dir.path(),
            &[&vars[..], &[("SSL_CERT_FILE", "/nonexistent.pem")]].concat(),
            &["doctor"],
        )
        .output()
        .await
        .unwrap();
        let report = String::from_utf8_lossy(&untrusted.stdout);
        assert!(!untrusted.status.success(), "{report}");
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("FAIL") && l.contains("turn tls") && l.contains("trusted")),
            "{report}"
        );

        // A running WebCall on the HTTPS port is recognised, its certificate trusted or not.
        let server = Process::start(dir.path(), &vars);
        server.wait_for("listening addr=").await;
        let beside = command(
            dir.path(),
            &[&vars[..], &[("SSL_CERT_FILE", "/nonexistent.pem")]].concat(),
            &["doctor"],
        )
        .output()
        .await
        .unwrap();
        let report = String::from_utf8_lossy(&beside.stdout);
        let http = line_with(&report, "http port");
        assert!(
            http.starts_with("info") && http.contains("running WebCall"),
            "{report}"
        );
        let (status, output) = server.terminate().await;
        assert!(status.success(), "{output}");
    }

    #[tokio::test]
    async fn unreadable_certificate_files_stop_the_start_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let out = command(
            dir.path(),
            &[
                ("HOST", "127.0.0.1"),
                ("PORT", "0"),
                ("TLS_CERT_FILE", "/nonexistent/cert.pem"),
                ("TLS_KEY_FILE", "/nonexistent/key.pem"),
            ],
            &[],
        )
        .output()
        .await
        .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("TLS_CERT_FILE/TLS_KEY_FILE: cannot load /nonexistent/cert.pem"),
            "{stderr}"
        );
        let half = command(dir.path(), &[("TLS_CERT_FILE", "/x.pem")], &[])
            .output()
            .await
            .unwrap();
        assert_eq!(half.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&half.stderr)
            .contains("TLS_KEY_FILE: must be set together with TLS_CERT_FILE"));
    }
}

/// A number of kilobytes from `/proc/PID/status` (VmRSS: now; VmHWM: the peak).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Each argon2 hash needs 19 MiB. A burst of logins and registrations (failed
/// logins for unknown users need no account, and each still costs a hash) leaves
/// the process within 32 MB of where it was, and its peak within one 19 MiB
/// buffer per hashing worker of that: the hashes reuse a fixed set of buffers.
/// What the queue cannot take is refused with 503 and Retry-After.
#[tokio::test]
async fn a_burst_of_password_hashing_leaves_memory_where_it_was() {
    const MIB: u64 = 1024;
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start(
        dir.path(),
        &[
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
            ("REGISTRATION_SECRET", "burst-secret"),
            ("TRUSTED_PROXIES", "127.0.0.1"),
        ],
    );
    let addr = server.wait_for("listening addr=").await;
    let base = format!("http://{}", addr.trim());
    let http = reqwest::Client::new();
    let register = |i: usize| {
        http.post(format!("{base}/api/v1/auth/register"))
            .json(
                &json!({"email": format!("u{i}@example.org"), "username": format!("user{i}"),
                "password": "a burst password", "secret": "burst-secret"}),
            )
            .send()
    };
    assert_eq!(register(0).await.unwrap().status(), 201);
    let idle = status_kib(server.pid(), "VmRSS");

    // Each unknown-user login from its own address, so the per-address limit
    // does not stop them before the hasher does.
    let logins = (0..60).map(|i| {
        http.post(format!("{base}/api/v1/auth/login"))
            .header(
                "x-forwarded-for",
                format!("10.0.{}.{}", i / 200, i % 200 + 1),
            )
            .json(&json!({"username": format!("nobody{i}"), "password": "a burst password"}))
            .send()
    });
    let registrations = (1..21).map(register);
    let (logins, registrations) = tokio::join!(
        futures_util::future::join_all(logins),
        futures_util::future::join_all(registrations)
    );
    let mut seen = std::collections::BTreeMap::new();
    for response in logins.into_iter().chain(registrations) {
        let response = response.unwrap();
        let status = response.status().as_u16();
        assert!([401, 201, 503].contains(&status), "{status}");
        if status == 503 {
            assert_eq!(response.headers()["retry-after"], "1");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "overloaded");
        }
        *seen.entry(status).or_insert(0) += 1;
    }
    assert!(seen.get(&401).is_some_and(|n| *n > 0), "{seen:?}");

    let after = status_kib(server.pid(), "VmRSS");
    let peak = status_kib(server.pid(), "VmHWM");
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    assert!(
        after < idle + 32 * MIB,
        "RSS {idle} KiB idle, {after} KiB after the burst ({seen:?})"
    );
    assert!(
        peak < idle + 32 * MIB + workers * 19 * MIB,
        "RSS {idle} KiB idle, peak {peak} KiB ({seen:?})"
    );
    let (status, output) = server.terminate().await;
    assert!(status.success(), "{output}");
}
