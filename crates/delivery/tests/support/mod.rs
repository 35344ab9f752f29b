//! Test endpoints on loopback (HTTP/1.1 with keep-alive, optionally over rustls) and a small harness
//! that runs the real engine on a SQLite store.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use desk::{Catalog, Org};
use model::{IdGenerator, OutboundAction, PayloadMode, SfId};
use store::{DeskStore, NewNotification, RecordWrite};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub const ORG: &str = "00D5g000004XyZaEAK";

pub const ACK: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"#;

/// What the endpoint does with one request.
#[derive(Clone)]
pub enum Reply {
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
        delay: Duration,
    },
    /// Never answer (until the client gives up).
    Hold,
}

impl Reply {
    pub fn ack() -> Self {
        Self::status(200, ACK)
    }

    pub fn status(status: u16, body: &str) -> Self {
        Reply::Answer {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }

    pub fn delayed(self, by: Duration) -> Self {
        match self {
            Reply::Answer {
                status,
                headers,
                body,
                ..
            } => Reply::Answer {
                status,
                headers,
                body,
                delay: by,
            },
            Reply::Hold => Reply::Hold,
        }
    }

    pub fn header(self, name: &str, value: &str) -> Self {
        match self {
            Reply::Answer {
                status,
                mut headers,
                body,
                delay,
            } => {
                headers.push((name.to_owned(), value.to_owned()));
                Reply::Answer {
                    status,
                    headers,
                    body,
                    delay,
                }
            }
            Reply::Hold => Reply::Hold,
        }
    }
}

/// One request as the endpoint saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The client certificate's DER, when the connection was TLS with a client certificate.
    pub client_cert: Option<Vec<u8>>,
    /// The server name the client asked for (TLS SNI).
    pub sni: Option<String>,
}

impl Seen {
    /// The `04l` ids of the notifications the message carries, in order.
    pub fn notification_ids(&self) -> Vec<String> {
        self.body
            .split("<Notification>")
            .skip(1)
            .filter_map(|n| {
                n.split("<Id>")
                    .nth(1)
                    .and_then(|rest| rest.split("</Id>").next())
                    .map(str::to_owned)
            })
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

pub struct Endpoint {
    pub addr: std::net::SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub arrived: Arc<Notify>,
}

impl Endpoint {
    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn https_url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.addr.port())
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Seen> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} requests arrived within {timeout:?}",
                seen.len()
            );
            let _ = tokio::time::timeout(Duration::from_millis(20), self.arrived.notified()).await;
        }
    }
}

/// Starts an endpoint on a loopback port; with `tls`, connections are TLS (rustls server side).
pub async fn endpoint(
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> Endpoint {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let arrived = Arc::new(Notify::new());
    let handler: Handler = Arc::new(handler);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    {
        let (connections, seen, arrived) = (connections.clone(), seen.clone(), arrived.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                connections.fetch_add(1, Ordering::SeqCst);
                let (handler, seen, arrived) = (handler.clone(), seen.clone(), arrived.clone());
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        None => serve(stream, None, None, handler, seen, arrived).await,
                        Some(acceptor) => {
                            // A refused handshake simply ends the connection, as a real server does.
                            let Ok(tls) = acceptor.accept(stream).await else {
                                return;
                            };
                            let session = tls.get_ref().1;
                            let cert = session
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .map(|c| c.as_ref().to_vec());
                            let sni = session.server_name().map(str::to_owned);
                            serve(tls, cert, sni, handler, seen, arrived).await
                        }
                    }
                });
            }
        });
    }
    Endpoint {
        addr,
        connections,
        seen,
        arrived,
    }
}

async fn serve<S>(
    stream: S,
    client_cert: Option<Vec<u8>>,
    sni: Option<String>,
    handler: Handler,
    seen: Arc<Mutex<Vec<Seen>>>,
    arrived: Arc<Notify>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_owned();
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim().to_owned();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0);
                }
                headers.push((name.to_owned(), value));
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let request = Seen {
            at: Instant::now(),
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            client_cert: client_cert.clone(),
            sni: sni.clone(),
        };
        let reply = handler(&request);
        seen.lock().unwrap().push(request);
        arrived.notify_waiters();
        match reply {
            Reply::Hold => {
                // Keep the connection open and silent until the client hangs up.
                let mut sink = [0u8; 1024];
                while reader.read(&mut sink).await.unwrap_or(0) > 0 {}
                return;
            }
            Reply::Answer {
                status,
                headers,
                body,
                delay,
            } => {
                tokio::time::sleep(delay).await;
                let mut head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\n",
                    body.len()
                );
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                let stream = reader.get_mut();
                if stream.write_all(head.as_bytes()).await.is_err()
                    || stream.write_all(body.as_bytes()).await.is_err()
                    || stream.flush().await.is_err()
                {
                    return;
                }
            }
        }
    }
}

/// An action for `endpoint_url` with a few Case fields.
pub fn action(name: &str, endpoint_url: &str, payload_mode: PayloadMode) -> OutboundAction {
    OutboundAction {
        name: name.to_owned(),
        id: SfId::derived(model::id::prefix::OUTBOUND_MESSAGE, name),
        object: "Case".to_owned(),
        endpoint_url: endpoint_url.to_owned(),
        fields: vec!["Subject".to_owned(), "Status".to_owned()],
        api_version: "60.0".to_owned(),
        include_session_id: false,
        integration_user: None,
        use_dead_letter_queue: true,
        payload_mode,
        description: None,
    }
}

pub fn catalog(actions: Vec<OutboundAction>) -> Arc<Catalog> {
    Arc::new(
        Catalog::new(
            Org {
                id: SfId::parse(ORG).unwrap(),
                instance_url: "https://example.my.salesforce.com".to_owned(),
            },
            model::CaseStatus::defaults(),
            [model::ObjectSchema::case()],
            actions,
            [],
        )
        .unwrap(),
    )
}

/// A running engine over a fresh SQLite store.
pub struct Harness {
    pub store: Arc<store_sqlite::SqliteStore>,
    pub signal: Arc<Notify>,
    shutdown: CancellationToken,
    engine: Option<tokio::task::JoinHandle<()>>,
    ids: IdGenerator,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub fn start(catalog: Arc<Catalog>, config: delivery::EngineConfig) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            store_sqlite::SqliteStore::open(
                dir.path().join("desk.db"),
                store_sqlite::SqliteOptions::default(),
            )
            .unwrap(),
        );
        let signal = Arc::new(Notify::new());
        let dyn_store: Arc<dyn DeskStore> = store.clone();
        let engine =
            Arc::new(delivery::Engine::new(dyn_store, catalog, config, signal.clone()).unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(engine.run(shutdown.clone()));
        Harness {
            store,
            signal,
            shutdown,
            engine: Some(task),
            ids: IdGenerator::new(),
            _dir: dir,
        }
    }

    /// Saves a new Case with `subject` and queues one notification for each of `actions`. Returns the
    /// notification ids.
    pub async fn queue(&self, actions: &[&OutboundAction], subject: &str) -> Vec<String> {
        let now = chrono::Utc::now().timestamp_millis();
        let record = self
            .ids
            .next(model::id::prefix::CASE, now as u64)
            .to_string();
        let data =
            serde_json::json!({ "Id": record, "Subject": subject, "Status": "New" }).to_string();
        let notifications: Vec<NewNotification> = actions
            .iter()
            .map(|a| NewNotification {
                id: self
                    .ids
                    .next(model::id::prefix::NOTIFICATION, now as u64)
                    .to_string(),
                action: a.name.clone(),
                endpoint: a.endpoint_url.clone(),
                object: "Case".to_owned(),
                record_id: record.clone(),
                snapshot: data.clone(),
                created: now,
            })
            .collect();
        let ids = notifications.iter().map(|n| n.id.clone()).collect();
        self.store
            .save_record(RecordWrite {
                object: "Case".to_owned(),
                id: record,
                data,
                deleted: false,
                expected_version: None,
                notifications,
                now,
            })
            .await
            .unwrap();
        self.signal.notify_one();
        ids
    }

    /// Waits until the notification is no longer pending with fewer than `attempts` attempts.
    pub async fn wait_attempts(
        &self,
        id: &str,
        attempts: u32,
        timeout: Duration,
    ) -> store::QueuedNotification {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.store.get_notification(id).await.unwrap().unwrap();
            if n.attempts >= attempts {
                return n;
            }
            assert!(
                Instant::now() < deadline,
                "{id}: {} attempts after {timeout:?}: {n:?}",
                n.attempts
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.engine.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Settings for tests: quick retries, short timeouts.
pub fn fast_config() -> delivery::EngineConfig {
    delivery::EngineConfig {
        retry: delivery::RetryPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_millis(400),
            jitter: 0.0,
            expiry: Duration::from_secs(60),
        },
        attempt_timeout: Duration::from_secs(5),
        lease: Duration::from_secs(10),
        idle_poll: Duration::from_millis(500),
        ..delivery::EngineConfig::default()
    }
}
