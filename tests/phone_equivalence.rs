//! The fast phone checks give exactly the verdicts and the canonical E.164
//! forms of the plain `phonenumber` calls, on a large random sample.

use acgbulk::phone::{reference, Checked, PhoneRules, Verdict};
use phonenumber::metadata::DATABASE;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// Numbers an operator's sheet may plausibly hold, and the edge cases
/// around them: example numbers of every region and number type with
/// random tails, wrong lengths, national prefixes left in, leading zeros,
/// and plain random digits.
fn sample(rng: &mut StdRng, examples: &[(u16, String)], codes: &[u16]) -> String {
    let random_digits = |rng: &mut StdRng, n: usize| -> String {
        (0..n)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect()
    };
    match rng.random_range(0..10) {
        // An example number with its tail randomised.
        0..=4 => {
            let (code, example) = &examples[rng.random_range(0..examples.len())];
            let keep = rng.random_range(0..=example.len());
            let tail = random_digits(rng, example.len() - keep);
            format!("{code}{}{tail}", &example[..keep])
        }
        // Too long or too short by a digit or two.
        5 => {
            let (code, example) = &examples[rng.random_range(0..examples.len())];
            let mut n = format!("{code}{example}");
            if rng.random_bool(0.5) {
                let extra = rng.random_range(1..3);
                n.push_str(&random_digits(rng, extra));
            } else {
                let cut = rng.random_range(1..3);
                n.truncate(n.len().saturating_sub(cut).max(1));
            }
            n
        }
        // The national prefix or leading zeros left in.
        6 => {
            let (code, example) = &examples[rng.random_range(0..examples.len())];
            let prefix = ["0", "00", "1", "8", "9", "01"][rng.random_range(0..6)];
            let mut n = format!("{code}{prefix}{example}");
            n.truncate(15);
            n
        }
        // A known country code and random digits.
        7 | 8 => {
            let code = codes[rng.random_range(0..codes.len())];
            let len = rng.random_range(2..=13);
            format!("{code}{}", random_digits(rng, len))
        }
        // Anything at all that is digits.
        _ => {
            let len = rng.random_range(1..=15);
            random_digits(rng, len)
        }
    }
}

/// The fast checks' canonical E.164 text, in the reference's shape: only
/// for numbers of a possible length.
fn fast_canonical(digits: &str, checked: Checked) -> Option<String> {
    match checked.verdict {
        Verdict::Valid | Verdict::NotValid => Some(match checked.canonical {
            Some(canonical) => format!("+{canonical}"),
            None => format!("+{digits}"),
        }),
        _ => None,
    }
}

#[test]
fn fast_verdicts_equal_the_plain_calls() {
    let mut examples = Vec::new();
    // Every code, including the non-geographic entities that
    // `DATABASE.iter()` (by region id) shows only one of.
    let codes: Vec<u16> = (1..1000u16)
        .filter(|c| DATABASE.by_code(c).is_some())
        .collect();
    let metas = codes
        .iter()
        .flat_map(|c| DATABASE.by_code(c).unwrap_or_default());
    for meta in metas {
        let d = meta.descriptors();
        for desc in [
            Some(d.general()),
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.personal_number(),
            d.voip(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(example) = desc.example() {
                examples.push((meta.country_code(), example.to_owned()));
            }
        }
    }
    examples.sort();
    assert!(examples.len() > 1000, "metadata has example numbers");

    let samples: usize = std::env::var("PHONE_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300_000);
    let mut rng = StdRng::seed_from_u64(0x0ACB_0001);
    let rules = PhoneRules::new();
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut mismatches = Vec::new();
    // Sorted, so the plain calls meet one country's patterns at a time: the
    // crate's regex cache holds only 100 and recompiles on every miss, which
    // makes mixed countries a thousand times slower.
    let mut numbers: Vec<String> = (0..samples)
        .map(|_| sample(&mut rng, &examples, &codes))
        .collect();
    numbers.sort();
    let mut rewritten = 0;
    for digits in numbers {
        let checked = rules.check(&digits);
        let fast = (checked.verdict, fast_canonical(&digits, checked));
        let plain = reference::checked(&digits);
        *tally.entry(format!("{:?}", plain.0)).or_default() += 1;
        if plain.1.as_deref().is_some_and(|c| c[1..] != digits) {
            rewritten += 1;
        }
        if fast != plain {
            mismatches.push(format!("+{digits}: fast {fast:?}, plain {plain:?}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {samples} verdicts differ, first: {:#?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(20)]
    );
    // Trunk prefixes left in must be among the samples, or the canonical
    // comparison proves little.
    assert!(
        rewritten > samples / 200,
        "only {rewritten} samples had a canonical form other than their text"
    );
    // The sample must exercise every verdict, or it proves little.
    for verdict in [
        Verdict::Valid,
        Verdict::NotValid,
        Verdict::BadLength,
        Verdict::UnknownCountryCode,
    ] {
        let seen = tally.get(&format!("{verdict:?}")).copied().unwrap_or(0);
        assert!(
            seen > samples / 100,
            "only {seen} samples were {verdict:?}: {tally:?}"
        );
    }
}

#[test]
fn every_example_number_agrees() {
    let rules = PhoneRules::new();
    let codes = (1..1000u16).filter(|c| DATABASE.by_code(c).is_some());
    for meta in codes.flat_map(|c| DATABASE.by_code(&c).unwrap_or_default()) {
        let d = meta.descriptors();
        for desc in [d.fixed_line(), d.mobile(), d.toll_free(), d.voip(), d.uan()]
            .into_iter()
            .flatten()
        {
            if let Some(example) = desc.example() {
                let digits = format!("{}{example}", meta.country_code());
                let checked = rules.check(&digits);
                assert_eq!(
                    (checked.verdict, fast_canonical(&digits, checked)),
                    reference::checked(&digits),
                    "+{digits} ({})",
                    meta.id()
                );
            }
        }
    }
}
