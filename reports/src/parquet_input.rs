//! Parquet files read without trusting them: a user's QA table, a job's shard, a results file.
//!
//! polars' Parquet decoder (0.52) trusts what a file says of itself. Fuzzing found two ways a
//! damaged file takes the whole process down: assertions and unwraps in its decoders (panics,
//! raised in polars' worker threads and re-raised in the caller), and page headers whose value
//! counts are negative — cast to `usize` they become ~2^64, and the bitmap reserved for them
//! fails to allocate, which aborts the process (no `catch_unwind` stops an allocation failure).
//! So before polars decodes anything, [`check`] reads the file's metadata and walks every page
//! header of every column chunk, refusing counts and sizes that are negative or beyond the
//! bounds below; then polars reads under `catch_unwind` ([`lethe_panic_guard::quietly`]).

use std::io::Cursor;
use std::path::{Path, PathBuf};

use lethe_panic_guard::quietly;
use polars::prelude::{DataFrame, ParquetReader, PolarsError, SerReader};
use polars_parquet::parquet::read::read_metadata;
use polars_parquet_format::thrift::protocol::TCompactInputProtocol;
use polars_parquet_format::{PageHeader, PageType};

/// The most values a page (or rows a row group, or a file) may claim: 2^26. A page of text
/// keeps 16 bytes of view a value, so one page's values take at most 1 GiB however few bytes
/// encode them (a run of nulls is a few bytes).
pub const MAX_VALUES: i64 = 1 << 26;

/// The largest a page may be, compressed or not: 1 GiB (polars allocates the uncompressed
/// size a header states before it decompresses).
pub const MAX_PAGE_BYTES: i32 = 1 << 30;

/// Why a Parquet file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ParquetInputError {
    /// The file could not be opened or read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The file is not Parquet, or says of itself what no valid file does.
    #[error("{}: not a readable Parquet file: {reason}", .path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong, as precisely as the check knows it.
        reason: String,
    },
    /// polars refused the file (after the check passed).
    #[error("{}: {source}", .path.display())]
    Polars {
        /// The file.
        path: PathBuf,
        /// What polars said.
        source: PolarsError,
    },
}

/// Check the Parquet file `bytes` (read from `path`) against the bounds: its metadata parses,
/// and every page header of every column chunk states non-negative sizes and counts within
/// [`MAX_PAGE_BYTES`] and [`MAX_VALUES`] and lies inside the file.
pub fn check(path: &Path, bytes: &[u8]) -> Result<(), ParquetInputError> {
    let damaged = |reason: String| ParquetInputError::Damaged {
        path: path.to_owned(),
        reason,
    };
    let metadata = quietly(|| read_metadata(&mut Cursor::new(bytes)))
        .map_err(|what| damaged(format!("its footer could not be decoded ({what})")))?
        .map_err(|e| damaged(e.to_string()))?;
    if metadata.num_rows as u64 > MAX_VALUES as u64 {
        return Err(damaged(format!(
            "it claims {} rows, more than the {MAX_VALUES} Lethe reads",
            metadata.num_rows
        )));
    }
    for (g, group) in metadata.row_groups.iter().enumerate() {
        if group.num_rows() as u64 > MAX_VALUES as u64 {
            return Err(damaged(format!(
                "row group {g} claims {} rows, more than {MAX_VALUES}",
                group.num_rows()
            )));
        }
        for (c, column) in group.parquet_columns().iter().enumerate() {
            let meta = column.metadata();
            let start = meta.dictionary_page_offset.unwrap_or(meta.data_page_offset);
            let range = usize::try_from(start).ok().and_then(|start| {
                let len = usize::try_from(meta.total_compressed_size).ok()?;
                let end = start.checked_add(len)?;
                (end <= bytes.len()).then_some(start..end)
            });
            let Some(range) = range else {
                return Err(damaged(format!(
                    "row group {g}, column {c}: its chunk (offset {start}, {} bytes) is not \
                     inside the file ({} bytes)",
                    meta.total_compressed_size,
                    bytes.len()
                )));
            };
            if !(0..=MAX_VALUES).contains(&meta.num_values) {
                return Err(damaged(format!(
                    "row group {g}, column {c}: {} values (expected 0 to {MAX_VALUES})",
                    meta.num_values
                )));
            }
            check_pages(&bytes[range], meta.num_values)
                .map_err(|e| damaged(format!("row group {g}, column {c}: {e}")))?;
        }
    }
    Ok(())
}

/// Walk the page headers of one column chunk until its data pages account for `num_values`
/// values (as polars' page reader does), checking each header.
fn check_pages(chunk: &[u8], num_values: i64) -> Result<(), String> {
    let mut rest = chunk;
    let mut seen: i64 = 0;
    let mut page = 0;
    while seen < num_values {
        let before = rest.len();
        let header = {
            let mut protocol = TCompactInputProtocol::new(&mut rest, before);
            PageHeader::read_from_in_protocol(&mut protocol)
                .map_err(|e| format!("page {page}: its header could not be decoded: {e}"))?
        };
        let sizes = [
            ("compressed size", header.compressed_page_size),
            ("uncompressed size", header.uncompressed_page_size),
        ];
        for (what, size) in sizes {
            if !(0..=MAX_PAGE_BYTES).contains(&size) {
                return Err(format!(
                    "page {page}: {what} {size} (expected 0 to {MAX_PAGE_BYTES} bytes)"
                ));
            }
        }
        let mut counts = Vec::new();
        match header.type_ {
            PageType::DATA_PAGE => {
                let h = header
                    .data_page_header
                    .as_ref()
                    .ok_or(format!("page {page}: a data page without its header"))?;
                counts.push(("values", h.num_values));
                seen += i64::from(h.num_values.max(0));
            }
            PageType::DATA_PAGE_V2 => {
                let h = header
                    .data_page_header_v2
                    .as_ref()
                    .ok_or(format!("page {page}: a data page without its header"))?;
                counts.extend([
                    ("values", h.num_values),
                    ("nulls", h.num_nulls),
                    ("rows", h.num_rows),
                    ("definition levels' bytes", h.definition_levels_byte_length),
                    ("repetition levels' bytes", h.repetition_levels_byte_length),
                ]);
                seen += i64::from(h.num_values.max(0));
            }
            PageType::DICTIONARY_PAGE => {
                let h = header
                    .dictionary_page_header
                    .as_ref()
                    .ok_or(format!("page {page}: a dictionary page without its header"))?;
                counts.push(("dictionary values", h.num_values));
            }
            // Index pages carry no values; other types polars refuses itself.
            _ => {}
        }
        for (what, count) in counts {
            if !(0..=MAX_VALUES).contains(&i64::from(count)) {
                return Err(format!(
                    "page {page}: {count} {what} (expected 0 to {MAX_VALUES})"
                ));
            }
        }
        let data = header.compressed_page_size as usize;
        if data > rest.len() {
            return Err(format!(
                "page {page}: {data} bytes of data, past the end of its column chunk"
            ));
        }
        rest = &rest[data..];
        page += 1;
    }
    Ok(())
}

/// Read the Parquet file at `path` with polars, once [`check`] has passed it.
pub fn read(path: &Path) -> Result<DataFrame, ParquetInputError> {
    let bytes = fs_err::read(path)?;
    check(path, &bytes)?;
    guarded(path, move || {
        ParquetReader::new(Cursor::new(bytes)).finish()
    })
}

/// Run a polars read of `path`, a panic inside it (in its worker threads too) made an error.
pub fn guarded(
    path: &Path,
    read: impl FnOnce() -> Result<DataFrame, PolarsError>,
) -> Result<DataFrame, ParquetInputError> {
    match quietly(read) {
        Ok(Ok(df)) => Ok(df),
        Ok(Err(source)) => Err(ParquetInputError::Polars {
            path: path.to_owned(),
            source,
        }),
        Err(what) => Err(ParquetInputError::Damaged {
            path: path.to_owned(),
            reason: format!("the Parquet reader failed on it ({what})"),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use polars::prelude::Column;
    use polars_parquet_format::thrift::protocol::TCompactOutputProtocol;

    /// A valid Parquet file of four text rows, and the offset of its first column's chunk.
    fn valid() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qa.parquet");
        let mut df = DataFrame::new(vec![Column::new(
            "question".into(),
            ["a", "bb", "ccc", "dddd"],
        )])
        .unwrap();
        crate::write_parquet(&mut df, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        (dir, path, bytes)
    }

    /// `bytes` with the first data page's value count set to `values` (its header re-encoded
    /// at the same length, so every offset in the footer still holds).
    fn with_page_values(bytes: &[u8], values: i32) -> Vec<u8> {
        let metadata = read_metadata(&mut Cursor::new(bytes)).unwrap();
        let meta = metadata.row_groups[0].parquet_columns()[0]
            .metadata()
            .clone();
        let mut at = meta.dictionary_page_offset.unwrap_or(meta.data_page_offset) as usize;
        loop {
            let mut rest = &bytes[at..];
            let before = rest.len();
            let mut header = {
                let mut p = TCompactInputProtocol::new(&mut rest, before);
                PageHeader::read_from_in_protocol(&mut p).unwrap()
            };
            let len = before - rest.len();
            if let Some(h) = header.data_page_header.as_mut() {
                h.num_values = values;
            } else if let Some(h) = header.data_page_header_v2.as_mut() {
                h.num_values = values;
            } else {
                at += len + header.compressed_page_size as usize;
                continue;
            }
            let mut encoded = Vec::new();
            header
                .write_to_out_protocol(&mut TCompactOutputProtocol::new(&mut encoded))
                .unwrap();
            assert_eq!(encoded.len(), len, "the re-encoded header changed length");
            let mut out = bytes.to_vec();
            out[at..at + len].copy_from_slice(&encoded);
            return out;
        }
    }

    #[test]
    fn a_valid_file_passes_the_check_and_reads() {
        let (_dir, path, bytes) = valid();
        check(&path, &bytes).unwrap();
        let df = read(&path).unwrap();
        assert_eq!(df.height(), 4);
    }

    /// The abort fuzzing found: a negative count polars casts to ~2^64 and reserves for.
    #[test]
    fn a_page_claiming_negative_values_is_refused_before_polars_reads_it() {
        let (_dir, path, bytes) = valid();
        // The same-length re-encoding itself is sound: 4 values read back as the original.
        assert_eq!(with_page_values(&bytes, 4), bytes);
        let damaged = with_page_values(&bytes, -12);
        std::fs::write(&path, &damaged).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("qa.parquet"), "{err}");
        // Page 0 is the dictionary (polars writes text dictionary-encoded).
        assert!(err.contains("page 1: -12 values"), "{err}");
    }

    /// A column chunk of one data page with this header's sizes and count, then its data.
    fn chunk(values: i32, compressed: i32, uncompressed: i32, data: usize) -> Vec<u8> {
        use polars_parquet_format::{DataPageHeader, Encoding};
        let page = DataPageHeader::new(values, Encoding::PLAIN, Encoding::RLE, Encoding::RLE, None);
        let header = PageHeader::new(
            PageType::DATA_PAGE,
            uncompressed,
            compressed,
            None,
            page,
            None,
            None,
            None,
        );
        let mut out = Vec::new();
        header
            .write_to_out_protocol(&mut TCompactOutputProtocol::new(&mut out))
            .unwrap();
        out.extend(std::iter::repeat_n(0, data));
        out
    }

    #[test]
    fn page_headers_past_the_bounds_are_refused_and_one_within_them_passes() {
        assert_eq!(check_pages(&chunk(8, 16, 16, 16), 8), Ok(()));
        let refused = [
            (
                chunk((MAX_VALUES + 1) as i32, 16, 16, 16),
                "page 0: 67108865 values",
            ),
            (chunk(-1, 16, 16, 16), "page 0: -1 values"),
            (chunk(8, 16, -1, 16), "page 0: uncompressed size -1"),
            (
                chunk(8, MAX_PAGE_BYTES + 1, 16, 16),
                "page 0: compressed size 1073741825",
            ),
            (
                chunk(8, 32, 32, 16),
                "page 0: 32 bytes of data, past the end",
            ),
        ];
        for (bytes, expected) in refused {
            let err = check_pages(&bytes, 8).unwrap_err();
            assert!(err.starts_with(expected), "{err}");
        }
        // Pages are walked until they account for the chunk's values: a second page is read.
        let mut two = chunk(4, 16, 16, 16);
        two.extend(chunk(-4, 16, 16, 16));
        assert!(
            check_pages(&two, 4).is_ok(),
            "the second page is never needed"
        );
        let err = check_pages(&two, 8).unwrap_err();
        assert!(err.starts_with("page 1: -4 values"), "{err}");
    }

    #[test]
    fn a_cut_file_is_an_error_naming_it() {
        let (_dir, path, bytes) = valid();
        for len in [0, 4, 12, bytes.len() / 2, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..len]).unwrap();
            let err = read(&path).unwrap_err().to_string();
            assert!(err.contains("qa.parquet"), "cut at {len}: {err}");
        }
    }

    #[test]
    fn a_panic_inside_the_reader_is_an_error_naming_the_file() {
        let err = guarded(Path::new("x.parquet"), || panic!("assertion\n  left: 0"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "x.parquet: not a readable Parquet file: the Parquet reader failed on it \
                 (assertion left: 0 at reports/src/parquet_input.rs:"
            ),
            "{err}"
        );
    }
}
