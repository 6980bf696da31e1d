//! `-` as a file name: `-o -` writes to standard output, and `-` as an
//! input reads standard input, with the real binary.

mod common;

use common::{run, run_with_stdin, samples, tempdir};

#[test]
fn export_to_stdout_writes_the_csv_there_and_no_file_named_dash() {
    let dir = tempdir();
    let out = run(dir.path(), &["export", "accounts", "--emulator", "-o", "-"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut reader = csv::Reader::from_reader(out.stdout.as_bytes());
    assert_eq!(&reader.headers().unwrap()[0], "name");
    let names: Vec<String> = reader.records().map(|r| r.unwrap()[0].to_owned()).collect();
    assert!(names.contains(&"contoso".to_owned()), "{names:?}");
    assert!(out.stderr.contains("to standard output"), "{}", out.stderr);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "files left beside the run: {left:?}");

    // Both cannot have standard output; Excel needs a file.
    let json = run(
        dir.path(),
        &["export", "accounts", "--emulator", "-o", "-", "--json"],
    );
    assert_eq!(json.code, 2, "{}", json.stderr);
    let xlsx = run(
        dir.path(),
        &[
            "export",
            "accounts",
            "--emulator",
            "-o",
            "-",
            "--format",
            "xlsx",
        ],
    );
    assert_eq!(xlsx.code, 2, "{}", xlsx.stderr);
    assert!(xlsx.stdout.is_empty());
}

#[test]
fn acs_search_to_stdout_with_dash() {
    let dir = tempdir();
    let out = run(
        dir.path(),
        &[
            "acs",
            "search",
            "--emulator",
            "--country",
            "US",
            "--type",
            "geographic",
            "--assignment",
            "person",
            "--quantity",
            "2",
            "-o",
            "-",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("requestRow,searchId,phoneNumber"),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.lines().count(), 3, "{}", out.stdout);
    assert!(!dir.path().join("-").exists());
}

#[test]
fn validate_reads_a_sheet_from_stdin() {
    let dir = tempdir();
    let sheet = std::fs::read(samples().join("mistakes.csv")).unwrap();
    let out = run_with_stdin(dir.path(), &["validate", "-", "--report", "-"], &sheet);
    assert_eq!(out.code, 1, "{}", out.stderr);
    // The report on stdout names the bad rows of the sheet read from stdin.
    assert!(out.stdout.starts_with("row,"), "{}", out.stdout);
    assert!(out.stdout.contains("+9992079460502"), "{}", out.stdout);
    assert!(out.stderr.contains("stdin:"), "{}", out.stderr);
}

#[test]
fn import_reads_stdin_and_keeps_it_beside_the_results_for_resume() {
    let dir = tempdir();
    let sheet = std::fs::read(samples().join("operator-connect.csv")).unwrap();
    let out = run_with_stdin(
        dir.path(),
        &[
            "import",
            "-",
            "--emulator",
            "--results",
            "piped.results.csv",
        ],
        &sheet,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let results = common::read_csv(&dir.path().join("piped.results.csv"));
    assert_eq!(results.len(), 21, "a heading and 20 numbers");
    let kept = std::fs::read(dir.path().join("piped.results.input.csv"))
        .expect("the piped sheet is kept beside the results");
    assert_eq!(kept, sheet);
    assert!(!dir.path().join("-").exists());
}

#[test]
fn write_clean_to_dash_writes_the_clean_sheet_to_stdout() {
    let dir = tempdir();
    let sheet = samples().join("operator-connect.csv");
    let sheet = sheet.to_str().unwrap();
    let out = common::run(dir.path(), &["validate", sheet, "--write-clean", "-"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 21, "a heading and 20 numbers: {}", out.stdout);
    assert!(lines[0].contains("telephoneNumber"), "{}", lines[0]);
    assert!(lines[1].starts_with('+'), "{}", lines[1]);
    assert!(!dir.path().join("-").exists());
    // Two outputs on standard output would mix: refused.
    let out = common::run(
        dir.path(),
        &["validate", sheet, "--write-clean", "-", "--json"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--write-clean -"), "{}", out.stderr);
}
