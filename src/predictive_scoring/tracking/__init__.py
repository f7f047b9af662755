"""MLflow: the tracking store and run logging (:mod:`.store`), the model bundle and its
input contract (:mod:`.bundle`), and the registry with its aliases (:mod:`.registry`).
These are the only modules that import mlflow."""
