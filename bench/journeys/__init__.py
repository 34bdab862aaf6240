"""User journeys run as users run them, shared by the benchmarks and tests/e2e: the
personal facts a person teaches their assistant, and the co-evolution of four peers."""
