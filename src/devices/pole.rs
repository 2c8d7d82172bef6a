//! The customer pole display's thread: shows the latest screen, turning frames that do not fit,
//! and goes idle a while after a final screen.

use std::io::Write;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::display::{self, Frame, Screen};
use super::link::PortSettings;
use super::printer::open;
use super::profile::DisplayProfile;

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
        let spawned = std::thread::Builder::new()
            .name("chasti-display".into())
            .spawn(move || display_loop(settings, worker_profile, rx, worker_shown));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "the display's thread could not start");
        }
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
    let mut port: Option<Box<dyn super::link::Link>> = None;
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
        if matches!(
            screen,
            Screen::Paid(_) | Screen::Declined | Screen::Cancelled
        ) && elapsed >= FINAL_SCREEN
        {
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
