"""Scale-out on Dask: the optional ``[dask]`` extra (dask is imported only when a function
needs it). The modules, one concern each:

- :mod:`.cluster`: where a run goes (:class:`DaskPlan`) and the client;
- :mod:`.sources`: Parquet tables read by lead (a lead's rows of every table land in the
  same partition) and validated per partition, bad rows named by file and row;
- :mod:`.store`: what a partition's steps keep between them, on its worker's disk;
- :mod:`.examples`: examples built per partition with the single-machine code and kept
  on the workers, the open leads found and sampled there;
- :mod:`.train`: the model fitted by its kind on the workers (the source
  ``workflow.training.train`` runs on);
- :mod:`.score`: partitioned batch scoring into Parquet part files, with retries.
"""

from predictive_scoring.distributed.cluster import DaskPlan, dask_client
from predictive_scoring.distributed.examples import TrainingInputs, build_examples_distributed
from predictive_scoring.distributed.score import (
    PART_GLOB,
    DistributedScoreSummary,
    PartitionScores,
    PartitionsFailed,
    ScoreRequest,
    score_distributed,
    score_partition,
)
from predictive_scoring.distributed.sources import dataset_files
from predictive_scoring.distributed.train import PartitionedSource

__all__ = ["PART_GLOB", "DaskPlan", "DistributedScoreSummary", "PartitionScores",
           "PartitionedSource", "PartitionsFailed", "ScoreRequest", "TrainingInputs",
           "build_examples_distributed", "dask_client", "dataset_files",
           "score_distributed", "score_partition"]
