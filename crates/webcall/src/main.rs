//! `webcall` — run the server (default), or `webcall migrate` to apply database
//! migrations and exit.

use std::process::ExitCode;

use secrecy::ExposeSecret;
use webcall::config::{AppEnv, Config};
use webcall::{telemetry, Application};

const USAGE: &str = "\
usage: webcall [serve]    run the server (configured by environment variables / .env)
       webcall migrate    apply database migrations and exit
       webcall doctor     check configuration, database, ports, STUN and a TURN round trip
       webcall --version";

enum Command {
    Serve,
    Migrate,
    Doctor,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["serve"] => Command::Serve,
        ["migrate"] => Command::Migrate,
        ["doctor"] => Command::Doctor,
        ["--version" | "-V"] => {
            println!("webcall {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        ["--help" | "-h" | "help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            match command {
                Command::Doctor => webcall::doctor::report_config_error(&err),
                _ if err.more.is_empty() => eprintln!("webcall: configuration error: {err}"),
                _ => {
                    eprintln!("webcall: configuration errors:");
                    for (var, problem) in err.problems() {
                        eprintln!("  {var}: {problem}");
                    }
                }
            }
            return ExitCode::from(2);
        }
    };
    match command {
        // The doctor's report is on stdout; its own relay's logs stay out of it
        // (errors only, on stderr).
        Command::Doctor => telemetry::init_quiet(
            config.env,
            config
                .log_filter
                .as_deref()
                .unwrap_or(telemetry::QUIET_FILTER),
        ),
        _ => telemetry::init(config.env, config.log_filter.as_deref()),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("webcall: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Migrate => webcall::migrate(&config).await.map(|()| true),
            // The report ends with its own summary: a failed check is the exit code only.
            Command::Doctor => webcall::doctor::run(&config).await,
            Command::Serve => serve(&config).await.map(|()| true),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "webcall stopped with an error");
            eprintln!("webcall: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    announce_generated_secrets(config);
    tracing::info!(env = ?config.env, database = %config.storage.database_display(), "starting webcall");
    let app = Application::build(config).await?;
    announce_address(config, &app);
    app.run_until(shutdown_signal()).await
}

/// In dev, missing secrets were generated: say so, and show the registration
/// secret once so a newcomer can register. (Prod refuses to start without them.)
fn announce_generated_secrets(config: &Config) {
    if config.env != AppEnv::Dev {
        return;
    }
    for var in &config.generated {
        tracing::warn!(
            variable = var,
            "not set: generated a random value for this run only (set it in .env to keep it)"
        );
    }
    if config.generated.contains(&"REGISTRATION_SECRET") {
        eprintln!(
            "\n  Development registration secret (valid until this process stops):\n\n      {}\n",
            config.auth.registration_secret.expose_secret()
        );
    }
}

/// The address to open in a browser: a plain line on stdout in dev, a log line
/// (`url`) in prod, where stdout carries only JSON.
fn announce_address(config: &Config, app: &Application) {
    let url = webcall::address::open_url(config, app.local_addr());
    match config.env {
        AppEnv::Dev => println!("Open {url}"),
        AppEnv::Prod => tracing::info!(%url, "open this address in a browser"),
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
