"""Protocol adapters, one folder per format; each exposes a router and nothing else."""
