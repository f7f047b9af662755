"""Which leads carry an account id: leads without one score as leads alone, and a dataset
where only some leads carry one is reported (it usually means a partial CRM sync)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from predictive_scoring.data.validate import ACCOUNT_ID, ACCOUNT_ROLE

__all__ = ["ACCOUNT_ID", "ACCOUNT_ROLE", "AccountCoverage", "coverage"]


@dataclass(frozen=True)
class AccountCoverage:
    """How many leads carry an account id, and in how many accounts."""

    n_leads: int
    n_with_account: int
    n_accounts: int

    @property
    def partial(self) -> bool:
        """Some leads carry an account id and others do not."""
        return 0 < self.n_with_account < self.n_leads

    def note(self, file: str) -> str | None:
        """The report of leads without an account id (None when every lead has one)."""
        missing = self.n_leads - self.n_with_account
        if not missing:
            return None
        if not self.n_with_account:
            return (f"{file}: no lead has an account id; every lead scores alone and no "
                    "account score is learnt")
        return (f"{file}: {missing:,} of {self.n_leads:,} leads have no account id "
                f"({missing / self.n_leads:.1%}); they score as leads alone, and the "
                f"other {self.n_with_account:,} leads form {self.n_accounts:,} accounts")


def coverage(leads: pd.DataFrame) -> AccountCoverage:
    """Account coverage of a leads frame with an ``account_id`` column (missing = NA)."""
    ids = leads[ACCOUNT_ID]
    return AccountCoverage(len(leads), int(ids.notna().sum()), int(ids.nunique(dropna=True)))
