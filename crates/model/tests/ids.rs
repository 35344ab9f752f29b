//! Salesforce ids: generator, 15 <-> 18 conversion, case-insensitive comparison, lenient and strict
//! validation, on the documented examples and on generated ids.

use model::id::{IdValidation, checksum, prefix, same_id, same_id_ignore_case, to15, to18};
use model::{IdError, IdGenerator, SfId};
use proptest::prelude::*;

#[test]
fn conversion_of_documented_examples() {
    for (id15, id18) in [
        ("00Dn00000008y2t", "00Dn00000008y2tEAA"),
        ("5007000000OFL5F", "5007000000OFL5FAAX"),
        ("04l1I000000fztE", "04l1I000000fztEQAQ"),
    ] {
        assert_eq!(to18(id15).unwrap(), id18);
        assert_eq!(to18(id18).unwrap(), id18);
        assert_eq!(to15(id18).unwrap(), id15);
        assert_eq!(to15(id15).unwrap(), id15);
    }
    assert!(matches!(to18("500"), Err(IdError::Length(_, 3))));
    assert!(matches!(
        to15("5007000000OFL5F!AX"),
        Err(IdError::Character(_))
    ));
}

#[test]
fn case_insensitive_comparison() {
    // The same record in every spelling a case-folding system may produce.
    for other in [
        "5007000000OFL5F",
        "5007000000OFL5FAAX",
        "5007000000ofl5faax",
        "5007000000OFL5FAAX".to_ascii_uppercase().as_str(),
        "5007000000OFL5Faax",
    ] {
        assert!(same_id_ignore_case("5007000000OFL5FAAX", other), "{other}");
    }
    // 15 characters are case-sensitive: a lower-case 15-character id is another record.
    assert!(!same_id_ignore_case("5007000000OFL5F", "5007000000ofl5f"));
    assert!(!same_id_ignore_case(
        "5007000000ofl5faax",
        "5007000000ofl5f"
    ));
    // Another record whose body folds to the same letters.
    assert!(!same_id_ignore_case(
        "5007000000OFL5FAAX",
        "5007000000OfL5FAAX"
    ));
    // Garbage compares as text.
    assert!(same_id_ignore_case("n/a", "n/a"));
    assert!(!same_id_ignore_case("n/a", "N/A"));

    // The case-sensitive comparison does not undo folding.
    assert!(!same_id("5007000000OFL5FAAX", "5007000000ofl5faax"));
}

#[test]
fn folded_ids_get_their_case_back() {
    let restored = SfId::parse_case_insensitive("5007000000ofl5faax").unwrap();
    assert_eq!(restored.as_str(), "5007000000OFL5FAAX");
    // An all-lower-case id folds to itself but for its checksum, which is upper case again.
    let restored = SfId::parse_case_insensitive("00a0aaaaa0aaaa0aaa").unwrap();
    assert_eq!(restored.as_str(), "00a0aaaaa0aaaa0AAA");
    let restored = SfId::parse_case_insensitive("00DN00000008Y2TEAA").unwrap();
    assert_eq!(restored.as_str(), "00Dn00000008y2tEAA");
    // A checksum that marks a digit as upper case cannot come from folding a real id.
    assert!(matches!(
        SfId::parse_case_insensitive("000000000000000BAA"),
        Err(IdError::CaseUnrecoverable(_))
    ));
    // A mixed-case id with a wrong checksum (as in public test data) is kept as written.
    let kept = SfId::parse_case_insensitive("04l1I000000fztEAAA").unwrap();
    assert_eq!(kept.as_str(), "04l1I000000fztEAAA");
    // An all-upper-case body with a wrong checksum is indistinguishable from a folded id: restored.
    let restored = SfId::parse_case_insensitive("5007000000OFL5FAAA").unwrap();
    assert_eq!(restored.as_str(), "5007000000ofl5fAAA");
}

#[test]
fn lenient_and_strict_validation() {
    assert_eq!(IdValidation::default(), IdValidation::Lenient);
    // Lenient: 15 characters and wrong checksums are accepted.
    assert_eq!(
        IdValidation::Lenient
            .parse("5007000000OFL5F")
            .unwrap()
            .as_str(),
        "5007000000OFL5FAAX"
    );
    assert_eq!(
        IdValidation::Lenient
            .parse("5007000000OFL5FAAA")
            .unwrap()
            .as_str(),
        "5007000000OFL5FAAA"
    );
    // Strict: 18 characters with the right checksum, in either case.
    assert!(matches!(
        IdValidation::Strict.parse("5007000000OFL5F"),
        Err(IdError::NotEighteen(_))
    ));
    assert!(matches!(
        IdValidation::Strict.parse("5007000000OFL5FAAA"),
        Err(IdError::Checksum { expected, .. }) if expected == "AAX"
    ));
    assert!(IdValidation::Strict.parse("5007000000OFL5Faax").is_ok());
    // Both refuse what is not an id at all.
    for mode in [IdValidation::Lenient, IdValidation::Strict] {
        assert!(matches!(mode.parse(""), Err(IdError::Length(_, 0))));
        assert!(matches!(
            mode.parse("5007000000OFL5F AX"),
            Err(IdError::Character(_))
        ));
        assert!(matches!(
            mode.parse("5007000000OFL5FÄX"),
            Err(IdError::Character(_))
        ));
    }
}

#[test]
fn generator_ids_sort_by_time_and_are_unique_across_generators() {
    // Two generators (two processes) in the same milliseconds: ids stay unique with overwhelming
    // probability, because each starts its per-millisecond sequence at a random point.
    let a = IdGenerator::new();
    let b = IdGenerator::new();
    let mut seen = std::collections::HashSet::new();
    for ms in 0..50u64 {
        for _ in 0..20 {
            for generator in [&a, &b] {
                let id = generator.next(prefix::NOTIFICATION, 1_800_000_000_000 + ms);
                assert!(id.has_valid_checksum());
                assert_eq!(id.key_prefix(), "04l");
                assert!(seen.insert(id), "duplicate id");
            }
        }
    }
    // Later milliseconds sort after earlier ones, whichever generator made them.
    let early = a.next(prefix::CASE, 1_800_000_001_000);
    let late = b.next(prefix::CASE, 1_800_000_002_000);
    assert!(early.id15() < late.id15(), "{early} !< {late}");
}

fn id15() -> impl Strategy<Value = String> {
    "[0-9A-Za-z]{15}"
}

proptest! {
    #[test]
    fn fifteen_eighteen_round_trip(id in id15()) {
        let long = to18(&id).unwrap();
        prop_assert_eq!(long.len(), 18);
        prop_assert_eq!(&long[..15], id.as_str());
        prop_assert_eq!(to15(&long).unwrap(), id.clone());
        let parsed = IdValidation::Strict.parse(&long).unwrap();
        prop_assert!(parsed.has_valid_checksum());
        let head: [u8; 15] = id.as_bytes().try_into().unwrap();
        prop_assert_eq!(&long.as_bytes()[15..], &checksum(&head)[..]);
    }

    #[test]
    fn folding_an_eighteen_character_id_loses_nothing(id in id15()) {
        let long = to18(&id).unwrap();
        for folded in [long.to_ascii_lowercase(), long.to_ascii_uppercase()] {
            prop_assert!(same_id_ignore_case(&long, &folded));
            prop_assert!(same_id_ignore_case(&id, &folded));
            prop_assert_eq!(String::from(SfId::parse_case_insensitive(&folded).unwrap()), long.clone());
        }
    }

    #[test]
    fn different_records_never_compare_equal(a in id15(), b in id15()) {
        prop_assume!(a != b);
        let (a18, b18) = (to18(&a).unwrap(), to18(&b).unwrap());
        prop_assert!(!same_id_ignore_case(&a18, &b18));
        prop_assert!(!same_id_ignore_case(&a18.to_ascii_lowercase(), &b18.to_ascii_uppercase()));
        prop_assert!(!same_id(&a, &b));
    }
}
