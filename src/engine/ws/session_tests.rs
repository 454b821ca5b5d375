//! Conversations between a client-role and a server-role endpoint built from this
//! module's pieces only (header encoding, masking, the parser, close-payload checks),
//! without sockets: echo, control frames between fragments, the close handshake from
//! either side (codes, echo, simultaneous close), and the limits that end a
//! connection. Each conversation is replayed with several read sizes, so every frame
//! is also seen split across reads.

use super::close::*;
use super::*;

/// What an endpoint received, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Msg(u8, Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// A valid close: its code (None for an empty payload) and reason.
    Close(Option<u16>, Vec<u8>),
}

/// One end of a connection, doing what RFC 6455 asks of an endpoint: pong every ping
/// while open, echo the peer's close code once, fail with the parser's or the close
/// check's code.
struct End {
    role: Role,
    parser: FrameParser,
    out: Vec<u8>,
    got: Vec<Got>,
    msg: Vec<u8>,
    msg_opcode: u8,
    close_sent: bool,
    close_rcvd: bool,
    /// The code this end failed the connection with.
    failed: Option<u16>,
    mask_seq: u8,
    /// Bytes handed to the parser per read.
    read_size: usize,
}

impl End {
    fn new(role: Role, read_size: usize) -> End {
        End::with(ParserConfig::new(role), read_size)
    }

    fn with(cfg: ParserConfig, read_size: usize) -> End {
        End {
            role: cfg.role,
            parser: FrameParser::new(cfg),
            out: Vec::new(),
            got: Vec::new(),
            msg: Vec::new(),
            msg_opcode: 0,
            close_sent: false,
            close_rcvd: false,
            failed: None,
            mask_seq: 0,
            read_size,
        }
    }

    /// Queues one frame; a client masks with a fresh key each time.
    fn send(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let key = (self.role == Role::Client).then(|| {
            self.mask_seq = self.mask_seq.wrapping_add(1);
            [self.mask_seq, 0x5a, 0xa5 ^ self.mask_seq, 0x3c]
        });
        let mut hdr = [0u8; MAX_HEADER_LEN];
        let n = encode_header(&mut hdr, fin, 0, opcode, key, payload.len() as u64);
        self.out.extend_from_slice(&hdr[..n]);
        let start = self.out.len();
        self.out.extend_from_slice(payload);
        if let Some(k) = key {
            apply_mask(&mut self.out[start..], k, 0);
        }
    }

    fn close(&mut self, code: Option<u16>, reason: &[u8]) {
        assert!(!self.close_sent, "one close frame per endpoint");
        let mut p = Vec::new();
        if let Some(c) = code {
            p.extend_from_slice(&c.to_be_bytes());
            p.extend_from_slice(reason);
        }
        self.send(true, OP_CLOSE, &p);
        self.close_sent = true;
    }

    fn fail(&mut self, code: u16) {
        self.failed = Some(code);
        if !self.close_sent {
            self.close(Some(code), b"");
        }
    }

    /// Takes in what the peer sent, `read_size` bytes at a time.
    fn receive(&mut self, mut bytes: Vec<u8>) {
        let step = self.read_size.max(1);
        let mut at = 0;
        while at < bytes.len() && self.failed.is_none() && !self.close_rcvd {
            let end = (at + step).min(bytes.len());
            let chunk = &mut bytes[at..end];
            at = end;
            let mut pos = 0;
            loop {
                let ev = match self.parser.next_event(chunk, &mut pos) {
                    Ok(Some(ev)) => ev,
                    Ok(None) => break,
                    Err(e) => {
                        self.fail(e.close_code);
                        return;
                    }
                };
                match ev {
                    Event::Data {
                        payload,
                        message_opcode,
                        fin,
                        frame_remaining,
                        ..
                    } => {
                        self.msg_opcode = message_opcode;
                        self.msg.extend_from_slice(payload);
                        if fin && frame_remaining == 0 {
                            let m = std::mem::take(&mut self.msg);
                            self.got.push(Got::Msg(self.msg_opcode, m));
                        }
                    }
                    Event::Control { opcode, payload } => {
                        let payload = payload.to_vec();
                        match opcode {
                            OP_PING => {
                                if !self.close_sent {
                                    self.send(true, OP_PONG, &payload);
                                }
                                self.got.push(Got::Ping(payload));
                            }
                            OP_PONG => self.got.push(Got::Pong(payload)),
                            _ => {
                                self.close_rcvd = true;
                                match parse_close_payload(&payload) {
                                    Err(e) => self.fail(e.close_code),
                                    Ok(p) => {
                                        let (code, reason) =
                                            p.map_or((None, &[][..]), |(c, r)| (Some(c), r));
                                        self.got.push(Got::Close(code, reason.to_vec()));
                                        if !self.close_sent {
                                            self.close(code, b"");
                                        }
                                    }
                                }
                                return;
                            }
                        }
                    }
                    Event::Extended { .. } => unreachable!("no extended opcodes configured"),
                }
            }
        }
    }

    fn closed(&self) -> bool {
        self.close_sent && (self.close_rcvd || self.failed.is_some())
    }
}

/// Moves bytes both ways until neither side has anything to send (bounded).
fn pump(a: &mut End, b: &mut End) {
    for _ in 0..16 {
        if a.out.is_empty() && b.out.is_empty() {
            return;
        }
        let to_b = std::mem::take(&mut a.out);
        b.receive(to_b);
        let to_a = std::mem::take(&mut b.out);
        a.receive(to_a);
    }
    panic!("conversation did not settle");
}

const READ_SIZES: [usize; 5] = [1, 2, 3, 7, usize::MAX];

fn pair(read_size: usize) -> (End, End) {
    (
        End::new(Role::Client, read_size),
        End::new(Role::Server, read_size),
    )
}

#[test]
fn echo_in_both_directions() {
    for rs in READ_SIZES {
        let (mut c, mut s) = pair(rs);
        c.send(true, OP_TEXT, b"hello");
        c.send(true, OP_BINARY, &[0, 255, 1, 254]);
        c.send(true, OP_TEXT, b"");
        pump(&mut c, &mut s);
        // The server echoes what it got, with the opcode it came with.
        for g in s.got.clone() {
            let Got::Msg(op, data) = g else { panic!() };
            s.send(true, op, &data);
        }
        let big = vec![b'x'; 70_000];
        s.send(true, OP_TEXT, &big);
        pump(&mut c, &mut s);
        assert_eq!(
            s.got,
            [
                Got::Msg(OP_TEXT, b"hello".to_vec()),
                Got::Msg(OP_BINARY, vec![0, 255, 1, 254]),
                Got::Msg(OP_TEXT, vec![]),
            ],
            "read size {rs}"
        );
        let mut expect = s.got.clone();
        expect.push(Got::Msg(OP_TEXT, big.clone()));
        assert_eq!(c.got, expect, "read size {rs}");
        assert!(c.failed.is_none() && s.failed.is_none());
    }
}

#[test]
fn control_frames_between_fragments() {
    for rs in READ_SIZES {
        let (mut c, mut s) = pair(rs);
        c.send(false, OP_TEXT, b"frag");
        c.send(true, OP_PING, b"p1");
        c.send(false, OP_CONTINUATION, b"men");
        c.send(true, OP_PONG, b"unsolicited");
        c.send(true, OP_PING, b"");
        c.send(true, OP_CONTINUATION, b"ted \xc3\xa9");
        pump(&mut c, &mut s);
        assert_eq!(
            s.got,
            [
                Got::Ping(b"p1".to_vec()),
                Got::Pong(b"unsolicited".to_vec()),
                Got::Ping(vec![]),
                Got::Msg(OP_TEXT, "fragmented é".as_bytes().to_vec()),
            ],
            "read size {rs}"
        );
        // Each ping answered with its own payload, in order.
        assert_eq!(
            c.got,
            [Got::Pong(b"p1".to_vec()), Got::Pong(vec![])],
            "read size {rs}"
        );
        // The server's own fragmented message with a ping inside reaches the client.
        s.send(false, OP_BINARY, b"ab");
        s.send(true, OP_PING, b"srv");
        s.send(true, OP_CONTINUATION, b"cd");
        pump(&mut c, &mut s);
        assert_eq!(
            c.got[2..],
            [
                Got::Ping(b"srv".to_vec()),
                Got::Msg(OP_BINARY, b"abcd".to_vec())
            ]
        );
        assert_eq!(s.got.last(), Some(&Got::Pong(b"srv".to_vec())));
    }
}

#[test]
fn close_started_by_either_side_is_echoed() {
    for rs in READ_SIZES {
        for server_first in [true, false] {
            let (mut c, mut s) = pair(rs);
            let (first, second) = if server_first {
                (&mut s, &mut c)
            } else {
                (&mut c, &mut s)
            };
            first.close(Some(CLOSE_GOING_AWAY), b"bye");
            pump(first, second);
            // The peer echoes the code (not the reason); each end sent one close.
            assert_eq!(second.got, [Got::Close(Some(1001), b"bye".to_vec())]);
            assert_eq!(first.got, [Got::Close(Some(1001), vec![])]);
            assert!(first.closed() && second.closed());
            assert!(first.failed.is_none() && second.failed.is_none());
        }
    }
}

#[test]
fn close_codes_and_empty_close() {
    for rs in READ_SIZES {
        // An empty close is answered with an empty close.
        let (mut c, mut s) = pair(rs);
        c.close(None, b"");
        pump(&mut c, &mut s);
        assert_eq!(s.got, [Got::Close(None, vec![])]);
        assert_eq!(c.got, [Got::Close(None, vec![])]);
        // Codes a peer may send are echoed.
        for code in [1000, 1003, 1007, 1011, 3000, 4999] {
            let (mut c, mut s) = pair(rs);
            s.close(Some(code), b"");
            pump(&mut c, &mut s);
            assert_eq!(c.got, [Got::Close(Some(code), vec![])], "{code}");
            assert_eq!(s.got, [Got::Close(Some(code), vec![])], "{code}");
        }
        // Codes nobody may send, a one-byte payload, a reason that is not UTF-8:
        // the receiver fails the connection with 1002 / 1007 instead of echoing.
        let bad: [(&[u8], u16); 7] = [
            (&[0x03, 0xed], 1002),       // 1005
            (&[0x03, 0xee], 1002),       // 1006
            (&[0x03, 0xe7], 1002),       // 999
            (&[0x13, 0x88], 1002),       // 5000
            (&[0x03], 1002),             // one byte
            (&[0x03, 0xe8, 0xff], 1007), // bad UTF-8 reason
            (&[0x03, 0xe8, 0xc3], 1007), // truncated UTF-8 reason
        ];
        for (payload, expect) in bad {
            let (mut c, mut s) = pair(rs);
            c.send(true, OP_CLOSE, payload);
            c.close_sent = true;
            pump(&mut c, &mut s);
            assert_eq!(s.failed, Some(expect), "{payload:?}");
            assert!(s.got.is_empty());
            // The client, having sent its close, does not answer the failure's close.
            assert!(c.out.is_empty());
        }
    }
}

#[test]
fn simultaneous_close_sends_one_close_each() {
    for rs in READ_SIZES {
        let (mut c, mut s) = pair(rs);
        c.close(Some(1000), b"client");
        s.close(Some(1001), b"server");
        pump(&mut c, &mut s);
        assert_eq!(c.got, [Got::Close(Some(1001), b"server".to_vec())]);
        assert_eq!(s.got, [Got::Close(Some(1000), b"client".to_vec())]);
        assert!(c.closed() && s.closed());
    }
}

#[test]
fn after_close_pings_go_unanswered_and_data_stops() {
    for rs in READ_SIZES {
        let (mut c, mut s) = pair(rs);
        s.close(Some(1000), b"");
        // Already in flight from the client when it sees the close.
        c.send(true, OP_PING, b"late");
        c.send(true, OP_TEXT, b"late data");
        pump(&mut c, &mut s);
        // The server, closing, does not pong; the client echoes the close.
        assert_eq!(
            s.got,
            [
                Got::Ping(b"late".to_vec()),
                Got::Msg(OP_TEXT, b"late data".to_vec()),
                Got::Close(Some(1000), vec![]),
            ]
        );
        assert!(c.got.iter().all(|g| !matches!(g, Got::Pong(_))));
        // Nothing after a close frame is read.
        let (mut c, mut s) = pair(rs);
        c.close(Some(1000), b"");
        c.send(true, OP_TEXT, b"after close");
        pump(&mut c, &mut s);
        assert_eq!(s.got, [Got::Close(Some(1000), vec![])]);
    }
}

#[test]
fn limits_fail_the_connection_with_their_codes() {
    for rs in READ_SIZES {
        // A message over the limit, announced by its second fragment: 1009.
        let mut cfg = ParserConfig::new(Role::Server);
        cfg.max_message_size = 10;
        let mut s = End::with(cfg, rs);
        let mut c = End::new(Role::Client, rs);
        c.send(false, OP_BINARY, &[1; 6]);
        c.send(true, OP_CONTINUATION, &[2; 5]);
        pump(&mut c, &mut s);
        assert_eq!(s.failed, Some(CLOSE_MESSAGE_TOO_BIG), "read size {rs}");
        assert!(s.got.is_empty());
        // The client is told why.
        assert_eq!(c.got, [Got::Close(Some(1009), vec![])]);
        // Exactly at the limit is fine.
        let mut s = End::with(cfg, rs);
        let mut c = End::new(Role::Client, rs);
        c.send(false, OP_BINARY, &[1; 6]);
        c.send(true, OP_CONTINUATION, &[2; 4]);
        pump(&mut c, &mut s);
        assert_eq!(s.failed, None);

        let protocol_errors: [&dyn Fn(&mut End); 6] = [
            &|c| c.send(true, OP_PING, &[0; 126]),    // control too long
            &|c| c.send(false, OP_PING, b"x"),        // fragmented control
            &|c| c.send(true, OP_CONTINUATION, b"x"), // nothing to continue
            &|c| {
                c.send(false, OP_TEXT, b"a");
                c.send(true, OP_BINARY, b"b"); // new message inside one
            },
            &|c| c.send(true, 0x3, b""), // reserved opcode
            &|c| {
                c.role = Role::Server; // unmasked from a client
                c.send(true, OP_TEXT, b"x");
            },
        ];
        for (i, f) in protocol_errors.iter().enumerate() {
            let (mut c, mut s) = pair(rs);
            f(&mut c);
            pump(&mut c, &mut s);
            assert_eq!(
                s.failed,
                Some(CLOSE_PROTOCOL_ERROR),
                "case {i}, read size {rs}"
            );
        }
        // A masked frame from a server fails the client.
        let (mut c, mut s) = pair(rs);
        s.role = Role::Client;
        s.send(true, OP_TEXT, b"x");
        pump(&mut c, &mut s);
        assert_eq!(c.failed, Some(CLOSE_PROTOCOL_ERROR));
        // Invalid UTF-8 in a text message: 1007, as soon as it is seen.
        let (mut c, mut s) = pair(rs);
        c.send(false, OP_TEXT, b"ok \xc3");
        c.send(true, OP_CONTINUATION, b"\x28");
        pump(&mut c, &mut s);
        assert_eq!(s.failed, Some(CLOSE_INVALID_PAYLOAD), "read size {rs}");
    }
}
