//! Cutting a validated sheet into batch requests: the valid numbers grouped
//! by account (accounts in the order they first appear, numbers in input
//! order), in batches of at most the batch size. The same sheet and options
//! always give the same batches, in the same order, with the same
//! fingerprint, which is what lets a resume find its place.

use crate::validate::pipeline::{Expanded, NO_ACCOUNT};
use aws_lc_rs::digest::{Context, SHA256};
use std::time::Duration;

/// The most numbers the service takes in one batch.
pub const MAX_BATCH_SIZE: usize = 100;

/// One batch: `len` numbers of one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Index into [`Expanded::accounts`].
    pub account: u32,
    /// First position in [`Plan::slots`].
    pub start: u32,
    pub len: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Entry indices (into [`Expanded::entries`]) in sending order.
    pub slots: Vec<u32>,
    pub batches: Vec<Batch>,
    /// SHA-256 over every batch's account and numbers.
    pub fingerprint: String,
}

impl Plan {
    /// Plans the valid entries of `expanded` in batches of `batch_size`.
    pub fn new(expanded: &Expanded, batch_size: usize) -> Plan {
        Plan::excluding(expanded, batch_size, &[])
    }

    /// As [`Plan::new`], leaving out the accounts (by id) in `excluded`:
    /// accounts the gateway does not have, whose rows are failed offline.
    pub fn excluding(expanded: &Expanded, batch_size: usize, excluded: &[u32]) -> Plan {
        let batch_size = batch_size.clamp(1, MAX_BATCH_SIZE);
        let accounts = expanded.accounts.len();
        // Account ids are numbered in order of first appearance, so a stable
        // counting sort by account id gives the sending order.
        let mut counts = vec![0u32; accounts + 1];
        // A flag per account: the check runs once per entry.
        let mut left_out = vec![false; accounts];
        for &account in excluded {
            left_out[account as usize] = true;
        }
        let valid = |i: usize| {
            let account = expanded.entries[i].account;
            !expanded.is_invalid(i) && account != NO_ACCOUNT && !left_out[account as usize]
        };
        for (i, entry) in expanded.entries.iter().enumerate() {
            if valid(i) {
                counts[entry.account as usize + 1] += 1;
            }
        }
        for a in 1..counts.len() {
            counts[a] += counts[a - 1];
        }
        let total = counts[accounts] as usize;
        let mut slots = vec![0u32; total];
        let mut next = counts.clone();
        for (i, entry) in expanded.entries.iter().enumerate() {
            if valid(i) {
                let at = &mut next[entry.account as usize];
                slots[*at as usize] = i as u32;
                *at += 1;
            }
        }
        let mut batches = Vec::with_capacity(total / batch_size + accounts);
        let mut hasher = Context::new(&SHA256);
        hasher.update(&batch_size.to_le_bytes());
        for account in 0..accounts {
            let (from, to) = (counts[account], counts[account + 1]);
            let mut start = from;
            while start < to {
                let len = (to - start).min(batch_size as u32);
                batches.push(Batch {
                    account: account as u32,
                    start,
                    len,
                });
                hasher.update(expanded.accounts[account].as_bytes());
                hasher.update(&[0]);
                for &slot in &slots[start as usize..(start + len) as usize] {
                    hasher.update(&expanded.entries[slot as usize].number.to_le_bytes());
                }
                start += len;
            }
        }
        Plan {
            slots,
            batches,
            fingerprint: hex::encode(hasher.finish()),
        }
    }

    /// The entries of batch `b`, from position `lo` to `hi` (exclusive).
    pub fn entries(&self, b: usize, lo: usize, hi: usize) -> &[u32] {
        let batch = self.batches[b];
        &self.slots[batch.start as usize + lo..batch.start as usize + hi]
    }

    pub fn numbers(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Accounts that have at least one batch.
    pub fn accounts(&self) -> usize {
        let mut seen: Vec<u32> = self.batches.iter().map(|b| b.account).collect();
        seen.dedup();
        seen.len()
    }

    /// How long the batches take at `per_minute` requests a minute.
    pub fn duration_at(&self, per_minute: u32) -> Duration {
        Duration::from_secs_f64(self.batches.len() as f64 * 60.0 / per_minute.max(1) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sheet::{Sheet, SheetOptions};
    use crate::validate::pipeline::validate;
    use crate::validate::RuleOptions;

    fn expanded(csv: &str) -> Expanded {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.csv");
        std::fs::write(&path, csv).unwrap();
        let sheet = Sheet::open(&path, &SheetOptions::default()).unwrap();
        validate(sheet, &RuleOptions::default(), &mut |_| Ok(()), &mut |_| {})
            .unwrap()
            .expanded
    }

    #[test]
    fn groups_by_account_in_first_appearance_and_input_order() {
        let e = expanded(
            "telephoneNumber,accountName,serviceDetails_teamsDirectRouting_enabled\n\
             +14255550100,b,true\n+14255550101,a,true\n+14255550102,b,true\n\
             +14255550103..+14255550106,a,true\nbad,a,true\n+14255550107,b,true\n",
        );
        let plan = Plan::new(&e, 3);
        let numbers = |b: usize| -> Vec<u64> {
            let batch = plan.batches[b];
            plan.entries(b, 0, batch.len as usize)
                .iter()
                .map(|&i| e.entries[i as usize].number)
                .collect()
        };
        assert_eq!(plan.batches.len(), 3);
        assert_eq!(e.accounts[plan.batches[0].account as usize], "b");
        assert_eq!(numbers(0), vec![14255550100, 14255550102, 14255550107]);
        assert_eq!(numbers(1), vec![14255550101, 14255550103, 14255550104]);
        assert_eq!(numbers(2), vec![14255550105, 14255550106]);
        assert_eq!(plan.numbers(), 8);
        assert_eq!(plan.accounts(), 2);
        assert_eq!(plan, Plan::new(&e, 3), "deterministic");
        assert_ne!(plan.fingerprint, Plan::new(&e, 2).fingerprint);
        assert_eq!(plan.duration_at(100), Duration::from_secs_f64(1.8));
    }
}
