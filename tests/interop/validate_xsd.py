"""Validates SOAP requests against the XSD schemas inside an outbound-message WSDL, with lxml
(libxml2's validator: independent of casewire's code).

Usage: validate_xsd.py [--expect-invalid-mutation] WSDL BODY...

Each BODY is a SOAP 1.1 request; its `notifications` element (outbound namespace) is validated against
the WSDL's three schemas, which import one another. With --expect-invalid-mutation, broken copies of
the first body (a malformed notification id, a field the WSDL does not list) must be refused, which
proves the validator is not accepting everything. Exits 1 on any failure.
"""

import copy
import os
import sys
import tempfile

from lxml import etree

WSDL = "http://schemas.xmlsoap.org/wsdl/"
XSD = "http://www.w3.org/2001/XMLSchema"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
SOBJECT = "urn:sobject.enterprise.soap.sforce.com"


def load_schema(wsdl_path, folder):
    """Writes each schema of the WSDL to its own file (imports pointing at one another) and returns the
    compiled schema of the outbound namespace."""
    wsdl = etree.parse(wsdl_path)
    schemas = wsdl.getroot().findall(f"{{{WSDL}}}types/{{{XSD}}}schema")
    if len(schemas) != 3:
        raise SystemExit(f"{wsdl_path}: expected 3 schemas, found {len(schemas)}")
    files = {}
    for i, schema in enumerate(schemas):
        files[schema.get("targetNamespace")] = os.path.join(folder, f"schema{i}.xsd")
    for schema in schemas:
        # A standalone copy keeps every namespace in scope in the WSDL, since QNames in attribute
        # values (type="ent:ID") use prefixes declared on <definitions>.
        nsmap = {k: v for k, v in schema.nsmap.items()}
        standalone = etree.Element(schema.tag, nsmap=nsmap, attrib=dict(schema.attrib))
        for child in schema:
            standalone.append(copy.deepcopy(child))
        for imported in standalone.findall(f"{{{XSD}}}import"):
            imported.set("schemaLocation", files[imported.get("namespace")])
        etree.ElementTree(standalone).write(files[schema.get("targetNamespace")])
    return etree.XMLSchema(etree.parse(files[OUTBOUND]))


def notifications_of(body_bytes):
    envelope = etree.fromstring(body_bytes)
    found = envelope.findall(f"{{{SOAP11}}}Body/{{{OUTBOUND}}}notifications")
    if len(found) != 1:
        raise ValueError("no notifications element in a SOAP 1.1 Body")
    # A document of its own: validation starts at its root.
    return etree.fromstring(etree.tostring(found[0]))


def errors(schema, element):
    if schema.validate(etree.ElementTree(element)):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def main():
    args = sys.argv[1:]
    mutate = "--expect-invalid-mutation" in args
    args = [a for a in args if a != "--expect-invalid-mutation"]
    wsdl_path, bodies = args[0], args[1:]
    failed = False
    with tempfile.TemporaryDirectory() as folder:
        schema = load_schema(wsdl_path, folder)
        for path in bodies:
            with open(path, "rb") as f:
                data = f.read()
            try:
                element = notifications_of(data)
            except (etree.XMLSyntaxError, ValueError) as e:
                print(f"INVALID {path}: {e}")
                failed = True
                continue
            problems = errors(schema, element)
            count = len(element.findall(f"{{{OUTBOUND}}}Notification"))
            if problems:
                failed = True
                print(f"INVALID {path}: " + "; ".join(problems))
            else:
                print(f"valid {path} ({count} notifications)")
        if mutate and bodies:
            with open(bodies[0], "rb") as f:
                original = notifications_of(f.read())
            bad_id = copy.deepcopy(original)
            bad_id.find(f"{{{OUTBOUND}}}Notification/{{{OUTBOUND}}}Id").text = "not-an-18-char-id"
            unknown_field = copy.deepcopy(original)
            sobject = unknown_field.find(f"{{{OUTBOUND}}}Notification/{{{OUTBOUND}}}sObject")
            etree.SubElement(sobject, f"{{{SOBJECT}}}Not_In_The_Wsdl__c").text = "x"
            for name, mutated in [("malformed notification id", bad_id), ("unlisted field", unknown_field)]:
                if errors(schema, mutated):
                    print(f"refused as expected: {name}")
                else:
                    print(f"ACCEPTED a broken message: {name}")
                    failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
