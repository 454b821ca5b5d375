//! A raw WebSocket client on a plain socket: the frames on the wire are exactly the
//! ones a test writes.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::io::AsRawFd;
use std::time::{Duration, Instant};

use super::net::addr;

/// The masking key of every client frame.
pub const KEY: [u8; 4] = [0x5a, 0x13, 0xc7, 0x81];

/// An opening handshake request, with `Sec-WebSocket-Protocol: protocol` when given.
pub fn upgrade_request(protocol: Option<&str>) -> String {
    let mut r = String::from(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    );
    if let Some(p) = protocol {
        r.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    r.push_str("\r\n");
    r
}

/// A frame as a client sends it: header byte `b0` as given, masked with KEY unless
/// `masked` is false; `len` overrides the announced length.
pub fn frame_raw(b0: u8, payload: &[u8], masked: bool, len: Option<u64>) -> Vec<u8> {
    let n = len.unwrap_or(payload.len() as u64);
    let m = if masked { 0x80 } else { 0 };
    let mut f = vec![b0];
    match n {
        0..=125 => f.push(m | n as u8),
        126..=0xffff => {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            f.push(m | 127);
            f.extend_from_slice(&n.to_be_bytes());
        }
    }
    if masked {
        f.extend_from_slice(&KEY);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

/// A masked frame with FIN as given and no RSV bits.
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_raw(if fin { 0x80 } else { 0 } | opcode, payload, true, None)
}

pub fn close_frame(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    frame(true, 8, &p)
}

/// SO_LINGER {on, 0}: closing the socket sends RST instead of FIN.
pub fn set_rst_on_close(s: &TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a correctly sized linger struct.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
}

/// Closes `s` with a RST.
pub fn reset(s: TcpStream) {
    set_rst_on_close(&s);
    drop(s);
}

/// A raw WebSocket client connection: the socket plus bytes read but not yet parsed.
pub struct Peer {
    pub s: TcpStream,
    pub buf: Vec<u8>,
}

/// What reading until the end found.
#[derive(Debug, Default)]
pub struct Ending {
    pub frames: Vec<(u8, Vec<u8>)>,
    pub eof: bool,
    pub reset: bool,
    pub timed_out: bool,
}

impl Ending {
    /// The code of the first close frame.
    pub fn close_code(&self) -> Option<u16> {
        self.frames
            .iter()
            .find(|(b0, _)| b0 & 0x0f == 8)
            .and_then(|(_, p)| (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]])))
    }
}

impl Peer {
    /// Connects to 127.0.0.1:`port` (10 s read and write timeouts, no Nagle).
    pub fn connect(port: u16) -> Peer {
        let s = TcpStream::connect_timeout(&addr(port), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to {port}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        Peer { s, buf: Vec::new() }
    }

    /// Connects and completes the opening handshake (101 checked).
    pub fn upgrade(port: u16, protocol: Option<&str>) -> Peer {
        let mut p = Peer::connect(port);
        p.s.write_all(upgrade_request(protocol).as_bytes())
            .expect("send upgrade");
        let head = p.read_head().expect("101 head");
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "expected 101, got {head:?}"
        );
        p
    }

    /// Reads up to and including the blank line of an HTTP head.
    pub fn read_head(&mut self) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..i + 4).collect();
                return Ok(String::from_utf8_lossy(&head).into_owned());
            }
            if Instant::now() > deadline {
                return Err("no complete head within 10 s".into());
            }
            let mut b = [0u8; 4096];
            match self.s.read(&mut b) {
                Ok(0) => return Err(format!("EOF after {:?}", self.buf)),
                Ok(n) => self.buf.extend_from_slice(&b[..n]),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// Parses one server frame from `buf` if complete.
    pub fn take_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        assert_eq!(b[1] & 0x80, 0, "server frame is masked");
        let (len, hl) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().unwrap()), 10),
            126 | 127 => return None,
            n => (u64::from(n), 2),
        };
        let end = hl + len as usize;
        if b.len() < end {
            return None;
        }
        let f = (b[0], b[hl..end].to_vec());
        self.buf.drain(..end);
        Some(f)
    }

    /// Reads one whole frame (bounded).
    pub fn read_frame(&mut self) -> Result<(u8, Vec<u8>), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(f) = self.take_frame() {
                return Ok(f);
            }
            if Instant::now() > deadline {
                return Err("no frame within 10 s".into());
            }
            let mut b = vec![0u8; 64 * 1024];
            match self.s.read(&mut b) {
                Ok(0) => return Err("EOF".into()),
                Ok(n) => self.buf.extend_from_slice(&b[..n]),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// Sends `text` as one text frame and returns the text frame that comes back.
    pub fn echo_text(&mut self, text: &str) -> Result<String, String> {
        self.s
            .write_all(&frame(true, 1, text.as_bytes()))
            .map_err(|e| format!("send: {e}"))?;
        match self.read_frame()? {
            (0x81, payload) => Ok(String::from_utf8_lossy(&payload).into_owned()),
            (b0, _) => Err(format!("unexpected frame {b0:#04x}")),
        }
    }

    /// Reads frames until EOF, a reset or the deadline.
    pub fn read_to_end(&mut self, within: Duration) -> Ending {
        self.read_until_closed(within, true)
    }

    /// Reads until EOF, a reset or the deadline; parses frames out of what arrives when
    /// `frames` is set, else leaves the raw bytes in `buf`.
    pub fn read_until_closed(&mut self, within: Duration, frames: bool) -> Ending {
        let deadline = Instant::now() + within;
        let mut end = Ending::default();
        self.s
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        loop {
            if frames {
                while let Some(f) = self.take_frame() {
                    end.frames.push(f);
                }
            }
            if Instant::now() > deadline {
                end.timed_out = true;
                return end;
            }
            let mut b = vec![0u8; 64 * 1024];
            match self.s.read(&mut b) {
                Ok(0) => {
                    end.eof = true;
                    return end;
                }
                Ok(n) => self.buf.extend_from_slice(&b[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    end.reset = true;
                    return end;
                }
            }
        }
    }
}

/// One echo round trip on a fresh connection, then a clean close.
pub fn echo_ok(port: u16, tag: &str) -> Result<(), String> {
    let mut p = Peer::connect(port);
    p.s.write_all(upgrade_request(None).as_bytes())
        .map_err(|e| format!("{tag}: send upgrade: {e}"))?;
    let head = p.read_head().map_err(|e| format!("{tag}: {e}"))?;
    if !head.starts_with("HTTP/1.1 101") {
        return Err(format!("{tag}: expected 101, got {head:?}"));
    }
    let msg = format!("echo check {tag}");
    p.s.write_all(&frame(true, 1, msg.as_bytes()))
        .map_err(|e| format!("{tag}: send: {e}"))?;
    let (b0, payload) = p.read_frame().map_err(|e| format!("{tag}: {e}"))?;
    if b0 != 0x81 || payload != msg.as_bytes() {
        return Err(format!("{tag}: echo came back as {b0:#x} {payload:?}"));
    }
    let _ = p.s.write_all(&close_frame(1000, b""));
    Ok(())
}
