//! The sandbox's payment page: what the customer sees after scanning the QR. Russian, like
//! the bank's, with the test host's sign-in (any phone, code 1111).

use crate::html::escape;
use axum::response::Html;

use super::bank::PageOrder;
use crate::gateway::OrderStatus;
use crate::money::Kopecks;
use crate::moscow;

pub const TEST_CODE: &str = "1111";

/// How many parts the sandbox's installment plan has (the bank's product: 4 parts, two weeks apart).
const PARTS: u64 = 4;

pub const INDEX: &str = r#"<!doctype html><html lang="ru"><head><meta charset="utf-8"><title>chasti sandbox</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:2em auto">
<h1>chasti sandbox</h1>
<p>A stand-in for the Sber gateway. Methods: <code>/payment/rest/&lt;method&gt;.do</code>
(register, registerPreAuth, deposit, reverse, refund, decline, getOrderStatus, getOrderStatusExtended, paymentOrderBinding).</p>
<p>Control API: <code>GET /sandbox/api/ledger</code>, <code>GET /sandbox/api/orders/{orderId}</code>,
<code>POST /sandbox/api/orders/{orderId}/pay</code>, <code>/decline</code> (a failed attempt; the
third closes the order), <code>/authenticate</code> (3-D Secure in progress),
<code>GET|PUT|DELETE /sandbox/api/faults</code>, <code>GET|POST /sandbox/api/clock</code>.</p>
</body></html>"#;

/// The first part carries the kopecks that do not divide evenly.
fn plan(amount: Kopecks) -> (Kopecks, Kopecks) {
    let part = amount.get() / PARTS;
    let first = amount.get() - part * (PARTS - 1);
    (
        Kopecks::new(first).unwrap_or(amount),
        Kopecks::new(part).unwrap_or_default(),
    )
}

pub fn render(order_id: &str, order: Option<&PageOrder>, message: Option<&str>) -> Html<String> {
    let body = match order {
        None => "<h1>Заказ не найден</h1><p>Проверьте ссылку или попросите кассира создать оплату заново.</p>".to_string(),
        Some(o) => order_body(order_id, o, message),
    };
    Html(format!(
        r#"<!doctype html><html lang="ru"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Оплата частями — тестовая среда</title>
<style>body{{font-family:sans-serif;max-width:28em;margin:1.5em auto;padding:0 1em;color:#1f1f1f}}
.amount{{font-size:2em;font-weight:bold}} .note{{color:#666;font-size:.9em}} .error{{color:#b00020}}
button{{font-size:1.1em;padding:.6em 1.2em;margin:.3em 0;width:100%}} .pay{{background:#21a038;color:#fff;border:0}}
input{{font-size:1.1em;padding:.4em;width:100%;box-sizing:border-box;margin:.2em 0 .6em}}</style></head>
<body><p class="note">Тестовая среда chasti: деньги не списываются.</p>{body}</body></html>"#
    ))
}

fn order_body(order_id: &str, o: &PageOrder, message: Option<&str>) -> String {
    let mut html = format!(
        r#"<h1>Оплата частями</h1><p>Заказ № <span id="order-number">{number}</span></p>
<p class="amount" id="amount">{amount}</p>"#,
        number = escape(&o.order_number),
        amount = o.amount,
    );
    if let Some(d) = &o.description {
        html.push_str(&format!("<p>{}</p>", escape(d)));
    }
    if let Some(m) = message {
        html.push_str(&format!(
            r#"<p class="error" id="message">{}</p>"#,
            escape(m)
        ));
    }
    let id = escape(order_id);
    match o.status {
        OrderStatus::Registered | OrderStatus::Authenticating => {
            if let Some(failure) = &o.last_failure {
                html.push_str(&format!(
                    r#"<p class="error" id="attempt">Оплата не прошла: {}. Осталось попыток: {}.</p>"#,
                    escape(failure),
                    o.attempts_left
                ));
            }
            let (first, rest) = plan(o.amount);
            html.push_str(&format!(
                r#"<p>{PARTS} платежа: сегодня {first}, затем 3 × {rest} раз в две недели. Без переплат.</p>
<p class="note">Ссылка действует до {until} (МСК).</p>
<form method="post" action="/sandbox/pay/{id}">
<label>Телефон<input name="phone" type="tel" placeholder="+7 900 000-00-00" autocomplete="tel"></label>
<label>Код из SMS (в тестовой среде — {TEST_CODE})<input name="code" inputmode="numeric"></label>
<button class="pay" name="action" value="pay" id="pay">Оплатить частями</button>
<button name="action" value="decline" id="decline">Тест: банк отклоняет попытку</button>
</form>"#,
                until = moscow::clock_text(o.expires),
            ));
        }
        status => {
            let (title, state) = match status {
                OrderStatus::Held => ("Оплата одобрена", "held"),
                OrderStatus::Deposited => ("Оплачено. Спасибо!", "paid"),
                OrderStatus::Declined => ("Заказ закрыт: оплатить его больше нельзя", "declined"),
                OrderStatus::Reversed => ("Оплата отменена", "reversed"),
                OrderStatus::Refunded => ("Оформлен возврат", "refunded"),
                _ => ("Заказ обрабатывается", "pending"),
            };
            html.push_str(&format!(
                r#"<h2 id="result" data-state="{state}">{title}</h2><p><a href="{url}">Вернуться в магазин</a></p>"#,
                url = escape(&o.return_url),
            ));
        }
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_adds_up() {
        let (first, rest) = plan(Kopecks::new(100_001).unwrap());
        assert_eq!(first.get() + 3 * rest.get(), 100_001);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
