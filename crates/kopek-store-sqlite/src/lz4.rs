//! LZ4 block compression against a fixed dictionary, for `packed.rs` (which unpacks with
//! `lz4_flex::block::decompress_with_dict`).
//!
//! lz4_flex compresses against a dictionary by allocating and zeroing a hash table and
//! hashing the whole dictionary into it, for every block. A billing run packs seven small
//! docs per renewal, and that setup cost nearly as much as the compressing (perf over a
//! run of 100,000: 4.9% of the CPU against 6.3%). Here each dictionary is hashed once,
//! into a table of its own that is then only read ([`Dictionary`]), and the block's own
//! positions go to a table each thread keeps and never clears ([`Positions`]): an entry
//! holds a position plus a base that grows with every block, so an entry left by an
//! earlier block is below the base and ignored. The output depends on the block and the
//! dictionary only, so packing a doc twice gives the same bytes, as the checked updates
//! need.
//!
//! The output is a plain LZ4 block (lz4's `doc/lz4_Block_format.md`) whose matches reach
//! into the dictionary as if it came just before the block; no match crosses from the
//! dictionary into the block.

use std::cell::RefCell;

/// The shortest match the format can express.
const MATCH_MIN: usize = 4;
/// The format's end conditions: the last five bytes are literals, and the last match
/// starts at least twelve bytes before the end.
const LAST_LITERALS: usize = 5;
const LAST_MATCH_START_MARGIN: usize = 12;
/// Offsets are 16 bits.
const DISTANCE_MAX: usize = u16::MAX as usize;
const HASH_BITS: u32 = 12;
const TABLE_SIZE: usize = 1 << HASH_BITS;
/// After this many positions in a row without a match, the search steps further
/// (lz4's `LZ4_skipTrigger`): data that does not compress is passed over quickly.
const SKIP_TRIGGER: u32 = 6;

/// The hash of four bytes (lz4's multiplicative hash of a 32-bit read).
fn hash(four: u32) -> usize {
    (four.wrapping_mul(2_654_435_761) >> (32 - HASH_BITS)) as usize
}

fn four_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

/// A dictionary and, by hash, where its four-byte strings start.
pub(crate) struct Dictionary {
    bytes: &'static [u8],
    /// For each hash, one past the last position in `bytes` whose four bytes hash to it
    /// (0: none).
    last_at: Box<[u16; TABLE_SIZE]>,
}

impl Dictionary {
    pub(crate) fn new(bytes: &'static [u8]) -> Dictionary {
        assert!(
            bytes.len() < DISTANCE_MAX,
            "a dictionary is within an offset's reach"
        );
        let mut last_at = Box::new([0; TABLE_SIZE]);
        for at in 0..bytes.len().saturating_sub(MATCH_MIN - 1) {
            last_at[hash(four_at(bytes, at))] = (at + 1) as u16;
        }
        Dictionary { bytes, last_at }
    }
}

/// By hash, the last position in the block being compressed whose four bytes hash to it,
/// as `base + position + 1`; entries not above `base` are earlier blocks'.
struct Positions {
    table: Box<[u32; TABLE_SIZE]>,
    base: u32,
    /// The base of the next block: above every entry made so far.
    next_base: u32,
}

impl Positions {
    fn new() -> Positions {
        Positions {
            table: Box::new([0; TABLE_SIZE]),
            base: 0,
            next_base: 0,
        }
    }

    /// Starts a block of `len` bytes, whose entries will be at most `base + len`.
    fn start(&mut self, len: u32) {
        if u32::MAX - self.next_base < len {
            self.table.fill(0);
            self.next_base = 0;
        }
        self.base = self.next_base;
        self.next_base = self.base + len;
    }

    /// The position of the block noted under `hash`, if one was.
    fn get(&self, hash: usize) -> Option<usize> {
        let entry = self.table[hash];
        (entry > self.base).then(|| (entry - self.base - 1) as usize)
    }

    fn put(&mut self, hash: usize, at: usize) {
        self.table[hash] = self.base + at as u32 + 1;
    }
}

thread_local! {
    static POSITIONS: RefCell<Positions> = RefCell::new(Positions::new());
}

/// `input` compressed against `dictionary` into an LZ4 block, appended to `out`. The
/// input must be shorter than 4 GiB.
pub(crate) fn compress(input: &[u8], dictionary: &Dictionary, out: &mut Vec<u8>) {
    POSITIONS.with_borrow_mut(|positions| compress_with(input, dictionary, positions, out));
}

/// A match for the bytes at some position: `len` bytes found `distance` bytes back,
/// counting the dictionary as just before the block, at `start` in `source` (the block
/// or the dictionary).
struct Match<'a> {
    distance: usize,
    len: usize,
    source: &'a [u8],
    start: usize,
}

fn compress_with(
    input: &[u8],
    dictionary: &Dictionary,
    positions: &mut Positions,
    out: &mut Vec<u8>,
) {
    let len = u32::try_from(input.len()).expect("a block is shorter than 4 GiB");
    positions.start(len);
    out.reserve(input.len() + input.len() / 255 + 16);
    let mut anchor = 0;
    if input.len() > LAST_MATCH_START_MARGIN {
        let match_end_max = input.len() - LAST_LITERALS;
        let mut at = 0;
        let mut misses = 0u32;
        while at + LAST_MATCH_START_MARGIN <= input.len() {
            let four = four_at(input, at);
            let hash = hash(four);
            let found = positions
                .get(hash)
                .and_then(|earlier| match_in_block(input, earlier, at, four, match_end_max))
                .or_else(|| match_in_dictionary(input, dictionary, hash, at, four, match_end_max));
            positions.put(hash, at);
            let Some(Match {
                distance,
                mut len,
                source,
                mut start,
            }) = found
            else {
                misses += 1;
                at += 1 + (misses >> SKIP_TRIGGER) as usize;
                continue;
            };
            misses = 0;
            // The bytes before may match too.
            while at > anchor && start > 0 && source[start - 1] == input[at - 1] {
                at -= 1;
                start -= 1;
                len += 1;
            }
            push_sequence(out, &input[anchor..at], distance, len);
            at += len;
            anchor = at;
            // As lz4 does: note a position inside the match, so the next one may start
            // from it.
            if at + LAST_MATCH_START_MARGIN <= input.len() {
                positions.put(hash_at(input, at - 2), at - 2);
            }
        }
    }
    push_last_literals(out, &input[anchor..]);
}

fn hash_at(bytes: &[u8], at: usize) -> usize {
    hash(four_at(bytes, at))
}

/// A match for the four bytes at `at` starting at `earlier` in the block.
fn match_in_block<'a>(
    input: &'a [u8],
    earlier: usize,
    at: usize,
    four: u32,
    match_end_max: usize,
) -> Option<Match<'a>> {
    let distance = at - earlier;
    if distance > DISTANCE_MAX || four_at(input, earlier) != four {
        return None;
    }
    // The match may run into the bytes it repeats, as LZ4's copies do.
    let len = MATCH_MIN
        + common_prefix(
            &input[earlier + MATCH_MIN..],
            &input[at + MATCH_MIN..match_end_max],
        );
    Some(Match {
        distance,
        len,
        source: input,
        start: earlier,
    })
}

/// A match for the four bytes at `at` in the dictionary, ending where it ends.
fn match_in_dictionary<'a>(
    input: &[u8],
    dictionary: &'a Dictionary,
    hash: usize,
    at: usize,
    four: u32,
    match_end_max: usize,
) -> Option<Match<'a>> {
    let start = (dictionary.last_at[hash] as usize).checked_sub(1)?;
    let distance = dictionary.bytes.len() - start + at;
    if distance > DISTANCE_MAX || four_at(dictionary.bytes, start) != four {
        return None;
    }
    let len = MATCH_MIN
        + common_prefix(
            &dictionary.bytes[start + MATCH_MIN..],
            &input[at + MATCH_MIN..match_end_max],
        );
    Some(Match {
        distance,
        len,
        source: dictionary.bytes,
        start,
    })
}

/// How many bytes `a` and `b` have in common from their starts.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let limit = a.len().min(b.len());
    let mut same = 0;
    while same + 8 <= limit {
        let word = |bytes: &[u8]| u64::from_le_bytes(bytes[same..same + 8].try_into().unwrap());
        let differ = word(a) ^ word(b);
        if differ != 0 {
            return same + (differ.trailing_zeros() / 8) as usize;
        }
        same += 8;
    }
    while same < limit && a[same] == b[same] {
        same += 1;
    }
    same
}

/// A sequence: its literals, then a match of `len` bytes `distance` back.
fn push_sequence(out: &mut Vec<u8>, literals: &[u8], distance: usize, len: usize) {
    let extra = len - MATCH_MIN;
    out.push(nibble(literals.len()) << 4 | nibble(extra));
    push_length_rest(out, literals.len());
    out.extend_from_slice(literals);
    out.extend_from_slice(&(distance as u16).to_le_bytes());
    push_length_rest(out, extra);
}

/// The block's last sequence: literals only.
fn push_last_literals(out: &mut Vec<u8>, literals: &[u8]) {
    out.push(nibble(literals.len()) << 4);
    push_length_rest(out, literals.len());
    out.extend_from_slice(literals);
}

/// A length as its token's four bits hold it: 15 means more bytes follow.
fn nibble(len: usize) -> u8 {
    len.min(15) as u8
}

/// The bytes after the token of a length of 15 or more: 255 while more follow.
fn push_length_rest(out: &mut Vec<u8>, len: usize) {
    let Some(mut rest) = len.checked_sub(15) else {
        return;
    };
    while rest >= 255 {
        out.push(255);
        rest -= 255;
    }
    out.push(rest as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    const DICTIONARY: &[u8] = br#"{"id":"in_","livemode":false,"created":,"customer":"cus_","status":"draft","currency":"usd","lines":[{"amount":,"period_start":,"period_end":}],"metadata":{}}"#;

    /// Blocks of every shape the format has: too short to hold a match, literals of 15
    /// and more, matches running into the bytes they repeat, into and out of the
    /// dictionary, longer than 255 and farther than an offset reaches.
    fn blocks() -> Vec<Vec<u8>> {
        let mut random = 0x2545_f491_4f6c_dd1d_u64;
        let mut noise = |len: usize| -> Vec<u8> {
            (0..len)
                .map(|_| {
                    random ^= random << 13;
                    random ^= random >> 7;
                    random ^= random << 17;
                    random as u8
                })
                .collect()
        };
        let doc = br#"{"id":"in_08E5DBbaGDQq6xmZjQukM705","livemode":false,"created":1768467600,"customer":"cus_08E5DBbZw31WsxuzS3m74g8h","status":"draft","currency":"usd","lines":[{"amount":1000,"period_start":1768467600,"period_end":1771146000}],"metadata":{}}"#;
        let mut blocks: Vec<Vec<u8>> = (0..=20).map(|len| doc[..len].to_vec()).collect();
        blocks.push(doc.to_vec());
        blocks.push(DICTIONARY.to_vec());
        blocks.push([DICTIONARY, DICTIONARY].concat());
        blocks.push(vec![b'a'; 100_000]);
        blocks.push(b"abc".repeat(30_000));
        blocks.push(noise(1_000));
        let far = noise(70_000);
        blocks.push([&far[..], &far[..]].concat());
        blocks.push([&noise(300)[..], &doc[..], &noise(20)[..], &doc[..]].concat());
        blocks.push(doc.repeat(500));
        blocks
    }

    fn compressed(input: &[u8], dictionary: &Dictionary) -> Vec<u8> {
        let mut out = Vec::new();
        compress(input, dictionary, &mut out);
        out
    }

    #[test]
    fn blocks_decompress_to_their_input_with_the_dictionary() {
        let dictionary = Dictionary::new(DICTIONARY);
        for input in blocks() {
            let block = compressed(&input, &dictionary);
            check_end_conditions(&block, input.len());
            let output = lz4_flex::block::decompress_with_dict(&block, input.len(), DICTIONARY)
                .unwrap_or_else(|e| panic!("{e} for {} bytes", input.len()));
            assert!(output == input, "{} bytes came back otherwise", input.len());
        }
        // As small as lz4_flex makes them (its blocks were kopek's before).
        for input in blocks() {
            let ours = compressed(&input, &dictionary).len();
            let theirs = lz4_flex::block::compress_with_dict(&input, DICTIONARY).len();
            assert!(
                ours <= theirs + theirs / 50 + 2,
                "{} bytes: {ours} compressed, lz4_flex {theirs}",
                input.len()
            );
        }
    }

    #[test]
    fn a_block_compresses_the_same_whatever_came_before() {
        let dictionary = Dictionary::new(DICTIONARY);
        let blocks = blocks();
        let alone: Vec<Vec<u8>> = blocks
            .iter()
            .map(|input| {
                let mut positions = Positions::new();
                let mut out = Vec::new();
                compress_with(input, &dictionary, &mut positions, &mut out);
                out
            })
            .collect();
        let check_all = |positions: &mut Positions| {
            for (input, expected) in blocks.iter().zip(&alone) {
                let mut out = Vec::new();
                compress_with(input, &dictionary, positions, &mut out);
                assert!(
                    &out == expected,
                    "{} bytes compressed otherwise",
                    input.len()
                );
            }
        };
        // One table through every block, twice over, and once more from just below
        // where its bases run out and it starts over.
        let mut positions = Positions::new();
        check_all(&mut positions);
        check_all(&mut positions);
        positions.next_base = u32::MAX - 150_000;
        check_all(&mut positions);
        assert!(positions.next_base < 1_000_000, "the bases started over");
    }

    /// Walks `block`'s sequences and checks the format's end conditions, which lz4's own
    /// decoder enforces (lz4_flex's does not): the last five bytes are literals and the
    /// last match starts at least twelve bytes before the end.
    fn check_end_conditions(block: &[u8], len: usize) {
        let mut at = 0;
        let mut written = 0;
        let length = |at: &mut usize, nibble: usize| {
            let mut len = nibble;
            if nibble == 15 {
                loop {
                    let byte = block[*at] as usize;
                    *at += 1;
                    len += byte;
                    if byte != 255 {
                        break;
                    }
                }
            }
            len
        };
        loop {
            let token = block[at] as usize;
            at += 1;
            let literals = length(&mut at, token >> 4);
            at += literals;
            written += literals;
            if at == block.len() {
                break;
            }
            at += 2;
            let matched = MATCH_MIN + length(&mut at, token & 15);
            assert!(
                written + LAST_MATCH_START_MARGIN <= len,
                "a match starts too late"
            );
            written += matched;
            assert!(written + LAST_LITERALS <= len, "a match ends too late");
        }
        assert_eq!(written, len);
    }
}
