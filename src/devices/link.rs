//! How a device is reached, from its `port`: a serial TTY (`/dev/ttyUSB0`,
//! `/dev/serial/by-id/…`, `COM3` on Windows), the USB printer class (`/dev/usb/lp0`: a
//! character device, not a TTY), or the network (`tcp://HOST:9100`, the raw port). Each is a
//! [`Link`]: bytes both ways, a deadline, and whether the device's answers can be read.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serialport::{ClearBuffer, FlowControl, SerialPort};

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    #[default]
    None,
    /// RTS/CTS.
    Hardware,
    /// XON/XOFF.
    Software,
    /// DTR/DSR (Epson's serial default): written while the printer holds DSR.
    #[serde(rename = "dtr_dsr")]
    DtrDsr,
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

impl DeviceError {
    /// The cause alone, without the promise that the slip is kept (a test slip is not).
    pub fn cause(&self) -> String {
        match self {
            DeviceError::PaperOut => "в принтере закончилась бумага".into(),
            DeviceError::CoverOpen => "у принтера открыта крышка".into(),
            DeviceError::Offline => "принтер не готов (offline)".into(),
            DeviceError::NoAnswer => "принтер не отвечает; проверьте питание и кабель".into(),
            DeviceError::Port { port, detail } => format!("порт {port} недоступен: {detail}"),
            DeviceError::Stopped => "принтер остановлен".into(),
        }
    }
}

/// The transport a `port` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Serial,
    /// The kernel's USB printer class driver (usblp).
    UsbPrinter,
    /// Raw TCP (JetDirect, port 9100): `host:port`.
    Network(String),
}

impl Transport {
    pub fn of(port: &Path) -> Transport {
        let text = port.to_string_lossy();
        if let Some(address) = text.strip_prefix("tcp://") {
            return Transport::Network(address.trim_end_matches('/').to_string());
        }
        if text.starts_with("/dev/usb/lp") || text.starts_with("/dev/lp") || is_fifo(port) {
            return Transport::UsbPrinter;
        }
        Transport::Serial
    }

    /// What the config says about it: `None` when the port is usable as written.
    pub fn problem(port: &Path) -> Option<String> {
        match Transport::of(port) {
            Transport::Network(address) => match address.rsplit_once(':') {
                Some((host, p)) if !host.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0) => {
                    None
                }
                _ => Some(format!(
                    "found tcp://{address}; allowed: tcp://HOST:PORT, such as tcp://192.168.1.50:9100"
                )),
            },
            _ if port.as_os_str().is_empty() => Some(
                "found an empty port; allowed: /dev/ttyUSB0, /dev/serial/by-id/…, /dev/usb/lp0, tcp://HOST:9100 or COM3".into(),
            ),
            _ => None,
        }
    }
}

/// A named pipe is written like the USB printer class's device (a stream of bytes, no TTY
/// settings, no answers): a print spooler's pipe, and the tests' stand-in for `/dev/usb/lp0`.
fn is_fifo(port: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(port).is_ok_and(|m| m.file_type().is_fifo())
    }
    #[cfg(not(unix))]
    {
        let _ = port;
        false
    }
}

/// An open connection to a device.
pub trait Link: Read + Write + Send {
    /// How long a read or a write may wait.
    fn set_timeout(&mut self, timeout: Duration) -> std::io::Result<()>;
    /// Forgets bytes the device sent earlier (before asking it something).
    fn clear_input(&mut self);
    /// Whether the device's answers (`DLE EOT`) can be read on this link.
    fn reads_answers(&self) -> bool;
}

/// How long a network printer may take to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Opens the device `settings` names, with `timeout` for reads and writes.
pub fn open(settings: &PortSettings, timeout: Duration) -> Result<Box<dyn Link>, DeviceError> {
    let failed = |detail: String| DeviceError::Port {
        port: settings.path.display().to_string(),
        detail,
    };
    // A path that names a regular file (a typo, or a file left where a device belongs) would
    // fail deep in the serial driver as «Not a typewriter»: say what it is.
    if std::fs::metadata(&settings.path).is_ok_and(|m| m.is_file()) {
        return Err(failed(
            "это обычный файл, а не устройство: укажите порт принтера (например /dev/ttyUSB0, /dev/serial/by-id/… или /dev/usb/lp0)".into(),
        ));
    }
    match Transport::of(&settings.path) {
        Transport::Serial => {
            let flow = match settings.flow {
                Flow::None | Flow::DtrDsr => FlowControl::None,
                Flow::Hardware => FlowControl::Hardware,
                Flow::Software => FlowControl::Software,
            };
            let mut port = serialport::new(settings.path.to_string_lossy(), settings.baud)
                .flow_control(flow)
                .timeout(timeout)
                .open()
                .map_err(|e| failed(e.to_string()))?;
            if settings.flow == Flow::DtrDsr {
                // The host says it is ready; the printer answers on DSR before each chunk.
                let _ = port.write_data_terminal_ready(true);
            }
            Ok(Box::new(SerialLink {
                port,
                dsr: settings.flow == Flow::DtrDsr,
                timeout,
            }))
        }
        Transport::UsbPrinter => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&settings.path)
                .map_err(|e| failed(e.to_string()))?;
            Ok(Box::new(UsbPrinterLink { file }))
        }
        Transport::Network(address) => {
            let addresses: Vec<SocketAddr> = address
                .to_socket_addrs()
                .map_err(|e| failed(format!("cannot resolve {address}: {e}")))?
                .collect();
            let mut last = format!("{address} resolves to no address");
            for a in addresses {
                match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        let mut link = NetworkLink { stream };
                        link.set_timeout(timeout)
                            .map_err(|e| failed(e.to_string()))?;
                        return Ok(Box::new(link));
                    }
                    Err(e) => last = format!("{a}: {e}"),
                }
            }
            Err(failed(last))
        }
    }
}

struct SerialLink {
    port: Box<dyn SerialPort>,
    /// DTR/DSR flow control: write only while the printer holds DSR.
    dsr: bool,
    timeout: Duration,
}

impl Read for SerialLink {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.port.read(buf)
    }
}

impl Write for SerialLink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.dsr {
            let started = Instant::now();
            // A port whose modem lines cannot be read (a USB adapter without them, a
            // pseudo-terminal) is written to as if DSR were up.
            while let Ok(false) = self.port.read_data_set_ready() {
                if started.elapsed() >= self.timeout {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the printer did not raise DSR",
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.port.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.port.flush()
    }
}

impl Link for SerialLink {
    fn set_timeout(&mut self, timeout: Duration) -> std::io::Result<()> {
        self.timeout = timeout;
        self.port.set_timeout(timeout).map_err(Into::into)
    }
    fn clear_input(&mut self) {
        let _ = self.port.clear(ClearBuffer::Input);
    }
    fn reads_answers(&self) -> bool {
        true
    }
}

/// `/dev/usb/lp*`: written like a file. Its reads block with no deadline (usblp has none), so
/// status is not asked here; `doctor` says so.
struct UsbPrinterLink {
    file: std::fs::File,
}

impl Read for UsbPrinterLink {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "status is not read over the USB printer class",
        ))
    }
}

impl Write for UsbPrinterLink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Link for UsbPrinterLink {
    fn set_timeout(&mut self, _: Duration) -> std::io::Result<()> {
        Ok(())
    }
    fn clear_input(&mut self) {}
    fn reads_answers(&self) -> bool {
        false
    }
}

struct NetworkLink {
    stream: TcpStream,
}

impl Read for NetworkLink {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.stream.read(buf) {
            // The printer closed the connection: gone, to be reconnected.
            Ok(0) if !buf.is_empty() => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "the printer closed the connection",
            )),
            // A socket read timeout is WouldBlock on Linux; the caller expects TimedOut.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                Err(std::io::Error::new(std::io::ErrorKind::TimedOut, e))
            }
            other => other,
        }
    }
}

impl Write for NetworkLink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

impl Link for NetworkLink {
    fn set_timeout(&mut self, timeout: Duration) -> std::io::Result<()> {
        let timeout = Some(timeout.max(Duration::from_millis(1)));
        self.stream.set_read_timeout(timeout)?;
        self.stream.set_write_timeout(timeout)
    }
    fn clear_input(&mut self) {
        let mut sink = [0u8; 256];
        if self.stream.set_nonblocking(true).is_ok() {
            while matches!(self.stream.read(&mut sink), Ok(n) if n > 0) {}
            let _ = self.stream.set_nonblocking(false);
        }
    }
    fn reads_answers(&self) -> bool {
        true
    }
}
