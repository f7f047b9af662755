"""A B2B funnel simulator whose true conversion probabilities are known exactly.

:func:`simulate_funnel` draws leads, their events and stage changes, and each snapshot's
exact conversion probability (the oracle); the writers put them on disk in the data
contract's layout or a CRM export's. The modules, one concern each:

- :mod:`.law`: the generative law (its docstring states it in full) and its constant tables;
- :mod:`.activity`: the event processes, email and the CRM lifecycle, drawn per block;
- :mod:`.oracle`: the exact probabilities, by the forward algorithm of the hidden chain;
- :mod:`.funnel`: blocks of leads simulated and assembled into the contract's tables;
- :mod:`.writers`: CSV, Parquet (whole or in parts) and the CRM-export layout.
"""

from predictive_scoring.data.synthetic.funnel import (
    SimulatedFunnel,
    simulate_funnel,
    simulate_funnel_parts,
)
from predictive_scoring.data.synthetic.writers import (
    CRM_FILES,
    PARQUET_FILES,
    TABLES,
    crm_export,
    simulate_into,
    write_crm_export,
    write_funnel,
    write_funnel_parts,
)

__all__ = ["CRM_FILES", "PARQUET_FILES", "TABLES", "SimulatedFunnel", "crm_export",
           "simulate_funnel", "simulate_funnel_parts", "simulate_into", "write_crm_export",
           "write_funnel", "write_funnel_parts"]
