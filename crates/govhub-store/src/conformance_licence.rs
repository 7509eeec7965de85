//! Conformance scenarios for e-licences (part of [`crate::conformance::run_all`]):
//! licence types, organisation seal keys (current, rotation, revocation), the licence
//! sequence, licences by holder and issuer, atomic batches, status changes and the
//! status-list query. Storage only: the bytes stored are not checked cryptographically
//! here (the services and the HTTP tests do that).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::conformance::at;
use govhub_core::licence::*;
use govhub_core::licence_id::LicenceId;
use govhub_core::model::{Org, OrgKind};
use govhub_core::names::OrgCode;
use govhub_core::schema::TableSchema;
use govhub_core::store::{Store, StoreError};
use serde_json::json;

const USCC: &str = "11320400014160578A";

fn oc(s: &str) -> OrgCode {
    OrgCode::parse(s).unwrap()
}

fn licence(seq: i64, holder: &str, issuer: &str, key_id: i64) -> Licence {
    let id = LicenceId::new(&format!("{USCC}001"), USCC, &format!("2026{seq:010}"), 1).unwrap();
    let mut fields = serde_json::Map::new();
    fields.insert("zczb".into(), json!(100));
    fields.insert("jyfw".into(), json!("软件开发"));
    Licence {
        id,
        seq,
        type_code: format!("{USCC}001"),
        type_name: "营业执照".into(),
        holder_code: holder.into(),
        holder_name: "常州龙城科技有限公司".into(),
        holder_kind: HolderKind::Organisation,
        issuer: oc(issuer),
        issuer_name: "常州市市场监督管理局".into(),
        valid_from: "2026-03-01".parse().unwrap(),
        valid_until: "2046-02-28".parse().unwrap(),
        fields,
        issued_at: at("2026-03-02T09:30:00.123456Z"),
        issued_by: "scjgj-officer".into(),
        key_id,
        status: LicenceStatus::Active,
        status_reason: None,
        status_at: None,
        status_by: None,
        document: format!("{{\"seq\":{seq}}}").into_bytes(),
        signature: vec![0x30, 0x03, 0x02, 0x01, seq as u8],
    }
}

fn key(org: &str, serial: &str) -> OrgKey {
    OrgKey {
        id: 0,
        org: oc(org),
        serial: serial.into(),
        certificate: vec![0x30, 0x01, 0x00],
        seal: vec![0x30, 0x02, 0x00, 0x01],
        encrypted_key: "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA==\n-----END ENCRYPTED PRIVATE KEY-----\n".into(),
        created_at: at("2026-03-01T08:00:00.000001Z"),
        retired_at: None,
        revoked_at: None,
        revoke_reason: None,
    }
}

/// Run every licence scenario on one store.
pub async fn run_all(store: &dyn Store) {
    for code in ["conf-lic-scjgj", "conf-lic-other"] {
        store
            .insert_org(&Org {
                code: oc(code),
                name: code.into(),
                kind: OrgKind::Department,
                parent: None,
                admin_code: None,
                uscc: None,
                created_at: at("2026-03-01T00:00:00Z"),
            })
            .await
            .unwrap();
    }

    // Types.
    let schema = TableSchema::parse(
        &json!({"fields": [{"name": "zczb", "type": "integer"}, {"name": "jyfw", "type": "string"}]}),
    )
    .unwrap();
    let t = LicenceType {
        code: format!("{USCC}001"),
        name: "营业执照".into(),
        authority: oc("conf-lic-scjgj"),
        holder_kind: HolderKind::Organisation,
        schema,
        created_by: "conf".into(),
        created_at: at("2026-03-01T08:00:00.5Z"),
    };
    store.insert_licence_type(&t).await.unwrap();
    assert!(matches!(store.insert_licence_type(&t).await, Err(StoreError::Conflict { what: "licence_type" })));
    assert_eq!(store.get_licence_type(&t.code).await.unwrap().as_ref(), Some(&t));
    assert!(store.get_licence_type("nope").await.unwrap().is_none());
    assert!(store.list_licence_types().await.unwrap().iter().any(|x| x.code == t.code));

    // Keys: current, rotation, revocation.
    let org = oc("conf-lic-scjgj");
    assert!(store.current_org_key(&org).await.unwrap().is_none());
    let k1 = store.insert_org_key(&key("conf-lic-scjgj", "c0f1")).await.unwrap();
    assert!(k1.id > 0);
    assert_eq!(store.current_org_key(&org).await.unwrap().unwrap(), k1);
    assert!(store.retire_org_key(k1.id, at("2026-03-03T00:00:00Z")).await.unwrap());
    assert!(!store.retire_org_key(k1.id, at("2026-03-03T00:00:00Z")).await.unwrap(), "already retired");
    assert!(store.current_org_key(&org).await.unwrap().is_none());
    let k2 = store.insert_org_key(&key("conf-lic-scjgj", "c0f2")).await.unwrap();
    assert_eq!(store.current_org_key(&org).await.unwrap().unwrap().id, k2.id);
    assert!(store.revoke_org_key(k2.id, at("2026-03-04T00:00:00Z"), "key compromised").await.unwrap());
    assert!(!store.revoke_org_key(k2.id, at("2026-03-04T00:00:00Z"), "again").await.unwrap());
    assert!(store.current_org_key(&org).await.unwrap().is_none());
    let keys = store.list_org_keys(&org).await.unwrap();
    assert_eq!(keys.iter().map(|k| k.serial.as_str()).collect::<Vec<_>>(), ["c0f2", "c0f1"], "newest first");
    assert_eq!(keys[0].revoke_reason.as_deref(), Some("key compromised"));
    assert_eq!(keys[1].retired_at, Some(at("2026-03-03T00:00:00Z")));
    assert_eq!(store.get_org_key(k1.id).await.unwrap().unwrap().serial, "c0f1");
    assert!(matches!(store.insert_org_key(&key("conf-lic-scjgj", "c0f1")).await, Err(StoreError::Conflict { .. })));

    // Sequence: strictly increasing, never reused.
    let a = store.next_licence_seq().await.unwrap();
    let b = store.next_licence_seq().await.unwrap();
    assert!(a >= 1 && b > a);

    // Licences.
    let holder = "91320402123456788Q";
    let l1 = licence(a, holder, "conf-lic-scjgj", k1.id);
    store.insert_licence(&l1).await.unwrap();
    assert_eq!(store.get_licence(l1.id.as_str()).await.unwrap().as_ref(), Some(&l1));
    assert!(matches!(store.insert_licence(&l1).await, Err(StoreError::Conflict { what: "licence" })));
    let mut l2 = licence(b, holder, "conf-lic-other", k1.id);
    l2.issued_at = at("2026-03-05T09:30:00Z");
    store.insert_licence(&l2).await.unwrap();
    let all = store.list_licences_by_holder(holder, None).await.unwrap();
    assert_eq!(all.iter().map(|l| l.seq).collect::<Vec<_>>(), [b, a], "newest first");
    let own = store.list_licences_by_holder(holder, Some(&oc("conf-lic-other"))).await.unwrap();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].seq, b);
    assert!(store.list_licences_by_holder("nobody", None).await.unwrap().is_empty());

    // A batch is all or nothing.
    let c = store.next_licence_seq().await.unwrap();
    let d = store.next_licence_seq().await.unwrap();
    let batch = vec![licence(c, holder, "conf-lic-scjgj", k1.id), licence(a, holder, "conf-lic-scjgj", k1.id)];
    assert!(store.insert_licences(&batch).await.is_err());
    assert!(store.get_licence(batch[0].id.as_str()).await.unwrap().is_none(), "rolled back");
    store
        .insert_licences(&[licence(c, holder, "conf-lic-scjgj", k1.id), licence(d, holder, "conf-lic-scjgj", k1.id)])
        .await
        .unwrap();
    assert_eq!(store.list_licences_by_holder(holder, None).await.unwrap().len(), 4);

    // Batch issue with source digests: recorded with the licences, all or nothing, a
    // digest recorded twice is a conflict, and lookups find only what is recorded.
    let (e, f, g) = (
        store.next_licence_seq().await.unwrap(),
        store.next_licence_seq().await.unwrap(),
        store.next_licence_seq().await.unwrap(),
    );
    let (le, lf) = (licence(e, holder, "conf-lic-scjgj", k1.id), licence(f, holder, "conf-lic-scjgj", k1.id));
    store.insert_sourced_licences(&[le.clone(), lf.clone()], &["d-e".into(), "d-f".into()]).await.unwrap();
    let mut found = store.licences_by_source(&["d-f".into(), "d-x".into(), "d-e".into()]).await.unwrap();
    found.sort();
    assert_eq!(
        found,
        vec![("d-e".to_string(), le.id.as_str().to_string()), ("d-f".to_string(), lf.id.as_str().to_string())]
    );
    assert!(store.licences_by_source(&[]).await.unwrap().is_empty());
    let lg = licence(g, holder, "conf-lic-scjgj", k1.id);
    let err = store.insert_sourced_licences(std::slice::from_ref(&lg), &["d-e".into()]).await;
    assert!(matches!(err, Err(StoreError::Conflict { .. })), "{err:?}");
    assert!(store.get_licence(lg.id.as_str()).await.unwrap().is_none(), "rolled back with its digest");
    assert_eq!(store.list_licences_by_holder(holder, None).await.unwrap().len(), 6);

    // Status.
    let change = StatusChange {
        status: LicenceStatus::Suspended,
        reason: "年报未报".into(),
        by: "scjgj-officer".into(),
        at: at("2026-03-06T10:00:00.000002Z"),
    };
    assert!(store.set_licence_status(l1.id.as_str(), &change).await.unwrap());
    let got = store.get_licence(l1.id.as_str()).await.unwrap().unwrap();
    assert_eq!(got.status, LicenceStatus::Suspended);
    assert_eq!(got.status_reason.as_deref(), Some("年报未报"));
    assert_eq!(got.status_at, Some(change.at));
    let revoke = StatusChange { status: LicenceStatus::Revoked, ..change.clone() };
    assert!(store.set_licence_status(l2.id.as_str(), &revoke).await.unwrap());
    let missing = LicenceId::new(&format!("{USCC}001"), USCC, "X1", 1).unwrap();
    assert!(!store.set_licence_status(missing.as_str(), &change).await.unwrap());
    let statuses = store.licence_statuses(a, d + 1).await.unwrap();
    assert_eq!(statuses, vec![(a, LicenceStatus::Suspended), (b, LicenceStatus::Revoked)]);
    assert_eq!(store.licence_statuses(b + 1, d + 1).await.unwrap(), vec![]);
}
