"""All Kubernetes I/O lives here: connection, pacing, retries, and the watch-fed pod cache."""
