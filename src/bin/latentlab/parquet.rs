//! Tables in and out: Parquet (and Arrow IPC) files read a column at a time, and the
//! embedding table written in the layout of the Python package's `latentlab.parquet` (an `id`
//! string column, a `FixedSizeList<float32>[dim]` `embedding` column that is null where the
//! row could not be embedded, an `error` string column saying why, and the model's name and
//! dimension in the schema metadata), so that each reads the other's files.
//!
//! Only the CLI reads and writes tables (the core never sees a file), hence a module here.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type,
    UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray};
use arrow_buffer::NullBuffer;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// The schema metadata keys and columns of `python/latentlab/parquet.py`.
pub const MODEL_KEY: &str = "latentlab.model";
pub const DIM_KEY: &str = "latentlab.dim";
pub const ID_COLUMN: &str = "id";
pub const EMBEDDING_COLUMN: &str = "embedding";
pub const ERROR_COLUMN: &str = "error";

/// An input table opened for reading some of its columns, batch by batch.
pub struct Table {
    /// The whole file's schema (all columns, the file's metadata).
    pub schema: SchemaRef,
    /// The number of rows, where the file says so before it is read (Parquet does).
    pub rows: Option<usize>,
    pub batches: Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Parquet,
    ArrowFile,
    ArrowStream,
}

/// What the file is, from its first bytes, so that a file of another kind is named as such
/// instead of failing deep inside a reader with "corrupt footer".
fn sniff(path: &Path) -> Result<Format> {
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut head = [0u8; 8];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    let head = &head[..n];
    if head.is_empty() {
        bail!("{} is empty: not a Parquet file", path.display());
    }
    if head.starts_with(b"PAR1") {
        let mut tail = [0u8; 4];
        let len = file.seek(SeekFrom::End(0))?;
        if len >= 12 {
            file.seek(SeekFrom::End(-4))?;
            file.read_exact(&mut tail)?;
        }
        if &tail != b"PAR1" {
            bail!(
                "{} starts as a Parquet file but does not end as one ({len} bytes): it is cut short or damaged",
                path.display()
            );
        }
        return Ok(Format::Parquet);
    }
    if head.starts_with(b"ARROW1") {
        return Ok(Format::ArrowFile);
    }
    // An Arrow IPC stream starts with a continuation marker, then the schema message.
    if head.starts_with(&[0xff, 0xff, 0xff, 0xff]) {
        return Ok(Format::ArrowStream);
    }
    let shown: String = String::from_utf8_lossy(head)
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    bail!(
        "{} is not a Parquet file (nor an Arrow IPC file): it starts with {shown:?}, not \"PAR1\"",
        path.display()
    )
}

/// Opens `path` (Parquet, or an Arrow IPC file or stream) to read `columns` (top-level
/// names) in batches of `batch_size` rows. A missing column is an error naming it and the
/// columns the file has.
pub fn open(path: &Path, columns: &[&str], batch_size: usize) -> Result<Table> {
    let format = sniff(path)?;
    let file = || File::open(path).with_context(|| format!("cannot read {}", path.display()));
    let context = || format!("cannot read {}", path.display());
    match format {
        Format::Parquet => {
            let builder = ParquetRecordBatchReaderBuilder::try_new(file()?)
                .with_context(|| format!("cannot read {} as Parquet", path.display()))?;
            let schema = builder.schema().clone();
            let roots = column_indices(path, &schema, columns)?;
            let rows = usize::try_from(builder.metadata().file_metadata().num_rows())
                .with_context(|| format!("{}: a negative number of rows", path.display()))?;
            let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
            let reader = builder
                .with_projection(mask)
                .with_batch_size(batch_size)
                .build()
                .with_context(context)?;
            Ok(Table {
                schema,
                rows: Some(rows),
                batches: Box::new(reader),
            })
        }
        Format::ArrowFile => {
            let reader = arrow_ipc::reader::FileReader::try_new(BufReader::new(file()?), None)
                .with_context(|| format!("cannot read {} as an Arrow IPC file", path.display()))?;
            let schema = reader.schema();
            let projection = column_indices(path, &schema, columns)?;
            let reader =
                arrow_ipc::reader::FileReader::try_new(BufReader::new(file()?), Some(projection))
                    .with_context(context)?;
            Ok(Table {
                schema,
                rows: None,
                batches: Box::new(reader),
            })
        }
        Format::ArrowStream => {
            let reader = arrow_ipc::reader::StreamReader::try_new(BufReader::new(file()?), None)
                .with_context(|| {
                    format!("cannot read {} as an Arrow IPC stream", path.display())
                })?;
            let schema = reader.schema();
            let projection = column_indices(path, &schema, columns)?;
            let reader =
                arrow_ipc::reader::StreamReader::try_new(BufReader::new(file()?), Some(projection))
                    .with_context(context)?;
            Ok(Table {
                schema,
                rows: None,
                batches: Box::new(reader),
            })
        }
    }
}

/// The indices of `columns` in `schema` (sorted, each once), or an error naming the first
/// missing one and the columns there are.
fn column_indices(path: &Path, schema: &Schema, columns: &[&str]) -> Result<Vec<usize>> {
    let mut indices = Vec::new();
    for name in columns {
        match schema.index_of(name) {
            Ok(i) => indices.push(i),
            Err(_) => bail!(
                "{} has no column {name:?} (its columns: {:?})",
                path.display(),
                column_names(schema)
            ),
        }
    }
    indices.sort_unstable();
    indices.dedup();
    Ok(indices)
}

pub fn column_names(schema: &Schema) -> Vec<&str> {
    schema.fields().iter().map(|f| f.name().as_str()).collect()
}

/// A column of a batch by name (present: `open` checked it).
pub fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .with_context(|| format!("a batch of the file has no column {name:?}"))
}

/// Whether a column holds strings or bytes (the cells are bytes either way).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Cells {
    /// UTF-8 strings (valid by Arrow's rules).
    Text,
    /// Raw bytes (Parquet BYTE_ARRAY without a string annotation).
    Binary,
}

/// What kind of cells a column of type `t` has, or None when it is neither strings nor bytes.
pub fn cells_kind(t: &DataType) -> Option<Cells> {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(Cells::Text),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => Some(Cells::Binary),
        DataType::Dictionary(_, values) => cells_kind(values),
        _ => None,
    }
}

/// The cells of a string or binary column as bytes, None where null. Dictionary columns
/// (pandas categoricals, dictionary-encoded strings) are looked up.
pub fn byte_cells(array: &ArrayRef) -> Result<Vec<Option<&[u8]>>> {
    fn collect<'a, T: 'a + AsRef<[u8]> + ?Sized>(
        array: &'a dyn Array,
        value: impl Fn(usize) -> &'a T,
    ) -> Vec<Option<&'a [u8]>> {
        (0..array.len())
            .map(|i| (!array.is_null(i)).then(|| value(i).as_ref()))
            .collect()
    }
    let a = array.as_ref();
    Ok(match array.data_type() {
        DataType::Utf8 => collect(a, |i| array.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => collect(a, |i| array.as_string::<i64>().value(i)),
        DataType::Utf8View => collect(a, |i| array.as_string_view().value(i)),
        DataType::Binary => collect(a, |i| array.as_binary::<i32>().value(i)),
        DataType::LargeBinary => collect(a, |i| array.as_binary::<i64>().value(i)),
        DataType::BinaryView => collect(a, |i| array.as_binary_view().value(i)),
        DataType::FixedSizeBinary(_) => collect(a, |i| array.as_fixed_size_binary().value(i)),
        DataType::Dictionary(_, _) => {
            let dict = array.as_any_dictionary();
            let values = byte_cells(dict.values())?;
            if values.is_empty() {
                // normalized_keys panics on an empty dictionary; every key is null then.
                return Ok(vec![None; array.len()]);
            }
            let keys = dict.normalized_keys();
            (0..array.len())
                .map(|i| {
                    if array.is_null(i) {
                        None
                    } else {
                        keys.get(i).and_then(|&k| values.get(k).copied().flatten())
                    }
                })
                .collect()
        }
        other => bail!("a column of {other}: expected strings or bytes"),
    })
}

/// The ids of a batch's rows from a string or integer column, as Python's `str()` writes
/// them (so an integer id reads the same here and in `latentlab.ray`).
pub fn id_cells(array: &ArrayRef) -> Result<Vec<Option<String>>> {
    macro_rules! ints {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            (0..a.len())
                .map(|i| (!a.is_null(i)).then(|| a.value(i).to_string()))
                .collect()
        }};
    }
    Ok(match array.data_type() {
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        t if cells_kind(t) == Some(Cells::Text) => byte_cells(array)?
            .into_iter()
            // Arrow strings are valid UTF-8; lossy only guards a reader that let one through.
            .map(|c| c.map(|b| String::from_utf8_lossy(b).into_owned()))
            .collect(),
        other => bail!("it is {other}: ids must be strings or integers"),
    })
}

/// Writes the embedding table batch by batch into a temporary file beside `path`, renamed
/// to `path` only by `finish`: a failed run leaves no half-written file, and never replaces
/// a good one.
pub struct EmbeddingWriter {
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    dim: usize,
    temp: PathBuf,
    path: PathBuf,
}

impl EmbeddingWriter {
    pub fn create(path: &Path, model: &str, dim: usize) -> Result<EmbeddingWriter> {
        let size = i32::try_from(dim).context("the model's dimension does not fit in Arrow")?;
        let item = Arc::new(Field::new("item", DataType::Float32, true));
        // Nullable everywhere, as pyarrow writes `pa.table(...)`: the layouts are equal.
        let schema = Arc::new(
            Schema::new(vec![
                Field::new(ID_COLUMN, DataType::Utf8, true),
                Field::new(EMBEDDING_COLUMN, DataType::FixedSizeList(item, size), true),
                Field::new(ERROR_COLUMN, DataType::Utf8, true),
            ])
            .with_metadata(HashMap::from([
                (MODEL_KEY.to_string(), model.to_string()),
                (DIM_KEY.to_string(), dim.to_string()),
            ])),
        );
        let name = path
            .file_name()
            .with_context(|| format!("--output {} names no file", path.display()))?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}.partial", std::process::id()));
        let temp = path.with_file_name(temp_name);
        let file = File::create(&temp)
            .with_context(|| format!("cannot write {} (for --output)", temp.display()))?;
        // Snappy: pyarrow's, Spark's and Ray's default, which every reader has.
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
        Ok(EmbeddingWriter {
            writer,
            schema,
            dim,
            temp,
            path: path.to_path_buf(),
        })
    }

    /// One batch: an id per row, `dim` values per row (ignored where the row has an error),
    /// and the error of each row that could not be embedded.
    pub fn write(
        &mut self,
        ids: Vec<String>,
        values: Vec<f32>,
        errors: Vec<Option<String>>,
    ) -> Result<()> {
        let rows = ids.len();
        debug_assert_eq!(values.len(), rows * self.dim);
        debug_assert_eq!(errors.len(), rows);
        let valid = NullBuffer::from(errors.iter().map(Option::is_none).collect::<Vec<_>>());
        let DataType::FixedSizeList(item, size) = self.schema.field(1).data_type().clone() else {
            unreachable!("the schema above");
        };
        let embedding = FixedSizeListArray::try_new(
            item,
            size,
            Arc::new(Float32Array::from(values)),
            Some(valid),
        )?;
        let batch = RecordBatch::try_new(
            self.schema.clone(),
            vec![
                Arc::new(StringArray::from(ids)),
                Arc::new(embedding),
                Arc::new(StringArray::from(errors)),
            ],
        )?;
        self.writer
            .write(&batch)
            .with_context(|| format!("cannot write {}", self.temp.display()))
    }

    pub fn finish(self) -> Result<()> {
        let EmbeddingWriter {
            writer, temp, path, ..
        } = self;
        writer
            .close()
            .with_context(|| format!("cannot write {}", temp.display()))?;
        std::fs::rename(&temp, &path)
            .with_context(|| format!("cannot move {} to {}", temp.display(), path.display()))
    }

    /// Removes the temporary file (after an error).
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.temp);
    }
}

/// The embedding table read back whole, checked as `latentlab.index_from_table` checks it.
pub struct Embeddings {
    pub model: String,
    pub dim: usize,
    pub ids: Vec<String>,
    /// rows × dim, row-major.
    pub values: Vec<f32>,
    /// Rows left out for an error (with --skip-errors).
    pub skipped: usize,
}

/// Options of reading an embedding table (`latentlab index build`).
pub struct ReadOptions<'a> {
    pub model: Option<&'a str>,
    pub id_column: &'a str,
    pub embedding_column: &'a str,
    pub skip_errors: bool,
}

/// Reads an embedding table (the CLI's or `latentlab.ray`'s), refusing what
/// `index_from_parquet` refuses with the same reasons: rows with an error (unless
/// `skip_errors`), a missing column, another model than `model`, a column that is not a
/// fixed-size list of floats, a dimension other than the metadata's, a null id or embedding.
pub fn read_embeddings(path: &Path, options: &ReadOptions) -> Result<Embeddings> {
    let schema = open(path, &[], 1)?.schema;
    let has_errors = schema.index_of(ERROR_COLUMN).is_ok();
    let mut wanted = vec![options.id_column, options.embedding_column];
    if has_errors {
        wanted.push(ERROR_COLUMN);
    }
    // Checked before reading anything else, in index_from_table's order: the columns, the
    // model, the type, the metadata's dimension.
    column_indices(path, &schema, &wanted)?;
    let metadata = schema.metadata();
    let found = metadata.get(MODEL_KEY).cloned().unwrap_or_default();
    if let Some(model) = options.model {
        if !found.is_empty() && found != model {
            bail!(
                "{}: the table holds embeddings of {found:?}, not of {model:?}",
                path.display()
            );
        }
    }
    let field = schema.field_with_name(options.embedding_column)?;
    let dim = match field.data_type() {
        DataType::FixedSizeList(item, size)
            if matches!(
                item.data_type(),
                DataType::Float16 | DataType::Float32 | DataType::Float64
            ) =>
        {
            usize::try_from(*size).context("a negative list size")?
        }
        other => bail!(
            "{}: column {:?} is {other}: expected fixed_size_list<float32>[dim]",
            path.display(),
            options.embedding_column
        ),
    };
    if dim == 0 {
        bail!(
            "{}: column {:?} has 0 dimensions",
            path.display(),
            options.embedding_column
        );
    }
    if let Some(said) = metadata.get(DIM_KEY) {
        if said.trim().parse::<usize>().ok() != Some(dim) {
            bail!(
                "{}: column {:?} has {dim} dimensions but the schema metadata says {said}",
                path.display(),
                options.embedding_column
            );
        }
    }

    let mut table = open(path, &wanted, 8192)?;
    let mut out = Embeddings {
        model: options.model.map(str::to_string).unwrap_or(found),
        dim,
        ids: Vec::new(),
        values: Vec::new(),
        skipped: 0,
    };
    // (row, id, error) of every failed row: all are counted, three are shown.
    let mut failed: Vec<(usize, String, String)> = Vec::new();
    let mut total = 0usize;
    for batch in table.batches.by_ref() {
        let batch = batch.with_context(|| format!("cannot read {}", path.display()))?;
        let ids = id_cells(column(&batch, options.id_column)?)
            .with_context(|| format!("{}: column {:?}", path.display(), options.id_column))?;
        let errors = if has_errors {
            let cells = byte_cells(column(&batch, ERROR_COLUMN)?)
                .with_context(|| format!("{}: column {ERROR_COLUMN:?}", path.display()))?;
            cells
                .into_iter()
                .map(|c| c.map(|b| String::from_utf8_lossy(b).into_owned()))
                .collect()
        } else {
            vec![None; batch.num_rows()]
        };
        let vectors = column(&batch, options.embedding_column)?.as_fixed_size_list();
        let flat = float_values(vectors.values())?;
        for row in 0..batch.num_rows() {
            let at = total + row;
            if let Some(error) = &errors[row] {
                let id = ids[row].clone().unwrap_or_else(|| at.to_string());
                failed.push((at, id, error.clone()));
                continue;
            }
            let Some(id) = &ids[row] else {
                bail!(
                    "{}: column {:?} is null in row {at}: every row needs an id and an embedding",
                    path.display(),
                    options.id_column
                );
            };
            if vectors.is_null(row) {
                bail!(
                    "{}: column {:?} is null in row {at}: every row needs an id and an embedding",
                    path.display(),
                    options.embedding_column
                );
            }
            let start = vectors.value_offset_at(row);
            out.ids.push(id.clone());
            out.values.extend_from_slice(&flat[start..start + dim]);
        }
        total += batch.num_rows();
    }
    if !failed.is_empty() {
        if !options.skip_errors {
            let shown: Vec<String> = failed
                .iter()
                .take(3)
                .map(|(_, id, e)| format!("{id:?}: {e}"))
                .collect();
            let more = if failed.len() > 3 {
                format!(" (and {} more)", failed.len() - 3)
            } else {
                String::new()
            };
            bail!(
                "{}: {} of {total} rows have no embedding: {}{more}; pass --skip-errors to build the index from the others",
                path.display(),
                failed.len(),
                shown.join("; ")
            );
        }
        out.skipped = failed.len();
    }
    Ok(out)
}

/// A list's float values as f32 (float16 and float64 lists are read too, as Python's
/// `index_from_table` reads any floating type).
fn float_values(values: &ArrayRef) -> Result<std::borrow::Cow<'_, [f32]>> {
    use std::borrow::Cow;
    Ok(match values.data_type() {
        DataType::Float32 => Cow::Borrowed(values.as_primitive::<Float32Type>().values()),
        DataType::Float16 => Cow::Owned(
            values
                .as_primitive::<Float16Type>()
                .values()
                .iter()
                .map(|v| v.to_f32())
                .collect(),
        ),
        DataType::Float64 => Cow::Owned(
            values
                .as_primitive::<Float64Type>()
                .values()
                .iter()
                .map(|&v| v as f32)
                .collect(),
        ),
        other => bail!("list values of {other}: expected floats"),
    })
}
