//! The answer classifier on arbitrary (status, body) pairs: it must never panic, never count a non-2xx
//! answer as delivered, and keep its failure reasons short and on one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soap::{Verdict, classify_answer};

fuzz_target!(|data: &[u8]| {
    // The first two bytes pick the HTTP status, biased towards the interesting 2xx range half the time.
    let (status, body) = match data {
        [a, b, rest @ ..] => {
            let raw = u16::from_le_bytes([*a, *b]);
            let status = if raw & 1 == 0 {
                200 + (raw >> 1) % 100
            } else {
                raw >> 1
            };
            (status, rest)
        }
        _ => (200, data),
    };
    match classify_answer(status, body) {
        Verdict::Delivered => assert!(
            (200..300).contains(&status),
            "HTTP {status} counted as delivered"
        ),
        Verdict::Failed(reason) => {
            assert!(!reason.is_empty(), "empty failure reason");
            assert!(
                reason.chars().count() <= 501,
                "reason too long: {}",
                reason.len()
            );
            assert!(!reason.contains('\n'), "reason spans lines: {reason:?}");
        }
    }
});
