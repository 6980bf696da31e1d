//! E.164 number checks: the verdict libphonenumber's metadata gives a number,
//! computed fast enough to check a million rows a second.
//!
//! The reference is the `phonenumber` crate: `parse(None, "+...")` followed by
//! `is_valid`, with the possible lengths of the region that crate picks for
//! the number (see [`reference`]). Calling it per row costs several
//! microseconds, and more under threads, because every regular expression the
//! crate uses is looked up by its source text in one process-wide
//! `Mutex<LruCache>` that holds 100 entries, while the metadata has thousands
//! of patterns: the cache thrashes (patterns are recompiled) and every thread
//! queues on the same mutex.
//!
//! [`PhoneRules`] compiles the same patterns, from the same metadata, once,
//! into plain `regex::Regex` values that each worker thread owns, and replays
//! the crate's own decision path for input of the form `+digits` step by step
//! (country code, region choice, national prefix handling, length, type).
//! `tests/phone_equivalence.rs` proves the verdicts equal the reference on a
//! large random sample.

pub mod normalize;
pub mod reference;

use phonenumber::metadata::{Descriptor, Metadata, DATABASE};
use regex::{Regex, RegexBuilder};
use regex_automata::meta;
use regex_automata::{Anchored, Input, PatternID, PatternSet};
use std::cell::{OnceCell, RefCell};
use std::sync::OnceLock;

/// What the metadata says of a number that is `+` and digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Possible and valid.
    Valid,
    /// Of a possible length, but no number type of its region matches.
    NotValid,
    /// Not a possible length for its country (or too short or long to parse).
    BadLength,
    /// No country has this calling code.
    UnknownCountryCode,
}

/// The verdict with what was learnt on the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    pub verdict: Verdict,
    /// The country calling code, when one was recognised.
    pub country_code: Option<u16>,
    /// The digits of libphonenumber's canonical E.164 form when they differ
    /// from the input's (a trunk `0` after the country code: `+4402079460116`
    /// is the number `+442079460116`). Only for numbers of a possible length.
    pub canonical: Option<u64>,
}

impl Checked {
    /// The canonical digits: [`Checked::canonical`], else the input's.
    pub fn canonical_or(&self, digits: u64) -> u64 {
        self.canonical.unwrap_or(digits)
    }
}

/// Checks numbers for one thread. Each country code's rules are compiled
/// once per process, on first use, and copied into each `PhoneRules` on its
/// first use there: the copies share the compiled programs but not their
/// matching caches, so threads never wait for each other.
pub struct PhoneRules {
    local: Vec<OnceCell<Option<CodeRules>>>,
    /// Which of a region's patterns matched, reused between searches.
    found: RefCell<PatternSet>,
}

/// A region has at most eleven patterns (general and ten number types).
const MAX_PATTERNS: usize = 16;

impl Default for PhoneRules {
    fn default() -> Self {
        PhoneRules::new()
    }
}

impl Clone for PhoneRules {
    /// A fresh set for another thread.
    fn clone(&self) -> Self {
        PhoneRules::new()
    }
}

/// A code's rules as compiled once per process.
struct SharedCode {
    regions: Vec<SharedRegion>,
    single: Single,
}

/// A code's rules in one thread: lazily made copies of the shared engines.
struct CodeRules {
    /// Regions in the crate's order (main country first).
    regions: Vec<Region>,
    single: Single,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Single {
    /// Several regions share the code: the region is chosen per number.
    No,
    /// One region (or the non-geographic entity "001").
    Yes,
    /// One region whose id the crate cannot parse: no metadata.
    Unresolvable,
}

/// One region's data and its engines, each compiled on first use (a code
/// like +1 has 25 regions, most never consulted for a given sheet).
struct SharedRegion {
    /// The general pattern (pattern 0) and every number type's pattern.
    patterns: Vec<String>,
    types: OnceLock<meta::Regex>,
    leading_source: Option<String>,
    leading_digits: OnceLock<Option<Regex>>,
    parsing_source: Option<(String, Option<String>)>,
    parsing: OnceLock<Option<Parsing>>,
    /// Each pattern's possible lengths (empty: any length).
    lengths: Vec<Vec<u16>>,
    national_prefix: Option<String>,
    /// The general description's possible lengths and local-only lengths
    /// as the crate stores them (it leaves them empty; the crate's length
    /// test still reads them, so the replay does too).
    general_possible: Vec<u16>,
    general_local: Vec<u16>,
    /// Possible lengths of the region: the union over its number types,
    /// which is how libphonenumber defines `isPossibleNumber`.
    possible: Vec<u16>,
}

/// A region in one thread.
struct Region {
    shared: &'static SharedRegion,
    /// All the region's patterns, matched together: one anchored pass
    /// reports each pattern that matches from the start, which is the
    /// crate's per-descriptor `find(..).start() == 0`.
    types: OnceCell<meta::Regex>,
    leading_digits: OnceCell<Option<Regex>>,
    parsing: OnceCell<Option<Parsing>>,
}

impl Region {
    fn new(shared: &'static SharedRegion) -> Region {
        Region {
            shared,
            types: OnceCell::new(),
            leading_digits: OnceCell::new(),
            parsing: OnceCell::new(),
        }
    }

    fn types(&self) -> &meta::Regex {
        self.types.get_or_init(|| {
            self.shared
                .types
                .get_or_init(|| {
                    meta::Builder::new()
                        .configure(
                            meta::Config::new()
                                .match_kind(regex_automata::MatchKind::All)
                                .dfa(false)
                                .onepass(false)
                                .backtrack(false),
                        )
                        .syntax(regex_automata::util::syntax::Config::new().ignore_whitespace(true))
                        .build_many(&self.shared.patterns)
                        .expect("libphonenumber metadata patterns compile")
                })
                .clone()
        })
    }

    fn leading_digits(&self) -> Option<&Regex> {
        self.leading_digits
            .get_or_init(|| {
                self.shared
                    .leading_digits
                    .get_or_init(|| {
                        self.shared
                            .leading_source
                            .as_deref()
                            .map(|s| compile(s, true))
                    })
                    .clone()
            })
            .as_ref()
    }

    fn parsing(&self) -> Option<&Parsing> {
        self.parsing
            .get_or_init(|| {
                self.shared
                    .parsing
                    .get_or_init(|| {
                        self.shared
                            .parsing_source
                            .as_ref()
                            .map(|(source, transform)| Parsing {
                                anchored: compile(source, true),
                                pattern: compile(source, false),
                                transform: transform.clone(),
                            })
                    })
                    .clone()
            })
            .as_ref()
    }
}

#[derive(Clone)]
struct Parsing {
    /// The national prefix for parsing anchored at the start: a cheap
    /// first test, since the crate only acts on a match at position 0.
    anchored: Regex,
    /// As the crate uses it, for captures and replacement.
    pattern: Regex,
    transform: Option<String>,
}

/// What the regions of a code say of one national number.
#[derive(Clone, Copy)]
struct Classified {
    region: Option<usize>,
    /// Whether the number has a type in that region, when it was learnt.
    has_type: Option<bool>,
}

fn known_codes() -> &'static [bool; 1000] {
    static KNOWN: OnceLock<[bool; 1000]> = OnceLock::new();
    KNOWN.get_or_init(|| {
        // Not `DATABASE.iter()`: it walks regions by id, and every
        // non-geographic entity (+800, +808, +870, ...) has the id "001".
        let mut known = [false; 1000];
        for (code, slot) in known.iter_mut().enumerate() {
            *slot = DATABASE.by_code(&(code as u16)).is_some();
        }
        known
    })
}

fn shared_code(code: u16) -> Option<&'static SharedCode> {
    static SHARED: OnceLock<Vec<OnceLock<Option<SharedCode>>>> = OnceLock::new();
    SHARED.get_or_init(|| (0..1000).map(|_| OnceLock::new()).collect())[code as usize]
        .get_or_init(|| compile_code(code))
        .as_ref()
}

fn compile(source: &str, anchored: bool) -> Regex {
    // The crate builds every pattern with ignore_whitespace.
    let text = if anchored {
        format!("^(?:{source})")
    } else {
        source.to_owned()
    };
    RegexBuilder::new(&text)
        .ignore_whitespace(true)
        .build()
        .expect("libphonenumber metadata patterns compile")
}

fn compile_code(code: u16) -> Option<SharedCode> {
    let metas = DATABASE.by_code(&code)?;
    let single = if metas.len() == 1 {
        let id = metas[0].id();
        if id == "001" || id.parse::<phonenumber::country::Id>().is_ok() {
            Single::Yes
        } else {
            Single::Unresolvable
        }
    } else {
        Single::No
    };
    let regions = metas.iter().map(|meta| shared_region(meta)).collect();
    Some(SharedCode { regions, single })
}

fn shared_region(meta: &Metadata) -> SharedRegion {
    let d = meta.descriptors();
    let descriptors: Vec<&Descriptor> = [
        Some(d.general()),
        d.premium_rate(),
        d.toll_free(),
        d.shared_cost(),
        d.voip(),
        d.personal_number(),
        d.pager(),
        d.uan(),
        d.voicemail(),
        d.fixed_line(),
        d.mobile(),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(descriptors.len() <= MAX_PATTERNS);
    SharedRegion {
        patterns: descriptors
            .iter()
            .map(|d| d.national_number().as_str().to_owned())
            .collect(),
        types: OnceLock::new(),
        lengths: descriptors
            .iter()
            .map(|d| d.possible_length().to_vec())
            .collect(),
        leading_source: meta.leading_digits().map(|r| r.as_str().to_owned()),
        leading_digits: OnceLock::new(),
        parsing_source: meta.national_prefix_for_parsing().map(|r| {
            (
                r.as_str().to_owned(),
                meta.national_prefix_transform_rule().map(str::to_owned),
            )
        }),
        parsing: OnceLock::new(),
        national_prefix: meta.national_prefix().map(str::to_owned),
        general_possible: d.general().possible_length().to_vec(),
        general_local: d.general().possible_local_length().to_vec(),
        possible: possible_lengths(meta),
    }
}

impl PhoneRules {
    pub fn new() -> PhoneRules {
        PhoneRules {
            local: (0..1000).map(|_| OnceCell::new()).collect(),
            found: RefCell::new(PatternSet::new(MAX_PATTERNS)),
        }
    }

    fn code_rules(&self, code: u16) -> Option<&CodeRules> {
        self.local[code as usize]
            .get_or_init(|| {
                shared_code(code).map(|shared| CodeRules {
                    regions: shared.regions.iter().map(Region::new).collect(),
                    single: shared.single,
                })
            })
            .as_ref()
    }

    /// The country calling code at the start of `digits` and its length, as
    /// the crate finds it: the shortest prefix of one to three digits that is
    /// a known code.
    pub fn country_code(&self, digits: &str) -> Option<(u16, usize)> {
        if digits.starts_with('0') {
            return None;
        }
        let known = known_codes();
        (1..=3.min(digits.len())).find_map(|len| {
            let code: u16 = digits[..len].parse().ok()?;
            known[code as usize].then_some((code, len))
        })
    }

    /// The verdict for `+` followed by `digits` (ASCII digits only).
    pub fn check(&self, digits: &str) -> Checked {
        debug_assert!(digits.bytes().all(|b| b.is_ascii_digit()));
        let not = |verdict, country_code| Checked {
            verdict,
            country_code,
            canonical: None,
        };
        // Fewer than three digits is not a viable number for the crate.
        if digits.len() < 3 {
            return not(Verdict::BadLength, None);
        }
        let Some((code, cc_len)) = self.country_code(digits) else {
            return not(Verdict::UnknownCountryCode, None);
        };
        let rules = self.code_rules(code).expect("known code");
        let mut national: std::borrow::Cow<str> = digits[cc_len..].into();

        // The crate asks which region a national number belongs to up to
        // three times, usually for the same text: remember the last answer.
        let mut memo: Option<(String, Classified)> = None;
        let mut classify = |text: &str| -> Classified {
            match &memo {
                Some((seen, answer)) if seen == text => *answer,
                _ => {
                    let answer = self.source_for(rules, text);
                    memo = Some((text.to_owned(), answer));
                    answer
                }
            }
        };

        if let Some(region) = classify(national.trim_start_matches('0')).region {
            let region = &rules.regions[region];
            let mut potential = self.strip_national_prefix(region, &national);
            if let Some(prefix) = &region.shared.national_prefix {
                if potential.starts_with(prefix.as_str()) {
                    potential = potential[prefix.len()..].to_owned();
                }
            }
            if !region.too_short(potential.len()) {
                national = potential.into();
            }
        }
        if national.len() < 2 || national.len() > 17 {
            return not(Verdict::BadLength, Some(code));
        }
        let value = national.trim_start_matches('0');
        match value.parse::<u64>() {
            Ok(v) if v < (1 << 56) => {}
            _ => return not(Verdict::BadLength, Some(code)),
        }

        // The region for the length check is the crate's `metadata()`: the
        // region found for the number without leading zeros, else the main.
        let length_region = classify(value).region.unwrap_or(0);
        let possible = &rules.regions[length_region].shared.possible;
        if !possible.is_empty() && !possible.contains(&(national.len() as u16)) {
            return not(Verdict::BadLength, Some(code));
        }
        let valid = match classify(&national) {
            Classified {
                region: Some(region),
                has_type,
            } => has_type.unwrap_or_else(|| self.has_type(&rules.regions[region], &national)),
            Classified { region: None, .. } => false,
        };
        // The crate's E.164 form is the code, then the national number as
        // parsed (leading zeros kept): anything the parse stripped or
        // transformed makes the input's text not canonical.
        let canonical = (national != digits[cc_len..])
            .then(|| format!("{code}{national}").parse::<u64>().ok())
            .flatten();
        Checked {
            verdict: if valid {
                Verdict::Valid
            } else {
                Verdict::NotValid
            },
            country_code: Some(code),
            canonical,
        }
    }

    /// The crate's `validator::source_for`.
    fn source_for(&self, rules: &CodeRules, national: &str) -> Classified {
        let none = Classified {
            region: None,
            has_type: None,
        };
        match rules.single {
            Single::Yes => {
                return Classified {
                    region: Some(0),
                    has_type: None,
                }
            }
            Single::Unresolvable => return none,
            Single::No => {}
        }
        for (index, region) in rules.regions.iter().enumerate() {
            match region.leading_digits() {
                Some(pattern) => {
                    if pattern.is_match(national) {
                        return Classified {
                            region: Some(index),
                            has_type: None,
                        };
                    }
                }
                None => {
                    if self.has_type(region, national) {
                        return Classified {
                            region: Some(index),
                            has_type: Some(true),
                        };
                    }
                }
            }
        }
        none
    }

    /// The crate's `helper::national_number`, keeping only what changes the
    /// national number (the carrier code it extracts plays no part here).
    fn strip_national_prefix(&self, region: &Region, national: &str) -> String {
        let Some(parsing) = region.parsing() else {
            if let Some(prefix) = &region.shared.national_prefix {
                if let Some(rest) = national.strip_prefix(prefix.as_str()) {
                    return rest.to_owned();
                }
            }
            return national.to_owned();
        };
        if !parsing.anchored.is_match(national) {
            return national.to_owned();
        }
        let captures = parsing
            .pattern
            .captures(national)
            .expect("an anchored match is also a leftmost match");
        let whole = captures.get(0).expect("group 0");
        let viable = self.general_matches(region, national);
        let last = captures.get(captures.len() - 1);
        match (&parsing.transform, last) {
            (Some(transform), Some(_)) => {
                let transformed = parsing
                    .pattern
                    .replace(national, transform.as_str())
                    .into_owned();
                if viable && !self.general_matches(region, &transformed) {
                    return national.to_owned();
                }
                transformed
            }
            _ => {
                // The crate compares the general pattern against the whole
                // number again here (`national[start..]` with start 0), so it
                // always strips; replayed as is.
                if viable && !self.general_matches(region, national) {
                    return national.to_owned();
                }
                national[whole.end()..].to_owned()
            }
        }
    }

    /// Runs the region's patterns over `value`; returns (general description
    /// matches, some number type matches).
    fn match_types(&self, region: &Region, value: &str) -> (bool, bool) {
        let len = value.len() as u16;
        let mut found = self.found.borrow_mut();
        found.clear();
        region
            .types()
            .which_overlapping_matches(&Input::new(value).anchored(Anchored::Yes), &mut found);
        let lengths = &region.shared.lengths;
        let matches = |i: usize| {
            found.contains(PatternID::new_unchecked(i))
                && (lengths[i].is_empty() || lengths[i].contains(&len))
        };
        (matches(0), (1..lengths.len()).any(matches))
    }

    fn general_matches(&self, region: &Region, value: &str) -> bool {
        self.match_types(region, value).0
    }

    /// `number_type(..) != Unknown` in the crate.
    fn has_type(&self, region: &Region, value: &str) -> bool {
        let (general, typed) = self.match_types(region, value);
        general && typed
    }
}

impl Region {
    /// `validator::length(meta, number, Type::Unknown) == TooShort`.
    fn too_short(&self, len: usize) -> bool {
        let len = len as u16;
        match self.shared.general_possible.first() {
            None => false,
            Some(&min) => !self.shared.general_local.contains(&len) && len < min,
        }
    }
}

/// The lengths a number of `meta`'s region may have: the union of the
/// possible lengths of its number types (local-only lengths excluded, since
/// E.164 numbers are never dialled locally).
pub fn possible_lengths(meta: &Metadata) -> Vec<u16> {
    let d = meta.descriptors();
    let mut lengths: Vec<u16> = [
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
    .flat_map(|desc| desc.possible_length().iter().copied())
    .collect();
    lengths.sort_unstable();
    lengths.dedup();
    lengths
}

/// True for the North American toll-free codes (+1 800, 833, 844, 855, 866,
/// 877, 888), which need a displayed country code.
pub fn is_north_american_toll_free(e164: &str) -> bool {
    let Some(rest) = e164.strip_prefix("+1") else {
        return false;
    };
    matches!(
        rest.get(..3),
        Some("800" | "833" | "844" | "855" | "866" | "877" | "888")
    ) && rest.len() == 10
}

/// True when `code` is a two-letter region the metadata knows (for example a
/// displayed country code).
pub fn is_known_region(code: &str) -> bool {
    code.len() == 2
        && code.bytes().all(|b| b.is_ascii_uppercase())
        && code.parse::<phonenumber::country::Id>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(number: &str) -> Verdict {
        PhoneRules::new()
            .check(number.strip_prefix('+').unwrap())
            .verdict
    }

    #[test]
    fn well_known_numbers() {
        assert_eq!(verdict("+16502530000"), Verdict::Valid);
        assert_eq!(verdict("+390236618300"), Verdict::Valid);
        assert_eq!(verdict("+447912345678"), Verdict::Valid);
        assert_eq!(verdict("+80012345678"), Verdict::Valid);
        assert_eq!(verdict("+4479123"), Verdict::BadLength);
        assert_eq!(verdict("+44791234567"), Verdict::NotValid);
        assert_eq!(verdict("+4479123456789"), Verdict::BadLength);
        assert_eq!(verdict("+441632960001"), Verdict::NotValid);
        assert_eq!(verdict("+99912345"), Verdict::UnknownCountryCode);
        assert_eq!(verdict("+12"), Verdict::BadLength);
    }

    #[test]
    fn toll_free_and_regions() {
        assert!(is_north_american_toll_free("+18005550100"));
        assert!(!is_north_american_toll_free("+14255550100"));
        assert!(is_known_region("US"));
        assert!(!is_known_region("us"));
        assert!(!is_known_region("XX"));
    }
}
