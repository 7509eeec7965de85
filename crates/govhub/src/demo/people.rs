//! Synthetic people, enterprises and sole traders of Changzhou.
//!
//! Everything is drawn from a [`DemoRng`] seeded with a `u64`: the same seed gives the
//! same sequence on every platform (`ChaCha8` and integer-only sampling; no `usize` or
//! floating-point draws). Identifiers are valid — ID numbers pass GB 11643's check,
//! USCCs both GB 32100 checks, mobiles the mainland format — but made up: names, dates,
//! sequence numbers and addresses are combined at random.

use super::names::{
    Industry, BRAND_FIRST, BRAND_SECOND, COMPOUND_SURNAMES, ENTERPRISE_KINDS, FEMALE_CHARS, GIVEN_NAMES, INDUSTRIES,
    MALE_CHARS, MINORITIES, MOBILE_PREFIXES, SURNAMES, TRADES,
};
use super::places::{District, COMPOUNDS, COMPOUND_STEMS, DISTRICTS, PARKS};
use chrono::{Datelike, NaiveDate};
use govhub_core::standards::{IdNumber, Mobile, Uscc, USCC_ALPHABET};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;

/// The demo's random source: `ChaCha8` seeded from a `u64`.
#[derive(Debug, Clone)]
pub struct DemoRng(ChaCha8Rng);

impl DemoRng {
    pub fn new(seed: u64) -> DemoRng {
        DemoRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Uniform in `0..n` (`n > 0`), drawn as `u32` so it is the same on every platform.
    pub(super) fn below(&mut self, n: u32) -> u32 {
        self.0.gen_range(0..n.max(1))
    }

    /// Uniform in `lo..=hi`.
    pub(super) fn between(&mut self, lo: u32, hi: u32) -> u32 {
        self.0.gen_range(lo..=hi.max(lo))
    }

    /// True with probability `percent` / 100.
    pub(super) fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent
    }

    /// A uniformly chosen element of a non-empty table.
    pub(super) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        let i = self.below(len_u32(items.len()));
        items[i as usize]
    }

    /// An element chosen with probability proportional to `weight(element)`.
    pub(super) fn weighted<'a, T>(&mut self, items: &'a [T], weight: impl Fn(&T) -> u32) -> &'a T {
        let total: u32 = items.iter().map(&weight).sum();
        let mut roll = self.below(total);
        for item in items {
            let w = weight(item);
            if roll < w {
                return item;
            }
            roll -= w;
        }
        &items[items.len() - 1]
    }

    /// `n` characters from the USCC alphabet.
    pub(super) fn uscc_chars(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(self.pick(&USCC_ALPHABET[..]))).collect()
    }

    pub(super) fn digits(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(self.pick(&b"0123456789"[..]))).collect()
    }
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Sex as encoded in the ID number's sequence digit (odd = male).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gender {
    Male,
    Female,
}

impl Gender {
    /// `男` / `女`.
    pub fn label_zh(self) -> &'static str {
        match self {
            Gender::Male => "男",
            Gender::Female => "女",
        }
    }
    /// GB/T 2261.1 code: `1` male, `2` female.
    pub fn code(self) -> &'static str {
        match self {
            Gender::Male => "1",
            Gender::Female => "2",
        }
    }
}

/// A synthetic resident with household registration (户籍) in Changzhou.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// GB 11643 number; the county part is where it was first issued, which for people
    /// born before the 2015 mergers may be 320405 (戚墅堰区) or 320482 (金坛市).
    pub id_number: IdNumber,
    pub name: String,
    pub gender: Gender,
    pub birth_date: NaiveDate,
    /// `汉族` for most.
    pub ethnicity: &'static str,
    /// Current district of household registration.
    pub district: &'static District,
    /// Household address, e.g. `常州市天宁区青洋北路128号3幢402室`.
    pub address: String,
    pub mobile: Mobile,
    /// 未婚 / 已婚 / 离婚 / 丧偶 (as of the end of 2025).
    pub marital_status: &'static str,
}

impl Person {
    /// Age in whole years on `on`.
    pub fn age_on(&self, on: NaiveDate) -> i32 {
        let mut age = on.year() - self.birth_date.year();
        if (on.month(), on.day()) < (self.birth_date.month(), self.birth_date.day()) {
            age -= 1;
        }
        age
    }
}

/// A synthetic enterprise registered by the market regulator (USCC `91…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enterprise {
    pub uscc: Uscc,
    /// e.g. `常州市天宁区恒达机械制造有限公司`.
    pub name: String,
    /// 企业类型, e.g. `有限责任公司（自然人投资或控股）`.
    pub kind: &'static str,
    pub legal_representative: String,
    /// Registered capital in units of 10,000 yuan (万元).
    pub registered_capital: u32,
    pub established: NaiveDate,
    pub district: &'static District,
    pub industry: &'static Industry,
    pub address: String,
    /// 存续 / 在业 / 迁出 / 吊销 / 注销.
    pub status: &'static str,
}

/// A synthetic sole trader (个体工商户, USCC `92…`) and the person who runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoleTrader {
    pub uscc: Uscc,
    /// 字号名称, e.g. `常州市钟楼区老陈面馆`.
    pub name: String,
    pub operator: Person,
    /// Capital in units of 10,000 yuan (万元).
    pub capital: u32,
    pub registered: NaiveDate,
    pub district: &'static District,
    pub trade: &'static Industry,
    pub address: String,
    /// 个人经营 / 家庭经营.
    pub form: &'static str,
    /// 存续 / 注销.
    pub status: &'static str,
}

/// Birth years by decade with the rough shape of Changzhou's population pyramid.
const BIRTH_DECADES: &[(i32, i32, u32)] = &[
    (1930, 1939, 2),
    (1940, 1949, 5),
    (1950, 1959, 12),
    (1960, 1969, 17),
    (1970, 1979, 15),
    (1980, 1989, 16),
    (1990, 1999, 14),
    (2000, 2009, 9),
    (2010, 2019, 9),
    (2020, 2024, 3),
];

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

/// A day drawn uniformly from `from..=to`.
fn day_between(rng: &mut DemoRng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = (to - from).num_days().max(0);
    let offset = rng.below(u32::try_from(span + 1).unwrap_or(1));
    from + chrono::Duration::days(i64::from(offset))
}

fn birth_date(rng: &mut DemoRng) -> Option<NaiveDate> {
    let &(lo, hi, _) = rng.weighted(BIRTH_DECADES, |d| d.2);
    Some(day_between(rng, date(lo, 1, 1)?, date(hi, 12, 31)?))
}

fn surname(rng: &mut DemoRng) -> &'static str {
    if rng.chance(1) {
        rng.pick(COMPOUND_SURNAMES)
    } else {
        rng.weighted(SURNAMES, |s| s.1).0
    }
}

fn given_name(rng: &mut DemoRng, gender: Gender, born: i32) -> String {
    if rng.chance(55) {
        let era = GIVEN_NAMES.iter().find(|e| born < e.0).unwrap_or(&GIVEN_NAMES[GIVEN_NAMES.len() - 1]);
        let pool = match gender {
            Gender::Male => era.1,
            Gender::Female => era.2,
        };
        return rng.pick(pool).to_string();
    }
    let chars = match gender {
        Gender::Male => MALE_CHARS,
        Gender::Female => FEMALE_CHARS,
    };
    let first = rng.pick(chars);
    // Single-character given names were common from the 1960s to the 1990s.
    let single = if (1960..2000).contains(&born) { 30 } else { 12 };
    if rng.chance(single) {
        return first.to_string();
    }
    let mut second = rng.pick(chars);
    if second == first && rng.chance(70) {
        second = rng.pick(chars);
    }
    format!("{first}{second}")
}

fn full_name(rng: &mut DemoRng, gender: Gender, born: i32) -> String {
    let s = surname(rng);
    format!("{s}{}", given_name(rng, gender, born))
}

fn mobile(rng: &mut DemoRng) -> Option<Mobile> {
    let prefix = rng.pick(MOBILE_PREFIXES);
    Mobile::parse(&format!("{prefix}{}", rng.digits(8))).ok()
}

fn pick_district(rng: &mut DemoRng) -> &'static District {
    rng.weighted(DISTRICTS, |d| d.weight)
}

/// A village name such as `蒋家村`.
fn village(rng: &mut DemoRng) -> String {
    let s = rng.weighted(SURNAMES, |s| s.1).0;
    format!("{s}{}", rng.pick(&["家村", "巷村", "庄村", "塘村", "桥村", "家湾村"]))
}

/// An urban or rural household address in `d`.
fn home_address(rng: &mut DemoRng, d: &District) -> String {
    if !d.towns.is_empty() && rng.chance(25) {
        let town = rng.pick(d.towns);
        let village = village(rng);
        return format!("{}{town}{village}{}号", d.address_prefix, rng.between(1, 168));
    }
    let street = rng.pick(d.streets);
    let number = rng.between(1, 399);
    if rng.chance(35) {
        let compound = format!("{}{}", rng.pick(COMPOUND_STEMS), rng.pick(COMPOUNDS));
        return format!(
            "{}{street}{number}号{compound}{}幢{}单元{}{:02}室",
            d.address_prefix,
            rng.between(1, 40),
            rng.between(1, 4),
            rng.between(1, 18),
            rng.between(1, 4)
        );
    }
    format!(
        "{}{street}{number}号{}幢{}{:02}室",
        d.address_prefix,
        rng.between(1, 30),
        rng.between(1, 12),
        rng.between(1, 4)
    )
}

fn marital_status(rng: &mut DemoRng, birth: NaiveDate) -> &'static str {
    let age = 2025 - birth.year();
    match age {
        ..=19 => "未婚",
        20..=24 => {
            if rng.chance(20) {
                "已婚"
            } else {
                "未婚"
            }
        }
        25..=34 => match rng.below(100) {
            0..=54 => "已婚",
            55..=59 => "离婚",
            _ => "未婚",
        },
        35..=69 => match rng.below(100) {
            0..=83 => "已婚",
            84..=91 => "离婚",
            92..=95 => "丧偶",
            _ => "未婚",
        },
        _ => match rng.below(100) {
            0..=59 => "已婚",
            60..=63 => "离婚",
            64..=97 => "丧偶",
            _ => "未婚",
        },
    }
}

/// The identity part of a synthetic person: what the ID number is made of.
#[derive(Debug, Clone)]
pub(super) struct Identity {
    pub district: &'static District,
    pub birth: NaiveDate,
    pub gender: Gender,
    /// County code in the ID number (may be a historical one).
    pub county: &'static str,
    pub seq: u16,
}

/// Draw the identity of a person (the first draws of [`person`]).
pub(super) fn identity(rng: &mut DemoRng, district: Option<&'static District>) -> Option<Identity> {
    let district = district.unwrap_or_else(|| pick_district(rng));
    let birth = birth_date(rng)?;
    let gender = if rng.chance(50) { Gender::Male } else { Gender::Female };
    let county = match district.historical {
        Some((old, share)) if birth.year() < 2000 && rng.chance(share) => old,
        _ => district.code,
    };
    // Odd sequence numbers are men's, even ones women's.
    let seq = u16::try_from(rng.below(500) * 2 + u32::from(gender == Gender::Male)).ok()?;
    Some(Identity { district, birth, gender, county, seq })
}

/// The rest of a person with the given identity (the remaining draws of [`person`]).
pub(super) fn person_with(rng: &mut DemoRng, id: &Identity) -> Option<Person> {
    let id_number = IdNumber::compose(id.county, id.birth, id.seq)?;
    let name = full_name(rng, id.gender, id.birth.year());
    let ethnicity = if rng.chance(98) { "汉族" } else { rng.pick(MINORITIES) };
    let address = home_address(rng, id.district);
    let mobile = mobile(rng)?;
    let marital_status = marital_status(rng, id.birth);
    Some(Person {
        id_number,
        name,
        gender: id.gender,
        birth_date: id.birth,
        ethnicity,
        district: id.district,
        address,
        mobile,
        marital_status,
    })
}

/// Everything here fails only for malformed table entries (a county code that is not
/// six digits, a date that does not exist), which the tests rule out.
fn try_person(rng: &mut DemoRng, district: Option<&'static District>) -> Option<Person> {
    let id = identity(rng, district)?;
    person_with(rng, &id)
}

/// Repeat `f` until it yields a value. Every generator here succeeds on its first
/// attempt unless a table is malformed (tested), so this loop body runs once.
fn first_some<T>(rng: &mut DemoRng, mut f: impl FnMut(&mut DemoRng) -> Option<T>) -> T {
    loop {
        if let Some(v) = f(rng) {
            return v;
        }
    }
}

/// A synthetic resident of Changzhou.
pub fn person(rng: &mut DemoRng) -> Person {
    first_some(rng, |r| try_person(r, None))
}

/// A synthetic resident of the given district.
pub fn person_in(rng: &mut DemoRng, district: &'static District) -> Person {
    first_some(rng, |r| try_person(r, Some(district)))
}

fn brand(rng: &mut DemoRng) -> String {
    format!("{}{}", rng.pick(BRAND_FIRST), rng.pick(BRAND_SECOND))
}

/// Organisation-code body (positions 9–16): `MA` + six characters for registrations
/// since the 2015 reform, eight digits for older ones re-coded from the GB 11714 code.
fn org_body(rng: &mut DemoRng, registered: NaiveDate) -> String {
    if registered.year() >= 2016 {
        format!("MA{}", rng.uscc_chars(6))
    } else {
        rng.digits(8)
    }
}

pub(super) fn business_address(rng: &mut DemoRng, d: &District) -> String {
    let parks: Vec<&str> = PARKS.iter().filter(|(c, _)| *c == d.code).map(|(_, p)| *p).collect();
    if !parks.is_empty() && rng.chance(30) {
        let park = rng.pick(&parks);
        return format!("{}{park}{}{}号", d.address_prefix, rng.pick(d.streets), rng.between(1, 999));
    }
    if !d.towns.is_empty() && rng.chance(25) {
        return format!("{}{}{}{}号", d.address_prefix, rng.pick(d.towns), village(rng), rng.between(1, 300));
    }
    format!("{}{}{}号", d.address_prefix, rng.pick(d.streets), rng.between(1, 999))
}

fn capital(rng: &mut DemoRng) -> u32 {
    const BUCKETS: &[(u32, u32)] =
        &[(10, 8), (50, 18), (100, 22), (200, 14), (300, 8), (500, 12), (1000, 9), (2000, 4), (5000, 3), (10000, 2)];
    rng.weighted(BUCKETS, |b| b.1).0
}

fn try_enterprise(rng: &mut DemoRng) -> Option<Enterprise> {
    let district = pick_district(rng);
    let &(kind, suffix, _) = rng.weighted(ENTERPRISE_KINDS, |k| k.2);
    let partnership = kind == "有限合伙企业";
    let industry = if partnership {
        INDUSTRIES.iter().find(|i| i.label == "企业管理咨询")?
    } else {
        rng.weighted(INDUSTRIES, |i| i.weight)
    };
    let established = day_between(rng, date(1995, 1, 1)?, date(2025, 12, 31)?);
    let uscc = Uscc::compose('9', '1', district.code, &org_body(rng, established))?;
    let suffix = match kind {
        "个人独资企业" if industry.section == "C" => "厂",
        "个人独资企业" if industry.section == "F" => "商行",
        "个人独资企业" => "经营部",
        _ => suffix,
    };
    let place = match rng.below(10) {
        0..=5 => district.address_prefix.to_string(),
        6..=8 => "常州".to_string(),
        _ => "江苏".to_string(),
    };
    let name = format!("{place}{}{}{suffix}", brand(rng), industry.label);
    let gender = if rng.chance(72) { Gender::Male } else { Gender::Female };
    let rep_born = i32::try_from(rng.between(1955, 1998)).ok()?;
    let legal_representative = full_name(rng, gender, rep_born);
    let mut registered_capital = capital(rng);
    if kind.starts_with("股份") {
        registered_capital = registered_capital.max(1000);
    }
    let address = business_address(rng, district);
    let status = match rng.below(100) {
        0..=79 => "存续",
        80..=89 => "在业",
        90..=91 => "迁出",
        92..=94 => "吊销",
        _ => "注销",
    };
    Some(Enterprise {
        uscc,
        name,
        kind,
        legal_representative,
        registered_capital,
        established,
        district,
        industry,
        address,
        status,
    })
}

/// A synthetic enterprise (USCC registration department 9, type 1).
pub fn enterprise(rng: &mut DemoRng) -> Enterprise {
    first_some(rng, try_enterprise)
}

fn try_sole_trader(rng: &mut DemoRng) -> Option<SoleTrader> {
    let mut operator = person(rng);
    // Operators are adults of working age: redraw the person until one is.
    while !(18..=75).contains(&operator.age_on(date(2025, 12, 31)?)) {
        operator = person(rng);
    }
    sole_trader_run_by(rng, operator)
}

/// A sole trader run by `operator` (an adult of working age).
pub(super) fn sole_trader_run_by(rng: &mut DemoRng, operator: Person) -> Option<SoleTrader> {
    let district = operator.district;
    let trade = rng.weighted(TRADES, |t| t.weight);
    let latest = date(2025, 12, 31)?;
    let adult = operator.birth_date.checked_add_months(chrono::Months::new(18 * 12))?;
    let registered = day_between(rng, adult.max(date(2000, 1, 1)?).min(latest), latest);
    let uscc = Uscc::compose('9', '2', district.code, &org_body(rng, registered))?;
    let surname: String = operator.name.chars().take(1).collect();
    let given_last: String = operator.name.chars().last().map(String::from).unwrap_or_default();
    let trade_name = match rng.below(4) {
        0 => format!("老{surname}"),
        1 => format!("{surname}记"),
        2 => format!("阿{given_last}"),
        _ => brand(rng),
    };
    let name = format!("{}{trade_name}{}", district.address_prefix, trade.label);
    let address = business_address(rng, district);
    let capital = rng.pick(&[1, 2, 3, 5, 5, 10, 10, 20, 30, 50]);
    let form = if rng.chance(80) { "个人经营" } else { "家庭经营" };
    let status = if rng.chance(88) { "存续" } else { "注销" };
    Some(SoleTrader { uscc, name, operator, capital, registered, district, trade, address, form, status })
}

/// A synthetic sole trader (USCC registration department 9, type 2) with its operator.
pub fn sole_trader(rng: &mut DemoRng) -> SoleTrader {
    first_some(rng, try_sole_trader)
}

/// The demo citizen behind the `citizen` account: 王晓梅, a woman born 1991-04-18 with
/// household registration in 天宁区 (ID number `320402199104182866`).
pub fn demo_citizen() -> Person {
    let mut rng = DemoRng::new(DEMO_CITIZEN_SEED);
    first_some(&mut rng, |r| {
        let district = DISTRICTS.iter().find(|d| d.code == "320402")?;
        let mut p = try_person(r, Some(district))?;
        p.birth_date = date(1991, 4, 18)?;
        p.gender = Gender::Female;
        p.id_number = IdNumber::compose("320402", p.birth_date, 286)?;
        p.name = DEMO_CITIZEN_NAME.to_string();
        p.ethnicity = "汉族";
        p.marital_status = "已婚";
        Some(p)
    })
}

/// The demo enterprise behind the `enterprise` account.
pub fn demo_enterprise() -> Enterprise {
    let mut rng = DemoRng::new(DEMO_ENTERPRISE_SEED);
    first_some(&mut rng, |r| {
        let district = DISTRICTS.iter().find(|d| d.code == "320402")?;
        let mut e = try_enterprise(r)?;
        e.district = district;
        e.industry = INDUSTRIES.iter().find(|i| i.label == "机械制造")?;
        e.kind = "有限责任公司（自然人投资或控股）";
        e.name = DEMO_ENTERPRISE_NAME.to_string();
        e.established = date(2017, 6, 12)?;
        e.uscc = Uscc::compose('9', '1', "320402", "MA1N8K3D")?;
        e.registered_capital = 500;
        e.status = "存续";
        e.address = business_address(r, district);
        Some(e)
    })
}

pub const DEMO_CITIZEN_NAME: &str = "王晓梅";
pub const DEMO_ENTERPRISE_NAME: &str = "常州市天宁区恒达机械制造有限公司";
const DEMO_CITIZEN_SEED: u64 = 0x5a4d_0001;
const DEMO_ENTERPRISE_SEED: u64 = 0x5a4d_0002;

/// `n` people with distinct ID numbers, deterministic for `seed`.
pub fn people(seed: u64, n: usize) -> Vec<Person> {
    let mut rng = DemoRng::new(seed);
    distinct(n, || person(&mut rng), |p| p.id_number.as_str().to_string())
}

/// `n` enterprises with distinct USCCs, deterministic for `seed`.
pub fn enterprises(seed: u64, n: usize) -> Vec<Enterprise> {
    let mut rng = DemoRng::new(seed);
    distinct(n, || enterprise(&mut rng), |e| e.uscc.as_str().to_string())
}

/// `n` sole traders with distinct USCCs, deterministic for `seed`.
pub fn sole_traders(seed: u64, n: usize) -> Vec<SoleTrader> {
    let mut rng = DemoRng::new(seed);
    distinct(n, || sole_trader(&mut rng), |t| t.uscc.as_str().to_string())
}

fn distinct<T>(n: usize, mut next: impl FnMut() -> T, key: impl Fn(&T) -> String) -> Vec<T> {
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let v = next();
        if seen.insert(key(&v)) {
            out.push(v);
        }
    }
    out
}
