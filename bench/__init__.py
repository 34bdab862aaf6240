"""Side-by-side benchmarks against peers (README.md); journeys/ holds the user journeys they
share with the end-to-end tests."""
