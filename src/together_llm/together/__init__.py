"""Together: assistants that learn from each other without handing over their data.

Federated LoRA on Flower (`flwr`): apps.py holds the ServerApp and the ClientApp, the same
apps for `tllm together simulate` (Flower's simulation engine, simulate.py) and for runs
across machines (a SuperLink and SuperNodes). Only LoRA tensors travel; rows never leave a
home.
    settings.py     every setting of a federation, as Flower run-config keys
    local.py        a peer's work: train the global adapter a few steps, evaluate it
    arrays.py       adapter tensors <-> Flower ArrayRecords
    aggregation.py  exact LoRA aggregation: the mean of the products B·A, refactored by SVD
    strategies.py   Flower's FedAvg / FedProx / FedAdam and DP wrappers, from the settings
    recorder.py     the outermost strategy: drops failed peers, records every round
    partition.py    iid and Dirichlet partitions of a dataset
    peers.py        peer homes for a simulation
    metrics.py      metrics.jsonl, the curves PNG, `tllm together status`
Evolution (`tllm together evolve`): evolve/ (run.py, score.py, store.py, pool.py, adopt.py), lineage.py.

Heavy imports (flwr, torch) stay inside functions, or in apps.py, which only a running
federation imports.
"""
