//! The cashier's commands speak Russian in their help and in their mistakes (clap's template,
//! headings and errors replaced); the integrator's commands keep clap's English.

use std::process::Command;

use crate::common::BIN;

/// Runs the binary (no daemon needed: these never reach one): exit code, stdout, stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("CHASTI_CONFIG")
        .env_remove("CHASTI_TOKEN")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ENGLISH: &[&str] = &[
    "Usage:",
    "Options:",
    "Arguments:",
    "Print help",
    "[OPTIONS]",
    "error:",
];

#[test]
fn every_till_commands_help_is_russian() {
    for (command, says) in [
        ("sale", "Продажа частями"),
        ("cancel", "Отменить неоплаченную продажу"),
        ("orders", "Заказы за сегодня"),
        ("status", "история"),
        ("reprint", "Напечатать чек"),
        ("send-link", "по SMS"),
        ("deposit", "Списать"),
        ("reverse", "Отменить оплату"),
        ("refund", "Возврат"),
    ] {
        let (code, help, _) = run(&[command, "--help"]);
        assert_eq!(code, 0, "{command}");
        for word in [
            says,
            "Использование: chasti ",
            "Параметры:",
            "Показать эту справку",
        ] {
            assert!(
                help.contains(word),
                "{command} --help lacks {word:?}:\n{help}"
            );
        }
        for word in ENGLISH {
            assert!(
                !help.contains(word),
                "{command} --help says {word:?}:\n{help}"
            );
        }
    }
    let (_, help, _) = run(&["orders", "--help"]);
    for line in [
        "--today",
        "--day <ДЕНЬ>",
        "--state <СОСТОЯНИЕ>",
        "--from <ДЕНЬ>",
    ] {
        assert!(help.contains(line), "{help}");
    }
    let (_, help, _) = run(&["sale", "--help"]);
    for line in [
        "<СУММА>",
        "--till <КАССА>",
        "--description <ТЕКСТ>",
        "--preauth",
    ] {
        assert!(help.contains(line), "{help}");
    }
}

#[test]
fn a_till_commands_mistakes_are_told_in_russian_with_the_fix() {
    for (args, says) in [
        (&["sale"][..], "ошибка: не указано: <СУММА>"),
        (
            &["orders", "--tody"][..],
            "неизвестный параметр «--tody» (может быть, --today?)",
        ),
        (
            &["orders", "--today", "--day", "01.12.2026"][..],
            "нельзя указывать вместе с",
        ),
        (&["sale", "10", "extra"][..], "лишний аргумент «extra»"),
        (
            &["sale", "10", "--till"][..],
            "нет значения: укажите его после --till",
        ),
        (
            &["send-link", "S1-1-261123-0006"][..],
            "не указано: <ТЕЛЕФОН>",
        ),
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            err.contains(&format!("Подробнее: chasti {} --help", args[0])),
            "{err}"
        );
        for word in ENGLISH {
            assert!(!err.contains(word), "{args:?} says {word:?}: {err}");
        }
    }
}

#[test]
fn the_integrators_commands_keep_clap_english() {
    let (code, _, err) = run(&["doctor", "--bad"]);
    assert_eq!(code, 2);
    assert!(err.contains("error: unexpected argument '--bad'"), "{err}");
    let (code, help, _) = run(&["serve", "--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("Usage: chasti serve"), "{help}");
}
