//! The Salesforce Outbound Messaging wire format (SOAP 1.1, document/literal, one operation
//! `notifications`), as pure functions: no I/O, no clock, no threads.
//!
//! - [`encode_notifications`] writes the request a desk sends to an endpoint, byte for byte in the layout
//!   Salesforce uses; [`encode_ack`] and [`encode_fault`] write what a listener answers.
//! - [`parse_notifications`] reads a request as a listener receives it.
//! - [`classify_answer`] decides whether what an endpoint answered counts as a delivery.
//! - [`wsdl::generate`] writes the WSDL of an outbound-message action, for listeners generated from it.
//!
//! # Encoding rules
//!
//! Text is XML-escaped: `&`, `<` and `>` become `&amp;`, `&lt;` and `&gt;`; quotes are written as they are
//! (valid in element content). A carriage return is written as `&#13;`, because a literal one would be
//! turned into a line feed by every XML parser's line-end normalisation and the endpoint would read a
//! different value than the record holds.
//!
//! XML 1.0 cannot carry some characters at all, escaped or not: the C0 controls other than TAB, LF and
//! CR, and U+FFFE / U+FFFF. **Each such character is written as U+FFFD (the replacement character)**,
//! so that a record holding one still produces a well-formed message instead of one every endpoint
//! refuses. [`xml_safe_text`] gives the text an endpoint reads back for a value.
//!
//! Values are written in their canonical wire form ([`model::FieldValue::write_wire`]), as Salesforce
//! writes them: ids in the 18-character form; booleans `true`/`false`; ints plain; multi-select
//! picklists joined with `;`; dates `2026-11-30`; dateTimes in UTC with milliseconds and `Z`
//! (`2026-11-30T14:05:09.000Z`). Doubles, currency and percent follow Java's `Double.toString`, which is
//! what Salesforce's runtime uses: always a decimal point (`150.0`); plain decimal for magnitudes from
//! 10^-3 up to (not including) 10^7; outside that range computerized scientific notation with a
//! mantissa that has a decimal point and an `E` exponent (`1.23456789E7`, `2.5E-4`, `-1.0E21`); the
//! shortest digits that read back as the same double. Every one of these is a valid `xsd:double`, and
//! the parser side ([`model::value::parse_xsd_double`]) accepts every `xsd:double` lexical form
//! (`1`, `1.`, `.5`, `-1.5e3`, `INF`, `NaN`, ...). The desk holds only finite numbers, 32-bit ints
//! and dates from 1700 to 4000 ([`model::FieldValue::check_holdable`]), so every value it sends is
//! valid for the type the action's WSDL ([`wsdl::generate`]) declares.
//!
//! Field and object names are Salesforce API names (ASCII letters, digits, `_`), which are always XML
//! names. Should a name hold a character that an XML name cannot, that character is written as `_`,
//! for the same reason: the message must stay well-formed.
//!
//! # Deliberate deviations from Salesforce
//!
//! Where Salesforce's exact behaviour is unknown or would lose data, this crate chooses:
//! - a carriage return is written `&#13;` (see above), so the endpoint reads the value the record holds;
//! - characters XML 1.0 cannot carry become U+FFFD rather than producing a malformed message;
//! - doubles use the shortest digits that read back the same (as Java 19 and later do; older Java runtimes
//!   sometimes printed more digits, and print the smallest subnormal as `4.9E-324` where this writes
//!   `5.0E-324`): the value is the same double either way;
//! - the WSDL's header comment names casewire and the action and has no generation date, so that the same
//!   action always gives the same bytes; everything a toolkit reads is structured as Salesforce's.
//!
//! # Parsing rules
//!
//! Namespace-aware: elements are matched by namespace URI and local name, never by prefix. A leading
//! UTF-8 byte-order mark, a missing XML declaration, comments, processing instructions and a SOAP
//! `Header` (ignored) are accepted. No DTD is processed: a `<!DOCTYPE` is refused before anything else
//! is read, and only the five predefined entities and character references are resolved. The body must
//! be UTF-8 (what Salesforce sends); a declaration naming another encoding is refused.
//!
//! Inside `notifications`, an element this crate does not know is refused rather than skipped: a
//! `Notification` in the wrong namespace would otherwise vanish and be acknowledged unseen. Fields of an
//! `sObject` may be in any namespace (the enterprise and partner WSDLs use different ones). A message with
//! no `Notification` parses to an empty list: whether that deserves an ack is the listener's choice.
//!
//! Element and attribute names must be QNames of Namespaces in XML, and `xsi:type` must hold one: a
//! name like `sf::x` is refused as not XML (quick-xml alone would read it as a field named `:x`). An
//! `sObject` without `xsi:type` is refused, since nothing else in the message names the record's object:
//! Salesforce always writes it, but a client generated from the WSDL need not (the interop test with
//! zeep adds it).

mod answer;
mod encode;
mod parse;
pub mod wsdl;
mod xml;

pub use answer::{Verdict, classify_answer};
pub use encode::{
    FaultCode, OutboundMessage, OutgoingNotification, encode_ack, encode_fault,
    encode_notifications, xml_safe_text,
};
pub use parse::{Limits, ParseError, ParsedMessage, ParsedNotification, parse_notifications};

/// Namespace URIs of the wire format.
pub mod ns {
    /// SOAP 1.1 envelope: the only envelope version Outbound Messaging speaks.
    pub const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
    /// SOAP 1.2 envelope: recognised only to refuse it with a `VersionMismatch` fault.
    pub const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
    /// The outbound-messaging operation: `notifications`, `notificationsResponse`, `Ack`.
    pub const OUTBOUND: &str = "http://soap.sforce.com/2005/09/outbound";
    /// XML Schema instance: `xsi:type`, `xsi:nil`.
    pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
    /// XML Schema.
    pub const XSD: &str = "http://www.w3.org/2001/XMLSchema";
    /// The enterprise sObject namespace that the `sf` prefix names in messages.
    pub const SOBJECT: &str = "urn:sobject.enterprise.soap.sforce.com";
}
