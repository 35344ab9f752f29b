//! A scriptable outbound-message endpoint on loopback for the delivery tests (HTTP/1.1, keep-alive,
//! one thread per connection): it records what arrives and answers as its handler says, which may be
//! never, late, or after forwarding the message elsewhere.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One request as the endpoint saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub path: String,
    pub body: String,
}

impl Seen {
    /// The notifications the message carries, parsed as a listener would.
    pub fn message(&self) -> soap::ParsedMessage {
        soap::parse_notifications(self.body.as_bytes(), &soap::Limits::default())
            .expect("the desk sends valid outbound messages")
    }

    pub fn notification_ids(&self) -> Vec<String> {
        self.message()
            .notifications
            .into_iter()
            .map(|n| n.id)
            .collect()
    }
}

/// `Some((status, body))` answers; `None` never answers (the connection stays open and silent).
pub type Handler = Arc<dyn Fn(&Seen) -> Option<(u16, String)> + Send + Sync>;

pub const ACK: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"#;

pub fn ack() -> Option<(u16, String)> {
    Some((200, ACK.to_owned()))
}

pub struct Endpoint {
    pub base: String,
    seen: Arc<(Mutex<Vec<Seen>>, Condvar)>,
}

impl Endpoint {
    pub fn start(handler: impl Fn(&Seen) -> Option<(u16, String)> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<(Mutex<Vec<Seen>>, Condvar)> = Arc::default();
        let handler: Handler = Arc::new(handler);
        let seen_in = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (handler, seen) = (handler.clone(), seen_in.clone());
                std::thread::spawn(move || serve(stream, handler, seen));
            }
        });
        Endpoint { base, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.0.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived, or panics after `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Seen> {
        let deadline = Instant::now() + timeout;
        let (lock, arrived) = &*self.seen;
        let mut seen = lock.lock().unwrap();
        while seen.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "only {} of {n} requests arrived within {timeout:?}",
                seen.len()
            );
            seen = arrived.wait_timeout(seen, left).unwrap().0;
        }
        seen.clone()
    }
}

fn serve(stream: std::net::TcpStream, handler: Handler, seen: Arc<(Mutex<Vec<Seen>>, Condvar)>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_owned();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Seen {
            at: Instant::now(),
            path,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        {
            let (lock, arrived) = &*seen;
            lock.lock().unwrap().push(request.clone());
            arrived.notify_all();
        }
        match handler(&request) {
            None => {
                // Silent until the client gives up and closes.
                let mut sink = [0u8; 1024];
                while reader.read(&mut sink).unwrap_or(0) > 0 {}
                return;
            }
            Some((status, answer)) => {
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
                    answer.len()
                );
                if writer
                    .write_all(head.as_bytes())
                    .and_then(|_| writer.write_all(answer.as_bytes()))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// A latch the handler waits on until the test opens it.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn wait(&self) {
        let (lock, opened) = &*self.0;
        let mut open = lock.lock().unwrap();
        while !*open {
            open = opened.wait(open).unwrap();
        }
    }

    pub fn open(&self) {
        let (lock, opened) = &*self.0;
        *lock.lock().unwrap() = true;
        opened.notify_all();
    }
}
