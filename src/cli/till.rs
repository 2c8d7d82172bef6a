//! `chasti sale | orders | status | reverse | refund`: the till's and the manager's commands,
//! talking to the running daemon over its API like the POS software does.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use chasti::config::{Config, Role};
use chasti::devices::qr::QrSymbol;
use chasti::domain::{IdempotencyKey, TillId};
use chasti::http::api::types::{OrderView, RefundBody, SaleBody};
use chasti::orders::{Mode, StateKind};

use super::daemon_api::DaemonApi;

/// Where the daemon is and who the command line is.
#[derive(clap::Args, Debug)]
pub struct ApiArgs {
    /// Адрес API chasti (по умолчанию http://api.listen из конфига).
    #[arg(long, env = "CHASTI_API", value_name = "АДРЕС", display_order = 90)]
    api_url: Option<String>,
    /// Токен (по умолчанию — первый токен нужной роли из конфига).
    #[arg(
        long,
        env = "CHASTI_TOKEN",
        hide_env_values = true,
        value_name = "ТОКЕН",
        display_order = 91
    )]
    token: Option<String>,
}

/// `-h, --help` in Russian, for the till commands (they turn clap's own flag off).
#[derive(clap::Args, Debug)]
pub struct RussianHelp {
    /// Показать эту справку.
    #[arg(short = 'h', long = "help", action = clap::ArgAction::Help, display_order = 101)]
    help: Option<bool>,
}

#[derive(clap::Args, Debug)]
pub struct SaleArgs {
    // The help lines are Russian: a cashier reads them.
    /// Сумма в рублях: 1499, 1499.50, "1 499,50".
    #[arg(allow_hyphen_values = true, value_name = "СУММА", display_order = 0)]
    amount: String,
    /// Двухстадийная оплата: сначала блокировка суммы, затем списание.
    #[arg(long, display_order = 2)]
    preauth: bool,
    /// Касса (1–4 латинские буквы или цифры); по умолчанию store.till из конфига.
    #[arg(long, value_name = "КАССА", display_order = 3)]
    till: Option<String>,
    /// Описание покупки для банка и чека (например «Холодильник Атлант»).
    #[arg(long, value_name = "ТЕКСТ", display_order = 4)]
    description: Option<String>,
    /// Мобильный номер покупателя (+7 912 345-67-89): уходит в банк с заказом, на него же —
    /// ссылка по SMS, если SMS настроены.
    #[arg(long, value_name = "ТЕЛЕФОН", display_order = 5)]
    phone: Option<String>,
    /// Электронная почта покупателя для электронного чека.
    #[arg(long, value_name = "ПОЧТА", display_order = 6)]
    email: Option<String>,
    /// Позиция чека: «название;количество;цена;НДС[;предмет расчёта[;способ расчёта]]»,
    /// например «Кофе;2;150.00;22». Можно несколько раз; сумма позиций должна совпасть с суммой.
    #[arg(long = "item", value_name = "ПОЗИЦИЯ", display_order = 7)]
    items: Vec<String>,
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    _help: RussianHelp,
}

#[derive(clap::Args, Debug)]
pub struct SendLinkArgs {
    /// Номер заказа с чека или id заказа.
    #[arg(value_name = "ЗАКАЗ", display_order = 0)]
    id: String,
    /// Мобильный номер покупателя: +7 912 345-67-89, 8 912 345 67 89, …
    #[arg(value_name = "ТЕЛЕФОН", display_order = 1)]
    phone: String,
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    _help: RussianHelp,
}

#[derive(clap::Args, Debug)]
pub struct OrdersArgs {
    /// Заказы за сегодня (по московскому времени); так и без параметров.
    #[arg(long)]
    today: bool,
    /// День по Москве: ДД.ММ.ГГГГ (или ГГГГ-ММ-ДД).
    #[arg(long, conflicts_with_all = ["today", "from"], value_name = "ДЕНЬ")]
    day: Option<String>,
    /// Первый день периода (до сегодня или до --to).
    #[arg(long, conflicts_with = "today", value_name = "ДЕНЬ")]
    from: Option<String>,
    /// Последний день периода.
    #[arg(long, requires = "from", value_name = "ДЕНЬ")]
    to: Option<String>,
    /// Только заказы в этом состоянии: paid, awaiting_payment, reversed, refunded, partially_refunded, cancelled, expired, declined, needs_attention, …
    #[arg(long, value_name = "СОСТОЯНИЕ")]
    state: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    _help: RussianHelp,
}

#[derive(clap::Args, Debug)]
pub struct OrderArgs {
    /// Номер заказа с чека (S1-1-261123-0006) или id заказа.
    #[arg(value_name = "ЗАКАЗ", display_order = 0)]
    id: String,
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    _help: RussianHelp,
}

#[derive(clap::Args, Debug)]
pub struct CloseDayArgs {
    /// День по Москве: 06.12.2026 или 2026-12-06; по умолчанию сегодня.
    #[arg(long, value_name = "ДЕНЬ", display_order = 0)]
    day: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    _help: RussianHelp,
}

#[derive(clap::Args, Debug)]
pub struct DepositArgs {
    /// Номер заказа с чека или id заказа.
    #[arg(value_name = "ЗАКАЗ", display_order = 0)]
    id: String,
    /// Сколько списать в рублях; без неё — вся заблокированная сумма. Остаток блокировки
    /// снимается, чек — на списанную сумму.
    #[arg(long, value_name = "СУММА", display_order = 1)]
    amount: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    _help: RussianHelp,
}

#[derive(clap::Args, Debug)]
pub struct RefundArgs {
    /// Номер заказа с чека или id заказа.
    #[arg(value_name = "ЗАКАЗ", display_order = 0)]
    id: String,
    /// Сумма возврата в рублях; без неё — вся оставшаяся сумма.
    #[arg(allow_hyphen_values = true, value_name = "СУММА", display_order = 1)]
    amount: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    _help: RussianHelp,
}

pub(super) fn client(config_path: &Path, args: &ApiArgs, role: Role) -> Result<DaemonApi, String> {
    let loaded = Config::load(config_path);
    let unreadable = loaded.as_ref().err().map(|e| e.to_string());
    let config = loaded.ok();
    let url = args
        .api_url
        .clone()
        .or_else(|| config.as_ref().map(|c| format!("http://{}", c.api.listen)))
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let (token, source) = match &args.token {
        Some(t) => (t.clone(), "--token или CHASTI_TOKEN".to_string()),
        None => {
            let found = config
                .as_ref()
                .and_then(|c| c.api.tokens.iter().find(|t| t.role == role).map(|t| (c, t)));
            match found {
                Some((c, t)) => (
                    t.token.expose().to_string(),
                    format!("{} (токен «{}»)", c.file.display(), t.name),
                ),
                None => return Err(no_token(config_path, role.as_str(), unreadable.as_deref())),
            }
        }
    };
    DaemonApi::new(url, token, source)
}

/// Why no token was found, with the real cause: a config this user may not read is not a
/// config without tokens.
fn no_token(config_path: &Path, role: &str, unreadable: Option<&str>) -> String {
    let denied = std::fs::File::open(config_path)
        .err()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied);
    if denied {
        return format!(
            "нет доступа к {}: этот пользователь не может прочитать конфиг (его читают root и группа chasti), а токен берётся оттуда.\n  Дайте кассе токен с ролью {role}: переменная CHASTI_TOKEN в окружении пользователя кассы (или --token), либо добавьте пользователя в группу chasti: sudo usermod -aG chasti $USER, затем войдите заново.",
            config_path.display()
        );
    }
    match unreadable {
        Some(e) => format!(
            "конфиг не читается ({e}); токен с ролью {role} можно передать в --token или CHASTI_TOKEN"
        ),
        None => format!(
            "нужен токен: --token, CHASTI_TOKEN или [[api.tokens]] с ролью {role} в {}",
            config_path.display()
        ),
    }
}

fn moscow_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&chrono_tz::Europe::Moscow)
        .format("%d.%m.%Y %H:%M:%S МСК")
        .to_string()
}

pub async fn sale(config: &Path, args: SaleArgs) -> Result<(), String> {
    let api = client(config, &args.api, Role::Cashier)?;
    let till = args
        .till
        .as_deref()
        .map(TillId::parse)
        .transpose()
        .map_err(|e| format!("till: {}", e.ru))?;
    let description = args
        .description
        .as_deref()
        .map(chasti::domain::Description::parse)
        .transpose()
        .map_err(|e| format!("description: {}", e.ru))?;
    let phone = args
        .phone
        .as_deref()
        .map(chasti::domain::Phone::parse)
        .transpose()
        .map_err(|e| format!("phone: {}", e.ru))?;
    let email = args
        .email
        .as_deref()
        .map(chasti::domain::Email::parse)
        .transpose()
        .map_err(|e| format!("email: {}", e.ru))?;
    let items = args
        .items
        .iter()
        .map(|line| item_of(line))
        .collect::<Result<Vec<_>, String>>()?;
    let body = SaleBody {
        phone,
        email,
        items: (!items.is_empty()).then_some(items),
        amount: args.amount,
        mode: Some(if args.preauth {
            Mode::TwoStage
        } else {
            Mode::OneStage
        }),
        description,
        till,
        idempotency_key: IdempotencyKey::random(),
    };
    println!("Создаю заказ…");
    let sale = api.sale(&body).await?;
    let order = &sale.order;
    println!("Заказ {}: {}", order.order_number, order.amount_text);
    if let Ok(q) = QrSymbol::encode(sale.payment_url.as_str()) {
        print!("{}", q.to_terminal());
    }
    println!("Ссылка на оплату: {}", sale.payment_url);
    println!("  принтер: {}", sale.devices.printer);
    println!("  дисплей: {}", sale.devices.display);
    if let Some(sms) = &sale.sms {
        println!("  SMS:     {}", sms.message);
    }
    // With manual deposit a hold is the sale's outcome at the till: a manager takes it later.
    let hold_is_done = Config::load(config)
        .map(|c| c.orders.deposit == chasti::config::DepositMode::Manual)
        .unwrap_or(false);
    if wait(&api, &order.id.to_string(), hold_is_done).await? {
        Ok(())
    } else {
        Err("продажа не оплачена".into())
    }
}

/// `название;количество;цена;НДС[;предмет[;способ]]` as the API's line (the API checks it).
fn item_of(line: &str) -> Result<chasti::http::api::cart::ItemBody, String> {
    let fields: Vec<&str> = line.split(';').map(str::trim).collect();
    let [name, quantity, price, vat, rest @ ..] = fields.as_slice() else {
        return Err(format!(
            "позиция «{line}»: нужно «название;количество;цена;НДС», например «Кофе;2;150.00;22»"
        ));
    };
    if rest.len() > 2 {
        return Err(format!(
            "позиция «{line}»: лишние поля; после НДС — только предмет и способ расчёта"
        ));
    }
    Ok(chasti::http::api::cart::ItemBody {
        name: name.to_string(),
        quantity: quantity.to_string(),
        price: price.to_string(),
        vat: vat.to_string(),
        payment_object: rest.first().map(|s| s.to_string()),
        payment_method: rest.get(1).map(|s| s.to_string()),
    })
}

/// Follows the order's event stream until it settles, with a progress line. True when paid
/// (or held, when `hold_is_done`: the shop deposits by hand).
async fn wait(api: &DaemonApi, id: &str, hold_is_done: bool) -> Result<bool, String> {
    let mut events = api.events(id).await?;
    let started = std::time::Instant::now();
    let mut buffer = String::new();
    let mut attempts = 0;
    loop {
        let chunk = tokio::select! {
            c = events.chunk() => c.map_err(|e| format!("поток событий прервался: {}", e.without_url()))?,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                let s = started.elapsed().as_secs();
                print!("\r  Ожидаем оплату… {:02}:{:02}", s / 60, s % 60);
                let _ = std::io::stdout().flush();
                continue;
            }
        };
        let Some(chunk) = chunk else {
            return Err("поток событий закрыт (chasti останавливается?)".into());
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:")) else {
                continue;
            };
            let Ok(order) = serde_json::from_str::<OrderView>(data.trim()) else {
                continue;
            };
            if order.failed_attempts.len() > attempts {
                attempts = order.failed_attempts.len();
                if let Some(last) = order.failed_attempts.last() {
                    println!(
                        "\r  Попытка оплаты не прошла: {}. Покупатель может попробовать ещё раз.",
                        last.why
                    );
                }
            }
            match order.state.name {
                StateKind::Paid => {
                    println!(
                        "\r  {}: {}            ",
                        order.state_text, order.amount_text
                    );
                    return Ok(true);
                }
                StateKind::Declined
                | StateKind::Expired
                | StateKind::Cancelled
                | StateKind::Failed
                | StateKind::Reversed
                | StateKind::NeedsAttention => {
                    println!("\r  {}            ", order.state_text);
                    return Ok(false);
                }
                StateKind::Held if hold_is_done => {
                    println!(
                        "\r  {}: {}. Списание — по команде менеджера: chasti deposit {}",
                        order.state_text, order.amount_text, order.order_number
                    );
                    return Ok(true);
                }
                StateKind::Held | StateKind::Depositing => {
                    print!("\r  {}…            ", order.state_text);
                    let _ = std::io::stdout().flush();
                }
                _ => {}
            }
        }
    }
}

pub async fn orders(config: &Path, args: OrdersArgs) -> Result<(), String> {
    let api = client(config, &args.api, Role::Cashier)?;
    let mut query = Vec::new();
    let encode = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    if let Some(d) = &args.day {
        query.push(format!("day={}", encode(d)));
    }
    if let Some(f) = &args.from {
        query.push(format!("from={}", encode(f)));
    }
    if let Some(t) = &args.to {
        query.push(format!("to={}", encode(t)));
    }
    if let Some(s) = &args.state {
        query.push(format!("state={s}"));
    }
    let query = query.join("&");
    // Page by page: a busy range is never loaded at once.
    let mut list = api.orders(&format!("{query}&limit=500")).await?;
    let range = if list.day == list.to {
        list.day.format("%d.%m.%Y").to_string()
    } else {
        format!(
            "{} – {}",
            list.day.format("%d.%m.%Y"),
            list.to.format("%d.%m.%Y")
        )
    };
    let state = args
        .state
        .as_deref()
        .and_then(chasti::orders::StateKind::parse)
        .map(|k| format!(" в состоянии «{}»", k.russian()))
        .unwrap_or_default();
    println!("Заказы за {range}{state}:");
    // The widest state text, so a long one («Не удалось создать оплату») keeps the columns.
    let width = chasti::orders::StateKind::ALL
        .iter()
        .map(|k| k.russian().chars().count())
        .max()
        .unwrap_or(24);
    let mut shown = 0usize;
    let mut missing = 0usize;
    loop {
        for o in &list.orders {
            let created = o
                .created_at
                .with_timezone(&chrono_tz::Europe::Moscow)
                .format("%d.%m %H:%M МСК");
            // A movement whose fiscal receipt is past its deadline stands out on its line.
            let receipt = if o.receipts.iter().any(|r| r.missing) {
                missing += 1;
                "  ЧЕК НЕ ПРОБИТ"
            } else {
                ""
            };
            println!(
                "  {}  {:>16}  {:<width$}  {}  {}{receipt}",
                o.order_number, o.amount_text, o.state_text, created, o.id
            );
            shown += 1;
        }
        match &list.next_cursor {
            Some(cursor) => {
                list = api
                    .orders(&format!("{query}&limit=500&cursor={cursor}"))
                    .await?
            }
            None => break,
        }
    }
    if state.is_empty() {
        println!("Всего заказов: {shown}");
    } else {
        println!(
            "Показано заказов: {shown} из {} за период",
            list.total.count
        );
    }
    let money = |d: &chasti::orders::DayTotals| {
        format!(
            "заказов {}, оплачено {}, отменено {}, возвращено {}, итого {}",
            d.count, d.sold, d.reversed, d.refunded, d.net
        )
    };
    if list.days.len() > 1 {
        for d in list.days.iter().filter(|d| d.count > 0) {
            println!("  {}: {}", d.day.format("%d.%m.%Y"), money(d));
        }
    }
    if missing > 0 {
        println!("Чек не пробит по заказам: {missing} (см. chasti status ЗАКАЗ)");
    }
    println!("За период (все состояния): {}", money(&list.total));
    println!(
        "Итого оплачено (оплачено − отменено − возвращено): {}",
        list.net_paid_text
    );
    Ok(())
}

fn print_order(o: &OrderView) {
    println!("Заказ {} ({})", o.order_number, o.id);
    println!("  сумма      {}", o.amount_text);
    println!("  состояние  {}", o.state_text);
    if !o.deposited.is_zero() {
        println!(
            "  оплачено {}, отменено {}, возвращено {}, осталось {}, можно вернуть {}",
            o.deposited, o.reversed, o.refunded, o.left, o.refundable
        );
    }
    if let Some(url) = &o.payment_url {
        println!("  ссылка     {url}");
    }
    for item in &o.items {
        println!(
            "  позиция    {} {} × {} = {} (НДС {})",
            item.name, item.quantity, item.price, item.amount, item.vat
        );
    }
    if !o.receipt_text.is_empty() {
        println!("  чек        {}", o.receipt_text);
    }
    if let Some(message) = &o.message {
        println!("  {message}");
    }
    println!("  история:");
    for e in &o.events {
        let text = if e.text.is_empty() { &e.what } else { &e.text };
        match &e.actor {
            Some(actor) => println!("    {}  {text} — {actor}", moscow_time(e.at)),
            None => println!("    {}  {text}", moscow_time(e.at)),
        }
    }
}

pub async fn status(config: &Path, args: OrderArgs) -> Result<(), String> {
    let api = client(config, &args.api, Role::Cashier)?;
    print_order(&api.order(&args.id).await?);
    Ok(())
}

pub async fn cancel(config: &Path, args: OrderArgs) -> Result<(), String> {
    let api = client(config, &args.api, Role::Cashier)?;
    let reply = api.cancel(&args.id).await?;
    println!("{}", reply.message);
    print_order(&reply.order);
    Ok(())
}

pub async fn reprint(config: &Path, args: OrderArgs) -> Result<(), String> {
    let api = client(config, &args.api, Role::Cashier)?;
    let printed = api.reprint(&args.id).await?;
    println!("{}", printed.printed);
    Ok(())
}

pub async fn deposit(config: &Path, args: DepositArgs) -> Result<(), String> {
    let api = client(config, &args.api, Role::Manager)?;
    let body = chasti::http::api::types::DepositBody {
        amount: args.amount,
    };
    print_order(&api.deposit(&args.id, &body).await?);
    Ok(())
}

pub async fn close_day(config: &Path, args: CloseDayArgs) -> Result<(), String> {
    let api = client(config, &args.api, Role::Manager)?;
    let day = args
        .day
        .unwrap_or_else(|| chasti::moscow::date(chrono::Utc::now()).to_string());
    println!("Сверка итогов: сверяю заказы дня с банком…");
    let view = api.close_day(&day).await?;
    for line in chasti::http::api::close::report_lines(&view) {
        if line == "-" {
            println!("{}", "-".repeat(40));
        } else {
            println!("{line}");
        }
    }
    println!("Чек сверки: {}", view.slip);
    if view.disagreements.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "есть расхождения с банком: {}; проверьте их в личном кабинете банка",
            view.disagreements.len()
        ))
    }
}

pub async fn send_link(config: &Path, args: SendLinkArgs) -> Result<(), String> {
    let phone =
        chasti::domain::Phone::parse(&args.phone).map_err(|e| format!("phone: {}", e.ru))?;
    let api = client(config, &args.api, Role::Cashier)?;
    let view = api.send_link(&args.id, &phone).await?;
    println!("{}", view.message);
    Ok(())
}

pub async fn reverse(config: &Path, args: OrderArgs) -> Result<(), String> {
    let api = client(config, &args.api, Role::Manager)?;
    print_order(&api.reverse(&args.id).await?);
    Ok(())
}

pub async fn refund(config: &Path, args: RefundArgs) -> Result<(), String> {
    let api = client(config, &args.api, Role::Manager)?;
    let body = RefundBody {
        amount: args.amount,
        idempotency_key: IdempotencyKey::random(),
    };
    print_order(&api.refund(&args.id, &body).await?);
    Ok(())
}
