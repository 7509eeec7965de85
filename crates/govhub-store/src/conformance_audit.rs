//! Conformance scenarios for the audit chain (part of [`crate::conformance::run_all`]):
//! every entry links to the one before and hashes to its stored hash, the new fields
//! round-trip, subjects are found by identifier but stored only as digests, checkpoints
//! are checked against the chain, and concurrent appends (group commit) still give one
//! gap-free chain that `verify_log` accepts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::conformance::at;
use chrono::Utc;
use govhub_core::audit::{checkpoint_message, subject_digest, verify_log, ChainEntry, Checkpoint, GENESIS_HASH};
use govhub_core::model::*;
use govhub_core::names::OrgCode;
use govhub_core::signer::{PlatformSigner, Sm2Signer};
use govhub_core::store::{Store, StoreError};
use serde_json::json;
use std::sync::Arc;

/// Run every audit-chain scenario on one store.
pub async fn run_all(store: Arc<dyn Store>) {
    chain_and_fields(store.as_ref()).await;
    subjects(store.as_ref()).await;
    checkpoints(store.as_ref()).await;
    group_commit(store.clone()).await;
    subjects_across_many_entries(store.clone()).await;
    whole_chain_verifies(store.as_ref()).await;
}

/// A subject read now and then among 9,000 other entries (more than two blocks of the
/// SQLite subject index, and a tail after them) is found at every one of its entries.
pub async fn subjects_across_many_entries(store: Arc<dyn Store>) {
    const N: usize = 9_000;
    let wanted = "320402198001011230";
    let mut mine = Vec::new();
    for chunk in (0..N).collect::<Vec<_>>().chunks(500) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|&i| {
                let s = store.clone();
                let subject = if i % 997 == 0 { wanted.to_string() } else { format!("3204021980{:08}", i) };
                tokio::spawn(async move {
                    let seq = s.append_audit(&access("conf-many", "CONF-MANY", &[&subject])).await.unwrap();
                    (i % 997 == 0).then_some(seq)
                })
            })
            .collect();
        for t in tasks {
            mine.extend(t.await.unwrap());
        }
    }
    mine.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(mine.len(), N.div_ceil(997));
    let found = store.list_audit_for_subject(wanted, 1000).await.unwrap();
    assert_eq!(found.iter().map(|e| e.seq).collect::<Vec<_>>(), mine);
    let newest = store.list_audit_for_subject(wanted, 3).await.unwrap();
    assert_eq!(newest.iter().map(|e| e.seq).collect::<Vec<_>>(), mine[..3]);
    let other = store.list_audit_for_subject("320402198000004001", 10).await.unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].event.target, "CONF-MANY");
}

pub fn access(actor: &str, target: &str, subjects: &[&str]) -> NewAuditEvent {
    NewAuditEvent {
        at: at("2026-03-02T09:30:00.123456Z"),
        actor: actor.into(),
        actor_role: Some(Role::AppDeveloper),
        actor_org: Some(OrgCode::parse("conf-chain-rsj").unwrap()),
        on_behalf_of: None,
        action: "conf.share.read".into(),
        target: target.into(),
        outcome: Outcome::Allowed,
        detail: json!({"dataset": target, "filter": {"xb": "eq:1"}, "fields": ["sfzh", "xm"]}),
        request_id: Some("req-chain".into()),
        app: Some("conf-app".into()),
        purpose: Some("社会保障资格认证".into()),
        rows: Some(subjects.len() as i64),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
    }
}

async fn all_entries(store: &dyn Store) -> Vec<ChainEntry> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store.audit_chain(after, 97).await.unwrap();
        if page.is_empty() {
            return out;
        }
        after = page.last().unwrap().seq;
        out.extend(page);
    }
}

/// Entries link and hash; new fields round-trip; `list_audit` shows the hashes.
pub async fn chain_and_fields(store: &dyn Store) {
    let mut ev = access("conf-chain-dev", "CONF-CHAIN", &["320402199001011235"]);
    ev.on_behalf_of = Some(OrgCode::parse("conf-chain-gaj").unwrap());
    // Nanoseconds are cut to microseconds, the precision both stores keep.
    ev.at = at("2026-03-02T09:30:00.123456Z") + chrono::Duration::nanoseconds(789);
    let seq = store.append_audit(&ev).await.unwrap();
    let plain = NewAuditEvent { detail: serde_json::Value::Null, ..access("conf-chain-dev", "CONF-CHAIN", &[]) };
    let plain = NewAuditEvent { app: None, purpose: None, rows: None, request_id: None, ..plain };
    let seq2 = store.append_audit(&plain).await.unwrap();
    assert_eq!(seq2, seq + 1, "sequence numbers are consecutive");

    let listed =
        store.list_audit(&AuditQuery { target: Some("CONF-CHAIN".into()), ..Default::default() }).await.unwrap();
    assert_eq!(listed.iter().map(|e| e.seq).collect::<Vec<_>>(), [seq2, seq]);
    let first = &listed[1];
    let expected = NewAuditEvent { at: at("2026-03-02T09:30:00.123456Z"), subjects: Vec::new(), ..ev.clone() };
    assert_eq!(first.event, expected, "fields round-trip; subjects are not read back in clear");
    assert_eq!(listed[0].event, plain);
    assert_eq!(listed[0].prev_hash, first.hash);
    assert_eq!(first.hash.len(), 64);

    let chain = all_entries(store).await;
    let mut prev = GENESIS_HASH.to_string();
    for (i, e) in chain.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1, "seq numbers start at 1 without gaps");
        assert_eq!(e.prev_hash, prev, "seq {} does not link", e.seq);
        assert_eq!(e.compute_hash(), e.hash, "seq {} does not hash to its stored hash", e.seq);
        assert_eq!(e.malformed, None);
        prev = e.hash.clone();
    }
    let stored = chain.iter().find(|e| e.seq == seq).unwrap();
    assert_eq!(stored.body.at, "2026-03-02T09:30:00.123456Z");
    assert_eq!(stored.body.on_behalf_of.as_deref(), Some("conf-chain-gaj"));
    assert_eq!(stored.body.rows, Some(1));
    assert_eq!(stored.body.subjects.len(), 1);
    assert_ne!(stored.body.subjects[0], "320402199001011235", "subjects are stored as digests");
    assert_eq!(store.audit_head().await.unwrap().unwrap(), chain.last().unwrap().head());
}

/// A subject's accesses, newest first, whatever the letter case of its check character.
pub async fn subjects(store: &dyn Store) {
    let a =
        store.append_audit(&access("conf-subj-1", "CONF-SUBJ-A", &["32040219900101123X", "91320400MA1XXXXX0Y"])).await;
    let b = store.append_audit(&access("conf-subj-2", "CONF-SUBJ-B", &["320402199001011235"])).await;
    let c =
        store.append_audit(&access("conf-subj-3", "CONF-SUBJ-C", &["32040219900101123x", "32040219900101123x"])).await;
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    let seqs = |v: Vec<AuditEvent>| v.into_iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(seqs(store.list_audit_for_subject("32040219900101123x", 0).await.unwrap()), [c, a]);
    assert_eq!(seqs(store.list_audit_for_subject(" 32040219900101123X ", 1).await.unwrap()), [c]);
    assert_eq!(seqs(store.list_audit_for_subject("91320400MA1XXXXX0Y", 10).await.unwrap()), [a]);
    assert_eq!(seqs(store.list_audit_for_subject("320402199001011235", 10).await.unwrap()).first(), Some(&b));
    assert!(store.list_audit_for_subject("110101199003070000", 10).await.unwrap().is_empty());
    let entry = store.audit_chain(c - 1, 1).await.unwrap().remove(0);
    assert_eq!(entry.body.subjects.len(), 1, "duplicates are stored once");
    // Digests are salted per installation: not the bare SM3 of the identifier.
    assert_ne!(entry.body.subjects[0], govhub_crypto::sm3_hex(b"32040219900101123X"));
    assert_ne!(entry.body.subjects[0], subject_digest("", "32040219900101123X"));
}

/// Checkpoints must match the chain; one per seq; listed in order.
pub async fn checkpoints(store: &dyn Store) {
    let signer = Sm2Signer::ephemeral().unwrap();
    let seq = store.append_audit(&access("conf-cp", "CONF-CP", &[])).await.unwrap();
    let head = store.audit_head().await.unwrap().unwrap();
    assert_eq!(head.seq, seq);
    let make = |seq: i64, hash: &str| {
        let at = at("2026-03-02T10:00:00.5Z");
        Checkpoint {
            seq,
            head_hash: hash.to_string(),
            at,
            signature: signer.sign(&checkpoint_message(seq, hash, at)).unwrap(),
            key_fingerprint: signer.fingerprint(),
        }
    };
    match store.insert_checkpoint(&make(seq, &"f".repeat(64))).await {
        Err(StoreError::Conflict { what: "audit_checkpoint" }) => {}
        other => panic!("a checkpoint with the wrong head: expected Conflict, got {other:?}"),
    }
    match store.insert_checkpoint(&make(seq + 1000, &head.hash)).await {
        Err(StoreError::Conflict { what: "audit_checkpoint" }) => {}
        other => panic!("a checkpoint beyond the head: expected Conflict, got {other:?}"),
    }
    let cp = make(seq, &head.hash);
    assert_eq!(store.insert_checkpoint(&cp).await.unwrap(), cp);
    // Another node checkpointing the same seq gets the stored one back.
    let mut again = make(seq, &head.hash);
    again.at = at("2026-03-02T10:00:01Z");
    assert_eq!(store.insert_checkpoint(&again).await.unwrap(), cp);
    assert_eq!(store.latest_checkpoint().await.unwrap(), Some(cp.clone()));
    let listed = store.list_checkpoints(seq - 1, 10).await.unwrap();
    assert_eq!(listed, vec![cp.clone()]);
    assert!(store.list_checkpoints(seq, 10).await.unwrap().is_empty());
}

/// Many callers at once: group commit gives each a distinct seq, and the chain has
/// no gap and no broken link.
pub async fn group_commit(store: Arc<dyn Store>) {
    let before = store.audit_head().await.unwrap().map(|h| h.seq).unwrap_or(0);
    let mut tasks = Vec::new();
    for t in 0..64 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..5 {
                let mut ev = access("conf-group", &format!("CONF-GROUP-{t}-{i}"), &["320402199001011235"]);
                ev.at = Utc::now();
                seqs.push(s.append_audit(&ev).await.unwrap());
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.extend(t.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, ((before + 1)..=(before + 320)).collect::<Vec<_>>(), "one gap-free run of seqs");
}

/// The whole log so far verifies, with and without a key.
pub async fn whole_chain_verifies(store: &dyn Store) {
    let r = verify_log(store, &[], &mut |_| {}).await.unwrap();
    assert_eq!(r.fault, None, "{:?}", r.fault.as_ref().map(|f| f.to_string()));
    assert!(r.entries > 320);
    assert_eq!(r.checkpoints, 1);
}
