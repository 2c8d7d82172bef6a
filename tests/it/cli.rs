//! The `chasti` binary as a cashier and a manager run it against a running daemon (sale,
//! orders, status, reverse, refund, send-link), `demo`, and `sandbox` answering the README's
//! curl example. The integrator's commands are in `cli_setup.rs`.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use crate::common::ServeProcess;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_chasti");

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn demo_walkthrough_sells_pays_deposits_reverses_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["demo", "--walkthrough", "--any-ports", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "1 499,50 ₽ (two-stage)",
        "held → depositing",
        "1 deposit",
        "«Оплата отменена»",
        "Walkthrough done.",
    ] {
        assert!(stdout.contains(step), "{step:?} in {stdout}");
    }
    let slips: Vec<_> = std::fs::read_dir(dir.path().join("slips"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        slips.len(),
        6,
        "payment, paid and reversal slips as .bin and .png: {slips:?}"
    );
}

fn readme_curl_line() -> String {
    let readme = include_str!("../../README.md");
    readme
        .lines()
        .find(|l| l.starts_with("curl -s http://127.0.0.1:8907/payment/rest/register.do"))
        .expect("the README shows a register.do curl example")
        .to_string()
}

fn run_shell(line: &str) -> serde_json::Value {
    let out = Command::new("sh").args(["-c", line]).output().unwrap();
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{line}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn the_sandbox_answers_the_readmes_curl_example() {
    let mut child = Command::new(BIN)
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Its first line says where it listens: "sandbox gateway: http://127.0.0.1:PORT/payment/rest/".
    let stdout = child.stdout.take().unwrap();
    let _sandbox = Running(child);
    let first = std::io::BufReader::new(stdout)
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let port: u16 = first
        .rsplit_once("127.0.0.1:")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {first:?}"));
    let line = readme_curl_line().replace("127.0.0.1:8907", &format!("127.0.0.1:{port}"));
    let first = run_shell(&line);
    assert!(first["orderId"].is_string(), "{first}");
    assert!(
        first["formUrl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("http://127.0.0.1:{port}/sandbox/pay/")),
        "{first}"
    );
    let again = run_shell(&line);
    assert_eq!(again["errorCode"], "1", "{again}");
    let denied = run_shell(&line.replace("password=sandbox", "password=nope"));
    assert_eq!(denied["errorCode"], "5");
    assert_eq!(denied["errorMessage"], "Access denied");
}

/// A `chasti serve` with the embedded sandbox, on free ports (port 0 in its config).
pub(crate) struct Daemon {
    pub(crate) serve: ServeProcess,
    pub(crate) config: std::path::PathBuf,
    pub(crate) _dir: tempfile::TempDir,
}

impl Daemon {
    /// Stops `chasti serve` cleanly (SIGTERM, exit 0) and hands back its config and folder,
    /// for what is done with the daemon down and a start again after it.
    pub(crate) fn stop(self) -> (std::path::PathBuf, tempfile::TempDir) {
        assert!(self.serve.terminate().success());
        (self.config, self._dir)
    }
}

pub(crate) fn start_daemon() -> Daemon {
    start_daemon_with(|text| text)
}

#[test]
fn the_shipped_limits_refuse_a_sale_before_the_bank_is_called() {
    let d = start_daemon_with(|text| text.replace("min_amount = \"1\"", "min_amount = \"1000\""));
    for (amount, says) in [
        (
            "999.99",
            "меньше наименьшей для оплаты частями (1 000,00 ₽)",
        ),
        (
            "150000.01",
            "больше допустимой для одной продажи (150 000,00 ₽)",
        ),
    ] {
        let (ok, out) = chasti(&d, &["sale", amount]);
        assert!(!ok && out.contains(says), "{amount}: {out}");
    }
    let ledger = Command::new("curl")
        .arg("-sf")
        .arg(format!(
            "{}sandbox/api/ledger",
            d.serve.sandbox.as_deref().unwrap()
        ))
        .output()
        .unwrap();
    let ledger: serde_json::Value = serde_json::from_slice(&ledger.stdout).unwrap();
    let registers = ledger["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            o["operation"]
                .as_str()
                .is_some_and(|m| m.starts_with("register"))
        })
        .count();
    assert_eq!(registers, 0, "nothing reached the bank: {ledger}");
}

/// The same, with the config text changed first.
pub(crate) fn start_daemon_with(change: impl FnOnce(String) -> String) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let shipped = include_str!("../../config/chasti.toml");
    let text = shipped
        .replace("listen = \"127.0.0.1:8907\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:8081\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"")
        .replace(
            "path = \"chasti-data/orders.db\"",
            &format!("path = \"{}\"", dir.path().join("orders.db").display()),
        )
        .replace("poll_first_secs = 3", "poll_first_secs = 1")
        // The shipped floor is the installment product's (1 000 ₽); these tests sell small
        // sums. `the_shipped_limits_refuse_a_sale_before_the_bank_is_called` keeps it.
        .replace("min_amount = \"1000\"", "min_amount = \"1\"");
    let text = change(text);
    let config = dir.path().join("chasti.toml");
    std::fs::write(&config, text).unwrap();
    let serve = ServeProcess::start(&config, &dir.path().join("serve.log"), &[]);
    Daemon {
        serve,
        config,
        _dir: dir,
    }
}

/// A command of the CLI against the daemon (its address given as the README says: CHASTI_API).
pub(crate) fn command(d: &Daemon, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .arg("--config")
        .arg(&d.config)
        .env("CHASTI_API", &d.serve.api);
    c
}

pub(crate) fn chasti(d: &Daemon, args: &[&str]) -> (bool, String) {
    crate::common::run_output(&mut command(d, args))
}

#[test]
fn the_cli_sells_lists_and_reverses_through_the_running_daemon() {
    let d = start_daemon();
    // Read the link from the sale's output, then pay it in the sandbox.
    let sale = SaleRun::start(&d, &["sale", "1499"]);
    let head = sale.head.clone();
    assert!(head.contains("1 499,00 ₽"), "{head}");
    assert!(head.contains('█'), "a QR in the terminal: {head}");
    sandbox_pay(&d, &sale.link);
    let (ok, rest) = sale.finish();
    assert!(ok, "{head}{rest}");
    assert!(rest.contains("Оплачено"), "{rest}");

    let (ok, list) = chasti(&d, &["orders", "--today"]);
    assert!(ok, "{list}");
    assert!(
        list.contains("Оплачено")
            && list.contains("Итого оплачено (оплачено − отменено − возвращено): 1 499,00 ₽")
            && list.contains("За период (все состояния): заказов 1, оплачено 1 499,00 ₽, отменено 0,00 ₽, возвращено 0,00 ₽, итого 1 499,00 ₽"),
        "{list}"
    );
    // A state filter says what it shows and how many of the period's orders that is.
    let (ok, none) = chasti(&d, &["orders", "--today", "--state", "reversed"]);
    assert!(ok, "{none}");
    assert!(
        none.contains("в состоянии «Оплата отменена»:")
            && none.contains("Показано заказов: 0 из 1 за период"),
        "{none}"
    );
    let id = list
        .lines()
        .find(|l| l.contains("Оплачено"))
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    let (ok, shown) = chasti(&d, &["status", &id]);
    assert!(ok && shown.contains("состояние  Оплачено"), "{shown}");
    let (ok, refunded) = chasti(&d, &["refund", &id, "500"]);
    assert!(ok && refunded.contains("Частичный возврат"), "{refunded}");
    let (ok, refused) = chasti(&d, &["reverse", &id]);
    assert!(
        !ok && refused.contains("отменить можно только"),
        "{refused}"
    );
    let (ok, bad) = chasti(&d, &["refund", &id, "-5"]);
    assert!(
        !ok && bad.contains("amount: Сумма «-5» отрицательная"),
        "{bad}"
    );
}

/// A `chasti sale` under way: what it printed up to its link, the order's number and link, and
/// the rest of its output still to read.
struct SaleRun {
    child: Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    head: String,
    number: String,
    link: String,
}

impl SaleRun {
    fn start(d: &Daemon, args: &[&str]) -> SaleRun {
        let mut child = command(d, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut head = String::new();
        let link = loop {
            let line = lines.next().expect("the sale prints its link").unwrap();
            head.push_str(&line);
            head.push('\n');
            if let Some(link) = line.strip_prefix("Ссылка на оплату: ") {
                break link.to_string();
            }
        };
        let number = head
            .lines()
            .find_map(|l| l.strip_prefix("Заказ "))
            .and_then(|l| l.split(':').next())
            .expect("the sale prints its number")
            .to_string();
        SaleRun {
            child,
            lines,
            head,
            number,
            link,
        }
    }

    /// The rest of the output and whether the command succeeded.
    fn finish(mut self) -> (bool, String) {
        let rest: Vec<String> = self.lines.by_ref().map_while(Result::ok).collect();
        (self.child.wait().unwrap().success(), rest.join("\n"))
    }
}

pub(crate) fn sandbox_pay(d: &Daemon, link: &str) {
    let order_id = link.rsplit('/').next().unwrap();
    let paid = Command::new("curl")
        .args(["-sf", "-X", "POST"])
        .arg(format!(
            "{}sandbox/api/orders/{order_id}/pay",
            d.serve.sandbox.as_deref().unwrap()
        ))
        .output()
        .unwrap();
    assert!(paid.status.success(), "the sandbox takes the payment");
}

/// The number printed on the slip works with every command; each action names who did it in
/// the history (Moscow time, МСК) and in the daemon's log, never the token.
#[test]
fn every_command_takes_the_slips_number_and_says_who_did_what() {
    let paper = crate::common::FakeDevice::start(0x12);
    let d = start_daemon_with(|text| {
        text.replace("deposit = \"auto\"", "deposit = \"manual\"")
            + &format!(
                "\n[[printer]]\nname = \"receipt\"\nprofile = \"epson-tm-t20iii\"\nport = \"{}\"\n",
                paper.path().display()
            )
    });

    // A two-stage sale: «Создаю заказ…» at once, then the link; held is the till's outcome.
    let sale = SaleRun::start(&d, &["sale", "700", "--preauth"]);
    assert!(sale.head.starts_with("Создаю заказ…\n"), "{}", sale.head);
    let number = sale.number.clone();
    sandbox_pay(&d, &sale.link);
    let (ok, rest) = sale.finish();
    assert!(ok, "{rest}");
    assert!(
        rest.contains(&format!("Сумма заблокирована: 700,00 ₽. Списание — по команде менеджера: chasti deposit {number}")),
        "{rest}"
    );

    let (ok, out) = chasti(&d, &["deposit", &number]);
    assert!(ok && out.contains("состояние  Оплачено"), "{out}");
    let (ok, out) = chasti(&d, &["reprint", &number.to_lowercase()]);
    assert!(
        ok && out.contains(&format!(
            "Напечатан повторно чек «оплачено» заказа {number}"
        )),
        "{out}"
    );
    let (ok, out) = chasti(&d, &["refund", &number, "100"]);
    assert!(ok && out.contains("Частичный возврат"), "{out}");
    let (ok, shown) = chasti(&d, &["status", &number]);
    assert!(ok, "{shown}");
    for line in [
        "Продажа на 700,00 ₽ начата — till-1",
        "Запрошено списание заблокированной суммы — manager",
        "Запрошен возврат 100,00 ₽ — manager",
    ] {
        assert!(shown.contains(line), "{line:?} in {shown}");
    }
    assert!(
        shown.lines().filter(|l| l.contains(" МСК  ")).count() >= 6,
        "every history line in Moscow time: {shown}"
    );

    // An unpaid sale cancelled by its number while the till waits on it.
    let waiting = SaleRun::start(&d, &["sale", "50"]);
    let (ok, out) = chasti(&d, &["cancel", &waiting.number]);
    assert!(ok && out.contains("отменена"), "{out}");
    let (ok, rest) = waiting.finish();
    assert!(!ok && rest.contains("Продажа отменена"), "{rest}");

    // A one-stage sale paid, then reversed by its number.
    let paid = SaleRun::start(&d, &["sale", "60"]);
    let paid_number = paid.number.clone();
    sandbox_pay(&d, &paid.link);
    assert!(paid.finish().0);
    let (ok, out) = chasti(&d, &["reverse", &paid_number]);
    assert!(ok && out.contains("состояние  Оплата отменена"), "{out}");

    let (ok, out) = chasti(&d, &["status", "T-1-261123-9999"]);
    assert!(!ok && out.contains("не найден"), "{out}");

    // A token the daemon does not know: the hint names where it came from.
    let (ok, out) = chasti(
        &d,
        &["status", &number, "--token", "not-a-token-of-this-till"],
    );
    assert!(!ok && out.contains("--token или CHASTI_TOKEN"), "{out}");

    let log = std::fs::read_to_string(d._dir.path().join("serve.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains(&number) && l.contains("by=manager")),
        "the log names who deposited and refunded"
    );
    assert!(!log.contains("demo-manager-token-change-me"));
    // The start's credential probe expects «unknown order»: not a warning.
    assert!(log.contains("credentials accepted by the gateway"), "{log}");
    assert!(
        !log.lines()
            .any(|l| l.contains("WARN") && l.contains("errorCode 6")),
        "{log}"
    );
    assert!(!log.contains("demo-cashier-token-change-me"));
}

/// `chasti send-link` and `chasti sale --phone` through a running daemon (SMS by webhook).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_link_and_sale_phone_on_the_command_line() {
    let hook = crate::sms::FakeProvider::start("/hook", vec![(200, "{}")]).await;
    let url = hook.url.clone();
    let d = start_daemon_with(move |text| {
        text + &format!("\n[sms]\nprovider = \"webhook\"\nurl = \"{url}\"\n")
    });
    let (ok, bad) = chasti(&d, &["sale", "10", "--phone", "123"]);
    assert!(!ok && bad.contains("phone: «123»"), "{bad}");
    let sale = SaleRun::start(&d, &["sale", "10"]);
    let number = sale.number.clone();
    let (ok, said) = chasti(&d, &["send-link", &number, "8 912 345 67 89"]);
    assert!(ok, "{said}");
    assert!(
        said.contains("Ссылка отправляется по SMS на +7912***6789."),
        "{said}"
    );
    let (ok, again) = chasti(&d, &["send-link", &number, "+79123456789"]);
    assert!(ok && again.contains("уже отправлена"), "{again}");
    crate::common::wait_until(
        "the webhook is called",
        std::time::Duration::from_secs(10),
        || hook.seen().len() == 1,
    )
    .await;
    let (ok, bad) = chasti(&d, &["send-link", &number, "8 495 123 45 67"]);
    assert!(!ok && bad.contains("не мобильный"), "{bad}");
    sandbox_pay(&d, &sale.link);
    let (ok, rest) = sale.finish();
    assert!(ok && rest.contains("Оплачено"), "{rest}");
}

/// With no daemon at the address, a cashier's command says so in Russian with the fix.
#[test]
fn a_command_with_the_daemon_down_says_how_to_start_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("chasti.toml");
    std::fs::write(&config, include_str!("../../config/chasti.toml")).unwrap();
    let port = crate::common::free_port();
    let (ok, said) = crate::common::run_output(
        Command::new(BIN)
            .args(["status", "S1-1-261202-0001", "--config"])
            .arg(&config)
            .env("CHASTI_API", format!("http://127.0.0.1:{port}"))
            .env("CHASTI_TOKEN", "demo-cashier-token-change-me"),
    );
    assert!(!ok, "{said}");
    assert!(
        said.contains("chasti не запущен или не слушает")
            && said.contains("systemctl start chasti"),
        "{said}"
    );
    assert!(!said.contains("error sending request"), "{said}");
}

/// The cashier's commands explain their options in Russian, each one.
#[test]
fn the_cashiers_commands_have_russian_help_for_every_option() {
    for (command, options) in [
        (
            "sale",
            &["--till", "--description", "--preauth", "--phone"][..],
        ),
        (
            "orders",
            &["--today", "--day", "--from", "--to", "--state"][..],
        ),
    ] {
        let (ok, help) = crate::common::run_output(Command::new(BIN).args([command, "--help"]));
        assert!(ok, "{help}");
        for option in options {
            let line = help
                .lines()
                .find(|l| l.trim_start().starts_with(option))
                .unwrap_or_else(|| panic!("{command} {option}: {help}"));
            let text = line.trim_start().trim_start_matches(option);
            assert!(
                text.chars()
                    .any(|c| ('а'..='я').contains(&c.to_lowercase().next().unwrap_or(c))),
                "{command} {option} has no Russian help: {line}"
            );
        }
    }
}

#[test]
fn close_day_prints_the_days_totals_checked_against_the_bank() {
    let d = start_daemon();
    let sale = SaleRun::start(&d, &["sale", "1499"]);
    sandbox_pay(&d, &sale.link);
    let (ok, rest) = sale.finish();
    assert!(ok, "{rest}");
    let (ok, out) = chasti(&d, &["close-day"]);
    assert!(ok, "{out}");
    for line in [
        "Касса 1",
        "Оплаты: 1 на 1 499,00 ₽",
        "Итого: 1 499,00 ₽",
        "Сверено с банком заказов: 1",
        "Расхождений с банком нет",
        "Сверку провёл: manager",
    ] {
        assert!(out.contains(line), "{line} in {out}");
    }
    let (ok, refused) = chasti(&d, &["close-day", "--day", "31.02.2026"]);
    assert!(!ok && refused.contains("не понят"), "{refused}");
}
