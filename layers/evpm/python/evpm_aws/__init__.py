"""AWS adapters of the evpm domain code (SSM, S3, the MLflow registry), shared by functions.

Kept apart from :mod:`evpm`, which stays free of service SDKs and is tested without mocks;
this package is the thin layer that talks to services, imported only by handlers and the CLI.
"""
