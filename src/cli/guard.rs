//! The `--max-delete` guard as the commands apply it: the limit a run is
//! held to, and the one line that refuses a plan over it.

use super::flags::MaxDelete;
use super::ui::thousands;

/// How many numbers a run may delete, and how that came about.
pub struct DeleteLimit {
    pub numbers: u64,
    /// For the refusal: `--max-delete 100`, `--max-delete 5% of 2,000
    /// provisioned numbers`, or reconcile's default.
    how: String,
}

impl DeleteLimit {
    /// The limit given with `--max-delete`; `provisioned` is needed for a
    /// percentage only.
    pub fn given(max: MaxDelete, provisioned: Option<u64>) -> DeleteLimit {
        let numbers = max.limit(provisioned.unwrap_or(0));
        let how = match (max, provisioned) {
            (MaxDelete::Percent(_), Some(provisioned)) => format!(
                "--max-delete {max} of {} provisioned numbers",
                thousands(provisioned)
            ),
            _ => format!("--max-delete {max}"),
        };
        DeleteLimit { numbers, how }
    }

    /// Reconcile's limit: as given, else 1 % of the provisioned numbers or
    /// 100, whichever is larger.
    pub fn reconcile(max: Option<MaxDelete>, provisioned: u64) -> DeleteLimit {
        match max {
            Some(max) => DeleteLimit::given(max, Some(provisioned)),
            None => DeleteLimit {
                numbers: MaxDelete::reconcile_default(provisioned),
                how: format!(
                    "the default --max-delete, 1% of {} provisioned numbers or 100, whichever is larger",
                    thousands(provisioned)
                ),
            },
        }
    }

    /// `None` when `deletes` is within the limit; else the line that says
    /// the run is refused, where its plan is, and what would allow it.
    pub fn refusal(&self, deletes: u64, plan: &str) -> Option<String> {
        (deletes > self.numbers).then(|| {
            format!(
                "refused: the plan deletes {} numbers, over the limit of {} ({}); nothing was sent; {plan}; check it, then give a larger --max-delete N or N% to allow it",
                thousands(deletes),
                thousands(self.numbers),
                self.how
            )
        })
    }
}
