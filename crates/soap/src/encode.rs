//! Writing outbound-messaging requests, acks and faults.

use std::borrow::Cow;
use std::cmp::Ordering;

use model::FieldValue;

use crate::ns;
use crate::xml::{is_name_char, is_name_start};

const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// One outbound message: the envelope values and its notifications.
#[derive(Debug, Clone, Copy)]
pub struct OutboundMessage<'a> {
    /// The 18-character organization id.
    pub organization_id: &'a str,
    /// The outbound-message definition's id (`04k…`).
    pub action_id: &'a str,
    /// `None` writes `<SessionId xsi:nil="true"/>`, as Salesforce does for actions that send no session.
    pub session_id: Option<&'a str>,
    /// `https://HOST/services/Soap/c/API/ORG15`.
    pub enterprise_url: &'a str,
    /// `https://HOST/services/Soap/u/API/ORG15`.
    pub partner_url: &'a str,
    /// 1 to 100 in a real message; the encoder writes whatever it is given.
    pub notifications: &'a [OutgoingNotification<'a>],
}

/// One `Notification` of an [`OutboundMessage`].
#[derive(Debug, Clone, Copy)]
pub struct OutgoingNotification<'a> {
    /// The notification id (`04l…`), the same on every retry.
    pub id: &'a str,
    /// The object's API name, written as `xsi:type="sf:{object_type}"`.
    pub object_type: &'a str,
    /// Fields to write; None means the record was deleted: write an empty `<sObject .../>` (self-closing,
    /// with xsi:type and xmlns:sf).
    /// The encoder itself writes sf:Id first, then the others in ASCII (byte) order of name, whatever the
    /// input order. Null fields are left out by leaving them out of this slice.
    pub fields: Option<&'a [(&'a str, &'a FieldValue)]>,
}

/// Appends the request for `msg` to `out`, in the exact layout Salesforce uses (see the conformance
/// `golden/case-closed.xml`): declaration then LF, one space of indent per level, no trailing newline.
///
/// Text is escaped and made XML-safe as the [crate documentation](crate) describes.
pub fn encode_notifications(msg: &OutboundMessage<'_>, out: &mut Vec<u8>) {
    // A typical Case notification is well under a kilobyte; one reservation avoids most regrowth.
    out.reserve(1024 + msg.notifications.len() * 1024);
    put(out, DECLARATION);
    put(out, "<soapenv:Envelope xmlns:soapenv=\"");
    put(out, ns::SOAP11);
    put(out, "\" xmlns:xsd=\"");
    put(out, ns::XSD);
    put(out, "\" xmlns:xsi=\"");
    put(out, ns::XSI);
    put(out, "\">\n <soapenv:Body>\n  <notifications xmlns=\"");
    put(out, ns::OUTBOUND);
    put(out, "\">\n");
    text_element(out, "   ", "OrganizationId", msg.organization_id);
    text_element(out, "   ", "ActionId", msg.action_id);
    match msg.session_id {
        Some(session) => text_element(out, "   ", "SessionId", session),
        None => put(out, "   <SessionId xsi:nil=\"true\"/>\n"),
    }
    text_element(out, "   ", "EnterpriseUrl", msg.enterprise_url);
    text_element(out, "   ", "PartnerUrl", msg.partner_url);

    // Reused across notifications and fields so that the whole message costs two allocations here.
    let mut order: Vec<&(&str, &FieldValue)> = Vec::new();
    let mut scratch = String::new();
    for notification in msg.notifications {
        put(out, "   <Notification>\n");
        text_element(out, "    ", "Id", notification.id);
        put(out, "    <sObject xsi:type=\"sf:");
        put_name(out, notification.object_type);
        put(out, "\" xmlns:sf=\"");
        put(out, ns::SOBJECT);
        put(out, "\"");
        match notification.fields {
            Some(fields) if !fields.is_empty() => {
                put(out, ">\n");
                order.clear();
                order.extend(fields.iter());
                order.sort_by(|a, b| field_order(a.0, b.0));
                for (name, value) in order.iter().copied() {
                    put(out, "     <sf:");
                    put_name(out, name);
                    put(out, ">");
                    match value {
                        FieldValue::Text(text) => put_text(out, text),
                        other => {
                            scratch.clear();
                            other.write_wire(&mut scratch);
                            put_text(out, &scratch);
                        }
                    }
                    put(out, "</sf:");
                    put_name(out, name);
                    put(out, ">\n");
                }
                put(out, "    </sObject>\n");
            }
            _ => put(out, "/>\n"),
        }
        put(out, "   </Notification>\n");
    }
    put(
        out,
        "  </notifications>\n </soapenv:Body>\n</soapenv:Envelope>",
    );
}

/// `Id` first, then ASCII (byte) order of API name.
fn field_order(a: &str, b: &str) -> Ordering {
    (a != "Id", a.as_bytes()).cmp(&(b != "Id", b.as_bytes()))
}

const ACK_TRUE: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>
<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">
 <soapenv:Body>
  <notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\">
   <Ack>true</Ack>
  </notificationsResponse>
 </soapenv:Body>
</soapenv:Envelope>";

const ACK_FALSE: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>
<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">
 <soapenv:Body>
  <notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\">
   <Ack>false</Ack>
  </notificationsResponse>
 </soapenv:Body>
</soapenv:Envelope>";

/// The complete answer a listener sends: a SOAP 1.1 envelope holding `notificationsResponse/Ack`.
/// Serve it as `text/xml; charset=utf-8`. `false` makes Salesforce retry the whole message.
pub fn encode_ack(ack: bool) -> &'static str {
    if ack { ACK_TRUE } else { ACK_FALSE }
}

/// SOAP 1.1 fault codes (SOAP 1.1 section 4.4.1) a listener answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultCode {
    /// The request was wrong; sending it again unchanged will fail again.
    Client,
    /// The listener failed; the same request may succeed later.
    Server,
    /// The envelope is not SOAP 1.1.
    VersionMismatch,
}

impl FaultCode {
    /// The `faultcode` QName as written in the fault, e.g. `soapenv:Client`.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultCode::Client => "soapenv:Client",
            FaultCode::Server => "soapenv:Server",
            FaultCode::VersionMismatch => "soapenv:VersionMismatch",
        }
    }
}

/// A complete SOAP 1.1 fault envelope (declaration first, same layout as the ack) with `faultstring`
/// XML-escaped. Serve it as `text/xml; charset=utf-8` with HTTP 500, as SOAP 1.1 requires.
pub fn encode_fault(code: FaultCode, faultstring: &str) -> String {
    let mut out = Vec::with_capacity(400 + faultstring.len());
    put(&mut out, DECLARATION);
    put(&mut out, "<soapenv:Envelope xmlns:soapenv=\"");
    put(&mut out, ns::SOAP11);
    put(
        &mut out,
        "\">\n <soapenv:Body>\n  <soapenv:Fault>\n   <faultcode>",
    );
    put(&mut out, code.as_str());
    put(&mut out, "</faultcode>\n   <faultstring>");
    put_text(&mut out, faultstring);
    put(
        &mut out,
        "</faultstring>\n  </soapenv:Fault>\n </soapenv:Body>\n</soapenv:Envelope>",
    );
    // `put_text` only ever replaces whole characters, so the bytes stay UTF-8; the fallback cannot run.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The text an endpoint reads back after `text` went through the encoder: each character XML 1.0
/// cannot carry (C0 controls other than TAB, LF and CR; U+FFFE; U+FFFF) replaced by U+FFFD. Everything
/// else, CR included, survives unchanged.
pub fn xml_safe_text(text: &str) -> Cow<'_, str> {
    if text.chars().all(crate::xml::is_xml_char) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if crate::xml::is_xml_char(c) {
                    c
                } else {
                    char::REPLACEMENT_CHARACTER
                }
            })
            .collect(),
    )
}

fn put(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
}

fn text_element(out: &mut Vec<u8>, indent: &str, name: &str, text: &str) {
    put(out, indent);
    put(out, "<");
    put(out, name);
    put(out, ">");
    put_text(out, text);
    put(out, "</");
    put(out, name);
    put(out, ">\n");
}

const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Writes `text` as element content. Works on bytes, copying unchanged runs whole: every byte that needs
/// attention is ASCII or the lead byte 0xEF of U+FFFE / U+FFFF, so no multi-byte character is split.
fn put_text(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let (replacement, width): (&[u8], usize) = match bytes[i] {
            b'&' => (b"&amp;", 1),
            b'<' => (b"&lt;", 1),
            b'>' => (b"&gt;", 1),
            // A literal CR would reach the endpoint as LF after XML line-end normalisation.
            b'\r' => (b"&#13;", 1),
            b'\t' | b'\n' => {
                i += 1;
                continue;
            }
            0x00..=0x1F => (REPLACEMENT, 1),
            0xEF if bytes.get(i + 1) == Some(&0xBF)
                && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)) =>
            {
                (REPLACEMENT, 3)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[copied..i]);
        out.extend_from_slice(replacement);
        i += width;
        copied = i;
    }
    out.extend_from_slice(&bytes[copied..]);
}

/// Writes an element or type name, with any character an XML NCName cannot hold written as `_`.
pub(crate) fn put_name(out: &mut Vec<u8>, name: &str) {
    let valid = name.chars().enumerate().all(|(i, c)| {
        if i == 0 {
            is_name_start(c)
        } else {
            is_name_char(c)
        }
    });
    if valid && !name.is_empty() {
        put(out, name);
        return;
    }
    if name.is_empty() {
        put(out, "_");
        return;
    }
    let mut buf = [0u8; 4];
    for (i, c) in name.chars().enumerate() {
        let ok = if i == 0 {
            is_name_start(c)
        } else {
            is_name_char(c)
        };
        put(out, if ok { c.encode_utf8(&mut buf) } else { "_" });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        let mut out = Vec::new();
        put_text(&mut out, s);
        String::from_utf8(out).expect("escaping keeps UTF-8")
    }

    fn name(s: &str) -> String {
        let mut out = Vec::new();
        put_name(&mut out, s);
        String::from_utf8(out).expect("names stay UTF-8")
    }

    #[test]
    fn text_is_escaped_and_made_xml_safe() {
        assert_eq!(text("a & <b> \"c\" 'd'"), "a &amp; &lt;b&gt; \"c\" 'd'");
        assert_eq!(text("x\r\ny\tz"), "x&#13;\ny\tz");
        assert_eq!(text("\u{0}\u{1}\u{1F}"), "\u{FFFD}\u{FFFD}\u{FFFD}");
        assert_eq!(
            text("a\u{FFFE}b\u{FFFF}c\u{FFFD}\u{EFBF}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}\u{EFBF}"
        );
        assert_eq!(
            text("Grüße 日本語 🚚 \u{7F}\u{85}"),
            "Grüße 日本語 🚚 \u{7F}\u{85}"
        );
        assert_eq!(text("]]>"), "]]&gt;");
    }

    #[test]
    fn xml_safe_text_matches_what_the_encoder_writes() {
        assert!(matches!(xml_safe_text("plain\r\n"), Cow::Borrowed(_)));
        assert_eq!(xml_safe_text("a\u{1}b\u{FFFF}"), "a\u{FFFD}b\u{FFFD}");
    }

    #[test]
    fn names_stay_xml_names() {
        assert_eq!(name("Follow_Up_Date__c"), "Follow_Up_Date__c");
        assert_eq!(name("Größe"), "Größe");
        assert_eq!(name("1st field:x"), "_st_field_x");
        assert_eq!(name(""), "_");
    }

    #[test]
    fn id_sorts_first_then_bytes() {
        let mut names = ["b", "Id", "B", "a_", "A", "Ida"];
        names.sort_by(|a, b| field_order(a, b));
        assert_eq!(names, ["Id", "A", "B", "Ida", "a_", "b"]);
    }

    #[test]
    fn fault_codes_are_soap11_qnames() {
        assert_eq!(
            FaultCode::VersionMismatch.as_str(),
            "soapenv:VersionMismatch"
        );
        let fault = encode_fault(FaultCode::Server, "a < b");
        assert!(fault.contains("<faultcode>soapenv:Server</faultcode>"));
        assert!(fault.contains("<faultstring>a &lt; b</faultstring>"));
    }
}
