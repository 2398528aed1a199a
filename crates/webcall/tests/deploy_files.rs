//! `deploy/` and `firewall/` checked by the tools that will read them, run as
//! subprocesses: `nft -c -f` and a real load inside `unshare --net` (Debian
//! package `nftables`; needs root), `systemd-analyze verify` and
//! `security --offline` (`systemd`), `nginx -t` (`nginx`, with a throwaway
//! certificate from `openssl`), `caddy validate` (`caddy`), `bash -n` and
//! `ufw.sh --dry-run` (each rule through `ufw --dry-run`: `ufw`), and the
//! compose file through PyYAML (`python3-yaml`). The production environment
//! example is fed to the `webcall` binary itself.
//!
//! Outside CI a test whose tool is missing prints `SKIPPED` and passes; with
//! `CI` set it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_webcall");

/// The repository root (this crate is `crates/webcall`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// `program` on PATH or in the sbin directories (where `nft` and `nginx` live
/// and which a non-root PATH may lack), or `None` after the SKIPPED line
/// (allowed outside CI only).
fn tool(program: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        missing(program, package);
    }
    found
}

fn missing(what: &str, package: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is missing: install the Debian package {package} (.ci/run does)"
    );
    eprintln!("SKIPPED: {what} not installed (apt-get install {package})");
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|err| panic!("running {command:?}: {err}"))
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `KEY=VALUE` lines of an environment file, in order.
fn env_pairs(source: &str) -> Vec<(String, String)> {
    source
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=VALUE: {line}"));
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

#[test]
fn nftables_ruleset_passes_nft_check_and_loads_in_a_namespace() {
    let ruleset = read("firewall/nftables.conf");
    for expected in [
        "define SSH_PORT = 22",
        "define HTTP_PORTS = { 80, 443 }",
        "define TURN_PORT = 3478",
        "define RELAY_PORTS = 49152-65535",
        "policy drop",
        "tcp dport $SSH_PORT accept",
        "th dport $TURN_PORT accept",
        "udp dport $RELAY_PORTS accept",
    ] {
        assert!(
            ruleset.contains(expected),
            "nftables.conf lacks {expected:?}"
        );
    }
    // SSH is accepted before the web and TURN ports.
    let ssh = ruleset.find("tcp dport $SSH_PORT").unwrap();
    assert!(ssh < ruleset.find("tcp dport $HTTP_PORTS").unwrap());

    let Some(nft) = tool("nft", "nftables") else {
        return;
    };
    let path = root().join("firewall/nftables.conf");
    let output = run(Command::new(&nft).arg("-c").arg("-f").arg(&path));
    let out = text(&output);
    if !output.status.success() && out.contains("Operation not permitted") && !is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "nft -c needs root (CI runs as root)\n{out}"
        );
        eprintln!("SKIPPED: nft -c -f needs root (CAP_NET_ADMIN)");
        return;
    }
    assert!(
        output.status.success(),
        "nft -c -f {}:\n{out}",
        path.display()
    );

    // Loaded for real, twice (the create-and-delete idiom makes it
    // idempotent), in a network namespace of its own: the host's firewall is
    // never touched.
    let Some(unshare) = tool("unshare", "util-linux") else {
        return;
    };
    let output = run(Command::new(unshare)
        .args(["--net", "sh", "-c"])
        .arg(r#""$2" -f "$1" && "$2" -f "$1" && "$2" list table inet webcall"#)
        .arg("sh")
        .arg(&path)
        .arg(&nft));
    let out = text(&output);
    assert!(output.status.success(), "loading the ruleset:\n{out}");
    for expected in [
        "policy drop",
        "tcp dport 22 accept",
        "tcp dport { 80, 443 } accept",
        "meta l4proto { tcp, udp } th dport 3478 accept",
        "udp dport 49152-65535 accept",
    ] {
        assert!(
            out.contains(expected),
            "loaded ruleset lacks {expected:?}:\n{out}"
        );
    }
}

/// A copy of the unit whose ExecStart is the freshly built binary (verify
/// insists the executable exists).
fn unit_copy(dir: &Path) -> PathBuf {
    let unit = read("deploy/webcall.service");
    let exec = "ExecStart=/usr/local/bin/webcall serve";
    assert!(unit.contains(exec), "webcall.service lacks {exec:?}");
    for expected in [
        "DynamicUser=yes",
        "StateDirectory=webcall",
        "EnvironmentFile=/etc/webcall/webcall.env",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "LimitNOFILE=65536",
        "Restart=on-failure",
        "TimeoutStopSec=15",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    ] {
        assert!(
            unit.contains(expected),
            "webcall.service lacks {expected:?}"
        );
    }
    let copy = dir.join("webcall.service");
    std::fs::write(&copy, unit.replace(exec, &format!("ExecStart={BIN} serve"))).unwrap();
    copy
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let Some(analyze) = tool("systemd-analyze", "systemd") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let copy = unit_copy(dir.path());
    let output = run(Command::new(&analyze).arg("verify").arg(&copy));
    let out = text(&output);
    assert!(output.status.success(), "systemd-analyze verify:\n{out}");
    // Unknown keys and unparsable values are only warnings: none is allowed.
    let complaints: Vec<&str> = out
        .lines()
        .filter(|line| line.contains("webcall.service"))
        .collect();
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify complains:\n{}",
        complaints.join("\n")
    );
}

#[test]
fn systemd_unit_is_hardened_by_systemd_analyze_security() {
    let Some(analyze) = tool("systemd-analyze", "systemd") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let copy = unit_copy(dir.path());
    let output = run(Command::new(&analyze)
        .args(["security", "--offline=yes"])
        .arg(&copy));
    let out = text(&output);
    assert!(output.status.success(), "systemd-analyze security:\n{out}");
    let label = "Overall exposure level for webcall.service:";
    let at = out
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?}:\n{out}"))
        + label.len();
    let exposure: f64 = out[at..]
        .split_whitespace()
        .next()
        .and_then(|word| word.parse().ok())
        .unwrap_or_else(|| panic!("no exposure number:\n{out}"));
    // 0 is a sealed box, 10 an unprotected service; 1.3 when written.
    assert!(exposure <= 2.0, "exposure {exposure} > 2.0:\n{out}");
}

/// `nginx -t` on `main` (a whole nginx.conf) written into `dir`, which is also
/// nginx's prefix: it must pass without a warning.
fn nginx_t(nginx: &Path, dir: &Path, main: &str) {
    let d = dir.to_str().unwrap();
    std::fs::write(dir.join("main.conf"), main).unwrap();
    let output = run(Command::new(nginx)
        .arg("-t")
        .arg("-p")
        .arg(format!("{d}/"))
        .arg("-e")
        .arg(format!("{d}/error.log"))
        .arg("-c")
        .arg(format!("{d}/main.conf")));
    let out = text(&output);
    assert!(output.status.success(), "nginx -t:\n{out}");
    assert!(out.contains("test is successful"), "nginx -t:\n{out}");
    assert!(!out.contains("[warn]"), "nginx -t warns:\n{out}");
}

#[test]
fn nginx_example_passes_nginx_t() {
    let example = read("deploy/nginx.conf");
    for expected in [
        "location /ws/",
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_read_timeout 1h;",
        "X-Forwarded-For $proxy_add_x_forwarded_for",
        "server 127.0.0.1:8000;",
        "TRUSTED_PROXIES=127.0.0.1",
    ] {
        assert!(example.contains(expected), "nginx.conf lacks {expected:?}");
    }
    let Some(nginx) = tool("nginx", "nginx") else {
        return;
    };
    let Some(openssl) = tool("openssl", "openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let output = run(Command::new(openssl)
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=webcall.example.org"])
        .arg("-keyout")
        .arg(dir.path().join("key.pem"))
        .arg("-out")
        .arg(dir.path().join("cert.pem")));
    assert!(output.status.success(), "openssl req:\n{}", text(&output));

    // The example as written, with the certificate and log paths moved into
    // the temporary directory.
    let mut copy = example.clone();
    for (from, to) in [
        (
            "/etc/letsencrypt/live/webcall.example.org/fullchain.pem",
            format!("{d}/cert.pem"),
        ),
        (
            "/etc/letsencrypt/live/webcall.example.org/privkey.pem",
            format!("{d}/key.pem"),
        ),
        ("/var/log/nginx/", format!("{d}/")),
    ] {
        assert!(copy.contains(from), "nginx.conf lacks {from}");
        copy = copy.replace(from, &to);
    }
    std::fs::write(dir.path().join("webcall.conf"), copy).unwrap();
    // Wrapped the way Debian's nginx.conf includes conf.d/*.conf: inside http {}.
    let main = format!(
        "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n\
         access_log {d}/access.log;\n\
         client_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
         include {d}/webcall.conf;\n}}\n"
    );
    nginx_t(&nginx, dir.path(), &main);
}

#[test]
fn nginx_stream_example_routes_turn_by_name_and_passes_nginx_t() {
    let example = read("deploy/nginx-stream.conf");
    for expected in [
        "ssl_preread on;",
        "listen 443;",
        "turn.example.org webcall_turn;",
        "server 127.0.0.1:5349;",
        "TURN_TLS_LISTEN=127.0.0.1:5349",
        "TURN_TLS_PUBLIC_PORT=443",
        "PUBLIC_HOST=turn.example.org",
        "HTTPS=false",
    ] {
        assert!(
            example.contains(expected),
            "nginx-stream.conf lacks {expected:?}"
        );
    }
    let Some(nginx) = tool("nginx", "nginx") else {
        return;
    };
    const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";
    if !Path::new(STREAM_MODULE).exists() {
        assert!(
            std::env::var("CI").is_err(),
            "nginx's stream module is missing: apt-get install libnginx-mod-stream"
        );
        eprintln!(
            "SKIPPED: nginx stream module not installed (apt-get install libnginx-mod-stream)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    std::fs::write(dir.path().join("webcall-stream.conf"), &example).unwrap();
    // At the top level of nginx.conf, as the file says.
    let main = format!(
        "load_module {STREAM_MODULE};\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{}}\ninclude {d}/webcall-stream.conf;\n"
    );
    nginx_t(&nginx, dir.path(), &main);
}

#[test]
fn caddyfile_passes_caddy_validate() {
    let caddyfile = read("deploy/Caddyfile");
    for expected in [
        "webcall.example.org {",
        "reverse_proxy 127.0.0.1:8000",
        "TRUSTED_PROXIES=127.0.0.1",
        "delete token",
    ] {
        assert!(caddyfile.contains(expected), "Caddyfile lacks {expected:?}");
    }
    let Some(caddy) = tool("caddy", "caddy") else {
        return;
    };
    // Caddy keeps certificates and state under XDG dirs: keep them out of $HOME.
    let dir = tempfile::tempdir().unwrap();
    let output = run(Command::new(caddy)
        .args(["validate", "--adapter", "caddyfile", "--config"])
        .arg(root().join("deploy/Caddyfile"))
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("HOME", dir.path()));
    let out = text(&output);
    assert!(output.status.success(), "caddy validate:\n{out}");
    assert!(
        out.contains("Valid configuration"),
        "caddy validate:\n{out}"
    );
    // Warnings include "not formatted; run caddy fmt".
    let warnings: Vec<&str> = out
        .lines()
        .filter(|line| line.contains("\"level\":\"warn\"") || line.contains("\"level\":\"error\""))
        .collect();
    assert!(
        warnings.is_empty(),
        "caddy validate warns:\n{}",
        warnings.join("\n")
    );
}

/// `firewall/ufw.sh` with `args` and only `vars` of its settings in the
/// environment.
fn ufw_sh(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new("bash");
    command.arg(root().join("firewall/ufw.sh")).args(args);
    for name in [
        "SSH_PORT",
        "TURN_PORT",
        "RELAY_MIN",
        "RELAY_MAX",
        "TURN_LISTEN",
        "TURN_RELAY_PORT_MIN",
        "TURN_RELAY_PORT_MAX",
    ] {
        command.env_remove(name);
    }
    command.envs(vars.iter().copied());
    run(&mut command)
}

/// The commands a dry run prints.
fn dry_run(args: &[&str], vars: &[(&str, &str)]) -> Vec<String> {
    let output = ufw_sh(&[&["--dry-run"], args].concat(), vars);
    assert!(
        output.status.success(),
        "ufw.sh --dry-run {args:?} {vars:?}:\n{}",
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn position(lines: &[String], prefix: &str) -> usize {
    lines
        .iter()
        .position(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in\n{}", lines.join("\n")))
}

#[test]
fn ufw_script_allows_ssh_first_and_follows_the_port_variables() {
    let script = root().join("firewall/ufw.sh");
    let output = run(Command::new("bash").arg("-n").arg(&script));
    assert!(
        output.status.success(),
        "bash -n ufw.sh:\n{}",
        text(&output)
    );
    assert!(read("firewall/ufw.sh").contains("set -euo pipefail"));

    // Defaults: the server's.
    let lines = dry_run(&[], &[]);
    assert!(
        lines.iter().all(|line| line.starts_with("ufw ")),
        "{lines:#?}"
    );
    assert_eq!(lines[0], "ufw allow 22/tcp comment SSH", "SSH comes first");
    let enable = position(&lines, "ufw --force enable");
    for rule in [
        "ufw default deny incoming",
        "ufw allow 80/tcp",
        "ufw allow 443/tcp",
        "ufw allow 3478/udp",
        "ufw allow 3478/tcp",
        "ufw allow 49152:65535/udp",
    ] {
        assert!(position(&lines, rule) < enable, "{rule} before enabling");
    }
    assert_eq!(
        lines.iter().filter(|line| line.contains("enable")).count(),
        1
    );

    // Every port from its variable.
    let lines = dry_run(
        &[],
        &[
            ("SSH_PORT", "2222"),
            ("TURN_PORT", "3479"),
            ("RELAY_MIN", "50000"),
            ("RELAY_MAX", "50999"),
        ],
    );
    assert_eq!(lines[0], "ufw allow 2222/tcp comment SSH");
    assert!(!lines.iter().any(|line| line.contains(" 22/tcp")));
    position(&lines, "ufw allow 3479/udp");
    position(&lines, "ufw allow 3479/tcp");
    position(&lines, "ufw allow 50000:50999/udp");

    // Or from WebCall's own settings, in the environment or its env file.
    let lines = dry_run(
        &[],
        &[
            ("TURN_LISTEN", "0.0.0.0:3480"),
            ("TURN_RELAY_PORT_MIN", "40000"),
            ("TURN_RELAY_PORT_MAX", "40100"),
        ],
    );
    position(&lines, "ufw allow 3480/udp");
    position(&lines, "ufw allow 40000:40100/udp");
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("webcall.env");
    std::fs::write(
        &env_file,
        "# comment\nTURN_LISTEN=[::]:5349\nTURN_RELAY_PORT_MIN=\"41000\"\nTURN_RELAY_PORT_MAX=41999\n",
    )
    .unwrap();
    let env_file = env_file.to_str().unwrap();
    let lines = dry_run(&["--env-file", env_file], &[]);
    position(&lines, "ufw allow 5349/tcp");
    position(&lines, "ufw allow 41000:41999/udp");
    // An explicit variable wins over the file.
    let lines = dry_run(&["--env-file", env_file], &[("RELAY_MAX", "41500")]);
    position(&lines, "ufw allow 41000:41500/udp");
    // The production example opens the server's defaults.
    let example = root().join("deploy/webcall.env.example");
    let lines = dry_run(&["--env-file", example.to_str().unwrap()], &[]);
    position(&lines, "ufw allow 3478/udp");
    position(&lines, "ufw allow 49152:65535/udp");

    // Nonsense is refused before anything runs.
    for vars in [
        &[("RELAY_MIN", "70000")][..],
        &[("SSH_PORT", "ssh")][..],
        &[("RELAY_MIN", "50000"), ("RELAY_MAX", "40000")][..],
    ] {
        let output = ufw_sh(&["--dry-run"], vars);
        assert_eq!(output.status.code(), Some(2), "{vars:?}: {}", text(&output));
        assert!(output.stdout.is_empty(), "{vars:?}: nothing printed");
    }
    let output = ufw_sh(&["--bogus"], &[]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn ufw_accepts_every_rule_of_the_script() {
    let Some(ufw) = tool("ufw", "ufw") else {
        return;
    };
    if !is_root() {
        assert!(std::env::var_os("CI").is_none(), "ufw needs root in CI");
        eprintln!("SKIPPED: ufw --dry-run needs root");
        return;
    }
    // `ufw --dry-run` parses a rule and prints what it would do, changing
    // nothing; enabling and status are left out all the same.
    let ufw = ufw.to_str().unwrap();
    for lines in [
        dry_run(&[], &[]),
        dry_run(&[], &[("SSH_PORT", "2222"), ("RELAY_MIN", "60000")]),
    ] {
        for line in lines
            .iter()
            .filter(|line| line.starts_with("ufw allow ") || line.starts_with("ufw default "))
        {
            let rule = line.strip_prefix("ufw ").unwrap();
            let output = run(Command::new("bash")
                .arg("-c")
                .arg(format!("{ufw} --dry-run {rule}")));
            assert!(
                output.status.success(),
                "ufw --dry-run {rule}:\n{}",
                text(&output)
            );
        }
    }
}

/// A Python 3 that has PyYAML (Debian's own first: a pyenv or venv one on
/// PATH may lack it).
fn python_with_yaml() -> Option<String> {
    ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|python| {
            Command::new(python)
                .args(["-c", "import yaml"])
                .output()
                .map(|out| out.status.success())
                .unwrap_or(false)
        })
        .map(str::to_owned)
        .or_else(|| {
            missing("python3 with PyYAML", "python3-yaml");
            None
        })
}

#[test]
fn compose_file_is_yaml_with_three_healthy_services() {
    let Some(python) = python_with_yaml() else {
        return;
    };
    let path = root().join("deploy/docker-compose.yml");
    let output = run(Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(&path));
    assert!(output.status.success(), "PyYAML:\n{}", text(&output));
    let compose: Value = serde_json::from_slice(&output.stdout).unwrap();
    let services = &compose["services"];

    for (name, probe) in [
        ("webcall", "/readyz"),
        ("postgres", "pg_isready"),
        ("redis", "redis-cli"),
    ] {
        let service = &services[name];
        assert!(service.is_object(), "service {name}");
        assert!(
            service["healthcheck"]["test"].to_string().contains(probe),
            "{name}: healthcheck with {probe}"
        );
        assert!(service["restart"].is_string(), "{name}: a restart policy");
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let named = volume.as_str().unwrap().split(':').next().unwrap();
            assert!(
                compose["volumes"].get(named).is_some(),
                "{name}: volume {named} declared"
            );
        }
    }
    assert_eq!(services["postgres"]["image"], "postgres:16");
    assert_eq!(services["redis"]["image"], "redis:7");

    let webcall = &services["webcall"];
    assert_eq!(webcall["build"]["dockerfile"], "deploy/Dockerfile");
    let context = path
        .parent()
        .unwrap()
        .join(webcall["build"]["context"].as_str().unwrap());
    assert!(
        context.join("deploy/Dockerfile").is_file() && context.join("Cargo.lock").is_file(),
        "the build context is the repository root"
    );
    // The TURN relay's ports: host networking (the reason is in the file).
    assert_eq!(webcall["network_mode"], "host");
    assert!(
        webcall.get("ports").is_none(),
        "ports do not apply to host networking"
    );
    let env = &webcall["environment"];
    assert_eq!(env["APP_ENV"], "prod");
    assert!(env["DATABASE_URL"]
        .as_str()
        .unwrap()
        .starts_with("postgres://"));
    assert!(env["REDIS_URL"].as_str().unwrap().starts_with("redis://"));
    assert_eq!(webcall["env_file"], ".env");
    for service in ["postgres", "redis"] {
        assert_eq!(
            webcall["depends_on"][service]["condition"], "service_healthy",
            "webcall waits for {service}"
        );
        for port in services[service]["ports"].as_array().unwrap() {
            assert!(
                port.as_str().unwrap().starts_with("127.0.0.1:"),
                "{service} is published on loopback only: {port}"
            );
        }
    }

    // Every variable the compose file substitutes comes from the .env made of
    // webcall.env.example, or has a default.
    let source = read("deploy/docker-compose.yml");
    let example: Vec<String> = env_pairs(&read("deploy/webcall.env.example"))
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    for part in source.split("${").skip(1) {
        let end = part.find(['}', ':', '-']).unwrap();
        let (name, rest) = part.split_at(end);
        let variable = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if variable && !rest.starts_with(":-") {
            assert!(
                example.iter().any(|key| key == name),
                "${{{name}}} is not in webcall.env.example"
            );
        }
    }
}

#[test]
fn dockerfile_builds_one_binary_into_a_slim_non_root_image() {
    let dockerfile = read("deploy/Dockerfile");
    for expected in [
        "FROM rust:${RUST_VERSION}-bookworm AS builder",
        "ARG RUST_VERSION=1",
        "cargo build --release --locked -p webcall",
        "COPY . .",
        "FROM debian:bookworm-slim",
        "--no-install-recommends ca-certificates",
        "USER 10001:10001",
        "EXPOSE 8000 3478/udp 3478/tcp",
        "VOLUME [\"/var/lib/webcall\"]",
        "DATABASE_URL=sqlite:///var/lib/webcall/webcall.db",
        "HEALTHCHECK",
        "/readyz",
        "ENTRYPOINT [\"/usr/local/bin/webcall\"]",
    ] {
        assert!(
            dockerfile.contains(expected),
            "Dockerfile lacks {expected:?}"
        );
    }
    // The build context (the repository root) keeps what the build reads and
    // leaves out the target dir, the git history and secrets.
    let ignore = read("deploy/Dockerfile.dockerignore");
    let ignored: Vec<&str> = ignore
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    for pattern in ["**/target", ".git", "**/.env"] {
        assert!(
            ignored.contains(&pattern),
            "Dockerfile.dockerignore lacks {pattern}"
        );
    }
    for needed in ["Cargo.toml", "Cargo.lock", "crates", "migrations", "static"] {
        assert!(
            root().join(needed).exists(),
            "{needed} is in the repository"
        );
        assert!(
            !ignored
                .iter()
                .any(|pattern| pattern.trim_start_matches("**/").starts_with(needed)),
            "the build needs {needed}"
        );
    }
}

/// The production example, as the binary reads it: every key is a documented
/// setting (or one of the compose file's), the placeholders stop a start, and
/// filled in it configures a prod server whose SQLite file is created.
#[test]
fn env_example_is_accepted_by_the_server_once_filled_in() {
    let pairs = env_pairs(&read("deploy/webcall.env.example"));
    let readme = read("README.md");
    let compose_only = ["POSTGRES_PASSWORD", "REDIS_PASSWORD"];
    for (key, _) in &pairs {
        assert!(
            compose_only.contains(&key.as_str()) || readme.contains(&format!("`{key}`")),
            "{key} is neither in the README's configuration table nor a compose setting"
        );
    }
    let value = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{key} missing"))
    };
    assert_eq!(value("APP_ENV"), "prod");
    assert_eq!(value("TRUSTED_PROXIES"), "127.0.0.1");
    assert_eq!(value("HOST"), "127.0.0.1");
    assert_eq!(
        value("DATABASE_URL"),
        "sqlite:///var/lib/webcall/webcall.db"
    );

    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("webcall.db");
    let migrate = |filled: bool| {
        let mut command = Command::new(BIN);
        command
            .arg("migrate")
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (key, value) in &pairs {
            let value = match key.as_str() {
                // The same absolute-path form, in the temporary directory.
                "DATABASE_URL" => format!("sqlite://{}", database.display()),
                _ if filled && value == "CHANGE_ME" => {
                    format!("{}-filled-in-for-the-deploy-files-test", key.to_lowercase())
                }
                _ => value.clone(),
            };
            command.env(key, value);
        }
        run(&mut command)
    };

    let output = migrate(false);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("JWT_SECRET"), "{}", text(&output));
    assert!(!database.exists());

    let output = migrate(true);
    assert!(
        output.status.success(),
        "webcall migrate:\n{}",
        text(&output)
    );
    assert!(database.is_file(), "the SQLite file at the absolute path");
    // Production logs are JSON lines.
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not a JSON log line: {line}"
        );
    }
}

/// `deploy/prometheus.yml` scrapes `/metrics` where the server serves it by
/// default (`METRICS_LISTEN`), not the public port.
#[test]
fn prometheus_scrapes_the_default_metrics_address() {
    let Some(python) = python_with_yaml() else {
        return;
    };
    let output = run(Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(root().join("deploy/prometheus.yml")));
    assert!(output.status.success(), "PyYAML:\n{}", text(&output));
    let prometheus: Value = serde_json::from_slice(&output.stdout).unwrap();
    let job = &prometheus["scrape_configs"][0];
    assert_eq!(job["metrics_path"], "/metrics");
    let defaults = webcall::Config::from_vars(&Default::default()).unwrap();
    assert_eq!(
        job["static_configs"][0]["targets"][0],
        defaults.metrics.listen.unwrap().to_string()
    );
}
