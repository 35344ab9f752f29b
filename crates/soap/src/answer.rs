//! Deciding whether an endpoint's answer to a delivery counts as delivered.

use crate::ns;
use crate::parse::{Limits, ParseError};
use crate::xml::{Cursor, Element, Input, Item, Ns, is_xml_ws, snippet, trim_xml_ws, xsd_boolean};

/// Longest reason recorded, in characters: enough for a status, a fault string and some context.
const MAX_REASON_CHARS: usize = 500;

/// What a delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The endpoint acknowledged the whole message.
    Delivered,
    /// The attempt failed and the message must be retried; the reason says specifically why, for the
    /// admin (at most about 500 characters, on one line).
    Failed(String),
}

impl Verdict {
    /// Whether the endpoint acknowledged the message.
    pub fn is_delivered(&self) -> bool {
        matches!(self, Verdict::Delivered)
    }

    /// The failure reason, if the attempt failed.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Delivered => None,
            Verdict::Failed(reason) => Some(reason),
        }
    }
}

/// Classifies an endpoint's answer (HTTP status and body) to a delivery.
///
/// Delivered only when the status is 2xx and the body is a SOAP 1.1 envelope whose `Body` holds
/// `{http://soap.sforce.com/2005/09/outbound}notificationsResponse` with an `Ack` (same namespace) that
/// is an `xsd:boolean` true (`true` or `1`, surrounding whitespace allowed), any prefixes. Everything
/// else fails with a specific reason: the HTTP status (with the fault string when the body is a SOAP
/// fault), "nack" for `Ack` false, or what is wrong with the body. Never panics.
pub fn classify_answer(http_status: u16, body: &[u8]) -> Verdict {
    let answer = read_answer(body);
    let reason = if (200..300).contains(&http_status) {
        match answer {
            Answer::Ack(value) => match xsd_boolean(&value) {
                Some(true) => return Verdict::Delivered,
                Some(false) => "nack: the endpoint answered Ack false".to_owned(),
                None => format!(
                    "Ack is not a boolean: \"{}\"",
                    snippet(trim_xml_ws(&value), 100)
                ),
            },
            Answer::Fault { code, string } => {
                format!("SOAP fault {code}: {string} (with HTTP {http_status})")
            }
            Answer::Empty => "empty answer body".to_owned(),
            Answer::NotXml(error) => not_xml(&error),
            Answer::Wrong(reason) => reason,
        }
    } else {
        let status = match reason_phrase(http_status) {
            Some(phrase) => format!("HTTP {http_status} {phrase}"),
            None => format!("HTTP {http_status}"),
        };
        match answer {
            Answer::Fault { code, string } => {
                format!("HTTP {http_status}: SOAP fault {code}: {string}")
            }
            Answer::Ack(value) if xsd_boolean(&value) == Some(true) => {
                format!(
                    "{status} (the body holds Ack true, but only a 2xx status counts as delivered)"
                )
            }
            Answer::Empty => status,
            _ => format!(
                "{status}: {}",
                snippet(&String::from_utf8_lossy(prefix(body, 1024)), 200)
            ),
        }
    };
    Verdict::Failed(snippet(&reason, MAX_REASON_CHARS))
}

fn prefix(body: &[u8], max: usize) -> &[u8] {
    body.get(..max).unwrap_or(body)
}

fn not_xml(error: &ParseError) -> String {
    match error {
        ParseError::NotXml { message, at } => format!("answer is not XML: {message} at byte {at}"),
        ParseError::Truncated { open, at } => {
            format!("answer is not XML: it ends inside <{open}> at byte {at} (truncated?)")
        }
        other => format!("answer is not XML: {other}"),
    }
}

/// What an answer body holds, as far as delivery is concerned.
enum Answer {
    /// The raw text of `notificationsResponse/Ack`.
    Ack(String),
    Fault {
        code: String,
        string: String,
    },
    Empty,
    NotXml(ParseError),
    /// Well-formed, but not an acknowledgement: why.
    Wrong(String),
}

fn read_answer(body: &[u8]) -> Answer {
    let limits = Limits::default();
    if body.len() > limits.max_body_bytes {
        return Answer::NotXml(ParseError::TooLarge {
            limit: limits.max_body_bytes,
        });
    }
    let input = match Input::new(body) {
        Ok(input) => input,
        Err(e) => return Answer::NotXml(e),
    };
    if is_xml_ws(input.text) {
        return Answer::Empty;
    }
    let mut cursor = Cursor::new(&input, limits.max_depth);
    // The whole document is read even once the Ack is known: a body that is cut off or malformed after
    // the Ack is not a trustworthy acknowledgement.
    let answer = cursor.root().and_then(|root| {
        let answer = document(&mut cursor, &root)?;
        cursor.finish()?;
        Ok(answer)
    });
    answer.unwrap_or_else(Answer::NotXml)
}

fn document(cursor: &mut Cursor<'_>, root: &Element) -> Result<Answer, ParseError> {
    if root.is(&Ns::Soap11, "Envelope") {
        return envelope(cursor, root);
    }
    cursor.skip(root)?;
    Ok(Answer::Wrong(if root.is(&Ns::Soap12, "Envelope") {
        format!(
            "answer is a SOAP 1.2 envelope; expected SOAP 1.1 ({})",
            ns::SOAP11
        )
    } else {
        format!(
            "answer is not a SOAP envelope: its root element is {}",
            root.describe()
        )
    }))
}

fn envelope(cursor: &mut Cursor<'_>, envelope: &Element) -> Result<Answer, ParseError> {
    let mut answer = None;
    loop {
        match cursor.next()? {
            Item::Start(child) if child.is(&Ns::Soap11, "Body") && answer.is_none() => {
                answer = Some(body(cursor, &child)?);
            }
            Item::Start(child) => cursor.skip(&child)?,
            Item::Text(_) => {}
            Item::End => {
                return Ok(
                    answer.unwrap_or_else(|| Answer::Wrong("SOAP envelope has no Body".to_owned()))
                );
            }
            Item::Eof => return Err(cursor.truncated(envelope)),
        }
    }
}

fn body(cursor: &mut Cursor<'_>, body: &Element) -> Result<Answer, ParseError> {
    let mut answer = None;
    loop {
        match cursor.next()? {
            Item::Start(child) if answer.is_some() => cursor.skip(&child)?,
            Item::Start(child) => {
                answer = Some(if child.is(&Ns::Soap11, "Fault") {
                    fault(cursor, &child)?
                } else if child.is(&Ns::Outbound, "notificationsResponse") {
                    response(cursor, &child)?
                } else {
                    cursor.skip(&child)?;
                    Answer::Wrong(if child.local == "notificationsResponse" {
                        format!(
                            "notificationsResponse is not in the outbound namespace {} (found in {})",
                            ns::OUTBOUND,
                            child.ns
                        )
                    } else if child.is(&Ns::Outbound, "notifications") {
                        "answer body holds notifications, expected notificationsResponse".to_owned()
                    } else {
                        format!(
                            "answer body holds {}, expected notificationsResponse in {}",
                            child.describe(),
                            ns::OUTBOUND
                        )
                    })
                });
            }
            Item::Text(_) => {}
            Item::End => {
                return Ok(answer.unwrap_or_else(|| {
                    Answer::Wrong("SOAP Body is empty: expected notificationsResponse".to_owned())
                }));
            }
            Item::Eof => return Err(cursor.truncated(body)),
        }
    }
}

fn response(cursor: &mut Cursor<'_>, response: &Element) -> Result<Answer, ParseError> {
    let mut answer = None;
    loop {
        match cursor.next()? {
            Item::Start(child) if child.local == "Ack" && answer.is_none() => {
                answer = Some(if child.ns == Ns::Outbound {
                    Answer::Ack(cursor.text_only(&child)?)
                } else {
                    cursor.skip(&child)?;
                    Answer::Wrong(format!(
                        "Ack is not in the outbound namespace {} (found in {})",
                        ns::OUTBOUND,
                        child.ns
                    ))
                });
            }
            Item::Start(child) if child.local == "Ack" => {
                cursor.skip(&child)?;
                answer = Some(Answer::Wrong(
                    "notificationsResponse holds more than one Ack".to_owned(),
                ));
            }
            Item::Start(child) => cursor.skip(&child)?,
            Item::Text(_) => {}
            Item::End => {
                return Ok(answer.unwrap_or_else(|| {
                    Answer::Wrong("notificationsResponse has no Ack".to_owned())
                }));
            }
            Item::Eof => return Err(cursor.truncated(response)),
        }
    }
}

fn fault(cursor: &mut Cursor<'_>, fault: &Element) -> Result<Answer, ParseError> {
    let mut code = String::new();
    let mut string = String::new();
    loop {
        match cursor.next()? {
            // SOAP 1.1 puts these unqualified; some toolkits qualify them, so any namespace is read.
            Item::Start(child) if child.local == "faultcode" => code = cursor.text_only(&child)?,
            Item::Start(child) if child.local == "faultstring" => {
                string = cursor.text_only(&child)?
            }
            Item::Start(child) => cursor.skip(&child)?,
            Item::Text(_) => {}
            Item::End => break,
            Item::Eof => return Err(cursor.truncated(fault)),
        }
    }
    let code = snippet(trim_xml_ws(&code), 100);
    let string = snippet(trim_xml_ws(&string), 300);
    Ok(Answer::Fault {
        code: if code.is_empty() {
            "(no faultcode)".to_owned()
        } else {
            code
        },
        string: if string.is_empty() {
            "(no faultstring)".to_owned()
        } else {
            string
        },
    })
}

fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Continue",
        101 => "Switching Protocols",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENVELOPE_HEAD: &str =
        "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Body>";
    const ENVELOPE_TAIL: &str = "</e:Body></e:Envelope>";

    fn in_envelope(inner: &str) -> Vec<u8> {
        format!("{ENVELOPE_HEAD}{inner}{ENVELOPE_TAIL}").into_bytes()
    }

    fn reason(status: u16, body: &[u8]) -> String {
        match classify_answer(status, body) {
            Verdict::Delivered => panic!("expected a failure"),
            Verdict::Failed(reason) => reason,
        }
    }

    #[test]
    fn ack_must_be_in_the_outbound_namespace() {
        let body = in_envelope(
            "<r:notificationsResponse xmlns:r=\"http://soap.sforce.com/2005/09/outbound\"><Ack>true</Ack></r:notificationsResponse>",
        );
        assert!(reason(200, &body).contains("Ack is not in the outbound namespace"));
    }

    #[test]
    fn missing_ack_and_empty_body_are_named() {
        let body = in_envelope(
            "<notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\"/>",
        );
        assert_eq!(reason(200, &body), "notificationsResponse has no Ack");
        assert_eq!(
            reason(200, &in_envelope("")),
            "SOAP Body is empty: expected notificationsResponse"
        );
        assert_eq!(reason(204, b"  \n"), "empty answer body");
        assert_eq!(reason(404, b""), "HTTP 404 Not Found");
        assert_eq!(reason(599, b""), "HTTP 599");
    }

    #[test]
    fn ack_after_which_the_body_breaks_is_not_delivered() {
        let body = b"<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Body><notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\"><Ack>true</Ack></notificationsResponse></e:Body>";
        assert!(
            reason(200, body).starts_with("answer is not XML"),
            "{}",
            reason(200, body)
        );
    }

    #[test]
    fn reasons_are_capped() {
        let long = "x".repeat(5000);
        let body = in_envelope(&format!(
            "<e:Fault><faultcode>e:Server</faultcode><faultstring>{long}</faultstring></e:Fault>"
        ));
        assert!(reason(500, &body).chars().count() <= MAX_REASON_CHARS + 1);
        assert!(reason(502, long.as_bytes()).chars().count() <= MAX_REASON_CHARS + 1);
    }

    #[test]
    fn garbage_never_panics() {
        for body in [
            &b"\xFF\xFE<"[..],
            b"<",
            b"<a",
            b"<?xml",
            b"<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>",
            b"<a:b/>",
            b"<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\"><e:Body><x y='&z;'/></e:Body></e:Envelope>",
            b"\xEF\xBB\xBF",
            b"&#0;",
        ] {
            for status in [0, 200, 299, 300, 500, u16::MAX] {
                assert!(!classify_answer(status, body).is_delivered());
            }
        }
    }
}
