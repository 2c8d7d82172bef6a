//! `chasti render` and `chasti print-test`: see a slip without a printer, or print one.

use std::path::{Path, PathBuf};

use chasti::config::Config;
use chasti::devices::link::PortSettings;
use chasti::devices::printer::Printer;
use chasti::devices::profile::{self, PrinterProfile};
use chasti::devices::slip::{self, Outcome, SlipOrder};
use chasti::domain::PaymentUrl;
use chasti::money::Kopecks;

#[derive(clap::Args)]
pub struct RenderArgs {
    /// A configured printer's name, or a profile name (e.g. epson-tm-t20iii).
    #[arg(long)]
    printer: String,
    /// Which slip.
    #[arg(long, value_enum, default_value = "payment")]
    slip: SlipKind,
    /// Write the ESC/POS bytes here.
    #[arg(long, required_unless_present = "png")]
    out: Option<PathBuf>,
    /// Draw the slip as the printer would print it.
    #[arg(long)]
    png: Option<PathBuf>,
    /// Send the QR as a raster (`GS v 0`) even when the profile has native QR: to test a
    /// printer whose native QR misbehaves, or the raster path itself.
    #[arg(long)]
    raster: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SlipKind {
    Payment,
    Paid,
    Reversal,
    Refund,
    Cancel,
}

/// A realistic sample: the bank's links are about 110 characters.
const SAMPLE_LINK: &str = "https://securepayments.sberbank.ru/payment/merchants/sbersafe_sberid/payment_ru.html?mdOrder=2f5bd8e8-3b3e-7c46-9a8f-4a1e00a8b38b";

pub fn sample_slip(
    profile: &PrinterProfile,
    shop: &str,
    kind: SlipKind,
) -> Result<Vec<u8>, String> {
    let now = chrono::Utc::now();
    let order = SlipOrder {
        shop_name: shop,
        order_number: "S1-1-261123-0001",
        amount: Kopecks::new(149_950).unwrap_or_default(),
        link_expires_at: now + chrono::Duration::minutes(20),
    };
    let link = PaymentUrl::parse(SAMPLE_LINK).map_err(|e| e.to_string())?;
    Ok(match kind {
        SlipKind::Payment => {
            slip::payment_slip(profile, &order, &link).map_err(|e| e.to_string())?
        }
        SlipKind::Paid => slip::outcome_slip(profile, &order, Outcome::Paid, now, None, None),
        SlipKind::Reversal => slip::outcome_slip(
            profile,
            &order,
            Outcome::Reversed,
            now,
            Some("manager (Иванова)"),
            None,
        ),
        SlipKind::Refund => slip::outcome_slip(
            profile,
            &order,
            Outcome::Refunded(Kopecks::new(50_000).unwrap_or_default()),
            now,
            Some("manager (Иванова)"),
            None,
        ),
        SlipKind::Cancel => slip::outcome_slip(
            profile,
            &order,
            Outcome::Cancelled,
            now,
            Some("till-1 (Иванова)"),
            None,
        ),
    })
}

/// A configured printer by name, or else a bundled profile by name.
fn resolve_printer(
    config_path: &Path,
    name: &str,
) -> Result<(PrinterProfile, Option<PortSettings>, String), String> {
    match Config::load(config_path) {
        Ok(config) => match config.devices.printer(name) {
            Some(p) => Ok((
                p.profile.clone(),
                Some(p.port.clone()),
                config.devices.shop_name.clone(),
            )),
            None => profile::printer(name, config.devices.profiles_dir.as_deref())
                .map(|p| (p, None, config.devices.shop_name.clone()))
                .map_err(|e| format!("no printer {name:?} in {} and {e}", config.file.display())),
        },
        Err(config_error) => profile::printer(name, None)
            .map(|p| (p, None, "Магазин".to_string()))
            .map_err(|e| format!("{e} (and the config did not load: {config_error})")),
    }
}

pub fn render(config_path: &Path, args: RenderArgs) -> Result<(), String> {
    let RenderArgs {
        printer: name,
        slip: kind,
        out,
        png,
        raster,
    } = args;
    let (mut profile, _, shop) = resolve_printer(config_path, &name)?;
    if raster {
        profile.native_qr = false;
    }
    let bytes = sample_slip(&profile, &shop, kind)?;
    if let Some(out) = out {
        std::fs::write(&out, &bytes).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        println!(
            "{}: {} bytes for {} ({})",
            out.display(),
            bytes.len(),
            profile.model,
            profile.name
        );
    }
    if let Some(png) = png {
        let picture =
            chasti::devices::render::render(&profile, &bytes).map_err(|e| e.to_string())?;
        picture.save(&png).map_err(|e| e.to_string())?;
        println!(
            "{}: {}x{} dots, as {} prints it",
            png.display(),
            picture.width,
            picture.height,
            profile.model
        );
    }
    Ok(())
}

pub async fn print_test(config_path: &Path, name: &str) -> Result<(), String> {
    let (profile, port, shop) = resolve_printer(config_path, name)?;
    let port = port.ok_or_else(|| format!("{name:?} is a profile, not a configured printer: add a [[printer]] with name = {name:?} and its port to the config"))?;
    let bytes = sample_slip(&profile, &shop, SlipKind::Payment)?;
    let printer = Printer::spawn(port.clone(), profile);
    println!(
        "printing a test slip on {} ({} bytes)…",
        port.path.display(),
        bytes.len()
    );
    match tokio::time::timeout(
        std::time::Duration::from_secs(30),
        printer.print("test slip", bytes),
    )
    .await
    {
        Ok(Ok(())) => {
            println!("printed");
            Ok(())
        }
        // A test slip is not queued: never say it is kept.
        Ok(Err(e)) => Err(format!("тестовый чек не напечатан: {}", e.cause())),
        Err(_) => Err("the printer took longer than 30 s".into()),
    }
}
