//! `--normalize` turns every way people write a valid number into the same
//! canonical E.164 number: spaces, dashes, brackets, `00` for `+`, a
//! bracketed trunk `(0)`, and the national form with `--default-country`.

use acgbulk::sheet::{HeaderMap, RawRow};
use acgbulk::validate::{Numbers, RowRules, RuleOptions};
use phonenumber::metadata::DATABASE;
use phonenumber::Mode;
use proptest::prelude::*;

/// Valid numbers of many regions: each region's example numbers (every
/// number type), which the metadata guarantees valid.
fn valid_numbers() -> Vec<(String, phonenumber::PhoneNumber)> {
    let mut numbers = Vec::new();
    for code in 1..1000u16 {
        for meta in DATABASE.by_code(&code).unwrap_or_default() {
            let Ok(region) = meta.id().parse::<phonenumber::country::Id>() else {
                continue;
            };
            let d = meta.descriptors();
            for desc in [d.fixed_line(), d.mobile(), d.toll_free(), d.voip()]
                .into_iter()
                .flatten()
            {
                let Some(example) = desc.example() else {
                    continue;
                };
                let text = format!("+{code}{example}");
                let Ok(number) = phonenumber::parse(None, &text) else {
                    continue;
                };
                if phonenumber::is_valid(&number) {
                    numbers.push((region.as_ref().to_owned(), number));
                }
            }
        }
    }
    numbers
}

/// One way of writing `number`, by `style`, with separators placed by
/// `cuts` (positions in the national significant number).
fn written(number: &phonenumber::PhoneNumber, style: u8, cuts: &[usize], sep: char) -> String {
    let code = number.code().value();
    let national = number.national().to_string();
    let mut grouped = String::new();
    for (i, c) in national.chars().enumerate() {
        if cuts.contains(&i) && i > 0 {
            grouped.push(sep);
        }
        grouped.push(c);
    }
    match style {
        0 => format!("+{code} {grouped}"),
        1 => format!("00{code} {grouped}"),
        2 => format!("+{code}-{}", grouped.replace(' ', "-")),
        3 => {
            let split = cuts
                .first()
                .copied()
                .unwrap_or(1)
                .clamp(1, national.len() - 1);
            format!("+{code} ({}) {}", &national[..split], &national[split..])
        }
        4 => format!("  +{code}.{}  ", grouped.replace(' ', ".")),
        // The trunk 0 in brackets, as UK business cards write it.
        5 => format!("+{code} (0){grouped}"),
        // The national form, read with --default-country.
        _ => number.format().mode(Mode::National).to_string(),
    }
}

fn check(cell: &str, region: &str) -> (Numbers, Vec<String>) {
    let headings = [
        "telephoneNumber",
        "accountName",
        "serviceDetails_teamsDirectRouting_enabled",
    ];
    let header = HeaderMap::new(&headings, false).unwrap();
    let options = RuleOptions {
        normalize: true,
        default_country: Some(region.to_owned()),
        ..RuleOptions::default()
    };
    let rules = RowRules::new(&header, &options).unwrap();
    let check = rules.check(&RawRow {
        row: 2,
        at: 0,
        cells: csv::StringRecord::from(vec![cell, "contoso", "true"]),
        notes: vec![],
        sheet: None,
    });
    let errors = check
        .findings
        .iter()
        .filter(|f| f.severity == acgbulk::validate::Severity::Error)
        .map(|f| format!("{} {}", f.code, f.message))
        .collect();
    (check.numbers, errors)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_formatting_normalizes_to_the_canonical_number(
        pick in any::<prop::sample::Index>(),
        style in 0u8..7,
        cuts in prop::collection::vec(0usize..12, 0..4),
        sep in prop::sample::select(vec![' ', '-', '.', '\u{a0}']),
    ) {
        let numbers = valid_numbers_cached();
        let (region, number) = &numbers[pick.index(numbers.len())];
        let national = number.national().to_string();
        let meta = number.metadata(&DATABASE);
        // `(0)` stands for a trunk prefix: only where the trunk prefix is a
        // plain 0 (no carrier codes after it, as Colombia's and Brazil's
        // have) and the number itself does not start with 0 (Italy's do).
        let trunk_zero = meta.is_some_and(|m| {
            m.national_prefix() == Some("0") && m.national_prefix_for_parsing().is_none()
        });
        let bracketed_trunk = trunk_zero && !national.starts_with('0');
        let style = if style == 5 && !bracketed_trunk { 0 } else { style };
        let canonical: u64 = number.format().mode(Mode::E164).to_string()[1..].parse().unwrap();
        let cell = written(number, style, &cuts, sep);
        let (numbers, errors) = check(&cell, region);
        prop_assert_eq!(
            numbers,
            Numbers::One(canonical),
            "{:?} ({}) gave {:?} with {:?}", cell, region, numbers, errors
        );
        prop_assert!(errors.is_empty(), "{:?} ({}): {:?}", cell, region, errors);
    }
}

fn valid_numbers_cached() -> &'static [(String, phonenumber::PhoneNumber)] {
    static NUMBERS: std::sync::OnceLock<Vec<(String, phonenumber::PhoneNumber)>> =
        std::sync::OnceLock::new();
    NUMBERS.get_or_init(|| {
        let numbers = valid_numbers();
        assert!(numbers.len() > 500, "the metadata has example numbers");
        numbers
    })
}
