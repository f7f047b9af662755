"""The data contract: reading and validating both dataset shapes, training snapshots, and
the funnel simulator that writes data with known truth."""
