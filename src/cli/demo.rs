//! `chasti demo`: the sandbox bank, the daemon, a virtual printer and the till API on loopback,
//! started the same way `serve` starts (one `Daemon`), with a walkthrough that sells, pays,
//! deposits and reverses.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chasti::config::Config;
use chasti::daemon::{shutdown_signal, DaemonHandle, Parts};
use chasti::devices::printer::{Printer, PrinterEvent};
use chasti::devices::profile;
use chasti::domain::IdempotencyKey;
use chasti::http::api::types::SaleBody;
use chasti::orders::{Mode, Order, StateKind};
use chasti::sandbox::Sandbox;

use super::daemon_api::DaemonApi;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Walk through a sale, its payment, the deposit and a reversal, then exit.
    #[arg(long)]
    walkthrough: bool,
    /// Free ports instead of 8907 (sandbox), 8080 (till API) and 8081 (callbacks).
    #[arg(long)]
    any_ports: bool,
    /// Where the demo keeps its order store and the printed slips (.bin and .png).
    #[arg(long, default_value = "chasti-demo")]
    dir: PathBuf,
}

const DEMO_CASHIER: &str = "demo-cashier-token-0001";
const DEMO_MANAGER: &str = "demo-manager-token-0001";

/// The demo's config: the embedded sandbox, demo tokens, quick polling.
fn demo_config(dir: &Path, any_ports: bool) -> Result<Config, String> {
    let port = |p: u16| if any_ports { 0 } else { p };
    let store = dir.join("orders.db");
    let text = format!(
        r#"
[gateway]
environment = "sandbox"
user_name = "sandbox-api"
password = "sandbox"
return_url = "https://shop.example/chasti/paid"

[sandbox]
listen = "127.0.0.1:{sandbox}"

[store]
path = "{store}"

[orders]
poll_first_secs = 2
poll_max_secs = 10

[callback]
listen = "127.0.0.1:{callback}"
key = "demo-callback-key"

[devices]
shop_name = "Демо-магазин «Частями»"

[api]
listen = "127.0.0.1:{api}"
[[api.tokens]]
name = "demo-till"
role = "cashier"
token = "{DEMO_CASHIER}"
[[api.tokens]]
name = "demo-manager"
role = "manager"
token = "{DEMO_MANAGER}"
"#,
        sandbox = port(8907),
        callback = port(8081),
        api = port(8080),
        store = store.display().to_string().replace('\\', "\\\\"),
    );
    Config::parse(Path::new("(demo)"), &text, |_| None).map_err(|e| e.to_string())
}

pub async fn demo(args: DemoArgs) -> Result<(), String> {
    // A fresh store each run: the in-memory sandbox does not remember earlier demos' orders.
    for file in ["orders.db", "orders.db-wal", "orders.db-shm"] {
        let _ = std::fs::remove_file(args.dir.join(file));
    }
    let slips = args.dir.join("slips");
    let _ = std::fs::remove_dir_all(&slips);
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| format!("cannot create {}: {e}", args.dir.display()))?;
    let config = demo_config(&args.dir, args.any_ports)?;
    let till = config.store.till.clone();
    let printer = Printer::virtual_to(
        slips.clone(),
        profile::printer("epson-tm-t20iii", None).map_err(|e| e.to_string())?,
    );
    let parts = Parts {
        printer: Some(printer.clone()),
        ..Parts::default()
    };
    let (daemon, sandbox) = super::run::build(config, parts)
        .await
        .map_err(|e| format!("{e} (is another chasti running? try --any-ports)"))?;
    let handle = daemon.handle();
    let sandbox = sandbox.ok_or("the demo's sandbox did not start")?;
    sandbox.set_callback_retry_delays(vec![Duration::from_secs(2), Duration::from_secs(5)]);

    let api_url = handle.api_url();
    println!("chasti demo: everything on this machine, nothing leaves it");
    println!("  till API        {api_url}/api/v1   (cashier token {DEMO_CASHIER}, manager token {DEMO_MANAGER})");
    println!(
        "  customer screen {api_url}/screen?till={}   (for a second monitor)",
        till.as_str()
    );
    println!("  manager page    {api_url}/manager  (manager token above)");
    println!("  sandbox bank    {}", sandbox.gateway_url());
    println!("  bank's ledger   {}sandbox/api/ledger", sandbox.url());
    println!(
        "  printed slips   {}/ (ESC/POS bytes and PNG pictures)",
        slips.display()
    );
    println!();
    println!("Sell from another terminal:");
    println!("  CHASTI_API={api_url} CHASTI_TOKEN={DEMO_CASHIER} cargo run --release -- sale 1499");
    println!("  curl -s -H 'Authorization: Bearer {DEMO_CASHIER}' -H 'Content-Type: application/json' \\");
    println!(
        "       -d '{{\"amount\":\"1499\",\"idempotency_key\":\"demo-1\"}}' {api_url}/api/v1/sales"
    );
    println!("Open the payment link and pay with any phone number and the code 1111.");

    if !args.walkthrough {
        println!();
        println!("Serving until Ctrl-C.");
        return daemon
            .run_until(shutdown_signal())
            .await
            .map_err(|e| e.to_string());
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(daemon.run_until(async move {
        let _ = stopped.await;
    }));
    let result = walkthrough(&handle, &sandbox, &printer, &slips).await;
    let _ = stop.send(());
    running
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    result
}

/// Waits (bounded) for the order to reach `state`, on the engine's own updates.
async fn wait_for(
    handle: &DaemonHandle,
    id: uuid::Uuid,
    state: StateKind,
) -> Result<Order, String> {
    let mut updates = handle.engine.subscribe();
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        let now = handle.engine.get(&id).map_err(|e| e.to_string())?;
        if now.state.kind() == state {
            return Ok(now);
        }
        loop {
            match updates.recv().await {
                Ok(o) if o.id == id && o.state.kind() == state => return Ok(o),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await;
    waited.map_err(|_| format!("the order did not become {state} within 20 s"))?
}

async fn walkthrough(
    handle: &DaemonHandle,
    sandbox: &Sandbox,
    printer: &Printer,
    slips: &Path,
) -> Result<(), String> {
    let cashier = DaemonApi::new(handle.api_url(), DEMO_CASHIER.into(), "the demo".into())?;
    let manager = DaemonApi::new(handle.api_url(), DEMO_MANAGER.into(), "the demo".into())?;
    println!();
    println!("Walkthrough:");
    let sale = cashier
        .sale(&SaleBody {
            phone: None,
            amount: "1 499,50".into(),
            mode: Some(Mode::TwoStage),
            description: chasti::domain::Description::parse("Демо: кофемашина").ok(),
            till: None,
            idempotency_key: IdempotencyKey::random(),
            email: None,
            items: Some(vec![chasti::http::api::cart::ItemBody {
                name: "Кофемашина".into(),
                quantity: "1".into(),
                price: "1499.50".into(),
                vat: "22".into(),
                payment_object: None,
                payment_method: None,
            }]),
        })
        .await?;
    let order = &sale.order;
    println!(
        "1. sale {} for {} (two-stage), state «{}»",
        order.order_number, order.amount_text, order.state_text
    );
    println!("   payment link {}", sale.payment_url);
    println!("   printer: {}", sale.devices.printer);
    let gateway_id = order
        .gateway_order_id
        .clone()
        .ok_or("the sale has no bank id")?;
    sandbox.pay(gateway_id.as_str()).map_err(|e| e.message)?;
    println!("2. the customer pays in installments on the sandbox's page");
    let paid = wait_for(handle, order.id, StateKind::Paid).await?;
    for e in &paid.history {
        println!("   {} → {}: {}", e.from, e.to, e.what());
    }
    let deposits = sandbox
        .ledger()
        .operations
        .iter()
        .filter(|o| o.operation == "deposit.do" && o.ok())
        .count();
    println!(
        "3. the bank's ledger shows {deposits} deposit of {}",
        paid.amount
    );
    let mut printed = printer.subscribe();
    let reversed = manager.reverse(order.order_number.as_str()).await?;
    println!(
        "4. the manager reverses it the same day: «{}»",
        reversed.state_text
    );
    if reversed.state.name != StateKind::Reversed {
        return Err("the reversal did not go through".into());
    }
    let slip = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match printed.recv().await {
                Ok(PrinterEvent::Printed { label }) if label.starts_with("reversal slip") => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    })
    .await;
    if slip.is_err() {
        return Err("the reversal slip did not print within 10 s".into());
    }
    let mut files: Vec<String> = std::fs::read_dir(slips)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    println!(
        "5. slips printed to {}: {}",
        slips.display(),
        files.join(", ")
    );
    if deposits != 1 {
        return Err(format!(
            "expected one deposit at the bank, found {deposits}"
        ));
    }
    println!("Walkthrough done.");
    Ok(())
}
