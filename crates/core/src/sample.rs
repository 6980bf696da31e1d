//! Realistic number sheets of any size, for trying the tool and for
//! benchmarks: several accounts in several countries, numbers allocated in
//! blocks as operators hold them, some rows as ranges, and a chosen share of
//! rows with one typical mistake each.

use crate::sheet::{Column, Teams, TeamsField};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::{self, Write};
use std::path::Path;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SampleOptions {
    /// Data rows (a range row counts once).
    pub rows: u64,
    pub seed: u64,
    pub accounts: usize,
    /// Share of rows with a mistake, 0 to 1.
    pub mistakes: f64,
    /// Share of rows that are ranges, 0 to 1.
    pub ranges: f64,
    /// Numbers in each range row.
    pub range_size: u64,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            rows: 1000,
            seed: 1,
            accounts: 12,
            mistakes: 0.01,
            ranges: 0.02,
            range_size: 50,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleStats {
    pub rows: u64,
    /// Numbers after range expansion.
    pub numbers: u64,
    pub mistakes: u64,
}

/// Number blocks that libphonenumber's metadata holds valid, as the digits
/// after `+` and the count of free digits after them.
const BLOCKS: [(&str, u32); 8] = [
    ("1425", 7),
    ("44203", 7),
    ("4930", 8),
    ("3314", 7),
    ("3120", 7),
    ("6128", 7),
    ("3531", 7),
    ("3491", 7),
];

/// The account names sample sheets use, in order; the emulator's demo
/// accounts are these.
pub const ACCOUNT_NAMES: [&str; 16] = [
    "contoso",
    "fabrikam",
    "northwind",
    "adatum",
    "litware",
    "tailspin",
    "woodgrove",
    "wingtip",
    "fourth-coffee",
    "proseware",
    "lucerne",
    "margies-travel",
    "alpine-ski",
    "coho-winery",
    "humongous",
    "trey-research",
];

/// The headings of generated sheets.
pub fn headings() -> Vec<String> {
    let oc = |f| Column::Teams(Teams::OperatorConnect, f).heading();
    vec![
        Column::TelephoneNumber.heading(),
        Column::AccountName.heading(),
        oc(TeamsField::Enabled),
        oc(TeamsField::AssignmentStatus),
        oc(TeamsField::Usage),
        oc(TeamsField::ChoosableCapabilities),
        oc(TeamsField::CivicAddressId),
        oc(TeamsField::AllowTenantAddressUpdate),
        Column::DirectRoutingEnabled.heading(),
        Column::CustomSipHeader.heading(),
    ]
}

struct Account {
    name: String,
    prefix: &'static str,
    width: u32,
    next: u64,
    operator_connect: bool,
}

/// Generates rows; each is the cells under [`headings`] and, for the xlsx
/// writer, whether the number cell is a plain number.
pub struct Generator {
    options: SampleOptions,
    rng: StdRng,
    accounts: Vec<Account>,
    last_number: Option<String>,
    pub stats: SampleStats,
}

impl Generator {
    pub fn new(options: SampleOptions) -> Generator {
        let mut rng = StdRng::seed_from_u64(options.seed);
        let count = options.accounts.max(1);
        let accounts = (0..count)
            .map(|k| {
                let (prefix, width) = BLOCKS[k % BLOCKS.len()];
                // Accounts sharing a block prefix get disjoint sub-blocks,
                // all starting with a digit from 2 to 9 as subscriber
                // numbers do.
                let share = count.div_ceil(BLOCKS.len()) as u64;
                let span = 7 * 10u64.pow(width - 1) / share;
                let first = 2 * 10u64.pow(width - 1) + span * (k / BLOCKS.len()) as u64;
                let base = ACCOUNT_NAMES[k % ACCOUNT_NAMES.len()];
                Account {
                    name: if k < ACCOUNT_NAMES.len() {
                        base.to_owned()
                    } else {
                        format!("{base}-{}", k / ACCOUNT_NAMES.len())
                    },
                    prefix,
                    width,
                    next: first,
                    operator_connect: rng.random_bool(0.6),
                }
            })
            .collect();
        Generator {
            options,
            rng,
            accounts,
            last_number: None,
            stats: SampleStats::default(),
        }
    }

    fn take(&mut self, account: usize, count: u64) -> (String, String) {
        let a = &mut self.accounts[account];
        let first = a.next;
        a.next += count;
        let format = |n: u64| format!("+{}{:0width$}", a.prefix, n, width = a.width as usize);
        (format(first), format(first + count - 1))
    }

    /// The next row, or `None` when all rows are out.
    pub fn next_row(&mut self) -> Option<Vec<String>> {
        if self.stats.rows >= self.options.rows {
            return None;
        }
        self.stats.rows += 1;
        let account = self.rng.random_range(0..self.accounts.len());
        let is_range = self.rng.random_bool(self.options.ranges.clamp(0.0, 1.0));
        let size = if is_range {
            self.options.range_size.max(2)
        } else {
            1
        };
        let (first, last) = self.take(account, size);
        self.stats.numbers += size;
        let a = &self.accounts[account];
        let mut cells: Vec<String> = if a.operator_connect {
            vec![
                first.clone(),
                a.name.clone(),
                "true".into(),
                "unassigned".into(),
                "CallingUserAssignment".into(),
                "InboundCalling,OutboundCalling".into(),
                format!("civic-{}-1", a.name),
                "false".into(),
                "false".into(),
                String::new(),
            ]
        } else {
            vec![
                first.clone(),
                a.name.clone(),
                "false".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                "true".into(),
                format!("trunk-{}", a.name),
            ]
        };
        if is_range {
            cells[0] = format!("{first}..{last}");
        }
        if self.rng.random_bool(self.options.mistakes.clamp(0.0, 1.0)) {
            self.stats.mistakes += 1;
            self.spoil(&mut cells, &first, &last, a.operator_connect);
        }
        self.last_number = Some(first);
        Some(cells)
    }

    /// Puts one typical mistake into a row.
    fn spoil(&mut self, cells: &mut [String], first: &str, last: &str, operator_connect: bool) {
        match self.rng.random_range(0..10) {
            0 => cells[0] = format!("{} {} {}", &first[..3], &first[3..6], &first[6..]),
            1 => cells[0] = format!("+999{}", &first[4..]),
            2 => cells[0] = first[..first.len() - 3].to_owned(),
            3 => cells[1] = format!("{} corp", cells[1]),
            4 if operator_connect => cells[4] = String::new(),
            4 => cells[8] = "Y".into(),
            5 if operator_connect => cells[5] = "InboundCall".into(),
            5 => cells[8] = "enabled".into(),
            6 => {
                if let Some(previous) = &self.last_number {
                    cells[0] = previous.clone();
                } else {
                    cells[0] = format!("{first}..{first}x");
                }
            }
            7 => cells[0] = format!("{last}..{}", &first[..first.len() - 1]),
            8 => cells[9] = "x header".into(),
            _ if operator_connect => cells[3] = "pending".into(),
            _ => cells[1] = String::new(),
        }
    }
}

/// Writes a CSV sample to `out`.
pub fn write_csv<W: Write>(out: W, options: SampleOptions) -> io::Result<SampleStats> {
    let mut writer = crate::csvconf::writer(io::BufWriter::with_capacity(1 << 20, out));
    writer.write_record(headings())?;
    let mut generator = Generator::new(options);
    while let Some(row) = generator.next_row() {
        writer.write_record(&row)?;
    }
    writer.flush()?;
    Ok(generator.stats)
}

/// Writes an .xlsx sample. With `numeric_numbers`, single numbers are typed
/// as numeric cells (as Excel stores `+441632960123` typed by hand: a number
/// without its `+`).
pub fn write_xlsx(
    path: &Path,
    options: SampleOptions,
    numeric_numbers: bool,
) -> io::Result<SampleStats> {
    use crate::xlsx::Cell;
    let mut book = crate::xlsx::WorkbookWriter::new();
    let table = book.add_table("Numbers", &headings())?;
    let mut generator = Generator::new(options);
    while let Some(row) = generator.next_row() {
        let cells = row.iter().enumerate().map(|(c, cell)| {
            let digits = cell
                .strip_prefix('+')
                .filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
            match digits {
                Some(d) if c == 0 && numeric_numbers => {
                    Cell::Number(d.parse::<f64>().expect("digits"))
                }
                _ if cell == "true" || cell == "false" => Cell::Bool(cell == "true"),
                _ => Cell::Text(cell),
            }
        });
        book.write_row(table, cells, false)?;
    }
    book.save(path)?;
    Ok(generator.stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::{PhoneRules, Verdict};

    #[test]
    fn clean_samples_hold_only_valid_unique_numbers() {
        let mut generator = Generator::new(SampleOptions {
            rows: 20_000,
            mistakes: 0.0,
            ranges: 0.05,
            range_size: 20,
            accounts: 30,
            ..SampleOptions::default()
        });
        let rules = PhoneRules::new();
        let mut seen = std::collections::HashSet::new();
        while let Some(row) = generator.next_row() {
            let (first, last) = row[0].split_once("..").unwrap_or((&row[0], &row[0]));
            let a: u64 = first[1..].parse().unwrap();
            let b: u64 = last[1..].parse().unwrap();
            for n in a..=b {
                assert!(seen.insert(n), "+{n} generated twice");
                assert_eq!(rules.check(&n.to_string()).verdict, Verdict::Valid, "+{n}");
            }
        }
        assert_eq!(generator.stats.numbers, seen.len() as u64);
    }
}
