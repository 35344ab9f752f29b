//! The WSDL of an outbound-message action: the same structure as the WSDL Salesforce generates (checked
//! element by element against the real one in the conformance set), and pinned as snapshots for the
//! demo's action and for an action with every field type.

use model::{FieldDef, FieldType, ObjectSchema, OutboundAction, PayloadMode, SfId};

fn action(name: &str, object: &str, endpoint: &str, fields: &[&str]) -> OutboundAction {
    OutboundAction {
        name: name.to_owned(),
        id: SfId::derived(
            model::id::prefix::OUTBOUND_MESSAGE,
            &format!("{object}.{name}"),
        ),
        object: object.to_owned(),
        endpoint_url: endpoint.to_owned(),
        fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        api_version: "60.0".to_owned(),
        include_session_id: false,
        integration_user: None,
        use_dead_letter_queue: true,
        payload_mode: PayloadMode::Latest,
        description: None,
    }
}

fn field(name: &str, ftype: FieldType) -> FieldDef {
    FieldDef {
        name: name.to_owned(),
        ftype,
        updateable: true,
    }
}

/// Every field type, one custom field each, on a custom object.
pub fn every_type_schema() -> ObjectSchema {
    ObjectSchema::custom(
        "Every_Type__c",
        "a0E",
        [
            field("Account__c", FieldType::Reference),
            field("Amount__c", FieldType::Currency),
            field("Count__c", FieldType::Int),
            field("Due__c", FieldType::Date),
            field("Email__c", FieldType::Email),
            field("Flag__c", FieldType::Boolean),
            field("Notes__c", FieldType::Textarea),
            field("Phone__c", FieldType::Phone),
            field("Rate__c", FieldType::Percent),
            field("Score__c", FieldType::Double),
            field("Stage__c", FieldType::Picklist),
            field("Tags__c", FieldType::Multipicklist),
            field("Title__c", FieldType::String),
            field("Website__c", FieldType::Url),
            field("When__c", FieldType::Datetime),
        ],
    )
}

fn demo_action() -> OutboundAction {
    action(
        "Case_Closed_To_Legacy",
        "Case",
        "http://127.0.0.1:7411/inbox/legacy",
        &[
            "CaseNumber",
            "ClosedDate",
            "IsClosed",
            "Status",
            "Subject",
            "SystemModstamp",
        ],
    )
}

#[test]
fn demo_action_wsdl() {
    insta::assert_snapshot!(
        "wsdl_demo_case",
        soap::wsdl::generate(&demo_action(), &ObjectSchema::case())
    );
}

#[test]
fn every_field_type_wsdl() {
    let schema = every_type_schema();
    // Listed out of order, with Id and a duplicate: the WSDL lists each once, Id only in the base type.
    let mut fields: Vec<&str> = schema.fields.keys().map(String::as_str).rev().collect();
    fields.push("Title__c");
    let action = action(
        "Every_Type_Out",
        "Every_Type__c",
        "https://legacy.example.com/om?a=1&b=2",
        &fields,
    );
    insta::assert_snapshot!(
        "wsdl_every_field_type",
        soap::wsdl::generate(&action, &schema)
    );
}

/// `(name, type)` of the object's elements, in document order.
fn object_elements(wsdl: &str, object: &str) -> Vec<(String, String)> {
    let doc = roxmltree::Document::parse(wsdl).expect("the WSDL is well-formed XML");
    let complex = doc
        .descendants()
        .find(|n| n.has_tag_name("complexType") && n.attribute("name") == Some(object))
        .expect("the object's complexType");
    complex
        .descendants()
        .filter(|n| n.has_tag_name("element"))
        .map(|n| {
            assert_eq!(n.attribute("nillable"), Some("true"));
            assert_eq!(n.attribute("minOccurs"), Some("0"));
            (
                n.attribute("name").unwrap_or_default().to_owned(),
                n.attribute("type").unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_object_type_lists_exactly_the_action_fields_in_ascii_order_with_their_xsd_types() {
    let schema = every_type_schema();
    let fields: Vec<&str> = schema.fields.keys().map(String::as_str).collect();
    let action = action("Every_Type_Out", "Every_Type__c", "http://x/", &fields);
    let wsdl = soap::wsdl::generate(&action, &schema);
    let got = object_elements(&wsdl, "Every_Type__c");
    let want: Vec<(String, String)> = [
        ("Account__c", "ent:ID"),
        ("Amount__c", "xsd:double"),
        ("Count__c", "xsd:int"),
        ("CreatedDate", "xsd:dateTime"),
        ("Due__c", "xsd:date"),
        ("Email__c", "xsd:string"),
        ("Flag__c", "xsd:boolean"),
        ("IsDeleted", "xsd:boolean"),
        ("LastModifiedDate", "xsd:dateTime"),
        ("Notes__c", "xsd:string"),
        ("Phone__c", "xsd:string"),
        ("Rate__c", "xsd:double"),
        ("Score__c", "xsd:double"),
        ("Stage__c", "xsd:string"),
        ("SystemModstamp", "xsd:dateTime"),
        ("Tags__c", "xsd:string"),
        ("Title__c", "xsd:string"),
        ("Website__c", "xsd:string"),
        ("When__c", "xsd:dateTime"),
    ]
    .iter()
    .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
    .collect();
    assert_eq!(got, want);

    // The demo's action: exactly its six fields, no more (Id comes from the base sObject type).
    let wsdl = soap::wsdl::generate(&demo_action(), &ObjectSchema::case());
    let names: Vec<String> = object_elements(&wsdl, "Case")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            "CaseNumber",
            "ClosedDate",
            "IsClosed",
            "Status",
            "Subject",
            "SystemModstamp"
        ]
    );
    let doc = roxmltree::Document::parse(&wsdl).expect("well-formed");
    let address = doc
        .descendants()
        .find(|n| n.has_tag_name(("http://schemas.xmlsoap.org/wsdl/soap/", "address")))
        .and_then(|n| n.attribute("location"));
    assert_eq!(address, Some("http://127.0.0.1:7411/inbox/legacy"));
}

#[test]
fn endpoint_urls_are_escaped_in_the_address() {
    let mut action = demo_action();
    action.endpoint_url = "https://h/om?a=1&b=\"2\"<x>".to_owned();
    let wsdl = soap::wsdl::generate(&action, &ObjectSchema::case());
    let doc = roxmltree::Document::parse(&wsdl).expect("well-formed despite the URL");
    let address = doc
        .descendants()
        .find(|n| n.has_tag_name(("http://schemas.xmlsoap.org/wsdl/soap/", "address")))
        .and_then(|n| n.attribute("location"));
    assert_eq!(address, Some("https://h/om?a=1&b=\"2\"<x>"));
}

/// Elements and attributes (namespace, name, value) in document order: what a toolkit reads, without
/// comments and formatting.
fn structure(xml: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).expect("well-formed");
    doc.descendants()
        .filter(roxmltree::Node::is_element)
        .map(|n| {
            let mut attributes: Vec<String> = n
                .attributes()
                .map(|a| format!("{}:{}={}", a.namespace().unwrap_or(""), a.name(), a.value()))
                .collect();
            attributes.sort();
            let namespaces: Vec<String> = n
                .namespaces()
                .map(|ns| format!("xmlns:{}={}", ns.name().unwrap_or(""), ns.uri()))
                .collect();
            format!(
                "{}{{{}}}{} {} {}",
                "  ".repeat(n.ancestors().count()),
                n.tag_name().namespace().unwrap_or(""),
                n.tag_name().name(),
                attributes.join(" "),
                namespaces.join(" ")
            )
        })
        .collect()
}

#[test]
fn same_structure_as_the_wsdl_salesforce_generated() {
    let real = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/wsdl/real-DiscountRule__c.wsdl"
    ))
    .expect("conformance WSDL readable");
    // The object and fields of the real WSDL, with types that give its XSD types.
    let schema = ObjectSchema::custom(
        "DiscountRule__c",
        "a0D",
        [
            field("ContractTerm__c", FieldType::Picklist),
            field("Discount__c", FieldType::Percent),
            field("Name", FieldType::String),
            field("Price__c", FieldType::Currency),
            field("Product__c", FieldType::Reference),
            field("Type__c", FieldType::Picklist),
        ],
    );
    let action = action(
        "Discount_Rule_Out",
        "DiscountRule__c",
        "http://blabla",
        &[
            "Type__c",
            "Product__c",
            "Price__c",
            "Name",
            "LastModifiedDate",
            "IsDeleted",
            "Discount__c",
            "CreatedDate",
            "ContractTerm__c",
            "Id",
        ],
    );
    let ours = soap::wsdl::generate(&action, &schema);
    let (want, got) = (structure(&real), structure(&ours));
    for (line, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(w, g, "element {line} differs");
    }
    assert_eq!(want.len(), got.len());
}
