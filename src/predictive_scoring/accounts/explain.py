"""Who drives an account's score: each contact's effect is the account's probability with
it minus the probability without it (the same model on the buying group less that
contact), so "without Ana the account would be at 12% instead of 31%" reads literally.
The missing roles are the roles whose engagement goes with conversions and that no engaged
contact holds ("no decision maker engaged yet").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from predictive_scoring.accounts.contract import ACCOUNT_ID
from predictive_scoring.accounts.features import account_features, empty_features
from predictive_scoring.accounts.model import AccountScorer
from predictive_scoring.accounts.snapshots import KEY

EXPLAINED_CONTACTS = 20
"""Contacts per account whose effect is measured: the best-scored ones (the effect of
leaving out a contact grows with its own score, so the others move the account least)."""
LEFT_OUT = "_left_out"


def contact_effects(scorer: AccountScorer, contacts: pd.DataFrame,
                    table: pd.DataFrame | None, probability: pd.Series) -> pd.Series:
    """Each explained contact's effect on its account's probability.

    Args:
        scorer: The account model.
        contacts: Contact rows (``account_id``, ``as_of``, ``probability``, engagement
            columns, ``account_role``) with a unique index.
        table: The accounts file's rows, or None.
        probability: The account's probability, indexed by (``account_id``, ``as_of``).

    Returns:
        Probability with the contact minus without it, on the explained contacts' index
        (the others are left out).
    """
    rank = contacts.groupby(KEY, sort=False)["probability"].rank(method="first",
                                                                  ascending=False)
    explained = contacts.loc[rank <= EXPLAINED_CONTACTS]
    if not len(explained):
        return pd.Series(dtype=float)
    pairs = explained[KEY].assign(**{LEFT_OUT: explained.index.to_numpy()}).merge(
        contacts.assign(_own=contacts.index.to_numpy()), on=KEY)
    pairs = pairs.loc[pairs["_own"] != pairs[LEFT_OUT]]
    by = [*KEY, LEFT_OUT]
    variants = pd.MultiIndex.from_arrays(
        [explained[ACCOUNT_ID].to_numpy(), explained["as_of"].to_numpy(),
         explained.index.to_numpy()], names=by)
    features = account_features(pairs, scorer.roles, by) if len(pairs) else None
    full = empty_features(variants, scorer.roles)
    if features is not None:
        full.loc[features.index, features.columns] = features.to_numpy()
    without = scorer.probability(scorer.frame_of(full, contacts, table))
    own = probability.reindex(pd.MultiIndex.from_arrays(
        [variants.get_level_values(0), variants.get_level_values(1)])).to_numpy(float)
    return pd.Series(own - without, index=variants.get_level_values(LEFT_OUT))


def top_contacts(contacts: pd.DataFrame, effects: pd.Series, k: int) -> pd.DataFrame:
    """The ``k`` contacts that raise each account's score most, strongest first.

    Returns:
        ``account_id``, ``as_of``, ``rank`` (1..k), ``lead_id``, ``effect`` and the
        contact's own columns (its score, reasons...).
    """
    chosen = contacts.loc[effects.index].assign(effect=effects.to_numpy())
    chosen = chosen.sort_values([*KEY, "effect"], ascending=[True, True, False],
                                kind="stable")
    chosen["rank"] = chosen.groupby(KEY, sort=False).cumcount() + 1
    return chosen.loc[chosen["rank"] <= k]


def missing_roles_text(roles: list[str]) -> str:
    """``no decision maker or champion engaged yet`` (empty when none is missing)."""
    if not roles:
        return ""
    names = [r.replace("_", " ") for r in roles]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return f"no {listed} engaged yet"


def effect_text(effect: float) -> str:
    """An effect as the points of score it is worth: ``+12 pts``."""
    return f"{np.rint(effect * 100):+.0f} pts"
