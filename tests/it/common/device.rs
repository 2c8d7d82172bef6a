//! A fake printer or display on a real pseudo-terminal.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serialport::{SerialPort, TTYPort};

/// A printer or display played on the master side of a pty.
pub struct FakeDevice {
    captured: Arc<Mutex<Vec<u8>>>,
    pub status: Arc<AtomicU8>,
    /// The answer to `DLE EOT 4` (the paper sensors) when not 0; else `status`.
    pub paper: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    /// Close the master (the device vanishes) after this many bytes; 0 = never.
    pub hang_up_after: Arc<Mutex<usize>>,
    thread: Option<std::thread::JoinHandle<()>>,
    slave: TTYPort,
}

impl FakeDevice {
    pub fn start(status: u8) -> FakeDevice {
        let (mut master, slave) = TTYPort::pair().expect("a pseudo-terminal pair");
        master.set_timeout(Duration::from_millis(20)).unwrap();
        let captured = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU8::new(status));
        let paper = Arc::new(AtomicU8::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let hang_up_after = Arc::new(Mutex::new(0usize));
        let (c, s, st, h, pa) = (
            captured.clone(),
            status.clone(),
            stop.clone(),
            hang_up_after.clone(),
            paper.clone(),
        );
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let mut window: Vec<u8> = Vec::new();
            while !st.load(Ordering::SeqCst) {
                let n = match master.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                    Err(_) => break,
                };
                let mut got = c.lock().unwrap();
                got.extend_from_slice(&buf[..n]);
                // Answer DLE EOT n at once, as a printer does in real time.
                for &b in &buf[..n] {
                    window.push(b);
                    if window.len() > 3 {
                        window.remove(0);
                    }
                    if window.len() == 3 && window[0] == 0x10 && window[1] == 0x04 {
                        let sensors = pa.load(Ordering::SeqCst);
                        let answer = if window[2] == 4 && sensors != 0 {
                            sensors
                        } else {
                            s.load(Ordering::SeqCst)
                        };
                        let _ = master.write_all(&[answer]);
                        window.clear();
                    }
                }
                let limit = *h.lock().unwrap();
                if limit > 0 && got.len() >= limit {
                    break; // the master is dropped: the device is gone
                }
            }
        });
        FakeDevice {
            captured,
            status,
            paper,
            stop,
            hang_up_after,
            thread: Some(thread),
            slave,
        }
    }

    pub fn path(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(self.slave.name().expect("a pty has a name"))
    }

    pub fn captured(&self) -> Vec<u8> {
        self.captured.lock().unwrap().clone()
    }

    /// Waits (bounded) until what the device received satisfies `check`.
    pub fn wait_until(&self, check: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        for _ in 0..1000 {
            let got = self.captured();
            if check(&got) {
                return got;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "the device never received what was expected: {} bytes",
            self.captured().len()
        );
    }

    pub fn wait_for(&self, n: usize) -> Vec<u8> {
        for _ in 0..400 {
            let got = self.captured();
            if got.len() >= n {
                return got;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("expected {n} bytes, got {}", self.captured().len());
    }
}

impl Drop for FakeDevice {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn settings(path: &std::path::Path) -> chasti::devices::link::PortSettings {
    chasti::devices::link::PortSettings {
        path: path.to_path_buf(),
        baud: 115_200,
        flow: chasti::devices::link::Flow::None,
        retry: Duration::from_millis(100),
    }
}
