"""Benchmarks behind `make bench`: DAG render time (render.py) and DAG run time (run.py)."""
