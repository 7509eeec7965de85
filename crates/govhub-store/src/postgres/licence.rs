//! PostgreSQL: licence types, organisation seal keys and licences.

use super::{conflict, db, get, PostgresStore};
use crate::records::{corrupt, org_code, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use govhub_core::licence::*;
use govhub_core::licence_id::LicenceId;
use govhub_core::names::OrgCode;
use govhub_core::schema::TableSchema;
use tokio_postgres::Row;

const TYPE_COLUMNS: &str = "code, name, authority, holder_kind, schema, created_by, created_at";

fn type_row(r: &Row) -> StoreResult<LicenceType> {
    let kind: String = get(r, 3)?;
    let schema: String = get(r, 4)?;
    let schema_json: serde_json::Value =
        serde_json::from_str(&schema).map_err(|e| corrupt("licence schema", &schema, e))?;
    Ok(LicenceType {
        code: get(r, 0)?,
        name: get(r, 1)?,
        authority: org_code("licence type authority", &get::<String>(r, 2)?)?,
        holder_kind: HolderKind::parse(&kind).ok_or_else(|| corrupt("holder kind", &kind, "unknown"))?,
        schema: TableSchema::parse(&schema_json).map_err(|e| corrupt("licence schema", &schema, e.message))?,
        created_by: get(r, 5)?,
        created_at: get(r, 6)?,
    })
}

const KEY_COLUMNS: &str =
    "id, org, serial, certificate, seal, encrypted_key, created_at, retired_at, revoked_at, revoke_reason";

fn key_row(r: &Row) -> StoreResult<OrgKey> {
    Ok(OrgKey {
        id: get(r, 0)?,
        org: org_code("org key org", &get::<String>(r, 1)?)?,
        serial: get(r, 2)?,
        certificate: get(r, 3)?,
        seal: get(r, 4)?,
        encrypted_key: get(r, 5)?,
        created_at: get(r, 6)?,
        retired_at: get(r, 7)?,
        revoked_at: get(r, 8)?,
        revoke_reason: get(r, 9)?,
    })
}

const LICENCE_COLUMNS: &str = "id, seq, type_code, type_name, holder_code, holder_name, holder_kind, issuer, \
     issuer_name, valid_from, valid_until, fields, issued_at, issued_by, key_id, status, status_reason, status_at, \
     status_by, document, signature";

fn licence_row(r: &Row) -> StoreResult<Licence> {
    let id: String = get(r, 0)?;
    let kind: String = get(r, 6)?;
    let fields: String = get(r, 11)?;
    let status: String = get(r, 15)?;
    Ok(Licence {
        id: id.parse::<LicenceId>().map_err(|e| corrupt("licence id", &id, e))?,
        seq: get(r, 1)?,
        type_code: get(r, 2)?,
        type_name: get(r, 3)?,
        holder_code: get(r, 4)?,
        holder_name: get(r, 5)?,
        holder_kind: HolderKind::parse(&kind).ok_or_else(|| corrupt("holder kind", &kind, "unknown"))?,
        issuer: org_code("licence issuer", &get::<String>(r, 7)?)?,
        issuer_name: get(r, 8)?,
        valid_from: get(r, 9)?,
        valid_until: get(r, 10)?,
        fields: serde_json::from_str(&fields).map_err(|e| corrupt("licence fields", &fields, e))?,
        issued_at: get(r, 12)?,
        issued_by: get(r, 13)?,
        key_id: get(r, 14)?,
        status: LicenceStatus::parse(&status).ok_or_else(|| corrupt("licence status", &status, "unknown"))?,
        status_reason: get(r, 16)?,
        status_at: get(r, 17)?,
        status_by: get(r, 18)?,
        document: get(r, 19)?,
        signature: get(r, 20)?,
    })
}

async fn insert_one<C: GenericClient>(c: &C, l: &Licence) -> StoreResult<()> {
    let fields = serde_json::to_string(&l.fields).map_err(|e| corrupt("licence fields", "", e))?;
    c.execute(
        &format!(
            "INSERT INTO licences ({LICENCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, $15, $16, $17, $18, $19, $20, $21)"
        ),
        &[
            &l.id.as_str(),
            &l.seq,
            &l.type_code,
            &l.type_name,
            &l.holder_code,
            &l.holder_name,
            &l.holder_kind.as_str(),
            &l.issuer.as_str(),
            &l.issuer_name,
            &l.valid_from,
            &l.valid_until,
            &fields,
            &l.issued_at,
            &l.issued_by,
            &l.key_id,
            &l.status.as_str(),
            &l.status_reason,
            &l.status_at,
            &l.status_by,
            &l.document,
            &l.signature,
        ],
    )
    .await
    .map(|_| ())
    .map_err(conflict("licence"))
}

#[async_trait]
impl LicenceStore for PostgresStore {
    async fn insert_licence_type(&self, t: &LicenceType) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                &format!("INSERT INTO licence_types ({TYPE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
                &[
                    &t.code,
                    &t.name,
                    &t.authority.as_str(),
                    &t.holder_kind.as_str(),
                    &t.schema.to_json().to_string(),
                    &t.created_by,
                    &t.created_at,
                ],
            )
            .await
            .map(|_| ())
            .map_err(conflict("licence_type"))
    }

    async fn get_licence_type(&self, code: &str) -> StoreResult<Option<LicenceType>> {
        self.client()
            .await?
            .query_opt(&format!("SELECT {TYPE_COLUMNS} FROM licence_types WHERE code = $1"), &[&code])
            .await
            .map_err(db)?
            .map(|r| type_row(&r))
            .transpose()
    }

    async fn list_licence_types(&self) -> StoreResult<Vec<LicenceType>> {
        self.client()
            .await?
            .query(&format!("SELECT {TYPE_COLUMNS} FROM licence_types ORDER BY code"), &[])
            .await
            .map_err(db)?
            .iter()
            .map(type_row)
            .collect()
    }

    async fn insert_org_key(&self, key: &OrgKey) -> StoreResult<OrgKey> {
        let row = self
            .client()
            .await?
            .query_one(
                "INSERT INTO org_keys (org, serial, certificate, seal, encrypted_key, created_at, retired_at, \
                 revoked_at, revoke_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                &[
                    &key.org.as_str(),
                    &key.serial,
                    &key.certificate,
                    &key.seal,
                    &key.encrypted_key,
                    &key.created_at,
                    &key.retired_at,
                    &key.revoked_at,
                    &key.revoke_reason,
                ],
            )
            .await
            .map_err(conflict("org_key"))?;
        Ok(OrgKey { id: get(&row, 0)?, ..key.clone() })
    }

    async fn current_org_key(&self, org: &OrgCode) -> StoreResult<Option<OrgKey>> {
        self.client()
            .await?
            .query_opt(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM org_keys WHERE org = $1 AND retired_at IS NULL AND revoked_at IS NULL \
                     ORDER BY id DESC LIMIT 1"
                ),
                &[&org.as_str()],
            )
            .await
            .map_err(db)?
            .map(|r| key_row(&r))
            .transpose()
    }

    async fn get_org_key(&self, id: i64) -> StoreResult<Option<OrgKey>> {
        self.client()
            .await?
            .query_opt(&format!("SELECT {KEY_COLUMNS} FROM org_keys WHERE id = $1"), &[&id])
            .await
            .map_err(db)?
            .map(|r| key_row(&r))
            .transpose()
    }

    async fn list_org_keys(&self, org: &OrgCode) -> StoreResult<Vec<OrgKey>> {
        self.client()
            .await?
            .query(&format!("SELECT {KEY_COLUMNS} FROM org_keys WHERE org = $1 ORDER BY id DESC"), &[&org.as_str()])
            .await
            .map_err(db)?
            .iter()
            .map(key_row)
            .collect()
    }

    async fn retire_org_key(&self, id: i64, at: DateTime<Utc>) -> StoreResult<bool> {
        self.client()
            .await?
            .execute(
                "UPDATE org_keys SET retired_at = $2 WHERE id = $1 AND retired_at IS NULL AND revoked_at IS NULL",
                &[&id, &at],
            )
            .await
            .map(|n| n == 1)
            .map_err(db)
    }

    async fn revoke_org_key(&self, id: i64, at: DateTime<Utc>, reason: &str) -> StoreResult<bool> {
        self.client()
            .await?
            .execute(
                "UPDATE org_keys SET revoked_at = $2, revoke_reason = $3 WHERE id = $1 AND revoked_at IS NULL",
                &[&id, &at, &reason],
            )
            .await
            .map(|n| n == 1)
            .map_err(db)
    }

    async fn next_licence_seq(&self) -> StoreResult<i64> {
        let row = self.client().await?.query_one("SELECT nextval('licence_seq')", &[]).await.map_err(db)?;
        get(&row, 0)
    }

    async fn insert_licence(&self, l: &Licence) -> StoreResult<()> {
        let client = self.client().await?;
        insert_one(&client, l).await
    }

    async fn insert_licences(&self, ls: &[Licence]) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        for l in ls {
            insert_one(&tx, l).await?;
        }
        tx.commit().await.map_err(db)
    }

    async fn insert_sourced_licences(&self, ls: &[Licence], sources: &[String]) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        for (l, digest) in ls.iter().zip(sources) {
            insert_one(&tx, l).await?;
            tx.execute("INSERT INTO licence_sources (digest, licence_id) VALUES ($1, $2)", &[digest, &l.id.as_str()])
                .await
                .map_err(conflict("licence"))?;
        }
        tx.commit().await.map_err(db)
    }

    async fn licences_by_source(&self, digests: &[String]) -> StoreResult<Vec<(String, String)>> {
        let digests = digests.to_vec();
        let rows = self
            .client()
            .await?
            .query("SELECT digest, licence_id FROM licence_sources WHERE digest = ANY($1)", &[&digests])
            .await
            .map_err(db)?;
        rows.iter().map(|r| Ok((get(r, 0)?, get(r, 1)?))).collect()
    }

    async fn get_licence(&self, id: &str) -> StoreResult<Option<Licence>> {
        self.client()
            .await?
            .query_opt(&format!("SELECT {LICENCE_COLUMNS} FROM licences WHERE id = $1"), &[&id])
            .await
            .map_err(db)?
            .map(|r| licence_row(&r))
            .transpose()
    }

    async fn list_licences_by_holder(&self, holder: &str, issuer: Option<&OrgCode>) -> StoreResult<Vec<Licence>> {
        let issuer = issuer.map(|o| o.as_str().to_string());
        self.client()
            .await?
            .query(
                &format!(
                    "SELECT {LICENCE_COLUMNS} FROM licences WHERE holder_code = $1 \
                     AND ($2::TEXT IS NULL OR issuer = $2) ORDER BY issued_at DESC, seq DESC"
                ),
                &[&holder, &issuer],
            )
            .await
            .map_err(db)?
            .iter()
            .map(licence_row)
            .collect()
    }

    async fn set_licence_status(&self, id: &str, ch: &StatusChange) -> StoreResult<bool> {
        self.client()
            .await?
            .execute(
                "UPDATE licences SET status = $2, status_reason = $3, status_by = $4, status_at = $5 WHERE id = $1",
                &[&id, &ch.status.as_str(), &ch.reason, &ch.by, &ch.at],
            )
            .await
            .map(|n| n == 1)
            .map_err(db)
    }

    async fn licence_statuses(&self, from: i64, to: i64) -> StoreResult<Vec<(i64, LicenceStatus)>> {
        self.client()
            .await?
            .query(
                "SELECT seq, status FROM licences WHERE status <> 'active' AND seq >= $1 AND seq < $2 ORDER BY seq",
                &[&from, &to],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| {
                let s: String = get(r, 1)?;
                Ok((get(r, 0)?, LicenceStatus::parse(&s).ok_or_else(|| corrupt("status", &s, "unknown"))?))
            })
            .collect()
    }
}
