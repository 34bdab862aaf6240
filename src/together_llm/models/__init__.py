"""Models: the family registry, the home's model registry, loading and chat templates."""
