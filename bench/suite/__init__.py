"""The benchmarks P1..P10, one module each, in the order of the issue's table."""
