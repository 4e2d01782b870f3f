//! Docs stored packed: the tables a billing run writes by the thousand per batch
//! (subscriptions, invoices, invoice items, ledger entries, events) keep their JSON docs
//! LZ4-compressed against a dictionary of the keys and values such docs repeat. SQLite's
//! one writer spends most of a billing run copying and syncing pages, and at 100,000
//! renewals it wrote about 20 KiB per renewal: a packed doc takes under 40% of its JSON's
//! bytes.
//!
//! A packed doc is a tag naming its dictionary ([`TAG_LZ4_V1`] or one of [`KINDS`]), the
//! JSON's length (`u32`, little-endian), then the LZ4 block, made by `lz4.rs` (before
//! by lz4_flex: both make plain LZ4 blocks) and read by lz4_flex. A doc stored before
//! packing (or in a table that is not packed, or too large to pack) is its JSON, which
//! starts with `{`: all read back the same way.

use crate::lz4;
use kopek_app::StoreError;

/// The first byte of a doc packed with LZ4 against [`DICTIONARY_V1`]. A changed
/// dictionary gets a new tag: docs already packed must still unpack.
const TAG_LZ4_V1: u8 = 1;

/// Larger packed docs are refused on reading rather than allocated, and larger docs are
/// stored as their JSON: no record comes close.
const DOC_BYTES_MAX: usize = 64 * 1024 * 1024;

/// What the docs of the packed tables have in common: their keys in the order the codec
/// writes them, and the values many docs share. Matches against it cost LZ4 about three
/// bytes each. Frozen: docs packed against it are only readable with it.
const DICTIONARY_V1: &str = r#"{"id":"ii_","livemode":false,"created":,"customer":"cus_","amount":,"currency":"usd","description":null,"invoice":null,"period":{"start":,"end":},"price":"price_","quantity":1,"subscription":null,"discountable":true,"proration":false,"metadata":{},"deleted":false,"test_clock":null}
{"id":"le_","livemode":false,"created":,"object_id":"in_","description":"invoice.finalized","lines":[{"kind":"receivable","customer":"cus_","currency":"usd","amount":},{"kind":"revenue","currency":"usd","amount":-},{"kind":"tax_payable","currency":"usd","amount":-}]}
{"object":{"subscription":{"id":"sub_","livemode":false,"created":,"customer":"cus_","status":"active","currency":"usd","interval":"month","interval_count":1,"items":[{"id":"si_","created":,"price":"price_","quantity":1}],"billing_cycle_anchor":,"start_date":,"current_period_start":,"current_period_end":,"collection_method":"charge_automatically","days_until_due":30,"cancel_at_period_end":false,"latest_invoice":"in_","next_action_at":,"renewal_notice_days":7,"trial_start":,"trial_end":,"canceled_at":,"ended_at":,"metadata":{}}},"previous":{"subscription":{"current_period_start":,"current_period_end":,"latest_invoice":"in_","status":"trialing"}}}
{"object":{"invoice":{"id":"in_","livemode":false,"created":,"customer":"cus_","subscription":"sub_","status":"draft","number":null,"currency":"usd","collection_method":"charge_automatically","billing_reason":"subscription_cycle","period_start":,"period_end":,"lines":[{"id":"il_","amount":,"description":"1 × ","period_start":,"period_end":,"price":"price_","quantity":1,"subscription":"sub_","subscription_item":"si_","product":"prod_","proration":false}],"subtotal":,"total":,"amount_due":,"amount_paid":0,"amount_remaining":,"starting_balance":0,"ending_balance":0,"auto_advance":true,"due_date":,"days_until_due":30,"finalized_at":,"paid_at":,"voided_at":,"attempt_count":0,"next_action_at":,"automatically_finalizes_at":,"metadata":{}}}}
{"object":{"invoice":{"id":"in_","livemode":false,"created":,"customer":"cus_","subscription":"sub_","status":"open","number":"-0001","currency":"usd","collection_method":"send_invoice","billing_reason":"subscription_create","period_start":,"period_end":,"lines":[{"id":"il_","amount":,"description":"1 × ","period_start":,"period_end":,"price":"price_","quantity":1,"subscription":"sub_","subscription_item":"si_","product":"prod_"}],"subtotal":,"total":,"amount_due":,"amount_paid":0,"amount_remaining":,"ending_balance":0,"auto_advance":true,"due_date":,"days_until_due":30,"finalized_at":,"attempt_count":0,"next_action_at":}}}"#;

/// Docs of one kind are packed against only their own lines of [`DICTIONARY_V1`], told
/// by how their JSON starts: a doc matches only its kind's lines (and when lz4_flex
/// packed, hashing the whole dictionary before each doc, the other lines were nearly a
/// third of packing's instructions). Each is `(tag, how its docs start, its dictionary)`;
/// a doc of no kind is packed against the whole dictionary, as [`TAG_LZ4_V1`]. Frozen as
/// it is.
const KINDS: [(u8, &[&str], &[u8]); 4] = [
    (2, &[r#"{"id":"ii_"#], dictionary_lines(0, 1)),
    (3, &[r#"{"id":"le_"#], dictionary_lines(1, 2)),
    (
        4,
        &[r#"{"id":"sub_"#, r#"{"object":{"subscription""#],
        dictionary_lines(2, 3),
    ),
    (
        5,
        &[r#"{"id":"in_"#, r#"{"object":{"invoice""#],
        dictionary_lines(3, 5),
    ),
];

/// Lines `from` to `to` (not included) of [`DICTIONARY_V1`].
const fn dictionary_lines(from: usize, to: usize) -> &'static [u8] {
    let bytes = DICTIONARY_V1.as_bytes();
    let (mut line, mut start, mut at) = (0, 0, 0);
    while at < bytes.len() {
        if bytes[at] == b'\n' {
            line += 1;
            if line == from {
                start = at + 1;
            }
            if line == to {
                return bytes.split_at(at).0.split_at(start).1;
            }
        }
        at += 1;
    }
    bytes.split_at(start).1
}

/// The tag `json` is packed with.
fn tag_for(json: &str) -> u8 {
    KINDS
        .iter()
        .find(|(_, starts, _)| starts.iter().any(|start| json.starts_with(start)))
        .map_or(TAG_LZ4_V1, |(tag, _, _)| *tag)
}

/// The dictionary of docs packed with `tag`.
fn dictionary_of(tag: u8) -> Option<&'static [u8]> {
    match tag {
        TAG_LZ4_V1 => Some(DICTIONARY_V1.as_bytes()),
        _ => KINDS
            .iter()
            .find(|(kind, _, _)| *kind == tag)
            .map(|(_, _, dictionary)| *dictionary),
    }
}

/// Each tag's dictionary, hashed for packing once.
static PACKING_DICTIONARIES: std::sync::LazyLock<Vec<(u8, lz4::Dictionary)>> =
    std::sync::LazyLock::new(|| {
        std::iter::once(TAG_LZ4_V1)
            .chain(KINDS.iter().map(|(tag, _, _)| *tag))
            .map(|tag| {
                let bytes = dictionary_of(tag).expect("each tag has a dictionary");
                (tag, lz4::Dictionary::new(bytes))
            })
            .collect()
    });

/// `json` packed.
pub(crate) fn pack(json: &str) -> Vec<u8> {
    thread_local! {
        // LZ4 writes into a buffer that grows to the block's size; each thread reuses
        // one and the packed doc is copied out at its own size.
        static BLOCK: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    const HEADER: usize = 5;
    if json.len() > DOC_BYTES_MAX {
        return json.as_bytes().to_vec();
    }
    let tag = tag_for(json);
    let (_, dictionary) = PACKING_DICTIONARIES
        .iter()
        .find(|(kind, _)| *kind == tag)
        .expect("each tag has a dictionary");
    BLOCK.with_borrow_mut(|block| {
        block.clear();
        lz4::compress(json.as_bytes(), dictionary, block);
        let mut packed = Vec::with_capacity(HEADER + block.len());
        packed.push(tag);
        packed.extend_from_slice(&(json.len() as u32).to_le_bytes());
        packed.extend_from_slice(block);
        if block.capacity() > BLOCK_KEPT_MAX {
            *block = Vec::new();
        }
        packed
    })
}

/// Buffers a thread keeps for packing are at most this large; larger docs are rare.
const BLOCK_KEPT_MAX: usize = 64 * 1024;

/// The JSON of a stored doc, packed or not.
pub(crate) fn unpack(stored: &[u8]) -> Result<String, StoreError> {
    let corrupt = |why: &str| StoreError::Internal(format!("a stored doc is corrupt: {why}"));
    let json = match stored.first() {
        Some(b'{') => stored.to_vec(),
        Some(&tag) => {
            let dictionary =
                dictionary_of(tag).ok_or_else(|| corrupt("its tag names no dictionary"))?;
            let size: [u8; 4] = stored
                .get(1..5)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| corrupt("its length is cut short"))?;
            let size = u32::from_le_bytes(size) as usize;
            if size > DOC_BYTES_MAX {
                return Err(corrupt("it claims to be larger than any doc"));
            }
            let json = lz4_flex::block::decompress_with_dict(&stored[5..], size, dictionary)
                .map_err(|e| corrupt(&e.to_string()))?;
            if json.len() != size {
                return Err(corrupt("it unpacks to another length than it says"));
            }
            json
        }
        None => return Err(corrupt("it is neither JSON nor packed")),
    };
    String::from_utf8(json).map_err(|_| corrupt("it is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVOICE: &str = r#"{"id":"in_08E5DBbaGDQq6xmZjQukM705","livemode":false,"created":1768467600,"customer":"cus_08E5DBbZw31WsxuzS3m74g8h","subscription":"sub_08E5DBbaFPHOwySLpWS3PAGF","status":"open","number":"T6LPOFMW-0001","currency":"usd","collection_method":"send_invoice","billing_reason":"subscription_create","period_start":1768467600,"period_end":1771146000,"lines":[{"id":"il_08E5DBbaGGs6YI7eeeGWHPeK","amount":1000,"description":"1 × Bench monthly","period_start":1768467600,"period_end":1771146000,"price":"price_08E5DBbYW4zdSbImoedPk5bx","quantity":1,"subscription":"sub_08E5DBbaFPHOwySLpWS3PAGF","subscription_item":"si_08E5DBbaFEkiEkpet3IBHV5v","product":"prod_08E5DBbYO5w2fRLkdXQ6nYpD"}],"subtotal":1000,"total":1000,"amount_due":1000,"amount_paid":0,"amount_remaining":1000,"ending_balance":0,"auto_advance":true,"due_date":1776243600,"days_until_due":90,"finalized_at":1768467600,"attempt_count":0,"next_action_at":1776243600}"#;

    #[test]
    fn packed_docs_unpack_to_their_json_and_are_much_smaller() {
        let packed = pack(INVOICE);
        assert_eq!(unpack(&packed).unwrap(), INVOICE);
        // The ids, amounts and times are the doc's own; the rest is the dictionary's.
        assert!(
            packed.len() * 5 < INVOICE.len() * 2,
            "{} bytes packed from {}",
            packed.len(),
            INVOICE.len()
        );
        // The checked updates compare stored docs byte for byte.
        assert_eq!(pack(INVOICE), packed);
        for json in [
            "{}",
            "{\"name\":\"Zoë ✓\"}",
            &"{\"x\":\"a\"}".repeat(10_000),
        ] {
            assert_eq!(unpack(&pack(json)).unwrap(), json);
        }
    }

    /// `json` packed against the whole dictionary, as kopek packed every doc before
    /// [`KINDS`].
    fn packed_v1(json: &str) -> Vec<u8> {
        let mut block = vec![0; lz4_flex::block::get_maximum_output_size(json.len())];
        let size = lz4_flex::block::compress_into_with_dict(
            json.as_bytes(),
            &mut block,
            DICTIONARY_V1.as_bytes(),
        )
        .unwrap();
        let mut packed = vec![TAG_LZ4_V1];
        packed.extend_from_slice(&(json.len() as u32).to_le_bytes());
        packed.extend_from_slice(&block[..size]);
        packed
    }

    #[test]
    fn each_kind_packs_against_its_own_lines_as_small_as_against_all() {
        let lines: Vec<&str> = DICTIONARY_V1.split('\n').collect();
        assert_eq!(lines.len(), 5);
        let kind = |tag: u8| KINDS.iter().find(|k| k.0 == tag).unwrap().2;
        assert_eq!(kind(2), lines[0].as_bytes());
        assert_eq!(kind(3), lines[1].as_bytes());
        assert_eq!(kind(4), lines[2].as_bytes());
        assert_eq!(kind(5), format!("{}\n{}", lines[3], lines[4]).as_bytes());

        let subscription = r#"{"id":"sub_08E5DBbaFPHOwySLpWS3PAGF","livemode":false,"created":1768467600,"customer":"cus_08E5DBbZw31WsxuzS3m74g8h","status":"active","currency":"usd","interval":"month","interval_count":1,"items":[{"id":"si_08E5DBbaFEkiEkpet3IBHV5v","created":1768467600,"price":"price_08E5DBbYW4zdSbImoedPk5bx","quantity":1}],"billing_cycle_anchor":1768467600,"start_date":1768467600,"current_period_start":1771146000,"current_period_end":1773565200,"collection_method":"send_invoice","days_until_due":90,"cancel_at_period_end":false,"latest_invoice":"in_08E5DBbaGDQq6xmZjQukM705","next_action_at":1773565200,"metadata":{}}"#;
        let entry = r#"{"id":"le_08E5DBbaGGs6YI7eeeGWHPeK","livemode":false,"created":1768467600,"object_id":"in_08E5DBbaGDQq6xmZjQukM705","description":"invoice.finalized","lines":[{"kind":"receivable","customer":"cus_08E5DBbZw31WsxuzS3m74g8h","currency":"usd","amount":1000},{"kind":"revenue","currency":"usd","amount":-1000}]}"#;
        let item = r#"{"id":"ii_08E5DBbaGGs6YI7eeeGWHPeK","livemode":false,"created":1768467600,"customer":"cus_08E5DBbZw31WsxuzS3m74g8h","amount":500,"currency":"usd","description":"Setup","invoice":null,"period":{"start":1768467600,"end":1768467600},"price":null,"quantity":1,"subscription":null,"discountable":true,"proration":false,"metadata":{},"deleted":false,"test_clock":null}"#;
        let customer = r#"{"id":"cus_08E5DBbZw31WsxuzS3m74g8h","livemode":false,"created":1768467600,"email":"jenny@example.com","name":"Jenny Rosen","metadata":{}}"#;
        let invoice_event = format!(r#"{{"object":{{"invoice":{INVOICE}}}}}"#);
        let subscription_event = format!(
            r#"{{"object":{{"subscription":{subscription}}},"previous":{{"subscription":{{"current_period_start":1768467600,"current_period_end":1771146000}}}}}}"#
        );
        for (json, tag) in [
            (INVOICE, 5),
            (invoice_event.as_str(), 5),
            (subscription, 4),
            (subscription_event.as_str(), 4),
            (entry, 3),
            (item, 2),
            (customer, TAG_LZ4_V1),
        ] {
            let packed = pack(json);
            assert_eq!(packed[0], tag, "{json}");
            assert_eq!(unpack(&packed).unwrap(), json);
            // Docs kopek packed before the kinds still read.
            let v1 = packed_v1(json);
            assert_eq!(unpack(&v1).unwrap(), json);
            // Nothing a kind's doc matched is lost with the other kinds' lines.
            assert!(
                packed.len() <= v1.len() + 2,
                "{} bytes, {} with all lines: {json}",
                packed.len(),
                v1.len()
            );
        }
    }

    #[test]
    fn docs_stored_as_json_read_as_they_are() {
        assert_eq!(unpack(INVOICE.as_bytes()).unwrap(), INVOICE);
        // Too large to pack: stored as its JSON, so it still reads back.
        let huge = format!("{{\"x\":\"{}\"}}", "a".repeat(DOC_BYTES_MAX));
        let stored = pack(&huge);
        assert_eq!(stored, huge.as_bytes());
        assert_eq!(unpack(&stored).unwrap(), huge);
    }

    #[test]
    fn corrupt_docs_are_errors_not_panics() {
        let packed = pack(INVOICE);
        let mut longer = packed.clone();
        longer[1..5].copy_from_slice(&(INVOICE.len() as u32 + 1).to_le_bytes());
        let mut huge = packed.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        for bad in [
            &b""[..],
            b"\x01\x10",
            &packed[..packed.len() / 2],
            &longer,
            &huge,
            b"[1,2]",
            b"\x02abc",
            b"\x06\x05\x00\x00\x00\x50hello",
        ] {
            assert!(unpack(bad).is_err(), "{bad:?} unpacked");
        }
    }
}
