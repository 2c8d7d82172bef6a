//! A private PostgreSQL cluster for a test: Debian's `postgresql` binaries, `initdb` in a
//! temporary folder, a free port on 127.0.0.1, no system service; stopped and removed with
//! the value. Run as the `postgres` user when the tests run as root (PostgreSQL refuses
//! root). Outside CI, without PostgreSQL installed, [`Postgres::start`] says the test is
//! skipped and returns None; in CI it fails (`.ci/run` installs `postgresql`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The cluster's superuser and its password.
pub const ADMIN: &str = "hq";
pub const ADMIN_PASSWORD: &str = "hq-password-0123";
/// The password of the stores' role (`store_role_url`).
pub const STORE_PASSWORD: &str = "store-password-0123";

pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    as_postgres: bool,
    /// Server settings added at every start (TLS once it is on).
    extra: std::sync::Mutex<String>,
    owner: Option<(u32, u32)>,
}

/// The newest `/usr/lib/postgresql/N/bin` with `initdb` in it.
fn binaries() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

impl Postgres {
    /// A fresh cluster, started; None (the test then returns, saying so) when PostgreSQL is
    /// not installed outside CI.
    pub fn start(test: &str) -> Option<Postgres> {
        let Some(bin) = binaries() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL is not installed: .ci/run installs Debian's postgresql"
            );
            eprintln!("{test}: skipped: PostgreSQL is not installed here (apt-get install postgresql, or run .ci/run)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = is_root();
        let data = dir.path().join("data");
        std::fs::write(dir.path().join("pw"), ADMIN_PASSWORD).unwrap();
        let mut owner = None;
        if as_postgres {
            let id = |flag: &str| -> u32 {
                let out = Command::new("id")
                    .args([flag, "postgres"])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .expect("a postgres user (Debian's postgresql package creates it)")
            };
            let (uid, gid) = (id("-u"), id("-g"));
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
            std::os::unix::fs::chown(dir.path().join("pw"), Some(uid), Some(gid)).unwrap();
            owner = Some((uid, gid));
        }
        let pg = Postgres {
            bin,
            port: super::free_port(),
            dir,
            as_postgres,
            extra: std::sync::Mutex::new(String::new()),
            owner,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                ADMIN,
                "--pwfile",
                pg.dir.path().join("pw").to_str().unwrap(),
                "--auth",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ],
        );
        pg.start_again();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the cluster (again) on its port, and waits until it takes connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off{}",
            self.port,
            self.dir.path().display(),
            self.extra.lock().unwrap()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-o",
                &options,
                "-l",
                self.dir.path().join("log").to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Restarts it serving TLS with a certificate for 127.0.0.1 from a CA made now; returns
    /// the CA's file.
    pub fn restart_with_tls(&self) -> PathBuf {
        let tls = self.dir.path().join("tls");
        super::pki::make_pki(&tls);
        for file in ["server.pem", "server.key", "ca", "ca/ca.pem", ""] {
            let path = tls.join(file);
            if let Some((uid, gid)) = self.owner {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
            }
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            tls.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        *self.extra.lock().unwrap() = format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            tls.join("server.pem").display(),
            tls.join("server.key").display()
        );
        self.stop();
        self.start_again();
        tls.join("ca/ca.pem")
    }

    /// Stops it (fast: open connections are cut, as a crash of the link would).
    pub fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }

    /// A `postgres://` URL for `database` as the superuser, `password` as given.
    pub fn url_with(&self, database: &str, password: &str) -> String {
        format!(
            "postgres://{ADMIN}:{password}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    pub fn url(&self, database: &str) -> String {
        self.url_with(database, ADMIN_PASSWORD)
    }

    /// A client of `database`.
    pub async fn client(&self, database: &str) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.url(database), tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("connecting to {database}: {e}"));
        tokio::spawn(connection);
        client
    }

    /// A URL for `database` as the role docs/chain.md tells a chain to give its stores, made
    /// with that document's own `GRANT … TO chasti_store` lines: the grants it prints are the
    /// ones tested.
    pub async fn store_role_url(&self, database: &str) -> String {
        let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/chain.md"))
            .expect("docs/chain.md");
        let client = self.client(database).await;
        client
            .batch_execute(&format!(
                "CREATE ROLE chasti_store LOGIN PASSWORD '{STORE_PASSWORD}'"
            ))
            .await
            .unwrap();
        let grants: Vec<&str> = docs
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("GRANT") && l.contains("TO chasti_store"))
            .map(|l| l.split("--").next().unwrap_or(l))
            .collect();
        assert!(grants.len() >= 3, "docs/chain.md's grants: {grants:?}");
        for grant in grants {
            client
                .batch_execute(grant)
                .await
                .unwrap_or_else(|e| panic!("{grant}: {e}"));
        }
        format!(
            "postgres://chasti_store:{STORE_PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// A new database, with chasti's schema created in it as `chasti replicate --init` does.
    pub async fn chain_database(&self, name: &str) -> tokio_postgres::Client {
        let admin = self.client("postgres").await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let config = replicate_config(&self.url(name), "init");
        let mut client = chasti::replicate::central::connect(&config).await.unwrap();
        chasti::replicate::central::migrate(&mut client)
            .await
            .unwrap();
        self.client(name).await
    }

    /// The folder of the cluster (its log is `log` there).
    pub fn folder(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let program = self.bin.join("pg_ctl");
        let data = self.data();
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let _ = command
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

/// The `[replicate]` settings for `url` as store `store_id`.
pub fn replicate_config(url: &str, store_id: &str) -> chasti::config::ReplicateConfig {
    let (url_shown, postgres, tls) =
        chasti::config::postgres_connection(url, &|_| None).expect("a postgres URL");
    chasti::config::ReplicateConfig {
        url_shown,
        postgres,
        tls,
        ca_file: None,
        store_id: store_id.into(),
        outbox_max: 1_000_000,
        batch: 500,
    }
}

/// The `[replicate]` section of a test config.
pub fn replicate_section(url: &str, store_id: &str) -> String {
    format!("\n[replicate]\npostgres_url = \"{url}\"\nstore_id = \"{store_id}\"\n")
}

/// Waits until `check` (a query's answer) is true, or panics after `limit` with the last one.
pub async fn wait_for<T: std::fmt::Debug>(
    what: &str,
    limit: Duration,
    mut read: impl AsyncFnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let value = read().await;
        if done(&value) {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("{what}: still {value:?} after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
