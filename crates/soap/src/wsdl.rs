//! The WSDL of an outbound-message action, structured like the ones Salesforce generates (see the
//! conformance `wsdl/real-DiscountRule__c.wsdl`), so that listeners generated from it by SOAP toolkits
//! (JAX-WS, .NET, PHP SoapServer, node soap, zeep) accept exactly what the desk sends.

use model::{FieldType, ObjectSchema, OutboundAction};

use crate::encode::put_name;

/// The WSDL for `action` on `schema`'s object: three schemas (`urn:enterprise.soap.sforce.com` with
/// the 18-character `ID` type; `urn:sobject.enterprise.soap.sforce.com` with the base `sObject`, which
/// carries `Id`, and the object's type extending it with one `nillable="true" minOccurs="0"` element per
/// selected field in ASCII order; the outbound namespace with `notifications` (at most 100
/// `Notification`s), `<Object>Notification` and `notificationsResponse`), the messages,
/// `NotificationPort`, `NotificationBinding` (document/literal, `soapAction=""`) and
/// `NotificationService` whose address is the action's endpoint URL.
///
/// The element list is [`OutboundAction::wire_fields`] without `Id`: exactly the fields the desk sends.
/// Each element's type is its field type's [`FieldType::xsd_type`]; a field the schema does not define
/// (the desk's catalog refuses such actions at start) is declared `xsd:string`. Names that are not XML
/// names are written with `_` for the offending characters, as in messages. Pure: the same input gives
/// the same bytes (there is no generation date, unlike Salesforce's header comment).
pub fn generate(action: &OutboundAction, schema: &ObjectSchema) -> String {
    let object = name(&action.object);
    let mut elements = String::new();
    for field in action.wire_fields().into_iter().filter(|f| *f != "Id") {
        let xsd_type = schema
            .field(field)
            .map_or(FieldType::String.xsd_type(), |def| def.ftype.xsd_type());
        elements.push_str(&format!(
            "                            <element name=\"{}\" nillable=\"true\" minOccurs=\"0\" type=\"{xsd_type}\"/>\n",
            name(field)
        ));
    }
    let endpoint = attribute(&action.endpoint_url);
    format!(
        r###"<?xml version="1.0" encoding="UTF-8"?>
<!--
casewire Outbound Notification Web Services API Version 1.0
for the outbound message {action_name} on {object}.
-->
<definitions targetNamespace="http://soap.sforce.com/2005/09/outbound"
             xmlns="http://schemas.xmlsoap.org/wsdl/"
             xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
             xmlns:tns="http://soap.sforce.com/2005/09/outbound"
             xmlns:xsd="http://www.w3.org/2001/XMLSchema"
             xmlns:ent="urn:enterprise.soap.sforce.com"
             xmlns:ens="urn:sobject.enterprise.soap.sforce.com">
    <types>

        <schema elementFormDefault="qualified" xmlns="http://www.w3.org/2001/XMLSchema"
                targetNamespace="urn:enterprise.soap.sforce.com">
            <!-- Our simple ID Type -->
            <simpleType name="ID">
                <restriction base="xsd:string">
                    <length value="18"/>
                    <pattern value='[a-zA-Z0-9]{{18}}'/>
                </restriction>
            </simpleType>
        </schema>

        <schema elementFormDefault="qualified" xmlns="http://www.w3.org/2001/XMLSchema"
                targetNamespace="urn:sobject.enterprise.soap.sforce.com">
            <import namespace="urn:enterprise.soap.sforce.com"/>
            <!-- Base sObject (abstract) -->
            <complexType name="sObject">
                <sequence>
                    <element name="fieldsToNull" type="xsd:string" nillable="true" minOccurs="0" maxOccurs="unbounded"/>
                    <element name="Id" type="ent:ID" nillable="true"/>
                </sequence>
            </complexType>

            <complexType name="AggregateResult">
                <complexContent>
                    <extension base="ens:sObject">
                        <sequence>
                            <any namespace="##targetNamespace" minOccurs="0" maxOccurs="unbounded"
                                 processContents="lax"/>
                        </sequence>
                    </extension>
                </complexContent>
            </complexType>

            <complexType name="{object}">
                <complexContent>
                    <extension base="ens:sObject">
                        <sequence>
{elements}                        </sequence>
                    </extension>
                </complexContent>
            </complexType>

        </schema>

        <schema elementFormDefault="qualified" xmlns="http://www.w3.org/2001/XMLSchema"
                targetNamespace="http://soap.sforce.com/2005/09/outbound">
            <import namespace="urn:enterprise.soap.sforce.com"/>
            <import namespace="urn:sobject.enterprise.soap.sforce.com"/>

            <element name="notifications">
                <complexType>
                    <sequence>
                        <element name="OrganizationId" type="ent:ID"/>
                        <element name="ActionId" type="ent:ID"/>
                        <element name="SessionId" type="xsd:string" nillable="true"/>
                        <element name="EnterpriseUrl" type="xsd:string"/>
                        <element name="PartnerUrl" type="xsd:string"/>
                        <element name="Notification" maxOccurs="100" type="tns:{object}Notification"/>
                    </sequence>
                </complexType>
            </element>

            <complexType name="{object}Notification">
                <sequence>
                    <element name="Id" type="ent:ID"/>
                    <element name="sObject" type="ens:{object}"/>
                </sequence>
            </complexType>

            <element name="notificationsResponse">
                <complexType>
                    <sequence>
                        <element name="Ack" type="xsd:boolean"/>
                    </sequence>
                </complexType>
            </element>
        </schema>
    </types>

    <!-- Method Messages -->
    <message name="notificationsRequest">
        <part element="tns:notifications" name="request"/>
    </message>
    <message name="notificationsResponse">
        <part element="tns:notificationsResponse" name="response"/>
    </message>

    <!-- PortType -->
    <portType name="NotificationPort">
        <operation name="notifications">
            <documentation>Process a number of notifications.</documentation>
            <input message="tns:notificationsRequest"/>
            <output message="tns:notificationsResponse"/>
        </operation>
    </portType>

    <!-- Binding
         You need to write a service that implements this binding to receive the notifications
     -->
    <binding name="NotificationBinding" type="tns:NotificationPort">
        <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>

        <operation name="notifications">
            <soap:operation soapAction=""/>
            <input>
                <soap:body use="literal"/>
            </input>
            <output>
                <soap:body use="literal"/>
            </output>
        </operation>
    </binding>

    <!-- Service Endpoint -->
    <service name="NotificationService">
        <documentation>Notification Service Implementation</documentation>
        <port binding="tns:NotificationBinding" name="Notification">
            <soap:address location="{endpoint}"/>
        </port>
    </service>

</definitions>
"###,
        action_name = name(&action.name),
    )
}

/// An NCName, as the encoder writes element and type names.
fn name(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    put_name(&mut out, text);
    // `put_name` writes whole characters or `_`, so the bytes stay UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Attribute content in double quotes, with the characters XML 1.0 cannot carry replaced as in
/// messages (see the crate documentation).
fn attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in crate::xml_safe_text(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // Attribute-value normalisation would turn these into spaces; references keep them.
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_escaped() {
        assert_eq!(
            attribute("http://h/p?a=1&b=\"2\"<>\t\n\r\u{1}"),
            "http://h/p?a=1&amp;b=&quot;2&quot;&lt;&gt;&#9;&#10;&#13;\u{FFFD}"
        );
    }
}
