//! Rows for the demo datasets, generated lazily as CSV for the real delivery path.
//!
//! Every stream is a [`Read`] over a generator that writes about a thousand rows at a
//! time into a reused buffer, so memory stays flat whatever the city size. Records are
//! index-addressable: person `i` and enterprise `k` are drawn from their own seeded
//! [`DemoRng`], so a dependent dataset (社保参保, 企业用电, …) re-derives exactly the
//! people and enterprises it refers to instead of holding them in memory. The only
//! state that grows is a fixed-size bitmap of issued ID numbers (about 35 MB, touched
//! lazily), which keeps 户籍人口's keys distinct.
//!
//! 户籍人口 and 企业登记 carry deliberate bad rows (about 0.1 %, at least six), each
//! failing validation in one intended way, so the quarantine has something to show.

use super::datasets::{DBJZ, GTGSH, HJRK, JZSGXK, NSXYDJ, PWXK, QYDJ, QYYD, SBCB, TZXM, XZQH, YLJG};
use super::names::Industry;
use super::names::{BRAND_FIRST, BRAND_SECOND};
use super::people::{
    business_address, demo_citizen, demo_enterprise, enterprise, identity, person, person_with, sole_trader_run_by,
    DemoRng, Enterprise, Identity, Person,
};
use super::places::{admin_divisions, District, DISTRICTS};
use chrono::{Datelike, Months, NaiveDate};
use govhub_core::standards::{id_number_check_char, Uscc, USCC_ALPHABET};
use std::collections::HashSet;
use std::io::{self, Read};

/// One demo delivery: a dataset code and its CSV (UTF-8, header = field names), produced lazily.
pub struct DemoDelivery {
    pub dataset: &'static str,
    /// Data rows in the CSV (bad rows included, header excluded).
    pub rows: u64,
    /// Rows that fail validation on purpose (they end in the quarantine).
    pub bad_rows: u64,
    pub csv: Box<dyn Read + Send>,
}

impl std::fmt::Debug for DemoDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoDelivery")
            .field("dataset", &self.dataset)
            .field("rows", &self.rows)
            .field("bad_rows", &self.bad_rows)
            .finish_non_exhaustive()
    }
}

/// Enterprises per resident: the proposal's 200,000 per 4 million.
const ENTERPRISES_PER_MILLE: usize = 50;
/// Sole traders per resident: about 380,000 per 4 million.
const SOLE_TRADERS_PER_MILLE: u32 = 95;
/// Rows written per refill of a stream's buffer.
const BATCH_ROWS: usize = 1_000;
/// Lower-case `x` ID numbers in 户籍人口 (accepted with a warning).
const LOWER_X_ROWS: u8 = 2;

/// The day the demo data describes (monthly figures run to the month before).
fn as_of() -> NaiveDate {
    ymd(2026, 10, 31)
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

/// Number of enterprises for a city of `people` (the demo enterprise included).
fn enterprise_count(people: usize) -> usize {
    (people * ENTERPRISES_PER_MILLE / 1000).max(1)
}

/// Deliberate bad rows for a dataset of `good` rows: 0.1 %, at least six.
fn bad_count(good: usize) -> usize {
    ((good + 500) / 1000).max(6)
}

/// All demo deliveries for a city of `people` residents, deterministic for `seed`, in an order
/// where referenced datasets come first.
///
/// The row counts of the dependent datasets are found by walking the people and
/// enterprises once without formatting anything (about a second per million residents
/// in a release build); the CSV itself is produced only when read.
pub fn deliveries(seed: u64, people: usize) -> Vec<DemoDelivery> {
    let n = people.max(1);
    let n_ent = enterprise_count(n);
    let c = count(seed, n, n_ent);
    let hjrk_bad = bad_count(n);
    let qydj_bad = bad_count(n_ent);
    let divisions = admin_divisions().len();
    vec![
        delivery(XZQH, divisions, 0, XZQH_HEADER, XzqhGen { next: 0 }),
        delivery(HJRK, n + hjrk_bad, hjrk_bad, HJRK_HEADER, HjrkGen::new(seed, n, hjrk_bad, LOWER_X_ROWS)),
        delivery(QYDJ, n_ent + qydj_bad, qydj_bad, QYDJ_HEADER, QydjGen::new(seed, n_ent, qydj_bad)),
        delivery(GTGSH, c.gtgsh, 0, GTGSH_HEADER, PeopleGen::new(seed, n, n_ent, Kind::Gtgsh)),
        delivery(SBCB, c.sbcb, 0, SBCB_HEADER, PeopleGen::new(seed, n, n_ent, Kind::Sbcb)),
        delivery(DBJZ, c.dbjz, 0, DBJZ_HEADER, PeopleGen::new(seed, n, n_ent, Kind::Dbjz)),
        delivery(YLJG, yljg_count(n), 0, YLJG_HEADER, YljgGen { seed, people: n, next: 0 }),
        delivery(QYYD, c.qyyd, 0, QYYD_HEADER, EntGen::new(seed, n_ent, Kind::Qyyd)),
        delivery(PWXK, c.pwxk, 0, PWXK_HEADER, EntGen::new(seed, n_ent, Kind::Pwxk)),
        delivery(NSXYDJ, c.nsxydj, 0, NSXYDJ_HEADER, EntGen::new(seed, n_ent, Kind::Nsxydj)),
        delivery(JZSGXK, c.jzsgxk, 0, JZSGXK_HEADER, EntGen::new(seed, n_ent, Kind::Jzsgxk)),
        delivery(TZXM, c.tzxm, 0, TZXM_HEADER, EntGen::new(seed, n_ent, Kind::Tzxm)),
    ]
}

/// The first `n` enterprises of the enterprise register (`scjgj-qydj`) as delivered for
/// `seed` in a city of `people` residents (fewer when the register is smaller): the
/// demo enterprise first. The demo's licences go to these.
pub fn registered_enterprises(seed: u64, people: usize, n: usize) -> Vec<Enterprise> {
    (0..n.min(enterprise_count(people.max(1))) as u64).map(|k| ent(seed, k)).collect()
}

/// The first `n` residents of the population register (`gaj-hjrk`) as delivered for
/// `seed` in a city of `people` residents: the demo citizen first.
pub fn registered_people(seed: u64, people: usize, n: usize) -> Vec<Person> {
    let mut pop = Population::new(seed, n.min(people.max(1)));
    let mut out = Vec::with_capacity(n);
    while let Some(m) = pop.next() {
        if let Some(p) = m.person() {
            out.push(p);
        }
    }
    out
}

/// A population CSV of `n` rows for benchmarks: same shape as the 户籍人口 dataset (`gaj-hjrk`),
/// every row valid, random key order, deterministic.
pub fn population_csv(seed: u64, n: usize) -> Box<dyn Read + Send> {
    Box::new(CsvStream::new(HJRK_HEADER, HjrkGen::new(seed, n, 0, 0)))
}

fn delivery<G: Gen + 'static>(
    dataset: &'static str,
    rows: usize,
    bad: usize,
    header: &'static [&'static str],
    gen: G,
) -> DemoDelivery {
    DemoDelivery { dataset, rows: rows as u64, bad_rows: bad as u64, csv: Box::new(CsvStream::new(header, gen)) }
}

// ---------------------------------------------------------------------------
// Streaming CSV
// ---------------------------------------------------------------------------

/// Where generators write rows.
struct Out {
    w: csv::Writer<Vec<u8>>,
    /// Rows written since the last refill.
    batch: usize,
}

impl Out {
    fn row<I, T>(&mut self, fields: I) -> io::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.w.write_record(fields).map_err(io::Error::other)?;
        self.batch += 1;
        Ok(())
    }
}

/// A row generator: each step writes zero or more rows; `false` once exhausted.
trait Gen: Send {
    fn step(&mut self, out: &mut Out) -> io::Result<bool>;
}

/// `Read` over a generator: refills a reused buffer a batch of rows at a time.
struct CsvStream<G> {
    header: &'static [&'static str],
    gen: Option<G>,
    out: Out,
    buf: Vec<u8>,
    pos: usize,
    started: bool,
}

impl<G: Gen> CsvStream<G> {
    fn new(header: &'static [&'static str], gen: G) -> CsvStream<G> {
        CsvStream {
            header,
            gen: Some(gen),
            out: Out { w: csv::Writer::from_writer(Vec::new()), batch: 0 },
            buf: Vec::new(),
            pos: 0,
            started: false,
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        // The consumed buffer becomes the writer's target: its capacity is reused.
        let mut target = std::mem::take(&mut self.buf);
        target.clear();
        self.out.w = csv::Writer::from_writer(target);
        self.pos = 0;
        self.out.batch = 0;
        if !self.started {
            self.out.w.write_record(self.header).map_err(io::Error::other)?;
            self.started = true;
        }
        while self.out.batch < BATCH_ROWS {
            let Some(gen) = self.gen.as_mut() else { break };
            if !gen.step(&mut self.out)? {
                // Drop the generator (and its ID bitmap) as soon as it is done.
                self.gen = None;
            }
        }
        let w = std::mem::replace(&mut self.out.w, csv::Writer::from_writer(Vec::new()));
        self.buf = w.into_inner().map_err(|e| e.into_error())?;
        Ok(())
    }
}

impl<G: Gen> Read for CsvStream<G> {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        if dst.is_empty() {
            return Ok(0);
        }
        while self.pos >= self.buf.len() {
            if self.started && self.gen.is_none() {
                return Ok(0);
            }
            self.refill()?;
        }
        let n = dst.len().min(self.buf.len() - self.pos);
        dst[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

// ---------------------------------------------------------------------------
// Seeds, dates, identifiers
// ---------------------------------------------------------------------------

const SALT_PERSON: u64 = 1;
const SALT_LIFE: u64 = 2;
const SALT_UPDATED: u64 = 3;
const SALT_BAD: u64 = 4;
const SALT_ENT: u64 = 5;
const SALT_APPROVED: u64 = 6;
const SALT_GTGSH: u64 = 7;
const SALT_SBCB: u64 = 8;
const SALT_DBJZ: u64 = 9;
const SALT_QYYD: u64 = 10;
const SALT_PWXK: u64 = 11;
const SALT_NSXYDJ: u64 = 12;
const SALT_JZSGXK: u64 = 13;
const SALT_TZXM: u64 = 14;
const SALT_BAD_ENT: u64 = 15;
const SALT_YLJG: u64 = 16;

/// SplitMix64 over seed, salt and index: the seed of one record's own generator.
fn mix(seed: u64, salt: u64, i: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn rng_for(seed: u64, salt: u64, i: u64) -> DemoRng {
    DemoRng::new(mix(seed, salt, i))
}

fn day_in(r: &mut DemoRng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = u32::try_from((to - from).num_days().max(0)).unwrap_or(0);
    from + chrono::Duration::days(i64::from(r.between(0, span)))
}

fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A local (UTC+8) timestamp on a day within `from..=to`, during office hours.
fn datetime_in(r: &mut DemoRng, from: NaiveDate, to: NaiveDate) -> String {
    let d = day_in(r, from, to);
    let (h, m, s) = (r.between(8, 18), r.below(60), r.below(60));
    format!("{}T{h:02}:{m:02}:{s:02}+08:00", date_text(d))
}

fn age_on(birth: NaiveDate, on: NaiveDate) -> i32 {
    let mut age = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

fn add_years(d: NaiveDate, years: u32) -> NaiveDate {
    d.checked_add_months(Months::new(years * 12)).unwrap_or(d)
}

/// Multiplicative scrambles of an index: bijections on `0..10^8` and `0..31^6`, so
/// distinct indexes give distinct organisation-code bodies without remembering them.
const DIGITS_SPACE: u64 = 100_000_000;
const DIGITS_MUL: u64 = 73_856_093;
const DIGITS_ADD: u64 = 19_349_663;
const MA_SPACE: u64 = 887_503_681;
const MA_MUL: u64 = 83_492_791;
const MA_ADD: u64 = 40_503_779;

fn digits_body(k: u64) -> String {
    format!("{:08}", (k % DIGITS_SPACE * DIGITS_MUL + DIGITS_ADD) % DIGITS_SPACE)
}

fn ma_body(k: u64) -> String {
    let mut v = (k % MA_SPACE * MA_MUL + MA_ADD) % MA_SPACE;
    let mut chars = [b'0'; 6];
    for c in chars.iter_mut().rev() {
        *c = USCC_ALPHABET[(v % 31) as usize];
        v /= 31;
    }
    format!("MA{}", String::from_utf8_lossy(&chars))
}

/// A USCC whose organisation-code body is unique for `k` (within one `dept`/`kind`):
/// `MA…` for registrations since 2016, eight digits for older ones.
fn unique_uscc(dept: char, kind: char, county: &str, registered: NaiveDate, k: u64) -> Option<Uscc> {
    let body = if registered.year() >= 2016 { ma_body(k) } else { digits_body(k) };
    // The demo enterprise's code is fixed; an index that would reuse it takes the
    // digit form instead (digit bodies never clash with `MA` ones).
    let body = if dept == '9' && kind == '1' && county == "320402" && body == DEMO_ENTERPRISE_BODY {
        digits_body(k)
    } else {
        body
    };
    Uscc::compose(dept, kind, county, &body)
}

const DEMO_ENTERPRISE_BODY: &str = "MA1N8K3D";

// ---------------------------------------------------------------------------
// The population: person `i` drawn from its own generator, ID numbers kept distinct
// ---------------------------------------------------------------------------

/// County codes that appear in ID numbers (current and historical).
const ID_COUNTIES: [&str; 8] = ["320402", "320404", "320411", "320412", "320413", "320481", "320405", "320482"];
/// Birth days covered by the bitmap, from 1930-01-01.
const ID_DAYS: usize = 36_600;

/// Issued ID numbers: one bit per (county, birth day, sequence number), allocated on
/// first use (zeroed pages are only committed once touched).
#[derive(Default)]
struct IdSet {
    bits: Vec<u64>,
    other: HashSet<String>,
}

impl IdSet {
    fn insert(&mut self, id: &Identity) -> bool {
        let day = usize::try_from((id.birth - ymd(1930, 1, 1)).num_days()).ok().filter(|d| *d < ID_DAYS);
        let county = ID_COUNTIES.iter().position(|c| *c == id.county);
        let (Some(day), Some(county)) = (day, county) else {
            return self.other.insert(format!("{}{}{}", id.county, id.birth, id.seq));
        };
        if self.bits.is_empty() {
            self.bits = vec![0; ID_COUNTIES.len() * ID_DAYS * 1000 / 64 + 1];
        }
        let slot = (county * ID_DAYS + day) * 1000 + usize::from(id.seq);
        let mask = 1u64 << (slot % 64);
        match self.bits.get_mut(slot / 64) {
            Some(w) if *w & mask != 0 => false,
            Some(w) => {
                *w |= mask;
                true
            }
            None => self.other.insert(format!("{}{}{}", id.county, id.birth, id.seq)),
        }
    }
}

/// Index of the demo citizen (she is always the first resident).
const DEMO_INDEX: u64 = u64::MAX;

/// One resident: identity plus the generator positioned to draw the rest.
struct Member {
    index: u64,
    ident: Identity,
    rng: DemoRng,
}

impl Member {
    fn is_demo(&self) -> bool {
        self.index == DEMO_INDEX
    }

    fn person(&self) -> Option<Person> {
        if self.is_demo() {
            return Some(demo_citizen());
        }
        person_with(&mut self.rng.clone(), &self.ident)
    }

    fn age(&self) -> i32 {
        age_on(self.ident.birth, as_of())
    }
}

/// The `n` residents of the city, in delivery order: the demo citizen, then people
/// drawn from indexes 0, 1, 2, … skipping any whose ID number was already issued.
struct Population {
    seed: u64,
    n: usize,
    next_index: u64,
    emitted: usize,
    seen: IdSet,
}

impl Population {
    fn new(seed: u64, n: usize) -> Population {
        Population { seed, n, next_index: 0, emitted: 0, seen: IdSet::default() }
    }

    fn demo() -> Option<Member> {
        let p = demo_citizen();
        let district = DISTRICTS.iter().find(|d| d.code == "320402")?;
        let seq = p.id_number.as_str().get(14..17)?.parse().ok()?;
        let ident = Identity { district, birth: p.birth_date, gender: p.gender, county: "320402", seq };
        Some(Member { index: DEMO_INDEX, ident, rng: DemoRng::new(0) })
    }

    fn next(&mut self) -> Option<Member> {
        if self.emitted >= self.n {
            return None;
        }
        if self.emitted == 0 {
            if let Some(m) = Self::demo() {
                self.seen.insert(&m.ident);
                self.emitted = 1;
                return Some(m);
            }
        }
        loop {
            let index = self.next_index;
            self.next_index += 1;
            let mut rng = rng_for(self.seed, SALT_PERSON, index);
            let Some(ident) = identity(&mut rng, None) else { continue };
            if self.seen.insert(&ident) {
                self.emitted += 1;
                return Some(Member { index, ident, rng });
            }
        }
    }
}

/// 人口状态: a few emigrated, some of the elderly have died.
fn population_status(seed: u64, m: &Member) -> &'static str {
    if m.is_demo() {
        return "正常";
    }
    let x = rng_for(seed, SALT_LIFE, m.index).below(1000);
    if m.age() >= 70 && x < 25 {
        "死亡"
    } else if x >= 986 {
        "迁出"
    } else {
        "正常"
    }
}

// ---------------------------------------------------------------------------
// Enterprises: enterprise `k` drawn from its own generator, USCC unique by index
// ---------------------------------------------------------------------------

fn ent(seed: u64, k: u64) -> Enterprise {
    if k == 0 {
        return demo_enterprise();
    }
    let mut e = enterprise(&mut rng_for(seed, SALT_ENT, k));
    if let Some(u) = unique_uscc('9', '1', e.district.code, e.established, k) {
        e.uscc = u;
    }
    e
}

fn active(e: &Enterprise) -> bool {
    matches!(e.status, "存续" | "在业")
}

// ---------------------------------------------------------------------------
// Row plans: what a resident or an enterprise contributes to each dataset. The same
// functions drive the counting pass and the CSV, so the counts are exact.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gtgsh,
    Sbcb,
    Dbjz,
    Qyyd,
    Pwxk,
    Nsxydj,
    Jzsgxk,
    Tzxm,
}

/// Sole traders: working-age residents, about 9.5 % of the population overall.
fn gtgsh_plan(seed: u64, m: &Member, status: &str) -> Option<DemoRng> {
    if m.is_demo() || status != "正常" || !(18..=75).contains(&age_on(m.ident.birth, ymd(2025, 12, 31))) {
        return None;
    }
    let mut r = rng_for(seed, SALT_GTGSH, m.index);
    // 95 ‰ of everyone ≈ 123 ‰ of the 77 % who are 18–75.
    (r.below(1000) < SOLE_TRADERS_PER_MILLE * 100 / 77).then_some(r)
}

const SB_EMPLOYEE: [&str; 4] = ["企业职工基本养老保险", "职工基本医疗保险", "失业保险", "工伤保险"];
const SB_RESIDENT: [&str; 2] = ["城乡居民基本养老保险", "城乡居民基本医疗保险"];

struct SbPlan {
    kinds: Vec<&'static str>,
    employer: Option<u64>,
    rng: DemoRng,
}

/// Social insurance: residents aged 18–59; employees of an enterprise carry the four
/// employee schemes, others the residents' schemes, a few none.
fn sbcb_plan(seed: u64, m: &Member, status: &str, n_ent: usize) -> Option<SbPlan> {
    let mut r = rng_for(seed, SALT_SBCB, m.index);
    if m.is_demo() {
        return Some(SbPlan { kinds: SB_EMPLOYEE.to_vec(), employer: Some(0), rng: r });
    }
    if status != "正常" || !(18..=59).contains(&m.age()) {
        return None;
    }
    let x = r.below(100);
    if x < 72 {
        let employer = u64::from(r.below(u32::try_from(n_ent).unwrap_or(u32::MAX)));
        let mut kinds = vec![SB_EMPLOYEE[0], SB_EMPLOYEE[1]];
        if r.chance(90) {
            kinds.push(SB_EMPLOYEE[2]);
        }
        if r.chance(85) {
            kinds.push(SB_EMPLOYEE[3]);
        }
        Some(SbPlan { kinds, employer: Some(employer), rng: r })
    } else if x < 93 {
        Some(SbPlan { kinds: SB_RESIDENT.to_vec(), employer: None, rng: r })
    } else {
        None
    }
}

/// Minimum living allowance: about 0.5 % of adults.
fn dbjz_plan(seed: u64, m: &Member, status: &str) -> Option<DemoRng> {
    if m.is_demo() || status != "正常" || m.age() < 18 {
        return None;
    }
    let mut r = rng_for(seed, SALT_DBJZ, m.index);
    (r.below(1000) < 5).then_some(r)
}

/// Electricity: most active enterprises have a supply account.
fn qyyd_plan(seed: u64, k: u64, e: &Enterprise) -> Option<DemoRng> {
    let mut r = rng_for(seed, SALT_QYYD, k);
    (active(e) && r.below(100) < 85).then_some(r)
}

const QYYD_MONTHS: [&str; 6] = ["2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"];

/// Pollutant discharge permits: about 30 % of active manufacturers.
fn pwxk_plan(seed: u64, k: u64, e: &Enterprise) -> Option<DemoRng> {
    let mut r = rng_for(seed, SALT_PWXK, k);
    (active(e) && e.industry.section == "C" && r.below(100) < 30).then_some(r)
}

/// Tax credit ratings for 2023–2025, each year after the one the enterprise was set up.
fn nsxydj_years(e: &Enterprise) -> impl Iterator<Item = i32> {
    let (ok, established) = (active(e), e.established.year());
    (2023..=2025).filter(move |y| ok && established < *y)
}

/// Construction permits: about 6 % of active manufacturers and technology firms build
/// (the demo enterprise among them), with a builder
/// (an active 建筑业 enterprise) found among the enterprises.
fn jzsgxk_plan(seed: u64, k: u64, e: &Enterprise, n_ent: usize) -> Option<(u64, DemoRng)> {
    let mut r = rng_for(seed, SALT_JZSGXK, k);
    let builds = k == 0 || (matches!(e.industry.section, "C" | "I" | "M") && r.below(1000) < 60);
    if !(active(e) && builds) {
        return None;
    }
    let bound = u32::try_from(n_ent).unwrap_or(u32::MAX);
    for _ in 0..64 {
        let b = u64::from(r.below(bound));
        let builder = ent(seed, b);
        if b != k && active(&builder) && builder.industry.section == "E" {
            return Some((b, r));
        }
    }
    None
}

/// Investment project filings: about 5 % of active enterprises in industry, IT,
/// technical services, logistics and agriculture, and the demo enterprise.
fn tzxm_plan(seed: u64, k: u64, e: &Enterprise) -> Option<DemoRng> {
    let mut r = rng_for(seed, SALT_TZXM, k);
    let files = k == 0 || (matches!(e.industry.section, "C" | "I" | "M" | "G" | "A") && r.below(1000) < 50);
    (active(e) && files).then_some(r)
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    gtgsh: usize,
    sbcb: usize,
    dbjz: usize,
    qyyd: usize,
    pwxk: usize,
    nsxydj: usize,
    jzsgxk: usize,
    tzxm: usize,
}

/// Row counts of the dependent datasets: one pass over residents and enterprises.
fn count(seed: u64, n: usize, n_ent: usize) -> Counts {
    let mut c = Counts::default();
    let mut pop = Population::new(seed, n);
    while let Some(m) = pop.next() {
        let status = population_status(seed, &m);
        c.gtgsh += usize::from(gtgsh_plan(seed, &m, status).is_some());
        c.sbcb += sbcb_plan(seed, &m, status, n_ent).map_or(0, |p| p.kinds.len());
        c.dbjz += usize::from(dbjz_plan(seed, &m, status).is_some());
    }
    for k in 0..n_ent as u64 {
        let e = ent(seed, k);
        c.qyyd += qyyd_plan(seed, k, &e).map_or(0, |_| QYYD_MONTHS.len());
        c.pwxk += usize::from(pwxk_plan(seed, k, &e).is_some());
        c.nsxydj += nsxydj_years(&e).count();
        c.jzsgxk += usize::from(jzsgxk_plan(seed, k, &e, n_ent).is_some());
        c.tzxm += usize::from(tzxm_plan(seed, k, &e).is_some());
    }
    c
}

// ---------------------------------------------------------------------------
// 行政区划
// ---------------------------------------------------------------------------

const XZQH_HEADER: &[&str] = &["code", "name", "level", "parent_code", "status", "abolished_year", "successor_code"];

struct XzqhGen {
    next: usize,
}

impl Gen for XzqhGen {
    fn step(&mut self, out: &mut Out) -> io::Result<bool> {
        // Current divisions first, so an abolished code's successor is already there.
        let mut all = admin_divisions();
        all.sort_by_key(|d| d.abolished.is_some());
        let Some(d) = all.get(self.next) else { return Ok(false) };
        self.next += 1;
        out.row([
            d.code.to_string(),
            d.name.to_string(),
            d.level.to_string(),
            d.parent.unwrap_or_default().to_string(),
            d.status.to_string(),
            d.abolished.map(|y| y.to_string()).unwrap_or_default(),
            d.successor.unwrap_or_default().to_string(),
        ])?;
        Ok(true)
    }
}

// ---------------------------------------------------------------------------
// Deliberate bad rows
// ---------------------------------------------------------------------------

/// Where the bad rows of a file go: the first `total - 1` spread evenly between the
/// good rows, the last (a repeated primary key) at the very end.
struct BadPlan {
    total: usize,
    next: usize,
    good: usize,
}

impl BadPlan {
    fn new(good: usize, total: usize) -> BadPlan {
        BadPlan { total, next: 0, good }
    }
    /// A spread-out bad row is due before good row number `written`.
    fn due(&self, written: usize) -> bool {
        self.next + 1 < self.total && (self.next + 1) * self.good / self.total <= written
    }
    /// Bad rows still to write after the last good row (the duplicate included).
    fn left(&self) -> bool {
        self.next < self.total
    }
    fn is_duplicate(&self) -> bool {
        self.next + 1 == self.total
    }
}

// ---------------------------------------------------------------------------
// 户籍人口
// ---------------------------------------------------------------------------

const HJRK_HEADER: &[&str] = &["sfzh", "xm", "xb", "mz", "csrq", "hjdz_qh", "hjdz", "sjhm", "hyzk", "rkzt", "gxsj"];

/// The kinds of bad 户籍人口 rows, in turn (the duplicate key comes last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BadPerson {
    /// Wrong ID check character: `id-number-check`.
    CheckChar,
    /// Born on 30 February: `id-number-date` on the ID number, `type-error` on 出生日期.
    February30,
    /// No name: `constraint-error` (required).
    NoName,
    /// A mobile number starting 12: `mobile`.
    BadMobile,
    /// 婚姻状况 `再婚`, outside the enum: `constraint-error`.
    BadEnum,
}

const BAD_PEOPLE: [BadPerson; 5] =
    [BadPerson::CheckChar, BadPerson::February30, BadPerson::NoName, BadPerson::BadMobile, BadPerson::BadEnum];

fn hjrk_row(p: &Person, status: &str, updated: String) -> [String; 11] {
    // Young children have no mobile number of their own.
    let mobile = if age_on(p.birth_date, as_of()) < 12 { String::new() } else { p.mobile.as_str().to_string() };
    [
        p.id_number.as_str().to_string(),
        p.name.clone(),
        p.gender.label_zh().to_string(),
        p.ethnicity.to_string(),
        date_text(p.birth_date),
        p.district.code.to_string(),
        p.address.clone(),
        mobile,
        p.marital_status.to_string(),
        status.to_string(),
        updated,
    ]
}

struct HjrkGen {
    seed: u64,
    pop: Population,
    written: usize,
    bad: BadPlan,
    bad_rng: DemoRng,
    lower_x: u8,
    /// The good row whose key the last bad row repeats, and its copy.
    dup_source: usize,
    dup: Option<[String; 11]>,
}

impl HjrkGen {
    fn new(seed: u64, n: usize, bad: usize, lower_x: u8) -> HjrkGen {
        HjrkGen {
            seed,
            pop: Population::new(seed, n),
            written: 0,
            bad: BadPlan::new(n, bad),
            bad_rng: rng_for(seed, SALT_BAD, 0),
            lower_x,
            dup_source: n / 3,
            dup: None,
        }
    }

    fn bad_row(&mut self, out: &mut Out) -> io::Result<()> {
        let j = self.bad.next;
        self.bad.next += 1;
        if self.bad.next == self.bad.total {
            if let Some(mut row) = self.dup.take() {
                // The same person delivered again later with a newer timestamp.
                row[10] = "2026-10-30T16:20:00+08:00".to_string();
                return out.row(row);
            }
        }
        let p = person(&mut self.bad_rng);
        let mut row = hjrk_row(&p, "正常", datetime_in(&mut self.bad_rng, ymd(2026, 1, 1), as_of()));
        let id = p.id_number.as_str();
        match BAD_PEOPLE[j % BAD_PEOPLE.len()] {
            BadPerson::CheckChar => {
                let last = id.chars().last().unwrap_or('0');
                let wrong = if last == '7' { '3' } else { '7' };
                row[0] = format!("{}{wrong}", id.get(..17).unwrap_or_default());
            }
            BadPerson::February30 => {
                let year = p.birth_date.year();
                let body =
                    format!("{}{year}0230{}", id.get(..6).unwrap_or_default(), id.get(14..17).unwrap_or_default());
                row[0] = format!("{body}{}", id_number_check_char(&body));
                row[4] = format!("{year}-02-30");
            }
            BadPerson::NoName => row[1] = String::new(),
            BadPerson::BadMobile => row[7] = format!("12{}", p.mobile.as_str().get(2..).unwrap_or_default()),
            BadPerson::BadEnum => row[8] = "再婚".to_string(),
        }
        out.row(row)
    }
}

impl Gen for HjrkGen {
    fn step(&mut self, out: &mut Out) -> io::Result<bool> {
        if self.bad.due(self.written) {
            self.bad_row(out)?;
            return Ok(true);
        }
        if let Some(m) = self.pop.next() {
            let status = population_status(self.seed, &m);
            let mut r = rng_for(self.seed, SALT_UPDATED, m.index);
            let Some(p) = m.person() else { return Ok(true) };
            let mut row = hjrk_row(&p, status, datetime_in(&mut r, ymd(2024, 1, 1), as_of()));
            if self.written == self.dup_source && self.bad.total > 0 {
                self.dup = Some(row.clone());
            }
            if self.lower_x > 0 && !m.is_demo() && row[0].ends_with('X') {
                row[0] = row[0].to_lowercase();
                self.lower_x -= 1;
            }
            out.row(row)?;
            self.written += 1;
            return Ok(true);
        }
        if self.bad.left() {
            self.bad_row(out)?;
            return Ok(true);
        }
        Ok(false)
    }
}

// ---------------------------------------------------------------------------
// 企业登记
// ---------------------------------------------------------------------------

const QYDJ_HEADER: &[&str] =
    &["tyshxydm", "qymc", "qylx", "fddbr", "zczb", "clrq", "djjg_qh", "zs", "jyfw", "hyml", "hymc", "djzt", "hzrq"];

/// The kinds of bad 企业登记 rows, in turn (the duplicate key comes last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BadEnterprise {
    /// An `O` (not in the GB 32100 alphabet) in the USCC: `type-error`.
    UsccAlphabet,
    /// 成立日期 on 30 February: `type-error`.
    February30,
    /// No name: `constraint-error` (required).
    NoName,
    /// 企业类型 `外商独资企业`, outside the enum: `constraint-error`.
    BadEnum,
}

const BAD_ENTERPRISES: [BadEnterprise; 4] =
    [BadEnterprise::UsccAlphabet, BadEnterprise::February30, BadEnterprise::NoName, BadEnterprise::BadEnum];

fn qydj_row(e: &Enterprise, approved: NaiveDate) -> [String; 13] {
    [
        e.uscc.as_str().to_string(),
        e.name.clone(),
        e.kind.to_string(),
        e.legal_representative.clone(),
        e.registered_capital.to_string(),
        date_text(e.established),
        e.district.code.to_string(),
        e.address.clone(),
        e.industry.scope.to_string(),
        e.industry.section.to_string(),
        e.industry.section_name.to_string(),
        e.status.to_string(),
        date_text(approved),
    ]
}

struct QydjGen {
    seed: u64,
    n: usize,
    written: usize,
    bad: BadPlan,
    bad_rng: DemoRng,
    dup_source: usize,
    dup: Option<[String; 13]>,
}

impl QydjGen {
    fn new(seed: u64, n: usize, bad: usize) -> QydjGen {
        QydjGen {
            seed,
            n,
            written: 0,
            bad: BadPlan::new(n, bad),
            bad_rng: rng_for(seed, SALT_BAD_ENT, 0),
            dup_source: n / 3,
            dup: None,
        }
    }

    fn bad_row(&mut self, out: &mut Out) -> io::Result<()> {
        let j = self.bad.next;
        self.bad.next += 1;
        if self.bad.next == self.bad.total {
            if let Some(mut row) = self.dup.take() {
                // Re-delivered later with a new approval date.
                row[12] = "2026-10-30".to_string();
                return out.row(row);
            }
        }
        let e = enterprise(&mut self.bad_rng);
        let approved = day_in(&mut self.bad_rng, e.established, as_of());
        let mut row = qydj_row(&e, approved);
        match BAD_ENTERPRISES[j % BAD_ENTERPRISES.len()] {
            BadEnterprise::UsccAlphabet => {
                let u = e.uscc.as_str();
                row[0] = format!("{}O{}", u.get(..10).unwrap_or_default(), u.get(11..).unwrap_or_default());
            }
            BadEnterprise::February30 => row[5] = format!("{}-02-30", e.established.year()),
            BadEnterprise::NoName => row[1] = String::new(),
            BadEnterprise::BadEnum => row[2] = "外商独资企业".to_string(),
        }
        out.row(row)
    }
}

impl Gen for QydjGen {
    fn step(&mut self, out: &mut Out) -> io::Result<bool> {
        if self.bad.due(self.written) {
            self.bad_row(out)?;
            return Ok(true);
        }
        if self.written < self.n {
            let k = self.written as u64;
            let e = ent(self.seed, k);
            let approved = day_in(&mut rng_for(self.seed, SALT_APPROVED, k), e.established, as_of());
            let row = qydj_row(&e, approved);
            if self.written == self.dup_source && self.bad.total > 0 {
                self.dup = Some(row.clone());
            }
            out.row(row)?;
            self.written += 1;
            return Ok(true);
        }
        if self.bad.left() {
            self.bad_row(out)?;
            return Ok(true);
        }
        Ok(false)
    }
}

// ---------------------------------------------------------------------------
// Datasets keyed by residents: 个体工商户, 社保参保, 最低生活保障对象
// ---------------------------------------------------------------------------

const GTGSH_HEADER: &[&str] =
    &["tyshxydm", "zhmc", "jyzxm", "jyzsfzh", "zcxs", "zjse", "zcrq", "djjg_qh", "jycs", "jyfw", "hyml", "djzt"];
const SBCB_HEADER: &[&str] =
    &["sfzh", "xm", "xzlx", "cbdw_tyshxydm", "cbdwmc", "cbzt", "cbrq", "jfjs", "ljjfys", "cbd_qh"];
const DBJZ_HEADER: &[&str] = &["sfzh", "xm", "bzlb", "jtrks", "bzje", "ksny", "jsny", "zt", "qh"];

struct PeopleGen {
    seed: u64,
    n_ent: usize,
    kind: Kind,
    pop: Population,
    /// Sole traders written so far (their USCC index).
    traders: u64,
}

impl PeopleGen {
    fn new(seed: u64, n: usize, n_ent: usize, kind: Kind) -> PeopleGen {
        PeopleGen { seed, n_ent, kind, pop: Population::new(seed, n), traders: 0 }
    }

    fn gtgsh(&mut self, m: &Member, status: &str, out: &mut Out) -> io::Result<()> {
        let Some(mut r) = gtgsh_plan(self.seed, m, status) else { return Ok(()) };
        let Some(operator) = m.person() else { return Ok(()) };
        let Some(mut t) = sole_trader_run_by(&mut r, operator) else { return Ok(()) };
        if let Some(u) = unique_uscc('9', '2', t.district.code, t.registered, self.traders) {
            t.uscc = u;
        }
        self.traders += 1;
        out.row([
            t.uscc.as_str().to_string(),
            t.name,
            t.operator.name,
            t.operator.id_number.as_str().to_string(),
            t.form.to_string(),
            t.capital.to_string(),
            date_text(t.registered),
            t.district.code.to_string(),
            t.address,
            t.trade.scope.to_string(),
            t.trade.section.to_string(),
            t.status.to_string(),
        ])
    }

    fn sbcb(&mut self, m: &Member, status: &str, out: &mut Out) -> io::Result<()> {
        let Some(SbPlan { kinds, employer, mut rng }) = sbcb_plan(self.seed, m, status, self.n_ent) else {
            return Ok(());
        };
        let Some(p) = m.person() else { return Ok(()) };
        let employer = employer.map(|k| ent(self.seed, k));
        let adult = add_years(p.birth_date, 18).max(ymd(1996, 1, 1));
        let start = employer.as_ref().map_or(adult, |e| adult.max(e.established));
        let latest = ymd(2026, 9, 30);
        let (unit, unit_name, district) = match &employer {
            Some(e) => (e.uscc.as_str().to_string(), e.name.clone(), e.district.code),
            None => (String::new(), String::new(), p.district.code),
        };
        let state = match &employer {
            Some(e) if !active(e) => "终止参保",
            Some(_) if rng.chance(4) => "暂停缴费",
            _ => "正常参保",
        };
        let base = employer.as_ref().map(|_| rng.between(4_880, 26_000));
        for kind in kinds {
            let since = day_in(&mut rng, start.min(latest), latest);
            let months = (as_of().year() - since.year()) * 12 + as_of().month() as i32 - since.month() as i32;
            let gaps = i32::try_from(rng.below(12)).unwrap_or(0);
            let paid = (months - gaps).clamp(0, 720);
            out.row([
                p.id_number.as_str().to_string(),
                p.name.clone(),
                kind.to_string(),
                unit.clone(),
                unit_name.clone(),
                state.to_string(),
                date_text(since),
                base.map(|b| b.to_string()).unwrap_or_default(),
                paid.to_string(),
                district.to_string(),
            ])?;
        }
        Ok(())
    }

    fn dbjz(&mut self, m: &Member, status: &str, out: &mut Out) -> io::Result<()> {
        let Some(mut r) = dbjz_plan(self.seed, m, status) else { return Ok(()) };
        let Some(p) = m.person() else { return Ok(()) };
        let rural = p.address.contains('村');
        let household = r.between(1, 4);
        let amount = household * r.between(300, 1_130);
        let year = i32::try_from(r.between(2016, 2026)).unwrap_or(2026);
        let month = if year == 2026 { r.between(1, 10) } else { r.between(1, 12) };
        let stopped = r.chance(15);
        let end = if stopped {
            let from = ymd(year, month, 1);
            let d = day_in(&mut r, from, as_of());
            d.format("%Y-%m").to_string()
        } else {
            String::new()
        };
        out.row([
            p.id_number.as_str().to_string(),
            p.name,
            (if rural { "农村低保" } else { "城市低保" }).to_string(),
            household.to_string(),
            amount.to_string(),
            format!("{year}-{month:02}"),
            end,
            (if stopped { "停保" } else { "在保" }).to_string(),
            p.district.code.to_string(),
        ])
    }
}

impl Gen for PeopleGen {
    fn step(&mut self, out: &mut Out) -> io::Result<bool> {
        let Some(m) = self.pop.next() else { return Ok(false) };
        let status = population_status(self.seed, &m);
        match self.kind {
            Kind::Gtgsh => self.gtgsh(&m, status, out)?,
            Kind::Sbcb => self.sbcb(&m, status, out)?,
            Kind::Dbjz => self.dbjz(&m, status, out)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

// ---------------------------------------------------------------------------
// Datasets keyed by enterprises: 企业用电, 排污许可, 纳税信用等级, 施工许可, 投资项目
// ---------------------------------------------------------------------------

const QYYD_HEADER: &[&str] = &["hh", "tjyf", "tyshxydm", "hm", "yddz", "ydlb", "htrl", "ydl", "qh"];
const PWXK_HEADER: &[&str] =
    &["xkzbh", "tyshxydm", "dwmc", "hylb", "glfl", "zywrwzl", "yxqq", "yxqz", "fzrq", "zt", "qh"];
const NSXYDJ_HEADER: &[&str] = &["nsrsbh", "pjnd", "nsrmc", "xydj", "zgswjg"];
const JZSGXK_HEADER: &[&str] = &[
    "sgxkzbh",
    "xmmc",
    "jsdw",
    "jsdw_tyshxydm",
    "sgdw",
    "sgdw_tyshxydm",
    "jsdz",
    "htjg",
    "jsgm",
    "jhkgrq",
    "jhjgrq",
    "fzrq",
    "qh",
];
const TZXM_HEADER: &[&str] = &["xmdm", "xmmc", "xmdw", "xmdw_tyshxydm", "jsdd", "ztz", "jsnr", "hy", "basj", "qh"];

/// GB/T 4754-2017 division (大类) code and name for a line of business.
fn division(i: &Industry) -> (&'static str, &'static str) {
    match i.label {
        "机械制造" => ("34", "通用设备制造业"),
        "精密机械" => ("33", "金属制品业"),
        "汽车零部件" => ("36", "汽车制造业"),
        "光伏科技" | "电机" | "动力电池" => ("38", "电气机械和器材制造业"),
        "新材料科技" => ("29", "橡胶和塑料制品业"),
        "纺织" => ("17", "纺织业"),
        "电子科技" => ("39", "计算机、通信和其他电子设备制造业"),
        "智能装备" | "医疗器械" => ("35", "专用设备制造业"),
        _ => match i.section {
            "I" => ("65", "软件和信息技术服务业"),
            "M" => ("74", "专业技术服务业"),
            "G" => ("59", "装卸搬运和仓储业"),
            "A" => ("01", "农业"),
            "F" => ("51", "批发业"),
            "E" => ("47", "房屋建筑业"),
            _ => ("72", "商务服务业"),
        },
    }
}

/// Main pollutants by line of business.
fn pollutants(i: &Industry) -> &'static str {
    match i.label {
        "纺织" => "化学需氧量,氨氮,总氮,总磷,颗粒物",
        "新材料科技" => "挥发性有机物,颗粒物,化学需氧量",
        "电子科技" | "光伏科技" | "动力电池" => "氟化物,氮氧化物,化学需氧量,氨氮",
        "汽车零部件" | "机械制造" | "精密机械" | "智能装备" => "颗粒物,挥发性有机物,化学需氧量",
        _ => "颗粒物,化学需氧量,氨氮",
    }
}

/// The tax office of a district, e.g. `国家税务总局常州市天宁区税务局`.
fn tax_office(e: &Enterprise) -> String {
    format!("国家税务总局{}税务局", e.district.address_prefix)
}

struct EntGen {
    seed: u64,
    n: usize,
    kind: Kind,
    next: u64,
    /// Rows with a serial number in their key written so far.
    serial: u64,
}

impl EntGen {
    fn new(seed: u64, n: usize, kind: Kind) -> EntGen {
        EntGen { seed, n, kind, next: 0, serial: 0 }
    }

    fn qyyd(&mut self, k: u64, e: &Enterprise, out: &mut Out) -> io::Result<()> {
        let Some(mut r) = qyyd_plan(self.seed, k, e) else { return Ok(()) };
        let (category, capacity) = match e.industry.section {
            "C" if e.registered_capital >= 500 => ("大工业用电", r.between(315, 8_000)),
            "A" => ("农业生产用电", r.between(30, 200)),
            _ => ("一般工商业用电", r.between(10, 315)),
        };
        let account = format!("32{}", digits_body(k));
        let load = r.between(15, 60);
        for month in QYYD_MONTHS {
            let hours = r.between(300, 720);
            let used = u64::from(capacity) * u64::from(hours) * u64::from(load) / 100;
            out.row([
                account.clone(),
                month.to_string(),
                e.uscc.as_str().to_string(),
                e.name.clone(),
                e.address.clone(),
                category.to_string(),
                capacity.to_string(),
                used.to_string(),
                e.district.code.to_string(),
            ])?;
        }
        Ok(())
    }

    fn pwxk(&mut self, k: u64, e: &Enterprise, out: &mut Out) -> io::Result<()> {
        let Some(mut r) = pwxk_plan(self.seed, k, e) else { return Ok(()) };
        let class = match r.below(100) {
            0..=14 => "重点管理",
            15..=59 => "简化管理",
            _ => "登记管理",
        };
        let suffix = if class == "登记管理" { 'W' } else { 'P' };
        let issued = day_in(&mut r, ymd(2020, 1, 1).max(e.established), ymd(2026, 9, 30));
        let until = add_years(issued, 5).pred_opt().unwrap_or(issued);
        let state = if until < as_of() { "过期" } else { "有效" };
        out.row([
            format!("{}001{suffix}", e.uscc.as_str()),
            e.uscc.as_str().to_string(),
            e.name.clone(),
            division(e.industry).1.to_string(),
            class.to_string(),
            pollutants(e.industry).to_string(),
            date_text(issued),
            date_text(until),
            date_text(issued),
            state.to_string(),
            e.district.code.to_string(),
        ])
    }

    fn nsxydj(&mut self, k: u64, e: &Enterprise, out: &mut Out) -> io::Result<()> {
        const GRADES: &[(&str, u32)] = &[("A", 16), ("B", 58), ("M", 16), ("C", 7), ("D", 3)];
        let mut r = rng_for(self.seed, SALT_NSXYDJ, k);
        for year in nsxydj_years(e) {
            let grade = r.weighted(GRADES, |g| g.1).0;
            out.row([e.uscc.as_str().to_string(), year.to_string(), e.name.clone(), grade.to_string(), tax_office(e)])?;
        }
        Ok(())
    }

    fn jzsgxk(&mut self, k: u64, e: &Enterprise, out: &mut Out) -> io::Result<()> {
        let Some((b, mut r)) = jzsgxk_plan(self.seed, k, e, self.n) else { return Ok(()) };
        let builder = ent(self.seed, b);
        let issued = day_in(&mut r, ymd(2023, 1, 1), ymd(2026, 10, 30));
        let start = issued + chrono::Duration::days(i64::from(r.between(7, 30)));
        let finish = start + chrono::Duration::days(i64::from(r.between(180, 720)));
        let serial = self.serial % 10_000;
        self.serial += 1;
        let what = r.pick(&["新建生产厂房项目", "厂房扩建工程", "研发中心及配套用房项目", "智能制造车间建设项目"]);
        out.row([
            format!("{}{}{serial:04}", e.district.code, issued.format("%Y%m%d")),
            format!("{}{what}", e.name),
            e.name.clone(),
            e.uscc.as_str().to_string(),
            builder.name.clone(),
            builder.uscc.as_str().to_string(),
            e.address.clone(),
            r.between(300, 30_000).to_string(),
            r.between(2_000, 80_000).to_string(),
            date_text(start),
            date_text(finish),
            date_text(issued),
            e.district.code.to_string(),
        ])
    }

    fn tzxm(&mut self, k: u64, e: &Enterprise, out: &mut Out) -> io::Result<()> {
        let Some(mut r) = tzxm_plan(self.seed, k, e) else { return Ok(()) };
        let (code, name) = division(e.industry);
        let filed = day_in(&mut r, ymd(2023, 1, 1), as_of());
        let serial = self.serial % 1_000_000;
        self.serial += 1;
        let (title, content) = match r.below(3) {
            0 => (
                format!("年产{}万件{}产品技术改造项目", r.between(5, 200), e.industry.label),
                "购置数控加工中心、自动化生产线等设备，改造现有厂房，提升产能和产品质量。",
            ),
            1 => (
                format!("{}智能化改造和数字化转型项目", e.industry.label),
                "建设数字化车间，引入工业互联网平台和智能仓储系统，实现生产过程数据采集与管理。",
            ),
            _ => (
                format!("{}研发中心建设项目", e.industry.label),
                "新建研发楼及检测实验室，购置研发检测设备，开展关键技术攻关。",
            ),
        };
        let site = business_address(&mut r, e.district);
        out.row([
            format!("{}-{}-{code}-03-{serial:06}", filed.year(), e.district.code),
            title,
            e.name.clone(),
            e.uscc.as_str().to_string(),
            site,
            r.between(500, 80_000).to_string(),
            content.to_string(),
            name.to_string(),
            datetime_in(&mut r, filed, filed),
            e.district.code.to_string(),
        ])
    }
}

impl Gen for EntGen {
    fn step(&mut self, out: &mut Out) -> io::Result<bool> {
        if self.next >= self.n as u64 {
            return Ok(false);
        }
        let k = self.next;
        self.next += 1;
        let e = ent(self.seed, k);
        match self.kind {
            Kind::Qyyd => self.qyyd(k, &e, out)?,
            Kind::Pwxk => self.pwxk(k, &e, out)?,
            Kind::Nsxydj => self.nsxydj(k, &e, out)?,
            Kind::Jzsgxk => self.jzsgxk(k, &e, out)?,
            Kind::Tzxm => self.tzxm(k, &e, out)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

// ---------------------------------------------------------------------------
// 医疗机构: the main hospitals, a community health centre for every few streets, a
// township health centre in every town, and clinics in proportion to the population
// ---------------------------------------------------------------------------

const YLJG_HEADER: &[&str] = &["tyshxydm", "jgmc", "jglb", "jgdj", "cws", "dz", "lxdh", "zb", "qh"];

/// Hospitals: (name, category, grade, beds, district).
const HOSPITALS: &[(&str, &str, &str, u32, &str)] = &[
    ("常州市第一人民医院", "综合医院", "三级甲等", 2_600, "320402"),
    ("常州市第二人民医院", "综合医院", "三级甲等", 3_000, "320404"),
    ("常州市中医医院", "中医医院", "三级甲等", 1_200, "320404"),
    ("常州市妇幼保健院", "妇幼保健院", "三级甲等", 800, "320404"),
    ("常州市第三人民医院", "专科医院", "三级乙等", 900, "320402"),
    ("常州市武进人民医院", "综合医院", "三级甲等", 2_000, "320412"),
    ("常州市金坛第一人民医院", "综合医院", "三级乙等", 1_200, "320413"),
    ("溧阳市人民医院", "综合医院", "三级乙等", 1_300, "320481"),
    ("常州市新北区人民医院", "综合医院", "二级甲等", 600, "320411"),
    ("溧阳市中医医院", "中医医院", "二级甲等", 500, "320481"),
];

/// Rough centres (longitude, latitude) of the districts, for coordinates.
fn centre(code: &str) -> (f64, f64) {
    match code {
        "320402" => (119.974, 31.781),
        "320404" => (119.936, 31.776),
        "320411" => (119.972, 31.852),
        "320412" => (119.958, 31.702),
        "320413" => (119.584, 31.723),
        _ => (119.484, 31.416),
    }
}

/// Streets per community health centre.
const STREETS_PER_CENTRE: usize = 3;

fn centres(d: &District) -> usize {
    d.streets.len().div_ceil(STREETS_PER_CENTRE)
}

/// Public institutions, then clinics (one per 2,500 residents) and outpatient
/// departments (one per 10,000).
fn yljg_count(people: usize) -> usize {
    HOSPITALS.len()
        + DISTRICTS.iter().map(|d| centres(d) + d.towns.len()).sum::<usize>()
        + people / 2_500
        + people / 10_000
}

struct YljgGen {
    seed: u64,
    people: usize,
    next: usize,
}

impl YljgGen {
    /// The `j`-th institution: (name, category, grade, beds, district, public).
    fn institution(
        &self,
        j: usize,
        r: &mut DemoRng,
    ) -> Option<(String, &'static str, &'static str, u32, &'static District, bool)> {
        let district = |code: &str| DISTRICTS.iter().find(|d| d.code == code);
        if let Some(&(name, category, grade, beds, code)) = HOSPITALS.get(j) {
            return Some((name.to_string(), category, grade, beds, district(code)?, true));
        }
        let mut j = j - HOSPITALS.len();
        for d in DISTRICTS {
            if j < centres(d) {
                let street = d.streets.get(j * STREETS_PER_CENTRE)?;
                let name = format!("{}{street}社区卫生服务中心", d.address_prefix);
                return Some((name, "社区卫生服务中心", "一级", r.between(0, 60), d, true));
            }
            j -= centres(d);
            if let Some(town) = d.towns.get(j) {
                return Some((
                    format!("{}{town}卫生院", d.address_prefix),
                    "乡镇卫生院",
                    "一级",
                    r.between(20, 120),
                    d,
                    true,
                ));
            }
            j -= d.towns.len();
        }
        let d = r.weighted(DISTRICTS, |d| d.weight);
        let brand = format!("{}{}", r.pick(BRAND_FIRST), r.pick(BRAND_SECOND));
        if j < self.people / 2_500 {
            let kind = r.pick(&["诊所", "口腔诊所", "中医诊所", "内科诊所"]);
            return Some((format!("{}{brand}{kind}", d.address_prefix), "诊所", "未定级", 0, d, false));
        }
        Some((format!("常州{brand}门诊部"), "门诊部", "未定级", 0, d, false))
    }
}

impl Gen for YljgGen {
    fn step(&mut self, out: &mut Out) -> io::Result<bool> {
        if self.next >= yljg_count(self.people) {
            return Ok(false);
        }
        let j = self.next;
        self.next += 1;
        let mut r = rng_for(self.seed, SALT_YLJG, j as u64);
        let Some((name, category, grade, beds, d, public)) = self.institution(j, &mut r) else { return Ok(true) };
        let (dept, kind) = if public { ('1', '2') } else { ('5', '2') };
        let registered = if public { ymd(2015, 6, 30) } else { ymd(2018, 1, 1) };
        let Some(uscc) = unique_uscc(dept, kind, d.code, registered, j as u64) else { return Ok(true) };
        let (lon, lat) = centre(d.code);
        let jitter = |r: &mut DemoRng| f64::from(r.below(600)) / 10_000.0 - 0.03;
        let point = format!("{:.4},{:.4}", lon + jitter(&mut r), lat + jitter(&mut r));
        out.row([
            uscc.as_str().to_string(),
            name,
            category.to_string(),
            grade.to_string(),
            beds.to_string(),
            business_address(&mut r, d),
            format!("0519-8{}", r.between(1_000_000, 9_999_999)),
            point,
            d.code.to_string(),
        ])?;
        Ok(true)
    }
}

#[cfg(test)]
#[path = "fill_tests.rs"]
mod tests;
