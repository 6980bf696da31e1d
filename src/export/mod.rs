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

use crate::client::{path, paths, ListOptions, ProvisioningClient, ServiceError};
use crate::csvconf;
use crate::journal::{Journal, JournalError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio::sync::watch;

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
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
    pub kind: Kind,
    /// Restrict numbers and civic addresses to these accounts.
    pub accounts: Vec<String>,
    pub out: PathBuf,
    pub format: Format,
    pub page_size: usize,
    pub checkpoint: PathBuf,
    /// Start over even if an unfinished export's checkpoint is there.
    pub restart: bool,
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
    #[error(
        "{checkpoint} belongs to another export ({differs}); give --restart to start this one over"
    )]
    Mismatch {
        checkpoint: PathBuf,
        differs: String,
    },
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "camelCase")]
enum Record {
    Header {
        kind: Kind,
        accounts: Vec<String>,
        /// The collections to page through, in order (paths).
        sources: Vec<String>,
        out: PathBuf,
        format: Format,
        page_size: usize,
        endpoint: String,
        created: String,
    },
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
    pub stopped: bool,
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Numbers => "numbers",
        Kind::Accounts => "accounts",
        Kind::Rfis => "rfis",
        Kind::CivicAddresses => "civic-addresses",
    }
}

fn headings(kind: Kind) -> Vec<String> {
    match kind {
        Kind::Numbers => rows::number_headings(),
        Kind::Accounts => rows::account_headings(),
        Kind::Rfis => rows::rfi_headings(),
        Kind::CivicAddresses => rows::civic_headings(),
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

/// Fetches the page at `link` and writes its items with `write`, which
/// answers how many rows an item made.
async fn write_page<T: DeserializeOwned>(
    client: &ProvisioningClient,
    link: &str,
    what: &str,
    stop: &mut watch::Receiver<bool>,
    output: &mut Output,
    mut write: impl FnMut(&T, &mut Output) -> Result<u64, ExportError>,
) -> Result<PageWritten, ExportError> {
    let failed = |error| ExportError::Service {
        what: what.to_owned(),
        error,
    };
    let mut pager = client.resume_list::<T>(link).map_err(failed)?;
    let Some(page) = pager.next_page(stop).await else {
        return Ok(PageWritten {
            rows: 0,
            next: None,
            record_count: None,
        });
    };
    let page = page.map_err(failed)?;
    let mut rows = 0;
    for item in &page.items {
        rows += write(item, output)?;
    }
    Ok(PageWritten {
        rows,
        next: page.next_link.map(|link| link.to_string()),
        record_count: page.record_count,
    })
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

/// Runs (or continues) an export. `progress` gets the rows written and,
/// once the service has said, the total.
pub async fn export(
    client: &ProvisioningClient,
    options: &ExportOptions,
    endpoint: &str,
    mut stop: watch::Receiver<bool>,
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
    let previous: Option<Vec<Record>> = match Journal::read::<Record>(&options.checkpoint) {
        Ok(records)
            if !options.restart
                && !records.iter().any(|r| matches!(r, Record::Finished { .. })) =>
        {
            Some(records)
        }
        _ => None,
    };
    let mut resumed = false;
    let (journal, sources, mut source, mut next, mut rows, mut output) = match previous {
        Some(records) if !records.is_empty() => {
            let (journal, records) = Journal::open::<Record>(&options.checkpoint)?;
            let Some(Record::Header {
                kind,
                accounts,
                sources,
                out,
                format,
                page_size,
                ..
            }) = records.first().cloned()
            else {
                return Err(JournalError::NoHeader {
                    path: options.checkpoint.clone(),
                }
                .into());
            };
            let differs = if kind != options.kind {
                Some(format!("it exports {}", kind_name(kind)))
            } else if accounts != options.accounts {
                Some("other accounts".to_owned())
            } else if out != options.out || format != options.format {
                Some("another output".to_owned())
            } else if page_size != options.page_size {
                Some("another page size".to_owned())
            } else {
                None
            };
            if let Some(differs) = differs {
                return Err(ExportError::Mismatch {
                    checkpoint: options.checkpoint.clone(),
                    differs,
                });
            }
            let Some(Record::Page {
                source,
                next,
                rows,
                bytes,
            }) = records
                .iter()
                .rev()
                .find(|r| matches!(r, Record::Page { .. }))
                .cloned()
            else {
                return Err(JournalError::NoHeader {
                    path: options.checkpoint.clone(),
                }
                .into());
            };
            resumed = true;
            tracing::info!("continuing the export from row {rows} (source {source})");
            let output = Output::open(&data_path, Some(bytes))?;
            (journal, sources, source as usize, next, rows, output)
        }
        _ => {
            let sources: Vec<String> = match (options.kind, options.accounts.is_empty()) {
                (Kind::Numbers, true) => vec![paths::NUMBERS.into()],
                (Kind::Numbers, false) => options
                    .accounts
                    .iter()
                    .map(|a| paths::account_numbers(a))
                    .collect(),
                (Kind::Accounts, _) => vec![paths::ACCOUNTS.into()],
                (Kind::Rfis, _) => vec![paths::RFIS.into()],
                (Kind::CivicAddresses, all) => {
                    let accounts = if all {
                        account_names(client, options.page_size, &mut stop).await?
                    } else {
                        options.accounts.clone()
                    };
                    accounts.iter().map(|a| paths::civic_addresses(a)).collect()
                }
            };
            let journal = Journal::create(
                &options.checkpoint,
                &Record::Header {
                    kind: options.kind,
                    accounts: options.accounts.clone(),
                    sources: sources.clone(),
                    out: options.out.clone(),
                    format: options.format,
                    page_size: options.page_size,
                    endpoint: endpoint.to_owned(),
                    created: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                        .to_string(),
                },
            )?;
            let mut output = Output::open(&data_path, None)?;
            output.write(&headings(options.kind))?;
            let bytes = output.sync()?;
            let first = sources
                .first()
                .map(|s| first_page(client, s, options.page_size).to_string());
            journal
                .append(&Record::Page {
                    source: 0,
                    next: first.clone(),
                    rows: 0,
                    bytes,
                })
                .await?;
            (journal, sources, 0usize, first, 0u64, output)
        }
    };

    let requests_before = client
        .counters()
        .requests
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut pages = 0u64;
    let mut total: Option<u64> = None;
    let mut stopped = false;
    progress(rows, total);
    while source < sources.len() {
        let Some(link) = next.clone() else {
            source += 1;
            next = sources
                .get(source)
                .map(|s| first_page(client, s, options.page_size).to_string());
            continue;
        };
        if *stop.borrow() {
            stopped = true;
            break;
        }
        let what = format!("GET {}", sources[source]);
        let written = match options.kind {
            Kind::Numbers => {
                write_page(client, &link, &what, &mut stop, &mut output, |n, out| {
                    out.write(&rows::number_row(n)).map(|()| 1)
                })
                .await
            }
            Kind::Accounts => {
                write_page(client, &link, &what, &mut stop, &mut output, |a, out| {
                    out.write(&rows::account_row(a)).map(|()| 1)
                })
                .await
            }
            Kind::Rfis => {
                write_page(client, &link, &what, &mut stop, &mut output, |r, out| {
                    out.write(&rows::rfi_row(r)).map(|()| 1)
                })
                .await
            }
            Kind::CivicAddresses => {
                let account = sources[source].split('/').nth(2).unwrap_or("");
                let account = path::decode_segment(account);
                write_page(
                    client,
                    &link,
                    &what,
                    &mut stop,
                    &mut output,
                    |address, out| {
                        let mut written = 0;
                        for row in rows::civic_rows(&account, address) {
                            out.write(&row)?;
                            written += 1;
                        }
                        Ok(written)
                    },
                )
                .await
            }
        };
        let written = match written {
            Err(ExportError::Service {
                error: ServiceError::Stopped,
                ..
            }) => {
                stopped = true;
                break;
            }
            other => other?,
        };
        if let Some(count) = written.record_count {
            if options.accounts.len() <= 1
                && matches!(options.kind, Kind::Numbers | Kind::Accounts | Kind::Rfis)
            {
                total = Some(count);
            }
        }
        rows += written.rows;
        let bytes = output.sync()?;
        next = written.next;
        journal
            .append(&Record::Page {
                source: source as u32,
                next: next.clone(),
                rows,
                bytes,
            })
            .await?;
        pages += 1;
        progress(rows, total);
    }
    let complete = !stopped && source >= sources.len();
    if complete {
        output.sync()?;
        drop(output);
        if options.format == Format::Xlsx {
            if let Err(e) = to_xlsx(&data_path, &options.out) {
                // Half a workbook is of no use; the CSV it is made from
                // stays for the next try.
                let _ = std::fs::remove_file(&options.out);
                return Err(e);
            }
            let _ = std::fs::remove_file(&data_path);
        }
        journal.append(&Record::Finished { rows }).await?;
    }
    Ok(ExportSummary {
        kind: kind_name(options.kind).to_owned(),
        out: options.out.clone(),
        rows,
        pages,
        requests: client
            .counters()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
            - requests_before,
        elapsed_seconds: started.elapsed().as_secs_f64(),
        resumed,
        stopped: !complete,
    })
}

fn first_page(client: &ProvisioningClient, source: &str, page_size: usize) -> url::Url {
    let options = ListOptions {
        max_page_size: Some(page_size),
        count_records: true,
    };
    client.url(source, &options.query())
}

/// Converts the finished CSV into an .xlsx, every cell as text so Excel
/// keeps the `+` of numbers, in constant memory.
fn to_xlsx(csv_path: &Path, xlsx_path: &Path) -> Result<(), ExportError> {
    let err = |source| ExportError::Write {
        path: xlsx_path.to_owned(),
        source,
    };
    let xlsx = |e: rust_xlsxwriter::XlsxError| err(io::Error::other(e.to_string()));
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook
        .add_worksheet_with_constant_memory()
        .map_err(xlsx)?;
    sheet.set_name("Export").map_err(xlsx)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(csv_path)
        .map_err(|e| err(e.into()))?;
    for (r, record) in reader.records().enumerate() {
        let record = record.map_err(|e| err(e.into()))?;
        for (c, cell) in record.iter().enumerate() {
            if !cell.is_empty() {
                sheet.write_string(r as u32, c as u16, cell).map_err(xlsx)?;
            }
        }
    }
    workbook.save(xlsx_path).map_err(xlsx)?;
    Ok(())
}
