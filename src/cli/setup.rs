//! `chasti check-config` and `chasti doctor`: is this till host set up right?

use std::path::Path;

use chasti::config::{Config, Environment};
use chasti::gateway::Credentials;

pub fn check_config(path: &Path) -> Result<(), String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let g = &config.gateway;
    println!("{}: ok", config.file.display());
    println!("  environment   {:?}", g.environment);
    println!("  gateway       {}", g.base_url);
    let who = match &g.credentials {
        Credentials::Password { user_name, .. } => format!("{user_name} (password set)"),
        Credentials::Token(_) => "token (set)".to_string(),
    };
    println!("  credentials   {who}");
    println!("  return_url    {}", g.return_url);
    println!("  lifetime      {} s", g.order_lifetime.as_secs());
    println!("  timeout       {} s", g.request_timeout.as_secs());
    let database = chasti::store::database_file(&config.store.path);
    if database == config.store.path {
        println!("  store         {}", database.display());
    } else {
        // A chasti 0.1 config named the sled folder: its orders go into the database beside it.
        println!(
            "  store         {} (store.path {} names no .db file)",
            database.display(),
            config.store.path.display()
        );
    }
    Ok(())
}

pub async fn doctor(path: &Path, go_live: bool, env_file: Option<&Path>) -> Result<(), String> {
    use chasti::doctor;
    let secrets_path =
        env_file.map_or_else(|| chasti::config::env_file::beside(path), Path::to_path_buf);
    let (secrets, secrets_check) = doctor::secrets_file(&secrets_path, env_file.is_some());
    let mut first = vec![secrets_check];
    if go_live {
        doctor::for_go_live(&mut first);
    }
    let failed_first = print_checks(&first);
    // As systemd starts serve: the file's values, unless the environment sets them already.
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .or_else(|| secrets.as_ref().and_then(|s| s.get(name)))
    };
    let config = match Config::load_with_env(path, env) {
        Ok(c) => {
            println!("ok    config       {}", c.file.display());
            c
        }
        Err(e) => {
            println!("FAIL  config       {e}");
            return Err("the config must be fixed first".into());
        }
    };
    let now = chrono::Utc::now();
    // With the sandbox, doctor starts it for the checks when the daemon is not running.
    let _sandbox = match config.gateway.environment {
        Environment::Sandbox if std::net::TcpListener::bind(config.sandbox.listen).is_ok() => Some(
            chasti::sandbox::embedded(&config, config.callback.listen)
                .await
                .map_err(|e| e.to_string())?,
        ),
        _ => None,
    };
    let checks = doctor::run(&config, go_live, now).await;
    let failed = failed_first + print_checks(&checks);
    if failed > 0 {
        Err(format!("{failed} check(s) failed"))
    } else {
        Ok(())
    }
}

/// Prints each check's line; how many failed.
fn print_checks(checks: &[chasti::doctor::Check]) -> usize {
    use chasti::doctor::Verdict;
    let mut failed = 0;
    for c in checks {
        let mark = match c.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "WARN",
            Verdict::Fail => {
                failed += 1;
                "FAIL"
            }
        };
        println!("{mark}  {:<12} {}", c.name, c.detail);
    }
    failed
}

/// `chasti hash-password`: the password is read without echo on a terminal (twice, to catch a
/// typo) or as one line from a pipe, and only its argon2 hash is printed.
pub fn hash_password() -> Result<(), String> {
    use std::io::IsTerminal;
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")
            .map_err(|e| format!("could not read the password: {e}"))?;
        let again = rpassword::prompt_password("Again: ")
            .map_err(|e| format!("could not read the password: {e}"))?;
        if first != again {
            return Err("the two passwords differ; nothing was hashed".into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("could not read the password from standard input: {e}"))?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    let hash = chasti::passwords::hash(&password).map_err(|e| e.to_string())?;
    println!("password_hash = \"{hash}\"");
    Ok(())
}
