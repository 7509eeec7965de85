use super::names::{BRAND_FIRST, BRAND_SECOND, GIVEN_NAMES, INDUSTRIES, TRADES};
use super::*;
use chrono::{Datelike, NaiveDate};
use govhub_core::input::{NewDataset, NewOrg, NewUser};
use govhub_core::model::{Grade, OpenClass, Role, SharingClass};
use govhub_core::schema::FieldType;
use govhub_core::standards::{AdminCode, IdNumber, Mobile, USCC_ALPHABET};
use std::collections::{HashMap, HashSet};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
}

#[test]
fn orgs_convert_and_parents_come_first() {
    let orgs = orgs();
    let mut seen = HashSet::new();
    let mut usccs = HashSet::new();
    for o in &orgs {
        let uscc = o.uscc.clone().unwrap_or_else(|| panic!("{} has no USCC", o.code));
        assert!(usccs.insert(uscc.clone()), "duplicate USCC {uscc}");
        let new = NewOrg::try_from(o.clone()).unwrap_or_else(|e| panic!("{}: {e:?}", o.code));
        if let Some(parent) = &new.parent {
            assert!(seen.contains(parent.as_str()), "{} listed before its parent {parent}", o.code);
        }
        let admin = new.admin_code.as_ref().unwrap();
        assert!(admin.is_within(&AdminCode::parse("320400").unwrap()));
        assert_eq!(new.uscc.as_ref().unwrap().admin_code(), admin.as_str());
        assert!(seen.insert(o.code.clone()), "duplicate org code {}", o.code);
    }
    for required in [
        "cz", "cz-gaj", "cz-scjgj", "cz-rsj", "cz-mzj", "cz-wjw", "cz-zrzyj", "cz-sthjj", "cz-fgw", "cz-swj", "cz-zjj",
        "cz-dsj",
    ] {
        assert!(seen.contains(required), "{required} missing");
    }
    let districts: Vec<(&str, &str)> = orgs
        .iter()
        .filter(|o| o.kind.as_deref() == Some("district"))
        .map(|o| (o.code.as_str(), o.admin_code.as_deref().unwrap()))
        .collect();
    assert_eq!(
        districts,
        vec![
            ("cz-tianning", "320402"),
            ("cz-zhonglou", "320404"),
            ("cz-xinbei", "320411"),
            ("cz-wujin", "320412"),
            ("cz-jintan", "320413"),
            ("cz-liyang", "320481"),
        ]
    );
    // Government bodies are registered by the 机构编制 authority; the utility is an enterprise.
    for o in &orgs {
        let u = o.uscc.as_deref().unwrap();
        match o.code.as_str() {
            "cz-gdgs" => assert!(u.starts_with("91")),
            "cz-dsj" => assert!(u.starts_with("12")),
            _ => assert!(u.starts_with("11"), "{}: {u}", o.code),
        }
    }
}

#[test]
fn orgs_are_the_same_every_time() {
    let a: Vec<String> = orgs().iter().map(|o| format!("{o:?}")).collect();
    let b: Vec<String> = orgs().iter().map(|o| format!("{o:?}")).collect();
    assert_eq!(a, b);
}

#[test]
fn accounts_convert_cover_every_role_and_belong_to_known_orgs() {
    let org_codes: HashSet<String> = orgs().into_iter().map(|o| o.code).collect();
    let accounts = accounts();
    let mut usernames = HashSet::new();
    let mut roles = HashSet::new();
    for a in &accounts {
        assert!(usernames.insert(a.username), "duplicate username {}", a.username);
        assert!(a.password.chars().count() >= 8);
        if let Some(org) = a.org {
            assert!(org_codes.contains(org), "{}: unknown org {org}", a.username);
        }
        let user = NewUser::try_from(a.to_input()).unwrap_or_else(|e| panic!("{}: {e:?}", a.username));
        assert_eq!(user.display_name, a.display_name);
        roles.insert(user.role);
    }
    for role in Role::ALL {
        assert!(roles.contains(role), "no account with role {}", role.as_str());
    }
    let by_name: HashMap<&str, &DemoAccount> = accounts.iter().map(|a| (a.username, a)).collect();
    for (username, role, org) in [
        ("admin", "platform-admin", Some("cz-dsj")),
        ("gaj-officer", "data-officer", Some("cz-gaj")),
        ("scjgj-officer", "data-officer", Some("cz-scjgj")),
        ("rsj-officer", "data-officer", Some("cz-rsj")),
        ("gaj-approver", "approver", Some("cz-gaj")),
        ("rsj-dev", "app-developer", Some("cz-rsj")),
        ("zwfw-officer", "service-officer", Some("cz-zwfw")),
        ("citizen", "citizen", None),
        ("enterprise", "enterprise", None),
    ] {
        let a = by_name[username];
        assert_eq!((a.role, a.org), (role, org), "{username}");
    }
    let citizen = by_name["citizen"].subject_id.as_deref().unwrap();
    let id = IdNumber::parse_on(citizen, today()).unwrap().value;
    assert_eq!(id, demo_citizen().id_number);
    assert_eq!(citizen, "320402199104182866");
    assert_eq!(&id.county_code()[..4], "3204");
    assert!(!id.is_male());
    assert_eq!(demo_citizen().gender, Gender::Female);
    assert_eq!(demo_citizen().name, by_name["citizen"].display_name);
    let enterprise = by_name["enterprise"].subject_id.as_deref().unwrap();
    let uscc = Uscc::parse(enterprise).unwrap();
    assert!(uscc.as_str().starts_with("91320402"));
    assert_eq!(demo_enterprise().name, by_name["enterprise"].display_name);
    assert_eq!(demo_enterprise(), demo_enterprise());
    assert_eq!(demo_citizen(), demo_citizen());
}

#[test]
fn every_dataset_provider_has_a_data_officer() {
    let accounts = accounts();
    for d in datasets() {
        assert!(
            accounts.iter().any(|a| a.role == "data-officer" && a.org == Some(d.provider.as_str())),
            "nobody can deliver {}",
            d.code
        );
        if d.sharing_class == "有条件共享" {
            assert!(
                accounts.iter().any(|a| a.role == "approver" && a.org == Some(d.provider.as_str())),
                "nobody approves requests for {}",
                d.code
            );
        }
    }
}

#[test]
fn datasets_convert_and_foreign_keys_resolve_to_earlier_datasets() {
    let org_codes: HashSet<String> = orgs().into_iter().map(|o| o.code).collect();
    let mut earlier: HashMap<String, NewDataset> = HashMap::new();
    let mut stems = HashSet::new();
    let mut not_shared = 0;
    for input in datasets() {
        let code = input.code.clone();
        assert!(org_codes.contains(&input.provider), "{code}: unknown provider {}", input.provider);
        let d = NewDataset::try_from(input).unwrap_or_else(|e| panic!("{code}: {e:?}"));
        assert!(stems.insert(d.code.table_stem()), "duplicate dataset code {code}");
        assert!(!d.summary.is_empty() && d.summary.chars().count() <= 200, "{code}: summary");
        assert!(d.category.is_some(), "{code}: category");
        assert!(!d.tags.is_empty(), "{code}: tags");
        let published = d.publish_date.unwrap();
        assert!((2025..=2026).contains(&published.year()), "{code}: {published}");
        assert!(!d.schema.primary_key.is_empty(), "{code}: primary key");
        if d.sharing_class == SharingClass::NotShared {
            not_shared += 1;
            assert!(d.sharing_condition.as_deref().is_some_and(|c| c.contains("法")), "{code}: legal basis");
        }
        if d.open_class == OpenClass::Unconditional {
            assert_eq!(d.grade, Grade::General);
        }
        for f in &d.schema.fields {
            assert!(f.title.is_some(), "{code}.{}: title", f.name);
            let personal = matches!(f.format.as_deref(), Some("id-number" | "mobile"));
            if personal {
                assert!(f.sensitive, "{code}.{} must be sensitive", f.name);
            }
        }
        for fk in &d.schema.foreign_keys {
            let target = if fk.reference.resource.is_empty() {
                &d
            } else {
                earlier
                    .get(&fk.reference.resource)
                    .unwrap_or_else(|| panic!("{code}: {} is not an earlier dataset", fk.reference.resource))
            };
            for (own, theirs) in fk.fields.iter().zip(&fk.reference.fields) {
                let a = d.schema.field(own).unwrap();
                let b = target
                    .schema
                    .field(theirs)
                    .unwrap_or_else(|| panic!("{code}: {} has no field {theirs}", fk.reference.resource));
                assert_eq!(
                    (a.field_type, a.format_or_default()),
                    (b.field_type, b.format_or_default()),
                    "{code}.{own}"
                );
            }
            if !fk.reference.resource.is_empty() {
                // The referenced fields are the target's primary key.
                assert_eq!(fk.reference.fields, target.schema.primary_key, "{code} → {}", fk.reference.resource);
            }
        }
        earlier.insert(code, d);
    }
    assert!(not_shared >= 1);
    for code in [XZQH, HJRK, QYDJ, GTGSH, SBCB, HYDJ, BDCDJ, QYYD, PWXK, CSYXZM, NSXYDJ, JZSGXK] {
        assert!(earlier.contains_key(code), "{code} missing");
    }
    assert_eq!(datasets()[0].code, XZQH);
    let hjrk = &earlier[HJRK];
    assert_eq!(hjrk.sharing_class, SharingClass::Conditional);
    assert_eq!(hjrk.open_class, OpenClass::NotOpen);
    assert_eq!(hjrk.grade, Grade::Important);
    for f in ["sfzh", "xm", "hjdz", "sjhm"] {
        assert!(hjrk.schema.field(f).unwrap().sensitive, "hjrk.{f}");
    }
    let sbcb = &earlier[SBCB];
    assert!(sbcb
        .schema
        .foreign_keys
        .iter()
        .any(|fk| fk.fields == ["sfzh"] && fk.reference.resource == HJRK && fk.reference.fields == ["sfzh"]));
    assert_eq!(earlier[XZQH].schema.field("level").unwrap().field_type, FieldType::Integer);
}

#[test]
fn admin_division_rows_fit_the_dataset() {
    let rows = admin_divisions();
    let codes: HashSet<&str> = rows.iter().map(|r| r.code).collect();
    for r in &rows {
        AdminCode::parse(r.code).unwrap();
        if let Some(p) = r.parent {
            assert!(codes.contains(p));
        }
        if let Some(s) = r.successor {
            assert!(codes.contains(s));
        }
        assert_eq!(r.status == "已撤销", r.abolished.is_some());
    }
    for d in DISTRICTS {
        assert!(codes.contains(d.code));
        if let Some((old, _)) = d.historical {
            assert!(codes.contains(old));
        }
    }
}

#[test]
fn tables_are_usable() {
    for d in DISTRICTS {
        assert!(!d.streets.is_empty() && d.weight > 0);
        assert!(IdNumber::compose(d.code, today(), 999).is_some());
        assert!(Uscc::compose('9', '1', d.code, "MA000000").is_some());
    }
    assert!(!BRAND_FIRST.is_empty() && !BRAND_SECOND.is_empty());
    assert!(GIVEN_NAMES.iter().all(|g| !g.1.is_empty() && !g.2.is_empty()));
    assert!(INDUSTRIES.iter().chain(TRADES).all(|i| i.weight > 0 && i.section.len() == 1));
    assert!(INDUSTRIES.iter().any(|i| i.label == "企业管理咨询"));
    assert!(INDUSTRIES.iter().any(|i| i.label == "机械制造"));
    assert_eq!(USCC_ALPHABET.len(), 31);
}

fn check_person(p: &Person) {
    let parsed = IdNumber::parse_on(p.id_number.as_str(), today()).unwrap();
    assert!(parsed.warnings.is_empty());
    assert_eq!(p.id_number.is_male(), p.gender == Gender::Male, "{}", p.id_number);
    assert_eq!(p.id_number.birth_date(), Some(p.birth_date));
    assert!((1930..=2024).contains(&p.birth_date.year()));
    let county = p.id_number.county_code();
    let historical = p.district.historical.map(|h| h.0);
    assert!(county == p.district.code || Some(county) == historical, "{county} vs {}", p.district.code);
    if Some(county) == historical {
        assert!(p.birth_date.year() < 2000);
    }
    let name_len = p.name.chars().count();
    assert!((2..=4).contains(&name_len), "{}", p.name);
    assert!(p.address.starts_with(p.district.address_prefix), "{}", p.address);
    assert!(p.address.ends_with('号') || p.address.ends_with('室'), "{}", p.address);
    Mobile::parse(p.mobile.as_str()).unwrap();
    assert!(p.ethnicity.ends_with('族'));
    assert!(["未婚", "已婚", "离婚", "丧偶"].contains(&p.marital_status));
}

#[test]
fn people_are_valid() {
    let mut rng = DemoRng::new(7);
    let mut historical = 0;
    let mut compound = 0;
    let mut men = 0;
    for _ in 0..5000 {
        let p = person(&mut rng);
        check_person(&p);
        if p.id_number.county_code() != p.district.code {
            historical += 1;
        }
        if ["欧阳", "司马", "诸葛", "上官", "司徒", "皇甫", "东方", "令狐"].iter().any(|s| p.name.starts_with(s))
        {
            compound += 1;
        }
        if p.gender == Gender::Male {
            men += 1;
        }
    }
    assert!(historical > 50, "{historical}");
    assert!(compound > 10, "{compound}");
    assert!((2200..2800).contains(&men), "{men}");
    let wujin = DISTRICTS.iter().find(|d| d.code == "320412").unwrap();
    for _ in 0..200 {
        let p = person_in(&mut rng, wujin);
        check_person(&p);
        assert_eq!(p.district.code, "320412");
    }
    check_person(&demo_citizen());
}

#[test]
fn same_seed_same_people_other_seed_other_people() {
    let draw = |seed| {
        let mut rng = DemoRng::new(seed);
        (0..1000).map(|_| format!("{:?}", person(&mut rng))).collect::<Vec<_>>()
    };
    let a = draw(2026);
    assert_eq!(a, draw(2026));
    let b = draw(2027);
    assert_ne!(a, b);
    assert!(a.iter().zip(&b).filter(|(x, y)| x == y).count() < 5);
    assert_eq!(people(11, 300), people(11, 300));
    assert_eq!(enterprises(11, 300), enterprises(11, 300));
    assert_eq!(sole_traders(11, 100), sole_traders(11, 100));
    assert_ne!(enterprises(11, 50), enterprises(12, 50));
}

#[test]
fn batches_have_distinct_keys() {
    let p = people(3, 2000);
    assert_eq!(p.len(), 2000);
    assert_eq!(p.iter().map(|x| x.id_number.as_str()).collect::<HashSet<_>>().len(), 2000);
    let e = enterprises(3, 1000);
    assert_eq!(e.iter().map(|x| x.uscc.as_str()).collect::<HashSet<_>>().len(), 1000);
    let t = sole_traders(3, 500);
    assert_eq!(t.iter().map(|x| x.uscc.as_str()).collect::<HashSet<_>>().len(), 500);
}

#[test]
fn enterprises_are_valid() {
    let mut rng = DemoRng::new(99);
    let mut sections = HashSet::new();
    for _ in 0..2000 {
        let e = enterprise(&mut rng);
        let u = Uscc::parse(e.uscc.as_str()).unwrap();
        assert!(u.as_str().starts_with("91"), "{u}");
        assert_eq!(u.admin_code(), e.district.code);
        if e.established.year() >= 2016 {
            assert_eq!(&u.as_str()[8..10], "MA");
        }
        assert!(e.name.contains(e.industry.label), "{}", e.name);
        assert!(
            e.name.ends_with("公司") || e.name.ends_with("（有限合伙）") || e.kind == "个人独资企业",
            "{} ({})",
            e.name,
            e.kind
        );
        assert!(
            e.name.starts_with(e.district.address_prefix) || e.name.starts_with("常州") || e.name.starts_with("江苏")
        );
        assert!(e.address.starts_with(e.district.address_prefix));
        assert!((2..=4).contains(&e.legal_representative.chars().count()));
        assert!(e.registered_capital >= 10);
        assert!((1995..=2025).contains(&e.established.year()));
        sections.insert(e.industry.section);
    }
    assert!(sections.len() >= 8);
    let demo = demo_enterprise();
    assert_eq!(demo.uscc.as_str().get(..8), Some("91320402"));
    assert!(demo.address.starts_with("常州市天宁区"));
}

#[test]
fn sole_traders_are_valid() {
    let mut rng = DemoRng::new(5);
    for _ in 0..1000 {
        let t = sole_trader(&mut rng);
        let u = Uscc::parse(t.uscc.as_str()).unwrap();
        assert!(u.as_str().starts_with("92"), "{u}");
        assert_eq!(u.admin_code(), t.district.code);
        check_person(&t.operator);
        assert!(t.registered >= t.operator.birth_date + chrono::Duration::days(18 * 365));
        assert!(t.registered <= NaiveDate::from_ymd_opt(2025, 12, 31).unwrap());
        assert!(t.name.starts_with(t.district.address_prefix) && t.name.ends_with(t.trade.label), "{}", t.name);
        assert!(t.capital >= 1);
    }
}

#[test]
fn the_sharing_plan_fits_the_catalog_and_the_accounts() {
    use super::sharing::{Outcome, APPS, REQUESTS};
    let accounts = accounts();
    let has = |username: &str, role: &str, org: &str| {
        accounts.iter().any(|a| a.username == username && a.role == role && a.org == Some(org))
    };
    for a in APPS {
        assert!(has(a.developer, "app-developer", a.org), "{} is not an app developer of {}", a.developer, a.org);
    }
    let catalog = datasets();
    let (mut automatic, mut narrowed, mut pending, mut overdue, mut refused, mut revoked) = (0, 0, 0, 0, 0, 0);
    for r in REQUESTS {
        let app = APPS[r.app];
        let d = catalog.iter().find(|d| d.code == r.dataset).unwrap_or_else(|| panic!("no dataset {}", r.dataset));
        assert_ne!(d.provider, app.org, "an app asks another department");
        let names: Vec<&str> =
            d.schema["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
        for f in r.fields.iter().chain(r.clear_fields) {
            assert!(names.contains(f), "{} has no field {f}", r.dataset);
        }
        let conditional = d.sharing_class == "有条件共享";
        match r.outcome {
            Outcome::Automatic | Outcome::Revoked { .. } => {
                assert_eq!(d.sharing_class, "无条件共享", "{}", r.dataset);
                assert!(r.clear_fields.is_empty());
                if let Outcome::Revoked { approver, .. } = r.outcome {
                    assert!(has(approver, "approver", &d.provider));
                    revoked += 1;
                } else {
                    automatic += 1;
                }
            }
            Outcome::Pending => {
                assert!(conditional);
                pending += 1;
                if r.days_ago >= 20 {
                    overdue += 1;
                }
            }
            Outcome::Approved { approver, fields, .. } => {
                assert!(conditional && has(approver, "approver", &d.provider), "{}", r.dataset);
                if let Some(f) = fields {
                    assert!(f.len() < r.fields.len() && f.iter().all(|x| r.fields.contains(x)));
                    narrowed += 1;
                }
            }
            Outcome::Refused { approver, reason } => {
                assert!(conditional && has(approver, "approver", &d.provider) && !reason.is_empty());
                refused += 1;
            }
        }
    }
    assert!(automatic >= 1 && narrowed >= 1 && pending >= 2 && overdue >= 1 && refused >= 1 && revoked >= 1);
    // The walk-through: 人社局's app holds a grant on part of 户籍人口, and a
    // conditional request waits in 公安局's inbox.
    assert!(REQUESTS.iter().any(|r| APPS[r.app].org == "cz-rsj"
        && r.dataset == HJRK
        && matches!(r.outcome, Outcome::Approved { fields: Some(_), .. })));
    assert!(REQUESTS.iter().any(|r| r.dataset == HJRK && r.outcome == Outcome::Pending));
}
