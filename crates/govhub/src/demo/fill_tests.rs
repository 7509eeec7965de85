use super::*;
use crate::demo::datasets;
use govhub_core::cells::CastOptions;
use govhub_core::delivery::{repeated_key, RowOutcome, RowValidator};
use govhub_core::schema::TableSchema;
use std::collections::HashMap;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
}

fn schemas() -> HashMap<String, TableSchema> {
    datasets().into_iter().map(|d| (d.code.clone(), TableSchema::parse(&d.schema).unwrap())).collect()
}

/// What one delivery's CSV became under validation.
struct Checked {
    rows: u64,
    /// Problem codes of each quarantined row, in file order.
    quarantined: Vec<Vec<String>>,
    warnings: Vec<String>,
    /// Canonical texts of the valid rows, one map per row (field name → text).
    valid: Vec<HashMap<String, String>>,
    keys: HashSet<String>,
}

fn check(schema: &TableSchema, csv_stream: Box<dyn Read + Send>) -> Checked {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(csv_stream);
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    let names: Vec<String> = schema.fields.iter().map(|f| f.name.clone()).collect();
    assert_eq!(header, names, "the header is the schema's field names, in order");
    let mut v = RowValidator::for_header(schema, &header, today(), CastOptions::default()).unwrap();
    let mut out = Checked { rows: 0, quarantined: vec![], warnings: vec![], valid: vec![], keys: HashSet::new() };
    for rec in reader.records() {
        let rec = rec.unwrap();
        out.rows += 1;
        let cells: Vec<String> = rec.iter().map(str::to_string).collect();
        match v.text_row(out.rows, &cells) {
            RowOutcome::Valid(r) => {
                let key: Vec<String> = schema
                    .primary_key
                    .iter()
                    .map(|k| r.cells[schema.fields.iter().position(|f| &f.name == k).unwrap()].to_text())
                    .collect();
                if !out.keys.insert(key.join("\u{1f}")) {
                    // The store quarantines the later row of a key delivered twice.
                    let q = repeated_key(schema, &v.field_labels(), r);
                    out.quarantined.push(q.problems.iter().map(|p| p.code.clone()).collect());
                    continue;
                }
                out.warnings.extend(r.warnings.iter().map(|w| w.code.clone()));
                let row = schema.fields.iter().zip(&r.cells).map(|(f, c)| (f.name.clone(), c.to_text())).collect();
                out.valid.push(row);
            }
            RowOutcome::Quarantined(q) => {
                out.quarantined.push(q.problems.iter().map(|p| p.code.clone()).collect());
            }
            RowOutcome::Blank(_) => panic!("blank row {}", out.rows),
        }
    }
    out
}

fn codes(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_delivery_validates_and_its_keys_resolve() {
    let schemas = schemas();
    let catalog: Vec<String> = datasets().into_iter().map(|d| d.code).collect();
    let all = deliveries(42, 2_000);
    // Deliveries follow the catalog order (referenced datasets first).
    let positions: Vec<usize> = all.iter().map(|d| catalog.iter().position(|c| c == d.dataset).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(all.len(), 12, "everything but 纳税申报明细 (not shared) and the three without generators");

    let mut checked: HashMap<&'static str, Checked> = HashMap::new();
    for d in all {
        let schema = &schemas[d.dataset];
        let c = check(schema, d.csv);
        assert_eq!(c.rows, d.rows, "{}: rows", d.dataset);
        assert_eq!(c.quarantined.len() as u64, d.bad_rows, "{}: {:?}", d.dataset, c.quarantined);
        assert!(c.rows > d.bad_rows, "{} has rows", d.dataset);
        checked.insert(d.dataset, c);
    }

    // The bad rows fail in exactly the intended ways.
    let hjrk = &checked[HJRK];
    let mut expected = vec![
        codes(&["id-number-check"]),
        codes(&["id-number-check", "type-error"]),
        codes(&["constraint-error"]),
        codes(&["mobile"]),
        codes(&["constraint-error"]),
        codes(&["primary-key"]),
    ];
    assert_eq!(hjrk.quarantined, expected);
    assert_eq!(hjrk.warnings, codes(&["id-number-case", "id-number-case"]), "two lower-case x");
    assert_eq!(hjrk.valid.len(), 2_000);
    let qydj = &checked[QYDJ];
    expected = vec![
        codes(&["type-error"]),
        codes(&["type-error"]),
        codes(&["constraint-error"]),
        codes(&["constraint-error"]),
        codes(&["type-error"]),
        codes(&["primary-key"]),
    ];
    assert_eq!(qydj.quarantined, expected);
    assert_eq!(qydj.valid.len(), 100);
    for (code, c) in &checked {
        if *code != HJRK && *code != QYDJ {
            assert!(c.warnings.is_empty(), "{code}: {:?}", c.warnings);
        }
    }

    // Foreign keys point at valid rows of the referenced dataset.
    let mut fks = 0;
    for (code, c) in &checked {
        let schema = &schemas[*code];
        for fk in &schema.foreign_keys {
            assert_eq!(fk.fields.len(), 1);
            let target = if fk.reference.resource.is_empty() { *code } else { fk.reference.resource.as_str() };
            let referenced: HashSet<&str> =
                checked[target].valid.iter().map(|r| r[&fk.reference.fields[0]].as_str()).collect();
            for row in &c.valid {
                let v = &row[&fk.fields[0]];
                if !v.is_empty() {
                    assert!(referenced.contains(v.as_str()), "{code}.{} = {v} not in {target}", fk.fields[0]);
                    fks += 1;
                }
            }
        }
    }
    assert!(fks > 10_000, "{fks}");

    // The demo citizen and enterprise are in their registers; the citizen is insured
    // through the demo enterprise.
    let citizen = demo_citizen().id_number.to_string();
    let company = demo_enterprise().uscc.to_string();
    assert!(checked[HJRK].keys.contains(&citizen));
    assert!(checked[QYDJ].keys.contains(&company));
    let insured: Vec<_> = checked[SBCB].valid.iter().filter(|r| r["sfzh"] == citizen).collect();
    assert_eq!(insured.len(), 4);
    assert!(insured.iter().all(|r| r["cbdw_tyshxydm"] == company));

    // Plausible proportions.
    let sole = checked[GTGSH].rows as f64 / 2_000.0;
    assert!((0.07..0.12).contains(&sole), "{sole}");
    assert!(checked[SBCB].rows > 1_500);
}

#[test]
fn same_seed_same_bytes() {
    fn bytes(seed: u64) -> Vec<(&'static str, Vec<u8>)> {
        deliveries(seed, 600)
            .into_iter()
            .map(|mut d| {
                let mut v = Vec::new();
                d.csv.read_to_end(&mut v).unwrap();
                (d.dataset, v)
            })
            .collect()
    }
    let a = bytes(5);
    assert_eq!(a, bytes(5));
    let b = bytes(6);
    assert_ne!(a[1], b[1], "another seed, other people");
    let mut p1 = Vec::new();
    population_csv(9, 300).read_to_end(&mut p1).unwrap();
    let mut p2 = Vec::new();
    population_csv(9, 300).read_to_end(&mut p2).unwrap();
    assert_eq!(p1, p2);
}

#[test]
fn population_csv_rows_are_all_valid_with_distinct_keys() {
    let schema = &schemas()[HJRK];
    let c = check(schema, population_csv(1, 10_000));
    assert_eq!(c.rows, 10_000);
    assert!(c.quarantined.is_empty(), "{:?}", c.quarantined);
    assert!(c.warnings.is_empty());
    assert_eq!(c.keys.len(), 10_000);
    // Keys are not sorted.
    let ids: Vec<&String> = c.valid.iter().map(|r| &r["sfzh"]).collect();
    assert!(ids.windows(2).any(|w| w[0] > w[1]));
    assert!(check(schema, population_csv(1, 0)).rows == 0);
}

#[test]
fn people_stream_does_not_hold_the_population() {
    let n = 1_000_000;
    let d = deliveries(7, n).into_iter().find(|d| d.dataset == HJRK).unwrap();
    let (rows, mut csv) = (d.rows, d.csv);
    let mut buf = [0u8; 4096];
    let (mut bytes, mut lines) = (0u64, 0u64);
    loop {
        let k = csv.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        bytes += k as u64;
        lines += buf[..k].iter().filter(|b| **b == b'\n').count() as u64;
    }
    assert_eq!(lines, rows + 1, "header + rows");
    assert!(bytes > 100 * n as u64);
}

#[test]
fn scrambled_bodies_are_distinct() {
    let mut seen = HashSet::new();
    for k in 0..20_000 {
        assert!(seen.insert(digits_body(k)));
        assert!(seen.insert(ma_body(k)));
    }
    assert!(ma_body(7).chars().all(|c| USCC_ALPHABET.contains(&(c as u8))));
}

/// Row counts for a city of 100,000: `cargo test -p govhub --bin govhub demo::fill::tests::counts -- --ignored --nocapture`.
#[test]
#[ignore]
fn counts_for_100k() {
    for d in deliveries(1, 100_000) {
        println!("{:12} {:>9} rows {:>4} bad", d.dataset, d.rows, d.bad_rows);
    }
}
