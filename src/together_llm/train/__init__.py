"""Training: a recipe (recipe.py) names a stage (stages/), a method and a dataset; run.py
gives the run its folder under runs/<id>/, model.py loads the base with the method applied,
batches.py turns examples into padding-free micro-batches, loop.py trains with checkpoints
(checkpoint.py), and save.py writes the adapter (or full model) into the home."""
