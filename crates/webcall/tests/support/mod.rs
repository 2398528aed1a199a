//! Shared test helpers: start the real server on port 0 over a real database.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;

use serde_json::{json, Value};
use webcall::{Application, Config};

pub const JWT_SECRET: &str = "test-jwt-secret-0123456789-abcdefghijklmnop";
pub const REGISTRATION_SECRET: &str = "let-me-in-please";
pub const TURN_SECRET: &str = "test-turn-secret";
pub const PASSWORD: &str = "correct horse battery";

/// A self-signed certificate for `name` (a DNS name, or an IP address) written
/// to `dir` as cert.pem / key.pem: the `TLS_CERT_FILE` / `TLS_KEY_FILE` values,
/// and the certificate DER for a client to trust.
pub fn write_cert(
    dir: &std::path::Path,
    name: &str,
) -> (String, String, rustls::pki_types::CertificateDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    (
        cert.display().to_string(),
        key.display().to_string(),
        certified.cert.der().clone(),
    )
}

/// A running server and a client pointed at it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// Where `/metrics` is served (`METRICS_LISTEN`), unless it is off.
    pub metrics_addr: Option<SocketAddr>,
    /// The embedded relay's UDP/TCP port, 0 when it does not run.
    turn_port: u16,
    relay: Option<std::sync::Arc<webcall_turn::TurnRelay>>,
    /// Files in rooms' chat (the retention tests run its sweep).
    pub attachments: std::sync::Arc<webcall_app::attachments::Attachments>,
    /// The server's data directory (its SQLite file, `attachments/`).
    pub data_dir: std::path::PathBuf,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// The base variables every test server gets; `extra` overrides them.
pub fn test_vars(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = [
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("JWT_SECRET", JWT_SECRET),
        ("REGISTRATION_SECRET", REGISTRATION_SECRET),
        ("TURN_SECRET", TURN_SECRET),
        ("TURN_LISTEN", "127.0.0.1:0"),
        ("TURN_PUBLIC_IP", "127.0.0.1"),
        ("METRICS_LISTEN", "127.0.0.1:0"),
        // Tests run in parallel: no fixed port for routed calls' media either.
        ("SFU_UDP_PORT", "0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    vars
}

/// Starts a server on a fresh SQLite file (unless `extra` names a `DATABASE_URL`).
pub async fn spawn_app(extra: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut vars = test_vars(extra);
    vars.entry("DATABASE_URL".into())
        .or_insert_with(|| format!("sqlite://{}", dir.path().join("webcall.db").display()));
    // Files in the test's own directory, whatever the database (the default
    // with PostgreSQL is the working directory).
    vars.entry("ATTACHMENT_DIR".into())
        .or_insert_with(|| dir.path().join("attachments").display().to_string());
    vars.entry("RECORDING_DIR".into())
        .or_insert_with(|| dir.path().join("recordings").display().to_string());
    let config = Config::from_vars(&vars).unwrap();
    let app = Application::build(&config).await.unwrap();
    let addr = app.local_addr();
    let metrics_addr = app.metrics_addr();
    let turn_port = app.relay().map_or(0, |relay| relay.udp_addr().port());
    let relay = app.relay_handle();
    let attachments = app.attachments();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        metrics_addr,
        turn_port,
        relay,
        attachments,
        data_dir: dir.path().to_owned(),
        http: reqwest::Client::new(),
        shutdown: Some(tx),
        task: Some(task),
        _dir: dir,
    }
}

impl TestApp {
    /// Allocations the embedded relay holds now.
    pub fn relay_allocations(&self) -> usize {
        self.relay
            .as_ref()
            .map_or(0, |relay| relay.allocation_count())
    }

    pub fn turn_port(&self) -> u16 {
        self.turn_port
    }

    /// The metrics listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let addr = self.metrics_addr.expect("METRICS_LISTEN is on");
        let response = self
            .http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `POST /api/v1/rooms` for `name` as the holder of `token`.
    pub async fn create_room(&self, token: &str, name: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/rooms"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .unwrap()
    }

    pub async fn register(&self, email: &str, username: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/register",
            &json!({"email": email, "username": username, "password": PASSWORD, "secret": REGISTRATION_SECRET}),
        )
        .await
    }

    pub async fn login_username(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/login",
            &json!({"username": username, "password": password}),
        )
        .await
    }

    /// Another access token for an existing `username` (a second session).
    pub async fn fresh_token(&self, username: &str) -> String {
        let login = self.login_username(username, PASSWORD).await;
        assert_eq!(login.status(), 200);
        login.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Registers `username` and returns a fresh access token for it.
    pub async fn user_token(&self, username: &str) -> String {
        let created = self
            .register(&format!("{username}@example.org"), username)
            .await;
        assert_eq!(created.status(), 201);
        self.fresh_token(username).await
    }

    pub async fn get_authed(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete_authed(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_authed(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// Reads an error response: (status, code, field).
pub async fn error_of(response: reqwest::Response) -> (u16, String, Option<String>) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("error bodies are JSON");
    let error = &body["error"];
    assert!(
        error["message"].is_string(),
        "every error has a message: {body}"
    );
    (
        status,
        error["code"]
            .as_str()
            .expect("every error has a code")
            .to_owned(),
        error["field"].as_str().map(str::to_owned),
    )
}

/// A signaling client over a real WebSocket.
pub struct WsClient {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// How long a test waits for a frame that should come.
pub const FRAME_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a test waits for a close that should come, frames and pings before it included.
pub const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl TestApp {
    pub fn ws_url(&self, room: &str, token: &str, resume: Option<&str>) -> String {
        let mut url = format!("ws://{}/ws/rooms/{room}?token={token}", self.addr);
        if let Some(resume) = resume {
            url.push_str(&format!("&resume={resume}"));
        }
        url
    }

    /// Connects, or returns the HTTP status the upgrade was refused with.
    pub async fn try_ws(
        &self,
        room: &str,
        token: &str,
        resume: Option<&str>,
    ) -> Result<WsClient, u16> {
        match tokio_tungstenite::connect_async(self.ws_url(room, token, resume)).await {
            Ok((stream, _)) => Ok(WsClient { stream }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(other) => panic!("websocket connect failed: {other}"),
        }
    }

    /// Joins over a socket with a small receive buffer, so that a client that
    /// stops reading soon leaves the server's frames in its queue.
    pub async fn join_small_buffer(&self, room: &str, token: &str) -> (WsClient, Value) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(8 * 1024).unwrap();
        let tcp = socket.connect(self.addr).await.unwrap();
        let (stream, _) = tokio_tungstenite::client_async(
            self.ws_url(room, token, None),
            tokio_tungstenite::MaybeTlsStream::Plain(tcp),
        )
        .await
        .expect("upgrade accepted");
        let mut client = WsClient { stream };
        let welcome = client.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        (client, welcome)
    }

    /// Connects with `query` added to the URL (`sfu=1`, say) and reads the welcome.
    pub async fn join_with(&self, room: &str, token: &str, query: &str) -> (WsClient, Value) {
        let url = format!("{}&{query}", self.ws_url(room, token, None));
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("upgrade accepted");
        let mut client = WsClient { stream };
        let welcome = client.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        (client, welcome)
    }

    /// Connects and reads the welcome.
    pub async fn join(&self, room: &str, token: &str) -> (WsClient, Value) {
        let mut client = self
            .try_ws(room, token, None)
            .await
            .expect("upgrade accepted");
        let welcome = client.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        (client, welcome)
    }
}

impl WsClient {
    pub async fn send(&mut self, frame: Value) {
        use futures_util::SinkExt;
        self.stream
            .send(tokio_tungstenite::tungstenite::Message::text(
                frame.to_string(),
            ))
            .await
            .unwrap();
    }

    pub async fn send_raw(&mut self, message: tokio_tungstenite::tungstenite::Message) {
        use futures_util::SinkExt;
        let _ = self.stream.send(message).await;
    }

    /// The next message (pings answered and skipped), or `None` on close/timeout.
    pub async fn next(&mut self) -> Option<tokio_tungstenite::tungstenite::Message> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let message = tokio::time::timeout(FRAME_WAIT, self.stream.next())
                .await
                .ok()??
                .ok()?;
            match message {
                Message::Ping(_) | Message::Pong(_) => continue,
                other => return Some(other),
            }
        }
    }

    /// The next text frame as JSON; panics on anything else.
    pub async fn recv(&mut self) -> Value {
        match self.next().await {
            Some(tokio_tungstenite::tungstenite::Message::Text(text)) => {
                serde_json::from_str(&text).unwrap()
            }
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next frame of `kind`, skipping others.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.recv().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Reads until the server closes; returns the close code.
    /// The code of the server's close, skipping what comes before it; `None`
    /// when the connection ends without one or none comes within [`CLOSE_WAIT`]
    /// (pings alone would keep [`Self::next`] waiting for ever).
    pub async fn close_code(&mut self) -> Option<u16> {
        use tokio_tungstenite::tungstenite::Message;
        tokio::time::timeout(CLOSE_WAIT, async {
            loop {
                match self.next().await? {
                    Message::Close(frame) => return frame.map(|f| u16::from(f.code)),
                    _ => continue,
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// Reads until the server closes; returns the peer ids of the `peer_left`
    /// frames with `reason` that came before the close (sorted), and its code.
    pub async fn left_until_close(&mut self, reason: &str) -> (Vec<String>, Option<u16>) {
        use tokio_tungstenite::tungstenite::Message;
        let mut left = Vec::new();
        let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.next()).await;
            match next.ok().flatten() {
                Some(Message::Text(text)) => {
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    if frame["type"] == "peer_left" && frame["reason"] == reason {
                        left.push(frame["peer_id"].as_str().unwrap().to_owned());
                    }
                }
                Some(Message::Close(frame)) => {
                    left.sort();
                    return (left, frame.map(|f| u16::from(f.code)));
                }
                Some(_) => continue,
                None => {
                    left.sort();
                    return (left, None);
                }
            }
        }
    }

    /// True when nothing arrives for `wait`.
    pub async fn quiet_for(&mut self, wait: std::time::Duration) -> bool {
        use futures_util::StreamExt;
        loop {
            match tokio::time::timeout(wait, self.stream.next()).await {
                Err(_) => return true,
                Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Ping(_)))) => continue,
                Ok(_) => return false,
            }
        }
    }

    /// Drops the TCP connection without a close frame (a network switch).
    pub fn vanish(self) {
        drop(self);
    }
}
