//! SQLite: licence types, organisation seal keys and licences.

use super::{conflict, day, db, ts, SqliteStore, Ts};
use crate::records::{corrupt, org_code, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use govhub_core::licence::*;
use govhub_core::licence_id::LicenceId;
use govhub_core::names::OrgCode;
use govhub_core::schema::TableSchema;
use rusqlite::{params, Connection, OptionalExtension, Row};

const TYPE_COLUMNS: &str = "code, name, authority, holder_kind, schema, created_by, created_at";

fn type_row(r: &Row<'_>) -> StoreResult<LicenceType> {
    let kind: String = r.get(3).map_err(db)?;
    let schema: String = r.get(4).map_err(db)?;
    let schema_json: serde_json::Value =
        serde_json::from_str(&schema).map_err(|e| corrupt("licence schema", &schema, e))?;
    Ok(LicenceType {
        code: r.get(0).map_err(db)?,
        name: r.get(1).map_err(db)?,
        authority: org_code("licence type authority", &r.get::<_, String>(2).map_err(db)?)?,
        holder_kind: HolderKind::parse(&kind).ok_or_else(|| corrupt("holder kind", &kind, "unknown"))?,
        schema: TableSchema::parse(&schema_json).map_err(|e| corrupt("licence schema", &schema, e.message))?,
        created_by: r.get(5).map_err(db)?,
        created_at: r.get::<_, Ts>(6).map_err(db)?.0,
    })
}

const KEY_COLUMNS: &str =
    "id, org, serial, certificate, seal, encrypted_key, created_at, retired_at, revoked_at, revoke_reason";

fn key_row(r: &Row<'_>) -> StoreResult<OrgKey> {
    Ok(OrgKey {
        id: r.get(0).map_err(db)?,
        org: org_code("org key org", &r.get::<_, String>(1).map_err(db)?)?,
        serial: r.get(2).map_err(db)?,
        certificate: r.get(3).map_err(db)?,
        seal: r.get(4).map_err(db)?,
        encrypted_key: r.get(5).map_err(db)?,
        created_at: r.get::<_, Ts>(6).map_err(db)?.0,
        retired_at: r.get::<_, Option<Ts>>(7).map_err(db)?.map(|t| t.0),
        revoked_at: r.get::<_, Option<Ts>>(8).map_err(db)?.map(|t| t.0),
        revoke_reason: r.get(9).map_err(db)?,
    })
}

const LICENCE_COLUMNS: &str = "id, seq, type_code, type_name, holder_code, holder_name, holder_kind, issuer, \
     issuer_name, valid_from, valid_until, fields, issued_at, issued_by, key_id, status, status_reason, status_at, \
     status_by, document, signature";

fn date_of(what: &str, s: &str) -> StoreResult<NaiveDate> {
    s.parse().map_err(|e| corrupt(what, s, e))
}

fn licence_row(r: &Row<'_>) -> StoreResult<Licence> {
    let id: String = r.get(0).map_err(db)?;
    let kind: String = r.get(6).map_err(db)?;
    let fields: String = r.get(11).map_err(db)?;
    let status: String = r.get(15).map_err(db)?;
    Ok(Licence {
        id: id.parse::<LicenceId>().map_err(|e| corrupt("licence id", &id, e))?,
        seq: r.get(1).map_err(db)?,
        type_code: r.get(2).map_err(db)?,
        type_name: r.get(3).map_err(db)?,
        holder_code: r.get(4).map_err(db)?,
        holder_name: r.get(5).map_err(db)?,
        holder_kind: HolderKind::parse(&kind).ok_or_else(|| corrupt("holder kind", &kind, "unknown"))?,
        issuer: org_code("licence issuer", &r.get::<_, String>(7).map_err(db)?)?,
        issuer_name: r.get(8).map_err(db)?,
        valid_from: date_of("valid_from", &r.get::<_, String>(9).map_err(db)?)?,
        valid_until: date_of("valid_until", &r.get::<_, String>(10).map_err(db)?)?,
        fields: serde_json::from_str(&fields).map_err(|e| corrupt("licence fields", &fields, e))?,
        issued_at: r.get::<_, Ts>(12).map_err(db)?.0,
        issued_by: r.get(13).map_err(db)?,
        key_id: r.get(14).map_err(db)?,
        status: LicenceStatus::parse(&status).ok_or_else(|| corrupt("licence status", &status, "unknown"))?,
        status_reason: r.get(16).map_err(db)?,
        status_at: r.get::<_, Option<Ts>>(17).map_err(db)?.map(|t| t.0),
        status_by: r.get(18).map_err(db)?,
        document: r.get(19).map_err(db)?,
        signature: r.get(20).map_err(db)?,
    })
}

fn insert_one(c: &Connection, l: &Licence) -> StoreResult<()> {
    let fields = serde_json::to_string(&l.fields).map_err(|e| corrupt("licence fields", "", e))?;
    c.prepare_cached(&format!(
        "INSERT INTO licences ({LICENCE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
         ?15, ?16, ?17, ?18, ?19, ?20, ?21)"
    ))
    .map_err(db)?
    .execute(params![
        l.id.as_str(),
        l.seq,
        l.type_code,
        l.type_name,
        l.holder_code,
        l.holder_name,
        l.holder_kind.as_str(),
        l.issuer.as_str(),
        l.issuer_name,
        day(l.valid_from),
        day(l.valid_until),
        fields,
        ts(l.issued_at),
        l.issued_by,
        l.key_id,
        l.status.as_str(),
        l.status_reason,
        l.status_at.map(ts),
        l.status_by,
        l.document,
        l.signature,
    ])
    .map(|_| ())
    .map_err(conflict("licence"))
}

fn collect<T>(rows: &mut rusqlite::Rows<'_>, f: fn(&Row<'_>) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db)? {
        out.push(f(r)?);
    }
    Ok(out)
}

#[async_trait]
impl LicenceStore for SqliteStore {
    async fn insert_licence_type(&self, t: &LicenceType) -> StoreResult<()> {
        let t = t.clone();
        self.write(move |c| {
            c.execute(
                &format!("INSERT INTO licence_types ({TYPE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    t.code,
                    t.name,
                    t.authority.as_str(),
                    t.holder_kind.as_str(),
                    t.schema.to_json().to_string(),
                    t.created_by,
                    ts(t.created_at)
                ],
            )
            .map(|_| ())
            .map_err(conflict("licence_type"))
        })
        .await
    }

    async fn get_licence_type(&self, code: &str) -> StoreResult<Option<LicenceType>> {
        let code = code.to_string();
        self.read(move |c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT {TYPE_COLUMNS} FROM licence_types WHERE code = ?1")).map_err(db)?;
            let mut rows = stmt.query([code]).map_err(db)?;
            Ok(collect(&mut rows, type_row)?.pop())
        })
        .await
    }

    async fn list_licence_types(&self) -> StoreResult<Vec<LicenceType>> {
        self.read(move |c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT {TYPE_COLUMNS} FROM licence_types ORDER BY code")).map_err(db)?;
            let mut rows = stmt.query([]).map_err(db)?;
            collect(&mut rows, type_row)
        })
        .await
    }

    async fn insert_org_key(&self, key: &OrgKey) -> StoreResult<OrgKey> {
        let key = key.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO org_keys (org, serial, certificate, seal, encrypted_key, created_at, retired_at, \
                 revoked_at, revoke_reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    key.org.as_str(),
                    key.serial,
                    key.certificate,
                    key.seal,
                    key.encrypted_key,
                    ts(key.created_at),
                    key.retired_at.map(ts),
                    key.revoked_at.map(ts),
                    key.revoke_reason
                ],
            )
            .map_err(conflict("org_key"))?;
            Ok(OrgKey { id: c.last_insert_rowid(), ..key })
        })
        .await
    }

    async fn current_org_key(&self, org: &OrgCode) -> StoreResult<Option<OrgKey>> {
        let org = org.as_str().to_string();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {KEY_COLUMNS} FROM org_keys WHERE org = ?1 AND retired_at IS NULL AND revoked_at IS NULL \
                     ORDER BY id DESC LIMIT 1"
                ))
                .map_err(db)?;
            let mut rows = stmt.query([org]).map_err(db)?;
            Ok(collect(&mut rows, key_row)?.pop())
        })
        .await
    }

    async fn get_org_key(&self, id: i64) -> StoreResult<Option<OrgKey>> {
        self.read(move |c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM org_keys WHERE id = ?1")).map_err(db)?;
            let mut rows = stmt.query([id]).map_err(db)?;
            Ok(collect(&mut rows, key_row)?.pop())
        })
        .await
    }

    async fn list_org_keys(&self, org: &OrgCode) -> StoreResult<Vec<OrgKey>> {
        let org = org.as_str().to_string();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM org_keys WHERE org = ?1 ORDER BY id DESC"))
                .map_err(db)?;
            let mut rows = stmt.query([org]).map_err(db)?;
            collect(&mut rows, key_row)
        })
        .await
    }

    async fn retire_org_key(&self, id: i64, at: DateTime<Utc>) -> StoreResult<bool> {
        self.write(move |c| {
            c.execute(
                "UPDATE org_keys SET retired_at = ?2 WHERE id = ?1 AND retired_at IS NULL AND revoked_at IS NULL",
                params![id, ts(at)],
            )
            .map(|n| n == 1)
            .map_err(db)
        })
        .await
    }

    async fn revoke_org_key(&self, id: i64, at: DateTime<Utc>, reason: &str) -> StoreResult<bool> {
        let reason = reason.to_string();
        self.write(move |c| {
            c.execute(
                "UPDATE org_keys SET revoked_at = ?2, revoke_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, ts(at), reason],
            )
            .map(|n| n == 1)
            .map_err(db)
        })
        .await
    }

    async fn next_licence_seq(&self) -> StoreResult<i64> {
        self.write(move |c| {
            c.query_row("UPDATE licence_counter SET value = value + 1 WHERE id = 1 RETURNING value", [], |r| r.get(0))
                .map_err(db)
        })
        .await
    }

    async fn insert_licence(&self, l: &Licence) -> StoreResult<()> {
        let l = l.clone();
        self.write(move |c| insert_one(c, &l)).await
    }

    async fn insert_licences(&self, ls: &[Licence]) -> StoreResult<()> {
        let ls = ls.to_vec();
        self.write(move |c| {
            let tx = c.transaction().map_err(db)?;
            for l in &ls {
                insert_one(&tx, l)?;
            }
            tx.commit().map_err(db)
        })
        .await
    }

    async fn insert_sourced_licences(&self, ls: &[Licence], sources: &[String]) -> StoreResult<()> {
        let (ls, sources) = (ls.to_vec(), sources.to_vec());
        self.write(move |c| {
            let tx = c.transaction().map_err(db)?;
            for (l, digest) in ls.iter().zip(&sources) {
                insert_one(&tx, l)?;
                tx.prepare_cached("INSERT INTO licence_sources (digest, licence_id) VALUES (?1, ?2)")
                    .map_err(db)?
                    .execute(params![digest, l.id.as_str()])
                    .map_err(conflict("licence"))?;
            }
            tx.commit().map_err(db)
        })
        .await
    }

    async fn licences_by_source(&self, digests: &[String]) -> StoreResult<Vec<(String, String)>> {
        let digests = digests.to_vec();
        self.read(move |c| {
            let mut stmt = c.prepare_cached("SELECT licence_id FROM licence_sources WHERE digest = ?1").map_err(db)?;
            let mut out = Vec::new();
            for d in digests {
                if let Some(id) = stmt.query_row([&d], |r| r.get::<_, String>(0)).optional().map_err(db)? {
                    out.push((d, id));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn get_licence(&self, id: &str) -> StoreResult<Option<Licence>> {
        let id = id.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {LICENCE_COLUMNS} FROM licences WHERE id = ?1"))
                .map_err(db)?
                .query_row([id], |r| Ok(licence_row(r)))
                .optional()
                .map_err(db)?
                .transpose()
        })
        .await
    }

    async fn list_licences_by_holder(&self, holder: &str, issuer: Option<&OrgCode>) -> StoreResult<Vec<Licence>> {
        let holder = holder.to_string();
        let issuer = issuer.map(|o| o.as_str().to_string());
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {LICENCE_COLUMNS} FROM licences WHERE holder_code = ?1 AND (?2 IS NULL OR issuer = ?2) \
                     ORDER BY issued_at DESC, seq DESC"
                ))
                .map_err(db)?;
            let mut rows = stmt.query(params![holder, issuer]).map_err(db)?;
            collect(&mut rows, licence_row)
        })
        .await
    }

    async fn set_licence_status(&self, id: &str, ch: &StatusChange) -> StoreResult<bool> {
        let (id, ch) = (id.to_string(), ch.clone());
        self.write(move |c| {
            c.execute(
                "UPDATE licences SET status = ?2, status_reason = ?3, status_by = ?4, status_at = ?5 WHERE id = ?1",
                params![id, ch.status.as_str(), ch.reason, ch.by, ts(ch.at)],
            )
            .map(|n| n == 1)
            .map_err(db)
        })
        .await
    }

    async fn licence_statuses(&self, from: i64, to: i64) -> StoreResult<Vec<(i64, LicenceStatus)>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT seq, status FROM licences WHERE status <> 'active' AND seq >= ?1 AND seq < ?2 ORDER BY seq",
                )
                .map_err(db)?;
            let mut rows = stmt.query(params![from, to]).map_err(db)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db)? {
                let s: String = r.get(1).map_err(db)?;
                out.push((
                    r.get(0).map_err(db)?,
                    LicenceStatus::parse(&s).ok_or_else(|| corrupt("status", &s, "unknown"))?,
                ));
            }
            Ok(out)
        })
        .await
    }
}
