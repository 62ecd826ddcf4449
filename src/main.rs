//! `pica` — run the server (`pica` or `pica serve`) or apply migrations (`pica migrate`).

use anyhow::{Context, bail};
use pica::storage::Db;
use pica::{Application, Settings};
use tracing_subscriber::EnvFilter;

fn usage() -> &'static str {
    "usage: pica [serve | migrate | openapi | admin create <username> [--email <email>] | help]\n\
     `openapi` prints the OpenAPI document the server serves at /openapi.json.\n\
     `admin create` makes <username> an admin, creating the account if needed; the\n\
     password comes from PICA_ADMIN_PASSWORD or the first line of standard input.\n\
     Configuration comes from the environment and a .env file; see docs/configuration.md."
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A missing .env is fine; a malformed one is not.
    match dotenvy::dotenv() {
        Ok(_) => {}
        Err(e) if e.not_found() => {}
        Err(e) => return Err(e).context("reading .env"),
    }
    init_tracing();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => serve().await,
        Some("migrate") => {
            let settings = Settings::from_env()?;
            let db = Db::connect(&settings.database_url, 1).await?;
            db.migrate().await?;
            println!("migrations applied ({})", db.backend());
            Ok(())
        }
        Some("admin") => admin(&args[1..]).await,
        Some("openapi") => {
            println!("{}", pica::http::openapi().to_pretty_json()?);
            Ok(())
        }
        Some("help" | "--help" | "-h") => {
            println!("{}", usage());
            Ok(())
        }
        Some(other) => bail!("unknown command {other:?}\n{}", usage()),
    }
}

async fn serve() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let app = Application::build(settings).await?;
    // Tests and scripts that start the binary on port 0 read the address from here, and
    // wait for the second line if they need every zone up (zones load behind the server).
    println!("pica listening on http://{}", app.local_addr());
    let engine = app.state().engine.clone();
    tokio::spawn(async move {
        engine.loaded().await;
        // Not `println!`, which panics once a reader has closed the pipe.
        if engine.is_loaded() {
            use std::io::Write;
            let _ = writeln!(std::io::stdout(), "pica ready");
        }
    });
    app.run_until(shutdown_signal()).await
}

fn init_tracing() {
    let filter = EnvFilter::try_from_env("PICA_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("PICA_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

/// `pica admin create <username> [--email <email>]`.
async fn admin(args: &[String]) -> anyhow::Result<()> {
    let (username, email) = match args {
        [cmd, user] if cmd == "create" => (user.clone(), None),
        [cmd, user, flag, email] if cmd == "create" && flag == "--email" => {
            (user.clone(), Some(email.clone()))
        }
        _ => bail!("{}", usage()),
    };
    let settings = Settings::from_env()?;
    let db = Db::connect(&settings.database_url, 1).await?;
    db.migrate().await?;
    let outcome =
        pica::admin::create_admin(&db, &username, email.as_deref(), read_admin_password).await?;
    println!("{outcome}");
    db.close().await;
    Ok(())
}

fn read_admin_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("PICA_ADMIN_PASSWORD") {
        return Ok(password);
    }
    eprintln!("password for the new admin (one line on standard input):");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
