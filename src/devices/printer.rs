//! The receipt printer's worker, over any link (serial, USB, network: `link.rs`): one thread
//! a device, fed by a queue (device I/O blocks; a thread keeps it off the async runtime). Before a slip the printer's status is asked (`DLE EOT`); a slip
//! that cannot print now is kept and printed, once and whole, when the printer is back —
//! including after the port disappears and comes back.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::link::{DeviceError, Link, PortSettings};
use tokio::sync::{broadcast, oneshot};

use super::profile::PrinterProfile;

/// Bytes written before waiting for them to leave the port.
const WRITE_CHUNK: usize = 256;
/// How long a status query may take to be answered (the printer answers at once).
const STATUS_TIMEOUT: Duration = Duration::from_millis(500);
/// The least a chunk of a slip may take before the printer counts as gone.
const CHUNK_DEADLINE_MIN: Duration = Duration::from_secs(5);

/// How long `bytes` take on the line (8N1: 10 bits a byte).
fn wire_time(bytes: usize, baud: u32) -> Duration {
    Duration::from_secs_f64(bytes as f64 * 10.0 / f64::from(baud.max(1)))
}

/// What happened to a slip, for listeners (logs, metrics, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrinterEvent {
    Printed {
        label: String,
    },
    Kept {
        label: String,
        error: DeviceError,
    },
    /// No longer wanted when its turn came (e.g. a payment slip whose order was paid meanwhile).
    Dropped {
        label: String,
    },
}

pub(super) fn open(settings: &PortSettings) -> Result<Box<dyn Link>, DeviceError> {
    super::link::open(settings, STATUS_TIMEOUT)
}

fn port_error(settings: &PortSettings, e: std::io::Error) -> DeviceError {
    DeviceError::Port {
        port: settings.path.display().to_string(),
        detail: e.to_string(),
    }
}

/// Asks `DLE EOT 1`, `2` and `4` (real-time: answered even while the printer is stopped).
/// Ok(true) when the paper is near its end (the slip still prints).
fn check_status(port: &mut dyn Link, settings: &PortSettings) -> Result<bool, DeviceError> {
    port.clear_input();
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
    Ok(paper & 0x0C == 0x0C)
}

/// Makes a slip's bytes at the moment it is printed, or says it is no longer wanted.
pub type Render = Box<dyn FnMut() -> Option<Vec<u8>> + Send>;

/// One slip for the printer's thread.
pub struct Job {
    pub label: String,
    pub render: Render,
    /// Runs once the slip is printed or dropped as unwanted (the queue forgets it then).
    pub done: Option<Box<dyn FnOnce() + Send>>,
    reply: Option<oneshot::Sender<Result<(), DeviceError>>>,
}

impl Job {
    pub fn new(label: impl Into<String>, render: Render) -> Job {
        Job {
            label: label.into(),
            render,
            done: None,
            reply: None,
        }
    }

    /// Fixed bytes, always wanted.
    pub fn bytes(label: impl Into<String>, bytes: Vec<u8>) -> Job {
        Job::new(label, Box::new(move || Some(bytes.clone())))
    }

    pub fn on_done(mut self, done: impl FnOnce() + Send + 'static) -> Job {
        self.done = Some(Box::new(done));
        self
    }

    fn finish(&mut self) {
        if let Some(done) = self.done.take() {
            done();
        }
    }
}

/// A receipt printer on a serial port.
#[derive(Clone)]
pub struct Printer {
    tx: mpsc::Sender<Job>,
    events: broadcast::Sender<PrinterEvent>,
    kept: Arc<AtomicUsize>,
    /// The paper-near-end sensor at the last status answer.
    paper_low: Arc<AtomicBool>,
    /// True while the thread is writing a slip to the port.
    busy: tokio::sync::watch::Receiver<bool>,
    pub profile: Arc<PrinterProfile>,
}

impl Printer {
    pub fn spawn(settings: PortSettings, profile: PrinterProfile) -> Printer {
        let (tx, rx) = mpsc::channel::<Job>();
        let (events, _) = broadcast::channel(64);
        let kept = Arc::new(AtomicUsize::new(0));
        let paper_low = Arc::new(AtomicBool::new(false));
        let (busy_tx, busy) = tokio::sync::watch::channel(false);
        let profile = Arc::new(profile);
        let worker = PrinterWorker {
            settings,
            profile: profile.clone(),
            events: events.clone(),
            kept: kept.clone(),
            paper_low: paper_low.clone(),
            busy: busy_tx,
            port: None,
            queue: VecDeque::new(),
        };
        let spawned = std::thread::Builder::new()
            .name("chasti-printer".into())
            .spawn(move || worker.run(rx));
        if let Err(e) = spawned {
            // The sender's receiver is gone with the closure: every print says "stopped".
            tracing::error!(error = %e, "the printer's thread could not start");
        }
        Printer {
            tx,
            events,
            kept,
            paper_low,
            busy,
            profile,
        }
    }

    /// A virtual printer: each slip is written to `dir` as its ESC/POS bytes and as a PNG of
    /// what the profile's printer would print (the demo's receipts, and a till without one).
    pub fn virtual_to(dir: PathBuf, profile: PrinterProfile) -> Printer {
        let (tx, rx) = mpsc::channel::<Job>();
        let (events, _) = broadcast::channel(64);
        let kept = Arc::new(AtomicUsize::new(0));
        let (busy_tx, busy) = tokio::sync::watch::channel(false);
        let profile = Arc::new(profile);
        let (worker_profile, worker_events) = (profile.clone(), events.clone());
        let spawned = std::thread::Builder::new()
            .name("chasti-virtual-printer".into())
            .spawn(move || {
                let mut n = 0u32;
                while let Ok(mut job) = rx.recv() {
                    let Some(bytes) = (job.render)() else {
                        job.finish();
                        let _ = worker_events.send(PrinterEvent::Dropped {
                            label: job.label.clone(),
                        });
                        if let Some(reply) = job.reply.take() {
                            let _ = reply.send(Ok(()));
                        }
                        continue;
                    };
                    let _ = busy_tx.send(true);
                    n += 1;
                    let stem = format!(
                        "{n:03}-{}",
                        job.label
                            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
                    );
                    let result = std::fs::create_dir_all(&dir)
                        .and_then(|_| std::fs::write(dir.join(format!("{stem}.bin")), &bytes))
                        .map_err(|e| DeviceError::Port {
                            port: dir.display().to_string(),
                            detail: e.to_string(),
                        })
                        .and_then(|_| {
                            super::render::render(&worker_profile, &bytes)
                                .and_then(|picture| picture.save(&dir.join(format!("{stem}.png"))))
                                .map_err(|e| DeviceError::Port {
                                    port: dir.display().to_string(),
                                    detail: e.to_string(),
                                })
                        });
                    if result.is_ok() {
                        job.finish();
                        let _ = worker_events.send(PrinterEvent::Printed {
                            label: job.label.clone(),
                        });
                    }
                    let _ = busy_tx.send(false);
                    if let Some(reply) = job.reply.take() {
                        let _ = reply.send(result);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "the virtual printer's thread could not start");
        }
        Printer {
            tx,
            events,
            kept,
            paper_low: Arc::new(AtomicBool::new(false)),
            busy,
            profile,
        }
    }

    /// Queues a slip and waits for its first outcome: printed, or kept (with why).
    pub async fn print(&self, label: &str, bytes: Vec<u8>) -> Result<(), DeviceError> {
        self.submit(Job::bytes(label, bytes)).await
    }

    /// Queues a job now (jobs print in the order they were submitted) and gives a future of its
    /// first outcome: printed (or dropped as unwanted), or kept with why. A kept job is tried
    /// again until it prints or is no longer wanted.
    pub fn submit(
        &self,
        mut job: Job,
    ) -> impl std::future::Future<Output = Result<(), DeviceError>> + Send + 'static {
        let (reply, outcome) = oneshot::channel();
        job.reply = Some(reply);
        let sent = self.tx.send(job).is_ok();
        async move {
            if !sent {
                return Err(DeviceError::Stopped);
            }
            outcome.await.unwrap_or(Err(DeviceError::Stopped))
        }
    }

    /// Waits, up to `limit`, until no slip is being written (a stop lets the current slip end
    /// rather than cut it). True if the printer is idle.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let mut busy = self.busy.clone();
        tokio::time::timeout(limit, busy.wait_for(|b| !*b))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The paper is near its end (the last status said so): slips still print.
    pub fn paper_low(&self) -> bool {
        self.paper_low.load(Ordering::SeqCst)
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
    paper_low: Arc<AtomicBool>,
    busy: tokio::sync::watch::Sender<bool>,
    port: Option<Box<dyn Link>>,
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
            let Some(bytes) = (job.render)() else {
                // Not wanted any more (its order moved on while it waited): never print it.
                job.finish();
                if let Some(reply) = job.reply.take() {
                    let _ = reply.send(Ok(()));
                }
                tracing::info!(slip = %label, "slip no longer wanted; dropped");
                let _ = self.events.send(PrinterEvent::Dropped { label });
                self.queue.pop_front();
                self.kept.store(self.queue.len(), Ordering::SeqCst);
                continue;
            };
            let _ = self.busy.send(true);
            let printed = Self::print_one(
                &mut self.port,
                &self.settings,
                &self.profile,
                &self.paper_low,
                &bytes,
            );
            let _ = self.busy.send(false);
            let waiting = self.queue.len();
            let Some(job) = self.queue.front_mut() else {
                return;
            };
            match printed {
                Ok(()) => {
                    job.finish();
                    self.kept.store(waiting - 1, Ordering::SeqCst);
                    if let Some(reply) = job.reply.take() {
                        let _ = reply.send(Ok(()));
                    }
                    tracing::info!(slip = %label, port = %self.settings.path.display(), "slip printed");
                    let _ = self.events.send(PrinterEvent::Printed { label });
                    self.queue.pop_front();
                }
                Err(error) => {
                    // Counted before anyone is answered: a caller told "kept" sees it kept.
                    self.kept.store(waiting, Ordering::SeqCst);
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
        port: &mut Option<Box<dyn Link>>,
        settings: &PortSettings,
        profile: &PrinterProfile,
        paper_low: &AtomicBool,
        bytes: &[u8],
    ) -> Result<(), DeviceError> {
        let p = match port {
            Some(p) => p,
            None => port.insert(open(settings)?),
        };
        let result = (|| {
            if profile.status && p.reads_answers() {
                let low = check_status(p.as_mut(), settings)?;
                if low && !paper_low.load(Ordering::SeqCst) {
                    tracing::warn!(port = %settings.path.display(), "the printer's paper is near its end");
                }
                paper_low.store(low, Ordering::SeqCst);
            }
            // In chunks, each drained before the next: a port that goes away mid-slip fails
            // the write instead of swallowing the rest into a buffer nobody reads.
            // Paced to the line's speed (8N1: 10 bits a byte): a real UART's drain already
            // takes that long; a USB or pseudo-terminal port that reports done at once would
            // otherwise let the host outrun the device.
            // A chunk may wait on a busy device (a full buffer, flow control): its deadline is
            // what the chunk takes on the wire, many times over, never the short status timeout,
            // so a slow printer is never cut off mid-slip.
            let chunk_time = wire_time(WRITE_CHUNK, settings.baud);
            p.set_timeout((chunk_time * 20).max(CHUNK_DEADLINE_MIN))
                .map_err(|e| port_error(settings, e))?;
            let started = Instant::now();
            let mut sent = 0usize;
            for chunk in bytes.chunks(WRITE_CHUNK) {
                p.write_all(chunk).map_err(|e| port_error(settings, e))?;
                p.flush().map_err(|e| port_error(settings, e))?;
                sent += chunk.len();
                let due = wire_time(sent, settings.baud);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            p.set_timeout(STATUS_TIMEOUT)
                .map_err(|e| port_error(settings, e))?;
            Ok(())
        })();
        if let Err(DeviceError::Port { .. } | DeviceError::NoAnswer) = &result {
            // Reopen next time: the device may have gone and come back under the same path.
            *port = None;
        }
        result
    }
}
