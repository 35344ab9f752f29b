//! Reading an outbound-messaging request as a listener receives it.

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use crate::encode::FaultCode;
use crate::ns;
use crate::xml::{Cursor, Element, Input, Item, Ns, is_xml_ws};

/// Bounds on what [`parse_notifications`] reads, so that a hostile or broken body costs bounded time and
/// memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest body accepted, in bytes. Default 10 MiB.
    pub max_body_bytes: usize,
    /// Deepest element nesting accepted (the envelope counts as 1; a field of a message is at 6).
    /// Default 32.
    pub max_depth: usize,
    /// Most `Notification` elements in one message. Default 100, Salesforce's batch size.
    pub max_notifications: usize,
    /// Most fields in one `sObject`. Default 1000.
    pub max_fields: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 10 * 1024 * 1024,
            max_depth: 32,
            max_notifications: 100,
            max_fields: 1000,
        }
    }
}

/// What a request carries. Serializes to the shape of the conformance `expected/*.json` files.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct ParsedMessage {
    /// `OrganizationId`; `None` when absent or `xsi:nil`. Present whenever there is a notification.
    pub organization_id: Option<String>,
    /// `ActionId`, the outbound-message definition (not checked for its `04k` prefix: real messages vary).
    pub action_id: Option<String>,
    /// `SessionId`; `None` when absent or `xsi:nil` (the action sends no session).
    pub session_id: Option<String>,
    /// `EnterpriseUrl`: the enterprise API endpoint of the sending org.
    pub enterprise_url: Option<String>,
    /// `PartnerUrl`: the partner API endpoint of the sending org.
    pub partner_url: Option<String>,
    /// In document order.
    pub notifications: Vec<ParsedNotification>,
}

/// Fields of a notification as read: name, then `None` for nil or the text.
type Fields = Vec<(String, Option<String>)>;

/// One `Notification`.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedNotification {
    /// The notification id (`04l…`, the same on every retry), as written.
    pub id: String,
    /// The local name of the `sObject`'s `xsi:type`, e.g. `Case`.
    pub object_type: String,
    /// Fields in document order: `None` for `xsi:nil`, `Some("")` for an empty element, else the text
    /// with references, CDATA and line ends resolved and nothing trimmed. Empty for a deleted record.
    pub fields: Vec<(String, Option<String>)>,
}

impl ParsedNotification {
    /// The field named `name`: `None` when the message does not carry it, `Some(None)` when it is nil.
    pub fn field(&self, name: &str) -> Option<Option<&str>> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_deref())
    }
}

impl Serialize for ParsedNotification {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Fields go out as a JSON object (name -> value or null) in document order, matching the
        // conformance files; a derived impl would write a list of pairs.
        struct FieldsAsMap<'a>(&'a [(String, Option<String>)]);
        impl Serialize for FieldsAsMap<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_map(self.0.iter().map(|(name, value)| (name, value)))
            }
        }
        let mut state = serializer.serialize_struct("ParsedNotification", 3)?;
        state.serialize_field("id", &self.id)?;
        state.serialize_field("object_type", &self.object_type)?;
        state.serialize_field("fields", &FieldsAsMap(&self.fields))?;
        state.end()
    }
}

/// Why a request was refused. `Display` is meant to be sent as the SOAP `faultstring`: it says what is
/// wrong, and where in the body when that helps. Byte positions count from the start of the body.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The body exceeds [`Limits::max_body_bytes`].
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The body is empty or only whitespace.
    #[error("empty body: expected a SOAP 1.1 envelope")]
    Empty,
    /// The body is not UTF-8.
    #[error("body is not UTF-8 (invalid byte at byte {at}); outbound messages are UTF-8")]
    NotUtf8 { at: usize },
    /// A character XML 1.0 forbids, literal or as a character reference.
    #[error("character U+{code:04X} at byte {at} is not allowed in XML 1.0")]
    IllegalChar { code: u32, at: usize },
    /// The XML declaration names an encoding other than UTF-8 (or its subset US-ASCII).
    #[error("encoding \"{0}\" is not supported; send UTF-8")]
    UnsupportedEncoding(String),
    /// A document type declaration: refused unread, so no entity can ever be expanded.
    #[error("DTDs are not accepted (<!DOCTYPE at byte {at}); no entity is ever expanded")]
    Doctype { at: usize },
    /// An entity reference other than the five predefined ones.
    #[error(
        "unknown entity &{name}; at byte {at}: only the five predefined XML entities are accepted"
    )]
    UnknownEntity { name: String, at: usize },
    /// Not well-formed XML, as quick-xml reports it.
    #[error("not XML: {message} at byte {at}")]
    NotXml { message: String, at: usize },
    /// The input ends while an element is still open.
    #[error("not XML: the body ends inside <{open}> at byte {at} (truncated?)")]
    Truncated { open: String, at: usize },
    /// Elements nest deeper than [`Limits::max_depth`].
    #[error("element nesting deeper than {limit}")]
    TooDeep { limit: usize },
    /// An element, attribute or `xsi:type` value uses a prefix no `xmlns` declares.
    #[error("namespace prefix \"{prefix}\" is not declared (at byte {at})")]
    UndeclaredPrefix { prefix: String, at: usize },
    /// `xsi:nil` holds something other than an `xsd:boolean`.
    #[error("invalid xsi:nil \"{value}\" at byte {at}: expected true, false, 1 or 0")]
    InvalidNil { value: String, at: usize },
    /// A SOAP 1.2 envelope; answered with a `VersionMismatch` fault.
    #[error("SOAP 1.2 envelope ({}) is not supported; send SOAP 1.1", ns::SOAP12)]
    Soap12,
    /// The root element is not a SOAP envelope.
    #[error("expected a SOAP 1.1 Envelope in {}, found {found}", ns::SOAP11)]
    NotEnvelope { found: String },
    /// The envelope has no `Body`.
    #[error("SOAP Envelope has no Body")]
    NoBody,
    /// The `Body` holds no element.
    #[error("SOAP Body is empty: expected notifications in {}", ns::OUTBOUND)]
    EmptyBody,
    /// The `Body` holds something other than `notifications` in the outbound namespace.
    #[error("expected notifications in {}, found {found}", ns::OUTBOUND)]
    WrongOperation { found: String },
    /// An element or text where the format has none.
    #[error("unexpected {found} in {context} at byte {at}")]
    Unexpected {
        found: String,
        context: String,
        at: usize,
    },
    /// An element that may appear once appears again (a header, `Id`, `sObject`, a field).
    #[error("{element} appears more than once in {context}")]
    Duplicate { element: String, context: String },
    /// An element marked `xsi:nil` that has content.
    #[error("{element} is xsi:nil but has content (at byte {at})")]
    NilWithContent { element: String, at: usize },
    /// Notifications without an `OrganizationId` to say whose they are.
    #[error("missing OrganizationId")]
    MissingOrganizationId,
    /// A `Notification` without an `Id` (or with an empty one); `index` counts from 1.
    #[error("Notification {index} has no Id")]
    MissingNotificationId { index: usize },
    /// Two notifications of one message carry the same id; `first` and `index` count from 1.
    #[error("Notification {index} repeats the Id {id} of Notification {first}")]
    RepeatedNotificationId {
        id: String,
        first: usize,
        index: usize,
    },
    /// A `Notification` without an `sObject`.
    #[error("Notification {index} has no sObject")]
    MissingSObject { index: usize },
    /// An `sObject` without `xsi:type`, so its object is unknown.
    #[error("Notification {index}: sObject has no xsi:type")]
    MissingType { index: usize },
    /// More notifications than [`Limits::max_notifications`].
    #[error("more than {limit} notifications")]
    TooManyNotifications { limit: usize },
    /// An `sObject` with more fields than [`Limits::max_fields`].
    #[error("Notification {index} has more than {limit} fields")]
    TooManyFields { index: usize, limit: usize },
}

impl ParseError {
    /// The SOAP 1.1 fault code to answer with: `VersionMismatch` for a SOAP 1.2 envelope (SOAP 1.1
    /// section 4.4.1), `Client` for everything else, since every refusal is about what was sent.
    pub fn fault_code(&self) -> FaultCode {
        match self {
            ParseError::Soap12 => FaultCode::VersionMismatch,
            _ => FaultCode::Client,
        }
    }
}

/// Parses an outbound-messaging request (the POST body, as received).
///
/// Refuses, with a [`ParseError`] fit to send as a fault string: bodies over the limits, anything not
/// well-formed UTF-8 XML 1.0, any DTD, SOAP 1.2, a Body whose first element is not
/// `{http://soap.sforce.com/2005/09/outbound}notifications`, elements inside `notifications` that the
/// format does not define, a `Notification` without `Id` or `sObject`, and a message that has
/// notifications but no `OrganizationId`. Ids are not checked for key prefixes or checksums.
pub fn parse_notifications(body: &[u8], limits: &Limits) -> Result<ParsedMessage, ParseError> {
    if body.len() > limits.max_body_bytes {
        return Err(ParseError::TooLarge {
            limit: limits.max_body_bytes,
        });
    }
    let input = Input::new(body)?;
    if is_xml_ws(input.text) {
        return Err(ParseError::Empty);
    }
    let mut cursor = Cursor::new(&input, limits.max_depth);
    let root = cursor.root()?;
    if root.is(&Ns::Soap12, "Envelope") {
        return Err(ParseError::Soap12);
    }
    if !root.is(&Ns::Soap11, "Envelope") {
        return Err(ParseError::NotEnvelope {
            found: root.describe(),
        });
    }
    let mut parser = Parser { cursor, limits };
    let message = parser.envelope(&root)?;
    parser.cursor.finish()?;
    Ok(message)
}

struct Parser<'i, 'l> {
    cursor: Cursor<'i>,
    limits: &'l Limits,
}

impl Parser<'_, '_> {
    fn envelope(&mut self, envelope: &Element) -> Result<ParsedMessage, ParseError> {
        let mut message = None;
        loop {
            match self.cursor.next()? {
                Item::Start(child) if child.is(&Ns::Soap11, "Body") => {
                    if message.is_some() {
                        return Err(ParseError::Duplicate {
                            element: "Body".to_owned(),
                            context: "Envelope".to_owned(),
                        });
                    }
                    message = Some(self.body(&child)?);
                }
                // The Header is ignored: Salesforce sends none and defines no header a listener must obey.
                Item::Start(child) if child.is(&Ns::Soap11, "Header") && message.is_none() => {
                    self.cursor.skip(&child)?;
                }
                // SOAP 1.1 allows further namespace-qualified elements after the Body.
                Item::Start(child) if message.is_some() => self.cursor.skip(&child)?,
                Item::Start(child) => {
                    return Err(ParseError::Unexpected {
                        found: format!("element {}", child.describe()),
                        context: "Envelope".to_owned(),
                        at: child.at,
                    });
                }
                Item::Text(text) => self.cursor.formatting(&text, envelope)?,
                Item::End => return message.ok_or(ParseError::NoBody),
                Item::Eof => return Err(self.cursor.truncated(envelope)),
            }
        }
    }

    fn body(&mut self, body: &Element) -> Result<ParsedMessage, ParseError> {
        let mut message = None;
        loop {
            match self.cursor.next()? {
                Item::Start(child) if message.is_some() => {
                    return Err(ParseError::Unexpected {
                        found: format!("element {} after notifications", child.describe()),
                        context: "Body".to_owned(),
                        at: child.at,
                    });
                }
                Item::Start(child) if child.is(&Ns::Outbound, "notifications") => {
                    message = Some(self.notifications(&child)?);
                }
                Item::Start(child) => {
                    return Err(ParseError::WrongOperation {
                        found: child.describe(),
                    });
                }
                Item::Text(text) => self.cursor.formatting(&text, body)?,
                Item::End => return message.ok_or(ParseError::EmptyBody),
                Item::Eof => return Err(self.cursor.truncated(body)),
            }
        }
    }

    fn notifications(&mut self, element: &Element) -> Result<ParsedMessage, ParseError> {
        const HEADERS: [&str; 5] = [
            "OrganizationId",
            "ActionId",
            "SessionId",
            "EnterpriseUrl",
            "PartnerUrl",
        ];
        let mut message = ParsedMessage::default();
        // A nil header reads as `None`, like an absent one, so repeats are tracked apart from values.
        let mut seen = [false; HEADERS.len()];
        loop {
            match self.cursor.next()? {
                Item::Start(child) if child.is(&Ns::Outbound, "Notification") => {
                    if message.notifications.len() >= self.limits.max_notifications {
                        return Err(ParseError::TooManyNotifications {
                            limit: self.limits.max_notifications,
                        });
                    }
                    let index = message.notifications.len() + 1;
                    let notification = self.notification(&child, index)?;
                    // A listener stores by notification id: a second notification with the same id
                    // would be acknowledged and never seen. Salesforce never repeats one in a message.
                    // (At most 100 notifications: a linear scan is cheaper than a set.)
                    if let Some(first) = message
                        .notifications
                        .iter()
                        .position(|n| n.id == notification.id)
                    {
                        return Err(ParseError::RepeatedNotificationId {
                            id: notification.id,
                            first: first + 1,
                            index,
                        });
                    }
                    message.notifications.push(notification);
                }
                Item::Start(child) if child.ns == Ns::Outbound => {
                    let Some(slot) = HEADERS.iter().position(|name| *name == child.local) else {
                        return Err(unexpected_element(&child, "notifications"));
                    };
                    if std::mem::replace(&mut seen[slot], true) {
                        return Err(ParseError::Duplicate {
                            element: child.local,
                            context: "notifications".to_owned(),
                        });
                    }
                    let value = self.leaf(&child)?;
                    *match slot {
                        0 => &mut message.organization_id,
                        1 => &mut message.action_id,
                        2 => &mut message.session_id,
                        3 => &mut message.enterprise_url,
                        _ => &mut message.partner_url,
                    } = value;
                }
                Item::Start(child) => return Err(unexpected_element(&child, "notifications")),
                Item::Text(text) => self.cursor.formatting(&text, element)?,
                Item::End => break,
                Item::Eof => return Err(self.cursor.truncated(element)),
            }
        }
        let has_organization = message
            .organization_id
            .as_deref()
            .is_some_and(|id| !is_xml_ws(id));
        if !message.notifications.is_empty() && !has_organization {
            return Err(ParseError::MissingOrganizationId);
        }
        Ok(message)
    }

    fn notification(
        &mut self,
        element: &Element,
        index: usize,
    ) -> Result<ParsedNotification, ParseError> {
        let context = || format!("Notification {index}");
        let mut id: Option<Option<String>> = None;
        let mut sobject: Option<(String, Fields)> = None;
        loop {
            match self.cursor.next()? {
                Item::Start(child) if child.is(&Ns::Outbound, "Id") => {
                    if id.is_some() {
                        return Err(ParseError::Duplicate {
                            element: "Id".to_owned(),
                            context: context(),
                        });
                    }
                    id = Some(self.leaf(&child)?);
                }
                Item::Start(child) if child.is(&Ns::Outbound, "sObject") => {
                    if sobject.is_some() {
                        return Err(ParseError::Duplicate {
                            element: "sObject".to_owned(),
                            context: context(),
                        });
                    }
                    sobject = Some(self.sobject(&child, index)?);
                }
                Item::Start(child) => return Err(unexpected_element(&child, &context())),
                Item::Text(text) => self.cursor.formatting(&text, element)?,
                Item::End => break,
                Item::Eof => return Err(self.cursor.truncated(element)),
            }
        }
        let Some(Some(id)) = id.filter(|id| id.as_deref().is_some_and(|id| !is_xml_ws(id))) else {
            return Err(ParseError::MissingNotificationId { index });
        };
        let Some((object_type, fields)) = sobject else {
            return Err(ParseError::MissingSObject { index });
        };
        Ok(ParsedNotification {
            id,
            object_type,
            fields,
        })
    }

    fn sobject(&mut self, element: &Element, index: usize) -> Result<(String, Fields), ParseError> {
        let object_type = match &element.xsi_type {
            Some(name) if !name.is_empty() => name.clone(),
            _ => return Err(ParseError::MissingType { index }),
        };
        let mut fields: Fields = Vec::new();
        loop {
            match self.cursor.next()? {
                Item::Start(field) => {
                    if fields.len() >= self.limits.max_fields {
                        return Err(ParseError::TooManyFields {
                            index,
                            limit: self.limits.max_fields,
                        });
                    }
                    let value = self.leaf(&field)?;
                    fields.push((field.local, value));
                }
                Item::Text(text) => self.cursor.formatting(&text, element)?,
                Item::End => break,
                Item::Eof => return Err(self.cursor.truncated(element)),
            }
        }
        // Fields become a name-keyed map downstream; a repeated name would silently lose a value there.
        let mut names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(ParseError::Duplicate {
                element: format!("field {}", pair[0]),
                context: format!("Notification {index}"),
            });
        }
        Ok((object_type, fields))
    }

    /// A text-only element: `None` when `xsi:nil` is true, else its text exactly.
    fn leaf(&mut self, element: &Element) -> Result<Option<String>, ParseError> {
        let text = self.cursor.text_only(element)?;
        if element.nil == Some(true) {
            // XSD requires a nil element to be empty; whitespace is tolerated as formatting.
            if !is_xml_ws(&text) {
                return Err(ParseError::NilWithContent {
                    element: element.local.clone(),
                    at: element.at,
                });
            }
            return Ok(None);
        }
        Ok(Some(text))
    }
}

fn unexpected_element(element: &Element, context: &str) -> ParseError {
    ParseError::Unexpected {
        found: format!("element {}", element.describe()),
        context: context.to_owned(),
        at: element.at,
    }
}
