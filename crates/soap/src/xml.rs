//! XML plumbing shared by the request parser and the answer classifier: input checks that run before
//! any XML is read, and a namespace-aware cursor that turns quick-xml events into a small, strict stream
//! (start, end, resolved text, end of input).

use std::borrow::Cow;
use std::fmt;

use quick_xml::NsReader;
use quick_xml::XmlVersion;
use quick_xml::events::{BytesDecl, BytesRef, BytesStart, Event};
use quick_xml::name::{Namespace, QName, ResolveResult};

use crate::ns;
use crate::parse::ParseError;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// XML's whitespace (`S`), which is narrower than Unicode's.
pub(crate) fn is_xml_ws(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Trims XML whitespace, as XSD's `collapse` facet does at both ends.
pub(crate) fn trim_xml_ws(text: &str) -> &str {
    text.trim_matches([' ', '\t', '\n', '\r'])
}

/// Whether XML 1.0 can carry `c` at all (production `Char`).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// XML 1.0 `NameStartChar` without `:` (an NCName).
pub(crate) fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}'
        | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0 `NameChar` without `:`.
pub(crate) fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

fn is_ncname(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

/// Whether `name` is a QName of Namespaces in XML (`prefix:local` or `local`, each an NCName). quick-xml
/// splits names at the first colon without checking them, so `sf::x` or `a$b` would otherwise pass.
pub(crate) fn is_qname(name: &str) -> bool {
    match name.split_once(':') {
        Some((prefix, local)) => is_ncname(prefix) && is_ncname(local),
        None => is_ncname(name),
    }
}

/// At most `max` characters of `text` on one line, for quoting input in messages.
pub(crate) fn snippet(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(max.min(text.len()) + 3);
    let mut last_space = false;
    for (count, c) in text.chars().enumerate() {
        if count == max {
            out.push('…');
            break;
        }
        // Folding whitespace and controls keeps a quoted body on one readable line.
        if c.is_whitespace() || c.is_control() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out
}

/// A body that passed the checks that need no XML parsing: UTF-8, only XML characters, no DTD.
pub(crate) struct Input<'a> {
    /// The text after any byte-order mark.
    pub text: &'a str,
    /// Bytes before `text` in the body (the byte-order mark), so that positions count from the body.
    pub offset: usize,
}

impl<'a> Input<'a> {
    pub fn new(body: &'a [u8]) -> Result<Self, ParseError> {
        let (offset, rest) = match body.strip_prefix(UTF8_BOM) {
            Some(rest) => (UTF8_BOM.len(), rest),
            None => (0, body),
        };
        let text = std::str::from_utf8(rest).map_err(|e| ParseError::NotUtf8 {
            at: offset + e.valid_up_to(),
        })?;
        if let Some((at, code)) = first_illegal_char(rest) {
            return Err(ParseError::IllegalChar {
                code,
                at: offset + at,
            });
        }
        let input = Self { text, offset };
        input.refuse_doctype()?;
        Ok(input)
    }

    /// Refuses a DTD from the prolog alone, before quick-xml scans it: the refusal costs the same whatever
    /// the DTD holds, and no declaration in it is ever looked at.
    fn refuse_doctype(&self) -> Result<(), ParseError> {
        let mut rest = self.text;
        loop {
            rest = rest.trim_start_matches([' ', '\t', '\n', '\r']);
            let skip = if rest.starts_with("<?") {
                rest.find("?>").map(|i| i + 2)
            } else if rest.starts_with("<!--") {
                rest.find("-->").map(|i| i + 3)
            } else {
                None
            };
            match skip {
                Some(n) => rest = &rest[n..],
                None => break,
            }
        }
        let doctype = rest
            .as_bytes()
            .get(..9)
            .is_some_and(|head| head.eq_ignore_ascii_case(b"<!DOCTYPE"));
        if doctype {
            return Err(ParseError::Doctype {
                at: self.offset + (self.text.len() - rest.len()),
            });
        }
        Ok(())
    }
}

/// The first character XML 1.0 forbids, by byte position and code point. Works on bytes: every forbidden
/// character is either an ASCII control or the 3-byte sequence of U+FFFE / U+FFFF.
fn first_illegal_char(bytes: &[u8]) -> Option<(usize, u32)> {
    bytes.iter().enumerate().find_map(|(i, &b)| {
        if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') {
            return Some((i, u32::from(b)));
        }
        if b == 0xEF && bytes.get(i + 1) == Some(&0xBF) {
            return match bytes.get(i + 2) {
                Some(0xBE) => Some((i, 0xFFFE)),
                Some(0xBF) => Some((i, 0xFFFF)),
                _ => None,
            };
        }
        None
    })
}

/// An element's namespace, with the ones this crate acts on named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ns {
    None,
    Soap11,
    Soap12,
    Outbound,
    SObject,
    Other(String),
}

impl Ns {
    fn from_uri(uri: &str) -> Self {
        match uri {
            ns::SOAP11 => Ns::Soap11,
            ns::SOAP12 => Ns::Soap12,
            ns::OUTBOUND => Ns::Outbound,
            ns::SOBJECT => Ns::SObject,
            other => Ns::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for Ns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ns::None => "no namespace",
            Ns::Soap11 => ns::SOAP11,
            Ns::Soap12 => ns::SOAP12,
            Ns::Outbound => ns::OUTBOUND,
            Ns::SObject => ns::SOBJECT,
            Ns::Other(uri) => uri,
        })
    }
}

/// A start tag, resolved while its namespace bindings were in scope.
#[derive(Debug)]
pub(crate) struct Element {
    pub ns: Ns,
    pub local: String,
    /// `xsi:nil`, when present.
    pub nil: Option<bool>,
    /// The local name of the `xsi:type` QName, when present.
    pub xsi_type: Option<String>,
    /// Byte position of the tag in the body.
    pub at: usize,
}

impl Element {
    pub fn is(&self, ns: &Ns, local: &str) -> bool {
        self.ns == *ns && self.local == local
    }

    /// `local in namespace`, for messages.
    pub fn describe(&self) -> String {
        format!("{} in {}", self.local, self.ns)
    }
}

pub(crate) enum Item<'i> {
    Start(Element),
    End,
    /// Character data with references, CDATA and line ends resolved. One text node may arrive in
    /// several pieces.
    Text(Cow<'i, str>),
    Eof,
}

pub(crate) struct Cursor<'i> {
    reader: NsReader<&'i [u8]>,
    offset: usize,
    depth: usize,
    max_depth: usize,
    /// A self-closing tag was returned as a start; its end is due next.
    pending_end: bool,
    /// Byte position in the body where the last item began.
    at: usize,
}

impl<'i> Cursor<'i> {
    pub fn new(input: &Input<'i>, max_depth: usize) -> Self {
        let mut reader = NsReader::from_str(input.text);
        // Mismatched end tags are malformed XML, whatever the element means to us.
        reader.config_mut().check_end_names = true;
        Self {
            reader,
            offset: input.offset,
            depth: 0,
            max_depth,
            pending_end: false,
            at: input.offset,
        }
    }

    pub fn next(&mut self) -> Result<Item<'i>, ParseError> {
        if self.pending_end {
            self.pending_end = false;
            self.depth = self.depth.saturating_sub(1);
            return Ok(Item::End);
        }
        loop {
            self.at = self.offset + to_usize(self.reader.buffer_position());
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(e) => return Err(self.xml_error(&e)),
            };
            match event {
                Event::Start(tag) => return self.start(&tag).map(Item::Start),
                Event::Empty(tag) => {
                    let element = self.start(&tag)?;
                    self.pending_end = true;
                    return Ok(Item::Start(element));
                }
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    return Ok(Item::End);
                }
                // Line ends are normalised per event: a CR LF pair is never split across events, because
                // events end only at markup or references.
                Event::Text(text) => return Ok(Item::Text(text.xml10_content())),
                Event::CData(data) => return Ok(Item::Text(data.xml10_content())),
                Event::GeneralRef(reference) => return self.reference(&reference).map(Item::Text),
                Event::Comment(_) | Event::PI(_) => {}
                Event::Decl(decl) => self.check_decl(&decl)?,
                // Normally refused by `Input::new` already; this catches a DTD after other markup.
                Event::DocType(_) => return Err(ParseError::Doctype { at: self.at }),
                Event::Eof => return Ok(Item::Eof),
            }
        }
    }

    fn xml_error(&self, error: &quick_xml::Error) -> ParseError {
        ParseError::NotXml {
            message: error.to_string(),
            at: self.offset + to_usize(self.reader.error_position()),
        }
    }

    fn start(&mut self, tag: &BytesStart<'_>) -> Result<Element, ParseError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(ParseError::TooDeep {
                limit: self.max_depth,
            });
        }
        let at = self.at;
        if !is_qname(tag.name().as_ref()) {
            return Err(ParseError::NotXml {
                message: format!(
                    "element name \"{}\" is not a valid XML name",
                    snippet(tag.name().as_ref(), 40)
                ),
                at,
            });
        }
        let resolver = self.reader.resolver();
        let (ns, local) = resolver.resolve_element(tag.name());
        let ns = match ns {
            ResolveResult::Bound(Namespace(uri)) => Ns::from_uri(uri),
            ResolveResult::Unbound => Ns::None,
            ResolveResult::Unknown(prefix) => {
                return Err(ParseError::UndeclaredPrefix { prefix, at });
            }
        };
        let mut element = Element {
            ns,
            local: local.as_ref().to_owned(),
            nil: None,
            xsi_type: None,
            at,
        };
        for attribute in tag.attributes() {
            let attribute = attribute.map_err(|e| ParseError::NotXml {
                message: e.to_string(),
                at,
            })?;
            if !is_qname(attribute.key.as_ref()) {
                return Err(ParseError::NotXml {
                    message: format!(
                        "attribute name \"{}\" is not a valid XML name",
                        snippet(attribute.key.as_ref(), 40)
                    ),
                    at,
                });
            }
            // Every value is resolved, even of attributes we ignore: an unknown entity anywhere makes the
            // document malformed, and it must never pass silently.
            let value = attribute
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| ParseError::NotXml {
                    message: format!("attribute {}: {e}", attribute.key.as_ref()),
                    at,
                })?;
            let (attribute_ns, attribute_local) = resolver.resolve_attribute(attribute.key);
            match attribute_ns {
                ResolveResult::Bound(Namespace(ns::XSI)) => match attribute_local.as_ref() {
                    "nil" => {
                        element.nil =
                            Some(xsd_boolean(&value).ok_or_else(|| ParseError::InvalidNil {
                                value: snippet(&value, 40),
                                at,
                            })?)
                    }
                    "type" => {
                        let type_name = trim_xml_ws(&value);
                        // xsi:type holds a QName; anything else names no type at all.
                        if !is_qname(type_name) {
                            return Err(ParseError::NotXml {
                                message: format!(
                                    "xsi:type \"{}\" is not a QName",
                                    snippet(type_name, 40)
                                ),
                                at,
                            });
                        }
                        let (type_local, type_prefix) = QName(type_name).decompose();
                        // The prefix must be in scope even though only the local name is kept: an
                        // undeclared prefix means the sender did not say what the type is.
                        if let ResolveResult::Unknown(prefix) =
                            resolver.resolve_prefix(type_prefix, true)
                        {
                            return Err(ParseError::UndeclaredPrefix { prefix, at });
                        }
                        element.xsi_type = Some(type_local.as_ref().to_owned());
                    }
                    _ => {}
                },
                ResolveResult::Unknown(prefix) => {
                    return Err(ParseError::UndeclaredPrefix { prefix, at });
                }
                _ => {}
            }
        }
        Ok(element)
    }

    fn reference(&self, reference: &BytesRef<'_>) -> Result<Cow<'i, str>, ParseError> {
        let at = self.at;
        let resolved = reference
            .resolve_char_ref()
            .map_err(|e| ParseError::NotXml {
                message: e.to_string(),
                at,
            })?;
        if let Some(c) = resolved {
            if !is_xml_char(c) {
                return Err(ParseError::IllegalChar {
                    code: u32::from(c),
                    at,
                });
            }
            return Ok(Cow::Owned(c.to_string()));
        }
        let text = match &**reference {
            "lt" => "<",
            "gt" => ">",
            "amp" => "&",
            "apos" => "'",
            "quot" => "\"",
            name => {
                return Err(ParseError::UnknownEntity {
                    name: snippet(name, 40),
                    at,
                });
            }
        };
        Ok(Cow::Borrowed(text))
    }

    fn check_decl(&self, decl: &BytesDecl<'_>) -> Result<(), ParseError> {
        if let Some(Ok(encoding)) = decl.encoding() {
            let supported = ["utf-8", "utf8", "us-ascii", "ascii"]
                .iter()
                .any(|name| encoding.eq_ignore_ascii_case(name));
            if !supported {
                return Err(ParseError::UnsupportedEncoding(snippet(&encoding, 40)));
            }
        }
        Ok(())
    }

    /// The root element, past the prolog.
    pub fn root(&mut self) -> Result<Element, ParseError> {
        loop {
            match self.next()? {
                Item::Start(element) => return Ok(element),
                Item::Text(text) if is_xml_ws(&text) => {}
                Item::Text(text) => {
                    return Err(ParseError::NotXml {
                        message: format!(
                            "text outside any element ({})",
                            snippet(trim_xml_ws(&text), 40)
                        ),
                        at: self.at,
                    });
                }
                Item::End | Item::Eof => {
                    return Err(ParseError::NotXml {
                        message: "no root element".to_owned(),
                        at: self.at,
                    });
                }
            }
        }
    }

    /// Reads past the root element to the end: only whitespace, comments and processing instructions may
    /// follow it.
    pub fn finish(&mut self) -> Result<(), ParseError> {
        loop {
            match self.next()? {
                Item::Eof => return Ok(()),
                Item::Text(text) if is_xml_ws(&text) => {}
                Item::Text(text) => {
                    return Err(ParseError::NotXml {
                        message: format!(
                            "text after the root element ({})",
                            snippet(trim_xml_ws(&text), 40)
                        ),
                        at: self.at,
                    });
                }
                Item::Start(element) => {
                    return Err(ParseError::NotXml {
                        message: format!("a second root element ({})", element.local),
                        at: element.at,
                    });
                }
                Item::End => {
                    return Err(ParseError::NotXml {
                        message: "an end tag after the root element".to_owned(),
                        at: self.at,
                    });
                }
            }
        }
    }

    /// Reads past the content and end of `element`, checking only that it is well-formed.
    pub fn skip(&mut self, element: &Element) -> Result<(), ParseError> {
        let mut open = 1usize;
        while open > 0 {
            match self.next()? {
                Item::Start(_) => open += 1,
                Item::End => open -= 1,
                Item::Text(_) => {}
                Item::Eof => return Err(self.truncated(element)),
            }
        }
        Ok(())
    }

    /// The text content of `element`, which must hold no element.
    pub fn text_only(&mut self, element: &Element) -> Result<String, ParseError> {
        let mut text = String::new();
        loop {
            match self.next()? {
                Item::Text(piece) => text.push_str(&piece),
                Item::End => return Ok(text),
                Item::Start(child) => {
                    return Err(ParseError::Unexpected {
                        found: format!("element {}", child.describe()),
                        context: element.local.clone(),
                        at: child.at,
                    });
                }
                Item::Eof => return Err(self.truncated(element)),
            }
        }
    }

    /// Accepts whitespace between elements and refuses any other text there.
    pub fn formatting(&self, text: &str, context: &Element) -> Result<(), ParseError> {
        if is_xml_ws(text) {
            return Ok(());
        }
        Err(ParseError::Unexpected {
            found: format!("text \"{}\"", snippet(trim_xml_ws(text), 40)),
            context: context.local.clone(),
            at: self.at,
        })
    }

    pub fn truncated(&self, open: &Element) -> ParseError {
        ParseError::Truncated {
            open: open.local.clone(),
            at: self.at,
        }
    }
}

/// An `xsd:boolean` in any of its lexical forms, surrounding whitespace allowed.
pub(crate) fn xsd_boolean(text: &str) -> Option<bool> {
    match trim_xml_ws(text) {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

fn to_usize(position: u64) -> usize {
    usize::try_from(position).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn illegal_characters_are_found_by_byte() {
        assert_eq!(first_illegal_char(b"ok\t\n\r"), None);
        assert_eq!(first_illegal_char(b"a\x01"), Some((1, 1)));
        assert_eq!(
            first_illegal_char("x\u{FFFE}".as_bytes()),
            Some((1, 0xFFFE))
        );
        assert_eq!(
            first_illegal_char("x\u{FFFF}".as_bytes()),
            Some((1, 0xFFFF))
        );
        assert_eq!(first_illegal_char("\u{FFFD}\u{FEFF}".as_bytes()), None);
    }

    #[test]
    fn doctype_is_found_after_declaration_comments_and_pis() {
        let body = b"<?xml version=\"1.0\"?>\n<!-- c --><?pi x?>\n<!doctype x>";
        assert!(matches!(
            Input::new(body),
            Err(ParseError::Doctype { at: 41 })
        ));
        assert!(Input::new(b"<a><![CDATA[<!DOCTYPE]]></a>").is_ok());
    }

    #[test]
    fn snippets_stay_on_one_line_and_short() {
        assert_eq!(snippet("a\n\n b", 10), "a b");
        assert_eq!(snippet("abcdef", 3), "abc…");
    }
}
