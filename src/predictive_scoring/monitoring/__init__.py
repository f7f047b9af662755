"""Is the model still right? Realised accuracy against the points, drift and staleness,
read back from the prediction log; and why one lead's score changed.

- :mod:`.reference`: the training reference stored in every bundle and each lead's
  model input as bins (light: training and the service import it);
- :mod:`.log`: the prediction log read through SQLAlchemy (SQLite, PostgreSQL);
- :mod:`.outcomes`: logged scores joined with the stage changes (matured or pending);
- :mod:`.metrics`: per period and per model version, the model next to the points;
- :mod:`.drift`: population stability per input and of the score, staleness, alerts;
- :mod:`.change`: a score's change between two moments, per field;
- :mod:`.report`: ``monitoring.json`` and the self-contained ``monitoring.html``.
"""
