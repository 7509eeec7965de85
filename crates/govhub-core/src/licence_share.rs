//! Licences reused by other departments (电子证照共享): the licence library of each
//! licence type is a catalog resource, so apps ask for it, providers approve it, grants
//! lapse and are revoked, reads are masked and audited exactly like any shared dataset.
//!
//! * Each licence type has a catalog entry (dataset) `lic-<type code>`, provided by the
//!   type's authority, classed 有条件共享 (the authority's approver decides every
//!   request). Its fields are the licence's GB/T 36903 metadata and the type's own
//!   fields; the holder's code (and, for people, name) and identity numbers are
//!   sensitive. It is made with the type; it holds no rows itself (the licences stay in
//!   the licence library) and takes no deliveries.
//! * An app with a grant on it reads a holder's licences of that type, one licence, or
//!   (with a grant covering every field in clear text) the signed licence file, through
//!   `/api/v1/share/licences`. The grant is checked on every request; every read is in
//!   the audit log, with the holder as the subject, before the answer leaves.

use crate::authz::Principal;
use crate::cells::{cast_json, Cell};
use crate::error::{Code, Error, Result};
use crate::licence::{HolderKind, Licence, LicenceType};
use crate::licence_service::parse_licence_id;
use crate::model::*;
use crate::names::DatasetCode;
use crate::schema::TableSchema;
use crate::service::{store_err, Ctx, Hub};
use crate::share::Projection;
use crate::sharing::{china_date, Grant};
use crate::store::StoreError;
use serde_json::{json, Map, Value};

/// Dataset codes of licence types start with this (reserved: no other dataset may).
pub const LICENCE_DATASET_PREFIX: &str = "lic-";

/// The metadata fields every licence dataset starts with (name, title).
const META_FIELDS: &[&str] = &[
    "licence_id",
    "type_name",
    "number",
    "holder_name",
    "holder_code",
    "holder_code_type",
    "issuer_name",
    "issuer_code",
    "issued_at",
    "valid_from",
    "valid_until",
    "status",
];

/// The catalog code of a licence type's library.
pub fn licence_dataset_code(type_code: &str) -> String {
    format!("{LICENCE_DATASET_PREFIX}{}", type_code.trim().to_ascii_lowercase())
}

/// Whether a dataset code is a licence library's (reserved for licence types).
pub fn is_licence_dataset(code: &str) -> bool {
    code.get(..LICENCE_DATASET_PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(LICENCE_DATASET_PREFIX))
}

/// The error for anything a licence library does not do as a dataset.
pub fn licence_dataset_error(code: &str) -> Error {
    Error::new(
        Code::LicenceDataset,
        format!(
            "{code} is the catalog entry of a licence type: it holds no rows and takes no deliveries; \
             read licences with GET /api/v1/share/licences"
        ),
        format!("“{code}”是电子证照类型的共享目录，不存放数据、不接收交付，请通过 /api/v1/share/licences 读取证照"),
    )
}

/// The Table Schema of a licence type's catalog entry: the metadata, then the type's
/// fields. Fails when a type field reuses a metadata name.
pub fn licence_dataset_schema(t: &LicenceType) -> Result<TableSchema> {
    let person = t.holder_kind == HolderKind::Person;
    let (code_format, name_title) =
        if person { ("id-number", "持证人姓名") } else { ("uscc", "持证主体名称") };
    let mut fields = vec![
        json!({"name": "licence_id", "title": "证照标识", "constraints": {"required": true}}),
        json!({"name": "type_name", "title": "证照类型名称"}),
        json!({"name": "number", "title": "证照编号"}),
        json!({"name": "holder_name", "title": name_title, "sensitive": person}),
        json!({"name": "holder_code", "title": "持证主体代码", "format": code_format, "sensitive": person}),
        json!({"name": "holder_code_type", "title": "持证主体代码类型"}),
        json!({"name": "issuer_name", "title": "颁发机构"}),
        json!({"name": "issuer_code", "title": "颁发机构代码"}),
        json!({"name": "issued_at", "title": "颁证日期"}),
        json!({"name": "valid_from", "title": "有效期起始日期", "type": "date"}),
        json!({"name": "valid_until", "title": "有效期截止日期", "type": "date"}),
        json!({"name": "status", "title": "证照状态", "constraints": {"enum": ["active", "suspended", "revoked"]}}),
    ];
    for f in &t.schema.fields {
        if META_FIELDS.contains(&f.name.as_str()) {
            return Err(Error::invalid(
                Code::InvalidLicenceType,
                "schema",
                format!("field \"{}\" is a licence metadata name; rename it", f.name),
                format!("字段名“{}”与证照元数据重名，请改名", f.name),
            ));
        }
        let mut v = serde_json::to_value(f).map_err(Error::internal)?;
        // Identity numbers and mobiles are personal information: masked unless granted.
        if matches!(f.format_or_default(), "id-number" | "mobile") {
            if let Value::Object(m) = &mut v {
                m.insert("sensitive".into(), Value::Bool(true));
            }
        }
        // The dataset describes licences already issued: no constraint is checked again.
        if let Value::Object(m) = &mut v {
            m.remove("constraints");
        }
        fields.push(v);
    }
    TableSchema::parse(&json!({"fields": fields, "primaryKey": "licence_id"})).map_err(|mut e| {
        e.code = Code::InvalidLicenceType;
        e
    })
}

/// The catalog entry of a licence type.
pub fn licence_dataset(t: &LicenceType, now: chrono::DateTime<chrono::Utc>) -> Result<Dataset> {
    let code = DatasetCode::parse(&licence_dataset_code(&t.code))?;
    Ok(Dataset {
        table_name: Dataset::table_name_for(&code, 1),
        code,
        name: format!("电子证照：{}", t.name),
        provider: t.authority.clone(),
        summary: format!(
            "{}（证照类型代码 {}）的电子证照库：证照元数据及类型字段。经授权的应用通过 /api/v1/share/licences 按持证主体查询、读取证照及签章文件。",
            t.name, t.code
        ),
        category: Some("电子证照".into()),
        sharing_class: SharingClass::Conditional,
        sharing_condition: Some("经发证机关审批后，在授权范围与有效期内使用".into()),
        open_class: OpenClass::NotOpen,
        grade: Grade::General,
        update_cycle: UpdateCycle::Realtime,
        publish_date: Some(now.date_naive()),
        tags: vec!["电子证照".into(), t.name.clone()],
        schema: licence_dataset_schema(t)?,
        schema_version: 1,
        created_at: now,
        updated_at: now,
    })
}

/// A licence as a row of its type's catalog entry, in schema order.
fn licence_cells(d: &Dataset, l: &Licence, today: chrono::NaiveDate) -> Vec<Cell> {
    let text = |s: &str| Cell::Text(s.to_string());
    d.schema
        .fields
        .iter()
        .map(|f| match f.name.as_str() {
            "licence_id" => text(l.id.as_str()),
            "type_name" => text(&l.type_name),
            "number" => text(l.id.number()),
            "holder_name" => text(&l.holder_name),
            "holder_code" => text(&l.holder_code),
            "holder_code_type" => text(l.holder_kind.code_type()),
            "issuer_name" => text(&l.issuer_name),
            "issuer_code" => text(l.id.issuer_code()),
            "issued_at" => text(&crate::licence::rfc3339_seconds(l.issued_at)),
            "valid_from" => Cell::Date(l.valid_from),
            "valid_until" => Cell::Date(l.valid_until),
            "status" => text(l.status.as_str()),
            name => match l.fields.get(name) {
                Some(v) => cast_json(f, v, &[], today, Default::default()).value,
                None => Cell::Null,
            },
        })
        .collect()
}

impl Hub {
    /// Make the catalog entry of a licence type (kept when it exists). Called when the
    /// type is defined (its authorization and audit entry cover this) and at start-up
    /// for types defined before catalog entries existed.
    pub(crate) async fn ensure_licence_dataset(&self, t: &LicenceType) -> Result<()> {
        let d = licence_dataset(t, self.clock().now())?;
        match self.store().create_dataset(&d).await {
            Ok(()) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Give every licence type its catalog entry (start-up; idempotent). Returns how
    /// many types there are.
    pub async fn ensure_licence_catalog(&self) -> Result<usize> {
        let types = self.store().list_licence_types().await.map_err(store_err)?;
        for t in &types {
            let code = DatasetCode::parse(&licence_dataset_code(&t.code))?;
            if self.store().get_dataset(&code).await.map_err(store_err)?.is_none() {
                self.ensure_licence_dataset(t).await?;
            }
        }
        Ok(types.len())
    }

    /// A holder's licences of one type, for an app with a grant on that type: the
    /// granted fields, masked per the grant. Audited with the holder as the subject.
    pub async fn share_licences(
        &self,
        p: &Principal,
        holder: &str,
        type_code: &str,
        fields: Option<&str>,
        ctx: &Ctx,
    ) -> Result<Vec<Map<String, Value>>> {
        let holder = holder.trim().to_ascii_uppercase();
        let type_code = type_code.trim().to_ascii_uppercase();
        if holder.is_empty() || type_code.is_empty() {
            return Err(Error::invalid(
                Code::InvalidRequest,
                if holder.is_empty() { "holder" } else { "type" },
                "holder (ID number or USCC) and type (licence type code) are required",
                "请指定持证主体代码（holder）和证照类型代码（type）",
            ));
        }
        let code = licence_dataset_code(&type_code);
        let (d, g, _) = self.share_begin(p, &code, &code, ctx).await?;
        let proj = Projection::new(&d, &g, fields)?;
        let today = china_date(self.clock().now());
        let found: Vec<Licence> = self
            .store()
            .list_licences_by_holder(&holder, None)
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|l| l.type_code == type_code)
            .collect();
        let rows: Vec<Vec<Cell>> = found.iter().map(|l| licence_cells(&d, l, today)).collect();
        let read: Vec<&[Cell]> = rows.iter().map(Vec::as_slice).collect();
        let ids: Vec<&str> = found.iter().map(|l| l.id.as_str()).collect();
        let detail = json!({"holder": crate::delivery::mask(&holder), "licences": ids, "fields": proj.header(&d)});
        self.share_audited(p, &d, &g, detail, &read, ctx).await?;
        Ok(rows.iter().map(|r| proj.json(&d, r)).collect())
    }

    /// The licence (found by id) and its type's grant, checked; the denial audited.
    async fn shared_licence(&self, p: &Principal, id: &str, ctx: &Ctx) -> Result<(Licence, Dataset, Grant)> {
        let parsed = parse_licence_id(id)?;
        let code = licence_dataset_code(parsed.type_code());
        // The grant first: an app without one learns nothing, not even whether the
        // licence exists.
        let (d, g, _) = self.share_begin(p, &code, &code, ctx).await?;
        let l = self.licence_by_id(parsed.as_str()).await?;
        Ok((l, Dataset::clone(&d), Grant::clone(&g)))
    }

    /// One licence, for an app with a grant on its type.
    pub async fn share_licence(
        &self,
        p: &Principal,
        id: &str,
        fields: Option<&str>,
        ctx: &Ctx,
    ) -> Result<Map<String, Value>> {
        let (l, d, g) = self.shared_licence(p, id, ctx).await?;
        let proj = Projection::new(&d, &g, fields)?;
        let cells = licence_cells(&d, &l, china_date(self.clock().now()));
        let detail = json!({"licence": l.id.as_str(), "fields": proj.header(&d)});
        self.share_audited(p, &d, &g, detail, &[cells.as_slice()], ctx).await?;
        Ok(proj.json(&d, &cells))
    }

    /// The signed licence file, for an app whose grant covers the whole licence in
    /// clear text (the seal covers every byte, so nothing can be left out or masked).
    pub async fn share_licence_file(&self, p: &Principal, id: &str, ctx: &Ctx) -> Result<Licence> {
        let (l, d, g) = self.shared_licence(p, id, ctx).await?;
        let missing: Vec<&str> = d
            .schema
            .fields
            .iter()
            .filter(|f| !g.fields.contains(&f.name) || (f.sensitive && !g.clear_fields.contains(&f.name)))
            .map(|f| f.name.as_str())
            .collect();
        if !missing.is_empty() {
            self.share_denied(p, d.code.as_str(), "grant too narrow for the signed file", ctx).await?;
            return Err(Error::new(
                Code::GrantTooNarrow,
                format!(
                    "the signed licence file holds every field in clear text; this app's grant lacks (or masks) {}",
                    missing.join(", ")
                ),
                format!("签章证照文件包含全部字段明文，本应用的授权缺少（或脱敏）：{}", missing.join("、")),
            ));
        }
        let cells = licence_cells(&d, &l, china_date(self.clock().now()));
        let names: Vec<&str> = d.schema.fields.iter().map(|f| f.name.as_str()).collect();
        let detail = json!({"licence": l.id.as_str(), "file": true, "fields": names});
        self.share_audited(p, &d, &g, detail, &[cells.as_slice()], ctx).await?;
        Ok(l)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_are_reserved_and_derived() {
        assert_eq!(licence_dataset_code("91320400MB1234567X001"), "lic-91320400mb1234567x001");
        assert!(is_licence_dataset("LIC-abc"));
        assert!(is_licence_dataset("lic-x"));
        assert!(!is_licence_dataset("licence"));
        assert!(!is_licence_dataset("gaj-hjrk"));
        assert!(DatasetCode::parse(&licence_dataset_code("91320400MB1234567X001")).is_ok());
    }
}
