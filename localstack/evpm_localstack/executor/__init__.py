"""A Lambda runtime executor that runs Python zip functions as host worker processes.

LocalStack's only built-in executor starts a Docker container per execution environment and
downloads an init binary from the internet; neither exists on these machines. This executor
keeps LocalStack's own scheduling (environments, keep-alive, concurrency, event source
mappings) and replaces only the sandbox: one worker process per execution environment.
"""
