"""One router per resource: scores, model metadata and reload, health."""
