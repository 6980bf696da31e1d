//! Reconcile speed and memory: `cargo bench --bench reconcile`.
//!
//! A desired sheet of 1,000,000 numbers and an export of 1,000,000
//! provisioned numbers that differ by 5 % (1 % missing, 1 % extra, 1 %
//! moved, 2 % changed), both generated (seeded) in the formats acgbulk
//! reads and writes; `acgbulk reconcile DESIRED --actual EXPORT --out DIR`
//! run `BENCH_RUNS` times (default 5): median wall time and peak RSS, and a
//! check of the counts it reports.

#[path = "common.rs"]
mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

const NUMBERS: u64 = 1_000_000;
/// The first eight of the samples' account names.
const ACCOUNTS: &[&str] = acgbulk::sample::ACCOUNT_NAMES.split_at(8).0;

/// The number, account and usage of row `i` on each side.
fn desired(i: u64) -> (u64, &'static str, &'static str) {
    let usage = if i.is_multiple_of(3) {
        "ConferenceAssignment"
    } else {
        "CallingUserAssignment"
    };
    (
        14252000000 + i,
        ACCOUNTS[(i / 1000) as usize % ACCOUNTS.len()],
        usage,
    )
}

fn write_sides(dir: &Path) {
    let (d, a) = (
        dir.join("reconcile-desired.csv"),
        dir.join("reconcile-export.csv"),
    );
    if d.exists() && a.exists() {
        return;
    }
    let mut desired_out = std::io::BufWriter::new(std::fs::File::create(&d).unwrap());
    let mut actual_out = std::io::BufWriter::new(std::fs::File::create(&a).unwrap());
    let headings = acgbulk::export::rows::number_headings();
    writeln!(desired_out, "telephoneNumber,accountName,serviceDetails_teamsOperatorConnect_enabled,serviceDetails_teamsOperatorConnect_configuration_usage,serviceDetails_teamsOperatorConnect_configuration_choosableCapabilities,serviceDetails_teamsOperatorConnect_configuration_allowTenantAddressUpdate,serviceDetails_teamsDirectRouting_enabled").unwrap();
    writeln!(actual_out, "{}", headings.join(",")).unwrap();
    let number_row = |number: u64, account: &str, usage: &str| {
        let mut fields = acgbulk::record::Fields {
            direct_routing: true,
            ..Default::default()
        };
        fields.teams[0] = Some(acgbulk::record::TeamsFields {
            usage: Some(usage.to_owned().into()),
            capabilities: 0b11,
            allow_tenant_address_update: Some(true),
            ..Default::default()
        });
        let mut api = fields.to_number(number, account);
        api.service_provisioning_status = Some("synced".into());
        acgbulk::export::rows::number_row(&api)
    };
    let mut csv = csv::Writer::from_writer(actual_out);
    for i in 0..NUMBERS {
        let (number, account, usage) = desired(i);
        match i % 100 {
            // Missing: desired, not provisioned.
            0 => {}
            // Moved: provisioned in another account.
            1 => csv
                .write_record(number_row(number, "elsewhere", usage))
                .unwrap(),
            // Changed: another usage.
            2 | 3 => csv
                .write_record(number_row(number, account, "FirstPartyAppAssignment"))
                .unwrap(),
            _ => csv
                .write_record(number_row(number, account, usage))
                .unwrap(),
        }
        writeln!(
            desired_out,
            "+{number},{account},true,{usage},\"InboundCalling,OutboundCalling\",true,true"
        )
        .unwrap();
        // Extra: provisioned, not desired.
        if i % 100 == 4 {
            csv.write_record(number_row(number + 5_000_000, account, usage))
                .unwrap();
        }
    }
    csv.flush().unwrap();
}

fn main() {
    let dir = common::data_dir();
    write_sides(&dir);
    let (d, a) = (
        dir.join("reconcile-desired.csv"),
        dir.join("reconcile-export.csv"),
    );
    let out = dir.join("reconcile-out");
    let mut seconds = Vec::new();
    for _ in 0..common::runs() {
        let started = std::time::Instant::now();
        let output = Command::new(common::bin())
            .args([
                "reconcile",
                d.to_str().unwrap(),
                "--actual",
                a.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--json",
            ])
            .output()
            .unwrap();
        seconds.push(started.elapsed().as_secs_f64());
        assert_eq!(
            output.status.code(),
            Some(1),
            "drift means exit 1: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(summary["counts"]["missing"], 10_000);
        assert_eq!(summary["counts"]["moved"], 10_000);
        assert_eq!(summary["counts"]["changed"], 20_000);
        assert_eq!(summary["counts"]["extra"], 10_000);
        assert_eq!(summary["counts"]["same"], 960_000);
    }
    let peak = common::children_peak_rss_kib() as f64 / 1024.0;
    println!(
        "reconcile benchmark: 1,000,000 desired against 1,000,000 provisioned, 5 % drift, {} runs",
        seconds.len()
    );
    println!(
        "  wall seconds per run: {:?}",
        seconds
            .iter()
            .map(|s| (s * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>()
    );
    println!(
        "  median {:.3} s (target <= 2 s); peak RSS {peak:.1} MiB (target <= 300 MB)",
        common::median(seconds)
    );
}
