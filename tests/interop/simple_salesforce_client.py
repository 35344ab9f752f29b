"""Drives casewire's desk with simple-salesforce, the way an integration drives a Salesforce org.

Given the instance URL, a bearer token and the CA that signed the desk's certificate, it creates a
case, reads it, updates it to a closed status, queries it (by id and by fields), reads describe, and
provokes two errors. It prints one JSON object with what it saw, for the Rust test to check.
"""

import argparse
import json
import sys

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceMalformedRequest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instance-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--closed-status", default="Closed")
    parser.add_argument("--subject", default="Printer on fire")
    args = parser.parse_args()

    session = requests.Session()
    # The desk's certificate comes from a test CA. Without trust_env = False, requests would let
    # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment override `verify` (and apply proxies).
    session.trust_env = False
    session.verify = args.ca_file
    sf = Salesforce(instance_url=args.instance_url, session_id=args.token, session=session)

    created = sf.Case.create({"Subject": args.subject, "Origin": "Web", "Priority": "High"})
    case_id = created["id"]
    read = sf.Case.get(case_id)
    update_status = sf.Case.update(case_id, {"Status": args.closed_status})
    after = sf.Case.get(case_id)
    by_id = sf.query(
        f"SELECT Id, CaseNumber, Status, IsClosed, ClosedDate FROM Case WHERE Id = '{case_id}'"
    )
    subject = args.subject.replace("\\", "\\\\").replace("'", "\\'")
    by_fields = sf.query_all(
        f"SELECT Id, Subject FROM Case WHERE Subject = '{subject}' AND IsClosed = true LIMIT 10"
    )
    describe = sf.Case.describe()
    statuses = [
        value["value"]
        for field in describe["fields"]
        if field["name"] == "Status"
        for value in field["picklistValues"]
    ]

    try:
        sf.query("SELECT Id FROM Case ORDER BY Id")
        malformed = None
    except SalesforceMalformedRequest as e:
        malformed = e.content[0]["errorCode"]
    stranger = Salesforce(
        instance_url=args.instance_url, session_id=args.token + "x", session=session
    )
    try:
        stranger.Case.get(case_id)
        expired = None
    except SalesforceExpiredSession as e:
        expired = e.content[0]["errorCode"]

    json.dump(
        {
            "created": created,
            "read": read,
            "update_status": update_status,
            "after": after,
            "by_id": by_id,
            "by_fields": by_fields,
            "statuses": statuses,
            "malformed": malformed,
            "expired": expired,
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
