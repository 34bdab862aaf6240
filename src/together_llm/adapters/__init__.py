"""Adapters: PEFT files plus card.json in the home's `adapters/<name>/`."""
