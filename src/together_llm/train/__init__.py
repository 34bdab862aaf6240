"""Training: a recipe (recipe.py) names a stage (stages/), a method (methods/) and a dataset.
run.py is every run's skeleton: the base and its context (model.py), the processes
(processes.py), the run folder and its log (run_folder.py), then one of two trainers
(trainer.py's protocol): our own loop (loop_trainer.py over loop.py, batches.py and
checkpoint.py) or TRL (trl_trainer.py); last the card, the plot (plot.py), metrics.json and
the adapter (or full model) written into the home by adapters/save.py."""
