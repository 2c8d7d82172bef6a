//! Serial transport: one thread a device, fed by a queue (serial I/O blocks; a thread keeps it
//! off the async runtime). Before a slip the printer's status is asked (`DLE EOT`); a slip
//! that cannot print now is kept and printed, once and whole, when the printer is back —
//! including after the port disappears and comes back.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serialport::{ClearBuffer, FlowControl, SerialPort};
use tokio::sync::{broadcast, oneshot};

use super::display::{self, Frame, Screen};
use super::profile::{DisplayProfile, PrinterProfile};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    #[default]
    None,
    /// RTS/CTS.
    Hardware,
    /// XON/XOFF.
    Software,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSettings {
    /// A device path; a stable symlink (/dev/serial/by-id/…) survives replugging.
    pub path: PathBuf,
    pub baud: u32,
    pub flow: Flow,
    /// How often a kept slip is tried again.
    pub retry: Duration,
}

/// Bytes written before waiting for them to leave the port.
const WRITE_CHUNK: usize = 256;

/// Why a slip did not print now. Russian: the cashier reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("В принтере закончилась бумага. Чек сохранён и напечатается, когда бумагу заменят.")]
    PaperOut,
    #[error("У принтера открыта крышка. Чек сохранён и напечатается, когда крышку закроют.")]
    CoverOpen,
    #[error("Принтер не готов (offline). Чек сохранён и напечатается, когда принтер будет готов.")]
    Offline,
    #[error("Принтер не отвечает. Проверьте питание и кабель; чек сохранён.")]
    NoAnswer,
    #[error("Порт {port} недоступен ({detail}). Чек сохранён и напечатается после подключения.")]
    Port { port: String, detail: String },
    #[error("Принтер остановлен.")]
    Stopped,
}

/// What happened to a slip, for listeners (logs, metrics, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrinterEvent {
    Printed { label: String },
    Kept { label: String, error: DeviceError },
}

fn open(settings: &PortSettings) -> Result<Box<dyn SerialPort>, DeviceError> {
    let flow = match settings.flow {
        Flow::None => FlowControl::None,
        Flow::Hardware => FlowControl::Hardware,
        Flow::Software => FlowControl::Software,
    };
    serialport::new(settings.path.to_string_lossy(), settings.baud)
        .flow_control(flow)
        .timeout(Duration::from_millis(500))
        .open()
        .map_err(|e| DeviceError::Port {
            port: settings.path.display().to_string(),
            detail: e.to_string(),
        })
}

fn port_error(settings: &PortSettings, e: std::io::Error) -> DeviceError {
    DeviceError::Port {
        port: settings.path.display().to_string(),
        detail: e.to_string(),
    }
}

/// Asks `DLE EOT 1`, `2` and `4` (real-time: answered even while the printer is stopped).
fn check_status(port: &mut dyn SerialPort, settings: &PortSettings) -> Result<(), DeviceError> {
    let _ = port.clear(ClearBuffer::Input);
    let mut answers = [0u8; 3];
    for (i, n) in [1u8, 2, 4].into_iter().enumerate() {
        port.write_all(&[0x10, 0x04, n])
            .map_err(|e| port_error(settings, e))?;
        port.flush().map_err(|e| port_error(settings, e))?;
        let mut byte = [0u8; 1];
        match port.read(&mut byte) {
            Ok(1) => answers[i] = byte[0],
            Ok(_) => return Err(DeviceError::NoAnswer),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(DeviceError::NoAnswer)
            }
            Err(e) => return Err(port_error(settings, e)),
        }
    }
    let [printer, cause, paper] = answers;
    if paper & 0x60 == 0x60 || cause & 0x20 != 0 {
        return Err(DeviceError::PaperOut);
    }
    if cause & 0x04 != 0 {
        return Err(DeviceError::CoverOpen);
    }
    if printer & 0x08 != 0 || cause & 0x40 != 0 {
        return Err(DeviceError::Offline);
    }
    Ok(())
}

struct Job {
    label: String,
    bytes: Vec<u8>,
    reply: Option<oneshot::Sender<Result<(), DeviceError>>>,
}

/// A receipt printer on a serial port.
#[derive(Clone)]
pub struct Printer {
    tx: mpsc::Sender<Job>,
    events: broadcast::Sender<PrinterEvent>,
    kept: Arc<AtomicUsize>,
    pub profile: Arc<PrinterProfile>,
}

impl Printer {
    pub fn spawn(settings: PortSettings, profile: PrinterProfile) -> Printer {
        let (tx, rx) = mpsc::channel::<Job>();
        let (events, _) = broadcast::channel(64);
        let kept = Arc::new(AtomicUsize::new(0));
        let profile = Arc::new(profile);
        let worker = PrinterWorker {
            settings,
            profile: profile.clone(),
            events: events.clone(),
            kept: kept.clone(),
            port: None,
            queue: VecDeque::new(),
        };
        std::thread::Builder::new()
            .name("chasti-printer".into())
            .spawn(move || worker.run(rx))
            .expect("a thread can be started");
        Printer {
            tx,
            events,
            kept,
            profile,
        }
    }

    /// A virtual printer: each slip is written to `dir` as its ESC/POS bytes and as a PNG of
    /// what the profile's printer would print (the demo's receipts, and a till without one).
    pub fn virtual_to(dir: PathBuf, profile: PrinterProfile) -> Printer {
        let (tx, rx) = mpsc::channel::<Job>();
        let (events, _) = broadcast::channel(64);
        let kept = Arc::new(AtomicUsize::new(0));
        let profile = Arc::new(profile);
        let (worker_profile, worker_events) = (profile.clone(), events.clone());
        std::thread::Builder::new()
            .name("chasti-virtual-printer".into())
            .spawn(move || {
                let mut n = 0u32;
                while let Ok(mut job) = rx.recv() {
                    n += 1;
                    let stem = format!(
                        "{n:03}-{}",
                        job.label
                            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
                    );
                    let result = std::fs::create_dir_all(&dir)
                        .and_then(|_| std::fs::write(dir.join(format!("{stem}.bin")), &job.bytes))
                        .map_err(|e| DeviceError::Port {
                            port: dir.display().to_string(),
                            detail: e.to_string(),
                        })
                        .and_then(|_| {
                            super::render::render(&worker_profile, &job.bytes)
                                .and_then(|png| {
                                    png.save(dir.join(format!("{stem}.png")))
                                        .map_err(|e| e.to_string())
                                })
                                .map_err(|detail| DeviceError::Port {
                                    port: dir.display().to_string(),
                                    detail,
                                })
                        });
                    if result.is_ok() {
                        let _ = worker_events.send(PrinterEvent::Printed {
                            label: job.label.clone(),
                        });
                    }
                    if let Some(reply) = job.reply.take() {
                        let _ = reply.send(result);
                    }
                }
            })
            .expect("a thread can be started");
        Printer {
            tx,
            events,
            kept,
            profile,
        }
    }

    /// Queues a slip and waits for its first outcome: printed, or kept (with why).
    pub async fn print(&self, label: &str, bytes: Vec<u8>) -> Result<(), DeviceError> {
        let (reply, outcome) = oneshot::channel();
        let job = Job {
            label: label.to_string(),
            bytes,
            reply: Some(reply),
        };
        self.tx.send(job).map_err(|_| DeviceError::Stopped)?;
        outcome.await.unwrap_or(Err(DeviceError::Stopped))
    }

    pub fn subscribe(&self) -> broadcast::Receiver<PrinterEvent> {
        self.events.subscribe()
    }

    /// Slips waiting to be printed.
    pub fn kept(&self) -> usize {
        self.kept.load(Ordering::SeqCst)
    }
}

struct PrinterWorker {
    settings: PortSettings,
    profile: Arc<PrinterProfile>,
    events: broadcast::Sender<PrinterEvent>,
    kept: Arc<AtomicUsize>,
    port: Option<Box<dyn SerialPort>>,
    queue: VecDeque<Job>,
}

impl PrinterWorker {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        loop {
            let next = if self.queue.is_empty() {
                rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected)
            } else {
                rx.recv_timeout(self.settings.retry)
            };
            match next {
                Ok(job) => self.queue.push_back(job),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            // Take whatever else is waiting, then print in order.
            while let Ok(job) = rx.try_recv() {
                self.queue.push_back(job);
            }
            self.print_queue();
            self.kept.store(self.queue.len(), Ordering::SeqCst);
        }
    }

    fn print_queue(&mut self) {
        while let Some(job) = self.queue.front_mut() {
            let label = job.label.clone();
            match Self::print_one(&mut self.port, &self.settings, &self.profile, &job.bytes) {
                Ok(()) => {
                    self.kept.store(self.queue.len() - 1, Ordering::SeqCst);
                    let job = self.queue.front_mut().expect("the loop holds a job");
                    if let Some(reply) = job.reply.take() {
                        let _ = reply.send(Ok(()));
                    }
                    tracing::info!(slip = %label, port = %self.settings.path.display(), "slip printed");
                    let _ = self.events.send(PrinterEvent::Printed { label });
                    self.queue.pop_front();
                }
                Err(error) => {
                    // Counted before anyone is answered: a caller told "kept" sees it kept.
                    self.kept.store(self.queue.len(), Ordering::SeqCst);
                    let job = self.queue.front_mut().expect("the loop holds a job");
                    let behind = error.clone();
                    let first = job.reply.is_some();
                    if let Some(reply) = job.reply.take() {
                        let _ = reply.send(Err(error.clone()));
                    }
                    if first {
                        tracing::warn!(slip = %label, %error, "slip kept for printing later");
                        let _ = self.events.send(PrinterEvent::Kept { label, error });
                    }
                    // Later slips wait behind it: the order of slips is kept.
                    for waiting in self.queue.iter_mut().skip(1) {
                        if let Some(reply) = waiting.reply.take() {
                            let _ = reply.send(Err(behind.clone()));
                        }
                    }
                    return;
                }
            }
        }
    }

    fn print_one(
        port: &mut Option<Box<dyn SerialPort>>,
        settings: &PortSettings,
        profile: &PrinterProfile,
        bytes: &[u8],
    ) -> Result<(), DeviceError> {
        if port.is_none() {
            *port = Some(open(settings)?);
        }
        let p = port.as_mut().expect("opened above");
        let result = (|| {
            if profile.status {
                check_status(p.as_mut(), settings)?;
            }
            // In chunks, each drained before the next: a port that goes away mid-slip fails
            // the write instead of swallowing the rest into a buffer nobody reads.
            // Paced to the line's speed (8N1: 10 bits a byte): a real UART's drain already
            // takes that long; a USB or pseudo-terminal port that reports done at once would
            // otherwise let the host outrun the device.
            let started = Instant::now();
            let mut sent = 0usize;
            for chunk in bytes.chunks(WRITE_CHUNK) {
                p.write_all(chunk).map_err(|e| port_error(settings, e))?;
                p.flush().map_err(|e| port_error(settings, e))?;
                sent += chunk.len();
                let due = Duration::from_secs_f64(sent as f64 * 10.0 / settings.baud.max(1) as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            Ok(())
        })();
        if let Err(DeviceError::Port { .. } | DeviceError::NoAnswer) = &result {
            // Reopen next time: the device may have gone and come back under the same path.
            *port = None;
        }
        result
    }
}

/// A customer display on a serial port: shows the latest screen, turning frames that do not
/// fit, and goes idle a while after a final screen.
#[derive(Clone)]
pub struct Display {
    tx: mpsc::Sender<Screen>,
    pub profile: Arc<DisplayProfile>,
    shown: Arc<Mutex<Option<Frame>>>,
}

/// How long a frame stays before the next one of the same screen.
pub const FRAME_TURN: Duration = Duration::from_secs(3);
/// How long «Оплачено» or «Оплата отклонена» stays before the idle screen.
pub const FINAL_SCREEN: Duration = Duration::from_secs(15);

impl Display {
    pub fn spawn(settings: PortSettings, profile: DisplayProfile) -> Display {
        let (tx, rx) = mpsc::channel::<Screen>();
        let profile = Arc::new(profile);
        let shown = Arc::new(Mutex::new(None));
        let worker_profile = profile.clone();
        let worker_shown = shown.clone();
        std::thread::Builder::new()
            .name("chasti-display".into())
            .spawn(move || display_loop(settings, worker_profile, rx, worker_shown))
            .expect("a thread can be started");
        Display { tx, profile, shown }
    }

    pub fn show(&self, screen: Screen) {
        let _ = self.tx.send(screen);
    }

    /// The frame last written to the device.
    pub fn shown(&self) -> Option<Frame> {
        self.shown.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn display_loop(
    settings: PortSettings,
    profile: Arc<DisplayProfile>,
    rx: mpsc::Receiver<Screen>,
    shown: Arc<Mutex<Option<Frame>>>,
) {
    let mut port: Option<Box<dyn SerialPort>> = None;
    let mut screen = Screen::Idle;
    let mut since = Instant::now();
    let mut written: Option<Frame> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(next) => {
                screen = next;
                since = Instant::now();
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let elapsed = since.elapsed();
        if matches!(screen, Screen::Paid(_) | Screen::Declined) && elapsed >= FINAL_SCREEN {
            screen = Screen::Idle;
            since = Instant::now();
        }
        let frames = display::frames(&profile, screen);
        let turn = (elapsed.as_millis() / FRAME_TURN.as_millis()) as usize % frames.len();
        let frame = frames[turn].clone();
        if written.as_ref() == Some(&frame) && port.is_some() {
            continue;
        }
        if port.is_none() {
            match open(&settings) {
                Ok(mut p) => {
                    if p.write_all(&display::init_bytes(&profile)).is_err() {
                        continue;
                    }
                    port = Some(p);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "display port not available");
                    continue;
                }
            }
        }
        let bytes = display::frame_bytes(&profile, &frame);
        let ok = port
            .as_mut()
            .map(|p| p.write_all(&bytes).and_then(|_| p.flush()).is_ok())
            .unwrap_or(false);
        if ok {
            *shown.lock().unwrap_or_else(|p| p.into_inner()) = Some(frame.clone());
            written = Some(frame);
        } else {
            port = None;
            written = None;
        }
    }
}
