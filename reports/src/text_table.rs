//! Users' tables (CSV, TSV, Parquet) read into plain rows of text, for importers that do not
//! depend on polars (the suite importer takes rows, not data frames).

use std::path::{Path, PathBuf};

use polars::prelude::*;

/// One cell of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextCell {
    /// No value: a null, or an empty CSV field.
    Null,
    /// A text; numbers, booleans and dates are read as their text.
    Text(String),
    /// A list of texts (a Parquet list column); null elements are dropped.
    List(Vec<String>),
}

/// The rows of one file, every cell as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextTable {
    /// The column names, in file order.
    pub columns: Vec<String>,
    /// The rows in file order; `rows[i][j]` is row `i`'s cell in column `j`.
    pub rows: Vec<Vec<TextCell>>,
    /// For CSV and TSV, the 1-based line on which each row starts (a quoted cell may span
    /// lines); `None` for Parquet.
    pub lines: Option<Vec<usize>>,
}

/// Why a table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The file's extension names no format this reader knows.
    #[error("{}: unknown table format (expected .csv, .tsv or .parquet)", .0.display())]
    Format(PathBuf),
    /// A column has a type that is neither text-like nor a list of text-like values.
    #[error("{}: column '{column}' has type {dtype}, which cannot be read as text", .path.display())]
    Type {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// Its type.
        dtype: String,
    },
    /// A CSV or TSV record has another number of fields than the header.
    #[error("{}:{line}: malformed {kind}: {found} field(s) where the header has {expected}", .path.display())]
    Ragged {
        /// The file.
        path: PathBuf,
        /// "CSV" or "TSV".
        kind: &'static str,
        /// The 1-based line where the record starts.
        line: usize,
        /// Its fields.
        found: usize,
        /// The header's fields.
        expected: usize,
    },
    /// polars could not read the file (malformed CSV, not Parquet …).
    #[error("{}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What polars said.
        source: PolarsError,
    },
    /// A Parquet file could not be read (damaged, or refused by polars).
    #[error(transparent)]
    Parquet(#[from] crate::parquet_input::ParquetInputError),
    /// The file could not be opened.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Read a CSV (comma-separated, with a header line), TSV (tab-separated) or Parquet file,
/// chosen by its extension. CSV and TSV cells are read as text, never as numbers, so that ids
/// such as `007` keep their zeros; a byte-order mark before the header is ignored.
pub fn read_table(path: &Path) -> Result<TextTable, TableError> {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let read = |source| TableError::Read {
        path: path.to_owned(),
        source,
    };
    let (df, records) = match extension.as_deref() {
        Some(ext @ ("csv" | "tsv")) => {
            let (separator, kind) = if ext == "tsv" {
                (b'\t', "TSV")
            } else {
                (b',', "CSV")
            };
            // Read here too (which also makes a missing file an I/O error naming the path),
            // for the line of each record: polars reports neither lines nor rows.
            let records = records(&fs_err::read_to_string(path)?, separator as char);
            let df = CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(Some(0))
                .map_parse_options(|o| o.with_separator(separator))
                .try_into_reader_with_file_path(Some(path.to_owned()))
                .and_then(|r| r.finish());
            let df = match df {
                Ok(df) => df,
                Err(e) => {
                    let expected = records.first().map_or(0, |r| r.fields);
                    return Err(match records.iter().find(|r| r.fields != expected) {
                        Some(r) => TableError::Ragged {
                            path: path.to_owned(),
                            kind,
                            line: r.line,
                            found: r.fields,
                            expected,
                        },
                        None => read(e),
                    });
                }
            };
            (df, Some(records))
        }
        Some("parquet" | "pq") => (crate::parquet_input::read(path)?, None),
        _ => return Err(TableError::Format(path.to_owned())),
    };
    let columns: Vec<String> = df
        .get_columns()
        .iter()
        .map(|c| c.name().trim_start_matches('\u{feff}').to_owned())
        .collect();
    let mut rows = vec![Vec::with_capacity(columns.len()); df.height()];
    for column in df.get_columns() {
        for (row, cell) in rows.iter_mut().zip(cells(path, column)?) {
            row.push(cell);
        }
    }
    // Lines only when the scan agrees with polars on the number of rows (after the header).
    let lines = records
        .map(|r| r.iter().skip(1).map(|r| r.line).collect::<Vec<_>>())
        .filter(|l| l.len() == rows.len());
    Ok(TextTable {
        columns,
        rows,
        lines,
    })
}

/// One record of a CSV text: where it starts and how many fields it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    line: usize,
    fields: usize,
}

/// The records of a CSV text with `"` quotes (RFC 4180: a doubled quote inside quotes is a
/// quote, a quoted field may hold separators and newlines); blank lines are skipped.
fn records(text: &str, separator: char) -> Vec<Record> {
    let mut out = Vec::new();
    let (mut line, mut start, mut fields) = (1, 1, 1);
    let (mut quoted, mut blank) = (false, true);
    for c in text.chars() {
        if quoted {
            // A doubled quote leaves and re-enters quotes: the count stays right.
            if c == '"' {
                quoted = false;
            } else if c == '\n' {
                line += 1;
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                blank = false;
            }
            '\n' => {
                if !blank {
                    out.push(Record {
                        line: start,
                        fields,
                    });
                }
                line += 1;
                (start, fields, blank) = (line, 1, true);
            }
            '\r' => {}
            c if c == separator => {
                fields += 1;
                blank = false;
            }
            _ => blank = false,
        }
    }
    if !blank {
        out.push(Record {
            line: start,
            fields,
        });
    }
    out
}

/// Whether a type is read as text by casting.
fn text_like(dtype: &DataType) -> bool {
    dtype.is_primitive_numeric()
        || matches!(
            dtype,
            DataType::String | DataType::Boolean | DataType::Date | DataType::Null
        )
        || dtype.is_temporal()
}

/// One column as cells.
fn cells(path: &Path, column: &Column) -> Result<Vec<TextCell>, TableError> {
    let read = |source| TableError::Read {
        path: path.to_owned(),
        source,
    };
    let unsupported = || TableError::Type {
        path: path.to_owned(),
        column: column.name().to_string(),
        dtype: column.dtype().to_string(),
    };
    let texts = |c: &Column| -> Result<Vec<Option<String>>, TableError> {
        let c = c.cast(&DataType::String).map_err(read)?;
        Ok(c.str()
            .map_err(read)?
            .into_iter()
            .map(|v| v.map(str::to_owned))
            .collect())
    };
    match column.dtype() {
        dtype if text_like(dtype) => Ok(texts(column)?
            .into_iter()
            .map(|v| v.map_or(TextCell::Null, TextCell::Text))
            .collect()),
        DataType::List(inner) if text_like(inner) => {
            let mut out = Vec::new();
            for item in column.list().map_err(read)?.into_iter() {
                out.push(match item {
                    None => TextCell::Null,
                    Some(series) => {
                        let items = texts(&Column::from(series))?;
                        TextCell::List(items.into_iter().flatten().collect())
                    }
                });
            }
            Ok(out)
        }
        _ => Err(unsupported()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn text(s: &str) -> TextCell {
        TextCell::Text(s.to_owned())
    }

    #[test]
    fn reads_csv_as_text_with_quotes_newlines_and_empty_cells() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qa.csv");
        std::fs::write(
            &path,
            "\u{feff}id,question,answer\n007,\"Where, exactly?\",\"In\nOslo\"\n8,Who?,\n",
        )
        .unwrap();
        let t = read_table(&path).unwrap();
        assert_eq!(t.columns, ["id", "question", "answer"]);
        assert_eq!(t.lines, Some(vec![2, 4]), "the quoted newline spans a line");
        assert_eq!(
            t.rows,
            [
                vec![text("007"), text("Where, exactly?"), text("In\nOslo")],
                vec![text("8"), text("Who?"), TextCell::Null],
            ]
        );
        let tsv = dir.path().join("qa.tsv");
        std::fs::write(&tsv, "question\tanswer\nA, b?\tc\n").unwrap();
        assert_eq!(
            read_table(&tsv).unwrap().rows,
            [vec![text("A, b?"), text("c")]]
        );
    }

    #[test]
    fn reads_parquet_with_numbers_nulls_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qa.parquet");
        let mut df = DataFrame::new(vec![
            Column::new("id".into(), [1i64, 2]),
            Column::new("question".into(), [Some("Who?"), None]),
            Column::new(
                "wrong".into(),
                [
                    Series::new("".into(), ["a", "b"]),
                    Series::new("".into(), Vec::<&str>::new()),
                ],
            ),
            Column::new("ok".into(), [true, false]),
        ])
        .unwrap();
        ParquetWriter::new(fs_err::File::create(&path).unwrap().into_parts().0)
            .finish(&mut df)
            .unwrap();
        let t = read_table(&path).unwrap();
        assert_eq!(t.columns, ["id", "question", "wrong", "ok"]);
        assert_eq!(
            t.rows,
            [
                vec![
                    text("1"),
                    text("Who?"),
                    TextCell::List(vec!["a".into(), "b".into()]),
                    text("true")
                ],
                vec![
                    text("2"),
                    TextCell::Null,
                    TextCell::List(Vec::new()),
                    text("false")
                ],
            ]
        );
    }

    #[test]
    fn records_follow_quotes_and_skip_blank_lines() {
        let text = "a,b\r\n\n\"x,\"\"y\"\"\n z\",w\r\nlast,one,more";
        let r = records(text, ',');
        let got: Vec<(usize, usize)> = r.iter().map(|r| (r.line, r.fields)).collect();
        assert_eq!(got, [(1, 2), (3, 2), (5, 3)]);
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let ragged = dir.path().join("ragged.csv");
        std::fs::write(&ragged, "question,answer\na,b\nc,d,e,f\n").unwrap();
        let e = read_table(&ragged).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}:3: malformed CSV: 4 field(s) where the header has 2",
                ragged.display()
            )
        );
        let not_parquet = dir.path().join("x.parquet");
        std::fs::write(&not_parquet, "question,answer\n").unwrap();
        let e = read_table(&not_parquet).unwrap_err().to_string();
        assert!(e.contains("x.parquet"), "{e}");
        let e = read_table(&dir.path().join("x.xlsx"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown table format"), "{e}");
        let e = read_table(&dir.path().join("missing.csv"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.csv"), "{e}");
    }
}
