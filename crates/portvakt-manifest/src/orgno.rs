//! Norwegian organization numbers.

/// Whether `s` is exactly nine ASCII digits: the NAIS rule `^\d{9}$`.
///
/// NAIS validates with Go's RE2, where `\d` is ASCII only, so other Unicode digits (Arabic-Indic,
/// full-width, ...) are refused here too.
pub fn is_nine_digits(s: &str) -> bool {
    s.len() == 9 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The check digit the first eight digits call for, or `None` when there is none
/// (remainder 10: no organization number starts with those eight digits).
fn expected_check_digit(first_eight: &[u8]) -> Option<u8> {
    const WEIGHTS: [u32; 8] = [3, 2, 7, 6, 5, 4, 3, 2];
    let sum: u32 = first_eight
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        c => u8::try_from(c).ok(),
    }
}

/// Whether `orgno` is a well-formed Norwegian organization number: nine ASCII digits whose last
/// digit is the modulus-11 check digit of the first eight (weights 3, 2, 7, 6, 5, 4, 3, 2;
/// check = 11 - sum mod 11, where 11 means 0 and 10 means no valid number).
///
/// NAIS only checks for nine digits; a mistyped digit then grants a stranger, or nobody. The
/// check digit catches every single-digit typo and most swaps of neighbouring digits.
///
/// ```
/// use portvakt_manifest::orgno_check_digit_ok;
/// assert!(orgno_check_digit_ok("889640782")); // NAV
/// assert!(!orgno_check_digit_ok("123456789"));
/// assert!(!orgno_check_digit_ok("88964078")); // too short
/// ```
pub fn orgno_check_digit_ok(orgno: &str) -> bool {
    if !is_nine_digits(orgno) {
        return false;
    }
    let bytes = orgno.as_bytes();
    expected_check_digit(&bytes[..8]) == Some(bytes[8] - b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_numbers() {
        // NAV, Skatteetaten, Brønnøysundregistrene, Digdir.
        for ok in ["889640782", "974761076", "974760673", "991825827"] {
            assert!(orgno_check_digit_ok(ok), "{ok}");
        }
        // The NAIS guide's example number: its check digit would be 5.
        assert!(!orgno_check_digit_ok("123456789"));
        assert!(orgno_check_digit_ok("123456785"));
    }

    #[test]
    fn remainder_eleven_gives_zero() {
        // 00000000: sum 0, 11 - 0 = 11 -> 0.
        assert!(orgno_check_digit_ok("000000000"));
        assert!(!orgno_check_digit_ok("000000001"));
    }

    #[test]
    fn remainder_ten_is_never_valid() {
        // 10000000: sum 3, 11 - 3 = 8 (sanity); 00000001: sum 2, 11 - 2 = 9;
        // 00000010: sum 3 -> 8; find a prefix with sum % 11 == 1: 00000500: 5*4=20 % 11 = 9;
        // 01000000: 2 -> 9; 00100000: 7 -> 4; 00000003: 6 % 11 = 6 -> 5.
        // 00020000: 6*2 = 12 % 11 = 1 -> 10: no check digit exists.
        assert_eq!(expected_check_digit(b"00020000"), None);
        for last in 0..=9 {
            assert!(!orgno_check_digit_ok(&format!("00020000{last}")));
        }
    }

    #[test]
    fn every_single_digit_typo_of_nav_is_caught() {
        let nav = b"889640782";
        for i in 0..9 {
            for d in b'0'..=b'9' {
                if d == nav[i] {
                    continue;
                }
                let mut typo = *nav;
                typo[i] = d;
                let typo = String::from_utf8(typo.to_vec()).expect("ascii");
                assert!(!orgno_check_digit_ok(&typo), "{typo}");
            }
        }
    }

    #[test]
    fn shape() {
        assert!(is_nine_digits("123456789"));
        for bad in [
            "",
            "12345678",
            "1234567890",
            "12345678a",
            " 12345678",
            "١٢٣٤٥٦٧٨٩",
        ] {
            assert!(!is_nine_digits(bad), "{bad:?}");
            assert!(!orgno_check_digit_ok(bad), "{bad:?}");
        }
    }
}
