"""The steps behind the commands, without the command line: nothing here imports typer or
rich or prints; each step returns a result object and reports progress through a callback.

- :mod:`.training`: the one training flow, on examples in memory or on a Dask cluster;
- :mod:`.paired`: a bootstrap over leads of scorers measured on the same leads;
- :mod:`.promotion`: champion against challenger on the same leads, and the decision;
- :mod:`.preview`: what a promotion changes for marketing ops;
- :mod:`.outputs`: metrics.json, plots, learned points, the report, the MLflow run;
- :mod:`.runs`: a training run end to end (``train``, ``retrain``, ``quickstart``);
- :mod:`.retrain`: the scheduled retrain, and telling a running service to reload;
- :mod:`.reports`: the report and the learned points of a registered model.
"""
