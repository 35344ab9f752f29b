//! The load generator: closed-loop workers over keep-alive connections, and request bodies with unique
//! notification ids built from a template (cheap enough not to be what is measured).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Builds outbound-message bodies of `batch` Case notifications with ids unique to this run.
pub struct Bodies {
    head: String,
    notification: String,
    tail: String,
    run: String,
    batch: usize,
}

pub const ORG: &str = "00D5g000004XyZaEAK";

impl Bodies {
    pub fn new(batch: usize) -> Self {
        let golden = soap_template();
        let start = golden.find("   <Notification>").unwrap_or(0);
        let end = golden.find("  </notifications>").unwrap_or(golden.len());
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let run: String = (0..3)
            .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
            .collect();
        Self {
            head: golden[..start].to_owned(),
            notification: golden[start..end].to_owned(),
            tail: golden[end..].to_owned(),
            run,
            batch,
        }
    }

    /// Request number `n` (each notification id and record id appears in exactly one request).
    pub fn body(&self, n: u64) -> Vec<u8> {
        let mut out = String::with_capacity(
            self.head.len() + self.tail.len() + self.batch * (self.notification.len() + 8),
        );
        out.push_str(&self.head);
        for i in 0..self.batch as u64 {
            let serial = n * self.batch as u64 + i;
            let nid = format!("04l{}{serial:09}AAA", self.run);
            let rid = format!("500{}{serial:09}AAA", self.run);
            out.push_str(
                &self
                    .notification
                    .replace("04l5g00000XyZ12AAF", &nid)
                    .replace("5005g00000AbCdEAAV", &rid),
            );
        }
        out.push_str(&self.tail);
        out.into_bytes()
    }
}

/// The golden message's bytes come from the encoder itself so the template is what the desk sends.
fn soap_template() -> String {
    let fields = sample_fields();
    let refs: Vec<(&str, &model::FieldValue)> =
        fields.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let notifications = [soap::OutgoingNotification {
        id: "04l5g00000XyZ12AAF",
        object_type: "Case",
        fields: Some(&refs),
    }];
    let message = soap::OutboundMessage {
        organization_id: ORG,
        action_id: "04k5g000000AbCdAAK",
        session_id: None,
        enterprise_url: "https://example.my.salesforce.com/services/Soap/c/60.0/00D5g000004XyZa",
        partner_url: "https://example.my.salesforce.com/services/Soap/u/60.0/00D5g000004XyZa",
        notifications: &notifications,
    };
    let mut out = Vec::new();
    soap::encode_notifications(&message, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

fn sample_fields() -> Vec<(String, model::FieldValue)> {
    use model::FieldValue as V;
    let at = model::value::parse_datetime("2026-11-30T14:05:09.000Z").unwrap_or_default();
    vec![
        ("Id".into(), V::Text("5005g00000AbCdEAAV".into())),
        ("CaseNumber".into(), V::Text("00001026".into())),
        ("ClosedDate".into(), V::DateTime(at)),
        ("IsClosed".into(), V::Bool(true)),
        ("Status".into(), V::Text("Closed".into())),
        ("Subject".into(), V::Text("Printer jam on floor 3".into())),
        ("SystemModstamp".into(), V::DateTime(at)),
    ]
}

#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Per-request latency in microseconds, sorted.
    pub latencies_us: Vec<u64>,
    pub first_error: Option<String>,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        percentile(&self.latencies_us, p) as f64 / 1000.0
    }
}

pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub fn client(connections: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// `connections` workers post bodies back to back for `duration`; only 200 answers with an Ack count.
pub async fn drive(
    url: &str,
    bodies: Arc<Bodies>,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let client = client(connections)?;
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (client, url, bodies, counter) = (
            client.clone(),
            url.to_owned(),
            bodies.clone(),
            counter.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            while Instant::now() < deadline {
                let body = bodies.body(counter.fetch_add(1, Ordering::Relaxed));
                let t0 = Instant::now();
                let result = client
                    .post(&url)
                    .header("Content-Type", "text/xml; charset=UTF-8")
                    .body(body)
                    .send()
                    .await;
                let ok = match result {
                    Ok(r) if r.status().as_u16() == 200 => match r.bytes().await {
                        Ok(b) => memfind(&b, b"<Ack>true</Ack>"),
                        Err(_) => false,
                    },
                    Ok(r) => {
                        if out.first_error.is_none() {
                            out.first_error = Some(format!(
                                "HTTP {}: {}",
                                r.status(),
                                r.text().await.unwrap_or_default()
                            ));
                        }
                        false
                    }
                    Err(e) => {
                        if out.first_error.is_none() {
                            out.first_error = Some(e.to_string());
                        }
                        false
                    }
                };
                if ok {
                    out.requests += 1;
                    out.latencies_us.push(t0.elapsed().as_micros() as u64);
                } else {
                    out.errors += 1;
                }
            }
            out
        }));
    }
    let mut total = Outcome::default();
    for w in workers {
        let o = w.await?;
        total.requests += o.requests;
        total.errors += o.errors;
        total.latencies_us.extend(o.latencies_us);
        if total.first_error.is_none() {
            total.first_error = o.first_error;
        }
    }
    total.elapsed = started.elapsed();
    total.latencies_us.sort_unstable();
    Ok(total)
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
