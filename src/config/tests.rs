//! The config's own tests: the shipped file loads, each mistake has its own message.

use super::*;
use crate::gateway::Credentials;

const GOOD: &str = r#"
[gateway]
environment = "sandbox"
user_name = "sandbox-api"
password = "sandbox"
return_url = "https://shop.example/paid"
"#;

/// A well-formed argon2id hash (of no password anyone knows), shaped as `chasti hash-password` prints.
const HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$qcRMbT0GyEnvKP5rkrrEu3y5r4JY3gC7cvCTyWd6/0I";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("chasti.toml"), text, |_| None)
}

fn error(text: &str) -> ConfigError {
    parse(text).unwrap_err()
}

#[test]
fn the_shipped_config_loads() {
    let shipped = include_str!("../../config/chasti.toml");
    let config = parse(shipped).unwrap();
    assert_eq!(config.gateway.environment, Environment::Sandbox);
    assert_eq!(config.gateway.base_url.scheme(), "http");
}

#[test]
fn a_minimal_config_gets_the_bank_defaults() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.gateway.order_lifetime, Duration::from_secs(1200));
    assert_eq!(c.gateway.request_timeout, Duration::from_secs(30));
    assert_eq!(
        c.gateway.base_url.as_str(),
        "http://127.0.0.1:8907/payment/rest/"
    );
}

#[test]
fn environments_map_to_the_bank_hosts() {
    let test = parse(&GOOD.replace("\"sandbox\"", "\"test\"")).unwrap();
    assert_eq!(test.gateway.base_url.as_str(), TEST_BASE_URL);
    let prod = parse(&GOOD.replace("\"sandbox\"", "\"production\"")).unwrap();
    assert_eq!(prod.gateway.base_url.as_str(), PRODUCTION_BASE_URL);
}

#[test]
fn secrets_come_from_the_environment() {
    let text = GOOD.replace("password = \"sandbox\"\n", "");
    let c = Config::parse(Path::new("c.toml"), &text, |name| {
        (name == ENV_GATEWAY_PASSWORD).then(|| "from-env".to_string())
    })
    .unwrap();
    match c.gateway.credentials {
        Credentials::Password { password, .. } => assert_eq!(password.expose(), "from-env"),
        other => panic!("{other:?}"),
    }
    let c = Config::parse(Path::new("c.toml"), GOOD, |name| {
        (name == ENV_GATEWAY_TOKEN).then(|| "tok".to_string())
    })
    .unwrap();
    assert!(matches!(c.gateway.credentials, Credentials::Token(_)));
}

#[test]
fn each_bad_config_has_its_own_message() {
    let cases: Vec<(String, &str, &str)> = vec![
        (
            GOOD.replace("password =", "pasword ="),
            "gateway.pasword",
            "unknown key `pasword`",
        ),
        (
            GOOD.replace("\"sandbox\"\n", "\"prod\"\n"),
            "gateway.environment",
            "found `prod`; allowed: `sandbox`, `test`, `production`",
        ),
        (
            GOOD.replace(
                "return_url = \"https://shop.example/paid\"",
                "return_url = \"/paid\"",
            ),
            "gateway.return_url",
            "found \"/paid\"; allowed: an absolute",
        ),
        (
            format!("{GOOD}order_lifetime_secs = 5\n"),
            "gateway.order_lifetime_secs",
            "found 5; allowed: 300 to 3600 seconds, the installment product's payment window",
        ),
        (
            format!("{GOOD}order_lifetime_secs = 86400\n"),
            "gateway.order_lifetime_secs",
            "found 86400; allowed: 300 to 3600",
        ),
        (
            format!("{GOOD}[gateway.extra_params]\namount = \"1\"\n"),
            "gateway.extra_params.amount",
            "a parameter chasti sets itself",
        ),
        (
            format!("{GOOD}[gateway.json_params]\ntill = \"9\"\n"),
            "gateway.json_params.till",
            "a parameter chasti sets itself",
        ),
        (
            format!("{GOOD}[gateway.extra_params]\n\"a b\" = \"1\"\n"),
            "gateway.extra_params",
            "1 to 64 Latin letters",
        ),
        (
            format!("{GOOD}request_timeout_secs = 0\n"),
            "gateway.request_timeout_secs",
            "found 0; allowed: 1 to 120",
        ),
        (
            format!("{GOOD}request_timeout_secs = \"ten\"\n"),
            "gateway.request_timeout_secs",
            "found string \"ten\"; allowed: a whole number",
        ),
        (
            format!("{GOOD}base_url = \"http://securepayments.sberbank.ru/payment/rest/\"\n"),
            "gateway.base_url",
            "allowed: https://",
        ),
        (
            format!("{GOOD}extra_ca_files = [\"/nonexistent/ca.pem\"]\n"),
            "gateway.extra_ca_files[0]",
            "not a readable file",
        ),
        (
            GOOD.replace("password = \"sandbox\"\n", ""),
            "gateway.password",
            "CHASTI_GATEWAY_PASSWORD",
        ),
        (
            GOOD.replace("user_name = \"sandbox-api\"\npassword = \"sandbox\"\n", ""),
            "gateway.user_name",
            "found no credentials",
        ),
        (
            GOOD.replace("return_url = \"https://shop.example/paid\"\n", ""),
            "gateway",
            "required key `return_url` is missing",
        ),
        (
            format!("{GOOD}[sandbox]\nlisten = \"everywhere\"\n"),
            "sandbox.listen",
            "found \"everywhere\"",
        ),
        (
            format!("{GOOD}[sandbox]\ncallback_method = \"put\"\n"),
            "sandbox.callback_method",
            "found `put`; allowed: `get`, `post`, `json`",
        ),
        (
            format!("{GOOD}[scanner]\nport = 1\n"),
            "scanner",
            "unknown key `scanner`",
        ),
        (
            format!("{GOOD}[callback]\nlisten = \"0.0.0.0:8081\"\n"),
            "callback.key",
            "callback.allow_unsigned = true",
        ),
        (
            format!("{GOOD}[callback]\nmax_connections = 0\n"),
            "callback.max_connections",
            "found 0; allowed: 1..4096",
        ),
        (
            format!("{GOOD}[[api.tokens]]\nname = \"kassa-1\"\nrole = \"cashier\"\ntoken = \"cashier-token-0123456789\"\ntill = \"1\"\n"),
            "api.tokens[0].till",
            "found a till on a cashier token; allowed: a till only on a screen token",
        ),
        (
            format!("{GOOD}[[api.tokens]]\nname = \"screen-1\"\nrole = \"screen\"\ntoken = \"screen-token-0123456789\"\ntill = \"kassa-1\"\n"),
            "api.tokens[0].till",
            "kassa-1",
        ),
        (
            format!("{GOOD}[[api.people]]\nname = \"Петрова\"\nrole = \"manager\"\npassword_hash = \"hunter22\"\n"),
            "api.people[0].password_hash",
            "not an argon2 hash within a sign-in's cost; allowed: the line `chasti hash-password` prints",
        ),
        (
            format!("{GOOD}[[api.people]]\nname = \"Экран\"\nrole = \"screen\"\npassword_hash = \"{HASH}\"\n"),
            "api.people[0].role",
            "allowed: \"manager\" or \"cashier\"",
        ),
        (
            format!("{GOOD}[[api.people]]\nname = \"Петрова\"\nrole = \"manager\"\npassword_hash = \"{HASH}\"\n[[api.people]]\nname = \"ПЕТРОВА\"\nrole = \"cashier\"\npassword_hash = \"{HASH}\"\n"),
            "api.people[1].name",
            "a second time",
        ),
        (
            format!("{GOOD}[api]\nsession_hours = 0\n"),
            "api.session_hours",
            "found 0; allowed: 1 to 24",
        ),
        (
            format!("{GOOD}[api]\nmax_connections = 100000\n"),
            "api.max_connections",
            "found 100000; allowed: 1..4096",
        ),
        (
            format!("{GOOD}[devices]\ndisplay_idle = [\"Добро пожаловать в наш магазин!\"]\n[[display]]\nname = \"pole\"\nprofile = \"generic-cd5220\"\nport = \"/dev/ttyUSB1\"\n"),
            "devices.display_idle",
            "at most 20 characters",
        ),
        (
            format!("{GOOD}[[printer]]\nname = \"p\"\nprofile = \"xprinter-xp58\"\nport = \"tcp://printer\"\n"),
            "printer[0].port",
            "tcp://HOST:PORT",
        ),
        (
            GOOD.replace("password = \"sandbox\"", "dialect = \"ecom\"\ntoken = \"t0ken\""),
            "gateway.token",
            "the ecom gateway takes no token",
        ),
        (
            GOOD.replace("environment = \"sandbox\"", "environment = \"sandbox\"\ndialect = \"soap\""),
            "gateway.dialect",
            "allowed: `legacy` or `ecom`",
        ),
        (
            format!("{GOOD}[sms]\nprovider = \"kannel\"\nuser = \"u\"\npassword = \"p\"\n"),
            "sms.url",
            "cgi-bin/sendsms",
        ),
        (
            format!("{GOOD}[sms]\nprovider = \"smsc\"\nlogin = \"shop\"\n"),
            "sms.password",
            "CHASTI_SMS_PASSWORD",
        ),
        (
            format!("{GOOD}[sms]\nprovider = \"smsru\"\n"),
            "sms.api_id",
            "CHASTI_SMS_API_ID",
        ),
        (
            format!("{GOOD}[sms]\nprovider = \"webhook\"\nurl = \"https://x.example/\"\nsender = \"Магазин\"\n"),
            "sms.sender",
            "1-11 Latin letters",
        ),
        (
            format!("{GOOD}[sms]\nprovider = \"webhook\"\nurl = \"https://x.example/\"\nper_phone_per_hour = 0\n"),
            "sms.per_phone_per_hour",
            "1 to 1000",
        ),
        (
            format!("{GOOD}[sms]\nprovider = \"telegram\"\n"),
            "sms.provider",
            "`kannel`",
        ),
        ("[gateway\n".to_string(), "(syntax)", ""),
        (
            format!("{GOOD}[callback]\nkey = \"abc\"\n"),
            "callback.key",
            "found a key of 3 characters; allowed: the callback key from the merchant cabinet, 16–256",
        ),
        (
            format!("{GOOD}[callback]\nkey = \"-----BEGIN PUBLIC KEY----- ABCDEFGHIJKLMNOP\"\n"),
            "callback.key",
            "callback.public_key_file",
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    for (text, key, needle) in cases {
        let e = error(&text);
        assert_eq!(e.key, key, "{e}");
        assert!(e.problem.contains(needle), "{e} should contain {needle:?}");
        assert!(e.to_string().starts_with("chasti.toml: "), "{e}");
        assert!(seen.insert(e.to_string()), "message repeated: {e}");
    }
}

#[test]
fn unsigned_callbacks_on_a_reachable_address_need_saying_so() {
    let open = format!("{GOOD}[callback]\nlisten = \"0.0.0.0:8081\"\nallow_unsigned = true\n");
    let config = parse(&open).unwrap();
    assert!(config.callback.unsigned() && config.callback.allow_unsigned);
    let signed = format!(
        "{GOOD}[callback]\nlisten = \"0.0.0.0:8081\"\nkey = \"ooc7slpvc61k4nd1mf8vr00a9b\"\n"
    );
    assert!(!parse(&signed).unwrap().callback.unsigned());
    // Loopback (behind the shop's reverse proxy): allowed unsigned, as before.
    assert!(parse(GOOD).unwrap().callback.unsigned());
}

#[test]
fn errors_never_show_a_secret() {
    let text = GOOD.replace(
        "return_url = \"https://shop.example/paid\"",
        "return_url = 5",
    );
    let e = error(&text).to_string();
    assert!(!e.contains("sandbox\""), "{e}");
}

#[test]
fn a_screen_token_may_name_its_till() {
    let c = parse(&format!(
        "{GOOD}[[api.tokens]]\nname = \"screen-2\"\nrole = \"screen\"\ntoken = \"screen-token-0123456789\"\ntill = \"2\"\n"
    ))
    .unwrap();
    let token = &c.api.tokens[0];
    assert_eq!(token.role, Role::Screen);
    assert_eq!(token.till.as_ref().map(|t| t.as_str()), Some("2"));
}

#[test]
fn replication_takes_its_password_from_the_environment_and_names_each_mistake() {
    let section = |body: &str| format!("{GOOD}\n[replicate]\n{body}");
    let ok = section(
        "postgres_url = \"postgres://store@hq.example:5432/chain?sslmode=verify-full\"\nstore_id = \"msk-001\"",
    );
    let c = Config::parse(Path::new("chasti.toml"), &ok, |name| {
        (name == ENV_REPLICATE_PASSWORD).then(|| "from-the-env".to_string())
    })
    .unwrap();
    let r = c.replicate.unwrap();
    assert_eq!(r.tls, PgTls::Require);
    assert_eq!(r.postgres.get_password(), Some(&b"from-the-env"[..]));
    assert_eq!((r.outbox_max, r.batch), (1_000_000, 500));
    assert!(parse(GOOD).unwrap().replicate.is_none());
    // A password in the URL never shows where people read.
    let inline = parse(&section(
        "postgres_url = \"postgres://store:s3cret@hq.example/chain\"\nstore_id = \"a\"",
    ))
    .unwrap();
    assert!(!inline.replicate.unwrap().url_shown.contains("s3cret"));
    for (body, key, says) in [
        ("store_id = \"a\"", "replicate.postgres_url", "missing"),
        (
            "postgres_url = \"mysql://x@h/db\"\nstore_id = \"a\"",
            "replicate.postgres_url",
            "postgres://",
        ),
        (
            "postgres_url = \"postgres://h/db\"\nstore_id = \"a\"",
            "replicate.postgres_url",
            "no user",
        ),
        (
            "postgres_url = \"postgres://u@h/db?sslmode=maybe\"\nstore_id = \"a\"",
            "replicate.postgres_url",
            "sslmode=maybe",
        ),
        (
            "postgres_url = \"postgres://u@h/db\"",
            "replicate.store_id",
            "missing",
        ),
        (
            "postgres_url = \"postgres://u@h/db\"\nstore_id = \"моя лавка\"",
            "replicate.store_id",
            "A-Z",
        ),
        (
            "postgres_url = \"postgres://u@h/db\"\nstore_id = \"a\"\noutbox_max = 5",
            "replicate.outbox_max",
            "1000",
        ),
        (
            "postgres_url = \"postgres://u@h/db\"\nstore_id = \"a\"\nbatch = 0",
            "replicate.batch",
            "1..10000",
        ),
    ] {
        let e = error(&section(body));
        assert_eq!(e.key, key, "{body}: {e}");
        assert!(e.problem.contains(says), "{body}: {e}");
    }
}
