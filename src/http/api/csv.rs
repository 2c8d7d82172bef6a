//! The orders as CSV for Excel: UTF-8 with a BOM (written by the route), `;` between fields,
//! amounts as `1499,50`, times in Moscow time, free text that never starts a formula. The money
//! columns are the order's [`crate::orders::Balance`], as the API and the manager page show it.

use crate::csv::{quoted, text_cell};
use crate::orders::Order;

pub(super) const CSV_HEADER: &str = "Дата (МСК);Время (МСК);Заказ;Касса;Способ;Сумма;Оплачено;Отменено;Возвращено;Осталось;Можно вернуть;Состояние;Кто продал;Описание;Позиции;Чек\r\n";

pub(super) fn csv_row(out: &mut String, o: &Order, with_history: bool) {
    let balance = o.balance();
    let at = o.created_at.with_timezone(&chrono_tz::Europe::Moscow);
    let seller = o
        .history
        .first()
        .and_then(|e| e.actor.as_ref())
        .map(|a| a.to_string())
        .unwrap_or_default();
    let fields = [
        at.format("%d.%m.%Y").to_string(),
        at.format("%H:%M:%S").to_string(),
        o.order_number.to_string(),
        o.till.to_string(),
        match o.mode {
            crate::orders::Mode::OneStage => "одностадийная".into(),
            crate::orders::Mode::TwoStage => "двухстадийная".into(),
        },
        o.amount.format_plain(),
        balance.paid.format_plain(),
        balance.reversed.format_plain(),
        balance.refunded.format_plain(),
        balance.left.format_plain(),
        balance.refundable.format_plain(),
        o.state.russian().to_string(),
        text_cell(&seller),
        text_cell(o.description.as_ref().map(|d| d.as_str()).unwrap_or("")),
        // One cell: a line each, as the receipt lists them.
        text_cell(
            &o.cart
                .as_ref()
                .map(|c| {
                    c.items()
                        .iter()
                        .map(|i| format!("{} ({})", i.line(), i.vat.russian()))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default(),
        ),
        super::types::receipt_text(o),
    ];
    let mut row: Vec<String> = fields.iter().map(|f| quoted(f)).collect();
    if with_history {
        // One cell: each line of the history as the order page shows it, oldest first.
        let lines: Vec<String> = o
            .history
            .iter()
            .map(|e| {
                let at = e.at.with_timezone(&chrono_tz::Europe::Moscow);
                format!("{} {}", at.format("%d.%m.%Y %H:%M:%S"), e.text())
            })
            .collect();
        row.push(quoted(&text_cell(&lines.join("\n"))));
    }
    out.push_str(&row.join(";"));
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_never_start_a_formula() {
        assert_eq!(quoted("a;b"), "\"a;b\"");
        assert_eq!(quoted("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(text_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
    }

    #[test]
    fn the_csv_row_and_the_api_agree_on_the_money_in_every_state() {
        for order in crate::orders::transition::examples::one_in_every_state() {
            let view = super::super::types::OrderView::from(&order);
            let mut line = String::new();
            csv_row(&mut line, &order, false);
            let cells: Vec<&str> = line.trim_end().split(';').collect();
            let header: Vec<&str> = CSV_HEADER.trim_end().split(';').collect();
            let cell = |name: &str| cells[header.iter().position(|h| *h == name).unwrap()];
            let name = order.state.name();
            assert_eq!(cell("Оплачено"), view.deposited.format_plain(), "{name}");
            assert_eq!(cell("Отменено"), view.reversed.format_plain(), "{name}");
            assert_eq!(cell("Возвращено"), view.refunded.format_plain(), "{name}");
            assert_eq!(cell("Осталось"), view.left.format_plain(), "{name}");
            assert_eq!(
                cell("Можно вернуть"),
                view.refundable.format_plain(),
                "{name}"
            );
            assert_eq!(cell("Состояние"), view.state_text, "{name}");
            let b = order.balance();
            assert_eq!(
                (
                    view.deposited,
                    view.reversed,
                    view.refunded,
                    view.left,
                    view.refundable
                ),
                (b.paid, b.reversed, b.refunded, b.left, b.refundable),
                "{name}"
            );
        }
    }
}
