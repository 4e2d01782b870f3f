//! Recognising card numbers, so that none is ever stored.

/// True when `text` holds a run of 13 to 19 digits (single spaces or dashes allowed between
/// digits, as people type them) that passes the Luhn check: it looks like a primary
/// account number. kopek refuses such input wherever free text is accepted.
pub fn contains_card_number(text: &str) -> bool {
    let mut digits: Vec<u8> = Vec::with_capacity(19);
    let mut previous_was_separator = false;
    for byte in text.bytes() {
        match byte {
            b'0'..=b'9' => {
                digits.push(byte - b'0');
                previous_was_separator = false;
            }
            b' ' | b'-' if !digits.is_empty() && !previous_was_separator => {
                previous_was_separator = true;
            }
            _ => {
                if is_card_number(&digits) {
                    return true;
                }
                digits.clear();
                previous_was_separator = false;
            }
        }
    }
    is_card_number(&digits)
}

fn is_card_number(digits: &[u8]) -> bool {
    (13..=19).contains(&digits.len()) && luhn_valid(digits)
}

/// The Luhn (mod 10) check digit test of ISO/IEC 7812-1.
fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if !i.is_multiple_of(2) {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_test_card_numbers_however_typed() {
        // Stripe's and the card networks' published test numbers.
        for text in [
            "4242424242424242",
            "4242 4242 4242 4242",
            "card: 4000-0566-5566-5556 exp 12/34",
            "378282246310005",
            "6011111111111117",
            "3056930009020004",
        ] {
            assert!(contains_card_number(text), "{text}");
        }
    }

    #[test]
    fn leaves_other_numbers_alone() {
        for text in [
            "4242424242424241",     // Luhn fails
            "424242424242",         // 12 digits
            "42424242424242424242", // 20 digits
            "+1 415 555 0100",
            "order 12345 on 2024-01-01",
            "4242  4242 4242 4242", // a double space ends the run
            "",
        ] {
            assert!(!contains_card_number(text), "{text}");
        }
    }
}
