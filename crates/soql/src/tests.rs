use super::*;

fn cond(field: &str, op: Op, value: Literal) -> Condition {
    Condition {
        field: field.to_owned(),
        op,
        value,
    }
}

fn text(s: &str) -> Literal {
    Literal::Text(s.to_owned())
}

#[test]
fn supported_queries_parse_to_what_they_say() {
    let table: Vec<(&str, Query)> = vec![
        (
            "SELECT Id FROM Case",
            Query {
                fields: vec!["Id".into()],
                object: "Case".into(),
                conditions: vec![],
                limit: None,
            },
        ),
        (
            "SELECT Id, Subject,Status FROM Case WHERE Id = '5007000000OFL5FAAX'",
            Query {
                fields: vec!["Id".into(), "Subject".into(), "Status".into()],
                object: "Case".into(),
                conditions: vec![cond("Id", Op::Eq, text("5007000000OFL5FAAX"))],
                limit: None,
            },
        ),
        (
            "select id from case where Status = 'Closed' and IsClosed = TRUE and Count__c >= -2.5 limit 10",
            Query {
                fields: vec!["id".into()],
                object: "case".into(),
                conditions: vec![
                    cond("Status", Op::Eq, text("Closed")),
                    cond("IsClosed", Op::Eq, Literal::Bool(true)),
                    cond("Count__c", Op::Ge, Literal::Number("-2.5".into())),
                ],
                limit: Some(10),
            },
        ),
        (
            "SELECT Id FROM Case WHERE Subject != null AND Reason <> 'x' AND Priority < 'b' AND Origin <= 'c' AND Type > 'd' LIMIT 0",
            Query {
                fields: vec!["Id".into()],
                object: "Case".into(),
                conditions: vec![
                    cond("Subject", Op::Ne, Literal::Null),
                    cond("Reason", Op::Ne, text("x")),
                    cond("Priority", Op::Lt, text("b")),
                    cond("Origin", Op::Le, text("c")),
                    cond("Type", Op::Gt, text("d")),
                ],
                limit: Some(0),
            },
        ),
        (
            "SELECT Id FROM Case WHERE ClosedDate > 2024-03-14T09:26:53Z AND ClosedDate < 2024-03-14T10:26:53.000+01:00 AND Due__c = 2024-03-14",
            Query {
                fields: vec!["Id".into()],
                object: "Case".into(),
                conditions: vec![
                    cond(
                        "ClosedDate",
                        Op::Gt,
                        Literal::DateTime("2024-03-14T09:26:53Z".into()),
                    ),
                    cond(
                        "ClosedDate",
                        Op::Lt,
                        Literal::DateTime("2024-03-14T10:26:53.000+01:00".into()),
                    ),
                    cond("Due__c", Op::Eq, Literal::Date("2024-03-14".into())),
                ],
                limit: None,
            },
        ),
        (
            "SELECT Id FROM Case WHERE Subject = 'It\\'s \\\\ \"ok\"\\n' AND IsEscalated = false",
            Query {
                fields: vec!["Id".into()],
                object: "Case".into(),
                conditions: vec![
                    cond("Subject", Op::Eq, text("It's \\ \"ok\"\n")),
                    cond("IsEscalated", Op::Eq, Literal::Bool(false)),
                ],
                limit: None,
            },
        ),
        (
            "\n  SELECT Name\nFROM Account\n  WHERE Name = 'Ünïcode ✓'\n",
            Query {
                fields: vec!["Name".into()],
                object: "Account".into(),
                conditions: vec![cond("Name", Op::Eq, text("Ünïcode ✓"))],
                limit: None,
            },
        ),
    ];
    for (soql, want) in table {
        assert_eq!(parse(soql), Ok(want), "{soql}");
    }
}

#[test]
fn everything_else_is_malformed_with_the_offending_token_and_its_position() {
    let table: &[(&str, usize, usize, &str)] = &[
        ("", 1, 1, "unexpected token: '<EOF>'"),
        ("SELEC Id FROM Case", 1, 1, "unexpected token: 'SELEC'"),
        ("SELECT FROM Case", 1, 8, "unexpected token: 'FROM'"),
        ("SELECT Id FROM", 1, 15, "unexpected token: '<EOF>'"),
        ("SELECT Id, FROM Case", 1, 12, "unexpected token: 'FROM'"),
        (
            "SELECT Id FROM Case WHERE",
            1,
            26,
            "unexpected token: '<EOF>'",
        ),
        (
            "SELECT Id FROM Case ORDER BY Id",
            1,
            21,
            "unexpected token: 'ORDER'",
        ),
        (
            "SELECT Id FROM Case WHERE A = 'x' OR B = 'y'",
            1,
            35,
            "unexpected token: 'OR'",
        ),
        (
            "SELECT Id FROM Case WHERE NOT A = 'x'",
            1,
            27,
            "unexpected token: 'NOT'",
        ),
        (
            "SELECT Id FROM Case WHERE (A = 'x')",
            1,
            27,
            "unexpected token: '('",
        ),
        (
            "SELECT Id FROM Case WHERE Id IN ('a')",
            1,
            30,
            "unexpected token: 'IN'",
        ),
        (
            "SELECT Id FROM Case WHERE Subject LIKE 'a%'",
            1,
            35,
            "unexpected token: 'LIKE'",
        ),
        (
            "SELECT Id FROM Case WHERE CreatedDate = TODAY",
            1,
            41,
            "unexpected token: 'TODAY'",
        ),
        (
            "SELECT Id FROM Case LIMIT 5 OFFSET 5",
            1,
            29,
            "unexpected token: 'OFFSET'",
        ),
        (
            "SELECT Id FROM Case LIMIT -1",
            1,
            27,
            "unexpected token: '-1'",
        ),
        (
            "SELECT Id FROM Case LIMIT 1.5",
            1,
            27,
            "unexpected token: '1.5'",
        ),
        (
            "SELECT Id FROM Case WHERE Subject = 'open",
            1,
            37,
            "unterminated string literal",
        ),
        (
            "SELECT Id FROM Case WHERE Subject = 'a\\qb'",
            1,
            39,
            "invalid escape sequence '\\q' in a string literal",
        ),
        (
            "SELECT Id FROM Case WHERE A = 2024-13",
            1,
            31,
            "unexpected token: '2024-13'",
        ),
        (
            "SELECT Id FROM Case WHERE A == 'x'",
            1,
            30,
            "unexpected token: '='",
        ),
        ("SELECT Id FROM Case;", 1, 20, "unexpected token: ';'"),
        (
            "SELECT Account.Name FROM Case",
            1,
            15,
            "relationship fields (Account.…) are not supported by casewire",
        ),
        (
            "SELECT COUNT() FROM Case",
            1,
            8,
            "functions (COUNT(…)) are not supported by casewire",
        ),
        (
            "SELECT Id, (SELECT Id FROM Cases) FROM Account",
            1,
            12,
            "unexpected token: '('",
        ),
        (
            "SELECT Id\nFROM Case\nWHERE Id = 'x' GROUP BY Id",
            3,
            16,
            "unexpected token: 'GROUP'",
        ),
    ];
    for (soql, row, column, detail) in table {
        let e = parse(soql).expect_err(soql);
        assert_eq!(
            (e.row, e.column, e.detail.as_str()),
            (*row, *column, *detail),
            "{soql}"
        );
    }
}

#[test]
fn the_salesforce_message_shows_the_line_and_a_caret() {
    let e = parse("SELECT Id FROM Case ORDER BY Id").unwrap_err();
    assert_eq!(
        e.salesforce_message(),
        "\nSELECT Id FROM Case ORDER BY Id\n                    ^\nERROR at Row:1:Column:21\nunexpected token: 'ORDER'"
    );
    let e = parse("SELECT Id\nFROM Case WHERE").unwrap_err();
    assert_eq!(
        e.salesforce_message(),
        "\nFROM Case WHERE\n               ^\nERROR at Row:2:Column:16\nunexpected token: '<EOF>'"
    );
}
