//! Firmware version comparison.
//!
//! Dell's `vendorVersion` comes in many shapes (fact sheet §4.2): dotted
//! numerics with different zero padding (`22.00.6` vs `22.0.9`), dash
//! builds (`20.13.2-0006`), letter revisions (`A00`, `4301A89`, `MA8F`),
//! `v.` prefixes (`v.0056`). The rules here:
//!
//! * a leading `v.`/`v` before a digit is dropped;
//! * a version is split into runs of digits and runs of ASCII letters;
//!   everything else (`.`, `-`, `_`, spaces) only separates runs;
//! * runs are compared pairwise from the left: digits numerically (any
//!   length, leading zeros ignored), letters case-insensitively;
//! * two letter runs that differ make the pair incomparable when they are
//!   the first run (a different firmware family, `DN02` vs `OSC_1.1`) or
//!   of different lengths; otherwise the alphabet decides (`MA8F` < `MA8G`);
//! * a digit run against a letter run is incomparable (`4301A12` vs `4301.13`);
//! * when one side runs out, missing digit runs count as zero (`2.6` = `2.6.0`)
//!   and a remaining letter run makes the pair incomparable (`1.0` vs `1.0a`).
//!
//! Incomparable is a result, not an error: callers refuse to act on it
//! instead of guessing (OME treats such pairs as downgrades; omsdk crashes).
//! Comparison allocates nothing: compliance compares millions of pairs.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// How a candidate version relates to the installed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionOrdering {
    /// The candidate is older: installing it is a downgrade.
    Older,
    /// The same version (possibly spelled differently: `22.00.6` = `22.0.6`).
    Same,
    /// The candidate is newer: an upgrade.
    Newer,
    /// The two cannot be compared safely.
    Incomparable,
}

#[derive(Clone, Copy, Debug)]
enum Tok<'a> {
    /// Digits with leading zeros removed (`""` is zero).
    Num(&'a str),
    /// ASCII letters.
    Alpha(&'a str),
}

struct Tokens<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Tokens<'a> {
    fn new(v: &'a str) -> Self {
        let v = v.trim();
        // A leading `v` / `v.` before the number (`v1.2`, `V.2.0`) is not a token.
        let v = match v.strip_prefix(['v', 'V']) {
            Some(rest) => match rest.strip_prefix('.') {
                Some(after_dot) => after_dot,
                None if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
                None => v,
            },
            None => v,
        };
        Tokens { s: v, i: 0 }
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Tok<'a>;
    fn next(&mut self) -> Option<Tok<'a>> {
        // Separators (anything not an ASCII letter or digit) are skipped.
        let rest = self.s.get(self.i..)?;
        let Some(skip) = rest.find(|c: char| c.is_ascii_alphanumeric()) else {
            self.i = self.s.len();
            return None;
        };
        let rest = rest.get(skip..)?;
        let numeric = rest.starts_with(|c: char| c.is_ascii_digit());
        let len = rest
            .find(|c: char| {
                if numeric {
                    !c.is_ascii_digit()
                } else {
                    !c.is_ascii_alphabetic()
                }
            })
            .unwrap_or(rest.len());
        let tok = rest.get(..len)?;
        self.i += skip + len;
        Some(if numeric {
            Tok::Num(tok.trim_start_matches('0'))
        } else {
            Tok::Alpha(tok)
        })
    }
}

fn cmp_num(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn cmp_alpha(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

fn from_ordering(o: Ordering) -> VersionOrdering {
    match o {
        Ordering::Less => VersionOrdering::Newer,
        Ordering::Equal => VersionOrdering::Same,
        Ordering::Greater => VersionOrdering::Older,
    }
}

/// Compares a `candidate` version with the `installed` one.
pub fn compare_versions(installed: &str, candidate: &str) -> VersionOrdering {
    let mut a = Tokens::new(installed);
    let mut b = Tokens::new(candidate);
    let mut index = 0usize;
    loop {
        match (a.next(), b.next()) {
            (None, None) => {
                return if index == 0 {
                    // Both empty (or only separators): nothing to compare.
                    VersionOrdering::Incomparable
                } else {
                    VersionOrdering::Same
                };
            }
            (Some(x), Some(y)) => match (x, y) {
                (Tok::Num(p), Tok::Num(q)) => {
                    let o = cmp_num(p, q);
                    if o != Ordering::Equal {
                        return from_ordering(o);
                    }
                }
                (Tok::Alpha(p), Tok::Alpha(q)) => {
                    let o = cmp_alpha(p, q);
                    if o != Ordering::Equal {
                        if index == 0 || p.len() != q.len() {
                            return VersionOrdering::Incomparable;
                        }
                        return from_ordering(o);
                    }
                }
                _ => return VersionOrdering::Incomparable,
            },
            (Some(x), None) => {
                if index == 0 {
                    return VersionOrdering::Incomparable;
                }
                // Installed has more runs: the candidate is older, the same, or incomparable.
                return rest(std::iter::once(x).chain(a), VersionOrdering::Older);
            }
            (None, Some(y)) => {
                if index == 0 {
                    return VersionOrdering::Incomparable;
                }
                return rest(std::iter::once(y).chain(b), VersionOrdering::Newer);
            }
        }
        index += 1;
    }
}

/// The longer side's remaining runs: zeros only → same; digits → `longer`;
/// any letters → incomparable.
fn rest<'a>(mut it: impl Iterator<Item = Tok<'a>>, longer: VersionOrdering) -> VersionOrdering {
    let mut result = VersionOrdering::Same;
    for t in it.by_ref() {
        match t {
            Tok::Num("") => {}
            Tok::Num(_) => result = longer,
            Tok::Alpha(_) => return VersionOrdering::Incomparable,
        }
    }
    result
}

/// Compares BIOS versions: as [`compare_versions`], plus libsmbios's rule
/// for Dell's two BIOS numbering schemes (fact sheet §4.1,
/// `compareBiosVersions`): a dotted version (`2.6.0`, 12G and later) is
/// newer than an old-style revision without a dot (`A05`).
pub fn compare_bios_versions(installed: &str, candidate: &str) -> VersionOrdering {
    let old_style = |v: &str| {
        let v = v.trim();
        match v.as_bytes().split_first() {
            Some((first, rest)) => {
                !rest.is_empty()
                    && first.is_ascii_alphabetic()
                    && rest.iter().all(u8::is_ascii_digit)
            }
            None => false,
        }
    };
    let dotted = |v: &str| {
        let v = v.trim();
        v.contains('.') && v.bytes().all(|c| c.is_ascii_digit() || c == b'.')
    };
    if old_style(installed) && dotted(candidate) {
        VersionOrdering::Newer
    } else if dotted(installed) && old_style(candidate) {
        VersionOrdering::Older
    } else {
        compare_versions(installed, candidate)
    }
}

/// Compares versions of a component of `kind` (BIOS has its own rule).
pub fn compare_for_kind(
    kind: firmflow_core::model::ComponentKind,
    installed: &str,
    candidate: &str,
) -> VersionOrdering {
    if kind == firmflow_core::model::ComponentKind::Bios {
        compare_bios_versions(installed, candidate)
    } else {
        compare_versions(installed, candidate)
    }
}

/// Whether two version strings name the same version.
pub fn same_version(a: &str, b: &str) -> bool {
    compare_versions(a, b) == VersionOrdering::Same
}

#[cfg(test)]
mod tests {
    use super::VersionOrdering::*;
    use super::*;

    #[track_caller]
    fn check(installed: &str, candidate: &str, want: VersionOrdering) {
        assert_eq!(
            compare_versions(installed, candidate),
            want,
            "{installed} -> {candidate}"
        );
        // Antisymmetry: swapping the sides swaps newer and older.
        let back = match want {
            Newer => Older,
            Older => Newer,
            other => other,
        };
        assert_eq!(
            compare_versions(candidate, installed),
            back,
            "{candidate} -> {installed}"
        );
    }

    #[test]
    fn dotted_numeric_is_numeric_not_lexical() {
        check("1.9.2", "1.10.2", Newer);
        check("2.6.0", "2.6.0", Same);
        check("2.6", "2.6.0", Same);
        check("2.6", "2.6.1", Newer);
        check("6.10.30.20", "6.10.80.00", Newer);
        check("2.00.200.201708033700", "2.00.200.201708033701", Newer);
        check("00.25.47.00.06.22.03.00", "00.25.47.00.06.22.03.01", Newer);
    }

    #[test]
    fn padding_differences_are_the_same_version() {
        check("22.00.6", "22.0.6", Same);
        check("22.00.6", "22.0.9", Newer);
        check("08.07.26", "8.7.26", Same);
        check("21.5.9", "22.0.9", Newer);
    }

    #[test]
    fn dash_builds() {
        check("20.13.2-0006", "20.13.2-0010", Newer);
        check("20.13.2-0006", "20.13.2.6", Same);
        check("12.10.7-0001", "6.3.3-0002", Older);
        check("20.13.2", "20.13.2-0006", Newer);
    }

    #[test]
    fn letter_revisions() {
        check("A00", "A01", Newer);
        check("A06", "A00", Older);
        check("4301A79", "4301A89", Newer);
        check("4301A12", "4301A12", Same);
        check("MA8F", "MA9F", Newer);
        check("MA8F", "MA8G", Newer);
        check("FJ23", "FJ34", Newer);
        check("DSF4", "DSF2", Older);
        check("dsf4", "DSF4", Same);
        check("DN02", "DN03", Newer);
        check("B1491508", "B1491510", Newer);
    }

    #[test]
    fn v_prefixes() {
        check("v.0056", "0056", Same);
        check("v.0056", "v.0057", Newer);
        check("V2.1", "2.2", Newer);
    }

    #[test]
    fn non_ascii_separators_split_tokens_like_ascii_ones() {
        check("1.2\u{2013}3", "1.2-3", Same);
        check("1.2\u{b7}3", "1.2.4", Newer);
        check("é2.0", "2.0", Same);
    }

    #[test]
    fn incomparable_instead_of_a_guess() {
        // Diagnostics vendorVersion vs its dellVersion.
        check("4301A12", "4301.13", Incomparable);
        // OME calls this a DOWNGRADE.
        check("OSC_1.1", "4.0", Incomparable);
        // Different drive firmware families.
        check("MA8F", "MS0B", Incomparable);
        check("1.0", "1.0a", Incomparable);
        check("", "1.0", Incomparable);
        check("..", "..", Incomparable);
        check("A00", "AB00", Incomparable);
    }

    #[test]
    fn bios_dotted_beats_old_style_revisions() {
        assert_eq!(compare_bios_versions("A05", "1.2.0"), Newer);
        assert_eq!(compare_bios_versions("2.6.0", "A12"), Older);
        assert_eq!(compare_bios_versions("A05", "A07"), Newer);
        assert_eq!(compare_bios_versions("2.4.3", "2.5.5"), Newer);
        // Only BIOS gets the rule; elsewhere the pair stays incomparable.
        assert_eq!(compare_versions("A05", "1.2.0"), Incomparable);
        use firmflow_core::model::ComponentKind;
        assert_eq!(compare_for_kind(ComponentKind::Bios, "A05", "1.2.0"), Newer);
        assert_eq!(
            compare_for_kind(ComponentKind::Nic, "A05", "1.2.0"),
            Incomparable
        );
    }

    #[test]
    fn ids_longer_than_u64_compare_by_digits() {
        check("99999999999999999999999", "100000000000000000000000", Newer);
    }

    #[test]
    fn packagelist_offers_are_upgrades() {
        // Installed -> offered pairs from a real iDRAC PackageList (fixture
        // idrac-getrepobasedupdatelist-packagelist.xml).
        for (inst, offer) in [
            ("20.35.10.12", "20.36.10.10"),
            ("1.9.2", "1.10.2"),
            ("21.5.9", "22.0.9"),
            ("4301A79", "4301A89"),
            ("6.10.30.20", "6.10.80.00"),
        ] {
            check(inst, offer, Newer);
        }
    }
}
