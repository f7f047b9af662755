"""Account (company) scores learnt from their contacts, explained by who drives them.

A lead may belong to an account (the dataset config's ``accounts`` section). An account's
score is the probability that one of its contacts reaches the target stage within the
horizon, learnt on account snapshots without look-ahead from the contacts' own scores and
the buying group's engagement, next to the points baseline CRMs use (the sum and the
maximum of the contacts' points). One concern per module:

- :mod:`.contract`: which leads carry an account id, and the report of those that do not;
- :mod:`.snapshots`: account snapshots and labels, and the contacts each one sees;
- :mod:`.features`: contacts' engagement and the account-level features;
- :mod:`.baseline`: the points sum and maximum;
- :mod:`.model`: the account model (:class:`~.model.AccountScorer`) and its fit;
- :mod:`.explain`: the contacts that move an account's score most, and the missing roles;
- :mod:`.training`: the train step (fit, compare on the same test accounts, metrics);
- :mod:`.scoring`: accounts scored from their contacts (batch files and the API).

Nothing here runs at import time; heavy imports stay inside the functions that use them.
"""
