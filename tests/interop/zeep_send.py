"""Plays Salesforce with Python zeep: loads casewire's WSDL for an outbound-message action (over HTTP,
as a toolkit does) and calls `notifications` with two Case notifications at the WSDL's service
address (the inbox). Prints the sent envelope's size and then `Ack <value>` as zeep read the answer.

Usage: zeep_send.py WSDL_URL ORGANIZATION_ID ACTION_ID SENT_XML_PATH
"""

import datetime
import sys

from lxml import etree
from zeep import Client, Plugin


OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
SOBJECT = "urn:sobject.enterprise.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


class LikeSalesforce(Plugin):
    """Salesforce names each record's type with `xsi:type="sf:Case"` on `sObject`. A client generated
    from the WSDL has no reason to (the element's declared type already is Case), and casewire's inbox
    needs the type, so this adds it, the one thing zeep would not write as Salesforce does. It also keeps
    the envelope as sent, so the test can validate it."""

    def __init__(self):
        self.sent = None

    def egress(self, envelope, http_headers, operation, binding_options):
        for old in envelope.iter(f"{{{OUTBOUND}}}sObject"):
            typed = etree.Element(old.tag, nsmap={"sf": SOBJECT, "xsi": XSI})
            typed.set(f"{{{XSI}}}type", "sf:Case")
            typed.extend(list(old))
            old.getparent().replace(old, typed)
        self.sent = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
        return envelope, http_headers


def main():
    wsdl_url, org_id, action_id, sent_path = sys.argv[1:5]
    capture = LikeSalesforce()
    client = Client(wsdl_url, plugins=[capture])
    case_type = client.get_type("{urn:sobject.enterprise.soap.sforce.com}Case")
    notification_type = client.get_type("{http://soap.sforce.com/2005/09/outbound}CaseNotification")

    def case(record_id, number, subject, closed):
        return case_type(
            Id=record_id,
            CaseNumber=number,
            ClosedDate=closed,
            IsClosed=True,
            Status="Closed",
            Subject=subject,
            SystemModstamp=closed,
        )

    closed = datetime.datetime(2026, 11, 30, 14, 5, 9, tzinfo=datetime.timezone.utc)
    notifications = [
        notification_type(
            Id="04l5g00000ZeEp1AAB",
            sObject=case("5005g00000ZeEp1AAB", "00000101", "Printer on fire & <smoke>", closed),
        ),
        notification_type(
            Id="04l5g00000ZeEp2AAB",
            sObject=case("5005g00000ZeEp2AAB", "00000102", "Grüße 🚚", closed),
        ),
    ]
    org15 = org_id[:15]
    answer = client.service.notifications(
        OrganizationId=org_id,
        ActionId=action_id,
        SessionId=None,
        EnterpriseUrl=f"https://example.my.salesforce.com/services/Soap/c/60.0/{org15}",
        PartnerUrl=f"https://example.my.salesforce.com/services/Soap/u/60.0/{org15}",
        Notification=notifications,
    )
    with open(sent_path, "wb") as sent:
        sent.write(capture.sent)
    # zeep unwraps a response element with one child into that child's value.
    ack = answer if isinstance(answer, bool) else getattr(answer, "Ack", answer)
    print(f"sent {len(capture.sent)} bytes")
    print(f"Ack {ack!r}")


if __name__ == "__main__":
    main()
