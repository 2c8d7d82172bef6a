//! A printer on each transport a shop uses, each played by a fake device on this machine: a
//! TCP printer on 127.0.0.1 (raw port 9100's protocol: bytes in, status bytes out) and a named
//! pipe for the USB printer class's `/dev/usb/lp0` (bytes in, no answers). The serial TTY is
//! covered by the pseudo-terminal tests in devices.rs.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chasti::devices::codepage::CodePage;
use chasti::devices::escpos::{self, Element};
use chasti::devices::link::{DeviceError, PortSettings};
use chasti::devices::printer::Printer;
use chasti::devices::{profile, slip};
use chasti::domain::PaymentUrl;
use chasti::money::Kopecks;

const LINK: &str = "https://securepayments.sberbank.ru/payment/merchants/sbersafe/payment_ru.html?mdOrder=6e1b1d5e-6d0f-7a4b-8e5e-0d9c2f3b4a10";

fn slip_for(profile: &profile::PrinterProfile) -> Vec<u8> {
    let order = slip::SlipOrder {
        shop_name: "Магазин",
        order_number: "S1-1-261123-0007",
        amount: Kopecks::new(150_000).unwrap(),
        link_expires_at: chrono::Utc::now() + chrono::Duration::minutes(20),
    };
    slip::payment_slip(profile, &order, &PaymentUrl::parse(LINK).unwrap()).unwrap()
}

/// The link a printed slip's QR carries (native `GS ( k` data, or a raster decoded).
fn link_in(bytes: &[u8]) -> String {
    let elements = escpos::parse(bytes, CodePage::Cp866).expect("the slip parses");
    for e in elements {
        match e {
            Element::NativeQr { data, .. } => return String::from_utf8(data).unwrap(),
            Element::Raster {
                mode,
                width_bytes,
                height,
                data,
            } => return crate::devices::decode_raster(mode, width_bytes, height, &data),
            _ => {}
        }
    }
    panic!("no QR on the slip")
}

fn settings(port: &str) -> PortSettings {
    PortSettings {
        path: port.into(),
        baud: 115_200,
        flow: Default::default(),
        retry: Duration::from_millis(100),
    }
}

/// A network printer: answers `DLE EOT n` with `status`, keeps what it is sent, and hangs up
/// after its first connection's first slip when `hang_up` is set.
struct TcpPrinter {
    port: u16,
    captured: Arc<Mutex<Vec<u8>>>,
    status: Arc<AtomicU8>,
    connections: Arc<AtomicUsize>,
}

impl TcpPrinter {
    fn start(status: u8, hang_up_after: Option<usize>) -> TcpPrinter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let captured = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU8::new(status));
        let connections = Arc::new(AtomicUsize::new(0));
        let (c, s, n) = (captured.clone(), status.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let first = n.fetch_add(1, Ordering::SeqCst) == 0;
                let (c, s) = (c.clone(), s.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    let mut window = Vec::new();
                    let mut got = 0usize;
                    while let Ok(k) = stream.read(&mut buf) {
                        if k == 0 {
                            return;
                        }
                        c.lock().unwrap().extend_from_slice(&buf[..k]);
                        got += k;
                        for &b in &buf[..k] {
                            window.push(b);
                            if window.len() > 3 {
                                window.remove(0);
                            }
                            if window.len() == 3 && window[0] == 0x10 && window[1] == 0x04 {
                                let _ = stream.write_all(&[s.load(Ordering::SeqCst)]);
                                window.clear();
                            }
                        }
                        if first && hang_up_after.is_some_and(|limit| got >= limit) {
                            return; // drops the connection
                        }
                    }
                });
            }
        });
        TcpPrinter {
            port,
            captured,
            status,
            connections,
        }
    }

    fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    fn captured(&self) -> Vec<u8> {
        self.captured.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn a_network_printer_answers_status_and_prints_a_slip_that_decodes_to_the_link() {
    let device = TcpPrinter::start(0x72, None); // paper out first
    let profile = profile::printer("epson-tm-t20iii", None).unwrap();
    let printer = Printer::spawn(settings(&device.url()), profile.clone());
    let bytes = slip_for(&profile);
    let err = printer.print("slip", bytes.clone()).await.unwrap_err();
    assert_eq!(err, DeviceError::PaperOut, "the status came back over TCP");
    assert_eq!(printer.kept(), 1);

    device.status.store(0x12, Ordering::SeqCst);
    let printed = wait_for(|| {
        let got = device.captured();
        find(&got, &bytes).then_some(got)
    })
    .await;
    let at = printed
        .windows(bytes.len())
        .position(|w| w == bytes.as_slice())
        .unwrap();
    assert_eq!(link_in(&printed[at..at + bytes.len()]), LINK);
}

#[tokio::test]
async fn a_network_printer_that_drops_the_connection_gets_the_slip_whole_after_reconnecting() {
    let profile = profile::printer("xprinter-xp58", None).unwrap();
    let bytes = slip_for(&profile);
    // The first connection ends halfway through the slip.
    let device = TcpPrinter::start(0x12, Some(bytes.len() / 2));
    let printer = Printer::spawn(settings(&device.url()), profile.clone());
    let _ = printer.print("slip", bytes.clone()).await;
    let got = wait_for(|| find(&device.captured(), &bytes).then(|| device.captured())).await;
    assert!(
        device.connections.load(Ordering::SeqCst) >= 2,
        "it reconnected"
    );
    let at = got
        .windows(bytes.len())
        .position(|w| w == bytes.as_slice())
        .unwrap();
    assert_eq!(link_in(&got[at..at + bytes.len()]), LINK);
}

#[tokio::test]
async fn a_usb_class_printer_is_written_without_asking_status() {
    let dir = tempfile::tempdir().unwrap();
    let pipe = dir.path().join("lp0");
    let made = std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .unwrap();
    assert!(made.success());
    let reader = {
        let pipe = pipe.clone();
        std::thread::spawn(move || {
            let mut all = Vec::new();
            std::fs::File::open(pipe)
                .unwrap()
                .read_to_end(&mut all)
                .unwrap();
            all
        })
    };
    let profile = profile::printer("epson-tm-t20iii", None).unwrap();
    assert!(
        profile.status,
        "a profile that asks status on serial and TCP"
    );
    let printer = Printer::spawn(settings(&pipe.display().to_string()), profile.clone());
    let bytes = slip_for(&profile);
    printer.print("slip", bytes.clone()).await.unwrap();
    drop(printer); // closes the pipe: the reader sees the end
    let got = reader.join().unwrap();
    assert!(
        !got.windows(2).any(|w| w == [0x10, 0x04]),
        "no status asked on a link that cannot answer"
    );
    assert_eq!(got, bytes);
    assert_eq!(link_in(&got), LINK);
}

#[test]
fn ports_name_their_transport_and_bad_ones_are_refused() {
    use chasti::devices::link::Transport;
    use std::path::Path;
    assert_eq!(Transport::of(Path::new("/dev/ttyUSB0")), Transport::Serial);
    assert_eq!(Transport::of(Path::new("COM3")), Transport::Serial);
    assert_eq!(
        Transport::of(Path::new("/dev/usb/lp0")),
        Transport::UsbPrinter
    );
    assert_eq!(
        Transport::of(Path::new("tcp://192.168.1.50:9100")),
        Transport::Network("192.168.1.50:9100".into())
    );
    assert!(Transport::problem(Path::new("tcp://192.168.1.50")).is_some());
    assert!(Transport::problem(Path::new("tcp://:9100")).is_some());
    assert!(Transport::problem(Path::new("COM3")).is_none());
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn wait_for<T>(mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the printer never got the slip"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
