"""HTTP scoring service for CRM integrations (imports predictive_scoring, never the reverse)."""
