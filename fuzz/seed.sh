#!/usr/bin/env bash
# Seeds the fuzzers' corpora from the shared conformance files (idempotent; the corpora are not committed).
set -euo pipefail
cd "$(dirname "$0")"
conformance=../../shared/conformance
mkdir -p corpus/parse_request corpus/classify_answer
cp "$conformance"/requests/* "$conformance"/bad/* "$conformance"/golden/*.xml corpus/parse_request/
# classify_answer reads the HTTP status from its first two bytes (little-endian u16; an even value v
# means 200 + (v/2) % 100, an odd value v means v/2): \x00\x00 is 200, \xef\x03 is 503.
for f in "$conformance"/responses/*.xml "$conformance"/responses/*.txt "$conformance"/responses/*.html "$conformance"/responses/*.json; do
  name=$(basename "$f")
  { printf '\x00\x00'; cat "$f"; } > "corpus/classify_answer/200-$name"
  { printf '\xef\x03'; cat "$f"; } > "corpus/classify_answer/503-$name"
done
echo "seeded: $(ls corpus/parse_request | wc -l) requests, $(ls corpus/classify_answer | wc -l) answers"
