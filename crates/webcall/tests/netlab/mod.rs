//! A small network lab out of Linux network namespaces: a server namespace with
//! a "public" segment (a bridge), client namespaces plugged into it directly or
//! behind NAT routers, egress rules made with nftables inside each namespace, the
//! real `webcall` binary in the server namespace and one headless Chromium (with
//! its own chromedriver) in each client namespace. Nothing leaves the machine: the
//! namespaces have no route to the host's own network.
//!
//! Layout (all addresses exist only inside the lab's namespaces):
//!
//! ```text
//!   server ns: bridge `pub` 100.64.0.1/24, fd64::1/64   (webcall: HTTP(S), TURN 3478, relay ports)
//!     ├── client ns `eth0` 100.64.0.1x/24                (a client on the public segment)
//!     └── router ns `wan`  100.64.0.2x/24, masquerade random
//!           └── client ns `eth0` 10.1.N.2/24, default via 10.1.N.1 (`lan` of the router)
//! ```
//!
//! How the test process drives a browser that lives in a namespace: chromedriver
//! runs inside the client namespace (so its DevTools connection to Chromium stays
//! on that namespace's loopback) and listens on that namespace's 127.0.0.1. The
//! test reaches it with [`NetnsConnector`], a hyper connector for fantoccini that
//! makes each TCP socket on a short-lived thread which first `setns(2)`s into the
//! client namespace: a socket belongs to the namespace it was created in, so the
//! stream handed back to the test's runtime talks to the namespace's loopback. No
//! extra interface, route or forwarding is added to the client, so its restricted
//! egress stays exactly what the nftables rules allow (loopback is always allowed:
//! Chromium and chromedriver need it, and it leaves nothing).
//!
//! Names: `webcall.test` resolves through `/etc/netns/<ns>/hosts`, which
//! `ip netns exec` bind-mounts over `/etc/hosts` for everything it starts
//! (Chromium included, which reads `/etc/hosts` itself). No `--host-resolver-rules`.
//! `/etc/netns/<ns>/resolv.conf` points at the namespace's own loopback: with the
//! host's name server (which the lab cannot reach) Chromium was seen to hang on a
//! `turns:` host name the hosts file does answer, and TURN gathering never started;
//! a name server that refuses at once does not hold it up.
//!
//! Everything the lab made (processes in its namespaces, the namespaces and with
//! them their veths, `/etc/netns/<ns>` directories) goes when the [`Lab`] is
//! dropped, panics included. Logs (server, chromedriver) stay under the target
//! directory's `netlab/` for a look after a failure.
#![allow(dead_code)]

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::task::{Context, Poll};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use hyper_util::rt::TokioIo;
use serde_json::json;

/// The server's address on the public segment.
pub const SERVER_V4: &str = "100.64.0.1";
pub const SERVER_V6: &str = "fd64::1";
/// What the relay may talk to: the public segment (NAT routers' outside
/// addresses, the clients on it, the relay itself).
pub const PUBLIC_NETS: &str = "100.64.0.0/24,fd64::/64";

const LOGS: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/netlab");

/// True when the lab can run (root, `ip netns`, nft, Chromium). Otherwise prints a
/// loud SKIPPED line and returns false; under `CI` it fails instead.
pub fn available() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let tool = |program: &str, arg: &str| {
        Command::new(program)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let missing = if !root {
        Some("needs root for ip netns")
    } else if !tool("ip", "netns") {
        Some("`ip netns` does not work here (needs root for ip netns)")
    } else if !tool("nft", "--version") {
        Some("nft missing: apt-get install nftables")
    } else if !tool("chromedriver", "--version") {
        Some("chromedriver missing: apt-get install chromium chromium-driver")
    } else {
        None
    };
    match missing {
        None => true,
        Some(why) => {
            assert!(
                std::env::var("CI").is_err(),
                "network lab unavailable: {why}"
            );
            eprintln!("\n*** SKIPPED: network scenarios not run ({why}) ***\n");
            false
        }
    }
}

/// Runs `ip` with `args`, panicking with its stderr on failure.
fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The namespaces, processes and files of one scenario; all gone on drop.
pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    etc_dirs: Vec<PathBuf>,
    children: Vec<Child>,
    pub logs: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Lab {
    /// A lab whose namespace names start with `wc<pid><tag>`, with the server
    /// namespace and its public bridge already up.
    pub fn new(tag: &str) -> Self {
        let logs = Path::new(LOGS).join(tag);
        let _ = std::fs::remove_dir_all(&logs);
        std::fs::create_dir_all(&logs).unwrap();
        let mut lab = Self {
            prefix: format!("wc{}{tag}", std::process::id()),
            namespaces: Vec::new(),
            etc_dirs: Vec::new(),
            children: Vec::new(),
            logs,
            dir: tempfile::tempdir().unwrap(),
        };
        let srv = lab.namespace("srv");
        ip(&["-n", &srv, "link", "add", "pub", "type", "bridge"]);
        ip(&[
            "-n",
            &srv,
            "addr",
            "add",
            &format!("{SERVER_V4}/24"),
            "dev",
            "pub",
        ]);
        ip(&[
            "-n",
            &srv,
            "addr",
            "add",
            &format!("{SERVER_V6}/64"),
            "dev",
            "pub",
            "nodad",
        ]);
        ip(&["-n", &srv, "link", "set", "pub", "up"]);
        lab
    }

    /// The full name of the lab's namespace `short`.
    pub fn ns(&self, short: &str) -> String {
        format!("{}{short}", self.prefix)
    }

    /// Creates namespace `short` with its loopback up.
    fn namespace(&mut self, short: &str) -> String {
        let name = self.ns(short);
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        ip(&["netns", "add", &name]);
        self.namespaces.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        name
    }

    /// A veth from namespace `ns` (named `ifname` there) to a new port of the public bridge.
    fn plug_into_public(&mut self, ns: &str, ifname: &str) {
        let srv = self.ns("srv");
        let port = format!("p{}", self.namespaces.len());
        ip(&[
            "link", "add", ifname, "netns", ns, "type", "veth", "peer", "name", &port, "netns",
            &srv,
        ]);
        ip(&["-n", &srv, "link", "set", &port, "master", "pub"]);
        ip(&["-n", &srv, "link", "set", &port, "up"]);
        ip(&["-n", ns, "link", "set", ifname, "up"]);
    }

    /// A client namespace on the public segment with `addrs` (CIDR notation; v4, v6
    /// or both) on its `eth0`.
    pub fn public_client(&mut self, short: &str, addrs: &[&str]) -> String {
        let ns = self.namespace(short);
        self.plug_into_public(&ns, "eth0");
        for addr in addrs {
            let mut args = vec!["-n", &ns, "addr", "add", addr, "dev", "eth0"];
            if addr.contains(':') {
                args.push("nodad");
            }
            ip(&args);
        }
        self.hosts(&ns);
        ns
    }

    /// A client namespace behind its own NAT router: the router's `wan` has
    /// `wan_addr` (a /24 on the public segment) and masquerades with random ports
    /// everything from the client's LAN 10.1.`lan`.0/24; the client is 10.1.`lan`.2.
    pub fn natted_client(&mut self, short: &str, wan_addr: &str, lan: u8) -> String {
        let router = self.namespace(&format!("{short}r"));
        self.plug_into_public(&router, "wan");
        ip(&[
            "-n",
            &router,
            "addr",
            "add",
            &format!("{wan_addr}/24"),
            "dev",
            "wan",
        ]);
        ip(&["-n", &router, "route", "add", "default", "via", SERVER_V4]);
        let client = self.namespace(short);
        ip(&[
            "link", "add", "lan", "netns", &router, "type", "veth", "peer", "name", "eth0",
            "netns", &client,
        ]);
        let gateway = format!("10.1.{lan}.1");
        ip(&[
            "-n",
            &router,
            "addr",
            "add",
            &format!("{gateway}/24"),
            "dev",
            "lan",
        ]);
        ip(&["-n", &router, "link", "set", "lan", "up"]);
        ip(&[
            "-n",
            &client,
            "addr",
            "add",
            &format!("10.1.{lan}.2/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &client, "link", "set", "eth0", "up"]);
        ip(&["-n", &client, "route", "add", "default", "via", &gateway]);
        self.exec(&router, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        self.nft(
            &router,
            &format!(
                "table ip nat {{
                   chain postrouting {{
                     type nat hook postrouting priority srcnat; policy accept;
                     ip saddr 10.1.{lan}.0/24 oifname \"wan\" masquerade random
                   }}
                 }}
                 table ip filter {{
                   chain forward {{
                     type filter hook forward priority filter; policy drop;
                     iifname \"lan\" oifname \"wan\" accept
                     ct state established,related accept
                   }}
                 }}"
            ),
        );
        self.hosts(&client);
        client
    }

    /// `webcall.test` names the server in namespace `ns` (v4 and v6, as the
    /// namespace's own addresses allow).
    fn hosts(&mut self, ns: &str) {
        let dir = Path::new("/etc/netns").join(ns);
        std::fs::create_dir_all(&dir).unwrap();
        self.etc_dirs.push(dir.clone());
        std::fs::write(
            dir.join("hosts"),
            format!("127.0.0.1 localhost\n::1 localhost\n{SERVER_V4} webcall.test\n{SERVER_V6} webcall.test\n"),
        )
        .unwrap();
        // No name server: a lookup that the hosts file does not answer fails at
        // once instead of waiting for the host's resolver, which the namespace
        // cannot reach.
        std::fs::write(dir.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
    }

    /// Runs `args` inside `ns` and returns its stdout.
    pub fn exec(&self, ns: &str, args: &[&str]) -> String {
        run(Command::new("ip").args(["netns", "exec", ns]).args(args))
    }

    /// Loads an nftables ruleset into `ns`.
    pub fn nft(&self, ns: &str, ruleset: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ruleset.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nft in {ns}: {}\n{ruleset}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Lets `ns` send nothing but loopback traffic and what `allowed` (nft
    /// statements matching outgoing packets, e.g. `ip daddr 100.64.0.1 tcp dport 443`)
    /// matches; only replies come in.
    pub fn restrict_egress(&self, ns: &str, allowed: &[&str]) {
        let rules: String = allowed
            .iter()
            .map(|rule| format!("    {rule} accept\n"))
            .collect();
        self.nft(
            ns,
            &format!(
                "table inet egress {{
                   chain output {{
                     type filter hook output priority filter; policy drop;
                     oifname \"lo\" accept
                     ct state established,related accept
                 {rules}
                   }}
                   chain input {{
                     type filter hook input priority filter; policy drop;
                     iifname \"lo\" accept
                     ct state established,related accept
                   }}
                 }}"
            ),
        );
    }

    /// Starts `program` with `args` and exactly `env` (plus PATH) inside `ns`,
    /// stdout and stderr going to `<logs>/<log>`.
    pub fn spawn(
        &mut self,
        ns: &str,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
        log: &str,
    ) -> PathBuf {
        let path = self.logs.join(log);
        let file = std::fs::File::create(&path).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns, program])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("{program} in {ns}: {e}"));
        self.children.push(child);
        path
    }

    /// What a failure report wants: the rulesets and sockets of `namespaces`.
    pub fn describe(&self, namespaces: &[&str]) -> String {
        let mut out = String::new();
        for ns in namespaces {
            for args in [&["nft", "list", "ruleset"][..], &["ss", "-tunap"][..]] {
                let text = Command::new("ip")
                    .args(["netns", "exec", ns])
                    .args(args)
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                out.push_str(&format!("--- {ns}: {}\n{text}\n", args.join(" ")));
            }
        }
        out
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Whatever our children started in the namespaces (Chromium's processes).
        for ns in &self.namespaces {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        // SAFETY: kill(2) on a pid listed as living in our namespace.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        for dir in &self.etc_dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Waits until the file at `path` contains `needle` (`secs` at most).
pub async fn wait_for_log(path: &Path, needle: &str, secs: u64) {
    for _ in 0..secs * 10 {
        if std::fs::read_to_string(path).is_ok_and(|text| text.contains(needle)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{} never said {needle:?}:\n{}",
        path.display(),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

/// Connects to `addr` from inside network namespace `ns` (a socket is bound to
/// the namespace it is created in). The thread is used for this one socket and
/// ends, so no other work ever runs in the namespace.
fn connect_in(ns: &str, addr: SocketAddr) -> std::io::Result<std::net::TcpStream> {
    let handle = std::fs::File::open(Path::new("/run/netns").join(ns))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: setns(2) with a namespace fd we hold open; it only
                // changes this thread's network namespace.
                if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            })
            .join()
            .expect("the connecting thread")
    })
}

/// A hyper connector whose TCP connections are made inside a network namespace.
#[derive(Clone)]
pub struct NetnsConnector {
    ns: String,
}

impl tower_service::Service<axum::http::Uri> for NetnsConnector {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: axum::http::Uri) -> Self::Future {
        let ns = self.ns.clone();
        Box::pin(async move {
            let host = uri.host().unwrap_or("127.0.0.1").trim_matches(['[', ']']);
            let addr = SocketAddr::new(
                host.parse().map_err(std::io::Error::other)?,
                uri.port_u16().unwrap_or(80),
            );
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let _ = tx.send(connect_in(&ns, addr));
            });
            let stream = rx.await.map_err(std::io::Error::other)??;
            stream.set_nonblocking(true)?;
            stream.set_nodelay(true)?;
            Ok(TokioIo::new(tokio::net::TcpStream::from_std(stream)?))
        })
    }
}

/// chromedriver's port inside every client namespace (each has its own loopback).
const DRIVER_PORT: u16 = 9515;

/// One person: a headless Chromium in client namespace `ns`, with its own HOME
/// (and so its own NSS certificate database) and profile.
pub struct Browser {
    pub client: Client,
    pub ns: String,
}

impl Browser {
    /// Starts chromedriver in `ns` and opens a Chromium session. `ca_pem`: a CA
    /// certificate the browser trusts (put into `$HOME/.pki/nssdb`); `extra_args`:
    /// more Chromium flags.
    pub async fn start(
        lab: &mut Lab,
        ns: &str,
        ca_pem: Option<&str>,
        extra_args: &[String],
    ) -> Self {
        let home = lab.dir.path().join(format!("home-{ns}"));
        std::fs::create_dir_all(&home).unwrap();
        if let Some(pem) = ca_pem {
            let nssdb = home.join(".pki/nssdb");
            std::fs::create_dir_all(&nssdb).unwrap();
            let db = format!("sql:{}", nssdb.display());
            run(Command::new("certutil").args(["-N", "-d", &db, "--empty-password"]));
            let ca = home.join("ca.pem");
            std::fs::write(&ca, pem).unwrap();
            run(Command::new("certutil").args([
                "-A",
                "-d",
                &db,
                "-t",
                "C,,",
                "-n",
                "webcall test CA",
                "-i",
                &ca.display().to_string(),
            ]));
        }
        let home_str = home.display().to_string();
        lab.spawn(
            ns,
            "chromedriver",
            &[&format!("--port={DRIVER_PORT}"), "--verbose"],
            &[("HOME", &home_str)],
            &format!("chromedriver-{ns}.log"),
        );
        let connector = NetnsConnector { ns: ns.to_owned() };
        let addr = SocketAddr::from(([127, 0, 0, 1], DRIVER_PORT));
        let mut up = false;
        for _ in 0..100 {
            if connect_in(ns, addr).is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(up, "chromedriver did not start in {ns}");

        let mut args: Vec<String> = crate::webclient::CHROMIUM_ARGS
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.push("--window-size=1000,700".to_owned());
        args.push(format!(
            "--user-data-dir={}",
            home.join("profile").display()
        ));
        args.extend(extra_args.iter().cloned());
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}
        });
        let caps = caps.as_object().unwrap().clone().into_iter().collect();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{DRIVER_PORT}"))
            .await
            .unwrap_or_else(|e| panic!("a chromium session in {ns}: {e}"));
        Self {
            client,
            ns: ns.to_owned(),
        }
    }
}
