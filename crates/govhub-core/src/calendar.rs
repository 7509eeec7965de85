//! Working days (工作日) for deadlines: Monday to Friday, except the public holidays
//! the State Council announces each year, plus the weekend days it declares working
//! days (调休上班). The announced years are built in; the platform administrator adds
//! later years (or local changes) through the calendar API, which override them.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use std::collections::BTreeMap;

/// How a date is treated, when it differs from the Monday–Friday rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// A public holiday (or a bridging day off) even on a weekday.
    Holiday,
    /// A working day even on a weekend (调休上班).
    Workday,
}

impl DayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Holiday => "holiday",
            DayKind::Workday => "workday",
        }
    }
    pub fn parse(s: &str) -> Option<DayKind> {
        match s {
            "holiday" => Some(DayKind::Holiday),
            "workday" => Some(DayKind::Workday),
            _ => None,
        }
    }
}

/// One exception to the Monday–Friday rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CalendarDay {
    pub date: NaiveDate,
    pub kind: DayKind,
    /// e.g. 春节, 国庆节调休.
    pub name: String,
}

/// (first day, last day, name) of holidays and the weekend working days, as announced
/// by 国务院办公厅 for 2025 (国办发明电〔2024〕12号) and 2026 (2025-11-04).
const HOLIDAYS: &[(&str, &str, &str)] = &[
    ("2025-01-01", "2025-01-01", "元旦"),
    ("2025-01-28", "2025-02-04", "春节"),
    ("2025-04-04", "2025-04-06", "清明节"),
    ("2025-05-01", "2025-05-05", "劳动节"),
    ("2025-05-31", "2025-06-02", "端午节"),
    ("2025-10-01", "2025-10-08", "国庆节、中秋节"),
    ("2026-01-01", "2026-01-03", "元旦"),
    ("2026-02-15", "2026-02-23", "春节"),
    ("2026-04-04", "2026-04-06", "清明节"),
    ("2026-05-01", "2026-05-05", "劳动节"),
    ("2026-06-19", "2026-06-21", "端午节"),
    ("2026-09-25", "2026-09-27", "中秋节"),
    ("2026-10-01", "2026-10-07", "国庆节"),
];
const WORKDAYS: &[(&str, &str)] = &[
    ("2025-01-26", "春节调休上班"),
    ("2025-02-08", "春节调休上班"),
    ("2025-04-27", "劳动节调休上班"),
    ("2025-09-28", "国庆节调休上班"),
    ("2025-10-11", "国庆节调休上班"),
    ("2026-01-04", "元旦调休上班"),
    ("2026-02-14", "春节调休上班"),
    ("2026-02-28", "春节调休上班"),
    ("2026-05-09", "劳动节调休上班"),
    ("2026-09-20", "国庆节调休上班"),
    ("2026-10-10", "国庆节调休上班"),
];

/// A working-day calendar: the built-in announcements overlaid with stored days.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    days: BTreeMap<NaiveDate, CalendarDay>,
}

impl Calendar {
    /// The announced years only.
    pub fn builtin() -> Calendar {
        let mut days = BTreeMap::new();
        for (from, to, name) in HOLIDAYS {
            if let (Ok(mut d), Ok(to)) = (from.parse::<NaiveDate>(), to.parse::<NaiveDate>()) {
                while d <= to {
                    days.insert(d, CalendarDay { date: d, kind: DayKind::Holiday, name: (*name).to_string() });
                    d = d + Days::new(1);
                }
            }
        }
        for (date, name) in WORKDAYS {
            if let Ok(d) = date.parse::<NaiveDate>() {
                days.insert(d, CalendarDay { date: d, kind: DayKind::Workday, name: (*name).to_string() });
            }
        }
        Calendar { days }
    }

    /// The built-in calendar with `stored` days laid over it (they win).
    pub fn with(stored: impl IntoIterator<Item = CalendarDay>) -> Calendar {
        let mut c = Calendar::builtin();
        for d in stored {
            c.days.insert(d.date, d);
        }
        c
    }

    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        match self.days.get(&d).map(|x| x.kind) {
            Some(DayKind::Holiday) => false,
            Some(DayKind::Workday) => true,
            None => !matches!(d.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    /// The `n`-th working day after `start` (not counting `start` itself): a request
    /// made on `start` with a limit of `n` working days is due by the end of that day.
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> NaiveDate {
        let mut d = start;
        let mut left = n;
        while left > 0 {
            d = d + Days::new(1);
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// Working days after `from` up to and including `to` (0 when `to <= from`).
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut n = 0;
        let mut d = from;
        while d < to {
            d = d + Days::new(1);
            if self.is_working_day(d) {
                n += 1;
            }
        }
        n
    }

    /// The exceptions between two dates, inclusive.
    pub fn days_between(&self, from: NaiveDate, to: NaiveDate) -> Vec<CalendarDay> {
        self.days.range(from..=to).map(|(_, d)| d.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn announced_days() {
        let c = Calendar::builtin();
        assert!(!c.is_working_day(d("2026-02-16")), "春节");
        assert!(c.is_working_day(d("2026-02-14")), "Saturday worked before 春节");
        assert!(c.is_working_day(d("2026-02-28")));
        assert!(!c.is_working_day(d("2026-10-05")));
        assert!(c.is_working_day(d("2026-10-10")));
        assert!(c.is_working_day(d("2026-11-27")), "a Friday");
        assert!(!c.is_working_day(d("2026-11-28")), "a Saturday");
    }

    #[test]
    fn ten_working_days() {
        let c = Calendar::builtin();
        // Saturday 2026-11-28: Mon 30 Nov … Fri 11 Dec.
        assert_eq!(c.add_working_days(d("2026-11-28"), 10), d("2026-12-11"));
        // Across 国庆: requested Tue 2026-09-29 → 30 Sep, 8, 9, 10 (Sat, worked), 12–16, 19 Oct.
        assert_eq!(c.add_working_days(d("2026-09-29"), 10), d("2026-10-19"));
        // Across 春节 2026: Thu 12 Feb → 13, 14 (Sat, worked), 24, 25, 26, 27, 28 (Sat, worked), 2 Mar, 3, 4.
        assert_eq!(c.add_working_days(d("2026-02-12"), 10), d("2026-03-04"));
    }

    #[test]
    fn stored_days_override() {
        let c = Calendar::with([CalendarDay { date: d("2026-12-31"), kind: DayKind::Holiday, name: "测试".into() }]);
        assert!(!c.is_working_day(d("2026-12-31")));
        assert_eq!(c.days_between(d("2026-12-01"), d("2026-12-31")).len(), 1);
    }

    proptest! {
        #[test]
        fn deadlines_land_on_working_days(offset in 0i64..1500, n in 1u32..40) {
            let c = Calendar::builtin();
            let start = d("2025-01-01") + chrono::Duration::days(offset);
            let due = c.add_working_days(start, n);
            prop_assert!(c.is_working_day(due));
            prop_assert_eq!(c.working_days_between(start, due), n);
        }
    }
}
