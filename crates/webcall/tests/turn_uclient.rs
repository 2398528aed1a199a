//! coturn's own test client, `turnutils_uclient` (Debian package `coturn`),
//! against the embedded relay started the way an operator configures it: TURN
//! REST credentials from `TURN_SECRET`, clients relaying to each other (`-y`).
//! Paced load, run serially, zero loss required: UDP ChannelData, UDP Send
//! indications, TCP, and TLS on the HTTPS port.

mod support;

use std::time::Duration;

use support::{spawn_app, TURN_SECRET};

/// `turnutils_uclient`'s path, or `None` (allowed outside CI only).
fn uclient() -> Option<&'static str> {
    const PATH: &str = "turnutils_uclient";
    let found = std::process::Command::new(PATH).arg("-h").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "turnutils_uclient is missing: install the Debian package coturn (.ci/run does)"
        );
        eprintln!("SKIPPED: turnutils_uclient not installed (apt-get install coturn)");
        return None;
    }
    Some(PATH)
}

/// Runs one load; returns (sent, received, lost-reported) from its summary.
async fn run(port: u16, extra: &[&str]) -> (u64, u64, Option<u64>, String) {
    let mut args = vec![
        "-y",
        "-c",
        "-m",
        "10",
        "-n",
        "200",
        "-l",
        "120",
        "-z",
        "20",
        "-W",
        TURN_SECRET,
        "-u",
        "uclient",
    ];
    args.extend_from_slice(extra);
    let port = port.to_string();
    args.extend_from_slice(&["-p", &port, "127.0.0.1"]);
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(uclient().unwrap())
            .args(&args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("turnutils_uclient finishes within 120 s")
    .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let number_after = |label: &str| -> Option<u64> {
        let at = text.rfind(label)? + label.len();
        text[at..]
            .trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    let sent = number_after("tot_send_msgs=").unwrap_or(0);
    let received = number_after("tot_recv_msgs=").unwrap_or(0);
    (sent, received, number_after("Total lost packets"), text)
}

#[tokio::test]
async fn coturn_uclient_relays_without_loss_over_udp_send_indications_and_tcp() {
    if uclient().is_none() {
        return;
    }
    let app = spawn_app(&[
        ("TURN_ALLOW_LOOPBACK_PEERS", "true"),
        ("TURN_USER_QUOTA", "1000"),
    ])
    .await;
    let port = app.turn_port();
    for (mode, extra) in [
        ("UDP ChannelData", &[][..]),
        ("UDP Send indications", &["-s"][..]),
        ("TCP", &["-t"][..]),
    ] {
        let (sent, received, lost, output) = run(port, extra).await;
        let tail: String = output.lines().rev().take(15).collect::<Vec<_>>().join("\n");
        assert_eq!(
            sent,
            10 * 200,
            "{mode}: every client sent every message\n{tail}"
        );
        assert_eq!(received, sent, "{mode}: zero loss\n{tail}");
        assert_eq!(lost, Some(0), "{mode}\n{tail}");
    }
    app.stop().await;
}

#[tokio::test]
async fn coturn_uclient_relays_without_loss_over_tls_on_the_https_port() {
    if uclient().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = support::write_cert(dir.path(), "webcall.test");
    let app = spawn_app(&[
        ("TURN_ALLOW_LOOPBACK_PEERS", "true"),
        ("TURN_USER_QUOTA", "1000"),
        ("TLS_CERT_FILE", &cert),
        ("TLS_KEY_FILE", &key),
        ("HTTP_REDIRECT_PORT", "off"),
    ])
    .await;
    let (sent, received, lost, output) = run(app.addr.port(), &["-t", "-S"]).await;
    let tail: String = output.lines().rev().take(15).collect::<Vec<_>>().join("\n");
    assert_eq!(
        sent,
        10 * 200,
        "TLS: every client sent every message\n{tail}"
    );
    assert_eq!(received, sent, "TLS: zero loss\n{tail}");
    assert_eq!(lost, Some(0), "TLS\n{tail}");
    app.stop().await;
}
