//! FORMAT.md is the contract of the bytes on disk: its constants table must match the
//! code.
#![cfg(feature = "fault-injection")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use paxstore_backends::wal::format::*;

fn documented() -> HashMap<String, String> {
    let doc = include_str!("../src/wal/FORMAT.md");
    let section = doc.split("## Constants").nth(1).expect("a Constants section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|l| {
            let cells: Vec<_> = l.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let value = cells.get(2)?.trim_matches('`');
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

#[test]
fn format_md_constants_match_the_code() {
    let doc = documented();
    let magic = String::from_utf8(SEGMENT_MAGIC.to_vec()).unwrap().replace('\0', "\\0");
    let code: Vec<(&str, String)> = vec![
        ("SEGMENT_MAGIC", magic),
        ("FORMAT_VERSION", FORMAT_VERSION.to_string()),
        ("SEGMENT_HEADER_BYTES", SEGMENT_HEADER_BYTES.to_string()),
        ("RECORD_HEADER_BYTES", RECORD_HEADER_BYTES.to_string()),
        ("RECORD_ALIGN", RECORD_ALIGN.to_string()),
        ("RECORD_BATCH", RECORD_BATCH.to_string()),
        ("RECORD_CHECKPOINT", RECORD_CHECKPOINT.to_string()),
        ("RECORD_SEAL", RECORD_SEAL.to_string()),
        ("OP_APPEND", OP_APPEND.to_string()),
        ("OP_APPEND_ON_PREFIX", OP_APPEND_ON_PREFIX.to_string()),
        ("OP_SET_PROMISE", OP_SET_PROMISE.to_string()),
        ("OP_SET_DECIDED", OP_SET_DECIDED.to_string()),
        ("OP_SET_ACCEPTED", OP_SET_ACCEPTED.to_string()),
        ("OP_SET_COMPACTED", OP_SET_COMPACTED.to_string()),
        ("OP_TRIM", OP_TRIM.to_string()),
        ("OP_SET_STOPSIGN", OP_SET_STOPSIGN.to_string()),
        ("OP_SET_SNAPSHOT", OP_SET_SNAPSHOT.to_string()),
        ("OP_BASE", OP_BASE.to_string()),
        ("OP_PREV_SEAL", OP_PREV_SEAL.to_string()),
        ("DEFAULT_SEGMENT_BYTES", DEFAULT_SEGMENT_BYTES.to_string()),
        ("MIN_SEGMENT_BYTES", MIN_SEGMENT_BYTES.to_string()),
        ("MAX_SEGMENT_BYTES", MAX_SEGMENT_BYTES.to_string()),
    ];
    for (name, value) in &code {
        assert_eq!(doc.get(*name), Some(value), "FORMAT.md's {name} differs from the code");
    }
    assert_eq!(doc.len(), code.len(), "FORMAT.md documents constants the test does not check");
}

#[test]
fn format_md_header_tables_match_the_sizes() {
    let doc = include_str!("../src/wal/FORMAT.md");
    // The last row of each layout table ends where the header ends.
    assert!(doc.contains("| 28 | 4 | CRC-32 (IEEE, as `crc32fast`) of bytes 0..28 |"));
    assert_eq!(28 + 4, SEGMENT_HEADER_BYTES);
    assert!(doc.contains("| 17 | 7 | reserved, 0 |"));
    assert_eq!(17 + 7, RECORD_HEADER_BYTES);
    // A seal's table starts where its fixed part ends.
    assert!(doc.contains("| 12 | 4 × count |"));
    assert_eq!(SEAL_FIXED_BYTES, 12);
    assert_eq!(seal_record_bytes(0), align(RECORD_HEADER_BYTES + SEAL_FIXED_BYTES));
    assert_eq!(seal_record_bytes(3), RECORD_HEADER_BYTES + 12 + 12);
    let h = segment_header(5, 4096);
    assert_eq!(&h[..8], &SEGMENT_MAGIC);
    assert_eq!(parse_segment_header(&h), Ok(5));
    assert_eq!(segment_file_name(5), "0000000000000005.wal");
}
