//! A real `chasti serve` process. Shared with the load bench (`benches/load`), which starts the
//! daemon the same way; what only the tests use is allowed to be unused there.
#![allow(dead_code)]

use std::io::BufRead;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_chasti");

/// A `chasti serve` child process on free ports; where it listens is read from its ready line.
pub struct ServeProcess {
    pub child: std::process::Child,
    pub api: String,
    pub callbacks: url::Url,
    pub sandbox: Option<String>,
}

impl ServeProcess {
    /// Starts `chasti serve --config CONFIG` with its log (at info unless `env` sets
    /// `CHASTI_LOG`) appended to `log`, and waits (bounded) for its ready line.
    pub fn start(
        config: &std::path::Path,
        log: &std::path::Path,
        env: &[(&str, &str)],
    ) -> ServeProcess {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut child = std::process::Command::new(BIN)
            .args(["serve", "--config"])
            .arg(config)
            .env("CHASTI_LOG", "info")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let line = first_line(&mut child, Duration::from_secs(30));
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .map(str::to_string)
        };
        ServeProcess {
            api: field("api").unwrap_or_else(|| panic!("no api= in {line:?}")),
            callbacks: url::Url::parse(&field("callbacks").unwrap()).unwrap(),
            sandbox: field("sandbox"),
            child,
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.wait_exit(Duration::from_secs(20))
    }

    pub fn signal_term(&self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    /// Waits for the process to exit; kills it after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("chasti serve did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first line a child prints on stdout (where it listens), read on a thread that keeps
/// reading so the child never blocks on a full pipe; panics after `limit`.
pub fn first_line(child: &mut std::process::Child, limit: Duration) -> String {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("no first line on stdout within {limit:?}"))
}

/// Waits (bounded) until the store at `path` can be opened: its last user has let go.
pub async fn store_released(path: &std::path::Path) -> chasti::store::Store {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match chasti::store::Store::open(path) {
            Ok(store) => return store,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                panic!("the store at {} stays locked: {e}", path.display())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Runs the test named `test` (its full path, `hostile::…`) again in a test process of its
/// own, and asserts it passed there. For tests that measure the process (its RSS): in the one
/// shared test binary every other test's allocations would count too. True in the calling
/// process (the caller returns), false in the child (the caller runs its body).
pub fn in_own_process(test: &str) -> bool {
    const VAR: &str = "CHASTI_OWN_PROCESS";
    if std::env::var(VAR).as_deref() == Ok(test) {
        return false;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(VAR, test)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} in a process of its own:\n{stdout}\n{stderr}"
    );
    eprint!("{stderr}");
    true
}
