//! What templates see: domain records turned into plain, language-resolved views.

use super::i18n::Lang;
use super::session::{urlencode, Viewer};
use chrono::{DateTime, Utc};
use govhub_core::model::{
    AuditEvent, ColumnInfo, Dataset, Grade, OpenClass, Org, OrgKind, Role, SchemaVersion, SharingClass, UpdateCycle,
};
use govhub_core::schema::{Constraints, Field};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// China Standard Time: times are shown as the clerks read their clocks.
pub fn local_time(t: DateTime<Utc>) -> String {
    (t + chrono::Duration::hours(8)).naive_utc().format("%Y-%m-%d %H:%M").to_string()
}

pub fn role_label(r: Role, lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => r.label_zh(),
        Lang::En => r.label_en(),
    }
}
pub fn sharing_label(c: SharingClass, lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => c.as_str(),
        Lang::En => c.label_en(),
    }
}
pub fn open_label(c: OpenClass, lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => c.as_str(),
        Lang::En => c.label_en(),
    }
}
pub fn grade_label(g: Grade, lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => g.as_str(),
        Lang::En => g.label_en(),
    }
}
pub fn cycle_label(c: UpdateCycle, lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => c.label_zh(),
        Lang::En => c.label_en(),
    }
}
pub fn kind_label(k: OrgKind, lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => k.label_zh(),
        Lang::En => k.label_en(),
    }
}

/// Badge colour: green for the open end of each scale, amber in the middle, red for
/// the closed (or most protected) end.
pub fn sharing_tone(c: SharingClass) -> &'static str {
    match c {
        SharingClass::Unconditional => "green",
        SharingClass::Conditional => "amber",
        SharingClass::NotShared => "red",
    }
}
pub fn open_tone(c: OpenClass) -> &'static str {
    match c {
        OpenClass::Unconditional => "green",
        OpenClass::Conditional => "amber",
        OpenClass::NotOpen => "red",
    }
}
pub fn grade_tone(g: Grade) -> &'static str {
    match g {
        Grade::Core => "red",
        Grade::Important => "amber",
        Grade::General => "grey",
    }
}

/// A coloured label.
#[derive(Debug, Clone, Serialize)]
pub struct Badge {
    pub label: &'static str,
    pub tone: &'static str,
}

/// The signed-in user, for the header.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub username: String,
    pub display_name: String,
    pub role: &'static str,
    pub role_label: &'static str,
    pub org_code: Option<String>,
    pub org_name: Option<String>,
    pub csrf: String,
    pub is_gov: bool,
    pub is_admin: bool,
}

impl UserView {
    pub fn new(v: &Viewer, lang: Lang) -> UserView {
        let p = &v.principal;
        UserView {
            username: p.username.clone(),
            display_name: p.display_name.clone(),
            role: p.role.as_str(),
            role_label: role_label(p.role, lang),
            org_code: p.org.as_ref().map(ToString::to_string),
            org_name: v.org_name.clone(),
            csrf: v.csrf.clone(),
            is_gov: p.role.is_government(),
            is_admin: p.role == Role::PlatformAdmin,
        }
    }
}

/// An option of a `<select>`.
#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

pub fn choices<T: Copy>(
    all: &[T],
    wire: impl Fn(T) -> &'static str,
    label: impl Fn(T) -> &'static str,
    current: Option<&str>,
) -> Vec<Choice> {
    all.iter()
        .map(|v| Choice {
            value: wire(*v).to_string(),
            label: label(*v).to_string(),
            selected: current == Some(wire(*v)),
        })
        .collect()
}

/// One row of the catalog table.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetRow {
    pub code: String,
    pub name: String,
    pub provider: String,
    pub provider_name: String,
    pub sharing: Badge,
    pub open: Badge,
    pub grade: Badge,
    pub update_cycle: &'static str,
    pub publish_date: String,
    pub tags: Vec<String>,
}

impl DatasetRow {
    pub fn new(d: &Dataset, org_names: &HashMap<String, String>, lang: Lang) -> DatasetRow {
        let provider = d.provider.to_string();
        DatasetRow {
            code: d.code.to_string(),
            name: d.name.clone(),
            provider_name: org_names.get(&provider).cloned().unwrap_or_else(|| provider.clone()),
            provider,
            sharing: Badge { label: sharing_label(d.sharing_class, lang), tone: sharing_tone(d.sharing_class) },
            open: Badge { label: open_label(d.open_class, lang), tone: open_tone(d.open_class) },
            grade: Badge { label: grade_label(d.grade, lang), tone: grade_tone(d.grade) },
            update_cycle: cycle_label(d.update_cycle, lang),
            publish_date: d.publish_date.map(|d| d.to_string()).unwrap_or_default(),
            tags: d.tags.clone(),
        }
    }
}

/// Full metadata of one dataset.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetDetail {
    #[serde(flatten)]
    pub row: DatasetRow,
    pub summary: String,
    pub category: Option<String>,
    pub sharing_condition: Option<String>,
    pub schema_version: i32,
    pub table_name: String,
    pub created_at: String,
    pub updated_at: String,
    pub fields: Vec<FieldRow>,
    pub primary_key: Vec<String>,
    pub foreign_keys: Vec<ForeignKeyRow>,
    pub unique_keys: Vec<String>,
    pub schema_json: String,
}

/// One field of a schema.
#[derive(Debug, Clone, Serialize)]
pub struct FieldRow {
    pub name: String,
    pub title: String,
    pub description: String,
    pub field_type: &'static str,
    pub format: String,
    pub constraints: Vec<String>,
    pub sensitive: bool,
    pub primary_key: bool,
    /// Where this field points, when it is part of a foreign key.
    pub references: Vec<FkTarget>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FkTarget {
    /// Dataset code (this dataset's own for a self-reference).
    pub dataset: String,
    pub field: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ForeignKeyRow {
    pub fields: String,
    pub dataset: String,
    pub reference_fields: String,
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The constraints of a field as short human-readable phrases.
pub fn constraint_phrases(c: &Constraints, lang: Lang) -> Vec<String> {
    let zh = lang == Lang::Zh;
    let mut out = Vec::new();
    if c.required {
        out.push(if zh { "必填" } else { "required" }.to_string());
    }
    if c.unique {
        out.push(if zh { "唯一" } else { "unique" }.to_string());
    }
    match (c.min_length, c.max_length) {
        (Some(a), Some(b)) if a == b => out.push(if zh { format!("长度 = {a}") } else { format!("length = {a}") }),
        (a, b) => {
            if let Some(a) = a {
                out.push(if zh { format!("长度 ≥ {a}") } else { format!("length ≥ {a}") });
            }
            if let Some(b) = b {
                out.push(if zh { format!("长度 ≤ {b}") } else { format!("length ≤ {b}") });
            }
        }
    }
    if let Some(v) = &c.minimum {
        out.push(format!("≥ {}", show(v)));
    }
    if let Some(v) = &c.exclusive_minimum {
        out.push(format!("> {}", show(v)));
    }
    if let Some(v) = &c.maximum {
        out.push(format!("≤ {}", show(v)));
    }
    if let Some(v) = &c.exclusive_maximum {
        out.push(format!("< {}", show(v)));
    }
    if let Some(p) = &c.pattern {
        out.push(if zh { format!("正则 {p}") } else { format!("pattern {p}") });
    }
    if let Some(values) = &c.enum_values {
        let list: Vec<String> = values.iter().map(show).collect();
        out.push(if zh { format!("取值：{}", list.join("、")) } else { format!("one of: {}", list.join(", ")) });
    }
    if c.json_schema.is_some() {
        out.push("JSON Schema".to_string());
    }
    out
}

fn field_row(f: &Field, d: &Dataset, lang: Lang) -> FieldRow {
    let schema = &d.schema;
    let references = schema
        .foreign_keys
        .iter()
        .filter_map(|fk| {
            let i = fk.fields.iter().position(|x| x == &f.name)?;
            let dataset =
                if fk.reference.resource.is_empty() { d.code.to_string() } else { fk.reference.resource.clone() };
            Some(FkTarget { dataset, field: fk.reference.fields.get(i).cloned().unwrap_or_default() })
        })
        .collect();
    FieldRow {
        name: f.name.clone(),
        title: f.title.clone().unwrap_or_default(),
        description: f.description.clone().unwrap_or_default(),
        field_type: f.field_type.as_str(),
        format: f.format_or_default().to_string(),
        constraints: constraint_phrases(&f.constraints, lang),
        sensitive: f.sensitive,
        primary_key: schema.primary_key.contains(&f.name),
        references,
    }
}

impl DatasetDetail {
    pub fn new(d: &Dataset, org_names: &HashMap<String, String>, lang: Lang) -> DatasetDetail {
        let schema = &d.schema;
        DatasetDetail {
            row: DatasetRow::new(d, org_names, lang),
            summary: d.summary.clone(),
            category: d.category.clone(),
            sharing_condition: d.sharing_condition.clone(),
            schema_version: d.schema_version,
            table_name: d.table_name.clone(),
            created_at: local_time(d.created_at),
            updated_at: local_time(d.updated_at),
            fields: schema.fields.iter().map(|f| field_row(f, d, lang)).collect(),
            primary_key: schema.primary_key.clone(),
            foreign_keys: schema
                .foreign_keys
                .iter()
                .map(|fk| ForeignKeyRow {
                    fields: fk.fields.join(", "),
                    dataset: if fk.reference.resource.is_empty() {
                        d.code.to_string()
                    } else {
                        fk.reference.resource.clone()
                    },
                    reference_fields: fk.reference.fields.join(", "),
                })
                .collect(),
            unique_keys: schema.unique_keys.iter().map(|k| k.join(", ")).collect(),
            schema_json: serde_json::to_string_pretty(&schema.to_json()).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionRow {
    pub version: i32,
    pub table_name: String,
    pub fields: usize,
    pub created_at: String,
    pub current: bool,
}

impl VersionRow {
    pub fn new(v: &SchemaVersion, current: i32) -> VersionRow {
        VersionRow {
            version: v.version,
            table_name: v.table_name.clone(),
            fields: v.schema.fields.len(),
            created_at: local_time(v.created_at),
            current: v.version == current,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnRow {
    pub name: String,
    pub sql_type: String,
    pub not_null: bool,
}

impl From<&ColumnInfo> for ColumnRow {
    fn from(c: &ColumnInfo) -> Self {
        ColumnRow { name: c.name.clone(), sql_type: c.sql_type.clone(), not_null: c.not_null }
    }
}

/// An organisation, for lists and the detail page.
#[derive(Debug, Clone, Serialize)]
pub struct OrgRow {
    pub code: String,
    pub name: String,
    pub kind: &'static str,
    pub kind_label: &'static str,
    pub parent: Option<String>,
    pub admin_code: Option<String>,
    pub uscc: Option<String>,
    pub depth: usize,
    pub created_at: String,
}

impl OrgRow {
    pub fn new(o: &Org, depth: usize, lang: Lang) -> OrgRow {
        OrgRow {
            code: o.code.to_string(),
            name: o.name.clone(),
            kind: o.kind.as_str(),
            kind_label: kind_label(o.kind, lang),
            parent: o.parent.as_ref().map(ToString::to_string),
            admin_code: o.admin_code.as_ref().map(ToString::to_string),
            uscc: o.uscc.as_ref().map(ToString::to_string),
            depth,
            created_at: local_time(o.created_at),
        }
    }
}

fn kind_order(k: OrgKind) -> u8 {
    match k {
        OrgKind::City => 0,
        OrgKind::Department => 1,
        OrgKind::District => 2,
        OrgKind::Other => 3,
    }
}

/// The organisation tree flattened depth-first: the city first, then under each
/// organisation its departments, then its districts, each group by code. Orgs whose
/// parent is missing are roots; a cycle cannot hide anyone (each org appears once).
pub fn org_tree(orgs: &[Org], lang: Lang) -> Vec<OrgRow> {
    let known: HashMap<&str, &Org> = orgs.iter().map(|o| (o.code.as_str(), o)).collect();
    let mut children: BTreeMap<Option<&str>, Vec<&Org>> = BTreeMap::new();
    for o in orgs {
        let parent = o.parent.as_ref().map(|p| p.as_str()).filter(|p| known.contains_key(p) && *p != o.code.as_str());
        children.entry(parent).or_default().push(o);
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| (kind_order(a.kind), a.code.as_str()).cmp(&(kind_order(b.kind), b.code.as_str())));
    }
    let mut out = Vec::with_capacity(orgs.len());
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<(&Org, usize)> =
        children.get(&None).map(|l| l.iter().rev().map(|o| (*o, 0)).collect()).unwrap_or_default();
    loop {
        while let Some((o, depth)) = stack.pop() {
            if !seen.insert(o.code.as_str()) {
                continue;
            }
            out.push(OrgRow::new(o, depth, lang));
            if let Some(kids) = children.get(&Some(o.code.as_str())) {
                stack.extend(kids.iter().rev().map(|k| (*k, depth + 1)));
            }
        }
        // Organisations only reachable through a parent cycle: show them as roots.
        match orgs.iter().find(|o| !seen.contains(o.code.as_str())) {
            Some(o) => stack.push((o, 0)),
            None => break,
        }
    }
    out
}

/// One audit event.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub actor_role: String,
    pub actor_org: String,
    pub on_behalf_of: String,
    pub action: String,
    pub target: String,
    pub outcome: &'static str,
    pub tone: &'static str,
    pub detail: String,
    pub request_id: String,
    /// The entry's hash, shortened for display, and in full.
    pub hash: String,
    pub hash_full: String,
    /// Covered by a signed checkpoint (set by the page).
    pub sealed: bool,
}

impl AuditRow {
    pub fn new(e: &AuditEvent, lang: Lang) -> AuditRow {
        use govhub_core::model::Outcome;
        let ev = &e.event;
        let tone = match ev.outcome {
            Outcome::Allowed | Outcome::Succeeded => "green",
            Outcome::Denied => "red",
            Outcome::Failed => "amber",
        };
        AuditRow {
            seq: e.seq,
            at: local_time(ev.at),
            actor: ev.actor.clone(),
            actor_role: ev.actor_role.map(|r| role_label(r, lang)).unwrap_or_default().to_string(),
            actor_org: ev.actor_org.as_ref().map(ToString::to_string).unwrap_or_default(),
            on_behalf_of: ev.on_behalf_of.as_ref().map(ToString::to_string).unwrap_or_default(),
            action: ev.action.clone(),
            target: ev.target.clone(),
            outcome: ev.outcome.as_str(),
            tone,
            detail: if ev.detail.is_null() { String::new() } else { ev.detail.to_string() },
            request_id: ev.request_id.clone().unwrap_or_default(),
            hash: e.hash.chars().take(12).collect(),
            hash_full: e.hash.clone(),
            sealed: false,
        }
    }
}

/// One read of records about the signed-in citizen or enterprise.
#[derive(Debug, Clone, Serialize)]
pub struct AccessRow {
    pub at: String,
    pub org: String,
    pub app: String,
    pub purpose: String,
    pub target: String,
    pub rows: String,
}

impl AccessRow {
    pub fn new(a: &govhub_core::audit::SubjectAccess, org_names: &std::collections::HashMap<String, String>) -> Self {
        let org = a.on_behalf_of.as_ref().or(a.org.as_ref()).map(ToString::to_string).unwrap_or_default();
        AccessRow {
            at: local_time(a.at),
            org: org_names.get(&org).cloned().unwrap_or(org),
            app: a.app.clone().unwrap_or_default(),
            purpose: a.purpose.clone().unwrap_or_default(),
            target: a.target.clone(),
            rows: a.rows.map(|r| r.to_string()).unwrap_or_default(),
        }
    }
}

/// A query string from pairs, skipping empty values.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> =
        pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", urlencode(v))).collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}
