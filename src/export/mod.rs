//! Exporting what the gateway holds: numbers, accounts, RFIs or civic
//! addresses, paged through `nextLink` at the run's pace, streamed to CSV
//! (or `.xlsx`) so memory does not grow with the gateway's size.
//!
//! An export keeps a checkpoint beside its output: after each page the rows
//! are made durable, then the page's `nextLink` and the file's length are
//! recorded. A stopped export run again continues from the last recorded
//! page, with the file cut back to the recorded length, so it ends with
//! every row exactly once.

pub mod rows;

use crate::client::pager::Page;
use crate::client::{path, paths, ClientError, ListOptions, ProvisioningClient, ServiceError};
use crate::csvconf;
use crate::journal::JournalError;
use crate::model::{Account, CivicAddress, Number, RequestForInformation};
use crate::runner::checkpoint::{self, Begin, Checkpoint, CheckpointError, Mismatch, Settings};
use crate::runner::{self, Limits, Panicked, Step, Stop, StopReason, UnitError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;

/// The collection an export pages through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Collection {
    Numbers,
    Accounts,
    Rfis,
    CivicAddresses,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Xlsx,
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub collection: Collection,
    /// Restrict numbers and civic addresses to these accounts.
    pub accounts: Vec<String>,
    pub out: PathBuf,
    pub format: Format,
    pub page_size: usize,
    pub checkpoint: PathBuf,
    /// Start over even if an unfinished export's checkpoint is there.
    pub restart: bool,
    /// Keep the checkpoint of a finished export (else it is removed).
    pub keep_checkpoint: bool,
    /// The run's non-secret settings, kept in the checkpoint.
    pub settings: Settings,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{what}: {error}")]
    Service { what: String, error: ServiceError },
    #[error("{} belongs to another export ({mismatch}); give --restart to start this one over", checkpoint.display())]
    Mismatch {
        checkpoint: PathBuf,
        mismatch: Mismatch,
    },
    #[error("{0}")]
    Fatal(String),
}

impl ExportError {
    /// The file that could not be written, when that is the trouble (a
    /// full disk): the export can go on once there is room.
    pub fn unwritable(&self) -> Option<&Path> {
        match self {
            ExportError::Write { path, .. } => Some(path),
            ExportError::Journal(e) => e.unwritable(),
            _ => None,
        }
    }
}

/// What an export is: the first line of its checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportHeader {
    kind: Collection,
    accounts: Vec<String>,
    /// The collections to page through, in order (paths).
    sources: Vec<String>,
    out: PathBuf,
    format: Format,
    page_size: usize,
    endpoint: String,
    created: String,
    /// The run's non-secret settings (none in checkpoints before them).
    #[serde(default, skip_serializing_if = "Settings::is_empty")]
    settings: Settings,
}

impl checkpoint::Header for ExportHeader {
    /// The sources follow from the rest (and, for the civic addresses of
    /// every account, would cost a listing to know).
    fn differs_from(&self, this_run: &Self) -> Option<Mismatch> {
        Mismatch::setting("collection", &self.kind, &this_run.kind)
            .or_else(|| Mismatch::setting("accounts", &self.accounts, &this_run.accounts))
            .or_else(|| Mismatch::setting("output", &self.out, &this_run.out))
            .or_else(|| Mismatch::setting("format", &self.format, &this_run.format))
            .or_else(|| Mismatch::setting("page size", &self.page_size, &this_run.page_size))
    }
}

/// One line of an export's checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "camelCase")]
enum Entry {
    Header(ExportHeader),
    /// After this page: continue with `next` in source `source` (`None`: the
    /// source is done); `rows` rows and `bytes` bytes are in the file.
    Page {
        source: u32,
        next: Option<String>,
        rows: u64,
        bytes: u64,
    },
    Finished {
        rows: u64,
    },
}

impl checkpoint::Line for Entry {
    type Header = ExportHeader;

    fn from_header(header: ExportHeader) -> Self {
        Entry::Header(header)
    }

    fn into_header(self) -> Option<ExportHeader> {
        match self {
            Entry::Header(header) => Some(header),
            _ => None,
        }
    }

    fn is_finished(&self) -> bool {
        matches!(self, Entry::Finished { .. })
    }
}

/// What an export did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportSummary {
    pub kind: String,
    pub out: PathBuf,
    pub rows: u64,
    pub pages: u64,
    pub requests: u64,
    pub elapsed_seconds: f64,
    /// It went on from an earlier, stopped export.
    pub resumed: bool,
    /// Rows the earlier, stopped export had written (when `resumed`).
    pub rows_before: u64,
    /// The export finished and its checkpoint was removed.
    pub checkpoint_removed: bool,
    pub stopped: bool,
    /// Why the export stopped early, when it did.
    pub stop_reason: Option<StopReason>,
}

impl Collection {
    /// The name of an .xlsx export's sheet.
    pub fn sheet_name(self) -> &'static str {
        match self {
            Collection::Numbers => "Numbers",
            Collection::Accounts => "Accounts",
            Collection::Rfis => "RFIs",
            Collection::CivicAddresses => "Civic addresses",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Collection::Numbers => "numbers",
            Collection::Accounts => "accounts",
            Collection::Rfis => "rfis",
            Collection::CivicAddresses => "civic-addresses",
        }
    }
}

fn headings(collection: Collection) -> Vec<String> {
    match collection {
        Collection::Numbers => rows::number_headings(),
        Collection::Accounts => rows::account_headings(),
        Collection::Rfis => rows::rfi_headings(),
        Collection::CivicAddresses => rows::civic_headings(),
    }
}

/// The names of every account, paged (for civic addresses of all, and an
/// import's check that its accounts exist).
pub async fn account_names(
    client: &ProvisioningClient,
    page_size: usize,
    stop: &mut watch::Receiver<bool>,
) -> Result<Vec<String>, ExportError> {
    let accounts = client
        .list_accounts(&ListOptions::page_size(page_size))
        .collect_all(stop)
        .await
        .map_err(|error| ExportError::Service {
            what: "listing accounts".into(),
            error,
        })?;
    Ok(accounts.into_iter().filter_map(|a| a.name).collect())
}

/// One fetched and written page: the rows it added, the next page's link
/// and the list's total when the service counted it.
struct PageWritten {
    rows: u64,
    next: Option<String>,
    record_count: Option<u64>,
}

/// The page at `link` (`None` when there is none).
async fn fetch<T: DeserializeOwned>(
    client: &ProvisioningClient,
    link: &str,
    what: &str,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<Page<T>>, ExportError> {
    let failed = |error| ExportError::Service {
        what: what.to_owned(),
        error,
    };
    let mut pager = client.resume_list::<T>(link).map_err(failed)?;
    pager.next_page(stop).await.transpose().map_err(failed)
}

struct Output {
    path: PathBuf,
    file: File,
    csv: csv::Writer<BufWriter<File>>,
}

impl Output {
    fn open(path: &Path, length: Option<u64>) -> Result<Output, ExportError> {
        let err = |source| ExportError::Write {
            path: path.to_owned(),
            source,
        };
        let file = match length {
            // Resuming: cut off whatever came after the last recorded page.
            Some(length) => {
                let file = OpenOptions::new().write(true).open(path).map_err(err)?;
                file.set_len(length).map_err(err)?;
                file
            }
            None => File::create(path).map_err(err)?,
        };
        let appender = OpenOptions::new().append(true).open(path).map_err(err)?;
        Ok(Output {
            path: path.to_owned(),
            file,
            csv: csvconf::writer(BufWriter::with_capacity(256 * 1024, appender)),
        })
    }

    fn write(&mut self, row: &[String]) -> Result<(), ExportError> {
        self.csv.write_record(row).map_err(|e| ExportError::Write {
            path: self.path.clone(),
            source: e.into(),
        })
    }

    /// Makes what was written durable; returns the file's length.
    fn sync(&mut self) -> Result<u64, ExportError> {
        let err = |source| ExportError::Write {
            path: self.path.clone(),
            source,
        };
        self.csv.flush().map_err(err)?;
        self.file.sync_data().map_err(err)?;
        Ok(self.file.metadata().map_err(err)?.len())
    }
}

/// A unit of an export: the page at `next` of source `source` (`None`:
/// the source is done), with `rows` rows in the file before it.
#[derive(Debug, Clone)]
struct PageUnit {
    source: usize,
    next: Option<String>,
    rows: u64,
}

/// A page written: the rows in the file after it, and the total the
/// service gave, if it did.
struct PageDone {
    rows: u64,
    total: Option<u64>,
}

impl From<Panicked> for ExportError {
    fn from(Panicked(message): Panicked) -> Self {
        ExportError::Fatal(message)
    }
}

/// What every page of an export shares.
struct Pages {
    client: Arc<ProvisioningClient>,
    collection: Collection,
    accounts: usize,
    page_size: usize,
    sources: Vec<String>,
    checkpoint: Checkpoint<Entry>,
    output: Mutex<Output>,
}

impl Pages {
    /// Fetches the page at `link` of source `source` and writes its rows.
    async fn fetch_and_write(
        &self,
        source: usize,
        link: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<PageWritten, ExportError> {
        let what = format!("GET {}", self.sources[source]);
        let client = &self.client;
        match self.collection {
            Collection::Numbers => {
                let page = fetch::<Number>(client, link, &what, stop).await?;
                self.write(page, |n, out| out.write(&rows::number_row(n)).map(|()| 1))
            }
            Collection::Accounts => {
                let page = fetch::<Account>(client, link, &what, stop).await?;
                self.write(page, |a, out| out.write(&rows::account_row(a)).map(|()| 1))
            }
            Collection::Rfis => {
                let page = fetch::<RequestForInformation>(client, link, &what, stop).await?;
                self.write(page, |r, out| out.write(&rows::rfi_row(r)).map(|()| 1))
            }
            Collection::CivicAddresses => {
                let account = self.sources[source].split('/').nth(2).unwrap_or("");
                let account = path::decode_segment(account);
                let page = fetch::<CivicAddress>(client, link, &what, stop).await?;
                self.write(page, |address, out| {
                    let mut written = 0;
                    for row in rows::civic_rows(&account, address) {
                        out.write(&row)?;
                        written += 1;
                    }
                    Ok(written)
                })
            }
        }
    }

    /// Writes a page's items with `write`, which answers how many rows an
    /// item made.
    fn write<T>(
        &self,
        page: Option<Page<T>>,
        mut write: impl FnMut(&T, &mut Output) -> Result<u64, ExportError>,
    ) -> Result<PageWritten, ExportError> {
        let Some(page) = page else {
            return Ok(PageWritten {
                rows: 0,
                next: None,
                record_count: None,
            });
        };
        let mut output = self.output.lock().expect("the output lock");
        let mut rows = 0;
        for item in &page.items {
            rows += write(item, &mut output)?;
        }
        Ok(PageWritten {
            rows,
            next: page.next_link.map(|link| link.to_string()),
            record_count: page.record_count,
        })
    }

    /// The total the service says the collection holds, when it is the
    /// export's total.
    fn total(&self, record_count: Option<u64>) -> Option<u64> {
        (self.accounts <= 1
            && matches!(
                self.collection,
                Collection::Numbers | Collection::Accounts | Collection::Rfis
            ))
        .then_some(record_count)
        .flatten()
    }
}

/// Fetches and writes one page, makes it durable and records it; yields
/// the next page.
async fn fetch_page(
    pages: Arc<Pages>,
    unit: PageUnit,
    stop: Stop,
) -> Result<Step<PageUnit, PageDone>, UnitError<ExportError>> {
    let PageUnit { source, next, rows } = unit;
    let Some(link) = next else {
        let source = source + 1;
        let next = pages
            .sources
            .get(source)
            .map(|s| first_page(&pages.client, s, pages.page_size).to_string());
        let more = (source < pages.sources.len()).then_some(PageUnit { source, next, rows });
        return Ok(Step::yields(more.into_iter().collect()));
    };
    let written = match pages
        .fetch_and_write(source, &link, &mut stop.watch())
        .await
    {
        Err(ExportError::Service {
            error: ServiceError::Client(ClientError::Stopped),
            ..
        }) => return Err(UnitError::Stopped),
        Err(ExportError::Service {
            error: error @ ServiceError::Client(ClientError::Outage { .. }),
            ..
        }) => return Err(UnitError::Stop(StopReason::Outage(error.to_string()))),
        other => other.map_err(UnitError::Failed)?,
    };
    let total = pages.total(written.record_count);
    let rows = rows + written.rows;
    let bytes = pages
        .output
        .lock()
        .expect("the output lock")
        .sync()
        .map_err(UnitError::Failed)?;
    let next = written.next;
    let page = Entry::Page {
        source: source as u32,
        next: next.clone(),
        rows,
        bytes,
    };
    pages
        .checkpoint
        .append(&page)
        .await
        .map_err(|e| UnitError::Failed(e.into()))?;
    Ok(Step::then(
        PageDone { rows, total },
        Some(PageUnit { source, next, rows }),
    ))
}

/// Where an export begins: its checkpoint, sources, the first page to
/// fetch and the output; whether it continues an earlier one.
struct Start {
    checkpoint: Checkpoint<Entry>,
    sources: Vec<String>,
    unit: PageUnit,
    output: Output,
    resumed: bool,
}

/// Continues the unfinished export of the same output, or begins anew.
async fn start(
    client: &ProvisioningClient,
    options: &ExportOptions,
    endpoint: &str,
    data_path: &Path,
    stop: &Stop,
) -> Result<Start, ExportError> {
    let this_run = ExportHeader {
        kind: options.collection,
        accounts: options.accounts.clone(),
        sources: Vec::new(),
        out: options.out.clone(),
        format: options.format,
        page_size: options.page_size,
        endpoint: endpoint.to_owned(),
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        settings: options.settings.clone(),
    };
    let fresh = match checkpoint::begin(&options.checkpoint, &this_run, options.restart) {
        Ok(Begin::Continue(checkpoint, (header, entries))) => {
            return continued(options, data_path, checkpoint, header, entries)
        }
        Ok(Begin::Fresh) => this_run,
        Err(CheckpointError::Journal(e)) => return Err(e.into()),
        Err(CheckpointError::Mismatch {
            checkpoint,
            mismatch,
        }) => {
            return Err(ExportError::Mismatch {
                checkpoint,
                mismatch,
            })
        }
        Err(e @ CheckpointError::Unreadable { .. }) => {
            return Err(ExportError::Fatal(e.to_string()))
        }
    };
    let sources = sources(client, options, &mut stop.watch()).await?;
    let checkpoint = Checkpoint::create(
        &options.checkpoint,
        ExportHeader {
            sources: sources.clone(),
            ..fresh
        },
    )?;
    let mut output = Output::open(data_path, None)?;
    output.write(&headings(options.collection))?;
    let bytes = output.sync()?;
    let first = sources
        .first()
        .map(|s| first_page(client, s, options.page_size).to_string());
    let page = Entry::Page {
        source: 0,
        next: first.clone(),
        rows: 0,
        bytes,
    };
    checkpoint.append(&page).await?;
    Ok(Start {
        checkpoint,
        sources,
        unit: PageUnit {
            source: 0,
            next: first,
            rows: 0,
        },
        output,
        resumed: false,
    })
}

/// An export going on from its last recorded page, with the file cut back
/// to that page's length.
fn continued(
    options: &ExportOptions,
    data_path: &Path,
    checkpoint: Checkpoint<Entry>,
    header: ExportHeader,
    entries: Vec<Entry>,
) -> Result<Start, ExportError> {
    let Some(Entry::Page {
        source,
        next,
        rows,
        bytes,
    }) = entries
        .into_iter()
        .rev()
        .find(|e| matches!(e, Entry::Page { .. }))
    else {
        return Err(JournalError::NoHeader {
            path: options.checkpoint.clone(),
        }
        .into());
    };
    tracing::info!("continuing the export from row {rows} (source {source})");
    Ok(Start {
        checkpoint,
        sources: header.sources,
        unit: PageUnit {
            source: source as usize,
            next,
            rows,
        },
        output: Output::open(data_path, Some(bytes))?,
        resumed: true,
    })
}

/// The collections to page through, in order (paths).
async fn sources(
    client: &ProvisioningClient,
    options: &ExportOptions,
    stop: &mut watch::Receiver<bool>,
) -> Result<Vec<String>, ExportError> {
    Ok(match (options.collection, options.accounts.is_empty()) {
        (Collection::Numbers, true) => vec![paths::NUMBERS.into()],
        (Collection::Numbers, false) => options
            .accounts
            .iter()
            .map(|a| paths::account_numbers(a))
            .collect(),
        (Collection::Accounts, _) => vec![paths::ACCOUNTS.into()],
        (Collection::Rfis, _) => vec![paths::RFIS.into()],
        (Collection::CivicAddresses, all) => {
            let accounts = if all {
                account_names(client, options.page_size, stop).await?
            } else {
                options.accounts.clone()
            };
            accounts.iter().map(|a| paths::civic_addresses(a)).collect()
        }
    })
}

/// Runs (or continues) an export. `progress` gets the rows written and,
/// once the service has said, the total.
pub async fn export(
    client: Arc<ProvisioningClient>,
    options: &ExportOptions,
    endpoint: &str,
    stop: &Stop,
    progress: &(dyn Fn(u64, Option<u64>) + Sync),
) -> Result<ExportSummary, ExportError> {
    let started = Instant::now();
    let data_path = match options.format {
        Format::Csv => options.out.clone(),
        Format::Xlsx => {
            let mut name = options.out.clone().into_os_string();
            name.push(".partial.csv");
            PathBuf::from(name)
        }
    };
    let start = start(&client, options, endpoint, &data_path, stop).await?;
    let requests_before = client.counters().requests.load(Ordering::Relaxed);
    let mut rows = start.unit.rows;
    let rows_before = rows;
    let mut pages = 0u64;
    let mut total: Option<u64> = None;
    progress(rows, total);
    let shared = Arc::new(Pages {
        client: client.clone(),
        collection: options.collection,
        accounts: options.accounts.len(),
        page_size: options.page_size,
        sources: start.sources,
        checkpoint: start.checkpoint,
        output: Mutex::new(start.output),
    });
    // One page at a time: each page's link comes with the page before.
    let limits = Limits {
        concurrency: 1,
        grace: None,
    };
    let work = |unit, stop| fetch_page(shared.clone(), unit, stop);
    let ran = runner::run([start.unit], limits, stop, work, |page: PageDone| {
        rows = page.rows;
        total = page.total.or(total);
        pages += 1;
        progress(rows, total);
        Ok(())
    })
    .await;
    if let Some(error) = ran.error {
        return Err(error);
    }
    let complete = ran.drained;
    let Pages {
        checkpoint, output, ..
    } = Arc::into_inner(shared).expect("every page is done");
    let mut output = output.into_inner().expect("the output lock");
    if complete {
        output.sync()?;
        drop(output);
        if options.format == Format::Xlsx {
            if let Err(e) = to_xlsx(options.collection, &data_path, &options.out) {
                // Half a workbook is of no use; the CSV it is made from
                // stays for the next try.
                let _ = std::fs::remove_file(&options.out);
                return Err(e);
            }
            let _ = std::fs::remove_file(&data_path);
        }
        checkpoint.append(&Entry::Finished { rows }).await?;
    }
    checkpoint.close();
    let checkpoint_removed = complete && !options.keep_checkpoint;
    if checkpoint_removed {
        checkpoint::remove(&options.checkpoint)?;
    }
    Ok(ExportSummary {
        kind: options.collection.name().to_owned(),
        out: options.out.clone(),
        rows,
        pages,
        requests: client.counters().requests.load(Ordering::Relaxed) - requests_before,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        resumed: start.resumed,
        rows_before,
        checkpoint_removed,
        stopped: !complete,
        stop_reason: ran.stopped.filter(|_| !complete),
    })
}

fn first_page(client: &ProvisioningClient, source: &str, page_size: usize) -> url::Url {
    let options = ListOptions {
        max_page_size: Some(page_size),
        count_records: true,
    };
    client.url(source, &options.query())
}

/// Converts the finished CSV into an .xlsx (see [`crate::xlsx`]): a sheet
/// named after the collection, every cell as text so Excel keeps the `+` of
/// numbers, in constant memory.
fn to_xlsx(collection: Collection, csv_path: &Path, xlsx_path: &Path) -> Result<(), ExportError> {
    let err = |source| ExportError::Write {
        path: xlsx_path.to_owned(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(csv_path)
        .map_err(|e| err(e.into()))?;
    let headings = reader.headers().map_err(|e| err(e.into()))?.clone();
    let headings: Vec<&str> = headings.iter().collect();
    let mut book = crate::xlsx::WorkbookWriter::new();
    let table = book
        .add_table(collection.sheet_name(), &headings)
        .map_err(err)?;
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(|e| err(e.into()))? {
        let cells = record.iter().map(crate::xlsx::Cell::Text);
        book.write_row(table, cells, false).map_err(err)?;
    }
    book.save(xlsx_path).map_err(err)
}
